/**
 * The build lock: one kiln build per out/ directory at a time (a file holding the holder's pid,
 * created with O_EXCL; a lock whose holder is dead, or which stayed empty past a grace period,
 * is taken over by renaming it away so that only one contender wins).
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ExitCode, KilnError } from './errors.js';
import { lstatOrNull, processAlive, tmpSibling } from './fsutil.js';

/** One build per out/ directory at a time. A lock left by a dead process is taken over. */
export class Lock {
  /** how long an empty lock file counts as being written (not stale) */
  static EMPTY_GRACE_MS = 5000;
  private held = false;
  constructor(private path: string) {}

  private tryAcquire(): number | null {
    mkdirSync(dirname(this.path), { recursive: true });
    try {
      const fd = openSync(this.path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      this.held = true;
      return null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') {
        rmSync(this.path, { force: true });
        throw new KilnError(`no space left on device while writing ${this.path}`);
      }
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let pid = NaN;
    let text = '';
    try {
      text = readFileSync(this.path, 'utf8');
      pid = parseInt(text, 10);
    } catch {
      return -1; // being written right now
    }
    if (Number.isFinite(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) return pid;
    // empty: another kiln created it and is about to write its pid (open, then write); stale
    // only once it has stayed empty for a while
    if (text.trim() === '' && Date.now() - (lstatOrNull(this.path)?.mtimeMs ?? 0) < Lock.EMPTY_GRACE_MS) return -1;
    // stale: take over by renaming it away (only one contender wins the rename)
    try {
      const stale = tmpSibling(this.path);
      renameSync(this.path, stale);
      rmSync(stale, { force: true });
    } catch {
      /* someone else took it over first */
    }
    return -1;
  }

  async acquire(wait: boolean, onWait?: (pid: number) => void): Promise<void> {
    let told = false;
    for (;;) {
      const holder = this.tryAcquire();
      if (holder === null) return;
      if (holder > 0) {
        if (!wait) throw new KilnError(`another kiln build (pid ${holder}) is using ${dirname(dirname(this.path))}; retry later or drop --no-wait`, ExitCode.LOCKED);
        if (!told) onWait?.(holder);
        told = true;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    try {
      if (parseInt(readFileSync(this.path, 'utf8'), 10) === process.pid) unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

