/**
 * The file manifest shared by the package writers (.deb, .rpm): what goes into a package,
 * validated (absolute paths, no '..', no duplicates, sources that exist), with parent
 * directories implied, owners root:root unless set, mtimes clamped to SOURCE_DATE_EPOCH,
 * and a deterministic order (depth-first, names sorted bytewise, like tar --sort=name).
 */
import { lstatSync, statSync } from 'node:fs';
import { KilnError } from '../lib/errors.js';

export interface PkgFile {
  /** absolute path in the package, e.g. /usr/bin/hello */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** host file to copy (type file) */
  source?: string;
  /** literal content (type file) */
  content?: Buffer | string;
  /** symlink target */
  target?: string;
  /** permission bits (default 0644 files, 0755 dirs, 0777 symlinks) */
  mode?: number;
  uid?: number;
  gid?: number;
  user?: string;
  group?: string;
  mtime?: number;
  /** deb conffile / rpm %config */
  conffile?: boolean;
  /** rpm %config(noreplace) (implies conffile) */
  noreplace?: boolean;
  /** rpm %ghost: owned, not shipped */
  ghost?: boolean;
  /** rpm %doc / %license */
  doc?: boolean;
  license?: boolean;
}

export interface ManifestEntry extends Required<Pick<PkgFile, 'path' | 'type' | 'uid' | 'gid' | 'user' | 'group' | 'mtime'>> {
  /** permission bits only */
  perm: number;
  /** full st_mode with the type bits */
  mode: number;
  size: number;
  source?: string;
  content?: Buffer;
  target?: string;
  conffile: boolean;
  noreplace: boolean;
  ghost: boolean;
  doc: boolean;
  license: boolean;
  /** directories added because a listed path is below them */
  implied: boolean;
}

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** already normal: absolute, no empty, '.' or '..' component, no trailing slash, no newline or NUL */
const NORMAL = /^(?:\/(?!\.\.?(?:\/|$))[^/\n\r\0]+)+$/;

export function normalizePath(p: string): string {
  if (typeof p === 'string' && NORMAL.test(p)) return p;
  if (typeof p !== 'string' || p === '') throw new KilnError(`package path ${JSON.stringify(p)} is empty`);
  if (/[\n\r\0]/.test(p)) throw new KilnError(`package path ${JSON.stringify(p)} contains a newline or NUL (not representable in md5sums/conffiles)`);
  if (!p.startsWith('/')) throw new KilnError(`package path '${p}' is not absolute`);
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw new KilnError(`package path '${p}' contains '..'`);
  return '/' + parts.join('/');
}


