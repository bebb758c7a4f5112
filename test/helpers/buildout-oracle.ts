/** zc.buildout as the oracle: scripts/buildout-oracle.py with Debian's python3-zc.buildout, one JSON line per config. */
import { execFile } from 'node:child_process';
import * as path from 'node:path';

const PYTHON = '/usr/bin/python3';
const ORACLE = path.join(import.meta.dirname, '..', '..', 'scripts', 'buildout-oracle.py');

export type Sections = Array<[string, Array<[string, string]>]>;
export interface OracleResult {
  file: string;
  sections?: Sections;
  error?: { type: string; kind: string; message: string };
}

/** The oracle's result per config file (asynchronous: it may download from a server in this process). */
export function runBuildoutOracle(args: string[]): Promise<Map<string, OracleResult>> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [ORACLE, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`oracle failed: ${err.message}\n${stderr}`));
      const out = new Map<string, OracleResult>();
      for (const line of stdout.split('\n')) {
        if (!line.trim()) continue;
        const res = JSON.parse(line) as OracleResult;
        out.set(res.file, res);
      }
      resolve(out);
    });
  });
}
