// The native .deb writer (src/pkg/deb.ts) against the real tools:
// - dpkg-deb --info/--contents/--field/--fsys-tarfile read it; md5sums verify (md5sum -c, dpkg --verify);
// - the same tree built by `dpkg-deb --build --root-owner-group` with SOURCE_DATE_EPOCH gives the same
//   uncompressed data.tar and control.tar bytes, for xz/gzip/zstd/none; for xz and none the whole
//   .deb is byte-identical (gzip differs only in the deflate stream: Node bundles Chromium's zlib and
//   kiln deflates 1 MiB blocks in parallel; zstd: the zstd CLI frames differently from libzstd);
// - Installed-Size equals dpkg-gencontrol's on the same tree;
// - lintian reports no error-level tag for a realistic package (and malformed-deb-archive for zstd);
// - dpkg --root install / upgrade (conffiles: user-modified kept, unmodified replaced) / triggers /
//   remove / purge, maintainer scripts run with the expected arguments;
// - reproducible across directories, times, source mtimes and thread counts;
// - bad inputs: clear error, no file at outPath, no temporary file left.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { compressToFile, type Compression } from '../src/pkg/compress.js';
import { debFileName, writeDeb, type DebSpec } from '../src/pkg/deb.js';
import type { PkgFile } from '../src/pkg/files.js';

const SDE = 1700000000;
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `kiln-deb-${p}-`));
const sh = (cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Buffer } = {}) =>
  execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
const bin = (cmd: string, args: string[]) => execFileSync(cmd, args, { maxBuffer: 1 << 28 });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Host files a build would produce: a script "binary" and a man page. */
function buildOutputs(version: string): string {
  const d = tmp('src');
  writeFileSync(join(d, 'hello'), `#!/bin/sh\necho "Hello, world (${version})"\n`);
  chmodSync(join(d, 'hello'), 0o755);
  const man = `.TH HELLO 1 "2023-11-14" "${version}" "User Commands"\n.SH NAME\nhello \\- print a greeting\n.SH SYNOPSIS\n.B hello\n.SH DESCRIPTION\n.B hello\nprints a friendly greeting.\n`;
  writeFileSync(join(d, 'hello.1.gz'), gzipSync(man, { level: 9 }));
  return d;
}

const log = (s: string) => `echo "${s} $*" >> "\${DPKG_ROOT:-}/var/log/kiln-hello.log"`;
const script = (name: string) => `#!/bin/sh\nset -e\n${log(name)}\n`;

/** A realistic package: binary, man page, copyright, changelog, conffiles, symlink, setuid, long path. */
function helloSpec(version: string, extra: Partial<DebSpec> = {}, conf: { a?: string; b?: string; c?: string } = {}): DebSpec {
  const src = buildOutputs(version);
  const changelog = `kiln-hello (${version}) unstable; urgency=medium\n\n  * Release ${version}.\n\n -- Kiln Tests <tests@example.org>  Tue, 14 Nov 2023 22:13:20 +0000\n`;
  const longDir = '/usr/share/kiln-hello/' + 'long-directory-name-'.repeat(4) + 'x';
  const files: PkgFile[] = [
    { path: '/usr/bin/kiln-hello', type: 'file', source: join(src, 'hello'), mode: 0o755 },
    { path: '/usr/bin/kiln-hi', type: 'symlink', target: 'kiln-hello' },
    { path: '/usr/share/man/man1/kiln-hello.1.gz', type: 'file', source: join(src, 'hello.1.gz') },
    { path: '/usr/share/man/man1/kiln-hi.1.gz', type: 'symlink', target: 'kiln-hello.1.gz' },
    {
      path: '/usr/share/doc/kiln-hello/copyright',
      type: 'file',
      content: 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: kiln-hello\n\nFiles: *\nCopyright: 2023 Kiln Tests\nLicense: MIT\n Permission is hereby granted, free of charge, to any person obtaining a copy\n of this software, to deal in the Software without restriction.\n',
    },
    { path: '/usr/share/doc/kiln-hello/changelog.Debian.gz', type: 'file', content: gzipSync(changelog, { level: 9 }) },
    { path: '/etc/kiln-hello/a.conf', type: 'file', content: conf.a ?? 'a = 1\n' },
    { path: '/etc/kiln-hello/b.conf', type: 'file', content: conf.b ?? 'b = 1\n' },
    { path: '/etc/kiln-hello/c.conf', type: 'file', content: conf.c ?? 'c = 1\n' },
    { path: '/var/lib/kiln-hello', type: 'dir', mode: 0o750 },
    { path: `${longDir}/${'file-with-a-long-name-'.repeat(4)}.txt`, type: 'file', content: 'long\n' },
    { path: '/usr/share/kiln-hello/empty', type: 'file', content: '' },
  ];
  return {
    name: 'kiln-hello',
    version,
    architecture: 'all',
    maintainer: 'Kiln Tests <tests@example.org>',
    description: 'greeting program for kiln tests\nkiln-hello prints a friendly greeting. It exists to test the native\nwriter of .deb packages against dpkg, dpkg-deb and lintian.\n\nA second paragraph.',
    section: 'utils',
    priority: 'optional',
    homepage: 'https://example.org/kiln-hello',
    depends: ['dash (>= 0.5) | busybox'],
    files,
    scripts: { preinst: script('preinst'), postinst: script('postinst'), prerm: script('prerm'), postrm: script('postrm') },
    sourceDateEpoch: SDE,
    ...extra,
  };
}

