#!/usr/bin/env node
// Benchmark: scaling of the build farm. A graph of N sleep-bound parts (each sleeps S seconds;
// every 10th part depends on the previous 10th) built through `kiln build --farm` by 1 and then 3
// workers (separate `kiln worker` processes, -j1 each, their own working and cache directories),
// with redis-server and nginx (WebDAV, the remote cache) on 127.0.0.1. A fresh project per run.
// Usage: node bench/remote-farm.mjs [N] [S]     (the full size: 500 parts)
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KILN, kiln, machine, nginx, waitForPort } from './remote-lib.mjs';

const N = Number(process.argv[2] ?? 500);
const S = Number(process.argv[3] ?? 1);
const port = 20000 + Math.floor(Math.random() * 20000);
const rdir = mkdtempSync(join(tmpdir(), 'kiln-bench-redis-'));
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', rdir], { stdio: 'ignore' });
await waitForPort(port, 'redis-server');
const farm = `redis://127.0.0.1:${port}`;
const ng = await nginx();

const cfg = (salt) => {
  let c = `[buildout]\nparts = ${Array.from({ length: N }, (_, i) => `p${i}`).join(' ')}\n`;
  for (let i = 0; i < N; i++) {
    const dep = i % 10 === 0 && i > 0 ? `dep = \${p${i - 10}:location}\n` : '';
    c += `\n[p${i}]\nrecipe = kiln:command\nsalt = ${salt}\n${dep}command = sleep ${S} && echo ${i} > "$OUT/out.txt"\n`;
  }
  return c;
};
const startWorker = () =>
  new Promise((resolve, reject) => {
    const d = mkdtempSync(join(tmpdir(), 'kiln-bench-w-'));
    const p = spawn(process.execPath, [KILN, 'worker', '--farm', farm, '--remote-cache', ng.url, '--work', join(d, 'work'), '--cache', join(d, 'cache'), '-j', '1'], { cwd: d, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    p.stderr.on('data', (b) => {
      log += b;
      if (log.includes(' on redis://')) resolve(p);
    });
    p.on('exit', (c) => reject(new Error(`worker exited ${c}: ${log}`)));
  });
const stop = (p) => new Promise((r) => (p.exitCode !== null ? r() : (p.on('exit', r), p.kill('SIGTERM'))));

const workers = [];
try {
  for (const n of [1, 3]) {
    while (workers.length < n) workers.push(await startWorker());
    const m = machine(cfg(`w${n}-${Date.now()}`));
    const r = kiln(m, ['build', '--farm', farm, '--remote-cache', ng.url, '-j', String(3 * n), '--download', 'none']);
    if (r.built !== N) throw new Error(`built ${r.built} of ${N}`);
    console.log(`${N} parts × sleep ${S}s, ${n} worker(s): ${r.seconds.toFixed(1)} s (${(r.seconds / N).toFixed(2)} s a part; ${r.summary})`);
  }
} finally {
  for (const w of workers) await stop(w);
  await ng.stop();
  await new Promise((r) => (redis.on('exit', r), redis.kill('SIGTERM')));
}
