// The build farm's test servers and processes: Debian's redis-server on a free 127.0.0.1 port,
// `kiln worker` processes with their own working and cache directories (stand-ins for machines).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KILN } from './kiln.js';
import { freePort } from './nginx.js';

/**
 * Mode and sha256 of every file (and the target of every link) under OUT/parts, by path;
 * `normalize` may rewrite a file's bytes before hashing (e.g. test durations in JUnit XML).
 */
export function snapshot(dir: string, outName = 'out', normalize?: (path: string, bytes: Buffer) => Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  const rec = (abs: string, rel: string) => {
    for (const n of readdirSync(abs).sort()) {
      const a = join(abs, n);
      const st = lstatSync(a);
      if (st.isSymbolicLink()) out[`${rel}/${n}`] = `link ${readlinkSync(a)}`;
      else if (st.isDirectory()) rec(a, `${rel}/${n}`);
      else {
        const bytes = readFileSync(a);
        out[`${rel}/${n}`] = `${(st.mode & 0o777).toString(8)} ${createHash('sha256').update(normalize ? normalize(`${rel}/${n}`, bytes) : bytes).digest('hex')}`;
      }
    }
  };
  for (const p of readdirSync(join(dir, outName, 'parts')).sort()) rec(join(dir, outName, 'parts', p) + '/', p);
  return out;
}

export async function startRedis(): Promise<{ url: string; proc: ChildProcess; stop(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'kiln-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const { Redis } = await import('ioredis');
  for (let i = 0; ; i++) {
    const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 1 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.ping();
      c.disconnect();
      break;
    } catch {
      c.disconnect();
      if (i > 100) throw new Error('redis-server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    proc,
    stop: () => new Promise<void>((r) => (proc.exitCode !== null ? r() : (proc.on('exit', () => r()), proc.kill('SIGTERM')))),
  };
}

export interface W {
  proc: ChildProcess;
  log: string;
  dir: string;
}
export function startWorker(redis: string, cache: string, extra: string[] = [], env: Record<string, string> = {}): Promise<W> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-worker-'));
  const proc = spawn(process.execPath, [KILN, 'worker', '--farm', redis, '--remote-cache', cache, '--work', join(dir, 'work'), '--cache', join(dir, 'cache'), ...extra], {
    cwd: dir,
    env: { ...process.env, CI: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const w: W = { proc, log: '', dir };
  return new Promise((resolve, reject) => {
    proc.stderr!.on('data', (b) => {
      w.log += b;
      if (w.log.includes(' on redis://')) resolve(w);
    });
    proc.on('exit', (code) => reject(new Error(`worker exited ${code}: ${w.log}`)));
  });
}
export const stopWorker = (w: W) =>
  new Promise<void>((r) => {
    if (w.proc.exitCode !== null || w.proc.signalCode) return r();
    const t = setTimeout(() => w.proc.kill('SIGKILL'), 10_000);
    w.proc.on('exit', () => (clearTimeout(t), r()));
    w.proc.kill('SIGTERM');
  });

