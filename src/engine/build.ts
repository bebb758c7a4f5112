/**
 * Planning and building: which parts are out of date and why, and the parallel scheduler
 * that builds them (dependencies first, -j N at once, a failure stops its dependants).
 */
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, statfsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../lib/exec.js';
import { ExitCode, KilnError } from '../lib/errors.js';
import { rmrf } from '../lib/fsutil.js';
import { requireTool } from '../lib/tools.js';
import type { BuildContext } from '../kind.js';
import type { Reporter } from './events.js';
import { planContext, type Part, type Project, type SignatureParts } from './project.js';
import { describe } from '../lib/manifest.js';
import { StateWriter } from './state-writer.js';
import { Scheduler, runSchedule } from './scheduler.js';
import { Lock } from '../lib/lock.js';
import { Store, type PartState, type Staging, type State } from './store.js';
import type { RemoteCache } from '../remote/cache.js';
import type { FarmCoordinator } from '../farm/coordinator.js';

import type { PlanEntry, PlanStatus } from './plan-entry.js';
export type { PlanEntry, PlanStatus } from './plan-entry.js';

const short = (v: string | undefined) => {
  if (v === undefined) return '(unset)';
  const s = v.replace(/\n/g, '\\n');
  return s.length > 60 ? JSON.stringify(s.slice(0, 57) + '...') : JSON.stringify(s);
};

/** Why a part's signature differs from the last build recorded in the state. */
export function explain(part: Part, prev: PartState | undefined, rebuilt: Set<string>): string[] {
  if (!prev) return ['never built'];
  const a: SignatureParts = prev.sig;
  const b = part.sigParts;
  const why: string[] = [];
  if (a.recipe !== b.recipe) why.push(`recipe changed: ${a.recipe} -> ${b.recipe}`);
  else if (a.version !== b.version) why.push(`recipe ${b.recipe} version changed: ${a.version} -> ${b.version}`);
  const keys = new Set([...Object.keys(a.options), ...Object.keys(b.options)]);
  for (const k of [...keys].sort()) {
    if (a.options[k] !== b.options[k]) why.push(`option '${k}' changed: ${short(a.options[k])} -> ${short(b.options[k])}`);
  }
  const ins = new Set([...Object.keys(a.inputs), ...Object.keys(b.inputs)]);
  for (const k of [...ins].sort()) if (a.inputs[k] !== b.inputs[k]) why.push(`input ${k} changed`);
  const ds = new Set([...Object.keys(a.deps), ...Object.keys(b.deps)]);
  for (const d of [...ds].sort()) {
    if (a.deps[d] !== b.deps[d]) why.push(rebuilt.has(d) ? `dependency '${d}' is rebuilt` : `dependency '${d}' changed`);
  }
  if (a.sourceDateEpoch !== b.sourceDateEpoch) why.push(`SOURCE_DATE_EPOCH changed: ${a.sourceDateEpoch} -> ${b.sourceDateEpoch}`);
  if (why.length === 0) why.push(prev.signature === part.signature ? 'output missing' : 'signature changed');
  return why;
}

/**
 * What a build would do, and why. Up-to-date parts get the cheap check (stat against the
 * manifest; only files whose stat data moved are hashed): a changed entry is rebuilt, with the
 * file named. Restores (and shared parts first used by this project) are hashed fully when built.
 * `refresh` writes moved stat data of unchanged files back to manifests (builds, under the lock).
 */
