/**
 * kiln:rpm-repo: an rpm repository (repodata/ by createrepo_c) from .rpm files made by other
 * parts, with repomd.xml signed (repomd.xml.asc), the public key, and a ready .repo file.
 * Reproducible: --revision/--set-timestamp-to-revision with SOURCE_DATE_EPOCH, no sqlite
 * databases, signatures made at SOURCE_DATE_EPOCH.
 */
import { copyFileSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Signer } from '../lib/gpg.js';
import { signingInputs, signingOptions, signingTools, type OptionSpec, type Recipe } from '../kind.js';
import { checkRepoUrl, expandGlobs } from './package-files.js';

const OPTIONS = {
  packages: { type: 'paths', description: '.rpm files or globs, one per line', required: true },
  name: { type: 'pattern', pattern: /^[A-Za-z0-9._:-]+$/, expected: 'a valid repository id', description: 'repository id in the generated .repo file', default: 'kiln' },
  url: { type: 'url', description: 'where clients reach the repository: baseurl and gpgkey of the .repo file (default: file://LOCATION)' },
  ...signingOptions('signs repomd.xml'),
  'packages-signed': { type: 'bool', description: 'set gpgcheck=1 in the .repo file (packages carry signatures)', default: 'false' },
  compression: { type: 'enum', choices: ['gz', 'xz', 'zstd', 'bz2'], noun: 'compression', description: 'metadata compression (createrepo_c --general-compress-type)', default: 'xz' },
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'rpm-repo',
  version: '2',
  description: 'rpm repository (repodata/, signed repomd.xml) from .rpm files',
  options: OPTIONS,
  validate(ctx) {
    checkRepoUrl(ctx.options);
  },
  inputs: (ctx) => signingInputs(ctx.options.typed(OPTIONS)),
  tools: (ctx) => ['createrepo_c', ...signingTools(ctx.options.typed(OPTIONS))],
  // without url, NAME.repo points at the repository's location (baseurl, gpgkey)
  locationInOutput: (ctx) => !ctx.options.typed(OPTIONS).url,
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const files = expandGlobs(o, 'packages', ['.rpm']);
    const pkgDir = join(ctx.staging, 'Packages');
    mkdirSync(pkgDir, { recursive: true });
    const names = new Map<string, string>();
    for (const f of files) {
      const b = basename(f);
      if (names.has(b)) throw o.error('packages', `two packages named ${b}: ${names.get(b)} and ${f}`);
      names.set(b, f);
      copyFileSync(f, join(pkgDir, b));
      // primary.xml records each package file's mtime (<time file=...>): the copy's would make
      // the repository indexes differ from build to build
      utimesSync(join(pkgDir, b), ctx.sourceDateEpoch, ctx.sourceDateEpoch);
    }
    const sde = String(ctx.sourceDateEpoch);
    await ctx.run([
      'createrepo_c', '--no-database', '--simple-md-filenames', '--checksum', 'sha256',
      '--general-compress-type', v.compression,
      '--revision', sde, '--set-timestamp-to-revision', '--workers', '1', ctx.staging,
    ]);
    const name = v.name;
    const base = (v.url || `file://${ctx.location}`).replace(/\/+$/, '');
    const keyFile = v['signing-key'];
    let gpg = 'gpgcheck=0\nrepo_gpgcheck=0\n';
    if (keyFile) {
      const signer = await Signer.open({ keyFile, passphraseFile: v['signing-key-passphrase-file'] }, ctx.sourceDateEpoch, { log: ctx.log, signal: ctx.signal, part: ctx.part });
      try {
        await signer.detachSign(join(ctx.staging, 'repodata', 'repomd.xml'), join(ctx.staging, 'repodata', 'repomd.xml.asc'));
        writeFileSync(join(ctx.staging, `RPM-GPG-KEY-${name}`), await signer.exportPublic(true));
      } finally {
        await signer.close();
      }
      gpg = `gpgcheck=${v['packages-signed'] ? 1 : 0}\nrepo_gpgcheck=1\ngpgkey=${base}/RPM-GPG-KEY-${name}\n`;
    }
    writeFileSync(join(ctx.staging, `${name}.repo`), `[${name}]\nname=${name}\nbaseurl=${base}\nenabled=1\n${gpg}`);
  },
};
export default recipe;
