/**
 * SlapOS-style profiles (test/fixtures/slapos: components extending components by relative
 * path, a stack, software releases extending it; conditional headers of every form,
 * ${:_profile_base_location_}, macros across files, +=/-= across extends chains), loaded as a
 * kiln project, against Debian's zc.buildout with a test recipe that sets `location` as the
 * SlapOS recipes do (scripts/buildout-oracle.py --recipes): every section, every option equal.
 * Then a table of header expressions against the oracle, the Python fallback (one process per
 * load, logged, missing Python), and the CLI on a 250-file profile (bench/slapos-profile.mjs).
 */
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateProfile } from '../bench/slapos-profile.mjs';
import { ConfigLanguageError, loadConfig } from '../src/config/index.js';
import { defaultConditionGlobals, evalCondition, ExprError, PyRaise } from '../src/config/expr.js';
import type { BuildoutConfig } from '../src/config/resolve.js';
import { loadProject } from '../src/engine/project.js';
import { runBuildoutOracle, type Sections } from './helpers/buildout-oracle.js';
import { kiln } from './helpers/kiln.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CORPUS = path.join(ROOT, 'test/fixtures/slapos');
const PYTHON = '/usr/bin/python3';

const oracle = (args: string[], files: string[]) => runBuildoutOracle([...args, ...files]);

let tmp = '';
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'kiln-slapos-'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** kiln's own [buildout] options, besides zc.buildout's (docs/architecture.md item 1). */
const KILN_OWN = new Set(['out-directory', 'logs-directory', 'download-cache', 'shared-part-list', 'kiln-cache-directory', 'source-date-epoch']);

describe('SlapOS-style profiles vs zc.buildout with a location-setting test recipe', () => {
  const profiles = ['software/demo/software.cfg', 'software/web/software.cfg', 'stack/slapos.cfg', 'component/python3/buildout.cfg'];
  for (const rel of profiles) {
    it(rel, async () => {
      const file = path.join(CORPUS, rel);
      const out = path.join(tmp, rel.replace(/\W/g, '_'));
      const want = (await oracle(['--recipes', '--set', `buildout:parts-directory=${path.join(out, 'parts')}`], [file])).get(file)!;
      expect(want.error, want.error?.message).toBeUndefined();
      const logs: string[] = [];
      const { project } = await loadProject({ configFile: file, outDir: out, cacheDir: path.join(tmp, 'cache'), offline: true });
      const cfg = project.config as BuildoutConfig;
      void logs;
      const theirs = new Map(want.sections!.map(([n, opts]) => [n, new Map(opts)]));
      expect(new Set(cfg.sectionNames())).toEqual(new Set(theirs.keys()));
      let compared = 0;
      for (const [name, opts] of theirs) {
        const mine = new Map(cfg.sectionEntries(name));
        for (const [k, v] of opts) {
          expect(mine.get(k), `[${name}] ${k}`).toBe(v);
          compared++;
        }
        // kiln adds its own [buildout] options, and to parts the declared defaults of the kind a
        // SlapOS recipe maps to (configure-command, make-binary, ...): nothing else
        for (const k of mine.keys())
          if (!opts.has(k))
            expect(name === 'buildout' ? KILN_OWN.has(k) : /^<kiln default for (?!part>)/.test(cfg.origin(name, k)?.file ?? ''), `kiln's extra option [${name}] ${k}`).toBe(true);
      }
      expect(compared).toBeGreaterThan(100);
      // every form of header was met; two needed Python
      expect(cfg.conditionStats!.native).toBeGreaterThanOrEqual(14);
      expect([...cfg.conditionStats!.fallbackExpressions].sort()).toEqual([
        '[int(q) for q in platform.release().split(".")[:2]]<[4,14]',
        "sys.version_info < (3, 10) or (platform.freedesktop_os_release()['ID'] == 'debian' and int(platform.freedesktop_os_release()['VERSION_ID']) < 12)",
      ]);
      // the recipes kiln does not implement are known, not errors
      if (rel === 'software/demo/software.cfg') {
        expect([...project.unknownRecipes.keys()].sort()).toEqual(['slapos.recipe.build', 'slapos.recipe.template']);
        expect(project.parts.get('demo-build')!.unknownRecipe).toBe(true);
        // python3-dev sets options slapos.recipe.cmmi does not take (version, executable): planned, not buildable
        expect(project.parts.get('python3-dev')!.unsupported?.message).toMatch(/unknown option '(executable|version)' for recipe slapos.recipe.cmmi/);
      }
    });
  }

  it('${:_profile_base_location_} is the directory of the file that wrote the value, through macros and extends', async () => {
    const file = path.join(CORPUS, 'software/web/software.cfg');
    const { project } = await loadProject({ configFile: file, outDir: path.join(tmp, 'pbl'), cacheDir: path.join(tmp, 'cache'), offline: true });
    expect(project.config.get('zlib-patch', 'url')).toBe(path.join(CORPUS, 'component/zlib/zlib-fix.patch'));
    expect(project.config.get('web-conf', 'url')).toBe(path.join(CORPUS, 'component/macros/web-conf.in'));
    expect(project.config.get('zlib-patch', 'target')).toBe(path.join(tmp, 'pbl/parts/zlib-patch/zlib-fix.patch'));
    expect(project.config.get('buildout', 'executable')).toBe('/usr/bin/python3');
    expect(project.config.get('buildout', 'eggs-directory')).toBe(path.join(CORPUS, 'software/web/eggs'));
  });
});

