#!/usr/bin/env node
// Memory check for the native .deb writer: peak RSS of the node process while writing a package
// with a 2 GB payload (one sparse 2 GB file + 1000 small files) compared with a 20 MB payload.
// Flat memory means both peaks are about the same (contents stream from disk into the compressor).
//
//   npx tsc -p tsconfig.json && node bench/deb-memory.mjs [--comp gzip] [--gb 2]
//
// Each size runs in a fresh child process (maxRSS is per process). Needs ~GB free disk for the
// compressed output only (zeros compress well); the source file is sparse.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (n, d) => (args.includes(`--${n}`) ? args[args.indexOf(`--${n}`) + 1] : d);

if (args[0] === '--child') {
  const [, dir, bytes, comp] = args;
  const { writeDeb } = await import(join(here, '..', 'dist', 'pkg', 'deb.js'));
  const files = [];
  for (let i = 0; i < 1000; i++) {
    const p = join(dir, `small-${i}`);
    writeFileSync(p, `file ${i}\n`.repeat(50));
    files.push({ path: `/usr/share/kiln-mem/small/${i}`, type: 'file', source: p });
  }
  const big = join(dir, 'big');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, Number(bytes));
  closeSync(fd);
  files.push({ path: '/usr/share/kiln-mem/big', type: 'file', source: big });
  const t = Date.now();
  const r = await writeDeb({ name: 'kiln-mem', version: '1.0', architecture: 'all', maintainer: 'Kiln <kiln@example.invalid>', description: 'memory\nmemory check', files, compression: comp, sourceDateEpoch: 1700000000 }, join(dir, 'out.deb'));
  console.log(JSON.stringify({ payload: Number(bytes), seconds: (Date.now() - t) / 1000, maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024), debBytes: r.size, out: r.path }));
  process.exit(0);
}

const comp = opt('comp', 'gzip');
const gb = Number(opt('gb', '2'));
for (const bytes of [20e6, gb * 2 ** 30]) {
  const dir = mkdtempSync(join(process.env.TMPDIR || tmpdir(), 'kiln-mem-'));
  mkdirSync(dir, { recursive: true });
  try {
    const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, String(bytes), comp], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    if (p.status !== 0) throw new Error('child failed');
    const r = JSON.parse(p.stdout.trim().split('\n').pop());
    const listing = execFileSync('dpkg-deb', ['--contents', r.out], { encoding: 'utf8' });
    const bigLine = listing.split('\n').find((l) => l.endsWith('/big'));
    console.log(`${comp}: payload ${(bytes / 2 ** 20).toFixed(0)} MiB -> peak RSS ${r.maxRssMiB} MiB, ${r.seconds.toFixed(1)} s, .deb ${(r.debBytes / 2 ** 20).toFixed(1)} MiB; dpkg-deb lists: ${bigLine?.replace(/\s+/g, ' ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
