// The per-file time table printed at the end of `npm test` (test/helpers/file-times-reporter.ts):
// the formatting on its own, and a real vitest run of a two-file fixture suite with the reporter.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { fileTimesTable } from './helpers/file-times-reporter.js';

test('the table lists files slowest first, with the sum and the wall time', () => {
  const out = fileTimesTable(
    [
      { file: 'test/a.test.ts', seconds: 1.25, tests: 3, state: 'passed' },
      { file: 'test/long-name.test.ts', seconds: 30, tests: 1, state: 'failed' },
      { file: 'test/c.test.ts', seconds: 2, tests: 0, state: 'skipped' },
    ],
    20.5,
  );
  const lines = out.trim().split('\n');
  expect(lines[0]).toBe('Time per test file (slowest first):');
  expect(lines.slice(2, 5).map((l) => l.split(/\s+/)[0])).toEqual(['test/long-name.test.ts', 'test/c.test.ts', 'test/a.test.ts']);
  expect(lines[2]).toMatch(/^test\/long-name\.test\.ts\s+30\.0\s+1\s+failed$/);
  expect(lines[5]).toMatch(/^total \(3 files\)\s+33\.3$/);
  expect(lines[6]).toMatch(/^wall time of the run\s+20\.5$/);
});

test('a real vitest run prints every file with its time and tests, sorted, and the total', () => {
  const dir = join(import.meta.dirname, 'fixtures', 'file-times');
  const vitest = join(import.meta.dirname, '..', 'node_modules', 'vitest', 'vitest.mjs');
  const r = spawnSync(process.execPath, [vitest, 'run', '--config', 'vitest.config.ts'], { cwd: dir, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  expect(r.status, r.stderr).toBe(0);
  const at = r.stdout.indexOf('Time per test file (slowest first):');
  expect(at, r.stdout).toBeGreaterThanOrEqual(0);
  const rows = r.stdout
    .slice(at)
    .split('\n')
    .filter((l) => /\.check\.ts\s/.test(l))
    .map((l) => l.trim().split(/\s+/));
  expect(rows.map((x) => x[0]).sort()).toEqual(['quick.check.ts', 'slow.check.ts']);
  const secs = rows.map((x) => Number(x[1]));
  expect(secs[0]).toBeGreaterThanOrEqual(secs[1]!); // sorted, whatever the load
  const slow = rows.find((x) => x[0] === 'slow.check.ts')!;
  expect(Number(slow[1])).toBeGreaterThanOrEqual(1.5); // it waits 1.5 s: a lower bound only
  expect(slow.slice(2)).toEqual(['2', 'passed']);
  const total = r.stdout.match(/total \(2 files\)\s+([\d.]+)/);
  expect(total).not.toBeNull();
  expect(Number(total![1])).toBeCloseTo(secs[0]! + secs[1]!, 0);
});
