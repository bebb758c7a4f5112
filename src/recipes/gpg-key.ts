/**
 * kiln:gpg-key: make an OpenPGP signing key for archives and packages (secret.asc, public.asc,
 * public.gpg). For examples, tests and private infrastructure; a release team would point
 * `signing-key` options at its own key instead. The key is a part output: cached, made again
 * only when its options change (or the output is cleaned).
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeGnupgHome, removeGnupgHome } from '../lib/gpg.js';
import type { Recipe } from '../recipe.js';

export const recipe: Recipe = {
  kind: 'gpg-key',
  version: '1',
  description: 'generate an OpenPGP signing key (secret.asc, public.asc, public.gpg)',
  options: {
    uid: { description: "user id, 'Name <email>'", required: true },
    algorithm: { description: 'gpg --quick-gen-key algorithm (rsa3072, rsa4096, ed25519)', default: 'rsa3072' },
  },
  validate(ctx) {
    const a = ctx.options.get('algorithm')!.trim();
    if (!/^(rsa(2048|3072|4096)|ed25519)$/.test(a)) throw ctx.options.error('algorithm', `unsupported algorithm '${a}' (rsa2048, rsa3072, rsa4096, ed25519)`);
  },
  tools: () => ['gpg', 'gpgconf'],
  async install(ctx) {
    // under out/.kiln/tmp (mode 0700), never $TMPDIR; removed with its agent even on kill -9
    const home = makeGnupgHome(ctx.work);
    const g = (...args: string[]) => ctx.run(['gpg', '--homedir', home, '--batch', '--no-tty', ...args]);
    try {
      await g('--passphrase', '', '--quick-gen-key', ctx.options.require('uid').trim(), ctx.options.get('algorithm')!.trim(), 'sign', 'never');
      await g('--armor', '--output', join(ctx.staging, 'secret.asc'), '--export-secret-keys');
      await g('--armor', '--output', join(ctx.staging, 'public.asc'), '--export');
      await g('--output', join(ctx.staging, 'public.gpg'), '--export');
      copyFileSync(join(ctx.staging, 'public.asc'), join(ctx.staging, 'RPM-GPG-KEY'));
    } finally {
      await removeGnupgHome(home, { log: ctx.log, part: ctx.part });
    }
  },
};
export default recipe;
