#!/usr/bin/env node
// Benchmark: a fresh machine (new project dir, out/ and KILN_CACHE_DIR) building a small project
// from a warm remote cache (nginx WebDAV on 127.0.0.1) against the same machine building it cold
// with no remote cache. The project does real work: generates 20 C files, compiles them with
// gcc -O2, links and runs the program, xz-compresses a documentation tree and bundles it all in a
// reproducible tar.xz (5 parts).   Usage: node bench/remote-warm.mjs [RUNS]
import { kiln, machine, median, nginx, parseSummary } from './remote-lib.mjs';

const RUNS = Number(process.argv[2] ?? 3);
const cfg = `[buildout]
parts = bundle

[gen]
recipe = kiln:command
command = awk -v out="$OUT" 'BEGIN { for (i = 0; i < 20; i++) { f = sprintf("%s/m%02d.c", out, i); printf "int f%d(int x) {\\n", i > f; for (j = 0; j < 100; j++) printf "  x = (x * %d + %d) %% 1000003; if (x & 1) x ^= x >> 3;\\n", j + i, j > f; printf "  return x;\\n}\\n" > f; close(f) } }'

[objs]
recipe = kiln:command
src = \${gen:location}
command = for f in "$KILN_OPT_SRC"/*.c; do gcc -O2 -c "$f" -o "$OUT/$(basename "$f" .c).o" || exit 1; done

[prog]
recipe = kiln:command
objs = \${objs:location}
command = awk 'BEGIN { for (i = 0; i < 20; i++) printf "int f%d(int);\\n", i; print "#include <stdio.h>\\nint main(void) { int x = 1;"; for (i = 0; i < 20; i++) printf "  x = f%d(x);\\n", i; print "  printf(\\"%d\\\\n\\", x); return 0; }" }' > main.c &&
    gcc -O2 main.c "$KILN_OPT_OBJS"/*.o -o "$OUT/prog" && "$OUT/prog" > "$OUT/result.txt"

[docs]
recipe = kiln:command
command = tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C /usr/share -cf - common-licenses | xz -9 -T1 > "$OUT/licenses.tar.xz"

[bundle]
recipe = kiln:command
prog = \${prog:location}
docs = \${docs:location}
command = tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$KILN_OPT_PROG" -cf - . | xz -6 -T1 > "$OUT/prog.tar.xz" && cp "$KILN_OPT_DOCS/licenses.tar.xz" "$OUT/"
`;

const ng = await nginx();
try {
  const ci = machine(cfg);
  const up = kiln(ci, ['build', '-j2', '--remote-cache', ng.url, '--remote-cache-mode', 'readwrite']);
  console.log(`CI: built ${up.built} parts and uploaded in ${up.seconds.toFixed(2)} s (${up.summary})`);
  const cold = [];
  const warm = [];
  let traffic;
  for (let i = 0; i < RUNS; i++) {
    const c = kiln(machine(cfg), ['build', '-j2']);
    if (c.built !== 5) throw new Error(`cold build built ${c.built}`);
    cold.push(c.seconds);
    const w = kiln(machine(cfg), ['build', '-j2', '--remote-cache', ng.url]);
    if (w.built !== 0) throw new Error(`warm build built ${w.built}`);
    warm.push(w.seconds);
    traffic = parseSummary(w.summary);
  }
  console.log(`cold local build (no remote cache): median ${median(cold).toFixed(2)} s of ${cold.map((s) => s.toFixed(2)).join(', ')}`);
  console.log(`fresh machine, warm remote cache:   median ${median(warm).toFixed(2)} s of ${warm.map((s) => s.toFixed(2)).join(', ')}; ${traffic.requests} requests, ${traffic.mbDown} MB down`);
} finally {
  await ng.stop();
}
