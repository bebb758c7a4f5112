// kiln:container-test called directly: a .deb installed in a container from the bookworm minbase
// chroot (testcontainers), passing and failing tests, JUnit XML, abort, and no container left.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { recipe as chrootRecipe } from '../src/kinds/chroot.js';
import { recipe, testSpecs } from '../src/kinds/container-test.js';
import { engineAvailable, kilnContainers } from '../src/sandbox/docker.js';
import { Options } from '../src/options.js';
import { makeContext } from './helpers/context.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const defaults = (r: typeof recipe) => Object.fromEntries(Object.entries(r.options).flatMap(([k, s]) => (s.default !== undefined ? [[k, s.default]] : [])));
const tag = `ct${process.pid}`;

const docker = await engineAvailable();
if (!docker.ok) console.warn(`Docker engine unavailable, container-test tests skipped: ${docker.why}`);

let chroot = '';
let debs = '';
beforeAll(async () => {
  if (!docker.ok) return;
  const ctx = makeContext('bookworm', { ...defaults(chrootRecipe) }, { cacheDir: CACHE });
  await chrootRecipe.install(ctx);
  chroot = ctx.staging;
  // a tiny package built with dpkg-deb
  debs = mkdtempSync(join(tmpdir(), 'kiln-ct-debs-'));
  const root = join(debs, 'pkg');
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  writeFileSync(join(root, 'DEBIAN/control'), 'Package: kiln-greeter\nVersion: 1.0\nArchitecture: all\nMaintainer: kiln <kiln@example.org>\nDescription: greets\n');
  writeFileSync(join(root, 'usr/bin/kiln-greeter'), '#!/bin/sh\necho "Hello from kiln, $1"\n');
  chmodSync(join(root, 'usr/bin/kiln-greeter'), 0o755);
  execFileSync('dpkg-deb', ['--root-owner-group', '-b', root, join(debs, 'kiln-greeter_1.0_all.deb')], { stdio: 'ignore' });
}, 300_000);

async function runPart(part: string, values: Record<string, string>, signal?: AbortSignal) {
  const ctx = makeContext(part, { ...defaults(recipe), ...values }, { cacheDir: CACHE, ...(signal ? { signal } : {}) });
  recipe.validate!(ctx);
  const err = await recipe.install(ctx).then(
    () => undefined,
    (e: Error) => e,
  );
  const xmlPath = join(ctx.staging, 'test-results', `${part}.xml`);
  return { ctx, err, xml: existsSync(xmlPath) ? readFileSync(xmlPath, 'utf8') : '', log: existsSync(ctx.logFile) ? readFileSync(ctx.logFile, 'utf8') : '' };
}

