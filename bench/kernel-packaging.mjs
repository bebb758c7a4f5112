#!/usr/bin/env node
// kiln:kernel's packaging step alone (packageKernel: linux-image + linux-headers .debs, kernel +
// kernel-devel .rpms, xz) on the trees of a built kernel part (image/ and headers/ of a kiln:kernel
// output), RUNS times: median wall and CPU seconds (this process and its children, e.g. xz), and a
// check that every run's packages are byte-identical (the reproducibility of the packaging step).
// With KERNEL_TREE=DIR (a tree compiled in place with the same source, patches, config and
// KBUILD_BUILD_* values: a copied tree recompiles) it also runs the kernel's own `make bindeb-pkg`
// on that tree (DPKG_FLAGS=-d: the build dependencies are in the chroot, not checked on the host),
// times it (wall, CPU of make and its children) and prints the packages it made (names, sizes,
// control fields) next to kiln's: file lists (counts and what only one side has) and maintainer scripts.
// Usage: npm run build && node bench/kernel-packaging.mjs KERNEL-PART-DIR [RUNS]
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { packageKernel } from '../dist/kinds/kernel.js';

const partDir = process.argv[2];
const runs = Number(process.argv[3] ?? 3);
if (!partDir) {
  console.error('usage: node bench/kernel-packaging.mjs KERNEL-PART-DIR [RUNS]');
  process.exit(2);
}
const k = JSON.parse(readFileSync(join(partDir, 'kernel.json'), 'utf8'));
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
/** user+system CPU seconds of this process and its waited-for children (/proc/self/stat) */
const cpuAll = () => {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
};
const count = (deb) => execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8', maxBuffer: 256 << 20 }).split('\n').filter(Boolean).length;
const walls = [];
const cpus = [];
let first;
let kept;
for (let i = 0; i < runs; i++) {
  const out = mkdtempSync(join(tmpdir(), 'kiln-kpkg-bench-'));
  const c0 = cpuAll();
  const t0 = process.hrtime.bigint();
  await packageKernel({ img: join(partDir, 'image'), hdr: join(partDir, 'headers'), release: k.release, out, sourceDateEpoch: 1704067200, revision: '1', maintainer: 'kiln kernel builder <kernel@kiln.invalid>', formats: ['deb', 'rpm'], buildHost: 'kiln-build', sourceName: 'linux-source-6.1.tar.xz', part: 'kernel' });
  walls.push(Number(process.hrtime.bigint() - t0) / 1e9);
  cpus.push(cpuAll() - c0);
  const sums = Object.fromEntries(readdirSync(out).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(out, f))).digest('hex')]));
  if (!first) first = sums;
  else if (JSON.stringify(first) !== JSON.stringify(sums)) throw new Error(`run ${i + 1}: packages differ from run 1`);
  if (i === runs - 1) kept = out;
  else rmSync(out, { recursive: true, force: true });
}
console.log(`kiln packageKernel (${k.release}), ${runs} runs: median wall ${median(walls).toFixed(1)} s, median CPU (incl. children) ${median(cpus).toFixed(1)} s; identical bytes in every run`);
for (const f of Object.keys(first)) console.log(`  ${f}  ${(statSync(join(kept, f)).size / 1e6).toFixed(1)} MB${f.endsWith('.deb') ? `, ${count(join(kept, f))} entries` : ''}`);
const kilnDebs = Object.keys(first).filter((f) => f.endsWith('.deb')).map((f) => join(kept, f));
if (process.env.KERNEL_TREE) {
  const tree = process.env.KERNEL_TREE;
  const parent = dirname(tree);
  const before = new Set(readdirSync(parent));
  const env = { ...process.env, ARCH: 'x86_64', KBUILD_BUILD_TIMESTAMP: 'Mon, 01 Jan 2024 00:00:00 +0000', KBUILD_BUILD_USER: 'kiln', KBUILD_BUILD_HOST: 'kiln-build', KBUILD_BUILD_VERSION: '1', LOCALVERSION: '', SOURCE_DATE_EPOCH: '1704067200' };
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', 'make', '-C', tree, `-j${process.env.JOBS ?? 2}`, 'bindeb-pkg', 'DPKG_FLAGS=-d'], { env, encoding: 'utf8', maxBuffer: 256 << 20 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`make bindeb-pkg failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  const [, u, s] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  console.log(`make bindeb-pkg on the same tree: ${wall.toFixed(1)} s wall, ${(u + s).toFixed(1)} s CPU (make and children)`);
  for (const f of readdirSync(parent).filter((x) => !before.has(x) && /\.(deb|buildinfo|changes)$/.test(x)).sort()) {
    const p = join(parent, f);
    console.log(`  ${f}  ${(statSync(p).size / 1e6).toFixed(1)} MB${f.endsWith('.deb') ? `, ${count(p)} entries` : ''}`);
    if (f.endsWith('.deb')) console.log(execFileSync('dpkg-deb', ['-f', p, 'Package', 'Version', 'Source', 'Maintainer', 'Section', 'Provides', 'Suggests', 'Depends'], { encoding: 'utf8' }).replace(/^/gm, '    ').trimEnd());
    // the same package of kiln's (by name): file lists and maintainer scripts compared
    const name = f.split('_')[0];
    const mine = kilnDebs.find((d) => d.split('/').pop().split('_')[0] === name);
    if (!f.endsWith('.deb') || !mine) continue;
    const files = (deb) => new Set(execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -t', 'x', deb], { encoding: 'utf8', maxBuffer: 256 << 20 }).split('\n').filter(Boolean).map((x) => x.replace(/\/$/, '')));
    const a = files(p);
    const b = files(mine);
    const onlyA = [...a].filter((x) => !b.has(x)).sort();
    const onlyB = [...b].filter((x) => !a.has(x)).sort();
    console.log(`    files: bindeb-pkg ${a.size}, kiln ${b.size}; only in bindeb-pkg ${onlyA.length}${onlyA.length ? ` (${onlyA.slice(0, 8).join(' ')}${onlyA.length > 8 ? ' ...' : ''})` : ''}; only in kiln ${onlyB.length}${onlyB.length ? ` (${onlyB.slice(0, 8).join(' ')}${onlyB.length > 8 ? ' ...' : ''})` : ''}`);
    const scripts = (deb) => {
      const x = mkdtempSync(join(tmpdir(), 'kiln-kpkg-ctl-'));
      execFileSync('dpkg-deb', ['-e', deb, x]);
      const r = readdirSync(x).filter((n) => /^(pre|post)(inst|rm)$/.test(n)).sort();
      rmSync(x, { recursive: true, force: true });
      return r.join(' ') || '-';
    };
    console.log(`    maintainer scripts: bindeb-pkg ${scripts(p)}; kiln ${scripts(mine)}`);
  }
}
rmSync(kept, { recursive: true, force: true });
