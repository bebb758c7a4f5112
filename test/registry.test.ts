// The registry of built-in kinds is a typed map of lazy imports: each module's `kind` is its key,
// every recipe module in src/kinds/ is registered, and no name points at nothing.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { builtinKinds, builtinLoader, resolveRecipe } from '../src/engine/registry.js';

test("each built-in module's kind is its registry key, and every recipe module is registered", async () => {
  const kinds = builtinKinds();
  expect(kinds).not.toContain('deb');
  expect(kinds).not.toContain('rpm');
  for (const kind of kinds) {
    const mod = await builtinLoader(kind)!();
    const r = (mod.recipe ?? mod.default) as { kind: string };
    expect(r.kind, kind).toBe(kind);
    expect((await resolveRecipe(`kiln:${kind}`, undefined, 'p', '/nonexistent')).kind).toBe(kind);
  }
  // modules of src/kinds/ that export a recipe object are exactly the registered kinds
  const dir = join(import.meta.dirname, '..', 'src', 'kinds');
  const withRecipe: string[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const mod = await import(join(dir, f));
    if (mod.recipe && typeof mod.recipe.install === 'function') withRecipe.push(f.replace(/\.ts$/, ''));
  }
  expect(withRecipe.sort()).toEqual(kinds);
  expect(builtinLoader('no-such-kind')).toBeUndefined();
  await expect(resolveRecipe('kiln:deb', undefined, 'p', '/nonexistent')).rejects.toThrow(/unknown recipe 'kiln:deb'/);
});
