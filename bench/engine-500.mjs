#!/usr/bin/env node
// Benchmark: a graph of 500 parts (each depending on up to 3 earlier ones, through
// ${part:location} references and a shared macro). Measures, on the compiled CLI:
//   plan   resolve the config, build the graph, compute signatures, compare with the state
//   no-op  `kiln build` with everything cached
// Uses hyperfine when installed (Debian package hyperfine), else a loop of runs.
// Targets (issue 2): plan < 0.5 s, no-op build < 1 s.   Usage: node bench/engine-500.mjs [N]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const N = Number(process.argv[2] ?? 500);
const kiln = join(import.meta.dirname, '..', 'bin', 'kiln.js');
const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-'));

let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
let cfg = `[buildout]\nparts = ${Array.from({ length: N }, (_, i) => `p${i}`).join('\n  ')}\n\n[step]\nrecipe = kiln:command\nenvironment = LC_ALL=C\n`;
for (let i = 0; i < N; i++) {
  const deps = new Set();
  for (let k = 0; k < 3 && i > 0; k++) if (rnd() < 0.7) deps.add(Math.floor(rnd() * i));
  const refs = [...deps].map((d) => `\${p${d}:location}`).join(' ');
  cfg += `\n[p${i}]\n<= step\nn = ${i}\ndeps = ${refs}\nargv =\n  /bin/sh\n  -c\n  echo "$KILN_OPT_N $KILN_OPT_DEPS" > "$OUT/out.txt"\n`;
}
writeFileSync(join(dir, 'buildout.cfg'), cfg);
const env = { ...process.env, KILN_CACHE_DIR: join(dir, '.cache'), CI: '1' };
const run = (args) => {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [kiln, ...args], { cwd: dir, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kiln ${args.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  return Number(process.hrtime.bigint() - t) / 1e9;
};

console.log(`# ${N} parts in ${dir}`);
const first = run(['build', '-j', '2']);
console.log(`first build (runs ${N} commands): ${first.toFixed(2)} s`);

const hyperfine = spawnSync('hyperfine', ['--version']).status === 0;
if (hyperfine) {
  execFileSync('hyperfine', ['--warmup', '2', '--runs', '10', '-N', '--export-json', join(dir, 'hyperfine.json'),
    `${process.execPath} ${kiln} plan`, `${process.execPath} ${kiln} build`], { cwd: dir, env, stdio: 'inherit' });
} else {
  for (const args of [['plan'], ['build']]) {
    run(args);
    const times = Array.from({ length: 10 }, () => run(args)).sort((a, b) => a - b);
    console.log(`kiln ${args[0]}: median ${times[5].toFixed(3)} s, min ${times[0].toFixed(3)} s`);
  }
}
