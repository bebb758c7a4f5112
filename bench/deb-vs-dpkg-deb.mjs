#!/usr/bin/env node
// Benchmark: kiln's native .deb writer vs `dpkg-deb --build` on the same tree, same compression.
//
//   npx tsc -p tsconfig.json && node bench/deb-vs-dpkg-deb.mjs [--mb 200] [--files 10000] [--comp xz,gzip] [--runs 1]
//
// The tree (generated once, deterministic, cached in $TMPDIR/kiln-bench-deb-<mb>-<files>) holds
// files of varied sizes whose content mixes incompressible runs, zero runs, repeated tokens and
// text, so that xz works at a realistic pace. The tree is read once before timing (page cache warm
// for both tools). dpkg-deb gets DEBIAN/control and a precomputed DEBIAN/md5sums (not timed), while
// kiln's time includes computing md5sums: the comparison is conservative for kiln.
// Prints wall time of each and the ratio dpkg-deb / kiln (> 1: kiln faster), and whether the
// uncompressed data.tar and the compressed data member are byte-identical.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { writeDeb } = await import(join(here, '..', 'dist', 'pkg', 'deb.js'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const MB = Number(opt('mb', '200'));
const FILES = Number(opt('files', '10000'));
const COMPS = opt('comp', 'xz,gzip').split(',');
const RUNS = Number(opt('runs', '1'));
const SDE = 1700000000;

// deterministic PRNG (xorshift32)
let seed = 0x9e3779b9;
const rnd = () => {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 0x100000000;
};
const TOKENS = ['mov eax, ebx\n', 'call printf@plt\n', 'push rbp\n', 'ret\n', 'static int ', 'return 0;\n', '#include <stdio.h>\n', '\tif (err) goto out;\n'];
const WORDS = Array.from({ length: 2000 }, () => Array.from({ length: 2 + Math.floor(rnd() * 8) }, () => String.fromCharCode(97 + Math.floor(rnd() * 26))).join(''));

function content(size) {
  const b = Buffer.alloc(size);
  let o = 0;
  while (o < size) {
    const k = rnd();
    let n = 32 + Math.floor(rnd() * 480);
    if (o + n > size) n = size - o;
    if (k < 0.3) for (let i = 0; i < n; i++) b[o + i] = (rnd() * 256) | 0; // incompressible
    else if (k < 0.5) b.fill(0, o, o + n); // zero runs (padding, bss)
    else if (k < 0.75) {
      let s = '';
      while (s.length < n) s += TOKENS[(rnd() * TOKENS.length) | 0];
      b.write(s.slice(0, n), o, 'latin1');
    } else {
      let s = '';
      while (s.length < n) s += WORDS[(rnd() * WORDS.length) | 0] + (rnd() < 0.1 ? '\n' : ' ');
      b.write(s.slice(0, n), o, 'latin1');
    }
    o += n;
  }
  return b;
}

const root = join(process.env.TMPDIR || tmpdir(), `kiln-bench-deb-${MB}-${FILES}`);
const tree = join(root, 'tree');
const stamp = join(root, '.complete');
if (!existsSync(stamp)) {
  rmSync(root, { recursive: true, force: true });
  console.log(`generating ${FILES} files, ${MB} MB in ${tree} ...`);
  const total = MB * 1e6;
  // sizes: skewed (many small files, a few large), scaled to the total
  const w = Array.from({ length: FILES }, () => Math.exp(rnd() * 6));
  const sum = w.reduce((a, b) => a + b, 0);
  const sizes = w.map((x) => Math.max(0, Math.round((x / sum) * total)));
  const md5 = [];
  for (let i = 0; i < FILES; i++) {
    const rel = `usr/lib/bench/d${String(i % 100).padStart(2, '0')}/s${String(Math.floor(i / 1000))}/f${String(i).padStart(5, '0')}.bin`;
    mkdirSync(join(tree, dirname(rel)), { recursive: true });
    const c = content(sizes[i]);
    writeFileSync(join(tree, rel), c);
    md5.push([rel, createHash('md5').update(c).digest('hex')]);
  }
  mkdirSync(join(tree, 'DEBIAN'), { recursive: true });
  writeFileSync(join(tree, 'DEBIAN', 'control'), 'Package: kiln-bench\nVersion: 1.0\nArchitecture: all\nMaintainer: Kiln Bench <bench@example.invalid>\nDescription: benchmark payload\n');
  md5.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  writeFileSync(join(tree, 'DEBIAN', 'md5sums'), md5.map(([p, h]) => `${h}  ${p}\n`).join(''));
  writeFileSync(stamp, '');
}

