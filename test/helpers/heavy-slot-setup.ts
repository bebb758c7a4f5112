// Setup file of the heavy test files (vitest.config.ts): hold the heavy slot while this file runs.
import { afterAll } from 'vitest';
import { acquireSlot } from './heavy-slot.js';

const lock = process.env.KILN_TEST_HEAVY_LOCK;
if (lock) {
  const release = await acquireSlot(lock);
  afterAll(release);
}
