// Baseline for bench/engine-scale.mjs: the N commands of the graph run by a bare Node process,
// two at a time, spawned as kiln's run() spawns them (own process group, stdout/stderr piped).
// What any Node-based tool pays for N processes: on the 2-core VMs a Node spawn() (fork of a
// 60 MiB process, exec) costs 2-4 ms of the main thread, xargs' fork a fraction of that.
// Usage: node bench/lib/spawn-n.mjs N DIR
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const n = Number(process.argv[2]);
const dir = process.argv[3];
const one = (i) =>
  new Promise((resolve, reject) => {
    const out = join(dir, `p${i}`);
    mkdirSync(out, { recursive: true });
    const c = spawn('/bin/sh', ['-c', 'echo "$N x" > "$OUT/out.txt"'], { env: { ...process.env, N: String(i), OUT: out }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    c.stdout.on('data', () => {});
    c.stderr.on('data', () => {});
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
let next = 0;
const lane = async () => {
  while (next < n) await one(next++);
};
await Promise.all([lane(), lane()]);
