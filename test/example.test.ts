// The example distribution in recipes/ builds (as `npm run example` does), into a temporary out/.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect, test } from 'vitest';
import { kilnP } from './helpers/kiln.js';

const root = join(import.meta.dirname, '..');

test('recipes/distribution.cfg builds GNU hello from Debian upstream source, runs it, and packages it lint-clean', async () => {
  const out = mkdtempSync(join(tmpdir(), 'kiln-example-'));
  // the user's cache (downloads are keyed by content): a second test run downloads nothing
  const env = { KILN_CACHE_DIR: join(process.env.HOME ?? '/root', '.cache', 'kiln') };
  const r = await kilnP(root, ['build', '-c', 'recipes/distribution.cfg', '-o', out, '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  expect(readFileSync(join(out, 'parts/hello-smoke/greeting.txt'), 'utf8')).toBe('built by kiln\n');
  expect(execFileSync(join(out, 'parts/hello/bin/hello'), ['--version'], { encoding: 'utf8' })).toMatch(/GNU Hello\) 2\.10/);
  // the example packages are lint-clean: lintian and rpmlint report no errors
  const debs = ['hello-bin', 'hello-extras'].map((p) => join(out, 'parts', p, readdirSync(join(out, 'parts', p)).find((f) => f.endsWith('.deb'))!));
  const rpms = debs.map((d) => join(dirname(d), readdirSync(dirname(d)).find((f) => f.endsWith('.rpm'))!));
  const lint = spawnSync('lintian', ['--tag-display-limit', '0', ...debs], { encoding: 'utf8' });
  expect(lint.stdout.split('\n').filter((l) => l.startsWith('E:')), lint.stdout).toEqual([]);
  const home = mkdtempSync(join(tmpdir(), 'kiln-rpmlint-'));
  execFileSync('rpm', ['--import', join(out, 'parts/archive-key/public.asc')], { env: { ...process.env, HOME: home } });
  expect(execFileSync('rpm', ['-K', ...rpms], { encoding: 'utf8', env: { ...process.env, HOME: home } })).toMatch(/digests signatures OK\n.*digests signatures OK/);
  const rl = spawnSync('rpmlint', rpms, { encoding: 'utf8', env: { ...process.env, HOME: home } });
  expect(rl.stdout, rl.stdout).toMatch(/\b0 errors\b/);
  const again = await kilnP(root, ['build', '-c', 'recipes/distribution.cfg', '-o', out, '--json'], env);
  expect(again.code).toBe(0);
  expect(again.events.filter((e) => e.type === 'part-start')).toEqual([]);
}, 300_000);
