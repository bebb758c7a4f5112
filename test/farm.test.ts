// The build farm with real servers: Debian's redis-server and nginx (WebDAV, the remote cache) on
// free 127.0.0.1 ports, workers as separate `kiln worker` processes with their own working and
// cache directories (stand-ins for machines), a coordinator `kiln build --farm`.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { snapshot, startRedis, startWorker, stopWorker, type W } from './helpers/farm.js';
import { kilnP, parts, project } from './helpers/kiln.js';
import { startNginx, type Nginx } from './helpers/nginx.js';

const CFG = `[buildout]
parts = c

[a]
recipe = kiln:command
command = mkdir -p "$OUT/d" && for i in $(seq 1 30); do echo "a $i" > "$OUT/d/f$i"; done && head -c 100000 /dev/zero | tr '\\0' a > "$OUT/big"

[b]
recipe = kiln:command
slow = 0
command = sleep "$KILN_OPT_SLOW" && echo "b $KILN_PART" > "$OUT/b.txt"

[c]
recipe = kiln:command
a = \${a:location}
b = \${b:location}
command = cat "$KILN_OPT_A/d/f7" "$KILN_OPT_B/b.txt" > "$OUT/c.txt" && cp "$KILN_OPT_A/big" "$OUT/"
`;

describe('build farm: BullMQ on redis-server, nginx as the remote cache', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let ng: Nginx;
  let workers: W[] = [];
  let reference: Record<string, string>;
  beforeAll(async () => {
    redis = await startRedis();
    ng = await startNginx();
    workers = await Promise.all([0, 1].map(() => startWorker(redis.url, ng.url, [], { KILN_FARM_LOCK_MS: '4000' })));
    const local = project({ 'buildout.cfg': CFG });
    const r = await kilnP(local.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    reference = snapshot(local.dir);
  }, 120_000);
  afterAll(async () => {
    for (const w of workers) await stopWorker(w);
    await ng?.stop();
    await redis?.stop();
  });

  test('the coordinator hands every part to the workers; the target comes back byte-identical', async () => {
    const p = project({ 'buildout.cfg': CFG });
    const r = await kilnP(p.dir, ['build', '--json', '--farm', redis.url, '--remote-cache', ng.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(parts(r, 'part-done')).toEqual(['a', 'b', 'c']);
    for (const e of r.events.filter((e) => e.type === 'part-done')) expect(e.worker).toMatch(/:\d+$/);
    // --download targets (the default): only c is in out/parts
    expect(readdirSync(join(p.dir, 'out/parts'))).toEqual(['c']);
    expect(snapshot(p.dir)).toEqual(Object.fromEntries(Object.entries(reference).filter(([k]) => k.startsWith('c/'))));
    expect(workers.map((w) => w.log).join('')).toMatch(/job \S+: c done/);
    // rerunning the coordinator builds nothing: everything is in the cache
    const again = project({ 'buildout.cfg': CFG });
    const r2 = await kilnP(again.dir, ['build', '--json', '--farm', redis.url, '--remote-cache', ng.url, '--download', 'all']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(parts(r2, 'part-done')).toEqual([]);
    expect(snapshot(again.dir)).toEqual(reference);
  });

  test('a worker killed with -9 mid-part: the job stalls, another worker takes it, the build succeeds', async () => {
    const cfg = CFG.replace('slow = 0', 'slow = 6');
    const extra = await startWorker(redis.url, ng.url, [], { KILN_FARM_LOCK_MS: '4000' });
    workers.push(extra);
    const p = project({ 'buildout.cfg': cfg });
    const coord = kilnP(p.dir, ['build', '--json', '--farm', redis.url, '--remote-cache', ng.url, '--download', 'all']);
    // wait until some worker has taken b, then kill that worker
    let victim: W | undefined;
    for (let i = 0; i < 600 && !victim; i++) {
      victim = workers.find((w) => /job \S+: b \(from/.test(w.log));
      if (!victim) await new Promise((r) => setTimeout(r, 100));
    }
    expect(victim).toBeDefined();
    victim!.proc.kill('SIGKILL');
    const r = await coord;
    expect(r.code, r.stderr).toBe(0);
    const others = workers.filter((w) => w !== victim);
    expect(others.map((w) => w.log).join('')).toMatch(/job \S+: b done/);
    const snap = snapshot(p.dir);
    const ref = project({ 'buildout.cfg': cfg });
    expect((await kilnP(ref.dir, ['build'])).code).toBe(0);
    expect(snap).toEqual(snapshot(ref.dir));
    workers = others;
  }, 180_000);

  test('a part failing on a worker is reported like a local failure: exit 1, error, log tail in out/logs', async () => {
    const cfg = CFG.replace('command = sleep', 'command = echo "something broke" >&2 && exit 3 && sleep');
    const p = project({ 'buildout.cfg': cfg });
    const r = await kilnP(p.dir, ['build', '--json', '--farm', redis.url, '--remote-cache', ng.url]);
    expect(r.code).toBe(1);
    const failed = r.events.find((e) => e.type === 'part-failed')!;
    expect(failed.part).toBe('b');
    expect(failed.error).toMatch(/something broke/);
    expect(readFileSync(join(p.dir, 'out/logs/b.log'), 'utf8')).toMatch(/something broke/);
    expect(parts(r, 'part-skipped')).toEqual(['c']);
  });

  test('a part needing a capability no worker has is an error before anything is built', async () => {
    const cfg = CFG.replace('parts = c', 'parts = c dock') + '\n[dock]\nrecipe = kiln:command\nargv =\n  docker\n  info\n';
    const p = project({ 'buildout.cfg': cfg });
    const r = await kilnP(p.dir, ['build', '--json', '--farm', redis.url, '--remote-cache', ng.url]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/part 'dock' needs a worker with capabilities docker/);
    expect(parts(r, 'part-start')).toEqual([]);
  });

  test('Redis unreachable: a clear error, exit 1, nothing in out/parts', async () => {
    const p = project({ 'buildout.cfg': CFG.replace('seq 1 30', 'seq 1 31') });
    const r = await kilnP(p.dir, ['build', '--farm', 'redis://127.0.0.1:9', '--remote-cache', ng.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach the farm's Redis at redis:\/\/127\.0\.0\.1:9/);
    expect(existsSync(join(p.dir, 'out/parts'))).toBe(false);
  });

  test('--farm without a remote cache is a usage error', async () => {
    const p = project({ 'buildout.cfg': CFG });
    const r = await kilnP(p.dir, ['build', '--farm', redis.url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--farm needs a remote cache/);
  });
});

describe('build farm: Redis stopped mid-build', () => {
  test('a clear error, exit 1, nothing half-built in out/', async () => {
    const redis = await startRedis();
    const ng = await startNginx();
    const w = await startWorker(redis.url, ng.url);
    try {
      const p = project({ 'buildout.cfg': CFG.replace('slow = 0', 'slow = 15').replace('seq 1 30', 'seq 1 29') });
      const coord = kilnP(p.dir, ['build', '--json', '--farm', redis.url, '--remote-cache', ng.url]);
      for (let i = 0; i < 600 && !/job \S+: b \(from/.test(w.log); i++) await new Promise((r) => setTimeout(r, 100));
      expect(w.log).toMatch(/job \S+: b \(from/);
      await redis.stop();
      const r = await coord;
      expect(r.code).toBe(1);
      const errors = r.events.filter((e) => e.type === 'part-failed').map((e) => `${e.part}: ${e.error}`);
      expect(errors.join('\n')).toMatch(/b: lost the farm's Redis at redis:\/\/127\.0\.0\.1:\d+/);
      expect(existsSync(join(p.dir, 'out/parts/c'))).toBe(false);
      expect(parts(r, 'part-done')).not.toContain('c');
    } finally {
      await stopWorker(w);
      await ng.stop();
      await redis.stop();
    }
  }, 120_000);
});
