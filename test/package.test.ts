// kiln:package: .deb and .rpm from one description, validated with the real tools: dpkg-deb,
// lintian, dpkg (install/upgrade/remove/purge into a root), rpm (-K, --qf, -i/-e --root), rpmlint,
// dnf from the generated repository; reproducibility; bad inputs.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { generateTestKey } from '../src/lib/gpg.js';
import { kilnP, project } from './helpers/kiln.js';

let key: string;
beforeAll(async () => {
  key = await generateTestKey(mkdtempSync(join(tmpdir(), 'kiln-key-')));
}, 120_000);

const cfg = (version: string, extra = '') => `[buildout]
parts = tool-pkg data-pkg apt rpmrepo

[tool]
recipe = kiln:command
version = ${version}
command =
  mkdir -p "$OUT/bin"
  printf '#!/bin/sh\\necho "tool %s"\\n' "$KILN_OPT_VERSION" > "$OUT/bin/tool"
  chmod 0755 "$OUT/bin/tool"
  printf 'setting = default\\n' > "$OUT/tool.conf"
  echo "data $KILN_OPT_VERSION" > "$OUT/data.txt"

[common]
recipe = kiln:package
version = \${tool:version}-1
maintainer = Kiln Tests <tests@example.invalid>
license = MIT
copyright = 2024 Kiln Tests
source = tool
signing-key = ${'${keys:secret}'}

[keys]
secret = KEY

[tool-pkg]
<= common
name = kiln-tool
sign = deb rpm
architecture = all
summary = Test tool
description =
  A test tool.
  .
  With an extended description.
depends = kiln-tool-data (= \${tool:version}-1)
files =
  \${tool:location}/bin/tool => /usr/bin/kiln-tool
  \${tool:location}/tool.conf => /etc/kiln-tool.conf config noreplace
directories = /var/lib/kiln-tool
symlinks = /usr/bin/kt -> kiln-tool
preinstall = echo "preinst $*" >> "$\${DPKG_ROOT:-}/var/log/kiln-tool.log"
postinstall =
  echo "postinst $*" >> "$\${DPKG_ROOT:-}/var/log/kiln-tool.log"
preremove = echo "prerm $*" >> "$\${DPKG_ROOT:-}/var/log/kiln-tool.log"
postremove = echo "postrm $*" >> "$\${DPKG_ROOT:-}/var/log/kiln-tool.log"

[data-pkg]
<= common
name = kiln-tool-data
summary = Data for the test tool
description = Architecture-independent data of the test tool.
files = \${tool:location}/data.txt => /usr/share/kiln-tool/data.txt

[apt]
recipe = kiln:apt-repo
packages =
  \${tool-pkg:location}/*.deb
  \${data-pkg:location}/*.deb
signing-key = \${keys:secret}

[rpmrepo]
recipe = kiln:rpm-repo
packages = \${data-pkg:location}/*.rpm
signing-key = \${keys:secret}
packages-signed = true
${extra}`;

let proj: ReturnType<typeof project>;
const out = (p: string) => join(proj.dir, 'out/parts', p);
const one = (dir: string, ext: string) => join(dir, readdirSync(dir).find((f) => f.endsWith(ext))!);

beforeAll(async () => {
  proj = project({ 'buildout.cfg': cfg('1.0').replace('secret = KEY', `secret = ${key}`) });
  const r = await kilnP(proj.dir, ['build']);
  if (r.code !== 0) throw new Error(r.stderr);
}, 120_000);

