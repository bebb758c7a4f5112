/**
 * The output tree of a store entry, listed by digest: what an action result carries.
 *
 * It is the store's own per-entry manifest (src/lib/manifest.ts: path, type, mode, size,
 * sha256, symlink target, written at commit) without its stat data: uploads take the tree from
 * the verified manifest, and a restored entry's manifest must equal the action result's tree.
 */
import type { Manifest } from '../lib/manifest.js';

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

const TYPES = { f: 'file', d: 'dir', l: 'symlink' } as const;

/** The tree of a manifest: every entry below the root, in the manifest's order (parents first). */
export function manifestTree(m: Manifest): TreeEntry[] {
  const out: TreeEntry[] = [];
  for (const e of m.entries) {
    if (e.p === '.') continue;
    if (e.t === 'o') throw new UnsupportedEntry(`${e.p}: not a file, directory or symlink`);
    const t: TreeEntry = { path: e.p, type: TYPES[e.t], mode: e.t === 'l' ? 0o777 : e.m };
    if (e.t === 'f') {
      t.size = e.s;
      t.sha256 = e.h;
    }
    if (e.t === 'l') t.target = e.l;
    out.push(t);
  }
  return out;
}

/** Throws unless the manifest of a restored tree is exactly `tree` (paths, types, modes, sizes, digests, targets). */
export function sameTree(m: Manifest, tree: TreeEntry[], key: string): void {
  const got = manifestTree(m);
  const want = new Map(tree.map((t) => [t.path, t]));
  const bad = (path: string, why: string) => new Error(`restored tree of ac/${key.slice(0, 12)} differs from its action result at ${path}: ${why}`);
  for (const g of got) {
    const w = want.get(g.path);
    if (!w) throw bad(g.path, 'not in the result');
    want.delete(g.path);
    if (w.type !== g.type) throw bad(g.path, `${g.type}, expected ${w.type}`);
    if (g.type !== 'symlink' && w.mode !== g.mode) throw bad(g.path, `mode ${g.mode.toString(8)}, expected ${w.mode.toString(8)}`);
    if (g.type === 'file' && (w.size !== g.size || w.sha256 !== g.sha256)) throw bad(g.path, 'content differs');
    if (g.type === 'symlink' && w.target !== g.target) throw bad(g.path, 'link target differs');
  }
  for (const p of want.keys()) throw bad(p, 'missing');
}
