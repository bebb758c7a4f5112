/**
 * A content-keyed directory cache shared by projects (CACHE/NAMESPACE/KEY/): an entry is built
 * once into a temporary sibling and renamed into place, so a reader sees a complete entry or
 * none. One builder per key at a time: other builders in this process await the same promise,
 * other processes wait on a lock file (taken over when its owner died).
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Lock } from '../engine/store.js';
import { rmrf, tmpSibling } from './fsutil.js';

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
}

const building = new Map<string, Promise<CacheEntry>>();

/** The entry root/key, built with opts.build unless it exists already. */
export function cachedDir(root: string, key: string, opts: CachedDirOptions): Promise<CacheEntry> {
  if (!/^[A-Za-z0-9._-]+$/.test(key)) throw new Error(`cache key must be a file name: ${key}`);
  const dir = join(root, key);
  const complete = opts.complete ?? existsSync;
  if (complete(dir)) return Promise.resolve({ dir, hit: true });
  const pending = building.get(dir);
  if (pending) return pending.then((e) => ({ ...e, hit: true }));
  const p = (async (): Promise<CacheEntry> => {
    mkdirSync(root, { recursive: true });
    const lock = new Lock(`${dir}.lock`);
    await lock.acquire(true, (pid) => opts.log?.(`# waiting for process ${pid}, which is building ${dir}\n`));
    try {
      if (complete(dir)) return { dir, hit: true };
      const tmp = tmpSibling(dir);
      mkdirSync(tmp, { recursive: true });
      try {
        await opts.build(tmp);
        if (existsSync(dir)) await rmrf(dir); // an incomplete leftover (we hold the lock)
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
