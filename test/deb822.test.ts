// deb822 control-file library: lossless parse/write of control, Packages, Sources, Release,
// InRelease, .dsc, .changes and dpkg status; errors with FILE:LINE; relations and checksums;
// checked against Debian's real indexes and against dpkg-deb, dpkg-query, dpkg-source, apt-ftparchive.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  Deb822Error,
  Deb822File,
  Paragraph,
  formatChecksums,
  formatParagraph,
  formatParagraphs,
  formatRelations,
  parse,
  parseChecksums,
  parseParagraph,
  parseRelations,
} from '../src/pkg/deb822.js';

const fixture = (name: string) => join(import.meta.dirname, 'fixtures', 'deb822', name);
const read = (f: string) => readFileSync(f, 'utf8');
const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const run = (cmd: string, args: string[], opts: { cwd?: string } = {}) =>
  execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, ...opts });

const LISTS = '/var/lib/apt/lists';
const PACKAGES = `${LISTS}/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4`;

function errorOf(fn: () => unknown): Deb822Error {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(Deb822Error);
    return e as Deb822Error;
  }
  throw new Error('expected a Deb822Error');
}

describe('parse and write', () => {
  test('fields, case-insensitive lookup, order, continuation lines, values', () => {
    const text = 'Package: hello\nversion:  2.10-3  \nDescription: greeting\n line one\n .\n   indented\nMD5Sum:\n abc 1 f\n';
    const doc = parse(text);
    expect(doc.paragraphs).toHaveLength(1);
    const p = doc.paragraphs[0]!;
    expect(p.names()).toEqual(['Package', 'version', 'Description', 'MD5Sum']);
    expect(p.get('PACKAGE')).toBe('hello');
    expect(p.get('Version')).toBe('2.10-3');
    expect(p.get('description')).toBe('greeting\n line one\n .\n   indented');
    expect(p.get('md5sum')).toBe('\n abc 1 f');
    expect(p.field('VERSION')?.line).toBe(2);
    expect(p.has('Nope')).toBe(false);
    expect(String(doc)).toBe(text);
  });

  test('values round trip through the existing formatParagraph', () => {
    const text = 'Package: hello\nDescription: greeting\n line one\n .\n   indented\n';
    const p = parseParagraph(text);
    expect(formatParagraph(p.entries())).toBe(text);
    // and formatParagraph output parses back to the same values
    const fields: Array<[string, string]> = [
      ['Package', 'x'],
      ['Description', 'short\nlong\n\n more'],
    ];
    expect(parseParagraph(formatParagraph(fields)).get('Description')).toBe('short\n long\n .\n more');
  });

  test('get/set/delete keep order and untouched bytes', () => {
    const text = 'Package: a\nVersion:   1   \nDepends: b,\n c\nDescription: d\n';
    const doc = parse(text);
    const p = doc.paragraphs[0]!;
    p.set('version', '2');
    expect(p.get('Version')).toBe('2');
    p.set('Homepage', 'https://example.invalid/');
    expect(p.delete('DESCRIPTION')).toBe(true);
    expect(p.delete('Description')).toBe(false);
    p.set('Description', 'new\nbody\n\nend');
    expect(String(doc)).toBe(
      'Package: a\nVersion: 2\nDepends: b,\n c\nHomepage: https://example.invalid/\nDescription: new\n body\n .\n end\n',
    );
    expect(() => p.set('Bad Name', 'x')).toThrow(/invalid deb822 field name/);
    expect(() => p.set('', 'x')).toThrow(/invalid deb822 field name/);
  });

  test('setting the same value keeps the raw text', () => {
    const doc = parse('A:   1  \n');
    doc.paragraphs[0]!.set('a', '1');
    expect(String(doc)).toBe('A:   1  \n');
  });

  test('multi-paragraph files, blank lines with whitespace, no final newline, CRLF', () => {
    for (const text of [
      'A: 1\n\nB: 2\n',
      '\n\nA: 1\n \t\n\n\nB: 2\n\n\n',
      'A: 1\n\nB: 2',
      'A: 1\r\nC: x\r\n y\r\n\r\nB: 2\r\n',
      '',
      '\n',
      '# only a comment\n',
    ]) {
      const doc = parse(text);
      expect(String(doc)).toBe(text);
    }
    const crlf = parse('A: 1\r\nC: x\r\n y\r\n\r\nB: 2\r\n');
    expect(crlf.paragraphs.map((p) => p.toObject())).toEqual([{ A: '1', C: 'x\n y' }, { B: '2' }]);
    const d = parse('\n\nA: 1\n \t\n\n\nB: 2\n\n\n');
    expect(d.paragraphs.map((p) => p.line)).toEqual([3, 7]);
    expect(d.trailer).toBe('\n\n');
  });

  test('appending to a file without a final newline', () => {
    const doc = parse('A: 1');
    doc.paragraphs[0]!.set('B', '2');
    expect(String(doc)).toBe('A: 1\nB: 2\n');
    doc.paragraphs.push(new Paragraph([['C', '3']]));
    expect(String(doc)).toBe('A: 1\nB: 2\n\nC: 3\n');
  });

  test('new documents', () => {
    const p = new Paragraph({ Package: 'x', Version: '1' });
    expect(formatParagraphs([p, [['Package', 'y']]])).toBe('Package: x\nVersion: 1\n\nPackage: y\n');
    const doc = new Deb822File([new Paragraph([['Origin', 'kiln']])]);
    doc.paragraphs[0]!.set('SHA256', formatChecksums([{ hash: 'ab', size: 12, name: 'main/Packages' }], { sizeWidth: 8 }));
    expect(String(doc)).toBe('Origin: kiln\nSHA256:\n ab       12 main/Packages\n');
  });

  test('comments: kept for round trip, not part of values', () => {
    const text = read(fixture('control'));
    const doc = parse(text, { file: 'debian/control' });
    expect(String(doc)).toBe(text);
    const [src, bin] = doc.paragraphs;
    expect(src!.get('Source')).toBe('kiln-demo');
    expect(src!.get('Build-Depends')).toBe(
      'debhelper-compat (= 13),\n               python3 <!nocheck>,\n               libfoo-dev:native (>= 1.2~) [linux-any],',
    );
    expect(src!.comments()).toEqual(['# trailing comment of the source paragraph']);
    expect(src!.leading).toBe('# debian/control for a made-up source package\n# (comment block before the first paragraph)\n\n');
    expect(bin!.get('package')).toBe('kiln-demo');
    expect(bin!.line).toBe(17);
    expect(bin!.leading).toBe('\n# comment-only block between paragraphs\n\n');
    expect(parseRelations(src!.get('Build-Depends')!)).toEqual([
      [{ name: 'debhelper-compat', version: { op: '=', version: '13' } }],
      [{ name: 'python3', restrictions: [['!nocheck']] }],
      [{ name: 'libfoo-dev', archQualifier: 'native', version: { op: '>=', version: '1.2~' }, architectures: ['linux-any'] }],
    ]);
    // a comment at the start of a paragraph is an item of it
    const c = parse('# about a\nA: 1\n');
    expect(c.paragraphs[0]!.comments()).toEqual(['# about a']);
    expect(c.paragraphs[0]!.line).toBe(1);
    expect(() => parse('A: 1\n# no\n', { file: 'Packages', noComments: true })).toThrow('Packages:2: comment lines are not allowed here');
  });

  test('editing next to comments', () => {
    const doc = parse('A: 1\n# c\nB: 2,\n# inner\n 3\n# tail\n');
    const p = doc.paragraphs[0]!;
    expect(p.get('B')).toBe('2,\n 3');
    p.set('C', '4');
    expect(String(doc)).toBe('A: 1\n# c\nB: 2,\n# inner\n 3\nC: 4\n# tail\n');
    p.delete('b');
    expect(String(doc)).toBe('A: 1\n# c\nC: 4\n# tail\n');
  });
});

