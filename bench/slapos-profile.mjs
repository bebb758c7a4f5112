// A SlapOS-style profile of ~730 sections in 251 files, and `kiln plan` against zc.buildout on it.
//
//   node bench/slapos-profile.mjs [--runs N] [--no-buildout] [--buildout-timeout S] [--keep DIR]
//
// Layout (as SlapOS's repository): component/base/buildout.cfg (macros, conditional headers of
// every form, one needing Python), component/cNNN/buildout.cfg (220 components in 10 layers,
// each extending base, one component of the layer below and, every 4th, a second one: diamonds),
// stack/sK.cfg (10 stacks extending 22 components each), software/swM/software.cfg (20 software
// releases; sw0 extends every stack: all 251 files). Parts use slapos.recipe.cmmi,
// slapos.recipe.build:download, zc.recipe.egg, slapos.recipe.template and slapos.recipe.build
// (the last three are not implemented by kiln). Paired runs: kiln plan (whole CLI process), then
// zc.buildout resolving every section with the test recipe (scripts/buildout-oracle.py --recipes);
// medians printed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const COMPONENTS = 220;
export const LAYERS = 10;
export const STACKS = 10;
export const SOFTWARE = 20;

const md5 = (i) => (i.toString(16).padStart(8, '0')).repeat(4);

/** Write the profile under `dir`; returns the largest software release's path. */
export function generateProfile(dir) {
  const w = (p, text) => {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), text);
  };
  w(
    'component/base/buildout.cfg',
    `# macros and host conditions every component extends
[macro-cmmi]
recipe = slapos.recipe.cmmi
configure-options =
  --disable-static
environment =
  PATH=\${buildout:bin-directory}:%(PATH)s

[macro-template]
recipe = slapos.recipe.template
url = \${:_profile_base_location_}/\${:_buildout_section_name_}.in
output = \${buildout:directory}/\${:_buildout_section_name_}

[host]
arch = unknown
[host:os.path.isdir('/usr/lib/arm-linux-gnueabihf') and os.access('/proc/device-tree/model', os.R_OK) and 'OLinuXino' in open('/proc/device-tree/model').read()]
board = olinuxino
[host:platform.machine() == 'x86_64']
arch = x86_64
[host:linux and platform.machine() == "i386"]
arch = i386
[host:sys.version_info < (3,8)]
python = old
[host:python3 and cpython and bits64]
python = 3
[host:[int(q) for q in platform.release().split(".")[:2]]<[4,14]]
kernel = old
[host:os.path.exists('/nonexistent/kiln-bench')]
never = true
`,
  );
  const layerOf = (i) => Math.floor((i * LAYERS) / COMPONENTS);
  const firstOf = (l) => Math.ceil((l * COMPONENTS) / LAYERS);
  for (let i = 0; i < COMPONENTS; i++) {
    const c = `c${String(i).padStart(3, '0')}`;
    const l = layerOf(i);
    const ext = ['../base/buildout.cfg'];
    const deps = [];
    if (l > 0) {
      const prev = firstOf(l - 1) + (i % (firstOf(l) - firstOf(l - 1)));
      deps.push(prev);
      if (i % 4 === 0 && prev + 1 < firstOf(l)) deps.push(prev + 1);
    }
    for (const d of deps) ext.push(`../c${String(d).padStart(3, '0')}/buildout.cfg`);
    const lines = ['[buildout]', 'extends =', ...ext.map((e) => `  ${e}`), `parts = ${c}`, ''];
    lines.push(`[${c}]`, '<= macro-cmmi', `url = http://example.invalid/${c}-1.${i}.tar.gz`, `md5sum = ${md5(i + 1)}`);
    lines.push('configure-options +=', ...deps.map((d) => `  --with-c${d}=\${c${String(d).padStart(3, '0')}:location}`), `  --arch=\${host:arch}`);
    if (deps.length) lines.push('environment +=', `  PKG_CONFIG_PATH=\${c${String(deps[0]).padStart(3, '0')}:location}/lib/pkgconfig`);
    lines.push(`patches = \${${c}-patch:target}`, '');
    lines.push(`[${c}-patch]`, 'recipe = slapos.recipe.build:download', 'url = ${:_profile_base_location_}/${:filename}', `filename = ${c}.patch`, `md5sum = d41d8cd98f00b204e9800998ecf8427e`, '');
    w(`component/${c}/${c}.patch`, '');
    if (i % 3 === 0) lines.push(`[${c}-python]`, 'recipe = zc.recipe.egg', `eggs = ${c}-py`, `extra-paths = \${${c}:location}/lib/python`, '');
    if (i % 5 === 0) lines.push(`[${c}-template]`, '<= macro-template', `library = \${${c}:location}/lib`, '');
    if (i % 2 === 1) lines.push(`[${c}-dev]`, `<= ${c}`, 'configure-options +=', '  --enable-debug', '');
    if (i % 7 === 0) lines.push(`[${c}:python2]`, 'configure-options += --with-python2', '');
    if (i % 11 === 0) lines.push(`[${c}:sys.version_info >= (3, 8) and 'linux' in sys.platform]`, `configure-options -= --disable-static`, '');
    w(`component/${c}/buildout.cfg`, lines.join('\n'));
  }
  const per = COMPONENTS / STACKS;
  for (let k = 0; k < STACKS; k++) {
    const comps = Array.from({ length: per }, (_, j) => `c${String(k * per + j).padStart(3, '0')}`);
    const lines = ['[buildout]', 'extends =', ...comps.map((c) => `  ../component/${c}/buildout.cfg`), 'parts +=', `  s${k}-eggs`, `  s${k}-instance`, ''];
    lines.push(`[s${k}-eggs]`, 'recipe = zc.recipe.egg', 'eggs =', ...comps.filter((_, j) => j % 3 === 0).map((c) => `  ${c}-py`), `interpreter = python-s${k}`, '');
    lines.push(`[s${k}-instance]`, '<= macro-template', ...comps.slice(0, 5).map((c) => `${c} = \${${c}:location}`), '');
    lines.push(`[s${k}-build]`, 'recipe = slapos.recipe.build', `source = \${${comps[0]}:location}`, 'init =', "  options['ready'] = 'yes'", 'install =', "  os.makedirs(location)", '');
    w(`stack/s${k}.cfg`, lines.join('\n'));
    w(`stack/s${k}-instance.in`, '[buildout]\nparts =\n');
  }
  for (let m = 0; m < SOFTWARE; m++) {
    const ext = m === 0 ? Array.from({ length: STACKS }, (_, k) => `../../stack/s${k}.cfg`) : [`../../stack/s${m % STACKS}.cfg`];
    const lines = ['[buildout]', 'extends =', ...ext.map((e) => `  ${e}`)];
    if (m === 0) {
      const parts = [];
      for (let i = 0; i < COMPONENTS; i++) {
        const c = `c${String(i).padStart(3, '0')}`;
        parts.push(c);
        if (i % 3 === 0) parts.push(`${c}-python`);
        if (i % 5 === 0) parts.push(`${c}-template`);
      }
      for (let k = 0; k < STACKS; k++) parts.push(`s${k}-eggs`, `s${k}-instance`, `s${k}-build`);
      lines.push('parts =', ...parts.map((p) => `  ${p}`));
    } else lines.push('parts +=', `  s${m % STACKS}-build`);
    lines.push('', `[sw${m}-settings]`, 'python = ${buildout:executable}', 'eggs = ${buildout:eggs-directory}', `arch = \${host:arch}`, '');
    lines.push(`[c000]`, 'configure-options +=', `  --release=sw${m}`, '');
    w(`software/sw${m}/software.cfg`, lines.join('\n'));
  }
  return join(dir, 'software/sw0/software.cfg');
}