describe.skipIf(!docker.ok)('kiln:container-test', () => {
  test('a package installed with dpkg, tests pass, JUnit written, container removed', async () => {
    const part = `${tag}-pass`;
    const r = await runPart(part, {
      image: chroot,
      packages: `${debs}/*.deb`,
      install: 'dpkg',
      test: 'kiln-greeter world',
      'expect-output': '^Hello from kiln, world$',
      tests: 'test -x /usr/bin/kiln-greeter\ndpkg -s kiln-greeter | grep -q "^Status: install ok installed"',
      'test-noexec': 'kiln-greeter-missing',
      'expect-exit-noexec': '127',
      'test-offline': 'cat /proc/net/dev',
      'expect-offline': '^\\s*lo:',
    });
    expect(r.err).toBeUndefined();
    expect(r.xml).toMatch(/<testsuite name="[^"]+" tests="6" failures="0"/);
    for (const n of ['install', 'test', 'tests-1', 'tests-2', 'noexec', 'offline']) expect(r.xml).toContain(`name="${n}"`);
    expect(r.log).toContain('$ dpkg -i /kiln/packages/kiln-greeter_1.0_all.deb');
    expect(await kilnContainers(part)).toEqual([]);
  }, 300_000);

  test('install = apt works offline for a package without dependencies', async () => {
    const part = `${tag}-apt`;
    const r = await runPart(part, { image: chroot, packages: `${debs}/*.deb`, install: 'apt', test: 'kiln-greeter apt', 'expect-output': 'Hello from kiln, apt' });
    expect(r.err, r.log).toBeUndefined();
    expect(await kilnContainers(part)).toEqual([]);
  }, 300_000);

  test('wrong output and a wrong exit code fail the part with the command, expectation and output tail', async () => {
    const part = `${tag}-fail`;
    const r = await runPart(part, {
      image: chroot,
      packages: `${debs}/*.deb`,
      test: 'kiln-greeter moon; echo "second line"',
      'expect-output': '^Hello from kiln, world$',
      'test-crash': "echo dying >&2; exit 7",
      tests: 'true',
    });
    expect(r.err).toBeDefined();
    const msg = r.err!.message;
    expect(msg).toMatch(new RegExp(`^\\[${part}\\] 2 of 4 container tests failed:`));
    expect(msg).toContain('- test: output does not match /^Hello from kiln, world$/: kiln-greeter moon; echo "second line"');
    expect(msg).toMatch(/--- expected ---\na line matching \/\^Hello from kiln, world\$\/\n--- output \(last lines\) ---\nHello from kiln, moon\nsecond line/);
    expect(msg).toMatch(/- crash: exit code 7, expected 0: echo dying >&2; exit 7\n--- output \(last lines\) ---\ndying/);
    expect(r.xml).toMatch(/tests="4" failures="2"/);
    expect(r.xml).toMatch(/<failure message="output does not match/);
    expect(await kilnContainers(part)).toEqual([]);
  }, 300_000);

  test('a failing install stops before the tests', async () => {
    const part = `${tag}-badinstall`;
    const r = await runPart(part, { image: chroot, install: 'echo cannot install >&2; exit 1', test: 'true' });
    expect(r.err!.message).toMatch(/1 of 1 container tests failed:\n- install: install failed \(exit code 1\): echo cannot install >&2; exit 1\n--- output \(last lines\) ---\ncannot install/);
    expect(await kilnContainers(part)).toEqual([]);
  }, 300_000);

  test('abort during a test: interrupted, the container is removed', async () => {
    const part = `${tag}-abort`;
    const ac = new AbortController();
    const p = runPart(part, { image: chroot, test: 'sleep 600' }, ac.signal);
    // abort once the container exists (polled, no fixed delay)
    for (let i = 0; i < 600 && (await kilnContainers(part)).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await kilnContainers(part)).length).toBe(1);
    ac.abort();
    const r = await p;
    expect(r.err!.message).toMatch(/interrupted/);
    expect(await kilnContainers(part)).toEqual([]);
  }, 300_000);
});

describe('container-test options', () => {
  const o = (values: Record<string, string>) => new Options('t', values, () => undefined, { file: 'test.cfg', line: 1 });
  test('test, tests and test-NAME in order, with their expectations', () => {
    const specs = testSpecs(o({ test: 'a', 'expect-exit': '2', tests: 'b\nc', 'test-z': 'z', 'test-y': 'y', 'expect-y': '^ok$' }));
    expect(specs.map((s) => [s.name, s.cmd, s.exit, s.output?.source])).toEqual([
      ['test', 'a', 2, undefined],
      ['tests-1', 'b', 0, undefined],
      ['tests-2', 'c', 0, undefined],
      ['y', 'y', 0, '^ok$'],
      ['z', 'z', 0, undefined],
    ]);
  });
  test('bad options name the option', () => {
    expect(() => testSpecs(o({ 'test-a': 'x', 'expect-b': 'y' }))).toThrow(/\[t\] expect-b: there is no test-b/);
    expect(() => testSpecs(o({ test: 'x', 'expect-output': '(' }))).toThrow(/\[t\] expect-output: invalid regular expression/);
    expect(() => testSpecs(o({ test: 'x', 'expect-exit': 'zero' }))).toThrow(/\[t\] expect-exit: expected an exit code/);
    expect(() => testSpecs(o({ tests: 'x', 'expect-output': 'y' }))).toThrow(/\[t\] expect-output: applies to the 'test' option/);
    const ctx = makeContext('t', { image: 'x' });
    expect(() => recipe.validate!(ctx)).toThrow(/\[t\] image: no tests/);
  });
});

afterAll(async () => {
  if (!docker.ok) return;
  const parts = execFileSync('docker', ['ps', '-a', '--filter', 'label=kiln=1', '--format', '{{.Label "kiln.part"}}'], { encoding: 'utf8' });
  expect(parts.split('\n').filter((p) => p.startsWith(tag))).toEqual([]);
});
