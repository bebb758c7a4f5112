// kiln:chroot with debootstrap (the fallback when mmdebstrap is missing): the same outputs, and
// the tarball normalised (no known-variable files, mtimes clamped, numeric owners). Built once
// into the shared cache (about 2 minutes on 2 cores); later runs are cache hits. Two uncached
// debootstrap builds were compared with cmp when this was written: bit-identical (docs/chroots.md).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { recipe } from '../src/kinds/chroot.js';
import { which } from '../src/lib/tools.js';
import { makeContext } from './helpers/context.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const defaults = Object.fromEntries(Object.entries(recipe.options).flatMap(([k, s]) => (s.default !== undefined ? [[k, s.default]] : [])));
const canRun = !!which('debootstrap') && process.getuid?.() === 0;
if (!canRun) console.warn('debootstrap test skipped: needs root and the debootstrap package');

test.skipIf(!canRun)('bootstrapper = debootstrap: tarball, manifest, normalised entries, its own cache key', async () => {
  const ctx = makeContext('bookworm-debootstrap', { ...defaults, bootstrapper: 'debootstrap' }, { cacheDir: CACHE });
  recipe.validate!(ctx);
  await recipe.install(ctx);
  const out = ctx.staging;
  expect(readFileSync(join(out, 'manifest'), 'utf8')).toMatch(/^base-files 12\.\S+ amd64$/m);
  const listing = execFileSync('tar', ['--numeric-owner', '-tvf', join(out, 'rootfs.tar'), '--full-time'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const names = listing.split('\n').filter(Boolean).map((l) => l.split(/\s+/)[5]!);
  expect(names[0]).toBe('./');
  for (const gone of ['./var/cache/ldconfig/aux-cache', './var/log/dpkg.log', './var/log/bootstrap.log', './debootstrap/']) expect(names).not.toContain(gone);
  // every mtime clamped to SOURCE_DATE_EPOCH or older
  const sde = ctx.sourceDateEpoch;
  for (const l of listing.split('\n').filter(Boolean)) {
    const [, , , date, time] = l.split(/\s+/);
    expect(Date.parse(`${date}T${time}Z`) / 1000).toBeLessThanOrEqual(sde);
  }
  // not the mmdebstrap chroot's key
  const mm = makeContext('bookworm-mm', { ...defaults }, { cacheDir: CACHE });
  const { chrootKey } = await import('../src/kinds/chroot.js');
  expect(readFileSync(join(out, 'key'), 'utf8').trim()).not.toBe(chrootKey(mm, mm.sourceDateEpoch));
}, 600_000);
