import { describe, expect, it } from 'vitest';
import { Scheduler, runSchedule } from '../src/engine/scheduler.js';

type Graph = Record<string, string[]>;

/** Topological order of a small graph as the engine gives it (dependencies first, keys' order otherwise). */
function order(g: Graph): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (n: string) => {
    if (seen.has(n)) return;
    seen.add(n);
    for (const d of g[n] ?? []) visit(d);
    out.push(n);
  };
  for (const n of Object.keys(g)) visit(n);
  return out;
}

/**
 * Run a graph through runSchedule with parts that end after `ticks[n]` microtask rounds (no
 * timers: deterministic), recording starts, ends, skips and the slots held at every moment.
 */
async function simulate(g: Graph, o: { slots: number; keepGoing?: boolean; fail?: string[]; ticks?: Record<string, number>; upToDate?: string[]; single?: string[] }) {
  const starts: Array<{ part: string; slots: number }> = [];
  const ends: string[] = [];
  const skips: Array<[string, string]> = [];
  let held = 0;
  let maxHeld = 0;
  let maxRunning = 0;
  let running = 0;
  const s = new Scheduler(order(g), (n) => g[n] ?? [], {
    slots: o.slots,
    keepGoing: !!o.keepGoing,
    onSkip: (p, why) => skips.push([p, why]),
    cheap: (n) => !!o.upToDate?.includes(n),
    single: (n) => !!o.single?.includes(n),
  });
  await runSchedule(s, {
    inline: (n) => !!o.upToDate?.includes(n),
    run: async (part, slots) => {
      starts.push({ part, slots });
      held += slots;
      running++;
      maxHeld = Math.max(maxHeld, held);
      maxRunning = Math.max(maxRunning, running);
      for (let i = 0; i < (o.ticks?.[part] ?? 1); i++) await Promise.resolve();
      held -= slots;
      running--;
      ends.push(part);
      return !o.fail?.includes(part);
    },
  });
  return { s, starts, ends, skips, maxHeld, maxRunning };
}