describe('errors with FILE:LINE', () => {
  const cases: Array<[string, string]> = [
    [' continued\nA: 1\n', 'control:1: continuation line before any field'],
    ['A: 1\n\n continued\n', 'control:3: continuation line before any field'],
    ['# c\n continued\n', 'control:2: continuation line before any field'],
    ['A: 1\nno colon here\n', 'control:2: line without a colon: "no colon here"'],
    ['A: 1\n: value\n', 'control:2: empty field name'],
    ['A: 1\nB: 2\na: 3\n', 'control:3: duplicate field "a" (first at line 1)'],
    ['A: 1\n\nA: 2\nB: 1\nB: 1\n', 'control:5: duplicate field "B" (first at line 4)'],
    ['Bad Name: 1\n', 'control:1: invalid field name "Bad Name"'],
    ['-----BEGIN PGP SIGNATURE-----\n', 'control:1: line without a colon: "-----BEGIN PGP SIGNATURE-----"'],
  ];
  test.each(cases)('%j', (text, message) => {
    const e = errorOf(() => parse(text, { file: 'control' }));
    expect(e.message).toBe(message);
    expect(e.file).toBe('control');
    expect(e.line).toBe(Number(message.split(':')[1]));
  });

  test('line numbers in a signed file count the armor lines', () => {
    const text = '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nA: 1\nA: 2\n-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n';
    expect(errorOf(() => parse(text, { file: 'InRelease' })).message).toBe('InRelease:5: duplicate field "A" (first at line 4)');
  });

  test('broken PGP wrappers', () => {
    expect(errorOf(() => parse('-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nA: 1\n', { file: 'f' })).message).toBe(
      'f:4: PGP signed message without "-----BEGIN PGP SIGNATURE-----"',
    );
    expect(
      errorOf(() => parse('-----BEGIN PGP SIGNED MESSAGE-----\n\nA: 1\n-----BEGIN PGP SIGNATURE-----\nabc\n', { file: 'f' })).message,
    ).toBe('f:4: PGP signature without "-----END PGP SIGNATURE-----"');
  });
});

