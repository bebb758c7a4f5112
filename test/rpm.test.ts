// The native .rpm writer (src/pkg/rpm.ts) checked with the real tools of this Debian host:
// rpm 4.18 (-K, --qf of every tag we write, --dump, -qplv, --scripts, --changelog, install,
// upgrade and erase into a fresh root), rpm2cpio + cpio, rpmlint 2.4, and rpmbuild -bb of an
// equivalent spec over the same tree (tags, file list, payload bytes).
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { generateTestKey } from '../src/lib/gpg.js';
import { _internal, rpmFileName, writeRpm, type RpmSpec } from '../src/pkg/rpm.js';

const SDE = 1700000000;
const work = mkdtempSync(join(tmpdir(), 'kiln-rpm-test-'));
const srcDir = join(work, 'src');

/** Run argv, return stdout; throw with stderr unless the exit status is `rc`. */
function sh(argv: string[], opts: SpawnSyncOptions & { rc?: number } = {}): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const rc = opts.rc ?? 0;
  if (r.status !== rc) throw new Error(`${argv.join(' ')}: exit ${r.status} (wanted ${rc})\n${r.stdout}\n${r.stderr}`);
  return String(r.stdout);
}
const shell = (script: string, ...args: string[]) => sh(['sh', '-c', script, 'sh', ...args]);
const qf = (rpm: string, fmt: string) => sh(['rpm', '-qp', '--qf', fmt, rpm]);

/** The example package: every kind of entry, dependency and scriptlet. */
function exampleSpec(over: Partial<RpmSpec> = {}): RpmSpec {
  return {
    name: 'hello-kiln',
    version: '1.2.3',
    release: '1',
    epoch: 2,
    arch: 'noarch',
    summary: 'Greets the world',
    description: 'A small example package built by kiln.\nIt prints hello.',
    license: 'MIT',
    group: 'Applications/System',
    url: 'https://example.org/hello',
    vendor: 'Kiln',
    packager: 'Kiln Tests <tests@example.org>',
    requires: ['bash >= 4.0', 'coreutils'],
    provides: ['greeter = 1.2'],
    conflicts: ['oldhello < 1.0'],
    obsoletes: ['hello-legacy <= 0.9'],
    recommends: ['less'],
    suggests: ['man-db > 2'],
    supplements: ['(bash and hello)'],
    enhances: ['bash'],
    files: [
      { path: '/usr/bin/hello', type: 'file', source: join(srcDir, 'hello'), mode: 0o755 },
      { path: '/etc/hello.conf', type: 'file', content: 'greeting=hello\n', noreplace: true },
      { path: '/etc/hello-plain.conf', type: 'file', content: 'plain=1\n', config: true },
      { path: '/etc/hello.d', type: 'dir' },
      { path: '/usr/share/doc/hello-kiln/README', type: 'file', content: 'readme\n', doc: true },
      { path: '/usr/share/licenses/hello-kiln/LICENSE', type: 'file', content: 'MIT License\n', license: true },
      { path: '/usr/bin/hi', type: 'symlink', target: 'hello' },
      { path: '/var/lib/hello', type: 'dir', mode: 0o750, user: 'nobody', group: 'nogroup' },
      { path: '/var/log/hello.log', type: 'file', ghost: true },
    ],
    scripts: {
      pretrans: { body: 'echo pretrans > /pretrans.marker\n' },
      pre: { body: 'echo "pre $1" > /pre.marker\n' },
      post: { body: '#!/bin/sh -e\necho "post $1" > /post.marker\n' },
      preun: { body: 'echo "preun $1" > /preun.marker\n' },
      postun: { body: 'echo "postun $1" > /postun.marker\n', prog: '/bin/sh' },
      posttrans: { body: 'echo posttrans > /posttrans.marker\n' },
    },
    changelog: [
      { time: SDE - 86400 * 30, author: 'Kiln Tests <tests@example.org> - 2:1.2.2-1', text: '- Older entry' },
      { time: SDE, author: 'Kiln Tests <tests@example.org> - 2:1.2.3-1', text: '- Initial package\n- Second line' },
    ],
    sourceDateEpoch: SDE,
    buildHost: 'build.example.org',
    ...over,
  };
}

const pkgs: Record<string, string> = {};
async function build(spec: RpmSpec, dir = join(work, 'out')): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const r = await writeRpm(spec, join(dir, rpmFileName(spec)));
  return r.path;
}

beforeAll(async () => {
  mkdirSync(srcDir, { recursive: true });
  writeFileSync(join(srcDir, 'hello'), '#!/bin/sh\necho hello\n');
  chmodSync(join(srcDir, 'hello'), 0o755);
  pkgs.xz = await build(exampleSpec());
  pkgs.gzip = await build(exampleSpec({ compression: 'gzip' }), join(work, 'gzip'));
  pkgs.zstd = await build(exampleSpec({ compression: 'zstd' }), join(work, 'zstd'));
});

