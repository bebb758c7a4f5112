// Compile src/ to dist/ when a source is newer than the last build: tests that spawn the real
// `kiln` process (bin/kiln.js) run the compiled engine.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const root = join(import.meta.dirname, '..');
  const stamp = join(root, 'dist', '.stamp');
  if (!existsSync(stamp) || newest(join(root, 'src')) > statSync(stamp).mtimeMs) {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
    writeFileSync(stamp, '');
  }
}