/** Run under /usr/bin/time: wall seconds (measured here) and CPU seconds (user + sys of the process). */
function timed(cmd, args, timeoutMs) {
  const t = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'KILN-CPU %U %S', cmd, ...args], { encoding: 'utf8', maxBuffer: 256 << 20, timeout: timeoutMs, killSignal: 'SIGKILL' });
  const wall = (performance.now() - t) / 1000;
  const m = /KILN-CPU ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { r, wall, cpu: m ? Number(m[1]) + Number(m[2]) : NaN };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const args = process.argv.slice(2);
  const runs = Number(args[args.indexOf('--runs') + 1]) || (args.includes('--runs') ? 3 : 5);
  const withBuildout = !args.includes('--no-buildout');
  // zc.buildout re-opens every extended file for every extends naming it: on this profile it
  // may not finish in any reasonable time; a run over the limit is reported as such
  const limit = Number(args[args.indexOf('--buildout-timeout') + 1]) || 600;
  const keep = args.includes('--keep') ? args[args.indexOf('--keep') + 1] : undefined;
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const dir = keep ?? mkdtempSync(join(tmpdir(), 'kiln-bench-slapos-'));
  const cfg = generateProfile(dir);
  const out = join(dir, 'out');
  const kiln = [join(root, 'bin/kiln.js'), 'plan', '-c', cfg, '-o', out, '--cache', join(dir, 'cache')];
  const oracle = [join(root, 'scripts/buildout-oracle.py'), '--recipes', '--set', `buildout:parts-directory=${join(out, 'parts')}`, cfg];
  const first = spawnSync(process.execPath, kiln, { encoding: 'utf8' });
  if (first.status !== 0) throw new Error(`kiln plan failed (${first.status}):\n${first.stderr}`);
  const summary = first.stdout.trim().split('\n').pop();
  console.log(`profile: ${cfg}\nkiln plan: ${summary}\n${first.stderr.split('\n').filter((l) => /not implemented|^\s+\S+: /.test(l)).slice(0, 6).join('\n')}`);
  const tk = [];
  const ck = [];
  const tb = [];
  const cb = [];
  const fmt = (w, c) => `${w.toFixed(2)} s (cpu ${c.toFixed(2)} s)`;
  for (let r = 0; r < runs; r++) {
    const k = timed(process.execPath, kiln);
    if (k.r.status !== 0) throw new Error(k.r.stderr);
    tk.push(k.wall);
    ck.push(k.cpu);
    if (withBuildout) {
      const b = timed('/usr/bin/python3', oracle, limit * 1000);
      if (b.r.signal || b.r.error) {
        console.log(`run ${r + 1}: kiln plan ${fmt(tk[r], ck[r])}, zc.buildout did not finish in ${limit} s`);
        continue;
      }
      tb.push(b.wall);
      cb.push(b.cpu);
      if (tb.length === 1) {
        const res = JSON.parse(b.r.stdout.trim());
        console.log(`zc.buildout: ${res.error ? `error ${res.error.message}` : `${res.sections.length} sections resolved`}`);
      }
    }
    console.log(`run ${r + 1}: kiln plan ${fmt(tk[r], ck[r])}${withBuildout ? `, zc.buildout ${fmt(tb[tb.length - 1], cb[cb.length - 1])}` : ''}`);
  }
  console.log(`median of ${runs}: kiln plan ${fmt(median(tk), median(ck))}${tb.length ? `, zc.buildout (${tb.length} finished) ${fmt(median(tb), median(cb))}` : ''}`);
  if (!keep) rmSync(dir, { recursive: true, force: true });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
