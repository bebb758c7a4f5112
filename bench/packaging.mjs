#!/usr/bin/env node
// The packaging benchmark (the only one: it replaces deb-vs-dpkg-deb.mjs and rpm-vs-rpmbuild.mjs).
// kiln's native package writers against the distributions' own tools on one tree of
// 10,000 files (200 MiB, deterministic pseudo-random content, mixed sizes, about 40 % of the
// bytes compressible text, the rest random), same compression and level on both sides:
//   deb-xz     writeDeb (xz -6)   vs  dpkg-deb --root-owner-group -Zxz -b
//   deb-gzip   writeDeb (gzip -9) vs  dpkg-deb -Zgzip
//   deb-zstd   writeDeb (zstd -3) vs  dpkg-deb -Zzstd
//   deb-none   writeDeb (none)    vs  dpkg-deb -Znone
//   rpm-xz     writeRpm (xz -6)   vs  rpmbuild -bb, _binary_payload w6.xzdio and w6T2.xzdio
//   rpm-gzip   writeRpm (gzip -9) vs  rpmbuild -bb, w9.gzdio
//   rpm-zstd   writeRpm (zstd -19) vs rpmbuild -bb, w19.zstdio and w19T2.zstdio
// writeDeb also writes DEBIAN/md5sums (what dh_md5sums adds before dh_builddeb); the deb rows have
// a second reference, "md5sums + dpkg-deb", that does that same work. For deb, the script also
// checks that the uncompressed data.tar of both packages is byte-identical.
// Each side is a whole process (node start-up and the directory walk included for kiln).
// rpmbuild packages a prepared build root (no %install, hard-linked copy of the tree made
// before each run, untimed), AutoReqProv off and no debuginfo, so it does what writeRpm does.
// Paired runs: kiln and the references alternate (kiln, ref 1, ref 2, kiln, ...) RUNS times
// (default 5), medians of wall and CPU (user+sys) seconds, ratio = median of per-pair ratios, and a
// check that kiln's packages of all runs are byte-identical.
// Usage: npm run build && node bench/packaging.mjs [RUNS] [--keep] [--size=MiB] [--files=N]
//          [--only=deb-xz,rpm-zstd,...]
//        (internal: node bench/packaging.mjs --one deb|rpm xz|gzip TREE OUT)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadavg, paired, timeRun } from './lib/paired.mjs';

const SDE = 1704067200;
// --one runs the writers of this dist/ (or of KILN_BENCH_DIST: --baseline=DIST compares two builds)
const dist = process.env.KILN_BENCH_DIST || join(import.meta.dirname, '..', 'dist');

// ---- one packaging run (the process that is timed) ---------------------------------------------
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
const RUNS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 5);
const keep = process.argv.includes('--keep');
const opt = (n, d) => process.argv.find((a) => a.startsWith(`--${n}=`))?.slice(n.length + 3) ?? d;
const FILES = Number(opt('files', '10000'));
const TOTAL = Number(opt('size', '200')) * 1024 * 1024;
const ONLY = opt('only', '').split(',').filter(Boolean);
const BASELINE = opt('baseline', ''); // another compiled dist/ (e.g. of the previous commit): a side 'kiln baseline'

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
const RPM_REFS = { xz: ['w6.xzdio', 'w6T2.xzdio'], gzip: ['w9.gzdio'], zstd: ['w19.zstdio', 'w19T2.zstdio'] };
for (const p of Object.values(RPM_REFS).flat()) writeFileSync(join(dir, `bench-${p}.spec`), spec(p));

