// The example distribution (recipes/distribution.cfg) through the build farm, one build shared by
// the checks: three `kiln worker` processes (docker, root) on redis-server, nginx (WebDAV) as the
// remote cache; a worker is killed with -9 while it builds `hello`; the farm's artifacts equal a
// local build's; a fresh machine (new project directory, out/ and cache) restores everything from
// the remote cache, builds nothing, gets the same bytes and passes `kiln verify`.
//
// The workers share the user's kiln cache (downloads, mmdebstrap chroots) as the example test
// does: separate caches would download and bootstrap Debian three times on the CI's 2 cores.
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { snapshot, startRedis, startWorker, stopWorker, type W } from './helpers/farm.js';
import { kilnP, parts } from './helpers/kiln.js';
import { startNginx, type Nginx } from './helpers/nginx.js';

const root = join(import.meta.dirname, '..');
const userCache = join(process.env.HOME ?? '/root', '.cache', 'kiln');

/** a copy of recipes/ in a new directory: another "machine" keeps the project elsewhere */
function checkout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-farm-example-'));
  cpSync(join(root, 'recipes'), join(dir, 'recipes'), { recursive: true });
  return dir;
}
// test durations in JUnit reports differ between any two runs; everything else must not
const noDurations = (path: string, b: Buffer) => (/\/test-results\/[^/]+\.xml$/.test(path) ? Buffer.from(b.toString('utf8').replace(/ time="[0-9.]+"/g, '')) : b);

let redis: Awaited<ReturnType<typeof startRedis>>;
let ng: Nginx;
let workers: W[] = [];
beforeAll(async () => {
  redis = await startRedis();
  ng = await startNginx();
  workers = await Promise.all([0, 1, 2].map(() => startWorker(redis.url, ng.url, ['--capabilities', 'docker,root', '--cache', userCache], { KILN_FARM_LOCK_MS: '5000' })));
}, 120_000);
afterAll(async () => {
  for (const w of workers) await stopWorker(w);
  await ng?.stop();
  await redis?.stop();
});

test('the example distribution: farm (a worker killed -9 mid-part) = local build; a fresh machine restores it all, builds 0 parts, verifies', async () => {
  const proj = checkout();
  const cfg = join(proj, 'recipes', 'distribution.cfg');
  const cache = { KILN_CACHE_DIR: userCache };
  // one out/ path for the three builds, outside the project (the farm's project snapshot holds no
  // out/): kiln.sources and kiln.repo name their repository's location, so the builds compared
  // are made at the same path, as nightly CI machines do
  const out = join(mkdtempSync(join(tmpdir(), 'kiln-farm-example-outs-')), 'out');
  const snap = () => snapshot(dirname(out), 'out', noDurations);
  // the reference: a local build
  const local = await kilnP(proj, ['build', '-c', cfg, '-o', out, '--json'], cache);
  expect(local.code, local.stderr).toBe(0);
  expect(parts(local, 'part-done')).toContain('hello');
  const reference = snap();
  expect(Object.keys(reference).length).toBeGreaterThan(20);
  rmSync(out, { recursive: true, force: true });

  // through the farm, from a new out/ and cache
  const farm = kilnP(proj, ['build', '-c', cfg, '-o', out, '--farm', redis.url, '--remote-cache', ng.url, '--download', 'all', '--json'], { KILN_CACHE_DIR: mkdtempSync(join(tmpdir(), 'kiln-coord-cache-')) });
  let victim: W | undefined;
  for (let i = 0; i < 6000 && !victim; i++) {
    victim = workers.find((w) => /job \S+: hello \(from/.test(w.log));
    if (!victim) await new Promise((r) => setTimeout(r, 100));
  }
  expect(victim, workers.map((w) => w.log).join('\n')).toBeDefined();
  await new Promise((r) => setTimeout(r, 2000)); // inside the part's build
  victim!.proc.kill('SIGKILL');
  const f = await farm;
  expect(f.code, f.stderr + workers.map((w) => w.log).join('\n')).toBe(0);
  const done = f.events.filter((e) => e.type === 'part-done');
  const byWorker = done.filter((e) => e.worker).map((e) => e.part as string).sort();
  expect(byWorker).toEqual(expect.arrayContaining(['archive-key', 'bookworm', 'buildenv', 'hello', 'hello-bin', 'hello-container-test', 'hello-extras', 'hello-smoke']));
  // the repositories name their location: built on the coordinator
  expect(done.filter((e) => !e.worker).map((e) => e.part as string).sort()).toEqual(['apt-repository', 'rpm-repository']);
  const others = workers.filter((w) => w !== victim);
  expect(others.map((w) => w.log).join('')).toMatch(/job \S+: hello done/);
  workers = others;
  const farmSnap = snap();
  expect(farmSnap).toEqual(reference);
  rmSync(out, { recursive: true, force: true });

  // a fresh machine: another project directory, a new out/ and an empty cache, only the remote cache
  const fresh = checkout();
  const env = { KILN_CACHE_DIR: mkdtempSync(join(tmpdir(), 'kiln-fresh-cache-')) };
  const fcfg = join(fresh, 'recipes', 'distribution.cfg');
  const plan = await kilnP(fresh, ['plan', '-c', fcfg, '-o', out, '--remote-cache', ng.url], env);
  expect(plan.stdout).toMatch(/hello \(\S+\) restore \(remote\)/);
  expect(plan.stdout).toMatch(/\b0 of \d+ parts to build/);
  const r = await kilnP(fresh, ['build', '-c', fcfg, '-o', out, '--remote-cache', ng.url, '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  expect(parts(r, 'part-start')).toEqual([]);
  expect(r.stderr).not.toMatch(/warning/);
  expect(snap()).toEqual(farmSnap);
  const v = await kilnP(fresh, ['verify', '-c', fcfg, '-o', out], env);
  expect(v.code, v.stdout + v.stderr).toBe(0);
  // the release evidence says where the parts came from: restored, none built
  const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { parts: Array<{ name: string; status: string }> };
  expect(new Set(m.parts.map((p) => p.status))).toEqual(new Set(['restored']));
  // elsewhere, the repositories (which name their location) would be built, everything else restored
  const other = await kilnP(fresh, ['plan', '-c', fcfg, '-o', join(fresh, 'elsewhere'), '--remote-cache', ng.url], env);
  expect(other.stdout).toMatch(/\b2 of \d+ parts to build/);
  expect(other.stdout).toMatch(/apt-repository \(apt-repo\) build/);
}, 1_500_000);
