/**
 * Manifests of stored trees: what a store entry, a shared part or a cache entry held when it was
 * committed (path, type, mode, size, sha256 of every regular file, symlink targets), plus the
 * stat data (inode, mtime, ctime) that lets a no-op build check an entry cheaply.
 *
 *   ENTRY/manifest.json + ENTRY/out/     store entries and shared parts (the manifest is written
 *                                        inside the entry before the entry is renamed into place:
 *                                        an entry without a complete manifest is incomplete)
 *   DIR/kiln-manifest.json               content-keyed cache entries (the file itself is excluded)
 *
 * Checks:
 *   quickCheck   stat only (size, mtime, ctime, inode, mode; directory mtimes for added or
 *                removed names): the paths that may have changed. Nothing is read.
 *   verifyTree   every file hashed (worker threads, src/lib/digest.ts), every name compared:
 *                the list of differences, each naming its file. With `only`, just those paths.
 * A suspicious stat alone never condemns an entry: hashing decides, and a tree whose content
 * matches gets its stat data refreshed (hard links and chmod change ctime, copies change inodes).
 *
 * Deletion goes through `removeTree`: a rename into a trash directory on the same file system,
 * then the removal, so a kill never leaves a half-deleted entry where a complete one is expected.
 */
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, symlinkSync, utimesSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { rmrf, tmpSibling, writeFileAtomic, writeFileAtomicAsync } from './fsutil.js';

export const MANIFEST = 'manifest.json';
export const CACHE_MANIFEST = 'kiln-manifest.json';

export interface ManifestEntry {
  /** path relative to the tree, '/'-separated */
  p: string;
  /** f regular file, d directory, l symlink, o other (fifo, device) */
  t: 'f' | 'd' | 'l' | 'o';
  /** permission bits (mode & 0o7777) */
  m: number;
  /** size in bytes (files) */
  s?: number;
  /** sha256 (files) */
  h?: string;
  /** link target (symlinks) */
  l?: string;
  /** stat data for the cheap check: inode, mtime and ctime in ms */
  i?: number;
  mt?: number;
  ct?: number;
}

export interface Manifest {
  kiln: 'manifest';
  version: 1;
  files: number;
  bytes: number;
  entries: ManifestEntry[];
}

export interface Difference {
  path: string;
  problem: string;
}

const typeOf = (st: Stats): ManifestEntry['t'] => (st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'o');

/** All entries below `tree` with their lstat, sorted, directories before their contents. */
function scan(tree: string, exclude: Set<string>): Array<{ p: string; st: Stats }> {
  const out: Array<{ p: string; st: Stats }> = [{ p: '.', st: lstatSync(tree) }];
  if (!out[0]!.st.isDirectory()) throw new Error(`${tree} is not a directory`);
  const rec = (rel: string) => {
    for (const n of readdirSync(rel ? join(tree, rel) : tree).sort()) {
      const p = rel ? `${rel}/${n}` : n;
      if (!rel && exclude.has(n)) continue;
      const st = lstatSync(join(tree, p));
      out.push({ p, st });
      if (st.isDirectory()) rec(p);
    }
  };
  rec('');
  return out;
}

function entryOf(p: string, st: Stats, tree: string): ManifestEntry {
  const t = typeOf(st);
  const e: ManifestEntry = { p, t, m: st.mode & 0o7777 };
  if (t === 'f') e.s = st.size;
  if (t === 'l') e.l = readlinkSync(join(tree, p));
  if (t !== 'l') {
    e.i = st.ino;
    e.mt = st.mtimeMs;
    if (t !== 'd') e.ct = st.ctimeMs;
  }
  return e;
}

async function hashAll(tree: string, items: Array<{ p: string; st: Stats }>, threads?: number): Promise<Map<string, string>> {
  const files = items.filter((x) => x.st.isFile());
  const { digestFiles } = await import('./digest.js'); // worker threads: loaded when something is hashed, not by a no-op
  const hex = await digestFiles(
    files.map((x) => ({ path: join(tree, x.p), size: x.st.size })),
    'sha256',
    threads,
  );
  return new Map(files.map((x, k) => [x.p, hex[k]!]));
}

/** The manifest of a tree as it is now (every regular file hashed). */
export async function buildManifest(tree: string, exclude: string[] = [], threads?: number): Promise<Manifest> {
  const items = scan(tree, new Set(exclude));
  const hashes = await hashAll(tree, items, threads);
  let bytes = 0;
  const entries = items.map(({ p, st }) => {
    const e = entryOf(p, st, tree);
    if (e.t === 'f') {
      e.h = hashes.get(p)!;
      bytes += st.size;
    }
    return e;
  });
  return { kiln: 'manifest', version: 1, files: entries.filter((e) => e.t === 'f').length, bytes, entries };
}

