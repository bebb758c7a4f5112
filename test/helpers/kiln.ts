/** Run the real kiln CLI (compiled, bin/kiln.js) against a temporary project. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const KILN = join(import.meta.dirname, '..', '..', 'bin', 'kiln.js');

export interface KilnResult {
  code: number | null;
  stdout: string;
  stderr: string;
  events: Array<Record<string, unknown>>;
  /** the kiln process's pid (kilnP only): its Docker containers are named kiln-PID-... */
  pid?: number;
}

/** A temp project dir with the given files (path -> content); its own cache dir. */
export function project(files: Record<string, string>): { dir: string; cache: string; write(files: Record<string, string>): void } {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-proj-'));
  const cache = join(dir, '.cache');
  const write = (fs: Record<string, string>) => {
    for (const [p, c] of Object.entries(fs)) {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), c);
    }
  };
  write(files);
  return { dir, cache, write };
}

export function kiln(dir: string, args: string[], env: Record<string, string> = {}): KilnResult {
  const r = spawnSync(process.execPath, [KILN, ...args], {
    cwd: dir,
    env: { ...process.env, KILN_CACHE_DIR: join(dir, '.cache'), CI: '1', ...env },
    encoding: 'utf8',
    timeout: 300_000,
  });
  const events: Array<Record<string, unknown>> = [];
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('{')) {
      try {
        events.push(JSON.parse(line));
      } catch {
        /* not an event */
      }
    }
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, events };
}

export function kilnAsync(dir: string, args: string[], env: Record<string, string> = {}) {
  return spawn(process.execPath, [KILN, ...args], {
    cwd: dir,
    env: { ...process.env, KILN_CACHE_DIR: join(dir, '.cache'), CI: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export const parts = (r: KilnResult, type: string) => r.events.filter((e) => e.type === type).map((e) => e.part as string).sort();

/** Like kiln(), without blocking the event loop (for tests that serve HTTP in-process). */
export function kilnP(dir: string, args: string[], env: Record<string, string> = {}): Promise<KilnResult> {
  return new Promise((resolve) => {
    const c = kilnAsync(dir, args, env);
    let stdout = '';
    let stderr = '';
    c.stdout!.on('data', (b) => (stdout += b));
    c.stderr!.on('data', (b) => (stderr += b));
    c.on('close', (code) => {
      const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, stdout, stderr, events, pid: c.pid });
    });
  });
}
