// One default cache directory (src/lib/cache.ts): KILN_CACHE_DIR, else XDG_CACHE_HOME/kiln, else
// ~/.cache/kiln; the engine, the chroot runner and the QEMU helpers all call it (before, the chroot
// runner and the QEMU helpers ignored XDG_CACHE_HOME).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { defaultCacheDir } from '../src/lib/cache.js';

const saved = { k: process.env.KILN_CACHE_DIR, x: process.env.XDG_CACHE_HOME };
afterEach(() => {
  for (const [name, v] of [['KILN_CACHE_DIR', saved.k], ['XDG_CACHE_HOME', saved.x]] as const) {
    if (v === undefined) delete process.env[name];
    else process.env[name] = v;
  }
});

test('KILN_CACHE_DIR, else XDG_CACHE_HOME/kiln, else ~/.cache/kiln', () => {
  process.env.KILN_CACHE_DIR = '/srv/kiln-cache';
  process.env.XDG_CACHE_HOME = '/xdg';
  expect(defaultCacheDir()).toBe('/srv/kiln-cache');
  delete process.env.KILN_CACHE_DIR;
  expect(defaultCacheDir()).toBe('/xdg/kiln');
  delete process.env.XDG_CACHE_HOME;
  expect(defaultCacheDir()).toBe(join(homedir(), '.cache', 'kiln'));
});

test('no other module of src/ works out the cache directory itself', () => {
  const src = join(import.meta.dirname, '..', 'src');
  const files = (d: string): string[] => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? files(join(d, n)) : n.endsWith('.ts') ? [join(d, n)] : []));
  const own = files(src)
    .filter((f) => relative(src, f) !== 'lib/cache.ts')
    .filter((f) => /'\.cache'/.test(readFileSync(f, 'utf8')))
    .map((f) => relative(src, f));
  expect(own).toEqual([]);
});