export function writeManifest(path: string, m: Manifest): void {
  writeFileAtomic(path, JSON.stringify(m));
}

/** writeManifest with the fsync off the main thread (a build commits parts while others run). */
export function writeManifestAsync(path: string, m: Manifest): Promise<void> {
  return writeFileAtomicAsync(path, JSON.stringify(m));
}

/** The manifest at `path`, or null when it is missing or not a complete manifest. */
export function readManifest(path: string): Manifest | null {
  try {
    return parseManifest(readFileSync(path, 'utf8'));
  } catch {
    return null; /* missing: incomplete */
  }
}

/** A manifest's text parsed, or null when it is not a complete manifest (torn). */
export function parseManifest(text: string): Manifest | null {
  try {
    const m = JSON.parse(text) as Manifest;
    if (m && m.kiln === 'manifest' && m.version === 1 && Array.isArray(m.entries)) return m;
  } catch {
    /* torn: incomplete */
  }
  return null;
}

/**
 * Stat-only check: the paths whose stat data differ from the manifest (or that are missing, or
 * directories whose mtime changed: a name may have been added or removed). Reads no file.
 */
export function quickCheck(tree: string, m: Manifest): string[] {
  const suspicious: string[] = [];
  for (const e of m.entries) {
    let st: Stats;
    try {
      st = lstatSync(join(tree, e.p));
    } catch {
      suspicious.push(e.p);
      continue;
    }
    if (typeOf(st) !== e.t || (st.mode & 0o7777) !== e.m) suspicious.push(e.p);
    else if (e.t === 'f' && (st.size !== e.s || st.ino !== e.i || st.mtimeMs !== e.mt || st.ctimeMs !== e.ct)) suspicious.push(e.p);
    else if (e.t === 'd' && (st.ino !== e.i || st.mtimeMs !== e.mt)) suspicious.push(e.p);
  }
  return suspicious;
}

/** Root-level names a tree's manifest may omit (the cache manifest itself). */
export interface VerifyOptions {
  exclude?: string[];
  /** compare only these paths (from quickCheck); the whole tree otherwise */
  only?: string[];
  /** hashing threads (the part's share of -j); default: digestFiles' */
  threads?: number;
}

/**
 * Hash and compare. Returns the differences (empty: the tree is what the manifest says) and,
 * when there are none, the manifest with fresh stat data (or null when nothing changed).
 */
export async function verifyTree(tree: string, m: Manifest, opts: VerifyOptions = {}): Promise<{ diffs: Difference[]; refreshed: Manifest | null }> {
  const diffs: Difference[] = [];
  const byPath = new Map(m.entries.map((e) => [e.p, e]));
  let items: Array<{ p: string; st: Stats }>;
  try {
    if (opts.only) {
      items = [];
      const dirs = new Set<string>();
      for (const p of opts.only) {
        try {
          const st = lstatSync(join(tree, p));
          items.push({ p, st });
          if (st.isDirectory()) dirs.add(p);
        } catch {
          diffs.push({ path: p, problem: 'missing' });
        }
      }
      // a changed directory: compare its names with the manifest's
      for (const d of dirs) {
        const want = m.entries.filter((e) => e.p !== '.' && dirname(e.p) === d).map((e) => basename(e.p));
        const have = readdirSync(join(tree, d)).filter((n) => !(d === '.' && opts.exclude?.includes(n)));
        const at = (n: string) => (d === '.' ? n : `${d}/${n}`);
        for (const n of have) if (!want.includes(n)) diffs.push({ path: at(n), problem: 'not in the manifest (added)' });
        for (const n of want) if (!have.includes(n) && !opts.only.includes(at(n))) diffs.push({ path: at(n), problem: 'missing' });
      }
    } else items = scan(tree, new Set(opts.exclude ?? []));
  } catch {
    return { diffs: [{ path: '.', problem: 'the tree is missing' }], refreshed: null };
  }
  const seen = new Set<string>();
  const present: Array<{ p: string; st: Stats }> = [];
  for (const x of items) {
    seen.add(x.p);
    const e = byPath.get(x.p);
    if (!e) {
      diffs.push({ path: x.p, problem: 'not in the manifest (added)' });
      continue;
    }
    const t = typeOf(x.st);
    if (t !== e.t) diffs.push({ path: x.p, problem: `type changed (${e.t} -> ${t})` });
    else if ((x.st.mode & 0o7777) !== e.m) diffs.push({ path: x.p, problem: `mode changed (${e.m.toString(8)} -> ${(x.st.mode & 0o7777).toString(8)})` });
    else if (t === 'f' && x.st.size !== e.s) diffs.push({ path: x.p, problem: `size changed (${e.s} -> ${x.st.size} bytes)` });
    else if (t === 'l' && readlinkSync(join(tree, x.p)) !== e.l) diffs.push({ path: x.p, problem: `symlink target changed (${e.l} -> ${readlinkSync(join(tree, x.p))})` });
    else present.push(x);
  }
  if (!opts.only) for (const e of m.entries) if (!seen.has(e.p)) diffs.push({ path: e.p, problem: 'missing' });
  let hashes: Map<string, string>;
  try {
    hashes = await hashAll(tree, present, opts.threads);
  } catch (err) {
    diffs.push({ path: '.', problem: `unreadable: ${(err as Error).message}` });
    return { diffs, refreshed: null };
  }
  for (const x of present) {
    const e = byPath.get(x.p)!;
    if (e.t === 'f' && hashes.get(x.p) !== e.h) diffs.push({ path: x.p, problem: 'content differs (sha256)' });
  }
  if (diffs.length) return { diffs: diffs.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)), refreshed: null };
  // content matches: refresh stat data that moved (copies, hard links, chmod back and forth)
  let changed = false;
  const fresh = new Map(present.map((x) => [x.p, x.st]));
  const entries = m.entries.map((e) => {
    const st = fresh.get(e.p);
    if (!st || e.t === 'l') return e;
    const n = entryOf(e.p, st, tree);
    if (e.t === 'f') n.h = e.h;
    if (n.i !== e.i || n.mt !== e.mt || n.ct !== e.ct) changed = true;
    return n;
  });
  return { diffs: [], refreshed: changed ? { ...m, entries } : null };
}