describe('clearsigned, .dsc, .changes, Sources', () => {
  test('signed .dsc: body, hashes, lossless', () => {
    const text = read(fixture('hello.dsc'));
    const doc = parse(text, { file: 'hello.dsc' });
    expect(doc.signed?.hashes).toEqual(['SHA512']);
    expect(doc.signed?.signature.startsWith('-----BEGIN PGP SIGNATURE-----\n')).toBe(true);
    expect(doc.paragraphs).toHaveLength(1);
    const p = doc.paragraphs[0]!;
    expect(p.get('Source')).toBe('hello');
    expect(p.line).toBe(4);
    expect(parseChecksums(p.get('Checksums-Sha256')!)).toEqual([
      { hash: '31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b', size: 725946, name: 'hello_2.10.orig.tar.gz' },
      { hash: '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', size: 12688, name: 'hello_2.10-3.debian.tar.xz' },
    ]);
    expect(String(doc)).toBe(text);
    expect(doc.body().startsWith('Format: 3.0 (quilt)\n')).toBe(true);
    // dropping the wrapper gives the plain body
    doc.signed = undefined;
    expect(String(doc)).toBe(doc.body());
  });

  test('dash-escaped lines in a signed body', () => {
    const text = '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nA: 1\n- # dashed comment\n-----BEGIN PGP SIGNATURE-----\nsig\n-----END PGP SIGNATURE-----\n';
    const doc = parse(text);
    expect(doc.body()).toBe('A: 1\n# dashed comment\n');
    expect(String(doc)).toBe(text);
  });

  test('.changes Files with section and priority', () => {
    const text = read(fixture('hello.changes'));
    const doc = parse(text);
    expect(doc.signed).toBeUndefined();
    const p = doc.paragraphs[0]!;
    expect(parseChecksums(p.get('Files')!)[1]).toEqual({
      hash: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
      size: 52788,
      section: 'devel',
      priority: 'optional',
      name: 'hello_2.10-3_amd64.deb',
    });
    expect(formatChecksums(parseChecksums(p.get('Files')!))).toBe(p.get('Files'));
    expect(formatChecksums(parseChecksums(p.get('Checksums-Sha1')!))).toBe(p.get('Checksums-Sha1'));
    expect(String(doc)).toBe(text);
  });

  test('Sources index', () => {
    const text = read(fixture('Sources'));
    const doc = parse(text);
    expect(doc.paragraphs.map((p) => [p.get('package'), parseChecksums(p.get('files')!).map((c) => c.name)])).toEqual([
      ['hello', ['hello_2.10-3.dsc', 'hello_2.10.orig.tar.gz']],
      ['kiln-demo', ['kiln-demo_0.1.dsc']],
    ]);
    expect(String(doc)).toBe(text);
  });

  test('bad checksum lines', () => {
    expect(() => parseChecksums('\n abc 12')).toThrow('invalid checksum line "abc 12": expected "hash size name"');
    expect(() => parseChecksums('\n xyz 12 f')).toThrow(/bad hash/);
    expect(() => parseChecksums('\n abc 1k f')).toThrow(/bad size/);
  });
});

