// Timing of the config language on 500 cross-referencing parts (no assertions).
// Usage: npx tsc -p tsconfig.json && node bench/config-500.mjs
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../dist/config/index.js';

const N = 500;
const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-config-'));
const base = ['[template]', 'recipe = kiln:cmd', 'location = ${buildout:parts-directory}/${:_buildout_section_name_}', 'flags = -O2'];
writeFileSync(join(dir, 'base.cfg'), base.join('\n') + '\n');
const top = ['[buildout]', 'extends = base.cfg', `parts = ${Array.from({ length: N }, (_, i) => `p${i}`).join('\n  ')}`];
for (let i = 0; i < N; i++) {
  top.push(`[p${i}]`, '<= template', `flags += -DPART=${i}`);
  if (i > 0) top.push(`dep = \${p${i - 1}:location}`, `dep2 = \${p${Math.floor(i / 2)}:flags}`);
  top.push('cmd = ${:location}/bin/run ${buildout:directory}');
}
writeFileSync(join(dir, 'buildout.cfg'), top.join('\n') + '\n');

const times = [];
for (let run = 0; run < 7; run++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const cfg = await loadConfig(join(dir, 'buildout.cfg'), { buildoutDefaults: { 'parts-directory': 'parts' } });
  const t1 = performance.now();
  let n = 0;
  for (const s of cfg.sectionNames()) {
    n += Object.keys(cfg.section(s)).length;
    cfg.references(s);
  }
  const t2 = performance.now();
  const c = process.cpuUsage(c0);
  times.push([t1 - t0, t2 - t1, n, (c.user + c.system) / 1000]);
}
rmSync(dir, { recursive: true, force: true });
for (const [load, resolve, n, cpu] of times)
  console.log(`load ${load.toFixed(1)} ms, resolve+references ${resolve.toFixed(1)} ms (${n} options), cpu ${cpu.toFixed(1)} ms`);
