#!/usr/bin/env node
// kiln command-line entry point: runs the compiled engine (npm run build / scripts/setup.sh compile it).
import { main } from '../dist/cli.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err?.stack ?? String(err)); process.exitCode = 1; },
);