// manifest for kiln, and warm the page cache for both tools
const files = [];
let bytes = 0;
(function walk(rel) {
  for (const name of readdirSync(join(tree, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    if (r === 'DEBIAN') continue;
    const st = statSync(join(tree, r));
    if (st.isDirectory()) walk(r);
    else {
      files.push({ path: '/' + r, type: 'file', source: join(tree, r) });
      bytes += st.size;
      readFileSync(join(tree, r));
    }
  }
})('');
console.log(`tree: ${files.length} files, ${(bytes / 1e6).toFixed(1)} MB; ${RUNS} run(s) each`);

const out = join(root, 'out');
mkdirSync(out, { recursive: true });
const ext = { xz: '.xz', gzip: '.gz', zstd: '.zst', none: '' };
const results = [];
for (const comp of COMPS) {
  const tk = [];
  const td = [];
  for (let r = 0; r < RUNS; r++) {
    let t = process.hrtime.bigint();
    const res = await writeDeb({ name: 'kiln-bench', version: '1.0', architecture: 'all', maintainer: 'Kiln Bench <bench@example.invalid>', description: 'benchmark payload', files, compression: comp, sourceDateEpoch: SDE }, join(out, `kiln-${comp}.deb`));
    tk.push(Number(process.hrtime.bigint() - t) / 1e9);
    t = process.hrtime.bigint();
    const p = spawnSync('dpkg-deb', ['--root-owner-group', `-Z${comp}`, '--build', tree, join(out, `dpkg-${comp}.deb`)], { env: { ...process.env, SOURCE_DATE_EPOCH: String(SDE) }, stdio: ['ignore', 'ignore', 'inherit'] });
    td.push(Number(process.hrtime.bigint() - t) / 1e9);
    if (p.status !== 0) throw new Error('dpkg-deb failed');
    if (r === 0) console.log(`  ${comp}: kiln ${res.size} bytes, dpkg-deb ${statSync(join(out, `dpkg-${comp}.deb`)).size} bytes`);
  }
  const member = (f) => execFileSync('ar', ['p', f, `data.tar${ext[comp]}`], { maxBuffer: 1 << 30 });
  const tarOf = (f) => createHash('sha256').update(execFileSync('dpkg-deb', ['--fsys-tarfile', f], { maxBuffer: 1 << 30 })).digest('hex');
  const sameTar = tarOf(join(out, `kiln-${comp}.deb`)) === tarOf(join(out, `dpkg-${comp}.deb`));
  const sameMember = Buffer.compare(member(join(out, `kiln-${comp}.deb`)), member(join(out, `dpkg-${comp}.deb`))) === 0;
  const best = (a) => Math.min(...a);
  results.push({ comp, kiln: best(tk), dpkg: best(td), sameTar, sameMember });
  console.log(`  ${comp}: kiln ${best(tk).toFixed(2)} s, dpkg-deb ${best(td).toFixed(2)} s, ratio dpkg-deb/kiln ${(best(td) / best(tk)).toFixed(2)}; data.tar identical: ${sameTar}; data.tar${ext[comp]} identical: ${sameMember}`);
}
console.log(JSON.stringify({ mb: MB, files: FILES, results }));