describe('.deb', () => {
  test('dpkg-deb reads the package; fields, files and scripts are as declared', async () => {
    const deb = one(out('tool-pkg'), '.deb');
    expect(deb.endsWith('kiln-tool_1.0-1_all.deb')).toBe(true);
    const field = (f: string) => execFileSync('dpkg-deb', ['--field', deb, f], { encoding: 'utf8' }).trim();
    expect(field('Package')).toBe('kiln-tool');
    expect(field('Version')).toBe('1.0-1');
    expect(field('Source')).toBe('tool');
    expect(field('Depends')).toBe('kiln-tool-data (= 1.0-1)');
    const contents = execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' });
    expect(contents).toMatch(/-rwxr-xr-x root\/root\s+\d+ \S+ \S+ \.\/usr\/bin\/kiln-tool\n/);
    expect(contents).toMatch(/lrwxrwxrwx root\/root\s+0 \S+ \S+ \.\/usr\/bin\/kt -> kiln-tool/);
    expect(contents).toMatch(/drwxr-xr-x root\/root\s+0 \S+ \S+ \.\/var\/lib\/kiln-tool\//);
    const info = execFileSync('dpkg-deb', ['--info', deb], { encoding: 'utf8' });
    for (const s of ['preinst', 'postinst', 'prerm', 'postrm', 'conffiles', 'md5sums']) expect(info).toContain(s);
    expect(execFileSync('dpkg-deb', ['--ctrl-tarfile', deb]).length).toBeGreaterThan(0);
  });

  test('signed as debsigs does: debsig-verify accepts it with a policy for the key, rejects a tampered copy', async () => {
    const deb = one(out('tool-pkg'), '.deb');
    expect(execFileSync('ar', ['t', deb], { encoding: 'utf8' }).split('\n').filter(Boolean)).toEqual(['debian-binary', 'control.tar.xz', 'data.tar.xz', '_gpgorigin']);
    // debsigs itself lists the signature
    expect(execFileSync('debsigs', ['--list', deb], { encoding: 'utf8' })).toMatch(/origin/);
    const pub = join(out('rpmrepo'), 'RPM-GPG-KEY-kiln');
    const fpr = execFileSync('gpg', ['--show-keys', '--with-colons', pub], { encoding: 'utf8' }).split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
    const keyid = fpr.slice(-16);
    const d = mkdtempSync(join(tmpdir(), 'kiln-debsig-'));
    mkdirSync(join(d, 'policies', keyid), { recursive: true });
    mkdirSync(join(d, 'keyrings', keyid), { recursive: true });
    execFileSync('gpg', ['--batch', '--yes', '--dearmor', '--output', join(d, 'keyrings', keyid, 'kiln.gpg'), pub]);
    writeFileSync(
      join(d, 'policies', keyid, 'kiln.pol'),
      `<?xml version="1.0"?>\n<!DOCTYPE Policy SYSTEM "https://www.debian.org/debsig/1.0/policy.dtd">\n<Policy xmlns="https://www.debian.org/debsig/1.0/">\n  <Origin Name="kiln" id="${keyid}" Description="kiln test"/>\n  <Selection>\n    <Required Type="origin" File="kiln.gpg" id="${keyid}"/>\n  </Selection>\n  <Verification MinOptional="0">\n    <Required Type="origin" File="kiln.gpg" id="${keyid}"/>\n  </Verification>\n</Policy>\n`,
    );
    const verify = (f: string) => spawnSync('debsig-verify', ['--policies-dir', join(d, 'policies'), '--keyrings-dir', join(d, 'keyrings'), f], { encoding: 'utf8' });
    const good = verify(deb);
    expect(good.status, good.stdout + good.stderr).toBe(0);
    // flip one byte inside data.tar.xz: the signature no longer matches (13 = bad signature)
    const bytes = readFileSync(deb);
    const at = bytes.indexOf('data.tar.xz') + 60 + 100;
    bytes[at] = bytes[at]! ^ 0xff;
    const bad = join(d, 'tampered.deb');
    writeFileSync(bad, bytes);
    const r = verify(bad);
    expect(r.status, r.stdout + r.stderr).toBe(13);
  }, 60_000);

  test('lintian finds no errors (but the debsigs member it flags for every debsigs-signed package)', async () => {
    expect(execFileSync('ar', ['t', one(out('data-pkg'), '.deb')], { encoding: 'utf8' })).not.toContain('_gpg');
    const r = spawnSync('lintian', ['--tag-display-limit', '0', one(out('tool-pkg'), '.deb'), one(out('data-pkg'), '.deb')], { encoding: 'utf8' });
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('E:') && !l.includes('misplaced-extra-member-in-deb _gpgorigin'));
    expect(errors, r.stdout).toEqual([]);
  }, 120_000);

  test('installs, upgrades (keeping a modified conffile), removes and purges with dpkg, running its scripts', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kiln-dpkg-'));
    for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/log']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/status'), '');
    writeFileSync(join(root, 'var/lib/dpkg/available'), '');
    const dpkg = (...args: string[]) => {
      const r = spawnSync('dpkg', [`--root=${root}`, '--force-script-chrootless', '--force-not-root', ...args], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      return r.stdout;
    };
    dpkg('-i', one(out('data-pkg'), '.deb'), one(out('tool-pkg'), '.deb'));
    expect(readFileSync(join(root, 'usr/bin/kiln-tool'), 'utf8')).toContain('tool 1.0');
    expect(readFileSync(join(root, 'var/log/kiln-tool.log'), 'utf8')).toMatch(/preinst install\npostinst configure ?\n/);
    // the user edits the conffile, then v2 arrives
    writeFileSync(join(root, 'etc/kiln-tool.conf'), 'setting = mine\n');
    const p2 = project({ 'buildout.cfg': cfg('2.0').replace('secret = KEY', `secret = ${key}`) });
    expect((await kilnP(p2.dir, ['build'])).code).toBe(0);
    dpkg('--force-confold', '-i', one(join(p2.dir, 'out/parts/data-pkg'), '.deb'), one(join(p2.dir, 'out/parts/tool-pkg'), '.deb'));
    expect(readFileSync(join(root, 'usr/bin/kiln-tool'), 'utf8')).toContain('tool 2.0');
    expect(readFileSync(join(root, 'etc/kiln-tool.conf'), 'utf8')).toBe('setting = mine\n');
    expect(readFileSync(join(root, 'var/log/kiln-tool.log'), 'utf8')).toMatch(/prerm upgrade 2\.0-1\npreinst upgrade 1\.0-1 2\.0-1\npostrm upgrade 2\.0-1\npostinst configure 1\.0-1\n/);
    dpkg('-r', 'kiln-tool');
    expect(existsSync(join(root, 'usr/bin/kiln-tool'))).toBe(false);
    expect(existsSync(join(root, 'etc/kiln-tool.conf'))).toBe(true);
    dpkg('-P', 'kiln-tool');
    expect(existsSync(join(root, 'etc/kiln-tool.conf'))).toBe(false);
    expect(readFileSync(join(root, 'var/log/kiln-tool.log'), 'utf8')).toMatch(/prerm remove\npostrm remove\npostrm purge\n$/);
  });
});