describe('relations', () => {
  test('structure', () => {
    expect(parseRelations('a (>= 1) | b, c [amd64]')).toEqual([
      [{ name: 'a', version: { op: '>=', version: '1' } }, { name: 'b' }],
      [{ name: 'c', architectures: ['amd64'] }],
    ]);
    expect(parseRelations('libc6:any(<<2.37), foo [!i386 !armel] <!nocheck> <stage1 cross>, ${misc:Depends},')).toEqual([
      [{ name: 'libc6', archQualifier: 'any', version: { op: '<<', version: '2.37' } }],
      [{ name: 'foo', architectures: ['!i386', '!armel'], restrictions: [['!nocheck'], ['stage1', 'cross']] }],
      [{ name: '${misc:Depends}' }],
    ]);
    expect(formatRelations(parseRelations('a(>=1)|b ,\n   c[amd64]'))).toBe('a (>= 1) | b, c [amd64]');
    expect(parseRelations('')).toEqual([]);
  });

  test('errors', () => {
    expect(() => parseRelations('a | , b')).toThrow('empty alternative in relation "a |"');
    expect(() => parseRelations('a (>= )')).toThrow('invalid relation "a (>= )"');
    expect(() => parseRelations('a (~ 1)')).toThrow('invalid relation "a (~ 1)"');
    expect(() => parseRelations('a []')).toThrow('empty architecture list in relation "a []"');
  });
});