describe('rpm reads what writeRpm writes', () => {
  test('file name; rpm -K: digests OK for xz, gzip and zstd payloads', () => {
    expect(pkgs.xz!.endsWith('/hello-kiln-1.2.3-1.noarch.rpm')).toBe(true);
    for (const [comp, p] of Object.entries(pkgs)) {
      const out = sh(['rpm', '-Kv', p]);
      for (const line of ['Header SHA256 digest: OK', 'Header SHA1 digest: OK', 'Payload SHA256 digest: OK', 'MD5 digest: OK']) expect(out).toContain(line);
      expect(sh(['rpm', '-K', p])).toMatch(/: digests OK$/m);
      expect(qf(p, '%{PAYLOADCOMPRESSOR} %{PAYLOADFORMAT}')).toBe(`${comp} cpio`);
    }
  });

  test('a flipped byte in the payload or the header is caught by rpm -K', () => {
    const good = readFileSync(pkgs.xz!);
    for (const [what, at] of [['payload', good.length - 100], ['header', good.indexOf('Greets the world')]] as const) {
      const bad = Buffer.from(good);
      bad[at]! ^= 1;
      const f = join(work, `bad-${what}.rpm`);
      writeFileSync(f, bad);
      const r = spawnSync('rpm', ['-K', f], { encoding: 'utf8' });
      expect(r.status, what).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/DIGESTS|digest|BAD|NOT OK/i);
    }
  });

  test('package tags', () => {
    const p = pkgs.xz!;
    expect(qf(p, '%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{OS}|%{LICENSE}|%{GROUP}|%{URL}|%{VENDOR}|%{PACKAGER}|%{BUILDHOST}|%{BUILDTIME}|%{SOURCERPM}|%{NEVRA}|%{SIZE}')).toBe(
      `hello-kiln|2|1.2.3|1|noarch|linux|MIT|Applications/System|https://example.org/hello|Kiln|Kiln Tests <tests@example.org>|build.example.org|${SDE}|hello-kiln-1.2.3-1.src.rpm|hello-kiln-2:1.2.3-1.noarch|${21 + 15 + 8 + 7 + 12 + 5}`,
    );
    expect(qf(p, '%{SUMMARY}\n%{DESCRIPTION}')).toBe('Greets the world\nA small example package built by kiln.\nIt prints hello.');
    expect(qf(p, '%{FILEDIGESTALGO} %{PAYLOADDIGESTALGO} %{ENCODING}')).toBe('8 8 utf-8');
    // PAYLOADDIGESTALT: SHA-256 of the uncompressed cpio archive
    const cpio = spawnSync('sh', ['-c', 'rpm2cpio "$1"', 'sh', p], { maxBuffer: 64 << 20 }).stdout;
    expect(qf(p, '%{PAYLOADDIGESTALT}')).toBe(createHash('sha256').update(cpio).digest('hex'));
    // lead name carries the epoch, as rpmbuild's does
    expect(readFileSync(p).subarray(10, 30).toString('latin1').replace(/\0+$/, '')).toBe('hello-kiln-2:1.2.3-1');
  });

  test('dependencies with versions and sense flags; rpmlib() features; scriptlet interpreters', () => {
    const p = pkgs.xz!;
    const deps = (t: string) => qf(p, `[%{${t}NAME} %{${t}FLAGS:deptype} %{${t}FLAGS:depflags} %{${t}VERSION}\n]`).trim().split('\n').map((l) => l.replace(/\s+/g, ' ').trim());
    const req = deps('REQUIRE');
    expect(req).toEqual(
      expect.arrayContaining([
        'bash manual >= 4.0',
        'coreutils manual',
        'rpmlib(CompressedFileNames) rpmlib <= 3.0.4-1',
        'rpmlib(FileDigests) rpmlib <= 4.6.0-1',
        'rpmlib(PayloadFilesHavePrefix) rpmlib <= 4.0-1',
        'rpmlib(PayloadIsXz) rpmlib <= 5.2-1',
        'rpmlib(RichDependencies) rpmlib <= 4.12.0-1',
        '/bin/sh pre,interp',
        '/bin/sh post,interp',
        'rpmlib(ScriptletInterpreterArgs) rpmlib <= 4.0.3-1', // '/bin/sh -e' from the #! line
        '/bin/sh preun,interp',
        '/bin/sh postun,interp',
        '/bin/sh interp,pretrans',
        '/bin/sh interp,posttrans',
      ]),
    );
    expect(req).toHaveLength(14);
    expect(qf(pkgs.zstd!, '[%{REQUIRENAME} %{REQUIREVERSION}\n]')).toMatch(/^rpmlib\(PayloadIsZstd\) 5\.4\.18-1$/m);
    expect(qf(pkgs.gzip!, '[%{REQUIRENAME}\n]')).not.toMatch(/PayloadIs/);
    const plain = (t: string) => qf(p, `[%{${t}NAME} %{${t}FLAGS:depflags} %{${t}VERSION}\n]`).trim().split('\n').map((l) => l.replace(/\s+/g, ' ').trim());
    expect(plain('PROVIDE')).toEqual(['greeter = 1.2', 'hello-kiln = 2:1.2.3-1']);
    expect(plain('CONFLICT')).toEqual(['oldhello < 1.0']);
    expect(plain('OBSOLETE')).toEqual(['hello-legacy <= 0.9']);
    expect(plain('RECOMMEND')).toEqual(['less']);
    expect(plain('SUGGEST')).toEqual(['man-db > 2']);
    expect(plain('SUPPLEMENT')).toEqual(['(bash and hello)']);
    expect(plain('ENHANCE')).toEqual(['bash']);
    // rpm's own query options agree
    expect(sh(['rpm', '-qp', '--supplements', p]).trim()).toBe('(bash and hello)');
    expect(sh(['rpm', '-qp', '--obsoletes', p]).trim()).toBe('hello-legacy <= 0.9');
  });

  test('scriptlets and changelog', () => {
    const p = pkgs.xz!;
    const scripts = sh(['rpm', '-qp', '--scripts', p]);
    expect(scripts).toContain('pretrans scriptlet (using /bin/sh):\necho pretrans > /pretrans.marker\n');
    expect(scripts).toContain('preinstall scriptlet (using /bin/sh):\necho "pre $1" > /pre.marker\n');
    // a #! line gives the interpreter (with its arguments) and is not stored
    expect(scripts).toContain('postinstall scriptlet (using /bin/sh -e):\necho "post $1" > /post.marker\n');
    expect(qf(p, '%{POSTIN}')).toBe('echo "post $1" > /post.marker');
    expect(qf(p, '[%{POSTINPROG} ]')).toBe('/bin/sh -e ');
    expect(scripts).toContain('preuninstall scriptlet (using /bin/sh):\necho "preun $1" > /preun.marker\n');
    expect(scripts).toContain('postuninstall scriptlet (using /bin/sh):\necho "postun $1" > /postun.marker\n');
    expect(scripts).toContain('posttrans scriptlet (using /bin/sh):\necho posttrans > /posttrans.marker\n');
    expect(sh(['rpm', '-qp', '--changelog', p])).toBe(
      '* Tue Nov 14 2023 Kiln Tests <tests@example.org> - 2:1.2.3-1\n- Initial package\n- Second line\n\n* Sun Oct 15 2023 Kiln Tests <tests@example.org> - 2:1.2.2-1\n- Older entry\n\n',
    );
  });

  test('file list: --dump, flags, -qplv, rpm2cpio | cpio (no %ghost in the payload, contents intact)', () => {
    const p = pkgs.xz!;
    const dump = sh(['rpm', '-qp', '--dump', p]).trim().split('\n');
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const Z = '0'.repeat(64);
    const T = String(SDE);
    // path size mtime digest mode owner group isconfig isdoc rdev symlink
    expect(dump).toEqual([
      `/etc/hello-plain.conf 8 ${T} ${sha('plain=1\n')} 0100644 root root 1 0 0 X`,
      `/etc/hello.conf 15 ${T} ${sha('greeting=hello\n')} 0100644 root root 1 0 0 X`,
      `/etc/hello.d 0 ${T} ${Z} 040755 root root 0 0 0 X`,
      `/usr/bin/hello 21 ${T} ${sha('#!/bin/sh\necho hello\n')} 0100755 root root 0 0 0 X`,
      `/usr/bin/hi 5 ${T} ${Z} 0120777 root root 0 0 0 hello`,
      `/usr/share/doc/hello-kiln/README 7 ${T} ${sha('readme\n')} 0100644 root root 0 1 0 X`,
      `/usr/share/licenses/hello-kiln/LICENSE 12 ${T} ${sha('MIT License\n')} 0100644 root root 0 0 0 X`,
      `/var/lib/hello 0 ${T} ${Z} 040750 nobody nogroup 0 0 0 X`,
      `/var/log/hello.log 0 ${T} ${Z} 0100644 root root 0 0 0 X`,
    ]);
    expect(qf(p, '[%{FILENAMES} %{FILEFLAGS:fflags}\n]')).toBe(
      ['/etc/hello-plain.conf c', '/etc/hello.conf cn', '/etc/hello.d ', '/usr/bin/hello ', '/usr/bin/hi ', '/usr/share/doc/hello-kiln/README d', '/usr/share/licenses/hello-kiln/LICENSE l', '/var/lib/hello ', '/var/log/hello.log g', ''].join('\n'),
    );
    expect(sh(['rpm', '-qp', '--configfiles', p]).trim().split('\n')).toEqual(['/etc/hello-plain.conf', '/etc/hello.conf']);
    expect(sh(['rpm', '-qp', '--docfiles', p]).trim()).toBe('/usr/share/doc/hello-kiln/README');
    expect(sh(['rpm', '-qp', '--licensefiles', p]).trim()).toBe('/usr/share/licenses/hello-kiln/LICENSE');
    const lv = sh(['rpm', '-qplv', p]);
    expect(lv).toMatch(/^lrwxrwxrwx\s+1 root\s+root\s+5 Nov 14\s+2023 \/usr\/bin\/hi -> hello$/m);
    expect(lv).toMatch(/^drwxr-x---\s+2 nobody\s+nogroup\s+0 Nov 14\s+2023 \/var\/lib\/hello$/m);
    expect(lv).toMatch(/^-rwxr-xr-x\s+1 root\s+root\s+21 Nov 14\s+2023 \/usr\/bin\/hello$/m);
    for (const pk of Object.values(pkgs)) {
      const listing = shell('rpm2cpio "$1" | cpio -t --quiet', pk).trim().split('\n');
      expect(listing).toEqual(['./etc/hello-plain.conf', './etc/hello.conf', './etc/hello.d', './usr/bin/hello', './usr/bin/hi', './usr/share/doc/hello-kiln/README', './usr/share/licenses/hello-kiln/LICENSE', './var/lib/hello']);
    }
    const x = mkdtempSync(join(work, 'x-'));
    shell('cd "$2" && rpm2cpio "$1" | cpio -idm --quiet', p, x);
    expect(readFileSync(join(x, 'usr/bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hello\n');
    expect(statSync(join(x, 'usr/bin/hello')).mode & 0o777).toBe(0o755);
    expect(statSync(join(x, 'usr/bin/hello')).mtimeMs / 1000).toBe(SDE);
  });

  test('ELF files get rpm file colours (multilib), other files none', async () => {
    const spec = exampleSpec({ arch: 'x86_64', files: [{ path: '/usr/bin/true', type: 'file', source: '/bin/true', mode: 0o755 }, { path: '/usr/share/x', type: 'file', content: 'x' }] });
    const p = await build(spec, join(work, 'elf'));
    expect(qf(p, '[%{FILENAMES} %{FILECOLORS} %{FILECLASS}\n]')).toBe('/usr/bin/true 2 ELF 64-bit\n/usr/share/x 0 \n');
    expect(sh(['rpm', '-K', p])).toMatch(/digests OK/);
  });

  test('lua scriptlets need rpmlib(BuiltinLuaScripts), not an interpreter', async () => {
    const spec = exampleSpec({ scripts: { post: { body: 'print("hi")', prog: '<lua>' } }, supplements: [], requires: [] });
    const p = await build(spec, join(work, 'lua'));
    expect(sh(['rpm', '-qp', '--scripts', p])).toContain('postinstall scriptlet (using <lua>):\nprint("hi")');
    const req = qf(p, '[%{REQUIRENAME}\n]');
    expect(req).toMatch(/^rpmlib\(BuiltinLuaScripts\)$/m);
    expect(req).not.toMatch(/^\/bin\/sh$|^<lua>$|RichDependencies/m);
  });
});

describe('install, upgrade, erase with rpm --root', () => {
  /** A root where rpm's chrooted scriptlets find /bin/sh (static busybox), with an empty rpmdb. */
  function rpmRoot(): { root: string; rpm: (...a: string[]) => string } {
    const root = mkdtempSync(join(work, 'root-'));
    mkdirSync(join(root, 'bin'));
    copyFileSync('/bin/busybox', join(root, 'bin', 'sh'));
    chmodSync(join(root, 'bin', 'sh'), 0o755);
    // Debian's rpm wants --force-debian to write outside its own database
    const rpm = (...a: string[]) => sh(['rpm', '--root', root, '--force-debian', ...a]);
    sh(['rpm', '--root', root, '--initdb']);
    return { root, rpm };
  }
  const marker = (root: string, n: string) => (existsSync(join(root, `${n}.marker`)) ? readFileSync(join(root, `${n}.marker`), 'utf8').trim() : undefined);

  test('busybox is static (scriptlets run chrooted)', () => {
    expect(sh(['file', '-L', '/bin/busybox'])).toMatch(/statically linked/);
  });

  test('install runs pretrans/pre/post/posttrans, lays out files; rpm -V is clean; erase runs preun/postun and removes files', () => {
    const { root, rpm } = rpmRoot();
    rpm('-ivh', '--nodeps', pkgs.xz!);
    expect(['pretrans', 'pre', 'post', 'posttrans'].map((m) => marker(root, m))).toEqual(['pretrans', 'pre 1', 'post 1', 'posttrans']);
    expect(readFileSync(join(root, 'usr/bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hello\n');
    expect(statSync(join(root, 'usr/bin/hello')).mode & 0o7777).toBe(0o755);
    expect(statSync(join(root, 'var/lib/hello')).mode & 0o7777).toBe(0o750);
    expect(readFileSync(join(root, 'usr/bin/hi'), 'utf8')).toBe(readFileSync(join(root, 'usr/bin/hello'), 'utf8'));
    expect(existsSync(join(root, 'var/log/hello.log'))).toBe(false); // %ghost: owned, not created
    expect(rpm('-q', 'hello-kiln').trim()).toBe('hello-kiln-1.2.3-1.noarch');
    expect(rpm('-qf', '/var/log/hello.log').trim()).toBe('hello-kiln-1.2.3-1.noarch');
    // verification against the installed files: nothing differs (the host has no user nobody in
    // the root, so only that directory's owner can be reported)
    const v = spawnSync('rpm', ['--root', root, '--force-debian', '-V', '--nodeps', 'hello-kiln'], { encoding: 'utf8' });
    expect(v.stdout.split('\n').filter((l) => l && !/\/var\/lib\/hello$/.test(l))).toEqual([]);
    rpm('-e', '--nodeps', 'hello-kiln');
    expect(['preun', 'postun'].map((m) => marker(root, m))).toEqual(['preun 0', 'postun 0']);
    for (const f of ['usr/bin/hello', 'usr/bin/hi', 'etc/hello.conf', 'usr/share/doc/hello-kiln/README']) expect(existsSync(join(root, f)), f).toBe(false);
    expect(spawnSync('rpm', ['--root', root, '-q', 'hello-kiln']).status).not.toBe(0);
  });

  test('upgrade: changed %config(noreplace) keeps the admin file and writes .rpmnew; changed %config saves .rpmsave', async () => {
    const { root, rpm } = rpmRoot();
    rpm('-ivh', '--nodeps', pkgs.xz!);
    writeFileSync(join(root, 'etc/hello.conf'), 'greeting=admin\n');
    writeFileSync(join(root, 'etc/hello-plain.conf'), 'plain=admin\n');
    const v2 = exampleSpec({
      release: '2',
      files: exampleSpec().files.map((f) => (f.path === '/etc/hello.conf' ? { ...f, content: 'greeting=new\n' } : f.path === '/etc/hello-plain.conf' ? { ...f, content: 'plain=2\n' } : f)),
    });
    const p2 = await build(v2, join(work, 'v2'));
    const out = rpm('-Uvh', '--nodeps', p2);
    expect(out + '').toMatch(/hello-kiln-2:1\.2\.3-2/);
    expect(readFileSync(join(root, 'etc/hello.conf'), 'utf8')).toBe('greeting=admin\n');
    expect(readFileSync(join(root, 'etc/hello.conf.rpmnew'), 'utf8')).toBe('greeting=new\n');
    expect(readFileSync(join(root, 'etc/hello-plain.conf'), 'utf8')).toBe('plain=2\n');
    expect(readFileSync(join(root, 'etc/hello-plain.conf.rpmsave'), 'utf8')).toBe('plain=admin\n');
    // upgrade scriptlet arguments: new package's pre/post see 2, old package's preun/postun 1
    expect(['pre', 'post', 'preun', 'postun'].map((m) => marker(root, m))).toEqual(['pre 2', 'post 2', 'preun 1', 'postun 1']);
    expect(rpm('-q', 'hello-kiln').trim()).toBe('hello-kiln-1.2.3-2.noarch');
  });

  test('upgrade: an unmodified %config(noreplace) file is replaced silently', async () => {
    const { root, rpm } = rpmRoot();
    rpm('-ivh', '--nodeps', pkgs.xz!);
    const v2 = exampleSpec({ release: '3', files: exampleSpec().files.map((f) => (f.path === '/etc/hello.conf' ? { ...f, content: 'greeting=three\n' } : f)) });
    rpm('-Uvh', '--nodeps', await build(v2, join(work, 'v3')));
    expect(readFileSync(join(root, 'etc/hello.conf'), 'utf8')).toBe('greeting=three\n');
    expect(existsSync(join(root, 'etc/hello.conf.rpmnew'))).toBe(false);
  });
});

describe('reproducible', () => {
  test('same spec and SOURCE_DATE_EPOCH: identical bytes (file order and source mtimes do not matter); another SDE differs', async () => {
    const a = await build(exampleSpec(), join(work, 'repro-a'));
    const reversed = exampleSpec();
    reversed.files = [...reversed.files].reverse();
    utimesSync(join(srcDir, 'hello'), new Date(), new Date()); // newer than SDE: clamped
    const b = await build(reversed, join(work, 'repro-b'));
    expect(sh(['cmp', a, b], { rc: 0 })).toBe('');
    const r = await writeRpm(exampleSpec(), join(work, 'repro-b', 'again.rpm'));
    expect(readFileSync(r.path).equals(readFileSync(a))).toBe(true);
    expect(r.size).toBe(statSync(a).size);
    for (const comp of ['gzip', 'zstd'] as const) {
      const x = await build(exampleSpec({ compression: comp }), join(work, `repro-${comp}`));
      expect(readFileSync(x).equals(readFileSync(pkgs[comp]!)), comp).toBe(true);
    }
    const c = await build(exampleSpec({ sourceDateEpoch: SDE + 1 }), join(work, 'repro-c'));
    expect(readFileSync(c).equals(readFileSync(a))).toBe(false);
    expect(qf(c, '%{BUILDTIME}')).toBe(String(SDE + 1));
  });

  test('the writer never reads SOURCE_DATE_EPOCH from the environment: a spec without one is built at 0', async () => {
    const old = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = String(SDE);
    try {
      const p = await build(exampleSpec({ sourceDateEpoch: undefined }), join(work, 'env-sde'));
      expect(readFileSync(p).equals(readFileSync(pkgs.xz!))).toBe(false);
      expect(qf(p, '%{BUILDTIME}')).toBe('0');
    } finally {
      if (old === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = old;
    }
  });
});

describe('bad input: clear errors, no output', () => {
  const cases: Array<[string, Partial<RpmSpec>, RegExp]> = [
    ['release with -', { release: '1-2' }, /release '1-2' may only contain .*no '-'/],
    ['version with -', { version: '1.0-beta' }, /version '1\.0-beta'/],
    ['empty version', { version: '' }, /version is empty/],
    ['bad name', { name: '-x' }, /package name '-x'/],
    ['name with space', { name: 'a b' }, /package name 'a b'/],
    ['bad arch', { arch: 'x86-64' }, /invalid rpm architecture 'x86-64'/],
    ['no summary', { summary: '' }, /summary is required/],
    ['no license', { license: ' ' }, /license is required/],
    ['negative epoch', { epoch: -1 }, /invalid epoch -1/],
    ['bad dependency', { requires: ['foo >= '] }, /requires: invalid rpm dependency 'foo >= '/],
    ['bad dependency operator', { requires: ['foo => 1'] }, /invalid rpm dependency 'foo => 1'/],
    ['dependency version with space', { conflicts: ['foo < 1 2'] }, /invalid rpm dependency/],
    ['unbalanced rich dependency', { requires: ['(a or b'] }, /unbalanced/],
    ['rich provides', { provides: ['(a or b)'] }, /rich dependencies are not allowed in provides/],
    ['unknown compression', { compression: 'bzip2' as never }, /unknown payload compression 'bzip2'/],
    ['.. in a path', { files: [{ path: '/usr/../etc/x', type: 'file', content: 'x' }] }, /'\/usr\/\.\.\/etc\/x' contains '\.\.'/],
    ['relative path', { files: [{ path: 'etc/x', type: 'file', content: 'x' }] }, /not absolute/],
    ['duplicate path', { files: [{ path: '/etc/x', type: 'file', content: 'x' }, { path: '/etc//x', type: 'file', content: 'y' }] }, /duplicate package path \/etc\/x/],
    ['missing source', { files: [{ path: '/etc/x', type: 'file', source: '/nonexistent/kiln-source' }] }, /source file for \/etc\/x not found: \/nonexistent\/kiln-source/],
    ['symlink without target', { files: [{ path: '/usr/bin/x', type: 'symlink' }] }, /symlink \/usr\/bin\/x has no target/],
    ['file without content', { files: [{ path: '/etc/x', type: 'file' }] }, /neither a source nor content/],
    ['file below a file', { files: [{ path: '/etc/x', type: 'file', content: 'x' }, { path: '/etc/x/y', type: 'file', content: 'y' }] }, /\/etc\/x is a file but \/etc\/x\/y is below it/],
  ];
  test.each(cases)('%s', async (_, over, re) => {
    const dir = mkdtempSync(join(work, 'bad-'));
    const err = await writeRpm(exampleSpec(over), join(dir, 'x.rpm')).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err, 'should have failed').toBeInstanceOf(Error);
    expect(err!.message).toMatch(re);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('a source that changes size while it is read: error, no partial or temporary files', async () => {
    // /proc files stat as 0 bytes but read as more
    const dir = mkdtempSync(join(work, 'bad-'));
    const spec = exampleSpec({ files: [{ path: '/etc/a', type: 'file', content: 'a' }, { path: '/etc/status', type: 'file', source: '/proc/self/status' }] });
    for (const compression of ['xz', 'gzip', 'zstd'] as const) {
      await expect(writeRpm({ ...spec, compression }, join(dir, 'x.rpm'))).rejects.toThrow(/\/proc\/self\/status changed size while being archived/);
      expect(readdirSync(dir)).toEqual([]);
    }
  });

  test('missing output directory', async () => {
    await expect(writeRpm(exampleSpec(), join(work, 'no', 'such', 'x.rpm'))).rejects.toThrow(/output directory .*no\/such does not exist/);
  });

  test('parseDep', () => {
    expect(_internal.parseDep('foo >= 1:2.0-3')).toEqual({ name: 'foo', flags: 12, version: '1:2.0-3' });
    expect(_internal.parseDep('foo<1')).toEqual({ name: 'foo', flags: 2, version: '1' });
    expect(_internal.parseDep('/usr/bin/python3')).toEqual({ name: '/usr/bin/python3', flags: 0, version: '' });
    expect(_internal.parseDep('pkgconfig(glib-2.0) >= 2.50')).toEqual({ name: 'pkgconfig(glib-2.0)', flags: 12, version: '2.50' });
  });
});

describe('signed, linted', () => {
  let key = '';
  let home = '';
  let pkg = '';
  beforeAll(async () => {
    key = await generateTestKey(mkdtempSync(join(work, 'key-')));
    // the public key into a private HOME's rpmdb (rpm -K and rpmlint look there)
    home = mkdtempSync(join(work, 'home-'));
    const gh = mkdtempSync(join(work, 'gnupg-'));
    sh(['gpg', '--homedir', gh, '--batch', '--quiet', '--import', key]);
    sh(['gpg', '--homedir', gh, '--batch', '--armor', '--output', join(home, 'pub.asc'), '--export']);
    spawnSync('gpgconf', ['--homedir', gh, '--kill', 'all']);
    sh(['rpm', '--import', join(home, 'pub.asc')], { env: { ...process.env, HOME: home } });
    pkg = await build(realisticSpec(key), join(work, 'signed'));
  }, 120_000);

  /** What a small real package looks like: program, man page, docs, licence, config, changelog. */
  function realisticSpec(signingKey?: string): RpmSpec {
    return {
      name: 'hello-kiln',
      version: '1.2.3',
      release: '1',
      arch: 'noarch',
      summary: 'Greets the world',
      description: 'A small example package built by kiln. It prints a greeting\non standard output.',
      license: 'MIT',
      group: 'Applications/System',
      url: 'https://example.org/hello',
      packager: 'Kiln Tests <tests@example.org>',
      requires: ['coreutils'],
      files: [
        { path: '/usr/bin/hello', type: 'file', content: '#!/bin/sh\necho hello\n', mode: 0o755 },
        { path: '/etc/hello.conf', type: 'file', content: 'greeting=hello\n', noreplace: true },
        { path: '/usr/share/man/man1/hello.1.gz', type: 'file', content: Buffer.from('1f8b08000000000002035308f1d055f048cdc9c95730e40a0e56f0f375f5e5caca48cdc9c95788d155484a2d4a2de6020062bcb76620000000', 'hex') },
        { path: '/usr/share/doc/hello-kiln', type: 'dir' },
        { path: '/usr/share/doc/hello-kiln/README', type: 'file', content: 'Run hello.\n' },
        { path: '/usr/share/licenses/hello-kiln', type: 'dir' },
        { path: '/usr/share/licenses/hello-kiln/LICENSE', type: 'file', content: 'MIT License\n', license: true },
      ],
      scripts: { post: { body: 'echo installed\n' } },
      changelog: [{ time: SDE, author: 'Kiln Tests <tests@example.org> - 1.2.3-1', text: '- Initial package' }],
      sourceDateEpoch: SDE,
      signingKey: signingKey ? { keyFile: signingKey } : undefined,
    };
  }

  test('RESERVEDSPACE, as rpmbuild: rpmsign --addsign signs the unsigned package in place, and kiln\'s own signature takes the same room', async () => {
    const env = { ...process.env, HOME: home };
    const unsigned = await build(realisticSpec(), join(work, 'unsigned'));
    // kiln's signature came out of the reserved space: the signed package has the same size
    expect(statSync(pkg).size).toBe(statSync(unsigned).size);
    const gh = mkdtempSync(join(work, 'gnupg-sign-'));
    sh(['gpg', '--homedir', gh, '--batch', '--quiet', '--import', key]);
    const fpr = sh(['gpg', '--homedir', gh, '--batch', '--with-colons', '--list-secret-keys']).match(/^fpr:+([0-9A-F]+):/m)![1]!;
    const copy = join(work, 'rpmsigned.rpm');
    writeFileSync(copy, readFileSync(unsigned));
    try {
      sh(['rpmsign', '--define', `_gpg_name ${fpr}`, '--define', `_gpg_path ${gh}`, '--define', '__gpg /usr/bin/gpg', '--addsign', copy], { env });
    } finally {
      spawnSync('gpgconf', ['--homedir', gh, '--kill', 'all']);
    }
    expect(statSync(copy).size).toBe(statSync(unsigned).size); // signed in place
    expect(sh(['rpm', '-Kv', copy], { env })).toMatch(/Header V4 RSA\/SHA\d+ Signature, key ID [0-9a-f]{8}: OK/);
    expect(readFileSync(copy).subarray(-1000).equals(readFileSync(unsigned).subarray(-1000))).toBe(true); // payload untouched
  });

  test('rpm -K: signatures OK with the key imported, NOKEY without; reproducible signature', async () => {
    const env = { ...process.env, HOME: home };
    expect(sh(['rpm', '-K', pkg], { env })).toMatch(/: digests signatures OK$/m);
    expect(sh(['rpm', '-Kv', pkg], { env })).toMatch(/Header V4 RSA\/SHA256 Signature, key ID [0-9a-f]{8}: OK/);
    expect(qf(pkg, '%{RSAHEADER:pgpsig}')).toMatch(/^RSA\/SHA256, .* Key ID [0-9a-f]{16}$/);
    const empty = mkdtempSync(join(work, 'nokey-'));
    const r = spawnSync('rpm', ['-Kv', pkg], { encoding: 'utf8', env: { ...process.env, HOME: empty } });
    expect(r.stdout).toMatch(/Signature, key ID [0-9a-f]{8}: NOKEY/);
    // signatures are made at SOURCE_DATE_EPOCH: a rebuild is identical
    const again = await build(realisticSpec(key), join(work, 'signed-again'));
    expect(readFileSync(again).equals(readFileSync(pkg))).toBe(true);
    // a changed header no longer matches its signature
    const bad = Buffer.from(readFileSync(pkg));
    const at = bad.indexOf('Greets the world');
    bad[at] = 'g'.charCodeAt(0);
    writeFileSync(join(work, 'tampered.rpm'), bad);
    expect(spawnSync('rpm', ['-K', join(work, 'tampered.rpm')], { encoding: 'utf8', env }).status).not.toBe(0);
  });

  test('rpmlint: no errors', () => {
    const r = spawnSync('rpmlint', [pkg], { encoding: 'utf8', env: { ...process.env, HOME: home } });
    const out = r.stdout + r.stderr;
    // remaining warnings for this package (rpmlint's openSUSE defaults, not packaging faults):
    //   no-manual-page-for-binary / manpage-not-compressed (it wants .bz2 man pages),
    //   invalid-license MIT (it wants SPDX names from its own list)
    expect(out).toMatch(/ 0 errors/);
    expect(out).not.toMatch(/: E: /);
    // and an unsigned package: the only error is the missing signature
    return build(realisticSpec(), join(work, 'unsigned')).then((u) => {
      const e = spawnSync('rpmlint', [u], { encoding: 'utf8', env: { ...process.env, HOME: home } }).stdout.split('\n').filter((l) => / E: /.test(l));
      expect(e).toEqual(['hello-kiln.noarch: E: no-signature']);
    });
  });
});

/** Tag numbers of the signature and main headers of a package. */
function headerTags(file: string): { sig: number[]; main: number[] } {
  const b = readFileSync(file);
  const read = (off: number) => {
    const il = b.readUInt32BE(off + 8);
    const dl = b.readUInt32BE(off + 12);
    const tags = Array.from({ length: il }, (_, i) => b.readUInt32BE(off + 16 + i * 16));
    return { tags, end: off + 16 + il * 16 + dl };
  };
  const sig = read(96);
  const main = read(sig.end + ((8 - (sig.end % 8)) % 8));
  return { sig: sig.tags, main: main.tags };
}

describe('compared with rpmbuild -bb of the same tree', () => {
  test('same tags (but the documented few), same file list and flags, same dependencies and scriptlets, byte-identical cpio payload', () => {
    const top = mkdtempSync(join(work, 'rpmbuild-'));
    for (const d of ['SPECS', 'BUILD', 'RPMS', 'SOURCES', 'SRPMS']) mkdirSync(join(top, d));
    // the tree writeRpm packages, installed by %install from the same source file
    const spec = `Name: hello-kiln
Version: 1.2.3
Release: 1
Epoch: 2
Summary: Greets the world
License: MIT
Group: Applications/System
URL: https://example.org/hello
Vendor: Kiln
Packager: Kiln Tests <tests@example.org>
BuildArch: noarch
AutoReqProv: no
Requires: bash >= 4.0
Requires: coreutils
Provides: greeter = 1.2
Conflicts: oldhello < 1.0
Obsoletes: hello-legacy <= 0.9
Recommends: less
Suggests: man-db > 2
Supplements: (bash and hello)
Enhances: bash

%description
A small example package built by kiln.
It prints hello.

%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/hello.d %{buildroot}/usr/share/doc/hello-kiln %{buildroot}/usr/share/licenses/hello-kiln %{buildroot}/var/lib/hello %{buildroot}/var/log
install -m 755 ${join(srcDir, 'hello')} %{buildroot}/usr/bin/hello
printf 'greeting=hello\\n' > %{buildroot}/etc/hello.conf
printf 'plain=1\\n' > %{buildroot}/etc/hello-plain.conf
printf 'readme\\n' > %{buildroot}/usr/share/doc/hello-kiln/README
printf 'MIT License\\n' > %{buildroot}/usr/share/licenses/hello-kiln/LICENSE
ln -s hello %{buildroot}/usr/bin/hi
: > %{buildroot}/var/log/hello.log

%pretrans
echo pretrans > /pretrans.marker
%pre
echo "pre $1" > /pre.marker
%post -p "/bin/sh -e"
echo "post $1" > /post.marker
%preun
echo "preun $1" > /preun.marker
%postun
echo "postun $1" > /postun.marker
%posttrans
echo posttrans > /posttrans.marker

%files
%config /etc/hello-plain.conf
%config(noreplace) /etc/hello.conf
%dir /etc/hello.d
/usr/bin/hello
/usr/bin/hi
%doc /usr/share/doc/hello-kiln/README
%license /usr/share/licenses/hello-kiln/LICENSE
%attr(750,nobody,nogroup) %dir /var/lib/hello
%ghost /var/log/hello.log

%changelog
* Tue Nov 14 2023 Kiln Tests <tests@example.org> - 2:1.2.3-1
- Initial package
- Second line

* Sun Oct 15 2023 Kiln Tests <tests@example.org> - 2:1.2.2-1
- Older entry
`;
    writeFileSync(join(top, 'SPECS', 'hello.spec'), spec);
    const defs = {
      _topdir: top, _binary_payload: 'w6.xzdio', use_source_date_epoch_as_buildtime: '1', clamp_mtime_to_source_date_epoch: '1',
      _buildhost: 'build.example.org', __spec_install_post: '%{nil}', debug_package: '%{nil}', _build_id_links: 'none',
    };
    sh(['rpmbuild', '-bb', '--quiet', ...Object.entries(defs).flatMap(([k, v]) => ['--define', `${k} ${v}`]), join(top, 'SPECS', 'hello.spec')], {
      env: { ...process.env, SOURCE_DATE_EPOCH: String(SDE), HOME: top },
    });
    const ref = join(top, 'RPMS', 'noarch', 'hello-kiln-1.2.3-1.noarch.rpm');
    // changelog times: rpmbuild keeps noon UTC of the date; give writeRpm the same times
    const ours = (() => {
      const s = exampleSpec();
      s.changelog = [
        { time: 1699963200, author: s.changelog![1]!.author, text: s.changelog![1]!.text },
        { time: 1699963200 - 30 * 86400, author: s.changelog![0]!.author, text: s.changelog![0]!.text },
      ];
      return s;
    })();
    return build(ours, join(work, 'vs-rpmbuild')).then((p) => {
      // 1. tag sets: the same signature tags (RESERVEDSPACE included: room for rpmsign to sign in
      //    place); rpmbuild's main header has OPTFLAGS in addition (1122: compiler flags,
      //    meaningless here). Nothing is only in ours.
      const a = headerTags(ref);
      const b = headerTags(p);
      expect(a.sig.filter((t) => !b.sig.includes(t))).toEqual([]);
      expect(b.sig.filter((t) => !a.sig.includes(t))).toEqual([]);
      expect(a.main.filter((t) => !b.main.includes(t))).toEqual([1122]);
      expect(b.main.filter((t) => !a.main.includes(t))).toEqual([]);
      // 2. the same values, tag by tag, for everything but what is expected to differ:
      //    PLATFORM (rpmbuild: noarch-debian-linux), FILECLASS/CLASSDICT (libmagic's
      //    descriptions; ours: ELF class or directory), and the digests of the different
      //    compressed streams (rpm's liblzma vs the xz binary, multi-threaded)
      const fmt = [
        'NAME', 'EPOCH', 'VERSION', 'RELEASE', 'ARCH', 'OS', 'SUMMARY', 'DESCRIPTION', 'BUILDTIME', 'BUILDHOST', 'SIZE', 'LICENSE', 'GROUP', 'URL', 'VENDOR', 'PACKAGER',
        'SOURCERPM', 'RPMVERSION', 'PAYLOADFORMAT', 'PAYLOADCOMPRESSOR', 'PAYLOADFLAGS', 'FILEDIGESTALGO', 'PAYLOADDIGESTALGO', 'PAYLOADDIGESTALT', 'ENCODING',
        'PREIN', 'POSTIN', 'PREUN', 'POSTUN', 'PRETRANS', 'POSTTRANS', 'PREINPROG', 'POSTINPROG', 'PREUNPROG', 'POSTUNPROG', 'PRETRANSPROG', 'POSTTRANSPROG',
      ].map((t) => `${t}=[%{${t}} ]\\n`).join('');
      const arrays = ['FILENAMES', 'FILESIZES', 'FILEMODES', 'FILERDEVS', 'FILEMTIMES', 'FILEDIGESTS', 'FILELINKTOS', 'FILEFLAGS', 'FILEUSERNAME', 'FILEGROUPNAME', 'FILEVERIFYFLAGS', 'FILEDEVICES', 'FILEINODES', 'FILELANGS', 'FILECOLORS',
        'REQUIRENAME', 'REQUIREFLAGS', 'REQUIREVERSION', 'PROVIDENAME', 'PROVIDEFLAGS', 'PROVIDEVERSION', 'CONFLICTNAME', 'CONFLICTFLAGS', 'CONFLICTVERSION', 'OBSOLETENAME', 'OBSOLETEFLAGS', 'OBSOLETEVERSION',
        'RECOMMENDNAME', 'RECOMMENDFLAGS', 'RECOMMENDVERSION', 'SUGGESTNAME', 'SUGGESTFLAGS', 'SUGGESTVERSION', 'SUPPLEMENTNAME', 'SUPPLEMENTFLAGS', 'SUPPLEMENTVERSION', 'ENHANCENAME', 'ENHANCEFLAGS', 'ENHANCEVERSION',
        'CHANGELOGTIME', 'CHANGELOGNAME', 'CHANGELOGTEXT', 'DIRNAMES', 'BASENAMES', 'DIRINDEXES'].map((t) => `${t}=[%{${t}} ]\\n`).join('');
      const lines = (f: string) => qf(f, fmt + arrays).split('\n');
      const [x, y] = [lines(ref), lines(p)];
      const diff = x.map((l, i) => (l === y[i] ? '' : `rpmbuild: ${l}\nkiln:     ${y[i]}`)).filter(Boolean);
      // (the %ghost file exists, empty, in rpmbuild's build root: rpmbuild takes its mode from there)
      expect(diff.join('\n')).toBe('');
      // 3. the uncompressed payloads are the same bytes
      const cpio = (f: string) => spawnSync('sh', ['-c', 'rpm2cpio "$1"', 'sh', f], { maxBuffer: 64 << 20 }).stdout as Buffer;
      expect(cpio(p).equals(cpio(ref))).toBe(true);
      expect(sh(['rpm', '-qp', '--scripts', p])).toBe(sh(['rpm', '-qp', '--scripts', ref]));
      expect(sh(['rpm', '-qp', '--changelog', p])).toBe(sh(['rpm', '-qp', '--changelog', ref]));
    });
  });
});