export async function plan(project: Project, targets?: string[], opts: { refresh?: boolean; state?: State } = {}): Promise<PlanEntry[]> {
  const store = new Store(project);
  const state = opts.state ?? store.loadState();
  const rebuilt = new Set<string>();
  const out: PlanEntry[] = [];
  for (const name of project.closure(targets)) {
    const part = project.parts.get(name)!;
    let status: PlanStatus;
    let reasons: string[];
    const linked = store.linkedEntry(part); // a readlink and the manifest's read: once per part
    if (linked && part.shared && state.parts[name]?.signature !== part.signature) {
      status = 'restore';
      reasons = ['shared part built elsewhere: verified (hashed) before use'];
    } else if (linked) {
      const diffs = await store.checkManifest(part, linked.manifest, 'quick', opts.refresh);
      if (diffs.length === 0) {
        status = 'up-to-date';
        reasons = [];
      } else {
        status = 'build';
        rebuilt.add(name);
        reasons = [`its store entry differs from its manifest (${describe(diffs, 3)}): quarantined and rebuilt`];
      }
    } else if (store.hasEntry(part)) {
      status = 'restore';
      reasons = ['output for this signature is in the store (verified before use)'];
    } else {
      status = 'build';
      rebuilt.add(name);
      reasons = explain(part, state.parts[name], rebuilt);
      if (store.entryExists(part)) reasons.push('an incomplete store entry for this signature (no manifest) is quarantined');
    }
    out.push({ part: name, kind: part.recipe.kind, status, reasons });
  }
  return out;
}

/** A clear message for a full disk (ENOSPC from any write: log, staging, manifest, store, cache). */
export function noSpace(e: unknown, what: string): KilnError | undefined {
  const err = e as NodeJS.ErrnoException;
  if (err?.code !== 'ENOSPC') return undefined;
  return new KilnError(`no space left on device while writing ${err.path ?? what}`);
}

/** True when the file system holding `path` has no block left for us (a command's writes failed). */
function diskFull(path: string): boolean {
  try {
    const s = statfsSync(path);
    return s.bavail === 0 || s.bavail * s.bsize < 4096;
  } catch {
    return false;
  }
}

export interface BuildOptions {
  targets?: string[];
  jobs: number;
  keepGoing: boolean;
  reporter: Reporter;
  /** wait for another build holding the lock (default) or fail */
  wait: boolean;
  signal?: AbortSignal;
  /** remote cache (--remote-cache): tried after the local store and shared parts, before building */
  remote?: RemoteCache;
  /** build farm (--farm): parts to build become jobs for workers (src/farm) */
  farm?: FarmCoordinator;
}

export interface BuildResult {
  ok: boolean;
  built: string[];
  cached: string[];
  failed: Array<{ part: string; error: Error }>;
  skipped: string[];
  exitCode: number;
}

