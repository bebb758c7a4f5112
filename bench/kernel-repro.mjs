#!/usr/bin/env node
// Reproducibility of kiln:kernel across build directories, at the cost of one extra cold compile.
// Build 1: a project in one temporary directory extending test/fixtures/kernel/kernel.cfg (the test
// kernel, a shared part: restored from the kiln cache when test/kernel.test.ts or an earlier run
// built it, else compiled here). Build 2: a project in another temporary directory extending the
// same file with `[kernel] shared = false`: an ordinary part, compiled again from scratch in its
// own work directory (same key and chroot: shared parts restored from the cache). Every .deb and
// .rpm of both is compared byte for byte (sha256). Prints each build's wall time and kiln's CPU
// (the containers' CPU is not a child of kiln: see docs/benchmarks.md); exit 1 when a package differs.
// Usage: npm run build && node bench/kernel-repro.mjs
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const cfg = join(root, 'test/fixtures/kernel/kernel.cfg');
const env = { ...process.env, KILN_CACHE_DIR: process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache/kiln') };

function build(name, extra) {
  const dir = mkdtempSync(join(tmpdir(), `kiln-kernel-repro-${name}-`));
  writeFileSync(join(dir, 'buildout.cfg'), `[buildout]\nextends = ${cfg}\nparts = kernel\n${extra}`);
  const t0 = Date.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', process.execPath, join(root, 'bin/kiln.js'), 'build', '-j2'], { cwd: dir, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8', env });
  const secs = (Date.now() - t0) / 1000;
  const [u, s] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    process.exit(r.status ?? 1);
  }
  const state = JSON.parse(readFileSync(join(dir, 'out/.kiln/state.json'), 'utf8'));
  const part = realpathSync(state.parts.kernel.location);
  console.log(`build ${name} in ${dir}: ${secs.toFixed(0)} s wall, kiln process ${(u + s).toFixed(1)} s CPU; packages in ${part}`);
  return part;
}

const a = build('1', '');
const b = build('2', '\n[kernel]\nshared = false\n');
if (a === b) throw new Error('the second build restored the first: not a rebuild');
const sha = (f) => createHash('sha256').update(readFileSync(f)).digest('hex');
let differ = 0;
const pk = (d) => readdirSync(d).filter((x) => /\.(deb|rpm)$/.test(x)).sort();
if (JSON.stringify(pk(a)) !== JSON.stringify(pk(b))) {
  console.log(`DIFFERENT package sets: ${pk(a).join(' ')} / ${pk(b).join(' ')}`);
  differ++;
}
for (const f of pk(a)) {
  const x = sha(join(a, f));
  const y = sha(join(b, f));
  console.log(`${x === y ? 'identical' : 'DIFFERENT'} ${f} ${x.slice(0, 16)} ${y.slice(0, 16)}`);
  if (x !== y) differ++;
}
process.exit(differ ? 1 : 0);
