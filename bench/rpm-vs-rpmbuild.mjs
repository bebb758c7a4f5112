#!/usr/bin/env node
// Benchmark: kiln's native .rpm writer (writeRpm, dist/pkg/rpm.js) against rpmbuild -bb on the same
// tree: 10,000 files, 200 MiB, deterministic pseudo-random content (log-uniform sizes 64 B..4 MiB,
// about 40 % of the bytes compressible text, the rest random), same payload compression:
//   xz    writeRpm compression 'xz'   (xz -6, 2 threads)   vs  %_binary_payload w6.xzdio   (and w6T2.xzdio)
//   zstd  writeRpm compression 'zstd' (zstd -19, 2 threads) vs  %_binary_payload w19.zstdio (and w19T2.zstdio)
// Whole processes are timed on both sides (node start-up and the directory walk included for kiln).
// rpmbuild packages a prepared build root (no %install section; a hard-linked copy of the tree made
// before each run, untimed; AutoReqProv off, no debuginfo, no build-id links), so it does what
// writeRpm does: digest, archive, compress, write.
// Measured 2026-11 (2 cores, load average 4-9 from other jobs: wall times are noisy, compare cpu):
//   xz:   writeRpm 306 s wall / 189 s cpu; rpmbuild w6.xzdio 343 / 226, w6T2.xzdio 360 / 223 (ratio 0.85-0.89)
//   zstd: writeRpm 471 s wall / 230 s cpu; rpmbuild w19.zstdio 258 / 197, w19T2.zstdio 172 / 208 (ratio 1.8-2.7 wall, 1.1-1.2 cpu)
//   sizes equal within 0.2 MiB (143.6 vs 143.4 MiB xz, 142.9 vs 142.9 MiB zstd)
// Usage: npx tsc && node bench/rpm-vs-rpmbuild.mjs [RUNS] [--keep] [--only=xz|zstd]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const SDE = 1704067200;
const DIST = join(import.meta.dirname, '..', 'dist', 'pkg', 'rpm.js');

// ---- one writeRpm run (the process that is timed) -----------------------------------------------
if (process.argv[2] === '--one') {
  const [, , , compression, tree, out] = process.argv;
  const files = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        files.push({ path: '/' + relative(tree, p), type: 'dir' });
        walk(p);
      } else files.push({ path: '/' + relative(tree, p), type: 'file', source: p });
    }
  };
  // the entries rpmbuild's '%files /opt/bench' gives: the directory itself and everything below
  files.push({ path: '/opt/bench', type: 'dir' });
  walk(join(tree, 'opt', 'bench'));
  const { writeRpm } = await import(DIST);
  await writeRpm({ name: 'bench', version: '1.0', release: '1', arch: 'noarch', summary: 'bench', description: 'bench tree', license: 'MIT', files, compression, sourceDateEpoch: SDE, buildHost: 'kiln' }, out);
  process.exit(0);
}

const RUNS = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1);
const keep = process.argv.includes('--keep');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const FILES = 10_000;
const TOTAL = 200 * 1024 * 1024;

