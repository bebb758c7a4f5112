/**
 * Content hashes of local inputs, with a stat cache (size, mtime, inode) so a no-op
 * build does not re-read unchanged files.
 */
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';

export interface StatCacheEntry {
  k: string; // size:mtimeMs:ino
  h: string;
}
export type StatCache = Record<string, StatCacheEntry>;

function statKey(st: Stats): string {
  return `${st.size}:${st.mtimeMs}:${st.ino}:${st.mode}`;
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('end', () => resolve())
      .on('error', reject);
  });
  return h.digest('hex');
}

/**
 * Hash of a path's content: a file's bytes, a symlink's target, a directory's sorted
 * entries (names, modes, contents), recursively. Missing paths hash to 'missing'.
 */
export async function hashPath(path: string, cache: StatCache, used: StatCache): Promise<string> {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return 'missing';
  }
  if (st.isSymbolicLink()) return sha256(`link:${readlinkSync(path)}`);
  if (st.isFile()) {
    const k = statKey(st);
    const c = cache[path];
    let h: string;
    if (c && c.k === k) h = c.h;
    else h = await hashFile(path);
    used[path] = { k, h };
    return sha256(`file:${st.mode & 0o7777 & 0o111 ? 'x' : '-'}:${h}`);
  }
  if (st.isDirectory()) {
    const names = readdirSync(path).sort();
    const parts: string[] = [];
    for (const n of names) parts.push(`${n}\0${await hashPath(join(path, n), cache, used)}`);
    return sha256(`dir:${parts.join('\n')}`);
  }
  return sha256(`other:${st.mode}`);
}

/**
 * The options, inputs and dependencies of a part's signature made independent of where the
 * project lives: option values and input paths through `rel`, each dependency's signature
 * replaced by `dep(name, signature)`; keys sorted (the order they are hashed in).
 */
export function relocateSignature(
  sp: { options: Record<string, string>; inputs: Record<string, string>; deps: Record<string, string> },
  rel: (s: string) => string,
  dep: (name: string, signature: string) => string,
): { options: Record<string, string>; inputs: Record<string, string>; deps: Record<string, string> } {
  const options: Record<string, string> = {};
  for (const k of Object.keys(sp.options).sort()) options[k] = rel(sp.options[k]!);
  const inputs: Record<string, string> = {};
  for (const k of Object.keys(sp.inputs).sort()) inputs[rel(k)] = sp.inputs[k]!;
  const deps: Record<string, string> = {};
  for (const d of Object.keys(sp.deps).sort()) deps[d] = dep(d, sp.deps[d]!);
  return { options, inputs, deps };
}