/** A root where rpm's chrooted scriptlets find /bin/sh: the host's dash and its libraries. */
function rpmRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'kiln-rpmroot-'));
  for (const d of ['bin', 'lib/x86_64-linux-gnu', 'lib64', 'var/log', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/dash', join(root, 'bin/sh'));
  execFileSync('chmod', ['0755', join(root, 'bin/sh')]);
  copyFileSync('/lib/x86_64-linux-gnu/libc.so.6', join(root, 'lib/x86_64-linux-gnu/libc.so.6'));
  copyFileSync('/lib64/ld-linux-x86-64.so.2', join(root, 'lib64/ld-linux-x86-64.so.2'));
  return root;
}

describe('.rpm', () => {
  const rpm = () => one(out('tool-pkg'), '.rpm');
  test('rpm -K verifies digests and the signature; every declared tag reads back', async () => {
    const db = mkdtempSync(join(tmpdir(), 'kiln-rpmdb-'));
    const pub = join(out('rpmrepo'), 'RPM-GPG-KEY-kiln');
    execFileSync('rpm', ['--dbpath', db, '--import', pub]);
    expect(execFileSync('rpm', ['--dbpath', db, '-K', rpm()], { encoding: 'utf8' })).toMatch(/digests signatures OK/);
    const qf = (q: string) => execFileSync('rpm', ['-qp', '--qf', q, rpm()], { encoding: 'utf8' });
    expect(qf('%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}|%{LICENSE}|%{SUMMARY}|%{SOURCERPM}')).toBe('kiln-tool|1.0|1|noarch|MIT|Test tool|tool-1.0-1.src.rpm');
    expect(qf('%{DESCRIPTION}')).toMatch(/^A test tool\./);
    expect(qf('[%{REQUIRENAME} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}\n]')).toMatch(/^kiln-tool-data = 1\.0-1$/m);
    expect(qf('[%{PROVIDENAME} %{PROVIDEVERSION}\n]')).toMatch(/^kiln-tool 1\.0-1$/m);
    const files = qf('[%{FILENAMES} %{FILEMODES:perms} %{FILEFLAGS:fflags} %{FILEUSERNAME}\n]');
    expect(files).toMatch(/^\/etc\/kiln-tool\.conf -rw-r--r-- cn root$/m);
    expect(files).toMatch(/^\/usr\/bin\/kiln-tool -rwxr-xr-x {2}root$/m);
    expect(files).toMatch(/^\/usr\/bin\/kt lrwxrwxrwx {2}root$/m);
    expect(files).toMatch(/^\/var\/lib\/kiln-tool drwxr-xr-x {2}root$/m);
    expect(files).not.toMatch(/^\/usr\/bin drwx/m); // parents are not owned
    expect(qf('%{POSTIN}')).toContain('postinst');
    expect(execFileSync('rpm', ['-qp', '--changelog', rpm()], { encoding: 'utf8' })).toMatch(/Kiln Tests <tests@example\.invalid> - 1\.0-1/);
    const listing = execFileSync('sh', ['-c', 'rpm2cpio "$1" | cpio -t --quiet', 'sh', rpm()], { encoding: 'utf8' });
    expect(listing.split('\n').filter(Boolean).sort()).toEqual(['./etc/kiln-tool.conf', './usr/bin/kiln-tool', './usr/bin/kt', './var/lib/kiln-tool']);
  });

  test('rpmlint finds no errors (signing key known)', async () => {
    const home = mkdtempSync(join(tmpdir(), 'kiln-rpmlint-'));
    execFileSync('rpm', ['--import', join(out('rpmrepo'), 'RPM-GPG-KEY-kiln')], { env: { ...process.env, HOME: home } });
    const r = spawnSync('rpmlint', [rpm(), one(out('data-pkg'), '.rpm')], { encoding: 'utf8', env: { ...process.env, HOME: home } });
    expect(r.stdout, r.stdout).toMatch(/\b0 errors\b/);
  }, 120_000);

  test('installs and erases with rpm --root on a fresh rpmdb, running its scriptlets', async () => {
    const root = rpmRoot();
    const rpmr = (...a: string[]) => {
      const r = spawnSync('rpm', ['--root', root, ...a], { encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    };
    rpmr('--initdb');
    rpmr('-ivh', '--force-debian', '--nosignature', '--nodeps', one(out('data-pkg'), '.rpm'), rpm());
    expect(readFileSync(join(root, 'usr/bin/kiln-tool'), 'utf8')).toContain('tool 1.0');
    expect(readFileSync(join(root, 'var/log/kiln-tool.log'), 'utf8')).toBe('preinst 1\npostinst 1\n');
    rpmr('-e', '--force-debian', '--nodeps', 'kiln-tool');
    expect(existsSync(join(root, 'usr/bin/kiln-tool'))).toBe(false);
    expect(readFileSync(join(root, 'var/log/kiln-tool.log'), 'utf8')).toBe('preinst 1\npostinst 1\nprerm 0\npostrm 0\n');
  });

  test('dnf installs from the generated, signed rpm repository', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kiln-dnf-'));
    const repos = mkdtempSync(join(tmpdir(), 'kiln-repos-'));
    copyFileSync(join(out('rpmrepo'), 'kiln.repo'), join(repos, 'kiln.repo'));
    expect(readFileSync(join(repos, 'kiln.repo'), 'utf8')).toMatch(/repo_gpgcheck=1/);
    const r = spawnSync('dnf', ['-y', `--installroot=${root}`, '--releasever=12', `--setopt=reposdir=${repos}`, `--setopt=cachedir=${join(root, 'cache')}`, '--setopt=install_weak_deps=False', 'install', 'kiln-tool-data'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(readFileSync(join(root, 'usr/share/kiln-tool/data.txt'), 'utf8')).toBe('data 1.0\n');
  }, 120_000);
});

describe('reproducibility and bad inputs', () => {
  test('two builds in different directories give identical .deb and .rpm bytes', async () => {
    const again = project({ 'buildout.cfg': cfg('1.0').replace('secret = KEY', `secret = ${key}`) });
    expect((await kilnP(again.dir, ['build'])).code).toBe(0);
    for (const [part, ext] of [['tool-pkg', '.deb'], ['tool-pkg', '.rpm'], ['data-pkg', '.deb'], ['data-pkg', '.rpm']] as const) {
      const a = readFileSync(one(out(part), ext));
      const b = readFileSync(one(join(again.dir, 'out/parts', part), ext));
      expect(a.equals(b), `${part}${ext}`).toBe(true);
    }
  });

  const bad = (files: string, extra = '') => `[buildout]\nparts = p\n[p]\nrecipe = kiln:package\nname = bad-test\nversion = 1.0-1\nsummary = s\nmaintainer = M <m@example.invalid>\nfiles = ${files}\n${extra}`;
  test.each([
    ['invalid name', bad('f.txt => /usr/share/f.txt').replace('name = bad-test', 'name = Bad_Name'), 3, /\[p\] name: package name 'Bad_Name' may only contain/],
    ['invalid version', bad('f.txt => /usr/share/f.txt').replace('version = 1.0-1', 'version = x1.0'), 3, /\[p\] version: upstream version 'x1.0' in 'x1.0' must start with a digit/],
    ['file outside the root', bad('f.txt => /usr/../../etc/passwd'), 3, /\[p\] files: destination '\/usr\/\.\.\/\.\.\/etc\/passwd' contains '\.\.'/],
    ['missing source', bad('missing.txt => /usr/share/f.txt'), 1, /\[p\] files: source not found: .*missing\.txt/],
    ['duplicate path', bad('f.txt => /usr/share/f.txt\n  f.txt => /usr/share/f.txt'), 1, /\[p\] files: duplicate path in package: \/usr\/share\/f\.txt/],
    ['unknown format to sign', bad('f.txt => /usr/share/f.txt', 'sign = deb apk'), 3, /\[p\] sign: unknown format 'apk' \(deb, rpm\)/],
    ['invalid debsigs role', bad('f.txt => /usr/share/f.txt', 'sign = deb\ndeb-signature-role = Origin!'), 3, /\[p\] deb-signature-role: invalid role 'Origin!'/],
    ['malformed shlibs line', bad('f.txt => /usr/share/f.txt', 'deb-shlibs = libfoo libfoo1'), 3, /buildout\.cfg:\d+: \[p\] deb-shlibs: shlibs line 1: expected '\[TYPE:\] LIBRARY SOVERSION DEPENDENCIES'/],
  ])('%s: one clear error, no package left in out/', async (_name, text, code, re) => {
    const p = project({ 'buildout.cfg': text, 'f.txt': 'x\n' });
    const r = await kilnP(p.dir, ['build']);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(re);
    expect(existsSync(join(p.dir, 'out/parts/p'))).toBe(false);
    const tmp = join(p.dir, 'out/.kiln/tmp');
    expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
  });
});
