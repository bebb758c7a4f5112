/** Unit tests of the config language: origins, history, references, errors, kiln options. */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/lib/errors.js';
import { ConfigLanguageError, loadConfig } from '../src/config/index.js';
import { evalCondition, defaultConditionGlobals, ExprError } from '../src/config/expr.js';

const root = mkdtempSync(path.join(tmpdir(), 'kiln-config-'));
let n = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Write files (name -> text) into a fresh directory; returns the directory. */
function files(spec: Record<string, string>): string {
  const dir = path.join(root, `t${n++}`);
  for (const [name, text] of Object.entries(spec)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

async function load(spec: Record<string, string>, opts = {}) {
  const dir = files(spec);
  return { dir, cfg: await loadConfig(path.join(dir, 'buildout.cfg'), opts) };
}

async function error(fn: () => unknown): Promise<ConfigLanguageError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigLanguageError);
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigLanguageError;
  }
  throw new Error('expected a ConfigError');
}

describe('origins and history', () => {
  it('records file:line of the final definition, through extends, += and macros', async () => {
    const { dir, cfg } = await load({
      'base/base.cfg': '[a]\nx = 1\nlist = one\n',
      'buildout.cfg': '[buildout]\nextends = base/base.cfg\nparts =\n\n[a]\nlist += two\n\n[m]\n<= a\ny = 2\n',
    });
    const base = path.join(dir, 'base/base.cfg');
    const top = path.join(dir, 'buildout.cfg');
    expect(cfg.file).toBe(top);
    expect(cfg.origin('a', 'x')).toEqual({ file: base, line: 2 });
    expect(cfg.origin('a', 'list')).toEqual({ file: top, line: 6 });
    expect(cfg.get('a', 'list')).toBe('one\ntwo');
    // macro copies keep the origin of the copied definition
    expect(cfg.origin('m', 'x')).toEqual({ file: base, line: 2 });
    expect(cfg.origin('m', 'y')).toEqual({ file: top, line: 10 });
    expect(cfg.sectionOrigin('a')).toEqual({ file: base, line: 1 });
    expect(cfg.sectionOrigin('m')).toEqual({ file: top, line: 8 });

    expect(cfg.history('a', 'list').map((h) => [h.op, h.value, h.origin.line])).toEqual([
      ['=', 'one', 3],
      ['+=', 'two', 6],
    ]);
    expect(cfg.history('m', 'list').map((h) => h.op)).toEqual(['=', '+=', 'macro']);
    expect(cfg.history('m', 'list').at(-1)!.origin).toEqual({ file: top, line: 9 });
  });

  it('lists overrides by later files and defaults', async () => {
    const { dir, cfg } = await load({
      'a.cfg': '[s]\nv = a\n',
      'b.cfg': '[s]\nv = b\n',
      'buildout.cfg': '[buildout]\nextends = a.cfg b.cfg\nparts =\n',
    });
    expect(cfg.get('s', 'v')).toBe('b');
    expect(cfg.history('s', 'v').map((h) => [h.op, h.value, path.basename(h.origin.file)])).toEqual([
      ['=', 'a', 'a.cfg'],
      ['=', 'b', 'b.cfg'],
    ]);
    expect(cfg.history('buildout', 'bin-directory')[0].op).toBe('default');
    expect(cfg.history('buildout', 'directory')[0]).toMatchObject({ op: 'default', value: dir });
  });

  it('command-line overrides win and are recorded', async () => {
    const { cfg } = await load(
      { 'buildout.cfg': '[buildout]\nparts = a\n[a]\nx = 1\ny = ${:x}\n' },
      { overrides: [{ section: 'a', option: 'x', value: '2' }, { section: 'new', option: 'z', value: '3' }] },
    );
    expect(cfg.get('a', 'y')).toBe('2');
    expect(cfg.get('new', 'z')).toBe('3');
    expect(cfg.history('a', 'x').map((h) => h.op)).toEqual(['=', 'override']);
  });
});