const q = (x) => `'${x.replace(/'/g, `'\\''`)}'`;
const self = q(join(import.meta.dirname, 'packaging.mjs'));
const env = `SOURCE_DATE_EPOCH=${SDE}`;
const rpmbuild = (c) =>
  `${env} rpmbuild -bb --quiet --noclean --buildroot ${q(broot)} --define ${q(`_topdir ${top}`)} --define 'use_source_date_epoch_as_buildtime 1' --define 'clamp_mtime_to_source_date_epoch 1' --define '_buildhost kiln' ${q(join(dir, `bench-${c}.spec`))}`;
// dh_md5sums' work, then dh_builddeb's: the same package content writeDeb produces
const md5sums = `(cd ${q(tree)} && find opt -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum > DEBIAN/md5sums)`;
const prepareRpm = `rm -rf ${q(broot)} ${q(top)} && mkdir -p ${q(top)} && cp -al ${q(tree)} ${q(broot)} && rm -rf ${q(join(broot, 'DEBIAN'))}`;

const cases = [];
const rmMd5 = `rm -f ${q(join(tree, 'DEBIAN', 'md5sums'))}`;
for (const c of ['xz', 'gzip', 'zstd', 'none']) {
  const dpkg = `${env} dpkg-deb --root-owner-group -Z${c} -b ${q(tree)} ${q(join(out, `dpkg-${c}.deb`))} >/dev/null`;
  cases.push({
    name: `deb-${c}`,
    kiln: `${env} ${q(process.execPath)} ${self} --one deb ${c} ${q(tree)} ${q(join(out, `kiln-${c}.deb`))}`,
    kilnOut: join(out, `kiln-${c}.deb`),
    refs: [
      { name: `dpkg-deb -Z${c}`, cmd: dpkg, prepare: rmMd5, out: join(out, `dpkg-${c}.deb`) },
      { name: `md5sums + dpkg-deb -Z${c}`, cmd: `${md5sums} && ${dpkg}`, prepare: rmMd5, out: join(out, `dpkg-${c}.deb`) },
    ],
  });
}
for (const c of ['xz', 'gzip', 'zstd']) {
  cases.push({
    name: `rpm-${c}`,
    kiln: `${env} ${q(process.execPath)} ${self} --one rpm ${c} ${q(tree)} ${q(join(out, `kiln-${c}.rpm`))}`,
    kilnOut: join(out, `kiln-${c}.rpm`),
    refs: RPM_REFS[c].map((p) => ({ name: `rpmbuild -bb ${p}`, cmd: rpmbuild(p), prepare: prepareRpm, out: join(top, 'RPMS', 'noarch', 'bench-1.0-1.noarch.rpm') })),
  });
}
const selected = cases.filter((c) => !ONLY.length || ONLY.includes(c.name));
if (!selected.length) throw new Error(`--only: no such case (${cases.map((c) => c.name).join(', ')})`);

const MiB = (f) => (statSync(f).size / 2 ** 20).toFixed(1);
const debFiles = (f) => execFileSync('dpkg-deb', ['--contents', f], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').filter((l) => l.startsWith('-')).length;
const rpmFiles = (f) => execFileSync('rpm', ['-qlp', '--nosignature', f], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').filter((l) => l.includes('/f')).length;
const dataTarHash = (f) => execFileSync('bash', ['-c', 'm=$(ar t "$1" | grep ^data.tar); ar p "$1" "$m" | case "$m" in *.xz) xz -dc;; *.gz) gzip -dc;; *.zst) zstd -dcq;; *) cat;; esac | sha256sum', 'x', f], { encoding: 'utf8' }).slice(0, 64);
const sha = (f) => execFileSync('sha256sum', [f], { encoding: 'utf8' }).slice(0, 16);
const rows = [];
for (const c of selected) {
  // kiln, reference 1, reference 2, kiln, ... : every side once per pair, so drift hits all alike
  process.stderr.write(`# ${c.name}: ${RUNS} pairs\n`);
  const kilnHashes = new Set();
  const sides = [
    { name: 'kiln', run: () => {
      const t = timeRun(c.kiln);
      kilnHashes.add(sha(c.kilnOut));
      return t;
    } },
    ...c.refs.map((ref) => ({ name: ref.name, run: () => timeRun(ref.cmd, { prepare: ref.prepare && (() => execFileSync('bash', ['-c', ref.prepare])) }) })),
  ];
  if (BASELINE) {
    const base = { name: `kiln baseline (${BASELINE})`, cmd: `KILN_BENCH_DIST=${q(BASELINE)} ${c.kiln.replace(q(c.kilnOut), q(c.kilnOut + '.baseline'))}`, out: c.kilnOut + '.baseline' };
    c.refs.push(base);
    sides.push({ name: base.name, run: () => timeRun(base.cmd) });
  }
  // the reference outputs are overwritten by the next reference: check them as they come
  const checks = [];
  sides.slice(1).forEach((s, i) => {
    const inner = s.run;
    s.run = (k) => {
      const t = inner(k);
      if (k === 0) {
        const ref = c.refs[i];
        checks[i] = { files: c.name.startsWith('deb') ? debFiles(ref.out) : rpmFiles(ref.out), size: MiB(ref.out), tar: c.name.startsWith('deb') ? dataTarHash(ref.out) : '' };
      }
      return t;
    };
  });
  const res = paired(RUNS, sides, (l) => process.stderr.write(l + '\n'));
  const k = res[0];
  const kFiles = c.name.startsWith('deb') ? debFiles(c.kilnOut) : rpmFiles(c.kilnOut);
  const kTar = c.name.startsWith('deb') ? dataTarHash(c.kilnOut) : '';
  const repro = kilnHashes.size === 1 ? 'kiln runs identical' : `kiln runs DIFFER (${kilnHashes.size} outputs)`;
  res.slice(1).forEach((r, i) => {
    const ch = checks[i];
    const same = c.name.startsWith('deb') ? (ch.tar === kTar ? 'data.tar identical' : 'data.tar differs') : '';
    rows.push(`| ${c.name} | ${k.wall.toFixed(2)} (cpu ${k.cpu.toFixed(1)}) | ${r.name} | ${r.wall.toFixed(2)} (cpu ${r.cpu.toFixed(1)}) | ${r.ratioWall.toFixed(2)} / ${r.ratioCpu.toFixed(2)} | ${MiB(c.kilnOut)} / ${ch.size} | ${kFiles} / ${ch.files} ${same}; ${repro} |`);
    console.error(rows.at(-1));
  });
}
console.log(`\n${RUNS} pair(s) per case (kiln and the references alternating), median wall seconds (median user+sys CPU seconds, children included); ratio = kiln / reference, median of the per-pair ratios, wall / cpu (< 1: kiln faster); ${FILES} files, ${(TOTAL / 2 ** 20).toFixed(0)} MiB; load average at the end ${loadavg()}\n`);
console.log('| case | kiln s | reference | reference s | ratio wall / cpu | MiB kiln / ref | files kiln / ref |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
if (!keep) rmSync(dir, { recursive: true, force: true });
