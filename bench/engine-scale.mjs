#!/usr/bin/env node
// Engine at scale: N trivial `kiln:command` parts (each depending on up to 3 earlier ones through
// ${pN:location} references and a shared `<=` macro; each runs `/bin/sh -c 'echo ... > out.txt'`),
// side by side with zc.buildout 2.13 (Debian's python3-zc.buildout) on the same graph with a
// trivial recipe that runs the same command, and with the N commands alone (spawned two at a time
// by a bare Node process as kiln spawns them, and by xargs -P2). kiln's overhead per part is
// (kiln − the commands spawned by Node) / N.
// Sides alternate pair by pair (drift cancels); medians of wall and CPU (user+sys) seconds.
//   first   first build into a fresh directory: kiln build -j2 | buildout -N -o (serial)
//   no-op   everything built:               kiln build     | buildout -N -o
//   plan    kiln plan (no reference)
// Usage: npm run build && node bench/engine-scale.mjs [--sizes=500,2000,5000] [--pairs=5]
//          [--zcb-max=500] [--no-first] [--keep]
// zc.buildout runs only for sizes <= --zcb-max (it writes .installed.cfg after every part).
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadavg, paired, timeRun } from './lib/paired.mjs';

const opt = (n, d) => process.argv.find((a) => a.startsWith(`--${n}=`))?.slice(n.length + 3) ?? d;
const SIZES = opt('sizes', '500,2000,5000').split(',').map(Number);
const PAIRS = Number(opt('pairs', '5'));
const ZCB_MAX = Number(opt('zcb-max', '500'));
const keep = process.argv.includes('--keep');
const FIRST = !process.argv.includes('--no-first'); // --no-first: no-op and plan only
const kiln = join(import.meta.dirname, '..', 'bin', 'kiln.js');
const root = mkdtempSync(join(tmpdir(), 'kiln-bench-scale-'));
const log = (s) => process.stderr.write(s + '\n');

// zc.buildout: a trivial recipe distribution found on PYTHONPATH (an .egg-info with its entry
// point), and a launcher that applies the one shim Python 3.11 needs for zc.buildout 2.13
const rec = join(root, 'zcb-recipe');
mkdirSync(join(rec, 'kilnbench_trivial'), { recursive: true });
mkdirSync(join(rec, 'kilnbench_trivial-1.0.egg-info'));
writeFileSync(
  join(rec, 'kilnbench_trivial', '__init__.py'),
  `import os, subprocess
class Recipe:
    def __init__(self, buildout, name, options):
        self.options = options
        options['location'] = os.path.join(buildout['buildout']['parts-directory'], name)
    def install(self):
        loc = self.options['location']
        os.makedirs(loc, exist_ok=True)
        subprocess.run(['/bin/sh', '-c', 'echo "$N $DEPS" > "$OUT/out.txt"'], check=True,
                       env=dict(os.environ, N=self.options['n'], DEPS=self.options['deps'], OUT=loc))
        return [loc]
    def update(self):
        pass
`,
);
writeFileSync(join(rec, 'kilnbench_trivial-1.0.egg-info', 'PKG-INFO'), 'Metadata-Version: 1.1\nName: kilnbench-trivial\nVersion: 1.0\n');
writeFileSync(join(rec, 'kilnbench_trivial-1.0.egg-info', 'entry_points.txt'), '[zc.buildout]\ndefault = kilnbench_trivial:Recipe\n');
writeFileSync(join(rec, 'run_buildout.py'), 'import collections, collections.abc, sys\ncollections.MutableMapping = collections.abc.MutableMapping\nfrom zc.buildout.buildout import main\nmain(sys.argv[1:])\n');

/** the graph: the same deterministic dependencies for both configs */
function graph(n) {
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  return Array.from({ length: n }, (_, i) => {
    const deps = new Set();
    for (let k = 0; k < 3 && i > 0; k++) if (rnd() < 0.7) deps.add(Math.floor(rnd() * i));
    return [...deps];
  });
}
function configs(n) {
  const g = graph(n);
  const parts = `parts = ${Array.from({ length: n }, (_, i) => `p${i}`).join('\n  ')}\n`;
  let k = `[buildout]\n${parts}\n[step]\nrecipe = kiln:command\nenvironment = LC_ALL=C\n`;
  let z = `[buildout]\n${parts}\n[step]\nrecipe = kilnbench-trivial\n`;
  g.forEach((deps, i) => {
    const refs = deps.map((d) => `\${p${d}:location}`).join(' ');
    k += `\n[p${i}]\n<= step\nn = ${i}\ndeps = ${refs}\nargv =\n  /bin/sh\n  -c\n  echo "$KILN_OPT_N $KILN_OPT_DEPS" > "$OUT/out.txt"\n`;
    z += `\n[p${i}]\n<= step\nn = ${i}\ndeps = ${refs}\n`;
  });
  return { k, z };
}

const envFor = (dir) => ({ ...process.env, KILN_CACHE_DIR: join(dir, '.cache'), CI: '1', PYTHONPATH: rec });
const kilnArgv = (...a) => [process.execPath, kiln, ...a];
const zcbArgv = ['/usr/bin/python3', join(rec, 'run_buildout.py'), '-N', '-o', '-q'];
const rows = [];
const fmt = (x) => x.toFixed(x < 10 ? 3 : 1);

