#!/usr/bin/env node
// Benchmark: kiln's native package writers against the distributions' own tools on one tree of
// 10,000 files (200 MiB, deterministic pseudo-random content, mixed sizes, about 40 % of the
// bytes compressible text, the rest random):
//   deb xz     writeDeb (xz)      vs  dpkg-deb --root-owner-group -Zxz -b
//   rpm xz     writeRpm (xz)      vs  rpmbuild -bb, _binary_payload w6.xzdio (xz level 6)
//   deb gzip   writeDeb (gzip)    vs  dpkg-deb --root-owner-group -Zgzip -b (level 9)
//   rpm gzip   writeRpm (gzip)    vs  rpmbuild -bb, _binary_payload w9.gzdio (gzip level 9)
// Each side is a whole process (node start-up and the directory walk included for kiln).
// rpmbuild packages a prepared build root (no %install, hard-linked copy of the tree made
// before each run, untimed), AutoReqProv off and no debuginfo, so it does what writeRpm does.
// Uses hyperfine when installed, else N runs and the median.
// Usage: npm run build && node bench/packaging.mjs [RUNS] [--keep]
//        (internal: node bench/packaging.mjs --one deb|rpm xz|gzip TREE OUT)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const SDE = 1704067200;
const dist = join(import.meta.dirname, '..', 'dist');

// ---- one packaging run (the process hyperfine times) ---------------------------------------
if (process.argv[2] === '--one') {
  const [, , , format, compression, tree, out] = process.argv;
  const files = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else files.push({ path: '/' + relative(tree, p), type: 'file', source: p });
    }
  };
  walk(join(tree, 'opt'));
  if (format === 'deb') {
    const { writeDeb } = await import(join(dist, 'pkg', 'deb.js'));
    await writeDeb({ name: 'bench', version: '1.0', architecture: 'all', maintainer: 'Bench <bench@example.org>', description: 'bench\n tree', files, compression, sourceDateEpoch: SDE }, out);
  } else {
    const { writeRpm } = await import(join(dist, 'pkg', 'rpm.js'));
    await writeRpm({ name: 'bench', version: '1.0', release: '1', arch: 'noarch', summary: 'bench', description: 'bench tree', license: 'MIT', files, compression, sourceDateEpoch: SDE, buildHost: 'kiln' }, out);
  }
  process.exit(0);
}

// ---- the tree ---------------------------------------------------------------------------------
const RUNS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 3);
const keep = process.argv.includes('--keep');
const FILES = 10_000;
const TOTAL = 200 * 1024 * 1024;

let s = 0x9e3779b9;
/** xorshift32: deterministic, fast */
const next = () => {
  s ^= s << 13;
  s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5;
  s >>>= 0;
  return s;
};
const rnd = () => next() / 2 ** 32;

const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-pkg-'));
const tree = join(dir, 'root');
console.log(`# work dir ${dir}`);

// sizes: mostly small files, some medium, a few large (log-uniform 64 B .. 4 MiB), scaled to TOTAL
const raw = Array.from({ length: FILES }, () => Math.exp(Math.log(64) + rnd() * (Math.log(4 * 1024 * 1024) - Math.log(64))));
const scale = TOTAL / raw.reduce((a, b) => a + b, 0);
const sizes = raw.map((x) => Math.max(1, Math.floor(x * scale)));
sizes[0] += TOTAL - sizes.reduce((a, b) => a + b, 0);

const WORDS = Array.from({ length: 512 }, () => Array.from({ length: 2 + (next() % 9) }, () => String.fromCharCode(97 + (next() % 26))).join(''));
function textContent(n) {
  const parts = [];
  let len = 0;
  while (len < n) {
    const w = WORDS[next() % WORDS.length] + ((next() & 15) === 0 ? '\n' : ' ');
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}
function randomContent(n) {
  const b = Buffer.allocUnsafe(n + 4);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(next(), i);
  return b.subarray(0, n);
}

const t0 = Date.now();
let textBytes = 0;
for (let i = 0; i < FILES; i++) {
  const d = join(tree, 'opt', 'bench', `d${String(i % 100).padStart(2, '0')}`);
  if (i < 100) mkdirSync(d, { recursive: true });
  const text = rnd() < 0.4;
  if (text) textBytes += sizes[i];
  writeFileSync(join(d, `f${String(i).padStart(5, '0')}${text ? '.txt' : '.bin'}`), text ? textContent(sizes[i]) : randomContent(sizes[i]));
}
console.log(`# tree: ${FILES} files, ${(TOTAL / 2 ** 20).toFixed(0)} MiB (${((100 * textBytes) / TOTAL).toFixed(0)} % text), written in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

// dpkg-deb needs DEBIAN/control in the tree; the kiln writers only read opt/
mkdirSync(join(tree, 'DEBIAN'));
writeFileSync(join(tree, 'DEBIAN', 'control'), 'Package: bench\nVersion: 1.0\nArchitecture: all\nMaintainer: Bench <bench@example.org>\nDescription: bench\n tree\n');

const spec = (payload) =>
  `Name: bench\nVersion: 1.0\nRelease: 1\nSummary: bench\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n` +
  `%define debug_package %{nil}\n%define _build_id_links none\n%define _binary_payload ${payload}\n\n%description\nbench tree\n\n%files\n/opt/bench\n`;
const out = join(dir, 'out');
const top = join(dir, 'rpmtop');
const broot = join(dir, 'buildroot');
mkdirSync(out);
for (const c of ['xz', 'gzip']) writeFileSync(join(dir, `bench-${c}.spec`), spec(c === 'xz' ? 'w6.xzdio' : 'w9.gzdio'));

const q = (x) => `'${x.replace(/'/g, `'\\''`)}'`;
const self = q(join(import.meta.dirname, 'packaging.mjs'));
const env = `SOURCE_DATE_EPOCH=${SDE}`;
const rpmbuild = (c) =>
  `${env} rpmbuild -bb --quiet --noclean --buildroot ${q(broot)} --define ${q(`_topdir ${top}`)} --define 'use_source_date_epoch_as_buildtime 1' --define 'clamp_mtime_to_source_date_epoch 1' --define '_buildhost kiln' ${q(join(dir, `bench-${c}.spec`))}`;
