// Recipes for existing packaging: kiln:dpkg-buildpackage (debian/ tree or .dsc, on the host and
// in a clean-room chroot) and kiln:rpmbuild (a .spec on the host), with the real tools.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { kilnP, parts, project } from './helpers/kiln.js';

const FIX = join(import.meta.dirname, 'fixtures', 'existing-packaging');
// chroots are cached by content in the user's cache (built once, reused by every run)
const CACHE = { KILN_CACHE_DIR: join(process.env.HOME ?? '/root', '.cache', 'kiln') };

const same = (a: string, b: string) => spawnSync('cmp', [a, b]).status === 0;
const ls = (dir: string) => readdirSync(dir).sort();

/** A project whose buildout.cfg is `cfg`, with the fixture sources copied next to it (relative paths work). */
function withFixtures(cfg: string) {
  const p = project({ 'buildout.cfg': cfg });
  cpSync(FIX, join(p.dir, 'src'), { recursive: true });
  return p;
}

describe('kiln:dpkg-buildpackage', () => {
  const cfg = `[buildout]\nparts = hello\n[hello]\nrecipe = kiln:dpkg-buildpackage\nsource = src/hello-sh\n`;

  test('a debian/ tree on the host: .deb, .buildinfo, .changes; dpkg-deb accepts it; two builds give the same .deb', async () => {
    const a = withFixtures(cfg);
    const b = withFixtures(cfg);
    const ra = await kilnP(a.dir, ['build']);
    expect(ra.code, ra.stderr).toBe(0);
    const rb = await kilnP(b.dir, ['build']);
    expect(rb.code, rb.stderr).toBe(0);
    const out = join(a.dir, 'out/parts/hello');
    expect(ls(out)).toEqual(['kiln-hello-sh_1.0_all.deb', 'kiln-hello-sh_1.0_amd64.buildinfo', 'kiln-hello-sh_1.0_amd64.changes']);
    const deb = join(out, 'kiln-hello-sh_1.0_all.deb');
    const info = execFileSync('dpkg-deb', ['--info', deb], { encoding: 'utf8' });
    expect(info).toMatch(/^ Package: kiln-hello-sh$/m);
    expect(info).toMatch(/^ Version: 1\.0$/m);
    expect(execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' })).toMatch(/^-rwxr-xr-x root\/root\s+\d+ \S+ \S+ \.\/usr\/bin\/kiln-hello-sh$/m);
    expect(same(deb, join(b.dir, 'out/parts/hello/kiln-hello-sh_1.0_all.deb'))).toBe(true);
    // the .changes names the .deb with its checksum
    const sha = execFileSync('sha256sum', [deb], { encoding: 'utf8' }).split(' ')[0];
    expect(readFileSync(join(out, 'kiln-hello-sh_1.0_amd64.changes'), 'utf8')).toContain(`${sha} `);
  }, 180_000);

  test('a .dsc: unpacked with dpkg-source, built to the same .deb as its tree', async () => {
    const dscDir = mkdtempSync(join(tmpdir(), 'kiln-dsc-'));
    execFileSync('dpkg-source', ['-b', join(FIX, 'hello-sh')], { cwd: dscDir, stdio: 'ignore' });
    const p = project({ 'buildout.cfg': `[buildout]\nparts = hello\n[hello]\nrecipe = kiln:dpkg-buildpackage\nsource = ${join(dscDir, 'kiln-hello-sh_1.0.dsc')}\n` });
    const r = await kilnP(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    const deb = join(p.dir, 'out/parts/hello/kiln-hello-sh_1.0_all.deb');
    expect(execFileSync('dpkg-deb', ['--field', deb, 'Package'], { encoding: 'utf8' }).trim()).toBe('kiln-hello-sh');
    const t = withFixtures(cfg);
    expect((await kilnP(t.dir, ['build'])).code).toBe(0);
    expect(same(deb, join(t.dir, 'out/parts/hello/kiln-hello-sh_1.0_all.deb'))).toBe(true);
  }, 180_000);

  test('a source that does not compile: the compiler error, with the part name', async () => {
    const p = withFixtures(`[buildout]\nparts = broken\n[broken]\nrecipe = kiln:dpkg-buildpackage\nsource = src/broken-c\n`);
    const r = await kilnP(p.dir, ['build', '--json']);
    expect(r.code).toBe(1);
    expect(parts(r, 'part-failed')).toEqual(['broken']);
    const error = String(r.events.find((e) => e.type === 'part-failed')!.error);
    expect(error).toMatch(/command failed \(exit code \d+\): dpkg-buildpackage -us -uc -b/);
    expect(error).toMatch(/broken\.c:\d+:\d+: error: expected .;. before .return./);
    const text = await kilnP(p.dir, ['build']);
    expect(text.stderr).toMatch(/broken/);
    expect(text.stderr).toMatch(/broken\.c:\d+:\d+: error/);
  }, 180_000);

  test('bad options: missing source, build-depends without a chroot', async () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = x\n[x]\nrecipe = kiln:dpkg-buildpackage\nsource = nothere\n` });
    const r = await kilnP(p.dir, ['build']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\[x\] source: source not found: .*nothere/);
    const q = project({ 'buildout.cfg': `[buildout]\nparts = x\n[x]\nrecipe = kiln:dpkg-buildpackage\nsource = .\nbuild-depends = true\n` });
    const r2 = await kilnP(q.dir, ['build']);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toMatch(/buildout\.cfg:\d+: \[x\] build-depends: installing build dependencies needs a chroot/);
  });

  test('in a clean-room chroot: same .deb twice; build-depends installs in a container without network', async () => {
    const chroot = `[debbuild]\nrecipe = kiln:chroot\nsuite = bookworm\nvariant = minbase\npackages = build-essential debhelper fakeroot\nimage = true\n`;
    const a = withFixtures(`[buildout]\nparts = hello\n${chroot}\n[hello]\nrecipe = kiln:dpkg-buildpackage\nsource = src/hello-sh\nchroot = \${debbuild:location}\n`);
    const ra = await kilnP(a.dir, ['build'], CACHE);
    expect(ra.code, ra.stderr).toBe(0);
    const log = readFileSync(join(a.dir, 'out/logs/hello.log'), 'utf8');
    expect(log).toMatch(/clean-room build in/);
    const deb = join(a.dir, 'out/parts/hello/kiln-hello-sh_1.0_all.deb');
    expect(execFileSync('dpkg-deb', ['--info', deb], { encoding: 'utf8' })).toMatch(/^ Package: kiln-hello-sh$/m);
    // the chroot's dpkg wrote the .buildinfo: its recorded build environment is the chroot's
    expect(readFileSync(join(a.dir, 'out/parts/hello/kiln-hello-sh_1.0_amd64.buildinfo'), 'utf8')).toMatch(/^ debhelper \(= 13\.\S+\),$/m);
    const b = withFixtures(`[buildout]\nparts = hello\n${chroot}\n[hello]\nrecipe = kiln:dpkg-buildpackage\nsource = src/hello-sh\nchroot = \${debbuild:location}\nbuild-depends = true\n`);
    const rb = await kilnP(b.dir, ['build'], CACHE);
    expect(rb.code, rb.stderr).toBe(0);
    const logB = readFileSync(join(b.dir, 'out/logs/hello.log'), 'utf8');
    expect(logB).toMatch(/downloading build dependencies \(network on for this step only\)/);
    expect(logB).toMatch(/installing build dependencies and building \(no network\)/);
    expect(same(deb, join(b.dir, 'out/parts/hello/kiln-hello-sh_1.0_all.deb'))).toBe(true);
  }, 600_000);
});

describe('kiln:rpmbuild', () => {
  const cfg = `[buildout]\nparts = hello\n[hello]\nrecipe = kiln:rpmbuild\nspec = src/rpm/kiln-hello.spec\nsources = src/rpm/kiln-hello.sh\n`;

  test('a .spec on the host: binary and source rpm, rpm reads the declared name and version, two builds identical', async () => {
    const a = withFixtures(cfg);
    const b = withFixtures(cfg);
    const ra = await kilnP(a.dir, ['build']);
    expect(ra.code, ra.stderr).toBe(0);
    expect((await kilnP(b.dir, ['build'])).code).toBe(0);
    const out = join(a.dir, 'out/parts/hello');
    expect(ls(out)).toEqual(['SRPMS', 'kiln-hello-1.2.3-1.noarch.rpm']);
    expect(ls(join(out, 'SRPMS'))).toEqual(['kiln-hello-1.2.3-1.src.rpm']);
    const rpm = join(out, 'kiln-hello-1.2.3-1.noarch.rpm');
    const q = execFileSync('rpm', ['-qp', '--qf', '%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{BUILDHOST}\\n', rpm], { encoding: 'utf8' });
    expect(q).toBe('kiln-hello 1.2.3 1 noarch kiln\n');
    expect(execFileSync('rpm', ['-qlp', rpm], { encoding: 'utf8' })).toBe('/usr/bin/kiln-hello\n');
    expect(same(rpm, join(b.dir, 'out/parts/hello/kiln-hello-1.2.3-1.noarch.rpm'))).toBe(true);
    expect(same(join(out, 'SRPMS/kiln-hello-1.2.3-1.src.rpm'), join(b.dir, 'out/parts/hello/SRPMS/kiln-hello-1.2.3-1.src.rpm'))).toBe(true);
  }, 120_000);

  test('defines reach the spec; a failing spec gives rpmbuild\'s error with the part name', async () => {
    const p = withFixtures(`${cfg}defines =\n  dist .kiln1\n`);
    p.write({ 'src/rpm/kiln-hello.spec': readFileSync(join(FIX, 'rpm/kiln-hello.spec'), 'utf8').replace('Release:        1', 'Release:        1%{?dist}') });
    const r = await kilnP(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    expect(ls(join(p.dir, 'out/parts/hello'))).toContain('kiln-hello-1.2.3-1.kiln1.noarch.rpm');
    const q = withFixtures(`[buildout]\nparts = broken\n[broken]\nrecipe = kiln:rpmbuild\nspec = src/rpm/broken.spec\n`);
    const r2 = await kilnP(q.dir, ['build', '--json']);
    expect(r2.code).toBe(1);
    expect(parts(r2, 'part-failed')).toEqual(['broken']);
    const error = String(r2.events.find((e) => e.type === 'part-failed')!.error);
    expect(error).toMatch(/command failed \(exit code 1\): rpmbuild -ba/);
    expect(error).toMatch(/File not found: .*\/usr\/bin\/kiln-missing/);
  }, 120_000);
});