export function buildManifest(files: PkgFile[], sourceDateEpoch: number): ManifestEntry[] {
  const byPath = new Map<string, ManifestEntry>();
  for (const f of files) {
    const path = normalizePath(f.path);
    if (path === '/') throw new KilnError(`package path '${f.path}' is the root directory`);
    if (byPath.has(path)) throw new KilnError(`duplicate package path ${path}${path !== f.path ? ` (as '${f.path}')` : ''}`);
    if (f.mode !== undefined && (!Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o7777)) throw new KilnError(`${path}: invalid mode ${String(f.mode)} (permission bits 0-07777)`);
    if (f.mtime !== undefined && (!Number.isInteger(f.mtime) || f.mtime < 0)) throw new KilnError(`${path}: invalid mtime ${String(f.mtime)}`);
    for (const k of ['uid', 'gid'] as const) {
      const v = f[k];
      if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff)) throw new KilnError(`${path}: invalid ${k} ${String(v)}`);
    }
    for (const k of ['user', 'group'] as const) {
      const v = f[k];
      if (v !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/.test(v)) throw new KilnError(`${path}: invalid ${k} name '${v}'`);
    }
    let size = 0;
    let content: Buffer | undefined;
    if (f.type === 'file') {
      if (f.content !== undefined) content = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content);
      else if (f.source !== undefined) {
        let st;
        try {
          st = statSync(f.source);
        } catch {
          throw new KilnError(`source file for ${path} not found: ${f.source}`);
        }
        if (!st.isFile()) throw new KilnError(`source for ${path} is not a regular file: ${f.source}`);
        size = st.size;
      } else if (!f.ghost) throw new KilnError(`file ${path} has neither a source nor content`);
      if (content) size = content.length;
    } else if (f.type === 'symlink') {
      if (!f.target) throw new KilnError(`symlink ${path} has no target`);
      if (/[\n\r\0]/.test(f.target)) throw new KilnError(`symlink ${path}: target contains a newline or NUL`);
      size = Buffer.byteLength(f.target);
    } else if (f.type !== 'dir') throw new KilnError(`unknown file type '${String(f.type)}' for ${path}`);
    const perm = (f.mode ?? (f.type === 'dir' ? 0o755 : f.type === 'symlink' ? 0o777 : 0o644)) & 0o7777;
    const type = f.type === 'dir' ? S_IFDIR : f.type === 'symlink' ? S_IFLNK : S_IFREG;
    byPath.set(path, {
      path,
      type: f.type,
      perm,
      mode: type | perm,
      size: f.ghost ? 0 : size,
      source: f.source,
      content,
      target: f.target,
      uid: f.uid ?? 0,
      gid: f.gid ?? 0,
      user: f.user ?? 'root',
      group: f.group ?? 'root',
      mtime: Math.min(f.mtime ?? sourceDateEpoch, sourceDateEpoch),
      conffile: !!(f.conffile || f.noreplace),
      noreplace: !!f.noreplace,
      ghost: !!f.ghost,
      doc: !!f.doc,
      license: !!f.license,
      implied: false,
    });
  }
  // parents: walk up from each path until a directory that is already there (its own parents
  // were added when it was, or are added when its own path comes up in this loop)
  for (const path of [...byPath.keys()]) {
    for (let cut = path.lastIndexOf('/'); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
      const dir = path.slice(0, cut);
      const e = byPath.get(dir);
      if (e) {
        if (e.type !== 'dir') throw new KilnError(`${dir} is a ${e.type} but ${path} is below it`);
        break;
      }
      byPath.set(dir, {
        path: dir, type: 'dir', perm: 0o755, mode: S_IFDIR | 0o755, size: 0, uid: 0, gid: 0, user: 'root', group: 'root',
        mtime: sourceDateEpoch, conffile: false, noreplace: false, ghost: false, doc: false, license: false, implied: true,
      });
    }
  }
  return sortByPath([...byPath.values()]);
}

/**
 * Depth-first, names sorted bytewise in each directory (what tar --sort=name produces): one sort
 * key per entry, '/' becoming NUL (below every byte a name can hold), so a bytewise comparison of
 * the keys orders by component, parents first.
 */
function sortByPath(entries: ManifestEntry[]): ManifestEntry[] {
  return sortBytewise(entries, (e) => e.path.replaceAll('/', '\0'));
}

/**
 * `items` sorted by the UTF-8 bytes of `key(item)` (a new array). JavaScript compares strings by
 * UTF-16 code units, which is the UTF-8 byte order as long as no key holds a code unit from
 * U+D800 on (surrogates sort below U+E000-U+FFFF in UTF-16 and above them in UTF-8): then the keys
 * are compared as strings (no Buffer per item), else as UTF-8 bytes.
 */
export function sortBytewise<T>(items: readonly T[], key: (item: T) => string): T[] {
  const keyed = items.map((e) => ({ e, k: key(e) }));
  if (keyed.some((x) => /[\uD800-\uFFFF]/.test(x.k))) {
    const b = keyed.map((x) => ({ e: x.e, k: Buffer.from(x.k) }));
    return b.sort((x, y) => Buffer.compare(x.k, y.k)).map((x) => x.e);
  }
  return keyed.sort((x, y) => (x.k < y.k ? -1 : x.k > y.k ? 1 : 0)).map((x) => x.e);
}

/** lstat-based check used by recipes when collecting files from a tree. */
export function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
