/**
 * The build scheduler: which part may start now, and with how many job slots. No I/O: it is
 * told when parts end (and whether they failed) and answers with decisions; `runSchedule`
 * drives it with callbacks (build.ts passes the function that builds one part).
 *
 *   const s = new Scheduler(order, (n) => deps(n), { slots: 4, keepGoing: false, onSkip });
 *   for (let p; (p = s.next()); ) start(p.part, p.slots);   // ... later: s.finish(part, ok)
 *
 * Rules:
 * - a part is ready when its last dependency is done; ready parts start in the order they
 *   became ready (parts ready at the start: in `order`), so a run with one slot is deterministic;
 * - one budget of `slots` (-j N) for everything: a part started holds `share` slots until it
 *   ends (its inner parallelism: make -j, compressor and digest threads), at least one; the
 *   share is an even split of the free slots among the ready parts that could start with them
 *   (a part alone gets every free slot, N ready parts under -j N get one each); a `single` part
 *   (no inner parallelism) holds one. So the parts and their inner jobs never exceed N;
 * - a failed part skips its dependants (transitively, each once, with the reason); without
 *   keep-going no new part starts after a failure; `stop()` (an interrupt) starts nothing more;
 * - every operation is O(1) amortised per part and per edge: a 100,000-part graph is never rescanned.
 */

export interface SchedulerOptions {
  /** the one budget: -j N */
  slots: number;
  /** --keep-going: parts not depending on a failure still start */
  keepGoing: boolean;
  /** called once per part skipped because a dependency failed or was skipped */
  onSkip?: (part: string, because: string) => void;
  /** parts that hold no slot for long (up to date): not counted when the free slots are split */
  cheap?: (part: string) => boolean;
  /**
   * parts with no inner parallelism (their kind does not use ctx.jobs): they hold one slot, so a
   * single-threaded part started alone does not keep the parts that become ready after it waiting
   */
  single?: (part: string) => boolean;
}

export interface Start {
  part: string;
  /** job slots this part holds until it ends (>= 1): its inner parallelism */
  slots: number;
}

export class Scheduler {
  private readonly waiting = new Map<string, number>();
  private readonly dependants = new Map<string, string[]>();
  private readonly ready: string[] = [];
  private readyIndex = 0;
  private readonly held = new Map<string, number>();
  private used = 0;
  private stopping = false;
  readonly done = new Set<string>();
  readonly failed = new Set<string>();
  readonly skipped = new Set<string>();

  constructor(
    private readonly order: readonly string[],
    depsOf: (part: string) => Iterable<string>,
    private readonly opts: SchedulerOptions,
  ) {
    if (!Number.isInteger(opts.slots) || opts.slots < 1) throw new Error(`scheduler: slots must be a positive integer, got ${opts.slots}`);
    const known = new Set(order);
    for (const n of order) {
      let count = 0;
      for (const d of depsOf(n)) {
        if (!known.has(d)) throw new Error(`scheduler: part '${n}' depends on '${d}', which is not scheduled`);
        count++;
        let l = this.dependants.get(d);
        if (!l) this.dependants.set(d, (l = []));
        l.push(n);
      }
      this.waiting.set(n, count);
      if (count === 0) this.ready.push(n);
    }
  }

  /** Parts running now. */
  get running(): number {
    return this.held.size;
  }

  /** Slots held by running parts. */
  get slotsInUse(): number {
    return this.used;
  }

  /** True once no part runs and none may start. */
  get finished(): boolean {
    return this.held.size === 0 && (this.stopping || this.readyIndex >= this.ready.length);
  }

  /** The next part to start now and its share of the slots, or undefined (no free slot, nothing ready, stopped). */
  next(): Start | undefined {
    if (this.stopping) return undefined;
    const free = this.opts.slots - this.used;
    if (free < 1) return undefined;
    while (this.readyIndex < this.ready.length && this.skipped.has(this.ready[this.readyIndex]!)) this.readyIndex++;
    if (this.readyIndex >= this.ready.length) return undefined;
    const part = this.ready[this.readyIndex++]!;
    // an even split of the free slots among this part and the others ready now
    let readyNow = 1;
    // (looks at most `free` queued parts ahead: O(slots) per start, whatever the queue's length)
    for (let i = this.readyIndex; i < this.ready.length && i - this.readyIndex < free; i++) {
      const m = this.ready[i]!;
      if (!this.skipped.has(m) && !this.opts.cheap?.(m)) readyNow++;
    }
    const share = this.opts.single?.(part) ? 1 : Math.max(1, Math.floor(free / readyNow));
    this.held.set(part, share);
    this.used += share;
    return { part, slots: share };
  }

  /** A started part ended: `ok` false when it failed. Its dependants become ready, or are skipped. */
  finish(part: string, ok: boolean): void {
    const share = this.held.get(part);
    if (share === undefined) throw new Error(`scheduler: part '${part}' finished but was not running`);
    this.held.delete(part);
    this.used -= share;
    if (!ok) {
      this.failed.add(part);
      if (!this.opts.keepGoing) this.stopping = true;
      for (const m of this.dependants.get(part) ?? []) this.skip(m, `dependency '${part}' failed`);
      return;
    }
    this.done.add(part);
    for (const m of this.dependants.get(part) ?? []) {
      const left = this.waiting.get(m)! - 1;
      this.waiting.set(m, left);
      if (left === 0 && !this.skipped.has(m)) this.ready.push(m);
    }
  }

  /** An interrupt: nothing more starts; running parts still report their end. */
  stop(): void {
    this.stopping = true;
  }

  /** Parts that never ran and were not skipped (after a stop or a failure), in order. */
  notReached(): string[] {
    return this.order.filter((n) => !this.done.has(n) && !this.failed.has(n) && !this.skipped.has(n) && !this.held.has(n));
  }

  private skip(first: string, because: string): void {
    const stack: Array<[string, string]> = [[first, because]];
    while (stack.length) {
      const [n, why] = stack.pop()!;
      if (this.skipped.has(n)) continue;
      this.skipped.add(n);
      this.opts.onSkip?.(n, why);
      const ds = this.dependants.get(n) ?? [];
      for (let i = ds.length - 1; i >= 0; i--) stack.push([ds[i]!, `dependency '${n}' was skipped`]);
    }
  }
}

export interface ScheduleCallbacks {
  /** build one part with its share of the slots; resolves to false when it failed (never rejects) */
  run: (part: string, slots: number) => Promise<boolean>;
  /** a part handled without waiting (up to date): run() is awaited at once, nothing else starts meanwhile */
  inline?: (part: string) => boolean;
  /** true once the build is interrupted: nothing more starts */
  aborted?: () => boolean;
}

/** Drive `s` to its end: start what may start, wait for any running part, repeat. */
export async function runSchedule(s: Scheduler, cb: ScheduleCallbacks): Promise<void> {
  const running = new Map<string, Promise<void>>();
  for (;;) {
    if (cb.aborted?.()) s.stop();
    for (let st = s.next(); st; st = cb.aborted?.() ? (s.stop(), undefined) : s.next()) {
      const { part, slots } = st;
      if (cb.inline?.(part)) {
        s.finish(part, await cb.run(part, slots));
        continue;
      }
      running.set(
        part,
        cb.run(part, slots).then(
          (ok) => {
            running.delete(part);
            s.finish(part, ok);
          },
          (e) => {
            running.delete(part);
            s.finish(part, false);
            throw e;
          },
        ),
      );
    }
    if (running.size === 0) return;
    await Promise.race(running.values());
  }
}