async function build(spec: DebSpec, dir = tmp('out')): Promise<string> {
  const r = await writeDeb(spec, join(dir, debFileName(spec)));
  expect(statSync(r.path).size).toBe(r.size);
  return r.path;
}

describe('dpkg-deb reads the package', () => {
  test('--info, --field, --contents, md5sums and conffiles', async () => {
    const spec = helloSpec('1.0-1', { files: [...helloSpec('1.0-1').files, { path: '/usr/bin/kiln-suid', type: 'file', content: '#!/bin/sh\n', mode: 0o4755 }] });
    const deb = await build(spec);
    expect(deb.endsWith('/kiln-hello_1.0-1_all.deb')).toBe(true);
    expect(sh('ar', ['t', deb])).toBe('debian-binary\ncontrol.tar.xz\ndata.tar.xz\n');
    const info = sh('dpkg-deb', ['--info', deb]);
    expect(info).toMatch(/new Debian package, version 2\.0\./);
    for (const m of ['control', 'md5sums', 'conffiles', 'preinst', 'postinst', 'prerm', 'postrm']) expect(info).toMatch(new RegExp(`^\\s+\\d+ bytes,\\s+\\d+ lines\\s+\\*?\\s*${m}\\b`, 'm'));
    const field = (f: string) => sh('dpkg-deb', ['--field', deb, f]).trim();
    expect(field('Package')).toBe('kiln-hello');
    expect(field('Version')).toBe('1.0-1');
    expect(field('Depends')).toBe('dash (>= 0.5) | busybox');
    expect(field('Description')).toBe('greeting program for kiln tests\n kiln-hello prints a friendly greeting. It exists to test the native\n writer of .deb packages against dpkg, dpkg-deb and lintian.\n .\n A second paragraph.');
    const contents = sh('dpkg-deb', ['--contents', deb]).split('\n').filter(Boolean);
    const names = contents.map((l) => l.split(/\s+/).slice(5).join(' '));
    expect(names[0]).toBe('./');
    // symlinks last, as dpkg-deb orders them
    expect(names.slice(-2)).toEqual(['./usr/bin/kiln-hi -> kiln-hello', './usr/share/man/man1/kiln-hi.1.gz -> kiln-hello.1.gz']);
    expect(contents.every((l) => l.includes(' root/root '))).toBe(true);
    expect(contents.find((l) => l.endsWith('./usr/bin/kiln-suid'))).toMatch(/^-rwsr-xr-x root\/root\s+10 2023-11-14 22:13 /);
    expect(contents.find((l) => l.endsWith('./var/lib/kiln-hello/'))).toMatch(/^drwxr-x--- /);
    expect(contents.find((l) => l.endsWith('./usr/share/kiln-hello/empty'))).toMatch(/^-rw-r--r-- root\/root\s+0 /);
    expect(names.some((n) => n.length > 110 && n.endsWith('.txt'))).toBe(true);
    // md5sums: every regular file except conffiles, checked by md5sum on the extracted tree
    const x = tmp('x');
    sh('dpkg-deb', ['--raw-extract', deb, x]);
    const md5 = readFileSync(join(x, 'DEBIAN/md5sums'), 'utf8');
    expect(md5).not.toMatch(/etc\//);
    expect(md5.trim().split('\n')).toHaveLength(7);
    expect(sh('md5sum', ['--check', '--strict', join(x, 'DEBIAN/md5sums')], { cwd: x })).not.toMatch(/FAILED/);
    expect(readFileSync(join(x, 'DEBIAN/conffiles'), 'utf8')).toBe('/etc/kiln-hello/a.conf\n/etc/kiln-hello/b.conf\n/etc/kiln-hello/c.conf\n');
    expect(statSync(join(x, 'DEBIAN/postinst')).mode & 0o777).toBe(0o755);
    expect(statSync(join(x, 'usr/bin/kiln-suid')).mode & 0o7777).toBe(0o4755);
  });

  test('owners: root:root by default, names and ids when given', async () => {
    const spec = helloSpec('1.0-1', {
      files: [
        { path: '/var/lib/kiln-hello/by-name', type: 'file', content: 'x', user: 'nobody', group: 'nogroup', uid: 65534, gid: 65534 },
        { path: '/var/lib/kiln-hello/by-id', type: 'file', content: 'x', uid: 1234, gid: 2345 },
        { path: '/var/lib/kiln-hello/default', type: 'file', content: 'x' },
      ],
    });
    const deb = await build(spec);
    const tar = bin('dpkg-deb', ['--fsys-tarfile', deb]);
    const names = sh('tar', ['-tvf', '-'], { input: tar });
    const ids = sh('tar', ['-tvf', '-', '--numeric-owner'], { input: tar });
    expect(names).toMatch(/ nobody\/nogroup .*\/by-name$/m);
    expect(ids).toMatch(/ 65534\/65534 .*\/by-name$/m);
    expect(names).toMatch(/ 1234\/2345 .*\/by-id$/m); // no name in the header
    expect(names).toMatch(/ root\/root .*\/default$/m);
    expect(ids).toMatch(/ 0\/0 .*\/var\/lib\/$/m);
  });

  test('Installed-Size equals dpkg-gencontrol on the same tree', async () => {
    const spec = helloSpec('1.0-1', { files: [...helloSpec('1.0-1').files, { path: '/usr/share/kiln-hello/big', type: 'file', content: Buffer.alloc(5000, 1) }, { path: '/usr/share/kiln-hello/k', type: 'file', content: Buffer.alloc(1024, 1) }, { path: '/usr/share/kiln-hello/k1', type: 'file', content: Buffer.alloc(1025, 1) }] });
    const r = await writeDeb(spec, join(tmp('out'), 'x.deb'));
    const d = tmp('gencontrol');
    mkdirSync(join(d, 'debian'));
    writeFileSync(join(d, 'debian/control'), 'Source: kiln-hello\nMaintainer: Kiln Tests <tests@example.org>\n\nPackage: kiln-hello\nArchitecture: all\nDescription: x\n y\n');
    writeFileSync(join(d, 'debian/changelog'), 'kiln-hello (1.0-1) unstable; urgency=medium\n\n  * x\n\n -- Kiln Tests <tests@example.org>  Tue, 14 Nov 2023 22:13:20 +0000\n');
    sh('dpkg-deb', ['--extract', r.path, join(d, 'debian/kiln-hello')]);
    const ctl = sh('dpkg-gencontrol', ['-pkiln-hello', '-Pdebian/kiln-hello', '-O'], { cwd: d });
    expect(Number(/^Installed-Size: (\d+)$/m.exec(ctl)![1])).toBe(r.installedSize);
    expect(sh('dpkg-deb', ['--field', r.path, 'Installed-Size']).trim()).toBe(String(r.installedSize));
  });
});

describe('same bytes as dpkg-deb --build --root-owner-group', () => {
  const ext: Record<Compression, string> = { xz: '.xz', gzip: '.gz', zstd: '.zst', none: '' };
  for (const comp of ['xz', 'gzip', 'zstd', 'none'] as const) {
    test(`${comp}: data.tar and control.tar identical${comp === 'xz' || comp === 'none' ? ', whole .deb identical' : ''}`, async () => {
      const spec = helloSpec('1.0-1', { compression: comp, files: [...helloSpec('1.0-1').files, { path: '/usr/bin/kiln-suid', type: 'file', content: '#!/bin/sh\n', mode: 0o4755 }, { path: '/usr/share/kiln-hello/a-b/x', type: 'file', content: 'x' }, { path: '/usr/share/kiln-hello/a/y', type: 'file', content: 'y' }, { path: '/usr/share/kiln-hello/link-to-long', type: 'symlink', target: '/usr/share/kiln-hello/' + 'z'.repeat(120) }] });
      const ours = await build(spec);
      // the same tree (DEBIAN included) extracted, then built by dpkg-deb
      const tree = join(tmp('ref'), 'tree');
      sh('dpkg-deb', ['--raw-extract', ours, tree]);
      const ref = join(tmp('ref'), 'ref.deb');
      sh('dpkg-deb', ['--root-owner-group', `-Z${comp}`, '--build', tree, ref], { env: { ...process.env, SOURCE_DATE_EPOCH: String(SDE) } });
      // member names (and, for xz/none, sizes: see below)
      expect(sh('ar', ['t', ours])).toBe(sh('ar', ['t', ref]));
      expect(bin('dpkg-deb', ['--fsys-tarfile', ours]).equals(bin('dpkg-deb', ['--fsys-tarfile', ref]))).toBe(true);
      expect(bin('dpkg-deb', ['--ctrl-tarfile', ours]).equals(bin('dpkg-deb', ['--ctrl-tarfile', ref]))).toBe(true);
      const same = bin('ar', ['p', ours, `data.tar${ext[comp]}`]).equals(bin('ar', ['p', ref, `data.tar${ext[comp]}`]));
      if (comp === 'xz' || comp === 'none') {
        // xz: the xz CLI in multi-threaded mode frames blocks exactly like dpkg-deb's liblzma encoder
        expect(same).toBe(true);
        expect(readFileSync(ours).equals(readFileSync(ref))).toBe(true);
      }
    });
  }
});

describe('names beyond ASCII: bytewise (UTF-8) order, as dpkg-deb sorts them', () => {
  // kiln compares the names as strings when no name holds a code unit from U+D800 on (UTF-16 order
  // is UTF-8 order below it) and as UTF-8 bytes otherwise: '\u{1F600}' is D83D DE00 in UTF-16,
  // below U+FB00, but F0 9F 98 80 in UTF-8, above EF AC 80
  const names: Record<string, string[]> = {
    'below U+D800 (strings compared)': ['z', '\u00e9', '\u00ff', '\u0100', '\u4e2d', 'a\u00e9', 'a', 'A'],
    'from U+D800 on (bytes compared)': ['z', '\u00e9', '\ufb00', '\ue000', '\u{1F600}', '\u{1F600}x', '\u4e2d', 'a'],
  };
  for (const [what, list] of Object.entries(names)) {
    test(`${what}: data.tar identical to dpkg-deb's`, async () => {
      const files: PkgFile[] = list.flatMap((n, i) => [
        { path: `/usr/share/kiln-utf/${n}`, type: 'file' as const, content: `${i}\n` },
        { path: `/usr/share/kiln-utf/d${n}/f`, type: 'file' as const, content: `${i}\n` },
      ]);
      const ours = await build(helloSpec('1.0-1', { compression: 'none', files }));
      const tree = join(tmp('ref'), 'tree');
      sh('dpkg-deb', ['--raw-extract', ours, tree]);
      const ref = join(tmp('ref'), 'ref.deb');
      sh('dpkg-deb', ['--root-owner-group', '-Znone', '--build', tree, ref], { env: { ...process.env, SOURCE_DATE_EPOCH: String(SDE) } });
      expect(bin('dpkg-deb', ['--fsys-tarfile', ours]).equals(bin('dpkg-deb', ['--fsys-tarfile', ref]))).toBe(true);
      expect(readFileSync(ours).equals(readFileSync(ref))).toBe(true);
    });
  }
});

describe('literal contents of 256 KiB or more between host files (written past the output blocks)', () => {
  // such a write ended a partly filled output block; parallel gzip kept that block pending while
  // the block was reused for the next file's bytes, so the package held the wrong content
  for (const comp of ['gzip', 'zstd', 'xz', 'none'] as const) {
    test(`${comp}: every file extracts with its own content, md5sum -c accepts them`, async () => {
      const d = tmp('lit');
      const host = Buffer.alloc(3 << 20);
      for (let i = 0; i < host.length; i++) host[i] = (i * 7 + (i >> 9)) & 0xff;
      writeFileSync(join(d, 'host'), host);
      const files: PkgFile[] = [
        { path: '/usr/share/kiln-lit/0small', type: 'file', content: 'hello\n' },
        { path: '/usr/share/kiln-lit/1lit', type: 'file', content: Buffer.alloc(300 << 10, 0x41) },
        { path: '/usr/share/kiln-lit/2host', type: 'file', source: join(d, 'host') },
        { path: '/usr/share/kiln-lit/3lit', type: 'file', content: Buffer.alloc(400 << 10, 0x42) },
        { path: '/usr/share/kiln-lit/4host', type: 'file', source: join(d, 'host') },
      ];
      const deb = await build({ ...helloSpec('1.0-1', { compression: comp }), files });
      const x = join(tmp('lit-x'), 'x');
      sh('dpkg-deb', ['--raw-extract', deb, x]);
      expect(readFileSync(join(x, 'usr/share/kiln-lit/2host')).equals(host)).toBe(true);
      expect(readFileSync(join(x, 'usr/share/kiln-lit/4host')).equals(host)).toBe(true);
      expect(readFileSync(join(x, 'usr/share/kiln-lit/1lit')).equals(Buffer.alloc(300 << 10, 0x41))).toBe(true);
      expect(readFileSync(join(x, 'usr/share/kiln-lit/3lit')).equals(Buffer.alloc(400 << 10, 0x42))).toBe(true);
      expect(sh('md5sum', ['-c', join(x, 'DEBIAN/md5sums')], { cwd: x })).toMatch(/4host: OK/);
    });
  }
});

describe('md5sums: over 16 MiB they are computed on worker threads; control.tar and data.tar compressed alike or not', () => {
  const bigTree = () => {
    const d = tmp('big');
    const files: PkgFile[] = [];
    for (let i = 0; i < 20; i++) {
      writeFileSync(join(d, `blob${i}`), randomBytes(1 << 20));
      files.push({ path: `/usr/share/kiln-big/blob${i}`, type: 'file', source: join(d, `blob${i}`) });
    }
    files.push({ path: '/usr/share/kiln-big/small', type: 'file', content: 'small\n' }, { path: '/etc/kiln-big.conf', type: 'file', content: 'conf\n' });
    return files;
  };
  const base = (files: PkgFile[], extra: Partial<DebSpec>): DebSpec => ({ name: 'kiln-big', version: '1.0', architecture: 'all', maintainer: 'Kiln Tests <tests@example.org>', description: 'big\nbig payload', files, sourceDateEpoch: SDE, ...extra });

  test('md5sum -c accepts the md5sums of the extracted package (conffiles left out), for gzip/gzip, gzip data + plain control, plain data + gzip control', async () => {
    const files = bigTree();
    for (const [compression, controlCompression] of [['gzip', 'gzip'], ['gzip', 'none'], ['none', 'gzip']] as const) {
      const what = `${compression}/${controlCompression}`;
      const p = await build(base(files, { compression, controlCompression }));
      expect(sh('ar', ['t', p]), what).toBe(`debian-binary\ncontrol.tar${controlCompression === 'gzip' ? '.gz' : ''}\ndata.tar${compression === 'gzip' ? '.gz' : ''}\n`);
      const root = tmp('x');
      sh('dpkg-deb', ['-x', p, root]);
      const ctrl = tmp('c');
      sh('dpkg-deb', ['-e', p, ctrl]);
      const sums = readFileSync(join(ctrl, 'md5sums'), 'utf8');
      expect(sums.split('\n').filter(Boolean).length, what).toBe(21); // 20 blobs + small; not the conffile
      expect(sh('md5sum', ['-c', join(ctrl, 'md5sums')], { cwd: root }), what).toMatch(/^(\S+: OK\n){21}$/);
    }
  });

  test('a file that changes size while the worker threads sum it: a clear error, nothing left', async () => {
    const dir = tmp('bad');
    const files = [...bigTree(), { path: '/usr/share/kiln-big/proc', type: 'file' as const, source: '/proc/self/status' }];
    await expect(writeDeb(base(files, { compression: 'gzip' }), join(dir, 'kiln-big_1.0_all.deb'))).rejects.toThrow(/^kiln-big: \/proc\/self\/status \(\/usr\/share\/kiln-big\/proc\) changed size while being archived/);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('lintian', () => {
  test('a realistic package has no error-level tag', async () => {
    const deb = await build(helloSpec('1.0-1'));
    const r = spawnSync('lintian', ['--tag-display-limit', '0', deb], { encoding: 'utf8' });
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('E:'));
    expect(errors, r.stdout + r.stderr).toEqual([]);
  }, 180_000);

  test('zstd members: lintian 2.116 reports malformed-deb-archive (why xz is the default)', async () => {
    const deb = await build(helloSpec('1.0-1', { compression: 'zstd' }));
    const r = spawnSync('lintian', ['--tag-display-limit', '0', deb], { encoding: 'utf8' });
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('E:'));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((l) => /malformed-deb-archive/.test(l)), r.stdout).toBe(true);
    // dpkg itself reads it
    expect(sh('dpkg-deb', ['--field', deb, 'Package']).trim()).toBe('kiln-hello');
  }, 180_000);
});

describe('dpkg --root: install, upgrade, triggers, remove, purge', () => {
  test('scripts run with the right arguments; conffiles follow dpkg rules', async () => {
    const root = tmp('root');
    for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/log']) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, 'var/lib/dpkg/status'), '');
    writeFileSync(join(root, 'var/lib/dpkg/available'), '');
    const dpkg = (...args: string[]) => {
      const r = spawnSync('dpkg', [`--root=${root}`, `--log=${join(root, 'var/log/dpkg.log')}`, '--force-script-chrootless', '--force-not-root', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      return r.stdout;
    };
    const logFile = join(root, 'var/log/kiln-hello.log');
    const logged = () => readFileSync(logFile, 'utf8');

    // v1, with a trigger interest
    // (no Depends: the root has no other package, and dpkg defers triggers of packages with unmet dependencies)
    const v1 = await build(helloSpec('1.0-1', { depends: undefined, triggers: 'interest-noawait kiln-hello-reload\n' }));
    dpkg('-i', v1);
    expect(logged()).toBe('preinst install\npostinst configure \n');
    expect(sh(join(root, 'usr/bin/kiln-hello'), [])).toBe('Hello, world (1.0-1)\n');
    expect(readFileSync(join(root, 'usr/bin/kiln-hi'), 'utf8')).toContain('#!/bin/sh');
    expect(statSync(join(root, 'var/lib/kiln-hello')).mode & 0o777).toBe(0o750);
    expect(sh('dpkg-query', [`--root=${root}`, '-W', '-f', '${Status} ${Version} ${Installed-Size}', 'kiln-hello'])).toMatch(/^install ok installed 1\.0-1 \d+$/);
    // md5sums and conffile hashes agree with the installed files
    expect(dpkg('--verify', 'kiln-hello')).toBe('');

    // a second package activates the trigger: kiln-hello's postinst runs with 'triggered'
    const plugin: DebSpec = { name: 'kiln-hello-plugin', version: '1.0', architecture: 'all', maintainer: 'Kiln Tests <tests@example.org>', description: 'plugin\nA plugin.', files: [{ path: '/usr/share/kiln-hello/plugins/p1', type: 'file', content: 'p1\n' }], triggers: 'activate-noawait kiln-hello-reload', sourceDateEpoch: SDE };
    const out = dpkg('-i', await build(plugin));
    expect(logged(), out).toMatch(/postinst triggered kiln-hello-reload\n$/);

    // the user edits a.conf (unchanged in v2) and b.conf (changed in v2); c.conf changes in v2 only
    writeFileSync(join(root, 'etc/kiln-hello/a.conf'), 'a = mine\n');
    writeFileSync(join(root, 'etc/kiln-hello/b.conf'), 'b = mine\n');
    const v2 = await build(helloSpec('2.0-1', { depends: undefined }, { b: 'b = 2\n', c: 'c = 2\n' }));
    writeFileSync(logFile, '');
    dpkg('--force-confold', '-i', v2);
    expect(sh(join(root, 'usr/bin/kiln-hello'), [])).toBe('Hello, world (2.0-1)\n');
    expect(readFileSync(join(root, 'etc/kiln-hello/a.conf'), 'utf8')).toBe('a = mine\n'); // kept, no question
    expect(readFileSync(join(root, 'etc/kiln-hello/b.conf'), 'utf8')).toBe('b = mine\n'); // kept (confold)...
    expect(readFileSync(join(root, 'etc/kiln-hello/b.conf.dpkg-dist'), 'utf8')).toBe('b = 2\n'); // ...new one beside it
    expect(readFileSync(join(root, 'etc/kiln-hello/c.conf'), 'utf8')).toBe('c = 2\n'); // unmodified: upgraded
    expect(logged()).toBe('prerm upgrade 2.0-1\npreinst upgrade 1.0-1 2.0-1\npostrm upgrade 2.0-1\npostinst configure 1.0-1\n');

    writeFileSync(logFile, '');
    dpkg('-r', 'kiln-hello');
    expect(existsSync(join(root, 'usr/bin/kiln-hello'))).toBe(false);
    expect(existsSync(join(root, 'usr/bin/kiln-hi'))).toBe(false);
    expect(existsSync(join(root, 'etc/kiln-hello/a.conf'))).toBe(true);
    expect(sh('dpkg-query', [`--root=${root}`, '-W', '-f', '${Status}', 'kiln-hello'])).toBe('deinstall ok config-files');
    dpkg('-P', 'kiln-hello');
    expect(existsSync(join(root, 'etc/kiln-hello/a.conf'))).toBe(false);
    expect(existsSync(join(root, 'etc/kiln-hello/c.conf'))).toBe(false);
    expect(logged()).toBe('prerm remove\npostrm remove\npostrm purge\n');
  }, 180_000);
});

describe('reproducible', () => {
  test('same spec in different directories, at different times, with different source mtimes: same bytes', async () => {
    const a = await build(helloSpec('1.0-1'));
    await new Promise((r) => setTimeout(r, 1100));
    const spec = helloSpec('1.0-1'); // fresh source files in another directory
    for (const f of spec.files) if (f.source) utimesSync(f.source, new Date(), new Date(2030, 0, 1)); // newer than SDE: clamped
    const b = await build(spec);
    expect(a).not.toBe(b);
    expect(spawnSync('cmp', [a, b]).status).toBe(0);
    // the writer never reads the environment: a spec without sourceDateEpoch is built at 0,
    // whatever SOURCE_DATE_EPOCH says (the engine reads it once and passes it down)
    const { sourceDateEpoch: _, ...noSde } = helloSpec('1.0-1');
    process.env.SOURCE_DATE_EPOCH = String(SDE);
    try {
      const c = await build(noSde as DebSpec);
      expect(spawnSync('cmp', [a, c]).status).not.toBe(0);
      const zero = await build({ ...helloSpec('1.0-1'), sourceDateEpoch: 0 });
      expect(spawnSync('cmp', [zero, c]).status).toBe(0);
    } finally {
      delete process.env.SOURCE_DATE_EPOCH;
    }
  });

  test('compressed bytes do not depend on the number of threads (xz, gzip, zstd)', async () => {
    const data = Buffer.concat(Array.from({ length: 3000 }, (_, i) => Buffer.from(`line ${i} ${'abcdefghij'.repeat(i % 50)} ${sha(Buffer.from(String(i)))}\n`)));
    const big = Buffer.concat([data, data, data, data]); // > 2 gzip blocks
    for (const kind of ['xz', 'gzip', 'zstd'] as const) {
      const outs: Buffer[] = [];
      let first = '';
      for (const threads of [1, 2, 4]) {
        const f = join(tmp('c'), `x.${kind}`);
        first ||= f;
        const c = compressToFile(kind, f, { threads });
        c.input.end(big);
        await c.done;
        outs.push(readFileSync(f));
      }
      expect(outs[1]!.equals(outs[0]!), kind).toBe(true);
      expect(outs[2]!.equals(outs[0]!), kind).toBe(true);
      expect(bin(kind, ['-dc', first]).equals(big), kind).toBe(true);
    }
  });
});

describe('zstd output', () => {
  // 20 MiB of mixed text and pseudo-random bytes: several zstd jobs in multi-threaded mode (-T)
  const mixed = (): Buffer => {
    let s = 7;
    const b = Buffer.alloc(20 << 20);
    for (let i = 0; i < b.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      b[i] = (i >> 16) % 3 === 0 ? s >>> 24 : 97 + ((i * 7) % 26);
    }
    return b;
  };

  test('the same bytes whatever the threads and the write sizes; zstd -t and zstd -d read them', async () => {
    const big = mixed();
    const outs: Buffer[] = [];
    for (const [threads, chunk] of [[1, 65536], [2, 1_000_003], [4, 777_777]] as const) {
      const f = join(tmp('z'), 'x.zst');
      const c = compressToFile('zstd', f, { threads, level: 3 });
      for (let i = 0; i < big.length; i += chunk) if (!c.input.write(big.subarray(i, i + chunk))) await new Promise((r) => c.input.once('drain', r));
      c.input.end();
      await c.done;
      outs.push(readFileSync(f));
      expect(spawnSync('zstd', ['-tq', f]).status).toBe(0);
      expect(bin('zstd', ['-dc', f]).equals(big)).toBe(true);
    }
    expect(outs[1]!.equals(outs[0]!)).toBe(true);
    expect(outs[2]!.equals(outs[0]!)).toBe(true);
  });
});

describe('bad inputs: a clear error, nothing at outPath, no temporary file', () => {
  const base = (): DebSpec => ({ name: 'kiln-bad', version: '1.0', architecture: 'all', maintainer: 'Kiln Tests <tests@example.org>', description: 'bad\nbad', files: [{ path: '/usr/share/kiln-bad/x', type: 'file', content: 'x' }], sourceDateEpoch: SDE });
  const cases: Array<[string, (s: DebSpec) => void, RegExp]> = [
    ['invalid name', (s) => (s.name = 'Kiln_Bad'), /kiln_bad|Kiln_Bad.*may only contain/i],
    ['invalid version', (s) => (s.version = '1.0 beta'), /version '1\.0 beta' contains white space/],
    ['version not starting with a digit', (s) => (s.version = 'a1.0'), /version/],
    ['path with ..', (s) => s.files.push({ path: '/usr/../etc/passwd', type: 'file', content: 'x' }), /contains '\.\.'/],
    ['relative path', (s) => s.files.push({ path: 'usr/bin/x', type: 'file', content: 'x' }), /'usr\/bin\/x' is not absolute/],
    ['duplicate path', (s) => s.files.push({ path: '/usr/share//kiln-bad/x', type: 'file', content: 'y' }), /duplicate package path \/usr\/share\/kiln-bad\/x/],
    ['missing source file', (s) => s.files.push({ path: '/usr/bin/y', type: 'file', source: '/nonexistent/kiln/y' }), /source file for \/usr\/bin\/y not found: \/nonexistent\/kiln\/y/],
    ['symlink without target', (s) => s.files.push({ path: '/usr/bin/l', type: 'symlink' }), /symlink \/usr\/bin\/l has no target/],
    ['file below a file', (s) => s.files.push({ path: '/usr/share/kiln-bad/x/y', type: 'file', content: 'y' }), /\/usr\/share\/kiln-bad\/x is a file but/],
    ['script without interpreter line', (s) => (s.scripts = { postinst: 'echo hi\n' }), /maintainer script postinst must start with an interpreter line/],
    ['unknown script', (s) => (s.scripts = { postinstall: '#!/bin/sh\n' } as never), /unknown maintainer script 'postinstall'/],
    ['invalid relation', (s) => (s.depends = ['libc6 (>> )']), /Depends: invalid relation/],
    ['two relations in one entry', (s) => (s.depends = ['a, b']), /Depends: invalid entry/],
    ['conffile that is a directory', (s) => s.files.push({ path: '/etc/kiln-bad', type: 'dir', conffile: true }), /only regular files can be conffiles/],
    ['bad triggers', (s) => (s.triggers = 'interested foo\n'), /triggers line 1/],
    ['description line starting with a dot', (s) => (s.description = 'synopsis\n.deb files'), /description line 2 starts with '\.'/],
    ['multi-line maintainer', (s) => (s.maintainer = 'A <a@b.c>\nB'), /maintainer must be a single line/],
    ['duplicate control field', (s) => (s.extraFields = { Version: '2' }), /control field Version is given twice/],
    ['unknown compression', (s) => (s.compression = 'bzip2' as never), /unknown compression 'bzip2'/],
    ['file that changes size while archived', (s) => s.files.push({ path: '/usr/share/kiln-bad/proc', type: 'file', source: '/proc/self/status' }), /\/proc\/self\/status \(\/usr\/share\/kiln-bad\/proc\) changed size while being archived/],
  ];
  for (const [what, mutate, msg] of cases) {
    test(what, async () => {
      const dir = tmp('bad');
      const spec = base();
      mutate(spec);
      const out = join(dir, 'kiln-bad_1.0_all.deb');
      const err = await writeDeb(spec, out).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err, 'writeDeb should fail').toBeInstanceOf(Error);
      expect(err!.name).toBe('KilnError');
      expect(err!.message).toMatch(/^kiln-bad: |^Kiln_Bad: /);
      expect(err!.message).toMatch(msg);
      expect(readdirSync(dir)).toEqual([]);
    });
  }

  test('an existing package at outPath is left untouched by a failed build', async () => {
    const dir = tmp('bad');
    const out = join(dir, 'kiln-bad_1.0_all.deb');
    await writeDeb(base(), out);
    const before = readFileSync(out);
    const spec = base();
    spec.files.push({ path: '/usr/share/kiln-bad/proc', type: 'file', source: '/proc/self/status' });
    await expect(writeDeb(spec, out)).rejects.toThrow(/changed size/);
    expect(readFileSync(out).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['kiln-bad_1.0_all.deb']);
  });
});