// ---- the tree --------------------------------------------------------------------------------------
let s = 0x2545f491;
const next = () => {
  // xorshift32
  s ^= s << 13;
  s >>>= 0;
  s ^= s >>> 17;
  s ^= s << 5;
  return (s >>>= 0);
};
const rnd = () => next() / 2 ** 32;
const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-rpm-'));
const tree = join(dir, 'root');
const raw = Array.from({ length: FILES }, () => Math.exp(Math.log(64) + rnd() * Math.log((4 << 20) / 64)));
const scale = TOTAL / raw.reduce((a, b) => a + b, 0);
const sizes = raw.map((x) => Math.max(1, Math.floor(x * scale)));
sizes[0] += TOTAL - sizes.reduce((a, b) => a + b, 0);
const WORDS = Array.from({ length: 512 }, () => Array.from({ length: 2 + (next() % 9) }, () => String.fromCharCode(97 + (next() % 26))).join(''));
const text = (n) => {
  const parts = [];
  for (let len = 0; len < n; ) {
    const w = WORDS[next() % WORDS.length] + ((next() & 15) === 0 ? '\n' : ' ');
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
};
const random = (n) => {
  const b = Buffer.allocUnsafe(n + 4);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(next(), i);
  return b.subarray(0, n);
};
const t0 = Date.now();
let textBytes = 0;
for (let i = 0; i < FILES; i++) {
  const d = join(tree, 'opt', 'bench', `d${String(i % 100).padStart(2, '0')}`);
  if (i < 100) mkdirSync(d, { recursive: true });
  const isText = rnd() < 0.4;
  if (isText) textBytes += sizes[i];
  writeFileSync(join(d, `f${String(i).padStart(5, '0')}${isText ? '.txt' : '.bin'}`), isText ? text(sizes[i]) : random(sizes[i]));
}
console.log(`# tree in ${dir}: ${FILES} files, ${TOTAL / 2 ** 20} MiB, ${((100 * textBytes) / TOTAL).toFixed(0)} % text (${((Date.now() - t0) / 1000).toFixed(1)} s to write)`);

// ---- the commands ------------------------------------------------------------------------------------
const q = (x) => `'${x.replace(/'/g, `'\\''`)}'`;
const out = join(dir, 'out');
const top = join(dir, 'rpmtop');
const broot = join(dir, 'buildroot');
mkdirSync(out);
const specFile = join(dir, 'bench.spec');
writeFileSync(
  specFile,
  'Name: bench\nVersion: 1.0\nRelease: 1\nSummary: bench\nLicense: MIT\nBuildArch: noarch\nAutoReqProv: no\n\n%description\nbench tree\n\n%files\n/opt/bench\n',
);
const rpmbuild = (payload) =>
  `SOURCE_DATE_EPOCH=${SDE} rpmbuild -bb --quiet --noclean --buildroot ${q(broot)} --define ${q(`_topdir ${top}`)} --define '_binary_payload ${payload}' ` +
  `--define 'debug_package %{nil}' --define '_build_id_links none' --define 'use_source_date_epoch_as_buildtime 1' --define 'clamp_mtime_to_source_date_epoch 1' --define '_buildhost kiln' ${q(specFile)}`;
const prepare = `rm -rf ${q(broot)} ${q(top)} && mkdir -p ${q(top)} && cp -al ${q(tree)} ${q(broot)}`;
const refOut = join(top, 'RPMS', 'noarch', 'bench-1.0-1.noarch.rpm');
const kiln = (c) => `SOURCE_DATE_EPOCH=${SDE} ${q(process.execPath)} ${q(join(import.meta.dirname, 'rpm-vs-rpmbuild.mjs'))} --one ${c} ${q(tree)} ${q(join(out, `kiln-${c}.rpm`))}`;

const groups = [
  { c: 'xz', refs: ['w6.xzdio', 'w6T2.xzdio'] },
  { c: 'zstd', refs: ['w19.zstdio', 'w19T2.zstdio'] },
].filter((g) => !only || g.c === only);

const hyperfine = spawnSync('hyperfine', ['--version']).status === 0;
/** median wall seconds and cpu seconds of a shell command */
function time(cmd, prep) {
  if (hyperfine) {
    const json = join(dir, 'hf.json');
    const args = ['--runs', String(RUNS), '--export-json', json, '--style', 'none', '--shell', 'bash', ...(prep ? ['--prepare', prep] : []), cmd];
    execFileSync('hyperfine', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    const r = JSON.parse(readFileSync(json, 'utf8')).results[0];
    return { wall: r.median, cpu: r.user + r.system };
  }
  const ts = [];
  for (let i = 0; i < RUNS; i++) {
    if (prep) execFileSync('bash', ['-c', prep]);
    const t = process.hrtime.bigint();
    execFileSync('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
    ts.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return { wall: ts.sort((a, b) => a - b)[ts.length >> 1], cpu: NaN };
}
const MiB = (f) => (statSync(f).size / 2 ** 20).toFixed(1);
const count = (f) => execFileSync('rpm', ['-qlp', '--nosignature', f], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').filter((l) => /\/f\d{5}\./.test(l)).length;
const fmtT = (t) => `${t.wall.toFixed(1)}${Number.isNaN(t.cpu) ? '' : ` (cpu ${t.cpu.toFixed(1)})`}`;

const rows = [];
for (const g of groups) {
  process.stderr.write(`# writeRpm ${g.c} ...\n`);
  const k = time(kiln(g.c));
  const kOut = join(out, `kiln-${g.c}.rpm`);
  execFileSync('rpm', ['-K', '--nosignature', kOut], { stdio: 'ignore' });
  for (const ref of g.refs) {
    process.stderr.write(`# rpmbuild ${ref} ...\n`);
    const r = time(rpmbuild(ref), prepare);
    if (count(kOut) !== FILES || count(refOut) !== FILES) throw new Error('file counts differ from the tree');
    rows.push({ c: g.c, ref, k, r, kSize: MiB(kOut), rSize: MiB(refOut) });
  }
}
console.log(`\n${hyperfine ? 'hyperfine' : 'plain timing'}, ${RUNS} run(s), median wall seconds (user+sys cpu seconds); ratio = writeRpm / rpmbuild (< 1: kiln faster)\n`);
console.log('| payload | writeRpm s | rpmbuild payload macro | rpmbuild s | ratio | writeRpm MiB | rpmbuild MiB |');
console.log('|---|---|---|---|---|---|---|');
for (const x of rows) console.log(`| ${x.c} | ${fmtT(x.k)} | ${x.ref} | ${fmtT(x.r)} | ${(x.k.wall / x.r.wall).toFixed(2)} | ${x.kSize} | ${x.rSize} |`);
if (!keep) rmSync(dir, { recursive: true, force: true });