describe('scheduler (no I/O)', () => {
  it('diamond: the top starts only after both sides, each part once, dependencies first', async () => {
    const g: Graph = { base: [], left: ['base'], right: ['base'], top: ['left', 'right'] };
    const r = await simulate(g, { slots: 4, ticks: { left: 1, right: 5 } });
    expect(r.starts.map((x) => x.part)).toEqual(['base', 'left', 'right', 'top']);
    expect(r.ends.indexOf('top')).toBe(3);
    expect(r.ends.indexOf('right')).toBeLessThan(r.starts.findIndex((x) => x.part === 'top') + 3);
    expect([...r.s.done].sort()).toEqual(['base', 'left', 'right', 'top']);
    expect(r.s.finished).toBe(true);
  });

  it('slot limit: never more running parts (nor held slots) than -j, and a part alone gets every slot', async () => {
    const g: Graph = {};
    for (let i = 0; i < 20; i++) g[`p${i}`] = [];
    g.last = Object.keys(g);
    const r = await simulate(g, { slots: 3, ticks: Object.fromEntries(Object.keys(g).map((k, i) => [k, 1 + (i % 4)])) });
    expect(r.maxRunning).toBeLessThanOrEqual(3);
    expect(r.maxHeld).toBeLessThanOrEqual(3);
    expect(r.maxRunning).toBe(3);
    // 20 ready parts under -j3: one slot each; the last part runs alone with all three
    expect(r.starts.filter((x) => x.part !== 'last').every((x) => x.slots === 1)).toBe(true);
    expect(r.starts.find((x) => x.part === 'last')!.slots).toBe(3);
  });

  it('even split: two ready parts under -j4 get two slots each; -j1 gives one to everything', async () => {
    const two = await simulate({ a: [], b: [] }, { slots: 4 });
    expect(two.starts).toEqual([{ part: 'a', slots: 2 }, { part: 'b', slots: 2 }]);
    const one = await simulate({ a: [], b: [], c: ['a'] }, { slots: 1 });
    expect(one.starts.map((x) => x.slots)).toEqual([1, 1, 1]);
    expect(one.maxRunning).toBe(1);
  });

  it('a part without inner parallelism holds one slot: parts ready after it do not wait for it', async () => {
    // -j3: x and the long part d start together (x 1 slot, d the 2 left); when x ends, e and f
    // become ready. If d holds 2 slots, only one of them can start until d ends.
    const g: Graph = { x: [], d: [], e: ['x'], f: ['x'] };
    const ticks = { x: 1, d: 30, e: 10, f: 10 };
    const withShare = await simulate(g, { slots: 3, ticks });
    expect(withShare.starts.find((s) => s.part === 'd')!.slots).toBe(2);
    expect(withShare.maxRunning).toBe(2); // e and f one after the other, next to d
    const single = await simulate(g, { slots: 3, ticks, single: ['x', 'd', 'e', 'f'] });
    expect(single.starts.every((s) => s.slots === 1)).toBe(true);
    expect(single.maxRunning).toBe(3); // d, e and f at once
    expect(single.maxHeld).toBeLessThanOrEqual(3);
  });

  it('up-to-date parts do not take a share from parts that build', async () => {
    const r = await simulate({ a: [], u1: [], u2: [] }, { slots: 3, upToDate: ['u1', 'u2'] });
    expect(r.starts[0]).toEqual({ part: 'a', slots: 3 });
  });

  it('a failure without keep-going: its dependants are skipped with the reason, nothing new starts', async () => {
    const g: Graph = { bad: [], other: [], child: ['bad'], grandchild: ['child'], later: ['other'] };
    const r = await simulate(g, { slots: 1, fail: ['bad'] });
    expect(r.starts.map((x) => x.part)).toEqual(['bad']);
    expect(r.skips).toEqual([
      ['child', "dependency 'bad' failed"],
      ['grandchild', "dependency 'child' was skipped"],
    ]);
    expect(r.s.notReached()).toEqual(['other', 'later']);
    expect([...r.s.failed]).toEqual(['bad']);
  });

  it('a failure with keep-going: independent parts still build, each dependant skipped once', async () => {
    const g: Graph = { bad: [], other: [], x: ['bad', 'other'], y: ['x', 'bad'], later: ['other'] };
    const r = await simulate(g, { slots: 2, keepGoing: true, fail: ['bad'] });
    expect(r.starts.map((x) => x.part).sort()).toEqual(['bad', 'later', 'other']);
    expect(r.skips.map((x) => x[0]).sort()).toEqual(['x', 'y']);
    expect(r.s.notReached()).toEqual([]);
    expect([...r.s.done].sort()).toEqual(['later', 'other']);
  });

  it('stop (interrupt): running parts end, nothing more starts', async () => {
    let aborted = false;
    const s = new Scheduler(['a', 'b', 'c'], () => [], { slots: 1, keepGoing: true });
    const started: string[] = [];
    await runSchedule(s, {
      aborted: () => aborted,
      run: async (p) => {
        started.push(p);
        aborted = true;
        return true;
      },
    });
    expect(started).toEqual(['a']);
    expect(s.notReached()).toEqual(['b', 'c']);
  });

  it('deterministic: the same graph gives the same start order every time', async () => {
    const g: Graph = {};
    for (let i = 0; i < 200; i++) g[`n${i}`] = i < 10 ? [] : [`n${(i * 7) % i}`, `n${(i * 3) % i}`];
    const ticks = Object.fromEntries(Object.keys(g).map((k, i) => [k, 1 + ((i * 13) % 5)]));
    const a = await simulate(g, { slots: 4, ticks });
    const b = await simulate(g, { slots: 4, ticks });
    expect(a.starts).toEqual(b.starts);
    expect(a.starts).toHaveLength(200);
    // dependencies always end before their dependants start
    const endAt = new Map(a.ends.map((n, i) => [n, i]));
    const startAt = new Map(a.starts.map((x, i) => [x.part, i]));
    for (const [n, ds] of Object.entries(g)) for (const d of ds) expect(endAt.get(d)!).toBeLessThan(a.ends.length);
    for (const [n, ds] of Object.entries(g)) for (const d of ds) expect(startAt.get(d)!).toBeLessThan(startAt.get(n)!);
  });

  it('large graphs: work grows linearly (dependency lookups counted, no rescans)', async () => {
    const count = async (n: number) => {
      let lookups = 0;
      const names = Array.from({ length: n }, (_, i) => `p${i}`);
      // a wide layered graph: each part depends on up to two parts of the previous layer
      const deps = (name: string) => {
        lookups++;
        const i = Number(name.slice(1));
        return i < 100 ? [] : [`p${i - 100}`, `p${i - 100 + ((i % 100) === 99 ? 0 : 1)}`].filter((v, k, a) => a.indexOf(v) === k);
      };
      let cheapCalls = 0;
      const s = new Scheduler(names, deps, { slots: 8, keepGoing: false, cheap: () => (cheapCalls++, true) }); // every part up to date: the split looks ahead
      await runSchedule(s, { run: async () => true });
      expect(s.done.size).toBe(n);
      return lookups + cheapCalls;
    };
    const small = await count(2_000);
    const large = await count(20_000);
    // ten times the parts: about ten times the work (a rescan per start would be a hundred)
    expect(large / small).toBeLessThan(12);
  });

  it('a long chain is skipped without deep recursion', async () => {
    const n = 200_000;
    const names = Array.from({ length: n }, (_, i) => `c${i}`);
    let skipped = 0;
    const s = new Scheduler(names, (x) => (x === 'c0' ? [] : [`c${Number(x.slice(1)) - 1}`]), { slots: 2, keepGoing: true, onSkip: () => skipped++ });
    await runSchedule(s, { run: async (p) => p !== 'c0' });
    expect(skipped).toBe(n - 1);
  });

  it('rejects an edge to a part outside the schedule and a bad slot count', () => {
    expect(() => new Scheduler(['a'], () => ['zz'], { slots: 1, keepGoing: false })).toThrow(/not scheduled/);
    expect(() => new Scheduler(['a'], () => [], { slots: 0, keepGoing: false })).toThrow(/positive integer/);
  });
});
