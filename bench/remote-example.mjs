#!/usr/bin/env node
// Benchmark: the example distribution (recipes/distribution.cfg) on a fresh machine (another copy
// of recipes/, new out/ at the same path as CI's — kiln.sources and kiln.repo name their location —
// and an empty KILN_CACHE_DIR) from a warm remote cache (nginx WebDAV on 127.0.0.1), against a
// local build without remote cache. The local build uses the user's kiln cache (downloads and
// mmdebstrap chroots warm, as on a CI machine that built before): a really cold machine also
// bootstraps Debian twice.   Usage: node bench/remote-example.mjs
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KILN, nginx, parseSummary } from './remote-lib.mjs';

const root = join(import.meta.dirname, '..');
const userCache = join(process.env.HOME ?? '/root', '.cache', 'kiln');
const checkout = () => {
  const d = mkdtempSync(join(tmpdir(), 'kiln-bench-example-'));
  cpSync(join(root, 'recipes'), join(d, 'recipes'), { recursive: true });
  return d;
};
const out = join(mkdtempSync(join(tmpdir(), 'kiln-bench-example-out-')), 'out');
const run = (dir, args, cache) => {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [KILN, 'build', '-c', join(dir, 'recipes', 'distribution.cfg'), '-o', out, '--json', ...args], { cwd: dir, env: { ...process.env, KILN_CACHE_DIR: cache, CI: '1' }, encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`kiln build failed (${r.status}): ${r.stderr.slice(-3000)}`);
  const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  return { seconds, built: events.filter((e) => e.type === 'part-start').length, parts: events.find((e) => e.type === 'start').parts, summary: /remote cache: .*/.exec(r.stderr)?.[0] };
};

const ng = await nginx();
try {
  const ci = run(checkout(), ['--remote-cache', ng.url, '--remote-cache-mode', 'readwrite'], userCache);
  console.log(`CI build + upload: ${ci.seconds.toFixed(1)} s, ${ci.built} of ${ci.parts} parts built (${ci.summary})`);
  rmSync(out, { recursive: true, force: true });
  const local = run(checkout(), [], userCache);
  console.log(`local build, no remote cache (kiln cache warm): ${local.seconds.toFixed(1)} s, ${local.built} parts built`);
  rmSync(out, { recursive: true, force: true });
  const fresh = run(checkout(), ['--remote-cache', ng.url], mkdtempSync(join(tmpdir(), 'kiln-bench-example-cache-')));
  const t = parseSummary(fresh.summary);
  console.log(`fresh machine, warm remote cache: ${fresh.seconds.toFixed(1)} s, ${fresh.built} parts built, ${t.requests} requests, ${t.mbDown} MB down`);
} finally {
  await ng.stop();
}
