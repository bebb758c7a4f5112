/** File-system helpers: atomic writes and renames, recursive removal, directory walks. */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync, mkdirSync, readdirSync, lstatSync, type Stats } from 'node:fs';
import { rename, rm, mkdir, cp, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';

let counter = 0;
/** A unique temporary sibling name for `path`. */
export function tmpSibling(path: string): string {
  return `${path}.tmp-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
}

/**
 * Write a file atomically: temp file in the same directory, fsync, rename. `durable: false` skips
 * the fsync for records whose loss in a power failure is harmless (readers never see a partial
 * file either way: the rename is atomic).
 */
export function writeFileAtomic(path: string, data: string | Buffer, opts: { durable?: boolean } = {}): void {
  const tmp = tmpSibling(path);
  try {
    try {
      writeFileSync(tmp, data);
    } catch (e) {
      // the directory is made only when it is missing (no mkdir + stat for every file written)
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(tmp, data);
    }
    if (opts.durable !== false) {
      const fd = openSync(tmp, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * writeFileAtomic with the write and the fsync on libuv's thread pool: the same guarantee (the
 * data is on disk before the rename makes it visible), without blocking the main thread for the
 * fsync (10-20 ms on these disks under load; kiln's build loop spawns the next commands meanwhile).
 */
export async function writeFileAtomicAsync(path: string, data: string | Buffer): Promise<void> {
  const tmp = tmpSibling(path);
  try {
    const fh = await open(tmp, 'w').catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
      await mkdir(dirname(path), { recursive: true }); // only when the directory is missing
      return open(tmp, 'w');
    });
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export async function rmrf(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

export async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
}

/** Move a file or directory; falls back to copy+remove across file systems. */
export async function move(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    const tmp = tmpSibling(to);
    await cp(from, tmp, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    await rename(tmp, to);
    await rmrf(from);
  }
}

export function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** All entries below dir (relative paths, sorted), directories included, symlinks not followed. */
export function walk(dir: string): string[] {
  const out: string[] = [];
  const rec = (rel: string) => {
    const names = readdirSync(join(dir, rel)).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      out.push(r);
      const st = lstatSync(join(dir, r));
      if (st.isDirectory()) rec(r);
    }
  };
  rec('');
  return out;
}

/** True while a process with this pid exists (also when it belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
