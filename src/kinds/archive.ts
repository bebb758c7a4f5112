/** Unpacking source archives, for the kinds that fetch them (kiln:cmmi, kiln:download). */
import { readdirSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildContext } from '../kind.js';

/** Unpack a tar archive (any compression GNU tar knows) or a zip into dest, optionally dropping a single top-level directory. */
export async function extractArchive(ctx: BuildContext, file: string, dest: string, strip: boolean): Promise<void> {
  const tmp = join(ctx.work, `extract-${Date.now().toString(36)}`);
  await mkdir(tmp, { recursive: true });
  if (/\.zip$/i.test(file)) await ctx.run(['unzip', '-q', file, '-d', tmp]);
  else await ctx.run(['tar', '-xf', file, '-C', tmp, '--no-same-owner']);
  let root = tmp;
  const entries = readdirSync(tmp);
  if (strip && entries.length === 1 && statSync(join(tmp, entries[0]!)).isDirectory()) root = join(tmp, entries[0]!);
  await mkdir(dest, { recursive: true });
  for (const e of readdirSync(root)) await rename(join(root, e), join(dest, e));
  await rm(tmp, { recursive: true, force: true });
}
