/**
 * kiln:rpm-repo: an rpm repository (repodata/ by createrepo_c) from .rpm files made by other
 * parts, with repomd.xml signed (repomd.xml.asc), the public key, and a ready .repo file.
 * Reproducible: --revision/--set-timestamp-to-revision with SOURCE_DATE_EPOCH, no sqlite
 * databases, signatures made at SOURCE_DATE_EPOCH.
 */
import { copyFileSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Signer } from '../lib/gpg.js';
import type { Recipe } from '../recipe.js';
import { expandGlobs } from './package-files.js';

export const recipe: Recipe = {
  kind: 'rpm-repo',
  version: '2',
  description: 'rpm repository (repodata/, signed repomd.xml) from .rpm files',
  options: {
    packages: { description: '.rpm files or globs, one per line', required: true },
    name: { description: 'repository id in the generated .repo file', default: 'kiln' },
    'signing-key': { description: 'OpenPGP secret key file to sign repomd.xml with' },
    'signing-key-passphrase-file': { description: 'file holding the key passphrase' },
    'packages-signed': { description: 'set gpgcheck=1 in the .repo file (packages carry signatures)', default: 'false' },
    compression: { description: 'metadata compression (createrepo_c --general-compress-type)', default: 'xz' },
  },
  validate(ctx) {
    const o = ctx.options;
    if (!/^[A-Za-z0-9._:-]+$/.test(o.get('name')!.trim())) throw o.error('name', `not a valid repository id: '${o.get('name')}'`);
    if (!['gz', 'xz', 'zstd', 'bz2'].includes(o.get('compression')!.trim())) throw o.error('compression', 'one of gz, xz, zstd, bz2');
    o.bool('packages-signed', false);
  },
  inputs(ctx) {
    return [ctx.options.path('signing-key'), ctx.options.path('signing-key-passphrase-file')].filter((x): x is string => !!x);
  },
  tools(ctx) {
    return ['createrepo_c', ...(ctx.options.get('signing-key') ? ['gpg', 'gpgconf'] : [])];
  },
  async install(ctx) {
    const o = ctx.options;
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
      '--general-compress-type', o.get('compression')!.trim(),
      '--revision', sde, '--set-timestamp-to-revision', '--workers', '1', ctx.staging,
    ]);
    const name = o.get('name')!.trim();
    const keyFile = o.path('signing-key');
    let gpg = 'gpgcheck=0\nrepo_gpgcheck=0\n';
    if (keyFile) {
      const signer = await Signer.open({ keyFile, passphraseFile: o.path('signing-key-passphrase-file') }, ctx.sourceDateEpoch, { log: ctx.log, signal: ctx.signal, part: ctx.part });
      try {
        await signer.detachSign(join(ctx.staging, 'repodata', 'repomd.xml'), join(ctx.staging, 'repodata', 'repomd.xml.asc'));
        writeFileSync(join(ctx.staging, `RPM-GPG-KEY-${name}`), await signer.exportPublic(true));
      } finally {
        await signer.close();
      }
      gpg = `gpgcheck=${o.bool('packages-signed', false) ? 1 : 0}\nrepo_gpgcheck=1\ngpgkey=file://${join(ctx.location, `RPM-GPG-KEY-${name}`)}\n`;
    }
    writeFileSync(join(ctx.staging, `${name}.repo`), `[${name}]\nname=${name}\nbaseurl=file://${ctx.location}\nenabled=1\n${gpg}`);
  },
};
export default recipe;