for (const n of SIZES) {
  const { k, z } = configs(n);
  const base = join(root, `n${n}`);
  for (const side of ['kiln', 'zcb', 'cmds']) mkdirSync(join(base, side), { recursive: true });
  writeFileSync(join(base, 'kiln.cfg'), k);
  writeFileSync(join(base, 'zcb.cfg'), z);
  const withZcb = n <= ZCB_MAX;
  let run = 0;
  const fresh = (side, cfg) => {
    const d = join(base, side, `r${run++}`);
    mkdirSync(d, { recursive: true });
    cpSync(join(base, cfg), join(d, 'buildout.cfg'));
    return d;
  };
  const cleanup = (d) => () => rmSync(d, { recursive: true, force: true });

  // ---- first build ----
  if (FIRST) {
    log(`# ${n} parts: first build (${PAIRS} pairs${withZcb ? ', with zc.buildout' : ''})`);
    const sides = [
      {
        name: 'kiln build -j2',
        run: () => {
          const d = fresh('kiln', 'kiln.cfg');
          const r = timeRun(kilnArgv('build', '-j', '2'), { cwd: d, env: envFor(d) });
          if (!keep) cleanup(d)();
          return r;
        },
      },
    ];
    if (withZcb)
      sides.push({
        name: 'zc.buildout -N -o',
        run: () => {
          const d = fresh('zcb', 'zcb.cfg');
          const r = timeRun(zcbArgv, { cwd: d, env: envFor(d) });
          if (!keep) cleanup(d)();
          return r;
        },
      });
    sides.push({
      name: 'the commands alone, spawned by Node (-P2)',
      run: () => {
        const d = join(base, 'cmds', `r${run++}`);
        const r = timeRun([process.execPath, join(import.meta.dirname, 'lib', 'spawn-n.mjs'), String(n), d]);
        cleanup(d)();
        return r;
      },
    });
    sides.push({
      name: 'the commands alone (xargs -P2)',
      run: () => {
        const d = join(base, 'cmds', `r${run++}`);
        for (let i = 0; i < n; i++) mkdirSync(join(d, `p${i}`), { recursive: true });
        const r = timeRun(`cd '${d}' && for i in $(seq 0 ${n - 1}); do printf '%s\\0' "p$i"; done | xargs -0 -P2 -I{} /bin/sh -c 'echo "{} x" > "{}/out.txt"'`);
        cleanup(d)();
        return r;
      },
    });
    const first = paired(PAIRS, sides, log);
    const cmds = first.at(-2); // spawned by Node: what any Node program pays per process
    for (const s of first)
      rows.push([n, 'first build', s.name, fmt(s.wall), fmt(s.cpu), s === first[0] ? '' : `${s.ratioWall.toFixed(2)} / ${s.ratioCpu.toFixed(2)}`]);
    const perPart = ((first[0].wall - cmds.wall) / n) * 1000;
    const perPartCpu = ((first[0].cpu - cmds.cpu) / n) * 1000;
    rows.push([n, 'first build', `kiln overhead per part: (kiln − commands spawned by Node) / ${n}`, `${perPart.toFixed(2)} ms`, `${perPartCpu.toFixed(2)} ms`, '']);
  }

  // ---- no-op and plan: one built directory per side ----
  log(`# ${n} parts: no-op and plan`);
  const kd = fresh('kiln', 'kiln.cfg');
  timeRun(kilnArgv('build', '-j', '2'), { cwd: kd, env: envFor(kd) });
  const noop = [{ name: 'kiln build (no-op)', run: () => timeRun(kilnArgv('build'), { cwd: kd, env: envFor(kd) }) }];
  if (withZcb) {
    const zd = fresh('zcb', 'zcb.cfg');
    timeRun(zcbArgv, { cwd: zd, env: envFor(zd) });
    noop.push({ name: 'zc.buildout -N -o (no-op)', run: () => timeRun(zcbArgv, { cwd: zd, env: envFor(zd) }) });
  }
  noop.push({ name: 'kiln plan', run: () => timeRun(kilnArgv('plan'), { cwd: kd, env: envFor(kd) }) });
  const res = paired(PAIRS, noop, log);
  for (const s of res)
    rows.push([n, s.name.includes('plan') ? 'plan' : 'no-op', s.name, fmt(s.wall), fmt(s.cpu), s === res[0] || s.name.includes('plan') ? '' : `${s.ratioWall.toFixed(2)} / ${s.ratioCpu.toFixed(2)}`]);
  if (!keep) rmSync(base, { recursive: true, force: true });
}

console.log(`\n${PAIRS} pairs per comparison, sides alternating; median wall and CPU (user+sys, children included) seconds; ratio = kiln / side, median of the per-pair ratios (wall / cpu); load average at the end ${loadavg()}\n`);
console.log('| parts | case | side | wall s | cpu s | kiln / side (wall / cpu) |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
if (!keep) rmSync(root, { recursive: true, force: true });
else console.log(`\n(kept ${root})`);
