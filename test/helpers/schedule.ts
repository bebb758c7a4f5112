/**
 * Which test files are heavy, and the order in which vitest hands files to its forks.
 *
 * Heavy files boot QEMU under TCG (one core each) or build chroots and distributions; with two
 * forks (KILN_TEST_FORKS=2) at most one of them runs at a time (test/helpers/heavy-slot.ts) and
 * the other fork runs light files next to it. The order makes that overlap likely: a greedy
 * simulation of the forks with the durations of the previous run (vitest's cache; unknown files
 * get a guess) where a fork that frees up takes the next heavy file when the slot is free at that
 * moment, else the longest light file. The lock, not the order, is what guarantees one heavy
 * file at a time: a wrong guess costs waiting, never a second QEMU.
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Not heavy: test/store-chaos.test.ts (kill -9 of kiln on trivial parts: CPU, no QEMU, no chroot)
// runs next to a heavy file; it has no timing assertion (its kill moments are random anyway).
export const HEAVY_TEST_FILES = [
  'test/chroot-debootstrap.test.ts',
  'test/chroot-recipe.test.ts',
  'test/chroot.test.ts',
  'test/clonezilla-image.test.ts',
  'test/disk-image.test.ts',
  'test/dkms.test.ts',
  'test/efi-iso.test.ts',
  'test/example.test.ts',
  'test/farm-example.test.ts',
  'test/ganeti-os.test.ts',
  // a small kernel compiled from source (cold in CI: minutes; from the cache afterwards)
  'test/kernel.test.ts',
  'test/qemu-lib.test.ts',
  'test/qemu.test.ts',
  'test/recovery-iso.test.ts',
  'test/storage-stack.test.ts',
];

/**
 * How many heavy files may run at once: KILN_TEST_HEAVY_SLOTS, 1 (one heavy file next to light
 * ones) or the number of forks (no slot: heavy files run side by side too, QEMU guests included).
 */
export function heavySlots(forks: number): number {
  const v = process.env.KILN_TEST_HEAVY_SLOTS;
  if (v === undefined || v === '') return 1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`KILN_TEST_HEAVY_SLOTS=${v}: a whole number from 1 up`);
  if (n > 1 && n < forks) throw new Error(`KILN_TEST_HEAVY_SLOTS=${v}: 1 or at least KILN_TEST_FORKS (${forks})`);
  return Math.min(n, forks);
}

export interface Job<T> {
  item: T;
  heavy: boolean;
  /** expected seconds (previous run), undefined when unknown */
  seconds?: number;
}

const GUESS = { heavy: 120, light: 15 };

/**
 * The order to hand `jobs` to `lanes` workers so that heavy jobs (at most `slots` at a time)
 * overlap light ones. Within a class, longest first (unknown ones first: they may be long).
 */
export function scheduleOrder<T>(jobs: Array<Job<T>>, lanes: number, slots = 1): T[] {
  const est = (j: Job<T>) => j.seconds ?? (j.heavy ? GUESS.heavy : GUESS.light);
  const byLength = (a: Job<T>, b: Job<T>) => (a.seconds === undefined ? -1 : 0) - (b.seconds === undefined ? -1 : 0) || est(b) - est(a);
  const heavy = jobs.filter((j) => j.heavy).sort(byLength);
  const light = jobs.filter((j) => !j.heavy).sort(byLength);
  if (lanes < 2) return [...heavy, ...light].map((j) => j.item);
  const free = Array.from({ length: lanes }, () => 0); // when each lane is free again
  const slotFree = Array.from({ length: Math.max(1, slots) }, () => 0); // when each heavy slot is free again
  const out: T[] = [];
  while (heavy.length || light.length) {
    const lane = free.indexOf(Math.min(...free));
    const now = free[lane]!;
    let job: Job<T>;
    let start = now;
    const slot = slotFree.indexOf(Math.min(...slotFree));
    if (heavy.length && (slotFree[slot]! <= now || !light.length)) {
      job = heavy.shift()!;
      start = Math.max(now, slotFree[slot]!);
      slotFree[slot] = start + est(job);
    } else job = light.shift()!;
    free[lane] = start + est(job);
    out.push(job.item);
  }
  return out;
}

/** vitest's sequencer (sequence.sequencer in vitest.config.ts), lanes = the number of forks. */
export class HeavySlotSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const root = this.ctx.config.root;
    const lanes = Number(process.env.KILN_TEST_FORKS) || 1;
    if (lanes < 2) return sorted; // one file at a time: vitest's order (failed first, longest first)
    const jobs = sorted.map((spec) => {
      const rel = relative(root, spec.moduleId);
      const d = this.ctx.cache.getFileTestResults(`${spec.project.name}:${rel}`)?.duration;
      return { item: spec, heavy: HEAVY_TEST_FILES.includes(rel), seconds: d === undefined ? undefined : d / 1000 };
    });
    return scheduleOrder(jobs, lanes, heavySlots(lanes));
  }
}