describe('real files', () => {
  test("Debian bookworm main Packages index: lossless, relations, timing", () => {
    if (!existsSync(PACKAGES)) {
      throw new Error(`${PACKAGES} is missing: run \`apt-get update\` (bookworm main in sources.list) to fetch the Packages index`);
    }
    const text = run('/usr/lib/apt/apt-helper', ['cat-file', PACKAGES]);
    const t0 = performance.now();
    const doc = parse(text, { file: PACKAGES });
    const t1 = performance.now();
    const out = String(doc);
    const t2 = performance.now();
    expect(doc.paragraphs.length).toBeGreaterThan(50_000);
    expect(out === text).toBe(true); // not toBe(text): a 50 MB diff is no use
    let relations = 0;
    for (const p of doc.paragraphs) {
      for (const f of ['Depends', 'Pre-Depends', 'Recommends', 'Suggests', 'Breaks', 'Conflicts', 'Provides', 'Replaces', 'Enhances', 'Built-Using']) {
        const v = p.get(f);
        if (v === undefined) continue;
        relations++;
        if (formatRelations(parseRelations(v)) !== v) expect.fail(`${p.get('Package')} ${f}: ${v}`);
      }
    }
    const t3 = performance.now();
    expect(relations).toBeGreaterThan(50_000);
    const bash = doc.paragraphs.find((p) => p.get('package') === 'bash')!;
    expect(bash.get('Filename')).toMatch(/^pool\/main\/b\/bash\/bash_.*_amd64\.deb$/);
    expect(bash.get('SHA256')).toMatch(/^[0-9a-f]{64}$/);
    console.log(
      `Packages: ${(text.length / 1e6).toFixed(1)} MB, ${doc.paragraphs.length} paragraphs: parse ${(t1 - t0).toFixed(0)} ms, ` +
        `write ${(t2 - t1).toFixed(0)} ms, values + ${relations} relation fields ${(t3 - t2).toFixed(0)} ms`,
    );
  });

  test('dpkg status: lossless and agrees with dpkg-query', () => {
    const text = read('/var/lib/dpkg/status');
    const doc = parse(text, { file: '/var/lib/dpkg/status' });
    expect(String(doc)).toBe(text);
    const dpkg = parse(run('dpkg-query', ['--status', 'dpkg']));
    expect(dpkg.paragraphs[0]!.get('Version')).toBe(run('dpkg-query', ['-W', '-f', '${Version}', 'dpkg']));
    const inStatus = doc.paragraphs.find((p) => p.get('Package') === 'dpkg' && p.get('Status')?.endsWith(' installed'))!;
    expect(inStatus.get('Version')).toBe(dpkg.paragraphs[0]!.get('Version'));
    // all installed packages, through dpkg-query's own formatter
    const listed = run('dpkg-query', ['-W', '-f', '${Package} ${Version}\n']).trim().split('\n').sort();
    const ours = doc.paragraphs
      .filter((p) => / installed$/.test(p.get('Status') ?? ''))
      .map((p) => `${p.get('Package')} ${p.get('Version')}`)
      .sort();
    expect(ours).toEqual(listed);
  });

  test('InRelease: signed, lossless, checksum fields', () => {
    const files = readdirSync(LISTS).filter((f) => f.endsWith('_InRelease'));
    if (!files.length) throw new Error(`no InRelease in ${LISTS}: run \`apt-get update\``);
    for (const f of files) {
      const text = read(join(LISTS, f));
      const doc = parse(text, { file: f });
      expect(String(doc)).toBe(text);
      expect(doc.signed?.hashes).toContain('SHA256');
      expect(doc.paragraphs).toHaveLength(1);
      const r = doc.paragraphs[0]!;
      const sums = parseChecksums(r.get('SHA256')!);
      expect(sums.length).toBeGreaterThan(5);
      expect(sums.every((s) => /^[0-9a-f]{64}$/.test(s.hash))).toBe(true);
      if (r.has('MD5Sum')) expect(parseChecksums(r.get('MD5Sum')!).map((s) => s.name)).toEqual(sums.map((s) => s.name));
      // archives pad sizes to a fixed width (dak and apt-ftparchive differ): reproduce it exactly
      const raw = r.get('SHA256')!;
      const first = raw.split('\n')[1]!;
      const width = first.length - 1 - sums[0]!.hash.length - 1 - sums[0]!.name.length - 1;
      expect(formatChecksums(sums, { sizeWidth: width })).toBe(raw);
    }
  });
});

