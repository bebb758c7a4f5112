/**
 * On-disk state of a project's outputs.
 *
 *   out/parts/NAME -> ../.kiln/store/SIG/out   (symlink, swapped atomically)
 *   out/.kiln/store/SIG/manifest.json          what the entry held when committed (src/lib/manifest.ts)
 *   out/.kiln/store/SIG/out/                   complete outputs, content-addressed by part signature
 *   out/.kiln/tmp/                             staging and work dirs (wiped at start, under the lock)
 *   out/.kiln/trash/                           entries being deleted (emptied at every start)
 *   out/.kiln/quarantine/                      entries that failed verification (kept for inspection)
 *   out/.kiln/state.json                       what was built, for `plan` explanations and uninstall
 *   out/.kiln/lock                             one build at a time per out/ directory
 *
 * A store entry appears only by rename of a finished staging entry whose manifest was written
 * inside it first; an entry without a complete manifest is incomplete by definition and never
 * handed out. A location only changes by rename of a new symlink over the old one, and an entry
 * is deleted by renaming it into the trash first: a kill at any moment leaves the previous good
 * output or the new complete one, never a partial one. Entries are verified against their
 * manifest: by stat on up-to-date parts, by hash when restored or shared. Shared parts
 * (shared = true) live in the shared directory (SHARED/NAME/SIG32/{manifest.json,out}) and are
 * reused across projects; they have their own .trash and .quarantine there (same file system).
 */
import { existsSync, mkdirSync, readFileSync, readlinkSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, type Stats } from 'node:fs';
import { rename } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { lstatOrNull, rmrf, tmpSibling, writeFileAtomic } from '../lib/fsutil.js';
import type { StatCache } from '../lib/hash.js';
import { MANIFEST, buildManifest, parseManifest, copyTree, emptyTrash, quarantine, quickCheck, readManifest, removeTree, verifyTree, writeManifest, writeManifestAsync, type Difference, type Manifest } from '../lib/manifest.js';
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

/**
 * The state file parsed, or undefined (missing, unreadable, another version). With `keep` (a
 * caller that only reads it: the CLI's early read of the stat cache) the parse is kept for the next
 * read of the same unchanged file (same inode, size, mtime, ctime: the state is only ever replaced
 * by a rename), so the build's read under the lock does not parse a large state again. A kept
 * parse is handed out once more, then forgotten.
 */
export function readStateFile(path: string, keep = false): State | undefined {
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    return undefined;
  }
  const stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  if (lastState && lastState.path === path && lastState.stamp === stamp) {
    const s = lastState.state;
    lastState = undefined;
    return s;
  }
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as State;
    if (s.version === STATE_VERSION && s.parts) {
      lastState = keep ? { path, stamp, state: s } : undefined;
      return s;
    }
  } catch {
    /* torn or not JSON */
  }
  return undefined;
}
let lastState: { path: string; stamp: string; state: State } | undefined;

export interface Staging {
  /** the part's output directory (ctx.staging) */
  staging: string;
  work: string;
  /** the entry being assembled: ENTRY/out is `staging`, ENTRY/manifest.json is written at commit */
  entry: string;
  /** everything of this build attempt (removed afterwards) */
  base: string;
}

export class Store {
  constructor(private project: Project) {}

  get statePath(): string {
    return join(this.project.kilnDir, 'state.json');
  }
  get tmpDir(): string {
    return join(this.project.kilnDir, 'tmp');
  }
  get trashDir(): string {
    return join(this.project.kilnDir, 'trash');
  }
  get quarantineDir(): string {
    return join(this.project.kilnDir, 'quarantine');
  }

  loadState(): State {
    // no state yet, or unreadable: start afresh (outputs are still found by signature)
    const s = readStateFile(this.statePath);
    if (s) return { ...s, statCache: s.statCache ?? {} };
    return { version: STATE_VERSION, parts: {}, statCache: {} };
  }

  saveState(state: State): void {
    writeFileAtomic(this.statePath, JSON.stringify(state));
  }

  /** The entry directory: manifest.json and out/. */
  entryPath(part: Part): string {
    return part.shared ? dirname(part.location) : join(this.project.storeDir, part.signature);
  }

  /** The output tree of the part's entry (what its location points at). */
  storePath(part: Part): string {
    return part.shared ? part.location : join(this.entryPath(part), 'out');
  }

