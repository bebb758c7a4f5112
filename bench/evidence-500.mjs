#!/usr/bin/env node
// Benchmark: release evidence for the 500-part graph of bench/engine-500.mjs (same generator,
// same seed). After one real build, times in-process (compiled dist/, warm file cache):
//   manifest   scan results (cached per store entry) + hashes + graph -> out/manifest.json data
//   sbom       inventory + CycloneDX 1.6 + SPDX 2.3 JSON
//   provenance 500 in-toto statements + unsigned DSSE envelopes
//   report     the HTML report (graph SVG, timeline, tables)
// and the whole no-op `kiln build` process (which writes all of the above except the report)
// and `kiln report`. Target (issue 14): report + SBOM generation < 1 s.
// Usage: node bench/evidence-500.mjs [N]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const N = Number(process.argv[2] ?? 500);
const root = join(import.meta.dirname, '..');
const kiln = join(root, 'bin', 'kiln.js');
const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-evidence-'));

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
// whole-process wall time, and CPU time (user + sys, from /usr/bin/time) which a loaded machine inflates less
const hasTime = spawnSync('/usr/bin/time', ['-f', '%U', 'true']).status === 0;
let lastCpu = NaN;
const cli = (args) => {
  const t = process.hrtime.bigint();
  const argv = hasTime ? ['/usr/bin/time', '-f', 'CPU %U %S', process.execPath, kiln, ...args] : [process.execPath, kiln, ...args];
  const r = spawnSync(argv[0], argv.slice(1), { cwd: dir, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kiln ${args.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  const m = /CPU ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  lastCpu = m ? Number(m[1]) + Number(m[2]) : NaN;
  return Number(process.hrtime.bigint() - t) / 1e9;
};

console.log(`# ${N} parts in ${dir}`);
console.log(`first build with evidence (runs ${N} commands, -j2): ${cli(['build', '-j', '2']).toFixed(2)} s`);

const { loadProject } = await import(join(root, 'dist', 'engine', 'project.js'));
const { buildManifest } = await import(join(root, 'dist', 'evidence', 'manifest.js'));
const { buildInventory } = await import(join(root, 'dist', 'evidence', 'model.js'));
const { cyclonedx } = await import(join(root, 'dist', 'evidence', 'sbom-cyclonedx.js'));
const { spdx } = await import(join(root, 'dist', 'evidence', 'sbom-spdx.js'));
const { statements, envelopes } = await import(join(root, 'dist', 'evidence', 'provenance.js'));
const { writeReport } = await import(join(root, 'dist', 'evidence', 'report.js'));
const { lastRun } = await import(join(root, 'dist', 'evidence', 'index.js'));

process.env.KILN_CACHE_DIR = env.KILN_CACHE_DIR;
const { project } = await loadProject({ configFile: join(dir, 'buildout.cfg'), outDir: join(dir, 'out') });
const names = project.closure();
const run = lastRun(project);
// CPU milliseconds (user + system) of this process: less inflated than wall time on a busy machine
const ms = (t) => {
  const c = process.cpuUsage(t);
  return (c.user + c.system) / 1000;
};
const rows = { manifest: [], sbom: [], provenance: [], report: [], 'sbom + report': [] };
for (let i = 0; i < 11; i++) {
  let t = process.cpuUsage();
  const mr = await buildManifest(project, names, run);
  rows.manifest.push(ms(t));
  t = process.cpuUsage();
  const inv = buildInventory(project, mr);
  const a = JSON.stringify(cyclonedx(inv), null, 1);
  const b = JSON.stringify(spdx(inv), null, 1);
  const sbom = ms(t);
  rows.sbom.push(sbom);
  t = process.cpuUsage();
  await envelopes(statements(project, mr, inv), () => undefined, undefined, project.sourceDateEpoch);
  rows.provenance.push(ms(t));
  t = process.cpuUsage();
  writeReport(project, run, (p) => mr.scans.get(p));
  const report = ms(t);
  rows.report.push(report);
  rows['sbom + report'].push(sbom + report);
  if (i === 0) console.log(`sizes: cdx ${a.length} B, spdx ${b.length} B, ${mr.manifest.artifacts.length} artifacts`);
}
for (const [k, v] of Object.entries(rows)) {
  const s = v.slice(1).sort((x, y) => x - y);
  console.log(`${k.padEnd(14)} CPU median ${s[Math.floor(s.length / 2)].toFixed(1)} ms, min ${s[0].toFixed(1)} ms`);
}
for (const args of [['plan'], ['build'], ['report']]) {
  cli(args);
  const runs = Array.from({ length: 7 }, () => [cli(args), lastCpu]);
  const wall = runs.map((r) => r[0]).sort((x, y) => x - y);
  const cpu = runs.map((r) => r[1]).sort((x, y) => x - y);
  console.log(`kiln ${args[0].padEnd(6)} (whole process): wall median ${wall[3].toFixed(3)} s, min ${wall[0].toFixed(3)} s; CPU median ${cpu[3].toFixed(2)} s`);
}
