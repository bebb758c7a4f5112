// Batched state writes (src/engine/state-writer.ts) and what they must not change: a kill -9
// after parts were committed loses no part, even when their state records were not yet written.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { StateWriter } from '../src/engine/state-writer.js';
import { kilnAsync, kilnP, parts, project } from './helpers/kiln.js';

describe('StateWriter', () => {
  afterEach(() => vi.useRealTimers());

  test('writes the first change at once, batches the next ones into one write per interval, flush writes the rest', () => {
    vi.useFakeTimers();
    let now = 0;
    const writes: number[] = [];
    const w = new StateWriter(() => writes.push(now), 1000, () => now);
    w.changed();
    expect(writes).toEqual([0]);
    now = 100;
    w.changed();
    now = 200;
    w.changed();
    expect(writes).toEqual([0]); // within the interval: pending
    expect(w.pending).toBe(true);
    now = 1000;
    vi.advanceTimersByTime(1000);
    expect(writes).toEqual([0, 1000]); // one write for both changes
    expect(w.pending).toBe(false);
    now = 1500;
    w.changed();
    w.flush(); // the end of a build: no waiting for the interval
    expect(writes).toEqual([0, 1000, 1500]);
    w.flush(); // nothing changed since: no write
    expect(writes).toEqual([0, 1000, 1500]);
    vi.advanceTimersByTime(5000);
    expect(writes).toEqual([0, 1000, 1500]); // the flushed timer does not fire
  });

  test('a failed timed write is reported by the next flush, and the change stays pending', () => {
    vi.useFakeTimers();
    let now = 0;
    let fail = true;
    let n = 0;
    const w = new StateWriter(
      () => {
        if (now > 0 && fail) throw new Error('disk full');
        n++;
      },
      1000,
      () => now,
    );
    w.changed();
    now = 10;
    w.changed();
    now = 1000;
    vi.advanceTimersByTime(1000);
    expect(w.pending).toBe(true);
    fail = false;
    expect(() => w.flush()).toThrow('disk full'); // written now, then the earlier failure reported
    expect(n).toBe(2);
    expect(w.pending).toBe(false);
  });
});

const cfg = (n: number) => {
  let s = `[buildout]\nparts = last\n`;
  const deps: string[] = [];
  for (let i = 0; i < n; i++) {
    s += `[q${i}]\nrecipe = kiln:command\nargv =\n  /bin/sh\n  -c\n  echo ${i} > "$OUT/v"\n`;
    deps.push(`\${q${i}:location}`);
  }
  s += `[last]\nrecipe = kiln:command\nin = ${deps.join(' ')}\ncommand = sleep 5; echo done > "$OUT/v"\n`;
  return s;
};

test('kill -9 right after parts were committed: the next build finds them all, builds only the rest', async () => {
  const N = 40;
  const p = project({ 'buildout.cfg': cfg(N) });
  const child = kilnAsync(p.dir, ['build', '-j', '2']);
  // 'last' starts only when all q* are committed (their links exist); kill at once
  const deadline = Date.now() + 120_000;
  while (!existsSync(join(p.dir, 'out/logs/last.log'))) {
    if (Date.now() > deadline) throw new Error('the build did not reach the last part');
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  for (let i = 0; i < N; i++) expect(readFileSync(join(p.dir, `out/parts/q${i}/v`), 'utf8')).toBe(`${i}\n`);
  const r = await kilnP(p.dir, ['build', '--json', '-j', '2']);
  expect(r.code, r.stderr).toBe(0);
  expect(parts(r, 'part-done')).toEqual(['last']);
  expect(parts(r, 'part-cached')).toHaveLength(N);
  // and the state records them again: a plan after the rebuild has nothing to do
  const state = JSON.parse(readFileSync(join(p.dir, 'out/.kiln/state.json'), 'utf8')) as { parts: Record<string, unknown> };
  expect(Object.keys(state.parts)).toHaveLength(N + 1);
}, 200_000);