describe('with the real tools', () => {
  const work = mkdtempSync(join(tmpdir(), 'kiln-deb822-'));
  const repo = join(work, 'repo');
  const deb = join(repo, 'kiln-tiny_1.0-1_all.deb');

  test('a control file we write is accepted by dpkg-deb --build; dpkg-deb --field output parses', () => {
    const root = join(work, 'root');
    mkdirSync(join(root, 'DEBIAN'), { recursive: true });
    mkdirSync(join(root, 'usr/share/kiln-tiny'), { recursive: true });
    writeFileSync(join(root, 'usr/share/kiln-tiny/hello.txt'), 'hello\n');
    const p = new Paragraph();
    p.set('Package', 'kiln-tiny')
      .set('Version', '1.0-1')
      .set('Architecture', 'all')
      .set('Maintainer', 'Kiln Tests <tests@example.invalid>')
      .set('Installed-Size', '1')
      .set('Depends', formatRelations(parseRelations('libc6 (>= 2.36) | libc6.1, base-files')))
      .set('Section', 'misc')
      .set('Priority', 'optional')
      .set('Description', 'tiny test package\nIt has an extended description.\n\nWith two paragraphs.');
    writeFileSync(join(root, 'DEBIAN/control'), String(new Deb822File([p])));
    mkdirSync(repo);
    run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, deb]);
    const fields = parseParagraph(run('dpkg-deb', ['--field', deb]), { file: 'dpkg-deb --field' });
    expect(fields.entries()).toEqual(p.entries());
    expect(run('dpkg-deb', ['--field', deb, 'Description'])).toBe(
      'tiny test package\n It has an extended description.\n .\n With two paragraphs.\n',
    );
    expect(p.get('description')).toBe('tiny test package\n It has an extended description.\n .\n With two paragraphs.');
  });

  test('apt-ftparchive packages and release output parse and match the files', () => {
    const packages = run('apt-ftparchive', ['packages', '.'], { cwd: repo });
    const doc = parse(packages, { file: 'apt-ftparchive packages', noComments: true });
    expect(String(doc)).toBe(packages);
    expect(doc.paragraphs).toHaveLength(1);
    const p = doc.paragraphs[0]!;
    expect(p.get('package')).toBe('kiln-tiny');
    expect(p.get('Filename')).toBe('./kiln-tiny_1.0-1_all.deb');
    expect(Number(p.get('Size'))).toBe(statSync(deb).size);
    expect(p.get('SHA256')).toBe(sha256(deb));
    expect(parseRelations(p.get('Depends')!).map((g) => g.map((r) => r.name))).toEqual([['libc6', 'libc6.1'], ['base-files']]);
    writeFileSync(join(repo, 'Packages'), packages);
    const release = run('apt-ftparchive', ['-o', 'APT::FTPArchive::Release::Origin=kiln', 'release', '.'], { cwd: repo });
    const r = parseParagraph(release, { file: 'Release' });
    expect(r.get('Origin')).toBe('kiln');
    const sums = parseChecksums(r.get('SHA256')!);
    expect(sums.map((s) => s.name)).toContain('Packages');
    for (const s of sums) {
      expect(s.size).toBe(statSync(join(repo, s.name)).size);
      expect(s.hash).toBe(sha256(join(repo, s.name)));
    }
  });

  test('dpkg-source .dsc and apt-ftparchive sources parse; checksums match', () => {
    const src = join(work, 'src', 'kiln-tiny-1.0');
    mkdirSync(join(src, 'debian', 'source'), { recursive: true });
    writeFileSync(join(src, 'debian/source/format'), '3.0 (native)\n');
    writeFileSync(
      join(src, 'debian/changelog'),
      'kiln-tiny (1.0) unstable; urgency=medium\n\n  * Test.\n\n -- Kiln Tests <tests@example.invalid>  Mon, 01 Jan 2024 00:00:00 +0000\n',
    );
    writeFileSync(
      join(src, 'debian/control'),
      formatParagraphs([
        [
          ['Source', 'kiln-tiny'],
          ['Maintainer', 'Kiln Tests <tests@example.invalid>'],
          ['Build-Depends', 'debhelper-compat (= 13)'],
          ['Standards-Version', '4.6.2'],
        ],
        [
          ['Package', 'kiln-tiny'],
          ['Architecture', 'all'],
          ['Description', 'tiny test package\nLong text.'],
        ],
      ]),
    );
    const dir = join(work, 'src');
    run('dpkg-source', ['-b', 'kiln-tiny-1.0'], { cwd: dir });
    const dscFile = join(dir, 'kiln-tiny_1.0.dsc');
    const dscText = read(dscFile);
    const dsc = parseParagraph(dscText, { file: dscFile });
    expect(String(parse(dscText))).toBe(dscText);
    expect(dsc.get('Source')).toBe('kiln-tiny');
    expect(parseRelations(dsc.get('Build-Depends')!)).toEqual([[{ name: 'debhelper-compat', version: { op: '=', version: '13' } }]]);
    const sums = parseChecksums(dsc.get('Checksums-Sha256')!);
    expect(sums.map((s) => s.name)).toEqual(['kiln-tiny_1.0.tar.xz']);
    for (const s of sums) expect(s.hash).toBe(sha256(join(dir, s.name)));
    const sources = run('apt-ftparchive', ['sources', '.'], { cwd: dir });
    const sp = parseParagraph(sources, { file: 'Sources' });
    expect(sp.get('Package')).toBe('kiln-tiny');
    expect(parseChecksums(sp.get('Checksums-Sha256')!).map((s) => s.name).sort()).toEqual(['kiln-tiny_1.0.dsc', 'kiln-tiny_1.0.tar.xz']);
    expect(String(parse(sources))).toBe(sources);
  });
});
