// Every option of every built-in recipe kind has a type (src/kind.ts OptionSpec); a bad value
// of each is a ConfigError at load time (exit 3) naming file:line, the part and the option.
// Table-driven over the kinds' own option tables, through the in-process loadProject.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadProject } from '../src/engine/project.js';
import { builtinKinds, resolveRecipe } from '../src/engine/registry.js';
import { ConfigError } from '../src/lib/errors.js';
import { checkOption, Options } from '../src/options.js';
import type { OptionSpec, Recipe } from '../src/kind.js';
import { kiln, project } from './helpers/kiln.js';

/** Valid values for each kind's required options (the rest of the part stays unset). */
const REQUIRED: Record<string, Record<string, string>> = {
  'apt-repo': { packages: '/nonexistent/*.deb' },
  'clonezilla-image': { disk: '/nonexistent/disk.img' },
  'container-test': { image: 'debian:bookworm', test: 'true' },
  'disk-image': { rootfs: '/nonexistent/rootfs.tar' },
  dkms: { source: '/nonexistent/src', kernels: '6.1.0-1-amd64', chroot: '/nonexistent/chroot' },
  download: { url: 'http://example.invalid/x.tar.gz' },
  'dpkg-buildpackage': { source: '/nonexistent/src' },
  'ganeti-extstorage': { name: 'x' },
  'ganeti-os': { name: 'x', variants: 'v', 'variant-v': '/nonexistent/rootfs.tar' },
  'qemu-test': { iso: '/nonexistent/x.iso' },
  'gpg-key': { uid: 'A <a@example.org>' },
  kernel: { source: '/nonexistent/linux-6.1.tar.xz' },
  'x509-key': {},
  package: { name: 'hello', version: '1.0-1', summary: 's', maintainer: 'A <a@example.org>' },
  'recovery-iso': { image: '/nonexistent/image', live: '/nonexistent/live' },
  'rpm-repo': { packages: '/nonexistent/*.rpm' },
  rpmbuild: { spec: '/nonexistent/x.spec' },
  cmmi: { url: 'http://example.invalid/x.tar.gz' },
  command: { command: 'true' },
};

/** One value of `spec`'s type that its check refuses, or undefined for free text. */
function badValue(spec: OptionSpec): string | undefined {
  const refused = (cands: string[]) => cands.find((c) => !spec.pattern!.test(c));
  switch (spec.type ?? 'string') {
    case 'string':
      return spec.multiline ? undefined : 'one\n  two';
    case 'bool':
      return 'maybe';
    case 'int':
      return 'many';
    case 'size':
      return '12 parsecs';
    case 'enum':
      return 'no-such-choice';
    case 'path':
    case 'paths':
      return spec.urls ? 'gopher://example.invalid/x' : 'http://example.invalid/x';
    case 'url':
      return 'gopher://example.invalid/x';
    case 'env':
      return 'NO_EQUALS_SIGN';
    case 'list':
      return spec.choices ? 'no-such-choice' : spec.pattern ? refused(['!bad!', 'BAD"$`']) : undefined;
    case 'lines':
      return spec.pattern ? refused(['!bad!', 'BAD"$` \\', '/absolute/..', 'x']) : undefined;
    case 'pattern':
      return refused(['!bad!', 'BAD"$` \\', 'x']) ?? 'one\n  two';
  }
}

const cfgLine = (name: string, value: string) => `${name} = ${value.split('\n').join('\n')}`;

async function loadError(dir: string, kind: string, values: Record<string, string>): Promise<ConfigError | undefined> {
  const text = ['[buildout]', 'parts = p', '', '[p]', `recipe = kiln:${kind}`, ...Object.entries(values).map(([k, v]) => cfgLine(k, v)), ''].join('\n');
  const file = join(dir, `${kind}.cfg`);
  writeFileSync(file, text);
  try {
    await loadProject({ configFile: file, outDir: join(dir, 'out'), cacheDir: join(dir, 'cache'), offline: true });
    return undefined;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e;
  }
}

