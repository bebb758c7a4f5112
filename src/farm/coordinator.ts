/**
 * The coordinator side of `kiln build --farm redis://…`: the scheduler runs as for a local build,
 * but a part to build becomes a BullMQ job (queue by required capabilities) that a worker takes;
 * outputs travel through the remote cache. Parts are downloaded into the local store only where
 * asked (--download all|targets|none).
 */
import { hostname } from 'node:os';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import type { PlanEntry } from '../engine/plan-entry.js';
import type { Part, Project } from '../engine/project.js';
import type { Store } from '../engine/store.js';
import { hashFile } from '../lib/hash.js';
import { ExitCode, KilnError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { rmrf } from '../lib/fsutil.js';
import { locationBound } from '../remote/action.js';
import type { RemoteCache } from '../remote/cache.js';
import { connection, HEARTBEAT_MS, partCapabilities, pingRedis, queueName, WORKERS_KEY, type FarmJobData, type FarmJobResult, type RedisTarget } from './common.js';

export type DownloadMode = 'all' | 'targets' | 'none';

export interface FarmOutcome {
  /** built by a worker now (false: its result was already in the remote cache) */
  built: boolean;
  worker?: string;
}

export class FarmCoordinator {
  private queues = new Map<string, Promise<{ queue: Queue; events: QueueEvents }>>();
  private caps = new Map<string, string[]>();
  private projectBlob: Promise<{ sha256: string; size: number }> | undefined;
  private wanted: Set<string>;
  private local = new Set<string>();
  private id = `${hostname()}:${process.pid}`;
  /** rejects when Redis stops answering during the build */
  private lost: Promise<never>;
  private loseRedis!: (e: Error) => void;
  private watchdog: NodeJS.Timeout | undefined;
  private watch: Redis | undefined;

  constructor(
    private project: Project,
    private remote: RemoteCache,
    private redis: RedisTarget,
    private opts: { overrides: FarmJobData['overrides']; download: DownloadMode; targets?: string[] },
  ) {
    this.lost = new Promise<never>((_, reject) => (this.loseRedis = reject));
    this.lost.catch(() => undefined);
    this.wanted = new Set(opts.download === 'all' ? project.closure(opts.targets) : opts.download === 'targets' ? (opts.targets ?? project.selected) : []);
    // parts whose output embeds their location (and their dependants) are built here, at this
    // location, from their dependencies' outputs restored here
    for (const name of project.order) {
      const part = project.parts.get(name);
      if (!part) continue;
      if (locationBound(project, part) || [...part.deps.keys()].some((d) => this.local.has(d))) this.local.add(name);
    }
    for (const name of this.local) for (const d of project.parts.get(name)!.deps.keys()) this.wanted.add(d);
  }

  /** Ping Redis every 2 s during the build; a missed answer fails every part waiting on the farm. */
  private startWatchdog(): void {
    const c = new Redis({ ...connection(this.redis), maxRetriesPerRequest: 1, retryStrategy: () => null, enableOfflineQueue: false });
    c.on('error', () => undefined);
    this.watch = c;
    let failures = 0;
    this.watchdog = setInterval(() => {
      const t = setTimeout(() => fail('no answer in 2 s'), 2_000);
      const fail = (why: string) => {
        clearTimeout(t);
        if (++failures < 2) return;
        clearInterval(this.watchdog);
        this.loseRedis(new KilnError(`lost the farm's Redis at ${this.redis.display} (${why}): parts handed to the farm cannot finish`));
      };
      c.ping().then(
        () => {
          clearTimeout(t);
          failures = 0;
        },
        (e: Error) => fail(e.message),
      );
    }, 2_000);
    this.watchdog.unref();
  }

  /** Before the build: Redis answers, and for every part to build a live worker has its capabilities. */
  async prepare(planned: PlanEntry[]): Promise<void> {
    await pingRedis(this.redis);
    this.startWatchdog();
    const r = new Redis({ ...connection(this.redis), maxRetriesPerRequest: 1 });
    let workers: Array<{ id: string; caps: string[] }> = [];
    try {
      const all = await r.hgetall(WORKERS_KEY);
      const now = Date.now();
      workers = Object.entries(all)
        .map(([id, v]) => ({ id, ...(JSON.parse(v) as { caps: string[]; seen: number }) }))
        .filter((w) => now - w.seen < 3 * HEARTBEAT_MS);
    } finally {
      r.disconnect();
    }
    const todo = planned.filter((e) => e.status === 'build' && !this.local.has(e.part));
    if (todo.length && workers.length === 0) throw new KilnError(`no kiln worker is connected to ${this.redis.display} (start one with: kiln worker --farm ${this.redis.display} --remote-cache URL)`);
    for (const e of todo) {
      const part = this.project.parts.get(e.part)!;
      const inChroot = !!(part.recipe.options.chroot && part.options.get('chroot')?.trim());
      const tools = inChroot ? [] : (part.recipe.tools?.({ part: part.name, options: part.options, projectDir: this.project.projectDir, cacheDir: this.project.cacheDir }) ?? []);
      const need = partCapabilities(tools, inChroot);
      this.caps.set(part.name, need);
      if (!workers.some((w) => need.every((c) => w.caps.includes(c)))) {
        throw new KilnError(
          `part '${part.name}' needs a worker with capabilities ${need.join(', ')}; no connected worker has them (workers: ${workers.map((w) => `${w.id} [${w.caps.join(',') || 'none'}]`).join('; ')})`,
          ExitCode.MISSING_TOOL,
        );
      }
    }
  }

  /** The project directory (without out/, the cache, VCS data) as a reproducible tar in the cache. */
  private uploadProject(): Promise<{ sha256: string; size: number }> {
    this.projectBlob ??= (async () => {
      const p = this.project;
      const tmp = mkdtempSync(join(p.kilnDir, 'tmp', 'farm-project-'));
      try {
        const file = join(tmp, 'project.tar');
        const excludes: string[] = [];
        for (const d of [p.outDir, p.cacheDir]) {
          const rel = relative(p.projectDir, d);
          if (rel && !rel.startsWith('..')) excludes.push(`--exclude=./${rel}`);
        }
        await run(['tar', '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--exclude-vcs', ...excludes, '-cf', file, '-C', p.projectDir, '.']);
        const blob = { sha256: await hashFile(file), size: statSync(file).size };
        if (!(await this.remote.http.has('cas', blob.sha256))) await this.remote.http.put('cas', blob.sha256, { file });
        return blob;
      } finally {
        await rmrf(tmp);
      }
    })();
    return this.projectBlob;
  }

  private queueFor(caps: string[]) {
    const name = queueName(caps);
    let q = this.queues.get(name);
    if (!q) {
      // one pair per queue, also when parts ask for it concurrently
      const pair = { queue: new Queue(name, { connection: connection(this.redis) }), events: new QueueEvents(name, { connection: connection(this.redis) }) };
      pair.queue.on('error', () => undefined);
      pair.events.on('error', () => undefined);
      q = Promise.race([pair.events.waitUntilReady().then(() => pair), this.lost]);
      this.queues.set(name, q);
    }
    return q;
  }

  /** Make sure the dependencies of `part` are in the remote cache (those only this machine has are uploaded). */
  private async depsInCache(part: Part, store: Store): Promise<void> {
    for (const d of part.deps.keys()) {
      if (await this.remote.http.has('ac', this.remote.actionKey(d))) continue;
      const dep = this.project.parts.get(d)!;
      await this.remote.upload(dep, store);
      if (!(await this.remote.http.has('ac', this.remote.actionKey(d)))) throw new KilnError(`[${part.name}] dependency '${d}' could not be uploaded to the remote cache for the workers`);
    }
  }

  /** Build (or take from the remote cache) one part through the farm. */
  async handle(part: Part, entry: PlanEntry, store: Store): Promise<FarmOutcome> {
    const want = this.wanted.has(part.name);
    if (entry.remote) {
      if (!want || (await this.remote.restore(part, store))) return { built: false };
    }
    await this.depsInCache(part, store);
    const blob = await this.uploadProject();
    const data: FarmJobData = {
      part: part.name,
      actionKey: this.remote.actionKey(part.name),
      project: blob,
      config: relative(this.project.projectDir, this.project.configFile),
      overrides: this.opts.overrides,
      coordinator: this.id,
    };
    const { queue, events } = await this.queueFor(this.caps.get(part.name) ?? []);
    const job = await Promise.race([queue.add('build', data, { attempts: 1, removeOnComplete: 1000, removeOnFail: 1000 }), this.lost]);
    let result: FarmJobResult;
    try {
      result = (await Promise.race([job.waitUntilFinished(events), this.lost])) as FarmJobResult;
    } catch (e) {
      const msg = (e as Error).message;
      writeFileSync(join(this.project.logsDir, `${part.name}.log`), `# kiln: ${part.name} failed on a farm worker (job ${job.id})\n${msg}\n`);
      throw new KilnError(msg);
    }
    if (want && !(await this.remote.restore(part, store))) {
      throw new KilnError(`[${part.name}] built on ${result.worker}, but its outputs could not be restored from the remote cache (see the warning above)`);
    }
    return { built: true, worker: result.worker };
  }

  /** Built by the coordinator itself: its output embeds its location (Recipe.locationInOutput). */
  isLocal(part: string): boolean {
    return this.local.has(part);
  }

  isDownloaded(part: string): boolean {
    return this.wanted.has(part);
  }

  async close(): Promise<void> {
    clearInterval(this.watchdog);
    this.watch?.disconnect();
    const bounded = (p: Promise<unknown>) => Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 3_000).unref())]);
    for (const q of this.queues.values()) {
      const pair = await bounded(q) as { queue: Queue; events: QueueEvents } | undefined;
      if (!pair) continue;
      await bounded(pair.events.close());
      await bounded(pair.queue.close());
      // a Redis that is gone: stop the clients' reconnection loops, or the process never exits
      await bounded(pair.events.disconnect());
      await bounded(pair.queue.disconnect());
    }
  }
}
