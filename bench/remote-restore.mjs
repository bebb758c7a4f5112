#!/usr/bin/env node
// Benchmark: restore of a part with 10,000 small files from the remote cache (nginx WebDAV on
// 127.0.0.1), packed (default: files up to 64 KiB travel in one pack blob per 64 MiB) and
// unpacked (remote-cache-pack-threshold = 0: one blob per file), as requests (counted by kiln
// and by nginx's access log) and seconds. Upload (CI, readwrite) and restore on a fresh machine
// (new project dir, out/ and KILN_CACHE_DIR).   Usage: node bench/remote-restore.mjs [FILES] [RUNS]
import { kiln, machine, median, nginx, parseSummary } from './remote-lib.mjs';

const FILES = Number(process.argv[2] ?? 10000);
const RUNS = Number(process.argv[3] ?? 3);
const cfg = (threshold) => `[buildout]
parts = many
${threshold === undefined ? '' : `remote-cache-pack-threshold = ${threshold}`}

[many]
recipe = kiln:command
files = ${FILES}
command = mkdir -p "$OUT/f" && awk -v n="$KILN_OPT_FILES" -v out="$OUT" 'BEGIN { for (i = 1; i <= n; i++) { f = sprintf("%s/f/%05d.txt", out, i); printf "file %d %s\\n", i, sprintf("%0" (i % 200) "d", 0) > f; close(f) } }'
`;

for (const [label, threshold] of [['packed (default)', undefined], ['one blob per file', 0]]) {
  const ng = await nginx();
  try {
    const ci = machine(cfg(threshold));
    const before = ng.requests();
    const up = kiln(ci, ['build', '--remote-cache', ng.url, '--remote-cache-mode', 'readwrite']);
    const upReq = ng.requests() - before;
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      const m = machine(cfg(threshold));
      const b = ng.requests();
      const r = kiln(m, ['build', '--remote-cache', ng.url]);
      if (r.built !== 0) throw new Error(`the fresh machine built ${r.built} parts`);
      runs.push({ seconds: r.seconds, nginx: ng.requests() - b, kiln: parseSummary(r.summary) });
    }
    const cold = machine(cfg(threshold));
    const local = kiln(cold, ['build']);
    console.log(`## ${FILES} files, ${label}`);
    console.log(`  CI build + upload:        ${up.seconds.toFixed(2)} s, ${upReq} requests (${up.summary})`);
    console.log(`  fresh-machine restore:    median ${median(runs.map((r) => r.seconds)).toFixed(2)} s of ${runs.map((r) => r.seconds.toFixed(2)).join(', ')}; ${runs[0].nginx} requests (nginx log), ${runs[0].kiln.requests} (kiln), ${runs[0].kiln.mbDown} MB down`);
    console.log(`  cold local build:         ${local.seconds.toFixed(2)} s (whole CLI, for comparison)`);
  } finally {
    await ng.stop();
  }
}
