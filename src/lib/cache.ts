/**
 * A content-keyed directory cache shared by projects (CACHE/NAMESPACE/KEY/): an entry is built
 * once into a temporary sibling and renamed into place, so a reader sees a complete entry or
 * none. One builder per key at a time: other builders in this process await the same promise,
 * other processes wait on a lock file (taken over when its owner died).
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CACHE_MANIFEST, buildManifest, describe, quarantine, readManifest, removeTree, verifyTree, writeManifest } from './manifest.js';
import { Lock } from './lock.js';
import { rmrf, tmpSibling } from './fsutil.js';

/** kiln's cache directory when none is given: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln. */
export function defaultCacheDir(): string {
  return process.env.KILN_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'kiln');
}

export interface CacheEntry {
  dir: string;
  /** true when the entry existed (nothing was built) */
  hit: boolean;
}

export interface CachedDirOptions {
  /** whether an existing directory is a complete entry (default: it exists) */
  complete?: (dir: string) => boolean;
  /** fill the (empty, temporary) directory */
  build: (tmp: string) => Promise<void>;
  log?: (text: string) => void;
  /**
   * keep a manifest (DIR/kiln-manifest.json, written before the rename) and hash the entry
   * against it on every hit: a damaged entry is quarantined (ROOT/.quarantine) and rebuilt
   */
  manifest?: boolean;
}

const building = new Map<string, Promise<CacheEntry>>();

/** The entry root/key, built with opts.build unless it exists already (and, with manifest, verifies). */
export function cachedDir(root: string, key: string, opts: CachedDirOptions): Promise<CacheEntry> {
  if (!/^[A-Za-z0-9._-]+$/.test(key)) throw new Error(`cache key must be a file name: ${key}`);
  const dir = join(root, key);
  const complete = (d: string) => (opts.complete ?? existsSync)(d) && (!opts.manifest || readManifest(join(d, CACHE_MANIFEST)) !== null);
  if (!opts.manifest && complete(dir)) return Promise.resolve({ dir, hit: true });
  const pending = building.get(dir);
  if (pending) return pending.then((e) => ({ ...e, hit: true }));
  /** complete and (with manifest) hashing to it; a damaged entry is quarantined when `fix` (lock held) */
  const sound = async (fix: boolean): Promise<boolean> => {
    if (!complete(dir)) return false;
    if (!opts.manifest) return true;
    const { diffs, refreshed } = await verifyTree(dir, readManifest(join(dir, CACHE_MANIFEST))!, { exclude: [CACHE_MANIFEST] });
    if (diffs.length === 0) {
      if (refreshed && fix) {
        try {
          writeManifest(join(dir, CACHE_MANIFEST), refreshed);
        } catch {
          /* stat data only */
        }
      }
      return true;
    }
    if (fix) {
      const q = quarantine(dir, join(root, '.quarantine'), key, diffs);
      opts.log?.(`# cache entry ${dir} differs from its manifest (${describe(diffs, 5)}): quarantined in ${q}, rebuilding\n`);
      process.stderr.write(`kiln: warning: cache entry ${dir} was damaged (${describe(diffs, 3)}); quarantined in ${q}\n`);
    }
    return false;
  };
  const p = (async (): Promise<CacheEntry> => {
    if (await sound(false)) return { dir, hit: true };
    mkdirSync(root, { recursive: true });
    const lock = new Lock(`${dir}.lock`);
    await lock.acquire(true, (pid) => opts.log?.(`# waiting for process ${pid}, which is building ${dir}\n`));
    try {
      if (await sound(true)) return { dir, hit: true };
      const tmp = tmpSibling(dir);
      mkdirSync(tmp, { recursive: true });
      try {
        await opts.build(tmp);
        if (opts.manifest) writeManifest(join(tmp, CACHE_MANIFEST), await buildManifest(tmp, [CACHE_MANIFEST]));
        if (existsSync(dir)) await removeTree(dir, join(root, '.trash')); // an incomplete leftover (we hold the lock)
        renameSync(tmp, dir);
      } finally {
        await rmrf(tmp);
      }
      return { dir, hit: false };
    } finally {
      lock.release();
    }
  })();
  building.set(dir, p);
  const forget = () => building.delete(dir);
  p.then(forget, forget);
  return p;
}
