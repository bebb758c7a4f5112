// kiln:chroot called directly (no engine): real mmdebstrap, the shared content-keyed cache,
// a bit-identical rebuild, docker import, directory output, option and missing-tool errors.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { recipe } from '../src/kinds/chroot.js';
import { engineAvailable } from '../src/sandbox/docker.js';
import { MissingToolError } from '../src/lib/errors.js';
import type { RunOptions } from '../src/lib/exec.js';
import { makeContext } from './helpers/context.js';

// chroots are shared through the user's cache, as a release engineer's runs would share them:
// the first run of the suite builds bookworm minbase once, every later use is a cache hit
const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const defaults = Object.fromEntries(Object.entries(recipe.options).flatMap(([k, s]) => (s.default !== undefined ? [[k, s.default]] : [])));

const roots: string[] = [];
// uncached tarballs and extracted trees are hundreds of MB: removed afterwards
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A chroot part built through the recipe; `commands` lists every argv it ran. */
async function buildChroot(part: string, values: Record<string, string> = {}) {
  const ctx = makeContext(part, { ...defaults, ...values }, { cacheDir: CACHE });
  roots.push(ctx.root);
  const commands: string[][] = [];
  const run = ctx.run;
  ctx.run = (argv: string[], opts?: RunOptions) => {
    commands.push(argv);
    return run(argv, opts);
  };
  recipe.validate!(ctx);
  const t0 = Date.now();
  await recipe.install(ctx);
  return { ctx, commands, seconds: (Date.now() - t0) / 1000, log: () => (existsSync(ctx.logFile) ? readFileSync(ctx.logFile, 'utf8') : '') };
}

const engine = await engineAvailable();
if (!engine.ok) console.warn(`Docker engine unavailable, image tests skipped: ${engine.why}`);

