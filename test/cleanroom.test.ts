// Clean-room builds (`chroot = ${some-chroot:location}`, src/sandbox/cleanroom.ts) on both engines
// of runInChroot: GNU hello (recipes/components/hello, a cmmi part in the shared buildenv chroot)
// built once in a Docker container and once with unshare + chroot (the fallback when no engine
// answers), into different output directories, as two hosts would: the same bytes.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cpSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { engineAvailable } from '../src/sandbox/docker.js';
import { walk } from '../src/lib/fsutil.js';
import { which } from '../src/lib/tools.js';
import { kilnP, project } from './helpers/kiln.js';

const root = join(import.meta.dirname, '..');
const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const docker = await engineAvailable();
const canUnshare = process.getuid?.() === 0 && !!which('unshare');

/** path, type, mode and content hash of every entry of a tree */
function treeDigest(dir: string): string[] {
  return walk(dir)
    .sort()
    .map((rel) => {
      const p = join(dir, rel);
      const st = lstatSync(p);
      const what = st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : 'dir';
      return `${rel} ${(st.mode & 0o7777).toString(8)} ${what}`;
    });
}

async function buildHello(engine: 'docker' | 'unshare') {
  const out = mkdtempSync(join(tmpdir(), `kiln-cleanroom-${engine}-`));
  const t0 = Date.now();
  const r = await kilnP(root, ['build', '-c', 'recipes/components/hello/buildout.cfg', '-o', out, 'buildout:parts=hello'], { KILN_CACHE_DIR: CACHE, KILN_CHROOT_ENGINE: engine });
  const seconds = (Date.now() - t0) / 1000;
  expect(r.code, r.stderr + r.stdout).toBe(0);
  const log = readFileSync(join(out, 'logs', 'hello.log'), 'utf8');
  console.log(`GNU hello cmmi in the buildenv chroot, engine ${engine}: ${seconds.toFixed(1)} s`);
  return { out, log, tree: join(out, 'parts', 'hello') };
}

