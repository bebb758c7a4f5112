#!/usr/bin/env node
// The 500-part graph of bench/engine-scale.mjs: first build, no-op and plan, side by side with
// zc.buildout on the same graph (pairs, medians of wall and CPU seconds).
// Usage: npm run build && node bench/engine-500.mjs [--pairs=5] [--keep]
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const r = spawnSync(process.execPath, [join(import.meta.dirname, 'engine-scale.mjs'), '--sizes=500', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
