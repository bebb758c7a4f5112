#!/usr/bin/env node
// kiln:kernel's packaging step alone (packageKernel: linux-image + linux-headers .debs, kernel +
// kernel-devel .rpms, xz) on the trees of a built kernel part (image/ and headers/ of a kiln:kernel
// output), RUNS times, median wall and CPU seconds, and a check that every run's packages are
// byte-identical (the reproducibility of the packaging step; the compile's is measured by
// building the kernel part in two projects with separate caches and comparing, see docs/kernel.md).
// With KERNEL_TREE=DIR (a built kernel tree, e.g. kept from a kiln:kernel work directory) it also
// times `make bindeb-pkg` on that tree (which relinks nothing once built, then packages).
// Usage: npm run build && node bench/kernel-packaging.mjs KERNEL-PART-DIR [RUNS]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageKernel } from '../dist/kinds/kernel.js';

const partDir = process.argv[2];
const runs = Number(process.argv[3] ?? 3);
if (!partDir) {
  console.error('usage: node bench/kernel-packaging.mjs KERNEL-PART-DIR [RUNS]');
  process.exit(2);
}
const k = JSON.parse(readFileSync(join(partDir, 'kernel.json'), 'utf8'));
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const walls = [];
const cpus = [];
let first;
for (let i = 0; i < runs; i++) {
  const out = mkdtempSync(join(tmpdir(), 'kiln-kpkg-bench-'));
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await packageKernel({ img: join(partDir, 'image'), hdr: join(partDir, 'headers'), release: k.release, out, sourceDateEpoch: 1700000000, revision: '1', maintainer: 'kiln kernel builder <kernel@kiln.invalid>', formats: ['deb', 'rpm'], buildHost: 'kiln-build', sourceName: 'linux-source-6.1.tar.xz', part: 'kernel' });
  walls.push(Number(process.hrtime.bigint() - t0) / 1e9);
  const c = process.cpuUsage(c0);
  cpus.push((c.user + c.system) / 1e6);
  const sums = Object.fromEntries(readdirSync(out).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(out, f))).digest('hex')]));
  if (!first) first = sums;
  else if (JSON.stringify(first) !== JSON.stringify(sums)) throw new Error(`run ${i + 1}: packages differ from run 1`);
  rmSync(out, { recursive: true, force: true });
}
console.log(`kiln packageKernel (${k.release}): ${Object.keys(first).join(', ')}`);
console.log(`  runs ${runs}, median wall ${median(walls).toFixed(2)} s, median CPU (node process, xz children not counted) ${median(cpus).toFixed(2)} s; identical bytes in every run`);
if (process.env.KERNEL_TREE) {
  const t0 = process.hrtime.bigint();
  execFileSync('make', ['-C', process.env.KERNEL_TREE, `-j${process.env.JOBS ?? 2}`, 'bindeb-pkg'], { stdio: 'inherit' });
  console.log(`make bindeb-pkg: ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(2)} s wall`);
}