describe('clean-room builds on both engines', () => {
  test.skipIf(!docker.ok)('a cmmi part in a chroot applies a patch that lives beside the profile it extends (outside the project directory)', async () => {
    // the component profile and its patch in one directory, the project extending it in another:
    // the clean room mounts only the project, the cache and the work directories
    const comp = mkdtempSync(join(tmpdir(), 'kiln-cleanroom-comp-'));
    const files: Record<string, string> = {
      'src/Makefile': 'all:\n\tprintf "%s\\n" "$(GREETING)" > greeting\ninstall: all\n\tinstall -D -m 644 greeting $(DESTDIR)$(prefix)/share/greeting\n',
      'src/greeting.mk': 'GREETING = unpatched\n',
      'fix.patch': '--- a/greeting.mk\n+++ b/greeting.mk\n@@ -1 +1 @@\n-GREETING = unpatched\n+GREETING = patched\n',
      'comp.cfg': `[buildout]\nextends = ${join(root, 'recipes/stack/chroots.cfg')}\n[greet]\nrecipe = kiln:cmmi\nchroot = \${buildenv:location}\npath = src\npatches = fix.patch\npatch-options = -p1\nconfigure-command = false\nmake-options = -f Makefile -f greeting.mk\n`,
    };
    for (const [f, c] of Object.entries(files)) {
      execFileSync('install', ['-D', '/dev/null', join(comp, f)]);
      writeFileSync(join(comp, f), c);
    }
    const p = project({ 'buildout.cfg': `[buildout]\nextends = ${join(comp, 'comp.cfg')}\nparts = greet\n` });
    const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(readFileSync(join(p.dir, 'out/parts/greet/share/greeting'), 'utf8')).toBe('patched\n');
  }, 600_000);

  test.skipIf(!docker.ok || !canUnshare)('GNU hello built with Docker and with unshare: same bytes, no network, engine named in the log', async () => {
    const d = await buildHello('docker');
    const u = await buildHello('unshare');
    expect(d.log).toContain('# kiln: clean-room engine: docker');
    expect(u.log).toContain('# kiln: clean-room engine: unshare');
    expect(u.log).toMatch(/configure/);
    const hello = join(u.tree, 'bin', 'hello');
    expect(execFileSync(hello, ['--version'], { encoding: 'utf8' })).toMatch(/GNU Hello\) 2\.10/);
    const a = treeDigest(d.tree);
    const b = treeDigest(u.tree);
    expect(a.length).toBeGreaterThan(3);
    expect(b).toEqual(a);
    execFileSync('cmp', [join(d.tree, 'bin', 'hello'), hello]);
  }, 900_000);

  test.skipIf(!docker.ok || !canUnshare)('dpkg-buildpackage and rpmbuild in chroots, with Docker and with unshare: the same .deb and .rpm', async () => {
    const FIX = join(import.meta.dirname, 'fixtures', 'existing-packaging');
    const cfg = [
      '[buildout]',
      'parts = deb rpm',
      '[debbuild]',
      'recipe = kiln:chroot',
      'suite = bookworm',
      'variant = minbase',
      'packages = build-essential debhelper fakeroot',
      '[rpmroot]',
      'recipe = kiln:chroot',
      'suite = bookworm',
      'variant = minbase',
      'packages = rpm',
      '[deb]',
      'recipe = kiln:dpkg-buildpackage',
      'source = src/hello-sh',
      'chroot = ${debbuild:location}',
      '[rpm]',
      'recipe = kiln:rpmbuild',
      'spec = src/rpm/kiln-hello.spec',
      'sources = src/rpm/kiln-hello.sh',
      'chroot = ${rpmroot:location}',
      '',
    ].join('\n');
    const outs: Record<string, string> = {};
    for (const engine of ['docker', 'unshare'] as const) {
      const p = project({ 'buildout.cfg': cfg });
      cpSync(FIX, join(p.dir, 'src'), { recursive: true });
      const t0 = Date.now();
      const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE, KILN_CHROOT_ENGINE: engine });
      expect(r.code, r.stderr + r.stdout).toBe(0);
      console.log(`dpkg-buildpackage + rpmbuild in chroots, engine ${engine}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      for (const part of ['deb', 'rpm']) expect(readFileSync(join(p.dir, 'out/logs', `${part}.log`), 'utf8')).toContain(`# kiln: clean-room engine: ${engine}`);
      outs[engine] = join(p.dir, 'out/parts');
    }
    for (const f of ['deb/kiln-hello-sh_1.0_all.deb', 'rpm/kiln-hello-1.2.3-1.noarch.rpm', 'rpm/SRPMS/kiln-hello-1.2.3-1.src.rpm']) {
      execFileSync('cmp', [join(outs.docker!, f), join(outs.unshare!, f)]);
    }
    // the real tools read them
    expect(execFileSync('dpkg-deb', ['-f', join(outs.unshare!, 'deb/kiln-hello-sh_1.0_all.deb'), 'Package'], { encoding: 'utf8' })).toBe('kiln-hello-sh\n');
    expect(execFileSync('rpm', ['-qp', '--qf', '%{NAME} %{BUILDHOST}\\n', join(outs.unshare!, 'rpm/kiln-hello-1.2.3-1.noarch.rpm')], { encoding: 'utf8' })).toBe('kiln-hello kiln\n');
  }, 900_000);

  test.skipIf(!canUnshare)('no Docker engine answering (and dockerd failing to start): the part builds with unshare', async () => {
    // docker and dockerd as on a host whose engine is down and cannot be started
    const bin = mkdtempSync(join(tmpdir(), 'kiln-nodocker-'));
    writeFileSync(join(bin, 'docker'), '#!/bin/sh\necho "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2\nexit 1\n', { mode: 0o755 });
    writeFileSync(join(bin, 'dockerd'), '#!/bin/sh\necho "failed to start daemon: (test) no cgroups" >&2\nexit 1\n', { mode: 0o755 });
    const cfg = ['[buildout]', 'parts = probe', '[bookworm]', 'recipe = kiln:chroot', 'suite = bookworm', 'variant = minbase', '[probe]', 'recipe = kiln:command', 'chroot = ${bookworm:location}', 'command = cat /etc/debian_version > "$OUT/version"', ''].join('\n');
    const p = project({ 'buildout.cfg': cfg });
    const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE, KILN_CHROOT_ENGINE: '', PATH: `${bin}:${process.env.PATH}` });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(readFileSync(join(p.dir, 'out/logs/probe.log'), 'utf8')).toContain('# kiln: clean-room engine: unshare (no Docker engine answers');
    expect(readFileSync(join(p.dir, 'out/parts/probe/version'), 'utf8')).toMatch(/^12\./);
  }, 300_000);

  test.skipIf(!canUnshare)('unshare engine: the build has no network and a fixed host name', async () => {
    const cfg = [
      '[buildout]',
      'parts = probe',
      '[bookworm]',
      'recipe = kiln:chroot',
      'suite = bookworm',
      'variant = minbase',
      '[probe]',
      'recipe = kiln:command',
      'chroot = ${bookworm:location}',
      'command =',
      '  ls /sys/class/net > "$OUT/net"',
      '  hostname > "$OUT/hostname"',
      '  echo "$LC_ALL $TZ $SOURCE_DATE_EPOCH $HOME" > "$OUT/env"',
      '',
    ].join('\n');
    const p = project({ 'buildout.cfg': cfg });
    const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE, KILN_CHROOT_ENGINE: 'unshare' });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const o = (f: string) => readFileSync(join(p.dir, 'out/parts/probe', f), 'utf8');
    expect(o('net').split('\n').filter(Boolean)).toEqual(['lo']);
    expect(o('hostname')).toBe('kiln-build\n');
    expect(o('env')).toMatch(/^C\.UTF-8 UTC \d+ \/root\n$/);
  }, 300_000);
});