describe('kiln:chroot', () => {
  test('bookworm minbase: tarball, manifest, key; a second build elsewhere is a cache hit without mmdebstrap', async () => {
    const first = await buildChroot('bookworm');
    console.log(`chroot build: ${first.seconds.toFixed(1)} s (${first.commands.some((c) => c[0] === 'mmdebstrap') ? 'mmdebstrap ran' : 'cache hit'})`);
    const out = first.ctx.staging;
    expect(readFileSync(join(out, 'manifest'), 'utf8')).toMatch(/^base-files 12\.\S+ amd64$/m);
    expect(readFileSync(join(out, 'key'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    const list = execFileSync('tar', ['-tf', join(out, 'rootfs.tar')], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(list).toMatch(/^\.\/etc\/debian_version$/m);

    // another project dir, same options: hard links from the cache, no bootstrapper
    const second = await buildChroot('bookworm-again');
    console.log(`cached chroot build: ${second.seconds.toFixed(2)} s`);
    expect(second.commands).toEqual([]);
    expect(second.log()).toMatch(/chroot cache hit: .*\(mmdebstrap not run\)/);
    const a = statSync(join(out, 'rootfs.tar'));
    const b = statSync(join(second.ctx.staging, 'rootfs.tar'));
    expect(b.ino).toBe(a.ino); // the same cached file
    expect(b.mode & 0o222).toBe(0); // read-only: nobody writes into the cache through a link
    expect(readFileSync(join(second.ctx.staging, 'key'), 'utf8')).toBe(readFileSync(join(out, 'key'), 'utf8'));
  }, 300_000);

  test('reproducible: an uncached rebuild with the same SOURCE_DATE_EPOCH is bit-identical to the cached tarball', async () => {
    const cached = await buildChroot('bookworm');
    const fresh = await buildChroot('bookworm-uncached', { cache: 'false' });
    expect(fresh.commands.map((c) => c[0])).toContain('mmdebstrap');
    const r = spawnSync('cmp', [join(cached.ctx.staging, 'rootfs.tar'), join(fresh.ctx.staging, 'rootfs.tar')], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(fresh.ctx.staging, 'manifest'), 'utf8')).toBe(readFileSync(join(cached.ctx.staging, 'manifest'), 'utf8'));
  }, 300_000);

  test('directory = true extracts the tree with numeric owners', async () => {
    const { ctx } = await buildChroot('bookworm-dir', { directory: 'true' });
    expect(readFileSync(join(ctx.staging, 'rootfs/etc/debian_version'), 'utf8')).toMatch(/^12\./);
    expect(existsSync(join(ctx.staging, 'rootfs/bin/sh'))).toBe(true);
    expect(statSync(join(ctx.staging, 'rootfs/etc/shadow')).uid).toBe(0);
  }, 300_000);

  test.skipIf(!engine.ok)('image = true: imported as kiln/chroot:KEY16, runs cat /etc/debian_version', async () => {
    const { ctx } = await buildChroot('bookworm-image', { image: 'true' });
    const tag = readFileSync(join(ctx.staging, 'image-tag'), 'utf8').trim();
    expect(tag).toBe(`kiln/chroot:${readFileSync(join(ctx.staging, 'key'), 'utf8').trim().slice(0, 16)}`);
    const v = execFileSync('docker', ['run', '--rm', '--network', 'none', '--label', 'kiln=1', '--label', 'kiln.part=bookworm-image', tag, 'cat', '/etc/debian_version'], { encoding: 'utf8' });
    expect(v).toMatch(/^12\.\d+/);
    expect(execFileSync('docker', ['ps', '-a', '--filter', 'label=kiln.part=bookworm-image', '--format', '{{.Names}}'], { encoding: 'utf8' }).trim()).toBe('');
  }, 300_000);

  test('customize hooks (files, $1 and $TARGET) and apt-sources end up inside; hook contents are in the key', async () => {
    const ctx0 = makeContext('hooks', {}, { cacheDir: CACHE });
    const hookDir = join(ctx0.root, 'my hooks');
    mkdirSync(hookDir);
    const hook = join(hookDir, '10 setup.sh');
    writeFileSync(hook, '#!/bin/sh\nset -e\n[ "$1" = "$TARGET" ]\necho "customized by kiln" > "$TARGET/etc/kiln-customized"\n');
    const sources = 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-updates\nComponents: main\n';
    const values = { customize: hook, 'apt-sources': sources };
    const { ctx } = await buildChroot('bookworm-hooks', values);
    const list = (f: string) => execFileSync('tar', ['-xOf', join(ctx.staging, 'rootfs.tar'), f], { encoding: 'utf8' });
    expect(list('./etc/kiln-customized')).toBe('customized by kiln\n');
    expect(list('./etc/apt/sources.list.d/kiln.sources')).toBe(sources);
    // a different hook body is a different chroot
    const { chrootKey } = await import('../src/kinds/chroot.js');
    const k1 = chrootKey(makeContext('k', { ...defaults, ...values }), 1);
    writeFileSync(hook, '#!/bin/sh\ntrue\n');
    expect(chrootKey(makeContext('k', { ...defaults, ...values }), 1)).not.toBe(k1);
  }, 300_000);

  test('option errors name the part and option', () => {
    const check = (values: Record<string, string>, re: RegExp) => {
      const ctx = makeContext('c', { ...defaults, ...values }, { cacheDir: CACHE });
      expect(() => recipe.validate!(ctx)).toThrow(re);
    };
    check({ format: 'zip' }, /test\.cfg:1: \[c\] format: unknown format 'zip'/);
    check({ packages: 'hello $(reboot)' }, /\[c\] packages: expected a package name, got '\$\(reboot\)'/);
    check({ suite: 'bookworm;true' }, /\[c\] suite: expected a suite or codename, got 'bookworm;true'/);
    check({ customize: '/nonexistent/hook.sh' }, /\[c\] customize: file not found: \/nonexistent\/hook\.sh/);
    check({ mirror: 'deb.debian.org' }, /\[c\] mirror: expected a mirror URL/);
    // comma-separated names: each one is a package name; a set but empty name is no name
    check({ packages: 'curl,-rf' }, /\[c\] packages: expected a package name, got 'curl,-rf'/);
    check({ suite: '' }, /\[c\] suite: expected a suite or codename, got ''/);
    check({ format: '' }, /\[c\] format: unknown format '' \(tar, tar\.xz, tar\.zst\)/);
    expect(() => recipe.validate!(makeContext('c', { ...defaults, packages: 'curl,ca-certificates, jq' }, { cacheDir: CACHE }))).not.toThrow();
  });

  test('no mmdebstrap and no debootstrap: the error names the Debian package', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const ctx = makeContext('nobootstrap', { ...defaults }, { cacheDir: CACHE });
      const err = await recipe.install(ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MissingToolError);
      expect(String((err as Error).message)).toMatch(/\[nobootstrap\] required host tool 'mmdebstrap' is not installed \(Debian package: mmdebstrap/);
    } finally {
      process.env.PATH = path;
    }
  });
});
