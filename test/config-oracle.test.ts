/**
 * Differential test: every config in test/fixtures/buildout/<case>/buildout.cfg is resolved
 * by Debian's zc.buildout (scripts/buildout-oracle.py, one python process for the whole
 * corpus) and by loadConfig(); sections, options (names, order, values) and errors must agree.
 *
 * Nothing is excluded from the comparison: in zc.buildout-defaults mode (no
 * buildoutDefaults), loadConfig reproduces buildout's [buildout] defaults and [versions] pins.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigLanguageError, loadConfig } from '../src/config/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CORPUS = path.join(ROOT, 'test/fixtures/buildout');
const PYTHON = '/usr/bin/python3';
const ORACLE = path.join(ROOT, 'scripts/buildout-oracle.py');

type Sections = Array<[string, Array<[string, string]>]>;
interface OracleResult {
  file: string;
  sections?: Sections;
  error?: { type: string; kind: string; message: string };
}

const cases = readdirSync(CORPUS, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(path.join(CORPUS, d.name, 'buildout.cfg')))
  .map((d) => d.name)
  .sort();

/**
 * Documented differences (docs/config-language.md): case -> [buildout's error kind, ours].
 * zc.buildout does not normalise extended paths, so `b/b.cfg` extending `../a.cfg` is not
 * recognised as `a.cfg` and it recurses until Python's RecursionError; kiln normalises paths
 * and reports the loop.
 */
const KNOWN_DIFFERENCES: Record<string, [string, string]> = {
  'err-extends-loop-subdir': ['recursion', 'extends-loop'],
};

const oracle = new Map<string, OracleResult>();

beforeAll(() => {
  const files = cases.map((c) => path.join(CORPUS, c, 'buildout.cfg'));
  const r = spawnSync(PYTHON, [ORACLE, ...files], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`oracle failed (${r.status}): ${r.error ?? ''}\n${r.stderr}`);
  for (const line of r.stdout.split('\n')) {
    if (!line.trim()) continue;
    const res = JSON.parse(line) as OracleResult;
    oracle.set(res.file, res);
  }
});

async function ours(file: string): Promise<{ sections?: Sections; error?: unknown }> {
  try {
    const cfg = await loadConfig(file, { overrides: [{ section: 'buildout', option: 'offline', value: 'true' }] });
    const sections: Sections = cfg.sectionNames().map((s) => [s, cfg.sectionEntries(s)]);
    return { sections };
  } catch (error) {
    return { error };
  }
}

describe('config language vs zc.buildout 2.13.2', () => {
  it('has a corpus of at least 40 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });

  for (const c of cases) {
    it(c, async () => {
      const file = path.join(CORPUS, c, 'buildout.cfg');
      const want = oracle.get(file);
      expect(want, 'oracle result').toBeDefined();
      const got = await ours(file);
      if (want!.error) {
        if (!got.error) throw new Error(`zc.buildout fails (${want!.error.kind}: ${want!.error.message}) but kiln does not`);
        if (!(got.error instanceof ConfigLanguageError)) throw got.error;
        const e = got.error;
        const [theirs, mine] = KNOWN_DIFFERENCES[c] ?? [want!.error.kind, want!.error.kind];
        expect(want!.error.kind, want!.error.message).toBe(theirs);
        expect(e.kind, `${e.message}\n--- buildout: ${want!.error.message}`).toBe(mine);
        // ours names file:line
        expect(e.origin, e.message).toBeDefined();
        expect(e.origin!.line, e.message).toBeGreaterThan(0);
        expect(existsSync(e.origin!.file), e.message).toBe(true);
        expect(e.message).toContain(`${e.origin!.file}:${e.origin!.line}`);
      } else {
        if (got.error) throw got.error;
        expect(got.sections).toEqual(want!.sections);
      }
    });
  }
});
