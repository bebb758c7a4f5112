/**
 * `--lint` for the report: lintian on every .deb and rpmlint on every .rpm of the manifest, each
 * verdict kept by artifact path and sha256 in out/.kiln/evidence/lint.json (an unchanged package
 * is not linted again).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Project } from '../engine/project.js';
import { run } from '../lib/exec.js';
import { writeFileAtomic } from '../lib/fsutil.js';
import { requireTool } from '../lib/tools.js';
import type { Manifest } from './manifest.js';
import { readLint } from './report.js';

export interface LintVerdict {
  tool: string;
  /** pass | warnings | errors */
  verdict: string;
  detail: string;
  sha256: string;
}

function summarize(tool: string, out: string): { verdict: string; detail: string } {
  const lines = out.split('\n').filter((l) => l.trim());
  if (tool === 'lintian') {
    const e = lines.filter((l) => l.startsWith('E:'));
    const w = lines.filter((l) => l.startsWith('W:'));
    return { verdict: e.length ? 'errors' : w.length ? 'warnings' : 'pass', detail: [...e, ...w].slice(0, 20).join('\n') };
  }
  const m = /(\d+) errors?, (\d+) warnings?/.exec(out);
  const errors = m ? Number(m[1]) : lines.filter((l) => / E: /.test(l)).length;
  const warnings = m ? Number(m[2]) : lines.filter((l) => / W: /.test(l)).length;
  return { verdict: errors ? 'errors' : warnings ? 'warnings' : 'pass', detail: lines.filter((l) => / [EW]: /.test(l)).slice(0, 20).join('\n') };
}

export async function lintArtifacts(project: Project, m: Manifest): Promise<Map<string, LintVerdict>> {
  const prev = readLint(project) as Map<string, LintVerdict>;
  const out = new Map<string, LintVerdict>();
  const todo = m.artifacts.filter((a) => a.type === 'deb' || a.type === 'rpm');
  if (todo.some((a) => a.type === 'deb')) requireTool('lintian');
  if (todo.some((a) => a.type === 'rpm')) requireTool('rpmlint');
  const home = mkdtempSync(join(tmpdir(), 'kiln-lint-'));
  try {
    for (const a of todo) {
      const p = prev.get(a.path);
      if (p && p.sha256 === a.sha256) {
        out.set(a.path, p);
        continue;
      }
      const tool = a.type === 'deb' ? 'lintian' : 'rpmlint';
      const argv = tool === 'lintian' ? ['lintian', '--tag-display-limit', '0', join(project.outDir, a.path)] : ['rpmlint', join(project.outDir, a.path)];
      // rpmlint keeps state under HOME: a private one
      const r = await run(argv, { allowFailure: true, capture: true, env: { HOME: home, LC_ALL: 'C.UTF-8' } });
      out.set(a.path, { tool, ...summarize(tool, `${r.stdout}\n${r.stderr}`), sha256: a.sha256 });
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  writeFileAtomic(join(project.kilnDir, 'evidence', 'lint.json'), JSON.stringify(Object.fromEntries([...out].sort((x, y) => (x[0] < y[0] ? -1 : 1))), null, 1) + '\n');
  return out;
}
