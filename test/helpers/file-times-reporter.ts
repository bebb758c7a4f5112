/**
 * A vitest reporter (next to 'default' in vitest.config.ts) that prints, at the end of the run,
 * one line per test file with its time, slowest first, and the total: where `npm test` spends
 * its time. A file's time is vitest's diagnostic sum: environment setup, prepare, collect (import
 * and suite callbacks), setup files, and all tests and hooks. Files run in parallel (pool forks),
 * so the sum of the files is more than the run's wall time; both are printed.
 */
import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export interface FileTime {
  file: string;
  seconds: number;
  tests: number;
  state: string;
}

const s = (x: number) => x.toFixed(1).padStart(8);

/** The table as printed: slowest first, then the sum of all files and the run's wall time. */
export function fileTimesTable(rows: FileTime[], wallSeconds?: number): string {
  const sorted = [...rows].sort((a, b) => b.seconds - a.seconds || a.file.localeCompare(b.file));
  const total = rows.reduce((a, r) => a + r.seconds, 0);
  const width = Math.max(4, ...rows.map((r) => r.file.length));
  const lines = ['', 'Time per test file (slowest first):', `${'file'.padEnd(width)}  seconds  tests  state`];
  for (const r of sorted) lines.push(`${r.file.padEnd(width)}  ${s(r.seconds)}  ${String(r.tests).padStart(5)}  ${r.state}`);
  lines.push(`${`total (${rows.length} files)`.padEnd(width)}  ${s(total)}`);
  if (wallSeconds !== undefined) lines.push(`${'wall time of the run'.padEnd(width)}  ${s(wallSeconds)}`);
  return lines.join('\n') + '\n';
}

export function moduleTime(m: TestModule, root: string): FileTime {
  const d = m.diagnostic();
  const ms = d.environmentSetupDuration + d.prepareDuration + d.collectDuration + d.setupDuration + d.duration;
  return { file: relative(root, m.moduleId), seconds: ms / 1000, tests: [...m.children.allTests()].length, state: m.state() };
}

export default class FileTimesReporter implements Reporter {
  private started = Date.now();
  private root = process.cwd();

  onInit(ctx: { config: { root: string } }): void {
    this.started = Date.now();
    this.root = ctx.config.root;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    if (modules.length === 0) return;
    process.stdout.write(fileTimesTable(modules.map((m) => moduleTime(m, this.root)), (Date.now() - this.started) / 1000));
  }
}
