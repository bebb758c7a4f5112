/**
 * On-disk state of a project's outputs.
 *
 *   out/parts/NAME -> ../.kiln/store/SIG   (symlink, swapped atomically)
 *   out/.kiln/store/SIG/                   complete outputs, content-addressed by part signature
 *   out/.kiln/tmp/                         staging and work dirs (wiped at start, under the lock)
 *   out/.kiln/state.json                   what was built, for `plan` explanations and uninstall
 *   out/.kiln/lock                         one build at a time per out/ directory
 *
 * A store entry appears only by rename of a finished staging dir, and a location only changes
 * by rename of a new symlink over the old one: a kill at any moment leaves the previous good
 * output or the new complete one, never a partial one. Shared parts (shared = true) live in
 * the shared directory at a path derived from their signature and are reused across projects.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, readdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { ExitCode, KilnError } from '../lib/errors.js';
import { lstatOrNull, processAlive, rmrf, tmpSibling, writeFileAtomic } from '../lib/fsutil.js';
import type { StatCache } from './hash.js';
import type { Part, Project, SignatureParts } from './project.js';

export interface PartState {
  signature: string;
  kind: string;
  location: string;
  shared: boolean;
  sig: SignatureParts;
  /** store signatures kept for this part, newest first */
  kept: string[];
  builtAt: string;
  seconds: number;
}

export interface State {
  version: 1;
  parts: Record<string, PartState>;
  statCache: StatCache;
}

const STATE_VERSION = 1;

export class Store {
  constructor(private project: Project) {}

  get statePath(): string {
    return join(this.project.kilnDir, 'state.json');
  }
  get tmpDir(): string {
    return join(this.project.kilnDir, 'tmp');
  }

  loadState(): State {
    try {
      const s = JSON.parse(readFileSync(this.statePath, 'utf8')) as State;
      if (s.version === STATE_VERSION && s.parts) return { ...s, statCache: s.statCache ?? {} };
    } catch {
      /* no state yet, or unreadable: start afresh (outputs are still found by signature) */
    }
    return { version: STATE_VERSION, parts: {}, statCache: {} };
  }

  saveState(state: State): void {
    writeFileAtomic(this.statePath, JSON.stringify(state));
  }

  storePath(part: Part): string {
    return part.shared ? part.location : join(this.project.storeDir, part.signature);
  }

  /** True when the part's location already holds the output for its current signature. */
  isUpToDate(part: Part): boolean {
    if (part.shared) return existsSync(part.location);
    try {
      return resolve(dirname(part.location), readlinkSync(part.location)) === this.storePath(part) && existsSync(this.storePath(part));
    } catch {
      return false;
    }
  }

  /** A complete store entry exists for the signature (built earlier, maybe under another link). */
  hasEntry(part: Part): boolean {
    return existsSync(this.storePath(part));
  }

  /** The previous good output at the part's location, if any. */
  previous(part: Part): string | undefined {
    if (part.shared) return undefined;
    try {
      const t = resolve(dirname(part.location), readlinkSync(part.location));
      return existsSync(t) ? t : undefined;
    } catch {
      return undefined;
    }
  }

  /** Fresh staging and work directories for a build of `part`. */
  newStaging(part: Part): { staging: string; work: string } {
    const base = join(this.tmpDir, `${part.name}-${part.signature.slice(0, 12)}-${process.pid}-${Date.now().toString(36)}`);
    const staging = join(base, 'staging');
    const work = join(base, 'work');
    mkdirSync(base, { recursive: true }); // one mkdir when tmp/ exists
    mkdirSync(staging);
    mkdirSync(work);
    return { staging, work };
  }

  /** mkdir -p, once per directory and Store (the store and parts directories, per committed part). */
  private made = new Set<string>();
  private ensureDir(dir: string): void {
    if (this.made.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    this.made.add(dir);
  }

  /** Move a finished staging dir into the store (atomic), then point the location at it. */
  async commit(part: Part, staging: string): Promise<void> {
    const dest = this.storePath(part);
    this.ensureDir(dirname(dest));
    try {
      await rename(staging, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(dest)) {
        // built concurrently by another project sharing the entry: keep theirs
        await rmrf(staging);
      } else throw e;
    }
    if (!part.shared) this.link(part);
  }

  /** Point part.location at its store entry, atomically replacing the old link. */
  link(part: Part): void {
    const target = relative(dirname(part.location), this.storePath(part));
    const st = lstatOrNull(part.location);
    if (st && !st.isSymbolicLink()) {
      throw new KilnError(
        `[${part.name}] refusing to replace ${part.location}: it is not a kiln output link (move it away, or set another location)`,
      );
    }
    this.ensureDir(dirname(part.location));
    if (!st) {
      // no link yet: creating the symlink is atomic by itself (one directory entry, no rename)
      try {
        symlinkSync(target, part.location);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // appeared meanwhile: swap it
      }
    }
    const tmp = tmpSibling(part.location);
    symlinkSync(target, tmp);
    try {
      renameSync(tmp, part.location);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Remove a part's location link (uninstall) if it is ours. */
  unlinkLocation(location: string): void {
    const st = lstatOrNull(location);
    if (st?.isSymbolicLink()) unlinkSync(location);
  }

  /** Remove store entries not in `keep`. */
  async prune(keep: Set<string>): Promise<void> {
    let names: string[] = [];
    try {
      names = readdirSync(this.project.storeDir);
    } catch {
      return;
    }
    await Promise.all(names.filter((n) => !keep.has(n)).map((n) => rmrf(join(this.project.storeDir, n))));
  }

  /** Clear leftovers of interrupted builds (call with the lock held). */
  async cleanTmp(): Promise<void> {
    await rmrf(this.tmpDir);
    mkdirSync(this.tmpDir, { recursive: true });
  }
}

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