describe('section-header conditions vs zc.buildout', () => {
  let dir = '';
  let file = '';
  let missing = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmp, 'cond-'));
    file = path.join(dir, 'marker.txt');
    missing = path.join(dir, 'no-such-file');
    writeFileSync(file, 'hello marker\r\nsecond line\n');
  });
  // [expression, evaluated natively by kiln?]
  const table = (): Array<[string, boolean]> => [
    [`os.path.isdir(${JSON.stringify(dir)})`, true],
    [`os.path.isdir(${JSON.stringify(missing)})`, true],
    [`os.path.exists(${JSON.stringify(file)}) and os.path.isfile(${JSON.stringify(file)})`, true],
    [`os.path.exists(${JSON.stringify(missing)})`, true],
    [`os.path.islink(${JSON.stringify(file)}) or os.path.isabs('relative')`, true],
    [`os.access(${JSON.stringify(file)}, os.R_OK) and os.access(${JSON.stringify(file)}, os.W_OK)`, true],
    [`os.access(${JSON.stringify(file)}, os.X_OK)`, true],
    [`os.access(${JSON.stringify(missing)}, os.F_OK)`, true],
    [`'marker' in open(${JSON.stringify(file)}).read()`, true],
    [`'absent' in open(${JSON.stringify(file)}).read()`, true],
    [`open(${JSON.stringify(file)}).read() == 'hello marker\\nsecond line\\n'`, true],
    [`os.path.isdir('/usr/lib/arm-linux-gnueabihf') and os.access('/proc/device-tree/model', os.R_OK) and 'OLinuXino' in open('/proc/device-tree/model').read()`, true],
    [`os.path.join('a', 'b', '/c', 'd') == '/c/d' and os.path.basename('/x/y.cfg') == 'y.cfg' and os.path.dirname('/x/y.cfg') == '/x'`, true],
    [`platform.machine() == 'x86_64'`, true],
    [`platform.system() == 'Linux' and platform.python_version().startswith('3.')`, true],
    [`sys.platform.startswith('linux') and 'linux' in sys.platform`, true],
    [`sys.version_info < (3, 8)`, true],
    [`sys.version_info >= (3, 11) and sys.version_info.major == 3`, true],
    [`python3 and cpython and bits64 and linux and posix and little_endian and not windows`, true],
    [`python2 or pypy or jython or bits32 or macosx`, true],
    [`not linux or platform.machine() != 'riscv64'`, true],
    [`platform.freedesktop_os_release()['ID'] == 'debian'`, false],
    [`int(platform.freedesktop_os_release()['VERSION_ID']) >= 12`, false],
    [`[int(q) for q in platform.release().split(".")[:2]] < [4,14]`, false],
    [`[int(q) for q in platform.release().split(".")[:2]] >= [4,14]`, false],
    [`'abcdef'[2:4] == 'cd'`, false],
    [`sys.version_info[:2] >= (3, 8)`, false],
    [`any(x.startswith('lin') for x in [sys.platform])`, false],
    [`len(open(${JSON.stringify(file)}).readlines()) == 2`, true],
  ];

  it('every expression has the value zc.buildout gives it; the native subset needs no Python', async () => {
    const rows = table();
    const lines = ['[buildout]', 'parts ='];
    rows.forEach(([e], i) => lines.push(`[t${i}]`, 'v = false', `[t${i}:${e}]`, 'v = true'));
    const cfgFile = path.join(dir, 'table.cfg');
    writeFileSync(cfgFile, lines.join('\n') + '\n');
    const want = (await oracle([], [cfgFile])).get(cfgFile)!;
    expect(want.error, want.error?.message).toBeUndefined();
    const theirs = new Map(want.sections!.map(([n, o]) => [n, new Map(o).get('v')]));
    const logs: string[] = [];
    const cfg = await loadConfig(cfgFile, { overrides: [{ section: 'buildout', option: 'offline', value: 'true' }], log: (m) => logs.push(m) });
    const g = defaultConditionGlobals();
    let trues = 0;
    rows.forEach(([e, native], i) => {
      expect(cfg.get(`t${i}`, 'v'), e).toBe(theirs.get(`t${i}`));
      if (theirs.get(`t${i}`) === 'true') trues++;
      if (native) expect(() => evalCondition(e, g), e).not.toThrow();
      else expect(() => evalCondition(e, g), e).toThrow(ExprError);
    });
    expect(trues).toBeGreaterThan(5);
    expect(trues).toBeLessThan(rows.length - 5);
    // one log line per expression Python evaluated, naming file:line and the expression
    const fallbacks = rows.filter(([, n]) => !n);
    expect(cfg.conditionStats!.fallback).toBe(fallbacks.length);
    expect(logs).toHaveLength(fallbacks.length);
    expect(logs[0]).toContain(`${cfgFile}:`);
    expect(logs.join('\n')).toContain(`platform.freedesktop_os_release()['ID'] == 'debian'] evaluated by ${PYTHON}`);
  });

  it('expressions that raise fail as in zc.buildout: the header, file:line and Python\'s message', async () => {
    const bad = [
      `'x' in open(${JSON.stringify(path.join(tmp, 'nope', 'model'))}).read()`,
      `platform.freedesktop_os_release()['NO_SUCH_KEY'] == 'x'`,
      `frobnicate(1)`,
      `linux and`,
      `'a' < 1`,
    ];
    const files = bad.map((e, i) => {
      const f = path.join(dir, `bad${i}.cfg`);
      writeFileSync(f, `[buildout]\nparts =\n[ok]\nx = 1\n[s${i}:${e}]\nx = 2\n`);
      return f;
    });
    const want = await oracle([], files);
    for (const [i, f] of files.entries()) {
      const w = want.get(f)!;
      expect(w.error, bad[i]).toBeDefined();
      const err = await loadConfig(f, { log: () => {} }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, bad[i]).toBeInstanceOf(ConfigLanguageError);
      const e = err as ConfigLanguageError;
      expect(e.kind).toBe('condition');
      expect(e.origin).toEqual({ file: f, line: 5 });
      expect(e.message).toContain(`[s${i}:${bad[i]}]`);
      expect(e.message).toContain(w.error!.message.replace(/ \(<string>, line 1\)$/, ''));
    }
  });

  it('one Python process for all the fallback headers of a load; without Python, a clear error naming header and construct', async () => {
    const log = path.join(dir, 'starts.log');
    const wrapper = path.join(dir, 'python-wrapper');
    writeFileSync(wrapper, `#!/bin/sh\necho start >> '${log}'\nexec ${PYTHON} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const d = mkdtempSync(path.join(dir, 'two-'));
    writeFileSync(path.join(d, 'base.cfg'), `[a]\nx = 0\n[a:'abc'[1:] == 'bc']\nx = 1\n[b:[c for c in 'xy'][0] == 'x']\ny = 1\n`);
    writeFileSync(
      path.join(d, 'buildout.cfg'),
      `[buildout]\nextends = base.cfg\nparts =\n[a:platform.freedesktop_os_release()['ID'] != '']\nz = 1\n[c:sorted([3, 1])[0] == 1]\nw = 1\n[d:linux]\nv = 1\n`,
    );
    const cfg = await loadConfig(path.join(d, 'buildout.cfg'), { python: wrapper, log: () => {} });
    expect(cfg.section('a')).toEqual({ x: '1', z: '1' });
    expect(cfg.get('b', 'y')).toBe('1');
    expect(cfg.get('c', 'w')).toBe('1');
    expect(cfg.conditionStats).toMatchObject({ native: 1, fallback: 4 });
    expect(readFileSync(log, 'utf8')).toBe('start\n');
    // no Python: the native subset still loads, the rest is an error naming the construct
    const native = path.join(d, 'native.cfg');
    writeFileSync(native, `[buildout]\nparts =\n[a:linux and os.path.isdir('/')]\nx = 1\n`);
    expect((await loadConfig(native, { python: path.join(dir, 'no-python3') })).get('a', 'x')).toBe('1');
    const err = (await loadConfig(path.join(d, 'buildout.cfg'), { python: path.join(dir, 'no-python3') }).catch((e: unknown) => e)) as ConfigLanguageError;
    expect(err).toBeInstanceOf(ConfigLanguageError);
    expect(err.kind).toBe('condition');
    // the top file is read first, as zc.buildout does: its first header needing Python fails
    expect(err.origin).toEqual({ file: path.join(d, 'buildout.cfg'), line: 4 });
    expect(err.message).toContain(`[a:platform.freedesktop_os_release()['ID'] != '']`);
    expect(err.message).toContain('the attribute platform.freedesktop_os_release');
    const slice = path.join(d, 'slice.cfg');
    writeFileSync(slice, `[buildout]\nparts =\n[a:'abc'[1:] == 'bc']\nx = 1\n`);
    const err2 = (await loadConfig(slice, { python: null }).catch((e: unknown) => e)) as ConfigLanguageError;
    expect(err2.message).toMatch(/\[a:'abc'\[1:\] == 'bc'\]: a slice \(\[a:b\]\) is outside the subset kiln evaluates natively, and evaluation by Python is turned off/);
    expect(err.message).toContain(`no Python interpreter at ${path.join(dir, 'no-python3')}`);
    // a definite Python error needs no Python to be reported
    expect(() => evalCondition("'a' < 1", defaultConditionGlobals())).toThrow(PyRaise);
  });
});

describe('kiln plan, graph, show and build on a 250-file SlapOS-style profile', () => {
  let dir = '';
  let cfg = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmp, 'big-'));
    cfg = generateProfile(dir);
  });
  const unknownListed = (stderr: string) => {
    for (const r of ['zc.recipe.egg', 'slapos.recipe.template', 'slapos.recipe.build']) {
      const lines = stderr.split('\n').filter((l) => l.startsWith(`  ${r}: `));
      expect(lines, r).toHaveLength(1);
    }
    expect(stderr).toMatch(/kiln: 3 recipes not implemented by kiln/);
    expect(stderr.match(/not implemented by kiln/g)).toHaveLength(1);
  };

  it('plan and graph --format dot exit 0 and list the unknown recipes once, grouped', () => {
    const plan = kiln(dir, ['plan', '-c', cfg]);
    expect(plan.code, plan.stderr).toBe(0);
    const n = Number(/(\d+) of (\d+) parts to build/.exec(plan.stdout)![2]);
    expect(n).toBeGreaterThan(500);
    unknownListed(plan.stderr);
    expect(plan.stderr).toMatch(/^ {2}zc\.recipe\.egg: c000-python, c003-python, /m);
    const graph = kiln(dir, ['graph', '-c', cfg, '--format', 'dot']);
    expect(graph.code, graph.stderr).toBe(0);
    expect(graph.stdout).toMatch(/^digraph/);
    expect(graph.stdout).toContain('"c219"');
    unknownListed(graph.stderr);
  });

  it('build of a part with an unknown recipe exits 3 before building anything', () => {
    const r = kiln(dir, ['build', '-c', cfg, '--json', 'c003-python']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot build: 1 recipe not implemented by kiln[^\n]*\n {2}zc\.recipe\.egg: c003-python/);
    expect(r.events.filter((e) => e.type === 'part-start')).toEqual([]);
    expect(existsSync(path.join(dir, 'out', 'parts'))).toBe(false);
  });

  it('a section with an empty recipe is no part, and a buildout entry point kiln does not implement is an unknown recipe', () => {
    const d = mkdtempSync(path.join(tmp, 'empty-'));
    writeFileSync(
      path.join(d, 'buildout.cfg'),
      '[buildout]\nparts = a vm\n[base]\nrecipe =\nlocation = ${buildout:parts-directory}/base\n[a]\nrecipe = plone.recipe.command\ncommand = true\nbase = ${base:location}\n[vm]\nrecipe = slapos.recipe.build:vm.install-ubuntu\n',
    );
    const plan = kiln(d, ['plan']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/a \(command\)/);
    expect(plan.stdout).not.toMatch(/base \(/);
    expect(plan.stderr).toMatch(/^ {2}slapos\.recipe\.build:vm\.install-ubuntu: vm$/m);
  });

  it('show works on a section when another section of the profile is broken', () => {
    const d = mkdtempSync(path.join(tmp, 'show-'));
    cpSync(CORPUS, d, { recursive: true });
    const sw = path.join(d, 'software/demo/software.cfg');
    writeFileSync(sw, readFileSync(sw, 'utf8') + '\n[binutils]\nbroken = ${nowhere:x}\n');
    const plan = kiln(d, ['plan', '-c', sw]);
    expect(plan.code).toBe(3);
    expect(plan.stderr).toMatch(/nowhere/);
    const show = kiln(d, ['show', '-c', sw, 'zlib-patch']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(`target = ${path.join(d, 'out/parts/zlib-patch/zlib-fix.patch')}`);
    expect(show.stderr).toMatch(/the project does not load as a whole .*nowhere.*; \[zlib-patch\] is shown from the config alone/);
    const broken = kiln(d, ['show', '-c', sw, 'binutils']);
    expect(broken.code).toBe(3);
    // an unknown-recipe part shows its location
    const ok = kiln(path.join(CORPUS, '..'), ['show', '-c', path.join(CORPUS, 'software/demo/software.cfg'), '-o', path.join(d, 'o2'), 'demo-build']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`location = ${path.join(d, 'o2/parts/demo-build')}`);
    expect(ok.stdout).toContain('executable = /usr/bin/python3');
  });
});
