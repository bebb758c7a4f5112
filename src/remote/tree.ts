/**
 * The output tree of a store entry, listed by digest: what an action result carries.
 *
 * `outputManifest()` is the one place that produces it. The store's own per-entry manifest
 * (path, type, mode, size, sha256, symlink target, written at commit) has the same shape; when
 * it exists this function can read it instead of walking and hashing the tree again.
 */
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { hashFile, sha256 } from '../engine/hash.js';

const SMALL = 1 << 20;

export interface TreeEntry {
  /** relative path, '/'-separated, no '.', '..' or empty components */
  path: string;
  type: 'dir' | 'file' | 'symlink';
  /** permission bits (mode & 0o7777) */
  mode: number;
  /** files: byte count */
  size?: number;
  /** files: sha256 of the bytes */
  sha256?: string;
  /** symlinks: the link's target, as stored */
  target?: string;
}

export class UnsupportedEntry extends Error {}

/** Every entry below `dir`, sorted by path (parents before children), files hashed. */
export async function outputManifest(dir: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const rec = async (rel: string) => {
    const names = readdirSync(rel ? join(dir, rel) : dir).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const abs = join(dir, r);
      const st = lstatSync(abs);
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        out.push({ path: r, type: 'dir', mode });
        await rec(r);
      } else if (st.isFile()) {
        // small files in one read (10,000 of them cost 10,000 streams otherwise)
        const digest = st.size <= SMALL ? sha256(readFileSync(abs)) : await hashFile(abs);
        out.push({ path: r, type: 'file', mode, size: st.size, sha256: digest });
      } else if (st.isSymbolicLink()) {
        out.push({ path: r, type: 'symlink', mode: 0o777, target: readlinkSync(abs) });
      } else {
        throw new UnsupportedEntry(`${r}: not a file, directory or symlink (mode ${st.mode.toString(8)})`);
      }
    }
  };
  await rec('');
  return out;
}
