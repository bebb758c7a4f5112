/**
 * `kiln worker --farm redis://… --remote-cache URL`: takes part jobs from the BullMQ queues its
 * capabilities cover. For each job: fetch the coordinator's project snapshot from the remote
 * cache (once per snapshot), run `kiln build PART` in a fresh out/ with the remote cache in
 * readwrite mode (dependencies are restored from it, the part is built and uploaded), and
 * complete the job. A failed part fails the job with the part's error and log tail.
 * A worker killed mid-part stops renewing its BullMQ lock: the job stalls and another worker
 * takes it.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { ExitCode, KilnError } from '../lib/errors.js';
import { run, spawnGuarded } from '../lib/exec.js';
import { rmrf } from '../lib/fsutil.js';
import { HttpCache } from '../remote/http.js';
import { CAPABILITIES, connection, HEARTBEAT_MS, pingRedis, queueName, subsets, WORKERS_KEY, type FarmJobData, type FarmJobResult, type RedisTarget } from './common.js';

export interface WorkerOptions {
  redis: RedisTarget;
  remoteCache: string;
  capabilities: string[];
  jobs: number;
  /** where snapshots and per-job out/ directories go */
  workDir: string;
  /** KILN_CACHE_DIR for the builds */
  cacheDir?: string;
  signKey?: string;
  log: (line: string) => void;
  signal: AbortSignal;
}

/** BullMQ lock: renewed every lockDuration/2 while the worker lives; a dead worker's job stalls after it. */
const LOCK_MS = Number(process.env.KILN_FARM_LOCK_MS || 30_000);

export async function runWorker(o: WorkerOptions): Promise<number> {
  for (const c of o.capabilities) {
    if (!(CAPABILITIES as readonly string[]).includes(c)) throw new KilnError(`unknown capability '${c}' (known: ${CAPABILITIES.join(', ')})`, ExitCode.USAGE);
  }
  await pingRedis(o.redis);
  const id = `${hostname()}:${process.pid}`;
  mkdirSync(o.workDir, { recursive: true });
  const http = new HttpCache({ url: o.remoteCache });
  const kilnBin = resolve(import.meta.dirname, '..', '..', 'bin', 'kiln.js');
  const reg = new Redis({ ...connection(o.redis), maxRetriesPerRequest: 1 });
  reg.on('error', () => undefined);
  const beat = async () => {
    await reg.hset(WORKERS_KEY, id, JSON.stringify({ caps: o.capabilities, jobs: o.jobs, seen: Date.now() })).catch(() => undefined);
  };
  await beat();
  const timer = setInterval(beat, HEARTBEAT_MS);

  const snapshots = new Map<string, Promise<string>>();
  const snapshot = (blob: FarmJobData['project']) => {
    let p = snapshots.get(blob.sha256);
    if (!p) {
      p = (async () => {
        const dir = join(o.workDir, 'projects', blob.sha256);
        if (existsSync(dir)) return dir;
        mkdirSync(join(o.workDir, 'projects'), { recursive: true });
        const tmp = mkdtempSync(join(o.workDir, 'projects', 'tmp-'));
        try {
          const tar = join(tmp, 'project.tar');
          if (!(await http.getBlob(blob.sha256, blob.size, tar))) throw new Error(`project snapshot cas/${blob.sha256.slice(0, 12)} is not in the remote cache`);
          mkdirSync(join(tmp, 'p'));
          await run(['tar', '-xf', tar, '-C', join(tmp, 'p'), '--no-same-owner']);
          renameSync(join(tmp, 'p'), dir);
          return dir;
        } finally {
          await rmrf(tmp);
        }
      })();
      p.catch(() => snapshots.delete(blob.sha256));
      snapshots.set(blob.sha256, p);
    }
    return p;
  };

  const processor = async (job: Job<FarmJobData>): Promise<FarmJobResult> => {
    const d = job.data;
    const t0 = Date.now();
    o.log(`job ${job.id}: ${d.part} (from ${d.coordinator})`);
    const dir = await snapshot(d.project);
    mkdirSync(join(o.workDir, 'runs'), { recursive: true });
    const out = mkdtempSync(join(o.workDir, 'runs', `${d.part}-`));
    try {
      const args = [kilnBin, 'build', d.part, '-c', join(dir, d.config), '-o', out, '-j', String(o.jobs), '--json', '--remote-cache', o.remoteCache, '--remote-cache-mode', 'readwrite'];
      if (o.signKey) args.push('--remote-cache-sign-key', o.signKey);
      for (const ov of d.overrides) args.push(`${ov.section}:${ov.option}=${ov.value}`);
      const env = { ...process.env, CI: '1', ...(o.cacheDir ? { KILN_CACHE_DIR: o.cacheDir } : {}) };
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res, rej) => {
        // like a part's command: killed with the worker (kill -9 of a worker stops its build too)
        const c = spawnGuarded(process.execPath, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        c.stdout!.on('data', (b) => (stdout += b));
        c.stderr!.on('data', (b) => (stderr += b));
        c.on('error', rej);
        c.on('close', (code) => res({ code, stdout, stderr }));
      });
      const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      if (r.code !== 0) {
        const failed = events.find((e) => e.type === 'part-failed');
        let tail = '';
        try {
          tail = readFileSync(join(out, 'logs', `${(failed?.part as string) ?? d.part}.log`), 'utf8').split('\n').slice(-30).join('\n');
        } catch {
          tail = r.stderr.split('\n').slice(-30).join('\n');
        }
        const what = failed ? `[${failed.part}] ${failed.error}` : `kiln build exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`;
        o.log(`job ${job.id}: ${d.part} FAILED`);
        throw new Error(`${what}\n(on worker ${id})\n--- log tail ---\n${tail}`);
      }
      if (!(await http.has('ac', d.actionKey))) throw new Error(`[${d.part}] built on worker ${id}, but its action result is not in the remote cache (upload failed: ${r.stderr.trim().split('\n').filter((l) => l.includes('warning')).join(' ')})`);
      const seconds = (Date.now() - t0) / 1000;
      o.log(`job ${job.id}: ${d.part} done in ${seconds.toFixed(1)}s`);
      return { worker: id, seconds };
    } finally {
      await rmrf(out);
    }
  };

  const workers = subsets(o.capabilities).map(
    (caps) =>
      new Worker<FarmJobData, FarmJobResult>(queueName(caps), processor, {
        connection: connection(o.redis),
        concurrency: o.jobs,
        lockDuration: LOCK_MS,
        stalledInterval: Math.max(1000, Math.floor(LOCK_MS / 2)),
        maxStalledCount: 3,
      }),
  );
  for (const w of workers) w.on('error', (e) => o.log(`redis: ${e.message}`));
  o.log(`worker ${id} on ${o.redis.display}, capabilities: ${o.capabilities.join(',') || 'none'}, -j${o.jobs}, queues: ${subsets(o.capabilities).map(queueName).join(' ')}`);
  await new Promise<void>((r) => o.signal.addEventListener('abort', () => r(), { once: true }));
  clearInterval(timer);
  const bounded = (p: Promise<unknown>) => Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 5_000).unref())]);
  await Promise.all(workers.map((w) => bounded(w.close())));
  await Promise.all(workers.map((w) => bounded(w.disconnect())));
  await reg.hdel(WORKERS_KEY, id).catch(() => undefined);
  reg.disconnect();
  http.close();
  return 0;
}