  private trashFor(part: Part): string {
    return part.shared ? join(this.project.sharedDir, '.trash') : this.trashDir;
  }
  quarantineFor(part: Part): string {
    return part.shared ? join(this.project.sharedDir, '.quarantine') : this.quarantineDir;
  }

  /** True when the part's location points at its entry for the current signature (stat check not included). */
  isLinked(part: Part): boolean {
    if (part.shared) return this.hasEntry(part);
    try {
      return resolve(dirname(part.location), readlinkSync(part.location)) === this.storePath(part) && this.hasEntry(part);
    } catch {
      return false;
    }
  }

  /**
   * isLinked and the entry's manifest in one read (plan's check of every part): undefined when
   * not linked or there is no manifest file; `manifest` null when the file is there but torn.
   */
  linkedEntry(part: Part): { manifest: Manifest | null } | undefined {
    if (!part.shared) {
      try {
        if (resolve(dirname(part.location), readlinkSync(part.location)) !== this.storePath(part)) return undefined;
      } catch {
        return undefined;
      }
    }
    let text: string;
    try {
      text = readFileSync(join(this.entryPath(part), MANIFEST), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || code === 'ENOTDIR' ? undefined : { manifest: null };
    }
    return { manifest: parseManifest(text) };
  }

  /** check() against a manifest already read (linkedEntry). */
  async checkManifest(part: Part, m: Manifest | null, mode: 'quick' | 'full', refresh = false): Promise<Difference[]> {
    return checkAgainst(this.entryPath(part), m, mode, refresh);
  }

  /** A complete entry (with its manifest) exists for the signature. */
  hasEntry(part: Part): boolean {
    return existsSync(join(this.entryPath(part), MANIFEST));
  }

  /** Something (complete or not) is at the entry's path. */
  entryExists(part: Part): boolean {
    return lstatOrNull(this.entryPath(part)) !== null;
  }

  /**
   * The entry's differences from its manifest: 'quick' by stat (hashing only what looks changed),
   * 'full' by hashing everything. With refresh, stat data that moved without a content change
   * are written back to the manifest (call with the lock held).
   */
  async check(part: Part, mode: 'quick' | 'full', refresh = false, threads?: number): Promise<Difference[]> {
    return checkEntry(this.entryPath(part), mode, refresh, threads);
  }

  /** Move a damaged or incomplete entry to the quarantine; returns its new path. */
  quarantine(part: Part, diffs: Difference[]): string {
    return quarantine(this.entryPath(part), this.quarantineFor(part), `${part.name}-${part.signature.slice(0, 16)}`, diffs);
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
  newStaging(part: Part): Staging {
    const base = join(this.tmpDir, `${part.name}-${part.signature.slice(0, 12)}-${process.pid}-${Date.now().toString(36)}`);
    const entry = join(base, 'entry');
    const staging = join(entry, 'out');
    const work = join(base, 'work');
    // one mkdir each (a recursive mkdir of a new path tries the deepest name first: twice the calls)
    this.inDir(this.tmpDir, () => mkdirSync(base));
    mkdirSync(entry);
    mkdirSync(staging);
    mkdirSync(work);
    return { staging, work, entry, base };
  }

  /**
   * Write the manifest into the finished entry, then move the entry into the store (atomic
   * rename; across file systems a copy into a temporary directory there, then a rename), then
   * point the location at it. `expect` sees the manifest before anything is written and throws
   * to refuse the entry (a remote-cache restore checks it against the action result).
   */
  async commit(part: Part, st: Staging, expect?: (m: Manifest) => void, threads?: number): Promise<void> {
    const m = await buildManifest(st.staging, [], threads);
    expect?.(m);
    await writeManifestAsync(join(st.entry, MANIFEST), m);
    const dest = this.entryPath(part);
    if (this.entryExists(part)) {
      // built concurrently by another project sharing the entry: keep theirs if it is sound
      if ((await this.check(part, 'full', true, threads)).length === 0) {
        await rmrf(st.entry);
        if (!part.shared) this.link(part);
        return;
      }
      await removeTree(dest, this.trashFor(part));
    }
    try {
      // (the store directory made once a run, again when it was removed meanwhile: inDir)
      this.inDir(dirname(dest), () => renameSync(st.entry, dest));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EXDEV') {
        // another file system (e.g. --cache elsewhere): copy next to the destination, verify, rename
        const tmp = tmpSibling(dest);
        try {
          copyTree(st.staging, join(tmp, 'out'), m);
          const { diffs, refreshed } = await verifyTree(join(tmp, 'out'), m, { threads });
          if (diffs.length) throw new KilnError(`[${part.name}] the copy of its output to ${dest} differs: ${diffs[0]!.path}: ${diffs[0]!.problem}`);
          writeManifest(join(tmp, MANIFEST), refreshed ?? m);
          await rename(tmp, dest);
        } finally {
          await rmrf(tmp);
        }
      } else if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await this.check(part, 'full', true)).length === 0) {
        await rmrf(st.entry);
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
    if (!st) {
      // a first link: created in one step (a symlink appears whole or not at all)
      try {
        this.inDir(dirname(part.location), () => symlinkSync(target, part.location));
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // appeared meanwhile: replaced atomically below (the check above runs again next time)
      }
    }
    const tmp = tmpSibling(part.location);
    this.inDir(dirname(part.location), () => symlinkSync(target, tmp));
    try {
      renameSync(tmp, part.location);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Run `op`, which creates a name in `dir`: the directory is created first only when this
   * process has not yet seen it (a build of N parts makes N links and N entries in a few
   * directories: no mkdir + stat for each), or when `op` finds it missing (ENOENT), then once more.
   */
  private inDir<T>(dir: string, op: () => T): T {
    if (!this.knownDirs.has(dir)) {
      mkdirSync(dir, { recursive: true });
      this.knownDirs.add(dir);
      return op();
    }
    try {
      return op();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(dir, { recursive: true });
      return op();
    }
  }
  private readonly knownDirs = new Set<string>();

  /** Remove a part's location link (uninstall) if it is ours. */
  unlinkLocation(location: string): void {
    const st = lstatOrNull(location);
    if (st?.isSymbolicLink()) unlinkSync(location);
  }

  /** Store entries (signatures) present. */
  entries(): string[] {
    try {
      return readdirSync(this.project.storeDir).sort();
    } catch {
      return [];
    }
  }

  /** Remove store entries not in `keep` (each renamed into the trash first). */
  async prune(keep: Set<string>): Promise<void> {
    for (const n of this.entries().filter((n) => !keep.has(n))) await removeTree(join(this.project.storeDir, n), this.trashDir);
  }

  /** Remove what killed runs left in the trash (call with the lock held). */
  async emptyTrash(): Promise<void> {
    // the shared directory's trash too (only ever holds what is being deleted)
    for (const dir of [this.trashDir, join(this.project.sharedDir, '.trash')]) {
      try {
        await emptyTrash(dir);
      } catch (e) {
        // e.g. a process of a killed run still writing there: retried at the next start
        process.stderr.write(`kiln: warning: could not empty ${dir}: ${(e as Error).message}\n`);
      }
    }
  }

  /** Clear leftovers of interrupted builds (call with the lock held): renamed away, then removed. */
  async cleanTmp(): Promise<void> {
    if (existsSync(this.tmpDir) && readdirSync(this.tmpDir).length === 0) return;
    await removeTree(this.tmpDir, this.trashDir).catch((e: Error) => process.stderr.write(`kiln: warning: could not remove ${this.tmpDir}: ${e.message}\n`));
    mkdirSync(this.tmpDir, { recursive: true });
  }
}

/** Differences of ENTRY/out from ENTRY/manifest.json (see Store.check). */
export async function checkEntry(entry: string, mode: 'quick' | 'full', refresh = false, threads?: number): Promise<Difference[]> {
  return checkAgainst(entry, readManifest(join(entry, MANIFEST)), mode, refresh, threads);
}

async function checkAgainst(entry: string, m: Manifest | null, mode: 'quick' | 'full', refresh = false, threads?: number): Promise<Difference[]> {
  if (!m) return [{ path: MANIFEST, problem: existsSync(entry) ? 'missing or incomplete (the entry is incomplete)' : 'the entry is missing' }];
  const tree = join(entry, 'out');
  let only: string[] | undefined;
  if (mode === 'quick') {
    only = quickCheck(tree, m);
    if (only.length === 0) return [];
  }
  const { diffs, refreshed } = await verifyTree(tree, m, { only, threads });
  if (refresh && refreshed) {
    try {
      writeManifest(join(entry, MANIFEST), refreshed);
    } catch {
      /* only a cache of stat data: the next check hashes again */
    }
  }
  return diffs;
}

