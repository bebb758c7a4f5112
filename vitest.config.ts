import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { HEAVY_TEST_FILES, HeavySlotSequencer } from './test/helpers/schedule.js';

// Test files run in forked processes, two at once by default (KILN_TEST_FORKS=1: one at a time,
// vitest's own default on 2 cores): the heavy files (QEMU under TCG, chroot and distribution
// builds: test/helpers/schedule.ts) hold one "heavy slot" each (an flock taken by a setup file,
// test/helpers/heavy-slot.ts), so at most one of them runs at a time, and the sequencer orders the
// files so that light files run next to the heavy one. (The chroot and kernel caches take
// concurrent builders anyway: lib/cache.ts locks per key.) Measured: docs/benchmarks.md, "Test suite".
process.env.KILN_TEST_FORKS ??= '2'; // read by the forks (heavy-slot-setup.ts) and the sequencer
const forks = Math.max(1, Number(process.env.KILN_TEST_FORKS) || 1);
// one lock per vitest run, inherited by the forks
process.env.KILN_TEST_HEAVY_LOCK ??= join(tmpdir(), `kiln-test-heavy-${process.pid}.lock`);

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: forks, minForks: 1 } },
    sequence: { sequencer: HeavySlotSequencer },
    // (projects merge their include lists with the root's: the root has none)
    projects: [
      { extends: true, test: { name: 'heavy', include: HEAVY_TEST_FILES, setupFiles: ['test/helpers/heavy-slot-setup.ts'] } },
      { extends: true, test: { name: 'light', include: ['test/**/*.test.ts'], exclude: HEAVY_TEST_FILES } },
    ],
    // the per-file time table at the end of the run (slowest first, with the total)
    reporters: ['default', './test/helpers/file-times-reporter.ts'],
  },
});
