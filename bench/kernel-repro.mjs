#!/usr/bin/env node
// Reproducibility of kiln:kernel across build directories, at the cost of one extra compile: the
// test kernel (test/kernel.test.ts KERNEL_CFG, a shared part built under ~/.cache/kiln/shared) is
// built again as an ordinary part in a fresh project in another directory, with the same key file
// and the same chroot, and every .deb and .rpm is compared byte for byte (sha256). Prints the
// cold build time of the second build (wall) and the comparison; exit 1 when a package differs.
// Usage: npm run build && node bench/kernel-repro.mjs SHARED-KERNEL-PART-DIR
//   (SHARED-KERNEL-PART-DIR: realpath of out/parts/kernel of a project that built KERNEL_CFG)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ref = process.argv[2];
if (!ref) {
  console.error('usage: node bench/kernel-repro.mjs SHARED-KERNEL-PART-DIR');
  process.exit(2);
}
const root = join(dirname(new URL(import.meta.url).pathname), '..');
const key = join(realpathSync(join(ref, '..', '..', '..')), 'kkey');
const keyDir = readdirSync(key).map((d) => join(key, d, 'out')).find((d) => readdirSync(d).includes('signing_key.pem'));
const dir = mkdtempSync(join(tmpdir(), 'kiln-kernel-repro-'));
writeFileSync(
  join(dir, 'buildout.cfg'),
  `[buildout]
parts = kernel

[kbuild]
shared = true
recipe = kiln:chroot
variant = minbase
packages = gcc make bc flex bison libelf-dev libssl-dev openssl xz-utils patch kmod cpio dkms
image = true

[kernel]
recipe = kiln:kernel
source = /usr/src/linux-source-6.1.tar.xz
series = ${root}/recipes/kernel/patches/series
config-base = tinyconfig
config-fragments = ${root}/recipes/kernel/small.config
localversion = -kiln1
signing-key = ${keyDir}/signing_key.pem
chroot = \${kbuild:location}
`,
);
const t0 = Date.now();
const r = spawnSync(process.execPath, [join(root, 'bin/kiln.js'), 'build'], { cwd: dir, stdio: 'inherit', env: { ...process.env, KILN_CACHE_DIR: process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache/kiln') } });
const secs = (Date.now() - t0) / 1000;
if (r.status !== 0) process.exit(r.status ?? 1);
const part = realpathSync(join(dir, 'out/parts/kernel'));
const sha = (f) => createHash('sha256').update(readFileSync(f)).digest('hex');
let differ = 0;
for (const f of readdirSync(ref).filter((x) => /\.(deb|rpm)$/.test(x)).sort()) {
  const a = sha(join(ref, f));
  const b = sha(join(part, f));
  console.log(`${a === b ? 'identical' : 'DIFFERENT'} ${f} ${a.slice(0, 16)} ${b.slice(0, 16)}`);
  if (a !== b) differ++;
}
console.log(`second build in ${dir}: ${secs.toFixed(0)} s wall (cold compile; chroot from the cache)`);
process.exit(differ ? 1 : 0);