describe('remote extends', () => {
  it('keeps URLs as origins and resolves relative names against the extending URL', async () => {
    const remote = files({ 'r/base.cfg': '[buildout]\nextends = ../common/more.cfg\n[a]\nx = base\n', 'common/more.cfg': '[a]\ny = more\n' });
    const server = createServer((req, res) => {
      const p = path.join(remote, path.normalize(req.url ?? '/'));
      try {
        res.end(readFileSync(p));
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { cfg } = await load({ 'buildout.cfg': `[buildout]\nextends = ${url}/r/base.cfg\nparts =\n[a]\nz = \${:x}\${:y}\n` });
      expect(cfg.get('a', 'z')).toBe('basemore');
      expect(cfg.origin('a', 'x')).toEqual({ file: `${url}/r/base.cfg`, line: 4 });
      expect(cfg.origin('a', 'y')).toEqual({ file: `${url}/common/more.cfg`, line: 2 });
      const offline = await error(() =>
        load({ 'buildout.cfg': `[buildout]\nextends = ${url}/r/base.cfg\n` }, { overrides: [{ section: 'buildout', option: 'offline', value: 'true' }] }),
      );
      expect(offline.kind).toBe('io');
      expect(offline.message).toContain('offline');
      const missing = await error(() => load({ 'buildout.cfg': `[buildout]\nextends = ${url}/nope.cfg\n` }));
      expect(missing.kind).toBe('io');
      expect(missing.origin?.line).toBe(2);
    } finally {
      server.close();
    }
    const fileUrl = pathToFileURL(path.join(remote, 'r/base.cfg')).href;
    const { cfg } = await load({ 'buildout.cfg': `[buildout]\nextends = ${fileUrl}\nparts =\n` });
    expect(cfg.get('a', 'y')).toBe('more');
    expect(cfg.origin('a', 'y')?.file).toBe(pathToFileURL(path.join(remote, 'common/more.cfg')).href);
  });
});

describe('references', () => {
  it('lists directly referenced sections with the origin of the referencing option', async () => {
    const { dir, cfg } = await load({
      'buildout.cfg': [
        '[buildout]',
        'parts = app',
        '[app]',
        'x = ${lib:path} ${:y}',
        'y = ${app:z} $${escaped:ref}',
        'z = ${tool:bin}/run',
        '=> extra',
        '[lib]',
        'path = ${tool:bin}/lib',
        '[tool]',
        'bin = /usr/bin',
        '[extra]',
        '',
      ].join('\n'),
    });
    const top = path.join(dir, 'buildout.cfg');
    const refs = cfg.references('app');
    expect([...refs.keys()].sort()).toEqual(['extra', 'lib', 'tool']);
    expect(refs.get('lib')).toEqual({ file: top, line: 4 });
    expect(refs.get('tool')).toEqual({ file: top, line: 6 });
    expect(refs.get('extra')).toEqual({ file: top, line: 7 });
    expect([...cfg.references('lib').keys()]).toEqual(['tool']);
    expect(cfg.references('tool').size).toBe(0);
  });
});

describe('errors name file:line, section and option', () => {
  it('unknown section', async () => {
    const { dir, cfg } = await load({ 'buildout.cfg': '[buildout]\nparts = a\n[a]\nok = 1\nbad = x ${nosuch:opt}\n' });
    const e = await error(() => cfg.get('a', 'bad'));
    expect(e.kind).toBe('missing-section');
    expect(e.origin).toEqual({ file: path.join(dir, 'buildout.cfg'), line: 5 });
    expect(e.section).toBe('a');
    expect(e.option).toBe('bad');
    expect(e.message).toContain(`${path.join(dir, 'buildout.cfg')}:5`);
    expect(e.message).toContain('[a] bad');
    expect(e.message).toContain('nosuch');
  });

  it('unknown option', async () => {
    const { cfg } = await load({ 'buildout.cfg': '[buildout]\nparts = a\n[a]\nx = ${b:nope}\n[b]\n' });
    const e = await error(() => cfg.section('a'));
    expect(e.kind).toBe('missing-option');
    expect(e.origin?.line).toBe(4);
    expect(e.option).toBe('x');
    expect(e.message).toMatch(/'nope'.*\[b\]/);
  });

  it('substitution cycle shows its path', async () => {
    const { dir, cfg } = await load({
      'base.cfg': '[c]\nz = ${a:x}\n',
      'buildout.cfg': '[buildout]\nextends = base.cfg\nparts = a\n[a]\nx = ${b:y}\n[b]\ny = ${c:z}\n',
    });
    const e = await error(() => cfg.get('a', 'x'));
    expect(e.kind).toBe('cycle');
    // sections are initialised (all their options substituted) when first referenced, as in
    // zc.buildout, so the cycle is found while [c] is initialised inside [b] inside [a]
    expect(e.message).toContain('c:z -> a:x -> b:y -> c:z');
    expect(e.origin).toEqual({ file: path.join(dir, 'buildout.cfg'), line: 7 });
    expect(e.section).toBe('b');
    expect(e.option).toBe('y');
    const { cfg: two } = await load({ 'buildout.cfg': '[buildout]\nparts =\n[a]\nx = ${:y}\ny = ${:x}\n' });
    const e2 = await error(() => two.get('a', 'y'));
    expect(e2.message).toContain('a:x -> a:y -> a:x');
    expect(e2.origin?.line).toBe(5);
  });

  it('macro loop and missing macro source', async () => {
    const { cfg } = await load({ 'buildout.cfg': '[buildout]\nparts =\n[a]\n<= b\n[b]\n<= a\n[c]\n<= nowhere\n' });
    const e = await error(() => cfg.get('a', 'x'));
    expect(e.kind).toBe('macro-loop');
    expect(e.message).toContain('a <= b <= a');
    expect(e.origin?.line).toBe(6);
    const m = await error(() => cfg.section('c'));
    expect(m.kind).toBe('missing-section');
    expect(m.origin?.line).toBe(8);
  });

  it('extends loop, missing file, syntax and conditions', async () => {
    const d1 = files({ 'buildout.cfg': '[buildout]\nextends = a.cfg\n', 'a.cfg': '[buildout]\nextends = buildout.cfg\n' });
    const e1 = await error(() => loadConfig(path.join(d1, 'buildout.cfg')));
    expect(e1.kind).toBe('extends-loop');
    expect(e1.origin).toEqual({ file: path.join(d1, 'a.cfg'), line: 2 });
    expect(e1.message).toContain(`${path.join(d1, 'buildout.cfg')} -> ${path.join(d1, 'a.cfg')} -> ${path.join(d1, 'buildout.cfg')}`);

    const d2 = files({ 'buildout.cfg': '[buildout]\nparts =\n\nextends =\n  sub/nothere.cfg\n' });
    const e2 = await error(() => loadConfig(path.join(d2, 'buildout.cfg')));
    expect(e2.kind).toBe('io');
    expect(e2.origin?.line).toBe(4);

    const d3 = files({ 'buildout.cfg': '[buildout]\nparts =\n[a]\nx = 1\noops\n' });
    const e3 = await error(() => loadConfig(path.join(d3, 'buildout.cfg')));
    expect(e3.kind).toBe('syntax');
    expect(e3.origin?.line).toBe(5);

    const d4 = files({ 'buildout.cfg': '[buildout]\nparts =\n[a:linux and frobnicate()]\nx = 1\n' });
    const e4 = await error(() => loadConfig(path.join(d4, 'buildout.cfg')));
    expect(e4.kind).toBe('condition');
    expect(e4.origin?.line).toBe(3);
    expect(e4.message).toContain("name 'frobnicate' is not defined");

    await expect(loadConfig(path.join(d4, 'missing.cfg'))).rejects.toMatchObject({ kind: 'io' });
  });

  it('malformed references', async () => {
    const { cfg } = await load({ 'buildout.cfg': '[buildout]\nparts =\n[a]\nx = ${nocolon}\n' });
    const e = await error(() => cfg.get('a', 'x'));
    expect(e.kind).toBe('substitution-syntax');
    expect(e.origin?.line).toBe(4);
  });

  it('a reference chain too deep for the stack', async () => {
    const lines = ['[buildout]', 'parts ='];
    for (let i = 0; i < 3000; i++) lines.push(`[p${i}]`, `v = ${i + 1 < 3000 ? `\${p${i + 1}:v}x` : '0'}`);
    const { dir, cfg } = await load({ 'buildout.cfg': lines.join('\n') });
    const e = await error(() => cfg.get('p0', 'v'));
    expect(e.message).toContain('nested too deeply');
    expect(e.origin).toEqual({ file: path.join(dir, 'buildout.cfg'), line: 4 });
    expect(cfg.get('p2990', 'v')).toBe('0' + 'x'.repeat(9));
  });

  it('a missing option asked for by the engine', async () => {
    const { cfg } = await load({ 'buildout.cfg': '[buildout]\nparts =\n[a]\n' });
    const e = await error(() => cfg.get('a', 'nope'));
    expect(e.kind).toBe('missing-option');
    expect(cfg.getOptional('a', 'nope')).toBeUndefined();
    expect(cfg.getOptional('nosection', 'nope')).toBeUndefined();
    expect((await error(() => cfg.get('zzz', 'x'))).kind).toBe('missing-section');
  });
});

describe('engine API', () => {
  it('setDefault provides values for ${:location} without overriding or leaking through macros', async () => {
    const { cfg } = await load({
      'buildout.cfg': [
        '[buildout]',
        'parts = a b',
        '[a]',
        'bin = ${:location}/bin',
        '[b]',
        '<= a',
        'location = /explicit',
        '[c]',
        '<= a',
      ].join('\n'),
    });
    const o = { file: '<engine>', line: 0 };
    cfg.setDefault('a', 'location', '/parts/a', o);
    cfg.setDefault('b', 'location', '/parts/b', o);
    expect(cfg.get('a', 'bin')).toBe('/parts/a/bin');
    expect(cfg.get('b', 'bin')).toBe('/explicit/bin');
    expect(cfg.get('b', 'location')).toBe('/explicit');
    await expect(async () => cfg.get('c', 'bin')).rejects.toThrow(/location/);
    expect(cfg.origin('a', 'location')).toEqual(o);
    expect(cfg.history('a', 'location')[0].op).toBe('default');
    expect(cfg.optionNames('a')).toEqual(['bin', 'location']);
  });

  it('raw, optionNames, sectionNames, has', async () => {
    const { cfg } = await load({
      'buildout.cfg': '[buildout]\nparts = p\n[t]\nk = ${:n}\n[p]\n<= t\nn = 1\nm = $${x:y}\n',
    });
    expect(cfg.sectionNames()).toEqual(['buildout', 't', 'p', 'versions']);
    expect(cfg.has('p')).toBe(true);
    expect(cfg.has('q')).toBe(false);
    expect(cfg.optionNames('p')).toEqual(['k', 'n', 'm']);
    expect(cfg.raw('p', 'k')).toBe('${:n}');
    expect(cfg.get('p', 'k')).toBe('1');
    expect(cfg.get('p', 'm')).toBe('$${x:y}'); // zc.buildout keeps $$ for recipes
    expect(cfg.section('p')).toEqual({ k: '1', n: '1', m: '$${x:y}' });
  });

  it('kiln defaults replace zc.buildout defaults', async () => {
    const { dir, cfg } = await load(
      { 'buildout.cfg': '[buildout]\nparts = a\nparts-directory = work\n[a]\nloc = ${buildout:parts-directory}/a\n' },
      { buildoutDefaults: { 'parts-directory': 'parts', 'cache-directory': '/var/cache/kiln' } },
    );
    expect(cfg.sectionNames()).toEqual(['buildout', 'a']);
    expect(cfg.get('buildout', 'directory')).toBe(dir);
    expect(cfg.get('a', 'loc')).toBe(path.join(dir, 'work/a'));
    expect(cfg.get('buildout', 'cache-directory')).toBe('/var/cache/kiln');
    expect(cfg.getOptional('buildout', 'eggs-directory')).toBeUndefined();
    expect(cfg.optionNames('buildout')).toEqual(['parts-directory', 'cache-directory', 'directory', 'parts']);
  });

  it('conditionGlobals override host values', async () => {
    const spec = { 'buildout.cfg': '[buildout]\nparts =\n[a]\nx = posix\n[a:windows]\nx = windows\n[a:platform.machine() == "riscv64"]\ny = rv\n' };
    const { cfg } = await load(spec);
    expect(cfg.get('a', 'x')).toBe('posix');
    const { cfg: w } = await load(spec, {
      conditionGlobals: { windows: true, platform: { machine: () => 'riscv64' } },
    });
    expect(w.get('a', 'x')).toBe('windows');
    expect(w.get('a', 'y')).toBe('rv');
  });

  it('loads 500 cross-referencing sections', async () => {
    const lines = ['[buildout]', `parts = ${Array.from({ length: 500 }, (_, i) => `p${i}`).join(' ')}`];
    for (let i = 0; i < 500; i++) {
      lines.push(`[p${i}]`, 'recipe = kiln:cmd', `dep = ${i ? `\${p${i - 1}:out}` : 'none'}`, `out = \${buildout:parts-directory}/p${i}`);
    }
    const { dir, cfg } = await load({ 'buildout.cfg': lines.join('\n') + '\n' });
    for (const s of cfg.sectionNames()) cfg.section(s);
    expect(cfg.get('p499', 'dep')).toBe(path.join(dir, 'parts/p498'));
    expect([...cfg.references('p499').keys()]).toEqual(['p498', 'buildout']);
  });
});

describe('condition expressions', () => {
  const g = { ...defaultConditionGlobals(), linux: true, windows: false, sys: { platform: 'linux', version_info: [3, 11, 2, 'final', 0] } };
  const ev = (e: string) => evalCondition(e, g);
  it('evaluates the Python subset', () => {
    expect(ev('linux')).toBe(true);
    expect(ev('not linux or windows')).toBe(false);
    expect(ev("linux and 'yes'")).toBe('yes');
    expect(ev('sys.version_info >= (3, 8)')).toBe(true);
    expect(ev('sys.version_info[0] == 3')).toBe(true);
    expect(ev("sys.platform.startswith(('win', 'lin'))")).toBe(true);
    expect(ev("'nux' in sys.platform and 'x' not in 'abc'")).toBe(true);
    expect(ev('1 < 2 < 3 > 2 == 2')).toBe(true);
    expect(ev('1 < 2 > 3')).toBe(false);
    expect(ev('True == 1 and None is None')).toBe(true);
    expect(ev("'a' if windows else 'b'")).toBe('b');
    expect(ev('3, 0')).toBe(3);
    expect(ev('-1 + 2')).toBe(1);
    expect(ev('(linux)')).toBe(true);
    expect(ev('[1, 2] == [1, 2] and (1,) != [1]')).toBe(true);
  });
  it('rejects what it does not support', () => {
    for (const bad of ['__import__("os")', 'x.__class__', 'lambda: 1', 'linux and', "'a' < 1", '', '[x for x in y]', 'sys.nope', 'a ** 2'])
      expect(() => ev(bad), bad).toThrow(ExprError);
  });
});
