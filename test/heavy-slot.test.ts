// The heavy slot (test/helpers/heavy-slot.ts) and the file order (test/helpers/schedule.ts) that
// let KILN_TEST_FORKS=2 run a light test file next to a heavy one, never two heavy ones at once.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { acquireSlot } from './helpers/heavy-slot.js';
import { HEAVY_TEST_FILES, scheduleOrder, type Job } from './helpers/schedule.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-heavy-slot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Replay an order on `lanes` workers (first free worker takes the next job; heavy jobs wait for the slot). */
function replay(order: string[], jobs: Map<string, Job<string>>, lanes: number, slots = 1) {
  const free = Array.from({ length: lanes }, () => 0);
  const slotFree = Array.from({ length: slots }, () => 0);
  const runs: Array<{ id: string; start: number; end: number; heavy: boolean }> = [];
  for (const id of order) {
    const j = jobs.get(id)!;
    const lane = free.indexOf(Math.min(...free));
    const slot = slotFree.indexOf(Math.min(...slotFree));
    const start = j.heavy ? Math.max(free[lane]!, slotFree[slot]!) : free[lane]!;
    const end = start + j.seconds!;
    if (j.heavy) slotFree[slot] = end;
    free[lane] = end;
    runs.push({ id, start, end, heavy: j.heavy });
  }
  return { runs, wall: Math.max(...free) };
}

describe('file order for two forks', () => {
  const list: Array<Job<string>> = [
    { item: 'qemu-a', heavy: true, seconds: 300 },
    { item: 'qemu-b', heavy: true, seconds: 200 },
    { item: 'chroot', heavy: true, seconds: 100 },
    ...Array.from({ length: 12 }, (_, i) => ({ item: `light-${i}`, heavy: false, seconds: 20 + 5 * i })),
  ];
  const jobs = new Map(list.map((j) => [j.item, j]));

  test('every file once; heavy files overlap light ones; the run is shorter than one file at a time', () => {
    const order = scheduleOrder(list, 2);
    expect([...order].sort()).toEqual(list.map((j) => j.item).sort());
    const { runs, wall } = replay(order, jobs, 2);
    const heavy = runs.filter((r) => r.heavy).sort((a, b) => a.start - b.start);
    for (let i = 1; i < heavy.length; i++) expect(heavy[i]!.start).toBeGreaterThanOrEqual(heavy[i - 1]!.end);
    const serial = list.reduce((s, j) => s + j.seconds!, 0);
    const heavySum = 600;
    // light files (570 s in all) fit next to the heavy ones: the run takes the heavy files' time
    expect(wall).toBe(heavySum);
    expect(wall).toBeLessThan(serial);
    // the naive order (all heavy first) would leave one fork waiting for the slot
    expect(replay(list.map((j) => j.item), jobs, 2).wall).toBeGreaterThan(wall);
  });

  test('one fork: heavy files first, longest first; unknown durations count as long', () => {
    expect(scheduleOrder(list, 1).slice(0, 3)).toEqual(['qemu-a', 'qemu-b', 'chroot']);
    const order = scheduleOrder([{ item: 'known', heavy: false, seconds: 50 }, { item: 'new', heavy: false }], 1);
    expect(order).toEqual(['new', 'known']);
  });

  test('KILN_TEST_HEAVY_SLOTS=2: heavy files side by side too; the run is shorter than the heavy files\' sum when they dominate', async () => {
    const { heavySlots } = await import('./helpers/schedule.js');
    const big: Array<Job<string>> = [
      { item: 'recovery', heavy: true, seconds: 900 },
      { item: 'clonezilla', heavy: true, seconds: 300 },
      { item: 'disk', heavy: true, seconds: 250 },
      { item: 'ganeti', heavy: true, seconds: 200 },
      ...Array.from({ length: 6 }, (_, i) => ({ item: `light-${i}`, heavy: false, seconds: 60 })),
    ];
    const bigJobs = new Map(big.map((j) => [j.item, j]));
    const one = replay(scheduleOrder(big, 2, 1), bigJobs, 2, 1).wall;
    const two = replay(scheduleOrder(big, 2, 2), bigJobs, 2, 2);
    expect(one).toBe(1650); // the heavy files' sum: one fork waits for the slot
    // the longest file (900 s) in one fork from the start, the others (1,110 s) in the other, the
    // light ones filling both forks' ends: 2,010 s of work in 1,020 s
    expect(two.wall).toBe(1020);
    expect(two.wall).toBeLessThan(one);
    expect(two.runs.find((r) => r.id === 'recovery')!.start).toBe(0); // the longest first
    const env = process.env.KILN_TEST_HEAVY_SLOTS;
    try {
      process.env.KILN_TEST_HEAVY_SLOTS = '2';
      expect(heavySlots(2)).toBe(2);
      expect(() => heavySlots(4)).toThrow(/1 or at least KILN_TEST_FORKS \(4\)/);
      process.env.KILN_TEST_HEAVY_SLOTS = 'x';
      expect(() => heavySlots(2)).toThrow(/KILN_TEST_HEAVY_SLOTS=x: a whole number/);
      delete process.env.KILN_TEST_HEAVY_SLOTS;
      expect(heavySlots(2)).toBe(1);
    } finally {
      if (env === undefined) delete process.env.KILN_TEST_HEAVY_SLOTS;
      else process.env.KILN_TEST_HEAVY_SLOTS = env;
    }
  });

  test('the QEMU test files are heavy', () => {
    for (const f of ['test/qemu.test.ts', 'test/recovery-iso.test.ts', 'test/dkms.test.ts']) expect(HEAVY_TEST_FILES).toContain(f);
  });
});

describe('heavy slot (flock)', () => {
  test('a second holder waits until the first releases', async () => {
    const lock = join(dir, 'a.lock');
    const events: string[] = [];
    const release1 = await acquireSlot(lock);
    events.push('1 holds');
    const second = acquireSlot(lock).then((r) => {
      events.push('2 holds');
      return r;
    });
    await sleep(500);
    expect(events).toEqual(['1 holds']);
    events.push('1 releases');
    await release1();
    const release2 = await second;
    expect(events).toEqual(['1 holds', '1 releases', '2 holds']);
    await release2();
  });

  test('the slot comes back when its holder dies (kill -9)', async () => {
    const lock = join(dir, 'b.lock');
    const helper = new URL('./helpers/heavy-slot.ts', import.meta.url).pathname;
    const script = join(dir, 'holder.ts');
    writeFileSync(script, `import { acquireSlot } from ${JSON.stringify(helper)};\nawait acquireSlot(${JSON.stringify(lock)});\nconsole.log('held');\nsetInterval(() => {}, 1000);\n`);
    // a process that takes the slot and then hangs (vite-node runs the TypeScript helper)
    const viteNode = new URL('../node_modules/vite-node/vite-node.mjs', import.meta.url).pathname;
    const child = spawn(process.execPath, [viteNode, script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    await new Promise<void>((res, rej) => {
      child.stdout!.on('data', (b: Buffer) => ((out += b.toString()), out.includes('held') && res()));
      child.once('exit', (c) => rej(new Error(`helper exited (${c})`)));
    });
    child.removeAllListeners('exit');
    let got = false;
    const mine = acquireSlot(lock).then((r) => ((got = true), r));
    await sleep(500);
    expect(got).toBe(false);
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    const release = await mine;
    expect(got).toBe(true);
    await release();
  });
});
