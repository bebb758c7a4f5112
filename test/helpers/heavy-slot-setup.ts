// Setup file of the heavy test files (vitest.config.ts): hold the heavy slot while this file runs.
// Only needed when files run side by side (KILN_TEST_FORKS=2, the default set in vitest.config.ts).
import { afterAll } from 'vitest';
import { acquireSlot } from './heavy-slot.js';

const lock = process.env.KILN_TEST_HEAVY_LOCK;
if (lock && Number(process.env.KILN_TEST_FORKS) >= 2) {
  const release = await acquireSlot(lock);
  afterAll(release);
}