/** "FILE: problem" lines, at most `max` of them. */
export function describe(diffs: Difference[], max = 10): string {
  const lines = diffs.slice(0, max).map((d) => `${d.path}: ${d.problem}`);
  if (diffs.length > max) lines.push(`... and ${diffs.length - max} more`);
  return lines.join('; ');
}

/**
 * Copy a tree as its manifest describes it (modes, mtimes, symlinks), e.g. onto another file
 * system. The copy's stat data differ (inodes, ctimes): verify it to refresh them.
 */
export function copyTree(from: string, to: string, m: Manifest): void {
  mkdirSync(to, { recursive: true });
  const dirs: ManifestEntry[] = [];
  for (const e of m.entries) {
    const src = join(from, e.p);
    const dst = join(to, e.p);
    if (e.t === 'd') {
      mkdirSync(dst, { recursive: true });
      dirs.push(e);
    } else if (e.t === 'l') symlinkSync(e.l!, dst);
    else if (e.t === 'f') {
      copyFileSync(src, dst);
      chmodSync(dst, e.m);
      const st = lstatSync(src);
      utimesSync(dst, st.atime, st.mtime);
    } else throw new Error(`cannot copy ${src}: not a file, directory or symlink`);
  }
  // directory modes and mtimes last (after their contents were written)
  for (const e of dirs.reverse()) {
    const st = lstatSync(join(from, e.p));
    chmodSync(join(to, e.p), e.m);
    utimesSync(join(to, e.p), st.atime, st.mtime);
  }
}

/**
 * Delete a file or tree crash-safely: rename it into `trashDir` (same file system) first, then
 * remove it. Killed in the middle, the path is either whole or gone; the trash is emptied at the
 * next start (emptyTrash).
 */
export async function removeTree(path: string, trashDir: string): Promise<void> {
  if (!existsSync(path) && !lstatOrNull(path)) return;
  mkdirSync(trashDir, { recursive: true });
  const dest = join(trashDir, basename(tmpSibling(path)));
  try {
    renameSync(path, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  await rmrf(dest);
}

export async function emptyTrash(trashDir: string): Promise<void> {
  if (existsSync(trashDir)) await rmrf(trashDir);
}

/**
 * Move a damaged entry out of the way (never handed out again), with a note saying why.
 * Returns where it went.
 */
export function quarantine(path: string, quarantineDir: string, label: string, diffs: Difference[]): string {
  mkdirSync(quarantineDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dest = join(quarantineDir, `${label}-${stamp}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  renameSync(path, dest);
  try {
    writeFileAtomic(`${dest}.why`, `${path}\n${diffs.map((d) => `${d.path}: ${d.problem}`).join('\n')}\n`);
  } catch {
    /* the note is a courtesy (the disk may be full) */
  }
  return dest;
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}
