/**
 * kiln:apt-repo: a signed apt repository from .deb files made by other parts.
 *
 *   pool/COMPONENT/P/SOURCE/*.deb
 *   dists/CODENAME/COMPONENT/binary-ARCH/Packages{,.gz,.xz}   (+ by-hash/SHA256/… when by-hash = true)
 *   dists/CODENAME/{Release,InRelease,Release.gpg}
 *   archive-key.asc, archive-keyring.gpg, kiln.sources      (public key and a deb822 sources entry)
 *
 * Indexes are written natively (control fields read with dpkg-deb), sorted, with Date =
 * SOURCE_DATE_EPOCH, and signed with the user's key at that time: the same packages and key give
 * the same repository bytes.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Signer } from '../lib/gpg.js';
import { parseParagraph, type Paragraph } from '../pkg/deb822.js';
import { KilnError } from '../lib/errors.js';
import { signingInputs, signingOptions, signingTools, type BuildContext, type OptionSpec, type Recipe } from '../kind.js';
import { checkRepoUrl, expandGlobs } from './package-files.js';

interface DebEntry {
  file: string;
  control: string;
  fields: Paragraph;
  poolPath: string;
}

const hash = (algo: string, b: Buffer) => createHash(algo).update(b).digest('hex');

function releaseDate(sde: number): string {
  return new Date(sde * 1000).toUTCString().replace('GMT', 'UTC');
}

async function xz(ctx: BuildContext, file: string): Promise<void> {
  await ctx.run(['xz', '-9e', '-T1', '--keep', '--force', file]);
}

const OPTIONS = {
  packages: { type: 'paths', description: '.deb files or globs, one per line (e.g. ${hello-deb:location}/*.deb)', required: true },
  codename: { type: 'pattern', pattern: /^[a-z0-9][a-z0-9.+-]*$/, expected: 'a codename (lower-case letters, digits, . + -)', description: 'distribution codename (dists/CODENAME)', default: 'bookworm' },
  url: { type: 'url', description: "where clients reach the repository, written into kiln.sources with the public key inline (default: file://LOCATION with Signed-By the keyring's path)" },
  suite: { type: 'pattern', pattern: /^[A-Za-z0-9][A-Za-z0-9.+_-]*$/, expected: 'a suite name', description: 'Suite field', default: 'stable' },
  component: { type: 'pattern', pattern: /^[a-z0-9][a-z0-9.+-]*$/, expected: 'a component name', description: 'component', default: 'main' },
  architectures: { type: 'list', pattern: /^[a-z0-9][a-z0-9-]*$/, expected: 'a Debian architecture', description: 'architectures to index (packages of Architecture: all go into each)', default: 'amd64' },
  origin: { type: 'string', description: 'Origin field', default: 'kiln' },
  label: { type: 'string', description: 'Label field', default: 'kiln' },
  description: { type: 'string', description: 'Description field' },
  'valid-days': { type: 'int', min: 1, description: 'add Valid-Until this many days after SOURCE_DATE_EPOCH' },
  'by-hash': { type: 'bool', description: 'also publish indexes under by-hash/ (Acquire-By-Hash: yes)', default: 'false' },
  ...signingOptions('signs Release (InRelease, Release.gpg)'),
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'apt-repo',
  version: '1',
  description: 'signed apt repository (pool/, Packages, Release, InRelease, Release.gpg) from .deb files',
  options: OPTIONS,
  validate(ctx) {
    checkRepoUrl(ctx.options);
  },
  inputs: (ctx) => signingInputs(ctx.options.typed(OPTIONS)),
  tools: (ctx) => ['dpkg-deb', 'xz', ...signingTools(ctx.options.typed(OPTIONS))],
  // without url, kiln.sources points at the repository's location (URIs: file://LOCATION, Signed-By)
  locationInOutput: (ctx) => !ctx.options.typed(OPTIONS).url,
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const files = expandGlobs(o, 'packages', ['.deb', '.udeb']);
    const { component, codename, architectures: archs } = v;
    // set but empty: an empty field, as written
    const [suite, origin, label] = [v.suite ?? '', v.origin ?? '', v.label ?? ''];
    const entries: DebEntry[] = [];
    const seen = new Map<string, string>();
    for (const file of files) {
      const control = (await ctx.run(['dpkg-deb', '--field', file])).stdout.replace(/\n+$/, '');
      let fields: Paragraph;
      try {
        fields = parseParagraph(control, { file: `${file} (control)` });
      } catch (e) {
        throw o.error('packages', (e as Error).message);
      }
      const pkg = fields.get('package');
      const version = fields.get('version');
      const arch = fields.get('architecture');
      if (!pkg || !version || !arch) throw o.error('packages', `${file} has no Package/Version/Architecture control fields`);
      const key = `${pkg} ${version} ${arch}`;
      if (seen.has(key)) throw o.error('packages', `two packages for ${key}: ${seen.get(key)} and ${file}`);
      seen.set(key, file);
      const source = (fields.get('source') ?? pkg).split(/\s/)[0]!;
      const prefix = source.startsWith('lib') && source.length > 3 ? source.slice(0, 4) : source[0]!;
      entries.push({ file, control, fields, poolPath: `pool/${component}/${prefix}/${source}/${basename(file)}` });
    }
    entries.sort((a, b) => (a.poolPath < b.poolPath ? -1 : a.poolPath > b.poolPath ? 1 : 0));
    const root = ctx.staging;
    for (const e of entries) {
      mkdirSync(join(root, e.poolPath, '..'), { recursive: true });
      copyFileSync(e.file, join(root, e.poolPath));
    }
    const dist = join(root, 'dists', codename);
    const indexFiles: string[] = [];
    for (const arch of archs) {
      const dir = join(dist, component, `binary-${arch}`);
      mkdirSync(dir, { recursive: true });
      const paras: string[] = [];
      for (const e of entries) {
        const a = e.fields.get('architecture')!;
        if (a !== arch && a !== 'all') continue;
        const data = readFileSync(join(root, e.poolPath));
        const extra = `Filename: ${e.poolPath}\nSize: ${statSync(join(root, e.poolPath)).size}\nMD5sum: ${hash('md5', data)}\nSHA256: ${hash('sha256', data)}`;
        // like apt-ftparchive: file fields before Description
        const lines = e.control.split('\n');
        const di = lines.findIndex((l) => /^description:/i.test(l));
        if (di < 0) paras.push(`${e.control}\n${extra}`);
        else paras.push([...lines.slice(0, di), extra, ...lines.slice(di)].join('\n'));
      }
      const packages = join(dir, 'Packages');
      writeFileSync(packages, paras.length ? paras.join('\n\n') + '\n' : '');
      writeFileSync(packages + '.gz', gzipSync(readFileSync(packages), { level: 9 }));
      await xz(ctx, packages);
      indexFiles.push(...['Packages', 'Packages.gz', 'Packages.xz'].map((f) => join(dir, f)));
      writeFileSync(join(dir, 'Release'), `Archive: ${suite}\nOrigin: ${origin}\nLabel: ${label}\nComponent: ${component}\nArchitecture: ${arch}\n`);
      indexFiles.push(join(dir, 'Release'));
    }
    const byHash = v['by-hash'];
    const sums: Record<'MD5Sum' | 'SHA256', string[]> = { MD5Sum: [], SHA256: [] };
    for (const f of indexFiles) {
      const data = readFileSync(f);
      const rel = relative(dist, f);
      const size = String(data.length).padStart(16);
      sums.MD5Sum.push(` ${hash('md5', data)} ${size} ${rel}`);
      sums.SHA256.push(` ${hash('sha256', data)} ${size} ${rel}`);
      if (byHash && !f.endsWith('Release')) {
        for (const [algo, dirName] of [['md5', 'MD5Sum'], ['sha256', 'SHA256']] as const) {
          const d = join(f, '..', 'by-hash', dirName);
          mkdirSync(d, { recursive: true });
          copyFileSync(f, join(d, hash(algo, data)));
        }
      }
    }
    const sde = ctx.sourceDateEpoch;
    const validDays = v['valid-days'];
    let release = `Origin: ${origin}\nLabel: ${label}\nSuite: ${suite}\nCodename: ${codename}\n`;
    release += `Date: ${releaseDate(sde)}\n`;
    if (validDays !== undefined) release += `Valid-Until: ${releaseDate(sde + validDays * 86400)}\n`;
    release += `Architectures: ${archs.join(' ')}\nComponents: ${component}\n`;
    if (v.description) release += `Description: ${v.description}\n`;
    if (byHash) release += 'Acquire-By-Hash: yes\n';
    release += `MD5Sum:\n${sums.MD5Sum.join('\n')}\nSHA256:\n${sums.SHA256.join('\n')}\n`;
    writeFileSync(join(dist, 'Release'), release);

    const keyFile = v['signing-key'];
    let signedBy = '';
    if (keyFile) {
      const signer = await Signer.open({ keyFile, passphraseFile: v['signing-key-passphrase-file'] }, sde, { log: ctx.log, signal: ctx.signal, part: ctx.part });
      try {
        await signer.clearsign(join(dist, 'Release'), join(dist, 'InRelease'));
        await signer.detachSign(join(dist, 'Release'), join(dist, 'Release.gpg'));
        const armored = await signer.exportPublic(true);
        writeFileSync(join(root, 'archive-key.asc'), armored);
        writeFileSync(join(root, 'archive-keyring.gpg'), await signer.exportPublic(false));
        // with a url the entry is location-independent: the armored key inline (deb822, apt >= 2.3)
        signedBy = v.url
          ? `Signed-By:\n${armored.toString('utf8').trimEnd().split('\n').map((l: string) => ` ${l === '' ? '.' : l}`).join('\n')}\n`
          : `Signed-By: ${join(ctx.location, 'archive-keyring.gpg')}\n`;
      } finally {
        await signer.close();
      }
    } else {
      ctx.log('# apt-repo: no signing-key: the repository is unsigned (clients need [trusted=yes])\n');
    }
    writeFileSync(
      join(root, 'kiln.sources'),
      `Types: deb\nURIs: ${v.url || `file://${ctx.location}`}\nSuites: ${codename}\nComponents: ${component}\n${signedBy || 'Trusted: yes\n'}`,
    );
    if (entries.length === 0) throw new KilnError(`[${ctx.part}] no packages matched: ${v.packages.join(' ')}`);
  },
};
export default recipe;