const kinds = builtinKinds();
const recipes = new Map<string, Recipe>();
const load = async (kind: string) => recipes.get(kind) ?? recipes.set(kind, await resolveRecipe(`kiln:${kind}`, undefined, 'p', tmpdir())).get(kind)!;

test('every built-in kind is in the table, every option has a type and a valid default', async () => {
  expect(kinds.sort()).toEqual(Object.keys(REQUIRED).concat(['chroot']).sort());
  for (const kind of kinds) {
    const r = await load(kind);
    for (const [name, spec] of Object.entries(r.options)) {
      expect(spec.type, `${kind} ${name}`).toBeDefined();
      if (spec.default !== undefined && spec.default !== '') {
        const o = new Options('p', { [name]: spec.default });
        expect(() => checkOption(o, name, spec), `${kind} ${name} default`).not.toThrow();
      }
    }
    // a clean-room kind takes the shared clean-room options
    if (r.cleanRoom) expect(Object.keys(r.options)).toEqual(expect.arrayContaining(['chroot', 'network']));
  }
});

describe.each(kinds)('kiln:%s', (kind) => {
  test('one bad value of each option, a missing required option and an unknown option: exit 3 at load time with file:line, part and option', async () => {
    const r = await load(kind);
    const dir = mkdtempSync(join(tmpdir(), `kiln-opt-${kind}-`));
    const base = REQUIRED[kind] ?? {};
    const baseErr = await loadError(dir, kind, base);
    const free: string[] = [];
    let tested = 0;
    for (const [name, spec] of Object.entries(r.options)) {
      const bad = badValue(spec);
      if (bad === undefined) {
        free.push(name);
        continue;
      }
      // the base config does not fail on this option: the bad value is the cause
      expect(baseErr?.option, `${kind}: the base config fails on ${name}`).not.toBe(name);
      const values = { ...base, [name]: bad };
      const e = await loadError(dir, kind, values);
      expect(e, `${kind} ${name} = ${JSON.stringify(bad)} was accepted`).toBeDefined();
      expect(e!.exitCode).toBe(3);
      expect({ section: e!.section, option: e!.option }, e!.message).toEqual({ section: 'p', option: name });
      const text = ['[buildout]', 'parts = p', '', '[p]', `recipe = kiln:${kind}`, ...Object.entries(values).map(([k, v]) => cfgLine(k, v))];
      const optLine = text.findIndex((l) => l.startsWith(`${name} = `)) + 1;
      expect(e!.origin?.file, e!.message).toBe(join(dir, `${kind}.cfg`));
      // the option's line, or the continuation line holding the bad word
      expect([optLine, optLine + 1], e!.message).toContain(e!.origin?.line);
      tested++;
    }
    for (const [name] of Object.entries(r.options).filter(([, s]) => s.required)) {
      const values = { ...base };
      delete values[name];
      const e = await loadError(dir, kind, values);
      expect(e?.option, `${kind}: missing ${name}`).toBe(name);
      expect(e!.message).toMatch(/missing required option/);
    }
    // (kiln:command takes any option: each reaches its script as $KILN_OPT_NAME)
    if (!r.optionPatterns?.some((re) => re.test('no-such-option'))) {
      const typo = await loadError(dir, kind, { ...base, 'no-such-option': 'x' });
      expect(typo?.option).toBe('no-such-option');
      expect(typo!.message).toMatch(new RegExp(`${kind}\\.cfg:\\d+: \\[p\\] no-such-option: unknown option`));
    }
    // free text (scripts, descriptions, command lines) has no bad value; everything else was tested
    expect(tested + free.length).toBe(Object.keys(r.options).length);
    for (const name of free) expect(['string', 'list', 'lines']).toContain(r.options[name]!.type);
  });
});

test('the CLI: a bad typed value exits 3 and prints file:line, part and option', () => {
  const p = project({ 'buildout.cfg': '[buildout]\nparts = k\n\n[k]\nrecipe = kiln:gpg-key\nuid = A <a@example.org>\nalgorithm = dsa1024\n' });
  const r = kiln(p.dir, ['plan']);
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/buildout\.cfg:7: \[k\] algorithm: unknown algorithm 'dsa1024' \(rsa2048, rsa3072, rsa4096, ed25519\)/);
});
