/**
 * Batched writes of the build state (out/.kiln/state.json).
 *
 * The state is one JSON file that grows with the graph (about 0.8 KiB a part); writing it whole,
 * with an fsync, after every finished part made a build of N parts cost O(N²) (2,000 trivial
 * parts: 14 s of JSON.stringify and 6 s of fsync out of 44 s). The writer writes at once when
 * the last write is `intervalMs` old, else once when the interval has passed, and on flush()
 * (the end of a build, before the lock is released).
 *
 * Crash safety is unchanged: the store is the truth and the state only explains. A part becomes
 * built by the rename of its staging directory into the store and the swap of its location link
 * (store.commit), before its state record; a kill that loses the last second of records loses no
 * built part: the next build finds the link pointing at the entry for the signature, reports it
 * up to date and records it again (test/engine.test.ts, "kill after commits").
 */
export class StateWriter {
  private dirty = false;
  private last = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private error: unknown;

  constructor(
    private readonly write: () => void,
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The state changed: written now if the last write is old enough, else within the interval. */
  changed(): void {
    this.dirty = true;
    const wait = this.last + this.intervalMs - this.now();
    if (wait <= 0) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        try {
          this.flush();
        } catch (e) {
          this.error ??= e; // reported by the next flush() of the build
        }
      }, wait);
      this.timer.unref();
    }
  }

  /** Write now if anything changed since the last write; throws a failure of an earlier timed write. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dirty) {
      this.dirty = false;
      this.last = this.now();
      try {
        this.write();
      } catch (e) {
        this.dirty = true;
        throw e;
      }
    }
    if (this.error !== undefined) {
      const e = this.error;
      this.error = undefined;
      throw e;
    }
  }

  /** Unwritten changes? */
  get pending(): boolean {
    return this.dirty;
  }
}
