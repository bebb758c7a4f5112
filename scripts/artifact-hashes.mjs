#!/usr/bin/env node
// sha256 of every file under OUT/parts (links followed into the store), sorted by path:
//   node scripts/artifact-hashes.mjs OUT > before.txt; ...; node scripts/artifact-hashes.mjs OUT > after.txt
//   node scripts/artifact-hashes.mjs --compare before.txt after.txt   (exit 1 when any file differs)
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
if (args[0] === '--compare') {
  const read = (f) => new Map(readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => { const i = l.indexOf('  '); return [l.slice(i + 2), l.slice(0, i)]; }));
  const a = read(args[1]), b = read(args[2]);
  let same = 0; const diff = [];
  for (const [p, h] of a) { if (!b.has(p)) diff.push(`only before: ${p}`); else if (b.get(p) !== h) diff.push(`differs: ${p}`); else same++; }
  for (const p of b.keys()) if (!a.has(p)) diff.push(`only after: ${p}`);
  console.log(`${same} files identical, ${diff.length} differences`);
  for (const d of diff) console.log(d);
  process.exit(diff.length ? 1 : 0);
}
const root = join(args[0] ?? 'out', 'parts');
const out = [];
const walk = (dir, rel) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name), r = rel ? `${rel}/${name}` : name;
    const st = statSync(p);
    if (st.isDirectory()) walk(p, r);
    else if (st.isFile()) out.push(`${createHash('sha256').update(readFileSync(p)).digest('hex')}  ${r}`);
  }
};
walk(root, '');
process.stdout.write(out.join('\n') + '\n');
