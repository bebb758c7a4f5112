// The example distribution in recipes/ builds (as `npm run example` does), into a temporary out/.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { kiln } from './helpers/kiln.js';

const root = join(import.meta.dirname, '..');

test('recipes/distribution.cfg builds GNU hello from Debian upstream source and runs it', () => {
  const out = mkdtempSync(join(tmpdir(), 'kiln-example-'));
  // the user's cache (downloads are keyed by content): a second test run downloads nothing
  const env = { KILN_CACHE_DIR: join(process.env.HOME ?? '/root', '.cache', 'kiln') };
  const r = kiln(root, ['build', '-c', 'recipes/distribution.cfg', '-o', out, '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  expect(readFileSync(join(out, 'parts/hello-smoke/greeting.txt'), 'utf8')).toBe('built by kiln\n');
  expect(execFileSync(join(out, 'parts/hello/bin/hello'), ['--version'], { encoding: 'utf8' })).toMatch(/GNU Hello\) 2\.10/);
  const again = kiln(root, ['build', '-c', 'recipes/distribution.cfg', '-o', out, '--json'], env);
  expect(again.code).toBe(0);
  expect(again.events.filter((e) => e.type === 'part-start')).toEqual([]);
}, 300_000);
