// Setup file of the heavy test files (vitest.config.ts): hold the heavy slot while this file runs.
// Only needed when files run side by side (KILN_TEST_FORKS=2, the default set in vitest.config.ts).
import { afterAll } from 'vitest';
import { acquireSlot } from './heavy-slot.js';
import { heavySlots } from './schedule.js';

const lock = process.env.KILN_TEST_HEAVY_LOCK;
const forks = Number(process.env.KILN_TEST_FORKS) || 1;
// (KILN_TEST_HEAVY_SLOTS at the number of forks: heavy files run side by side, no slot to take)
if (lock && forks >= 2 && heavySlots(forks) < forks) {
  const release = await acquireSlot(lock);
  afterAll(release);
}