export async function build(project: Project, statCacheUsed: Record<string, { k: string; h: string }>, opts: BuildOptions): Promise<BuildResult> {
  const t0 = Date.now();
  const store = new Store(project);
  const lock = new Lock(join(project.kilnDir, 'lock'));
  await lock.acquire(opts.wait, (pid) => opts.reporter.event({ type: 'waiting-for-lock', pid }));
  const res: BuildResult = { ok: true, built: [], cached: [], failed: [], skipped: [], exitCode: ExitCode.OK };
  let stateWriter: StateWriter | undefined;
  try {
    const state = store.loadState();
    const names = project.closure(opts.targets);
    await store.emptyTrash(); // what a killed prune, clean or uninstall was deleting
    const planned = await plan(project, opts.targets, { refresh: true, state }); // the state parsed once (5,000 parts: 4 MB)
    if (opts.remote) await opts.remote.annotate(planned);
    if (opts.farm) await opts.farm.prepare(planned);
    const status = new Map(planned.map((e) => [e.part, e]));
    const toBuild = planned.filter((e) => e.status === 'build').length;
    // fail before building anything when a host tool a part needs is missing
    for (const e of planned) {
      if (e.status !== 'build' || (opts.farm && !opts.farm.isLocal(e.part))) continue; // farm workers check their own tools
      const part = project.parts.get(e.part)!;
      const planCtx = planContext(project, part);
      // a clean-room part runs its tools in the chroot: the host needs docker only
      const inChroot = part.recipe.cleanRoom && part.options.get('chroot')?.trim();
      for (const tool of inChroot ? ['docker'] : (part.recipe.tools?.(planCtx) ?? [])) requireTool(tool, part.name);
    }
    opts.reporter.event({ type: 'start', parts: names.length, toBuild, jobs: opts.jobs });
    if (toBuild > 0 || planned.some((e) => e.status === 'restore')) await store.cleanTmp();
    mkdirSync(project.logsDir, { recursive: true });

    const ac = new AbortController();
    const onAbort = () => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });


    const record = (part: Part, seconds: number) => {
      const prevState = state.parts[part.name];
      const kept = [part.signature, ...(prevState?.kept ?? []).filter((s) => s !== part.signature)].slice(0, 2);
      state.parts[part.name] = {
        signature: part.signature,
        kind: part.recipe.kind,
        location: part.location,
        shared: part.shared,
        sig: part.sigParts,
        kept: part.shared ? [] : kept,
        builtAt: prevState?.signature === part.signature ? prevState.builtAt : new Date().toISOString(),
        seconds: prevState?.signature === part.signature ? prevState.seconds : seconds,
      };
    };
    let stateDirty = false;
    let stateWarned = false;
    // the state only explains (plan) and remembers what to keep: the truth is the store, so a
    // failed write (a full disk) is a warning, never a failure of a part that was committed
    // batched (src/engine/state-writer.ts): at most one write a second during the build, the last
    // one before the lock goes
    stateWriter = new StateWriter(() => {
      state.statCache = { ...statCacheUsed };
      try {
        store.saveState(state);
      } catch (e) {
        stateDirty = true;
        if (!stateWarned) process.stderr.write(`kiln: warning: could not write ${store.statePath} (${(noSpace(e, store.statePath) ?? (e as Error)).message}); outputs are unaffected\n`);
        stateWarned = true;
      }
    });
    const saveState = () => {
      stateDirty = false;
      stateWriter!.changed();
    };

    const failedParts = new Set<string>(); // fail() of each part (parts run concurrently)
    const buildOne = async (part: Part, slots: number): Promise<boolean> => {
      await buildPart(part, slots);
      return !failedParts.has(part.name);
    };
    const buildPart = async (part: Part, slots: number): Promise<void> => {
      const entry = status.get(part.name)!;
      if (entry.status === 'up-to-date') {
        if (state.parts[part.name]?.signature !== part.signature) {
          record(part, 0);
          stateDirty = true;
        }
        res.cached.push(part.name);
        opts.reporter.event({ type: 'part-cached', part: part.name, kind: part.recipe.kind, relinked: false });
        return;
      }
      const started = Date.now();
      let reasons = entry.reasons;
      const logFile = join(project.logsDir, `${part.name}.log`);
      const fail = (e: unknown) => {
        const err = e instanceof Error ? e : new Error(String(e));
        res.failed.push({ part: part.name, error: err });
        failedParts.add(part.name);
        opts.reporter.event({
          type: 'part-failed',
          part: part.name,
          kind: part.recipe.kind,
          seconds: (Date.now() - started) / 1000,
          error: err.message,
          log: logFile,
        });
      };
      // restoring an entry, or reusing a shared one built elsewhere: hash it fully first
      if ((entry.status === 'restore' && !entry.remote) || store.entryExists(part)) {
        try {
          const diffs = await store.check(part, 'full', true, slots);
          if (diffs.length === 0) {
            if (!part.shared) store.link(part);
            record(part, 0);
            saveState();
            res.cached.push(part.name);
            opts.reporter.event({ type: 'part-cached', part: part.name, kind: part.recipe.kind, relinked: true });
            return;
          }
          const q = store.quarantine(part, diffs);
          reasons = [`its store entry failed verification (${describe(diffs, 3)}): quarantined in ${q}`];
        } catch (e) {
          fail(noSpace(e, store.entryPath(part)) ?? e);
          return;
        }
      }
      // the remote cache and the farm (annotate() made these 'restore' with entry.remote)
      if (opts.farm && !opts.farm.isLocal(part.name) && (entry.status === 'build' || entry.remote)) {
        if (entry.status === 'build') opts.reporter.event({ type: 'part-start', part: part.name, kind: part.recipe.kind, reason: reasons.join('; ') });
        try {
          const r = await opts.farm.handle(part, entry, store);
          if (opts.farm.isDownloaded(part.name)) collectTestResults(project, part, store.storePath(part));
          const seconds = (Date.now() - started) / 1000;
          record(part, seconds);
          saveState();
          (r.built ? res.built : res.cached).push(part.name);
          if (r.built) opts.reporter.event({ type: 'part-done', part: part.name, kind: part.recipe.kind, seconds, worker: r.worker });
          else opts.reporter.event({ type: 'part-cached', part: part.name, kind: part.recipe.kind, relinked: opts.farm.isDownloaded(part.name), remote: true });
        } catch (e) {
          fail(e);
        }
        return;
      }
      if (entry.remote && opts.remote) {
        try {
          if (await opts.remote.restore(part, store)) {
            record(part, 0);
            saveState();
            try {
              collectTestResults(project, part, store.storePath(part));
            } catch (e) {
              process.stderr.write(`kiln: warning: [${part.name}] test results not copied to ${join(project.outDir, 'test-results')}: ${(e as Error).message}\n`);
            }
            res.cached.push(part.name);
            opts.reporter.event({ type: 'part-cached', part: part.name, kind: part.recipe.kind, relinked: true, remote: true });
            return;
          }
        } catch (e) {
          fail(noSpace(e, store.entryPath(part)) ?? e);
          return;
        }
        if (reasons === entry.reasons) reasons = entry.remote.buildReasons;
      }
      opts.reporter.event({ type: 'part-start', part: part.name, kind: part.recipe.kind, reason: reasons.join('; ') });
      let fd: number | undefined;
      let logErr: unknown;
      let committed = false;
      const log = (t: string) => {
        if (fd === undefined || logErr) return;
        try {
          writeSync(fd, t);
        } catch (e) {
          logErr = e; // never thrown from a command's output handler: the part fails below
        }
      };
      let st: Staging | undefined;
      try {
        fd = openSync(logFile, 'w');
        log(`# kiln: ${part.name} (${part.recipeSpec}) signature ${part.signature}\n# why: ${reasons.join('; ')}\n`);
        st = store.newStaging(part);
        const { staging, work } = st;
        const deps: Record<string, string> = {};
        for (const d of part.deps.keys()) deps[d] = project.parts.get(d)!.location;
        const previous = store.previous(part);
        const ctx: BuildContext = {
          part: part.name,
          options: part.options,
          location: part.location,
          staging,
          work,
          projectDir: project.projectDir,
          cacheDir: project.cacheDir,
          downloadCache: project.downloadCache,
          offline: project.offline,
          jobs: slots,
          sourceDateEpoch: project.sourceDateEpoch,
          signal: ac.signal,
          previous,
          deps,
          log,
          notice: (message) => {
            log(`# kiln: note: ${message}\n`);
            opts.reporter.event({ type: 'part-notice', part: part.name, message });
          },
          run: (argv, o = {}) =>
            run(argv, {
              log,
              logFile,
              part: part.name,
              signal: ac.signal,
              ...o,
              env: { SOURCE_DATE_EPOCH: String(project.sourceDateEpoch), ...o.env },
            }),
        };
        const chroot = part.recipe.cleanRoom ? part.options.get('chroot')?.trim() : undefined;
        if (chroot) {
          log(`# kiln: clean-room build in ${chroot}\n`);
          const { cleanRoomRunner } = await import('../sandbox/cleanroom.js'); // only clean-room parts need Docker's code
          ctx.run = await cleanRoomRunner(ctx, chroot, part.options.bool('network', false), { log, logFile, part: part.name, signal: ac.signal });
        }
        if (previous && part.recipe.update) await part.recipe.update(ctx);
        else await part.recipe.install(ctx);
        if (ac.signal.aborted) throw new KilnError('interrupted', ExitCode.INTERRUPTED);
        if (logErr) throw logErr; // an incomplete log: nothing is committed
        await store.commit(part, st, undefined, slots);
        committed = true;
        const seconds = (Date.now() - started) / 1000;
        record(part, seconds);
        saveState();
        try {
          collectTestResults(project, part, store.storePath(part));
        } catch (e) {
          process.stderr.write(`kiln: warning: [${part.name}] test results not copied to ${join(project.outDir, 'test-results')}: ${(e as Error).message}\n`);
        }
        log(`# kiln: done in ${seconds.toFixed(2)}s\n`);
        res.built.push(part.name);
        if (opts.remote) await opts.remote.upload(part, store);
        opts.reporter.event({ type: 'part-done', part: part.name, kind: part.recipe.kind, seconds });
      } catch (e) {
        if (committed) {
          // the output is committed and linked: whatever failed afterwards is only reported
          process.stderr.write(`kiln: warning: [${part.name}] after its commit: ${(e as Error).message}\n`);
          res.built.push(part.name);
          opts.reporter.event({ type: 'part-done', part: part.name, kind: part.recipe.kind, seconds: (Date.now() - started) / 1000 });
          return;
        }
        let err = noSpace(e, st?.staging ?? logFile) ?? noSpace(logErr, logFile) ?? (e instanceof Error ? e : new Error(String(e)));
        if (!(err.message.startsWith('no space left')) && st && diskFull(st.staging)) {
          err = new KilnError(`no space left on device while writing ${st.staging}: ${err.message}`);
        }
        log(`# kiln: FAILED: ${err.message}\n`);
        // test reports of a failed part still reach out/test-results/
        try {
          if (st) collectTestResults(project, part, st.staging);
        } catch {
          /* nothing to collect */
        }
        fail(err);
      } finally {
        if (fd !== undefined) closeSync(fd);
        if (st) await rmrf(st.base);
      }
    };

    // dependency-driven scheduling, one budget of -j slots (src/engine/scheduler.ts)
    const upToDate = (n: string) => status.get(n)!.status === 'up-to-date';
    const sched = new Scheduler(names, (n) => project.parts.get(n)!.deps.keys(), {
      slots: opts.jobs,
      keepGoing: opts.keepGoing,
      onSkip: (part, because) => opts.reporter.event({ type: 'part-skipped', part, because }),
      cheap: upToDate,
      single: (n) => {
        const p = project.parts.get(n)!;
        const ij = p.recipe.innerJobs;
        return !(typeof ij === 'function' ? ij(planContext(project, p)) : ij);
      },
    });
    await runSchedule(sched, {
      run: (n, slots) => buildOne(project.parts.get(n)!, slots),
      inline: upToDate, // no I/O beyond the state bookkeeping: handled at once
      aborted: () => ac.signal.aborted,
    });
    const { failed, skipped } = sched;
    for (const n of sched.notReached()) {
      skipped.add(n);
      opts.reporter.event({ type: 'part-skipped', part: n, because: ac.signal.aborted ? 'interrupted' : 'the build stopped after a failure' });
    }
    opts.signal?.removeEventListener('abort', onAbort);

    // uninstall parts no longer in the config (full builds only), prune old store entries
    if (!opts.targets && failed.size === 0 && !ac.signal.aborted) {
      for (const [name, ps] of Object.entries(state.parts)) {
        if (project.parts.has(name)) continue;
        if (!ps.shared) store.unlinkLocation(ps.location);
        delete state.parts[name];
        stateDirty = true;
        opts.reporter.event({ type: 'uninstall', part: name, location: ps.location });
      }
      const keep = new Set<string>();
      for (const ps of Object.values(state.parts)) for (const s of ps.kept) keep.add(s);
      if (res.built.length > 0 || stateDirty) await store.prune(keep);
    }
    if (stateDirty || JSON.stringify(state.statCache) !== JSON.stringify(statCacheUsed)) saveState();
    stateWriter.flush();

    res.skipped = [...skipped];
    res.ok = failed.size === 0 && skipped.size === 0;
    res.exitCode = ac.signal.aborted ? ExitCode.INTERRUPTED : res.ok ? ExitCode.OK : ExitCode.BUILD_FAILED;
    opts.reporter.event({
      type: 'end',
      ok: res.ok,
      built: res.built.length,
      cached: res.cached.length,
      failed: failed.size,
      skipped: skipped.size,
      seconds: (Date.now() - t0) / 1000,
    });
    return res;
  } finally {
    try {
      stateWriter?.flush();
    } finally {
      lock.release();
    }
  }
}

/** Copy JUnit XML files a part wrote to test-results/ into out/test-results/PART/. */
function collectTestResults(project: Project, part: Part, output: string): void {
  const dir = join(output, 'test-results');
  if (!existsSync(dir)) return;
  const dest = join(project.outDir, 'test-results', part.name);
  mkdirSync(dest, { recursive: true });
  for (const f of readdirSync(dir)) if (f.endsWith('.xml')) copyFileSync(join(dir, f), join(dest, f));
}

export type { State };
