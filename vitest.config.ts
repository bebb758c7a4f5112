import { defineConfig } from 'vitest/config';

// Test files run in forked processes. vitest's default on 2 cores is ONE file at a time (cores - 1);
// most heavy files wait on mmdebstrap, Docker or one single-threaded QEMU (TCG), so two at a
// time can overlap them: KILN_TEST_FORKS=2 npm test (opt-in until a full CI run shows the QEMU
// tests' timeouts hold with two files at once; the chroot and kernel caches take concurrent
// builders: lib/cache.ts locks per key).
const forks = Number(process.env.KILN_TEST_FORKS) || undefined;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    ...(forks ? { poolOptions: { forks: { maxForks: forks, minForks: 1 } } } : {}),
    // the per-file time table at the end of the run (slowest first, with the total)
    reporters: ['default', './test/helpers/file-times-reporter.ts'],
  },
});