const prepareRpm = `rm -rf ${q(broot)} ${q(top)} && mkdir -p ${q(top)} && cp -al ${q(tree)} ${q(broot)} && rm -rf ${q(join(broot, 'DEBIAN'))}`;

const cases = [];
for (const c of ['xz', 'gzip']) {
  cases.push({ name: `deb ${c}`, kiln: `${env} ${q(process.execPath)} ${self} --one deb ${c} ${q(tree)} ${q(join(out, `kiln-${c}.deb`))}`, ref: `${env} dpkg-deb --root-owner-group -Z${c} -b ${q(tree)} ${q(join(out, `dpkg-${c}.deb`))} >/dev/null`, refName: `dpkg-deb -Z${c}`, kilnOut: join(out, `kiln-${c}.deb`), refOut: join(out, `dpkg-${c}.deb`) });
  cases.push({ name: `rpm ${c}`, kiln: `${env} ${q(process.execPath)} ${self} --one rpm ${c} ${q(tree)} ${q(join(out, `kiln-${c}.rpm`))}`, ref: rpmbuild(c), refName: `rpmbuild -bb (${c === 'xz' ? 'w6.xzdio' : 'w9.gzdio'})`, prepareRef: prepareRpm, kilnOut: join(out, `kiln-${c}.rpm`), refOut: join(top, 'RPMS', 'noarch', 'bench-1.0-1.noarch.rpm') });
}

const hasHyperfine = spawnSync('hyperfine', ['--version']).status === 0;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** { median, mean, user, system } seconds for one shell command */
function time(cmd, prepare) {
  if (hasHyperfine) {
    const json = join(dir, 'hf.json');
    const args = ['--runs', String(RUNS), '--export-json', json, '--style', 'none', '--shell', 'bash'];
    if (prepare) args.push('--prepare', prepare);
    execFileSync('hyperfine', [...args, cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
    const r = JSON.parse(readFileSync(json, 'utf8')).results[0];
    return { median: r.median, mean: r.mean, user: r.user, system: r.system };
  }
  const ts = [];
  for (let i = 0; i < RUNS; i++) {
    if (prepare) execFileSync('bash', ['-c', prepare]);
    const t = process.hrtime.bigint();
    execFileSync('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
    ts.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return { median: median(ts), mean: ts.reduce((a, b) => a + b, 0) / ts.length, user: NaN, system: NaN };
}

const MiB = (f) => (statSync(f).size / 2 ** 20).toFixed(1);
const rows = [];
for (const c of cases) {
  process.stderr.write(`# ${c.name}: kiln ...\n`);
  const k = time(c.kiln);
  process.stderr.write(`# ${c.name}: ${c.refName} ...\n`);
  const r = time(c.ref, c.prepareRef);
  rows.push({ ...c, k, r });
}

const cpu = (t) => (Number.isNaN(t.user) ? '' : ` (cpu ${(t.user + t.system).toFixed(1)})`);
console.log(`\n${hasHyperfine ? `hyperfine, ${RUNS} runs, median wall seconds (user+sys cpu seconds)` : `${RUNS} runs, median wall seconds`}; ratio = kiln / reference (< 1: kiln faster)\n`);
console.log('| case | kiln | reference | kiln s | reference s | ratio | kiln MiB | reference MiB |');
console.log('|---|---|---|---|---|---|---|---|');
for (const x of rows) {
  console.log(`| ${x.name} | ${x.name.startsWith('deb') ? 'writeDeb' : 'writeRpm'} | ${x.refName} | ${x.k.median.toFixed(2)}${cpu(x.k)} | ${x.r.median.toFixed(2)}${cpu(x.r)} | ${(x.k.median / x.r.median).toFixed(2)} | ${MiB(x.kilnOut)} | ${MiB(x.refOut)} |`);
}
// sanity: both sides packaged the same files
const debFiles = (f) => execFileSync('dpkg-deb', ['--contents', f], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').filter((l) => l.startsWith('-')).length;
const rpmFiles = (f) => execFileSync('rpm', ['-qlp', '--nosignature', f], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').filter((l) => l.includes('/f')).length;
const counts = rows.map((x) => (x.name.startsWith('deb') ? [debFiles(x.kilnOut), debFiles(x.refOut)] : [rpmFiles(x.kilnOut), rpmFiles(x.refOut)]));
console.log(`\nfiles in each package (kiln, reference): ${counts.map((c, i) => `${rows[i].name} ${c.join('/')}`).join(', ')}`);
if (!keep) rmSync(dir, { recursive: true, force: true });
