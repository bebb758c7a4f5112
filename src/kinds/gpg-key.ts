/**
 * kiln:gpg-key: make an OpenPGP signing key for archives and packages (secret.asc, public.asc,
 * public.gpg). For examples, tests and private infrastructure; a release team would point
 * `signing-key` options at its own key instead. The key is a part output: cached, made again
 * only when its options change (or the output is cleaned).
 *
 * With `seed-file`, the key is derived from the file's secret bytes (Ed25519, src/lib/openpgp-seeded.ts),
 * created at SOURCE_DATE_EPOCH: the same seed gives the same key on every machine and in every
 * build directory, so everything it signs is reproducible. Without it, gpg makes a new random key.
 */
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeGnupgHome, removeGnupgHome } from '../lib/gpg.js';
import { seededEd25519Key } from '../lib/openpgp-seeded.js';
import type { OptionSpec, Recipe } from '../kind.js';

const OPTIONS = {
  uid: { type: 'string', description: "user id, 'Name <email>'", required: true },
  algorithm: { type: 'enum', choices: ['rsa2048', 'rsa3072', 'rsa4096', 'ed25519'], noun: 'algorithm', description: 'gpg --quick-gen-key algorithm (rsa3072, rsa4096, ed25519)', default: 'rsa3072' },
  'seed-file': { type: 'path', description: 'file of at least 32 secret random bytes: derive a reproducible Ed25519 key from it (needs algorithm = ed25519)' },
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'gpg-key',
  version: '1',
  description: 'generate an OpenPGP signing key (secret.asc, public.asc, public.gpg)',
  options: OPTIONS,
  validate(ctx) {
    const { algorithm: a, 'seed-file': seed } = ctx.options.typed(OPTIONS);
    if (seed !== undefined) {
      if (a !== 'ed25519') throw ctx.options.error('seed-file', `a seeded key is an Ed25519 key: set algorithm = ed25519 (not '${a}')`);
      let size: number;
      try {
        const st = statSync(seed);
        if (!st.isFile()) throw new Error('not a regular file');
        size = st.size;
      } catch (e) {
        throw ctx.options.error('seed-file', `cannot read ${seed}: ${(e as Error).message}`);
      }
      if (size < 32) throw ctx.options.error('seed-file', `${seed} has ${size} bytes; at least 32 secret random bytes are needed (e.g. head -c 32 /dev/urandom)`);
    }
  },
  inputs(ctx) {
    const seed = ctx.options.typed(OPTIONS)['seed-file'];
    return seed ? [seed] : [];
  },
  tools: (ctx) => (ctx.options.typed(OPTIONS)['seed-file'] ? [] : ['gpg', 'gpgconf']),
  async install(ctx) {
    const { uid, algorithm, 'seed-file': seed } = ctx.options.typed(OPTIONS);
    if (seed) {
      const k = seededEd25519Key(readFileSync(seed), uid, ctx.sourceDateEpoch);
      writeFileSync(join(ctx.staging, 'secret.asc'), k.secretArmored, { mode: 0o600 });
      writeFileSync(join(ctx.staging, 'public.asc'), k.publicArmored);
      writeFileSync(join(ctx.staging, 'public.gpg'), k.publicBinary);
      writeFileSync(join(ctx.staging, 'RPM-GPG-KEY'), k.publicArmored);
      ctx.log(`derived Ed25519 key ${k.fingerprint} from the seed file\n`);
      return;
    }
    // under out/.kiln/tmp (mode 0700), never $TMPDIR; removed with its agent even on kill -9
    const home = makeGnupgHome(ctx.work);
    const g = (...args: string[]) => ctx.run(['gpg', '--homedir', home, '--batch', '--no-tty', ...args]);
    try {
      await g('--passphrase', '', '--quick-gen-key', uid, algorithm, 'sign', 'never');
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
