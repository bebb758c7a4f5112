// The layers of src/ (docs/architecture.md): no module imports from a higher layer, and the
// static import graph has no cycle. LAYERS is the one table to update when files move.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect, test } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

/** Layer of each path prefix under src/ (longest prefix wins), lowest first. */
const LAYERS: Array<[string, number]> = [
  ['lib/', 0],
  ['pkg/', 1],
  ['config/', 1],
  ['vm/', 1],
  ['image/', 2],
  ['sandbox/', 2],
  ['kind.ts', 2],
  ['options.ts', 2],
  ['kinds/', 3],
  ['engine/', 4],
  ['evidence/', 4],
  ['remote/', 4],
  ['farm/', 4],
  ['cli.ts', 5],
];

/** Upward imports allowed (none since the moves of issue 12, finding 3). A new one fails the test. */
const KNOWN_UPWARD = new Set<string>([]);

function layerOf(file: string): number {
  let best: [string, number] | undefined;
  for (const l of LAYERS) if (file.startsWith(l[0]) && (!best || l[0].length > best[0].length)) best = l;
  if (!best) throw new Error(`src/${file} is in no layer: add it to LAYERS in test/layers.test.ts`);
  return best[1];
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Static imports (type-only ones too: they tie the modules' designs) of src/ files, as src-relative paths. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) {
    const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
    out.push(relative(SRC, target));
  }
  return out;
}

test('no import from a lower layer into a higher one, and no import cycle', () => {
  const files = sources(SRC).map((f) => relative(SRC, f));
  const graph = new Map(files.map((f) => [f, imports(join(SRC, f))]));
  const upward: string[] = [];
  for (const [f, deps] of graph) {
    for (const d of deps) if (layerOf(d) > layerOf(f) && !KNOWN_UPWARD.has(`${f} -> ${d}`)) upward.push(`${f} (layer ${layerOf(f)}) -> ${d} (layer ${layerOf(d)})`);
  }
  expect(upward).toEqual([]);
  // a known one that is gone must leave the list (it only shrinks)
  const all = new Set([...graph].flatMap(([f, deps]) => deps.map((d) => `${f} -> ${d}`)));
  expect([...KNOWN_UPWARD].filter((k) => !all.has(k))).toEqual([]);
  const cycles: string[] = [];
  const state = new Map<string, number>();
  const stack: string[] = [];
  const visit = (f: string) => {
    if (state.get(f) === 2) return;
    if (state.get(f) === 1) {
      cycles.push([...stack.slice(stack.indexOf(f)), f].join(' -> '));
      return;
    }
    state.set(f, 1);
    stack.push(f);
    for (const d of graph.get(f) ?? []) visit(d);
    stack.pop();
    state.set(f, 2);
  };
  for (const f of files) visit(f);
  expect(cycles).toEqual([]);
});

test('no recipe kind imports another kind (shared code lives in helper modules of src/kinds/ or lower)', () => {
  // the kind modules: what the registry loads
  const registry = readFileSync(join(SRC, 'engine/registry.ts'), 'utf8');
  const kinds = new Set([...registry.matchAll(/import\('\.\.\/(kinds\/[a-z0-9-]+)\.js'\)/g)].map((m) => `${m[1]}.ts`));
  expect(kinds.size).toBeGreaterThan(15);
  const bad: string[] = [];
  for (const k of kinds) for (const d of imports(join(SRC, k))) if (kinds.has(d)) bad.push(`${k} -> ${d}`);
  expect(bad).toEqual([]);
});

