/**
 * Differential test: every config in test/fixtures/buildout/<case>/buildout.cfg is resolved
 * by Debian's zc.buildout (scripts/buildout-oracle.py, one python process for the whole
 * corpus) and by loadConfig(); sections, options (names, order, values) and errors must agree.
 *
 * Nothing is excluded from the comparison: in zc.buildout-defaults mode (no
 * buildoutDefaults), loadConfig reproduces buildout's [buildout] defaults and [versions] pins.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigLanguageError, loadConfig } from '../src/config/index.js';
import { runBuildoutOracle, type OracleResult, type Sections } from './helpers/buildout-oracle.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CORPUS = path.join(ROOT, 'test/fixtures/buildout');


const cases = readdirSync(CORPUS, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(path.join(CORPUS, d.name, 'buildout.cfg')))
  .map((d) => d.name)
  .sort();

/**
 * Cases needing absolute URLs: _generated/<case>/*.in are rendered into a temporary
 * directory (@CORPUS@ = the corpus directory, @HTTP@ = a local HTTP server serving
 * _http/). A case with an `online` marker runs without the offline=true override.
 */
const GENERATED = path.join(CORPUS, '_generated');
const generated = readdirSync(GENERATED).sort();
const caseFile = new Map<string, string>(cases.map((c) => [c, path.join(CORPUS, c, 'buildout.cfg')]));
const online = new Set<string>();
let tmp = '';
let server: Server | undefined;

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

/** asynchronous: the oracle downloads from the HTTP server running in this process */
async function runOracle(args: string[]): Promise<void> {
  for (const [file, res] of await runBuildoutOracle(args)) oracle.set(file, res);
}

beforeAll(async () => {
  const http = path.join(CORPUS, '_http');
  server = createServer((req, res) => {
    const p = path.join(http, path.normalize(decodeURIComponent((req.url ?? '/').split('?')[0])));
    if (!p.startsWith(http + path.sep) || !existsSync(p)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(readFileSync(p));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  tmp = mkdtempSync(path.join(tmpdir(), 'kiln-config-oracle-'));
  for (const c of generated) {
    const dir = path.join(tmp, c);
    cpSync(path.join(GENERATED, c), dir, { recursive: true });
    for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
      if (!f.endsWith('.in')) continue;
      const text = readFileSync(path.join(dir, f), 'utf8')
        .replaceAll('@CORPUS@', CORPUS)
        .replaceAll('@HTTP@', `http://127.0.0.1:${port}`);
      writeFileSync(path.join(dir, f.slice(0, -3)), text);
    }
    if (existsSync(path.join(dir, 'online'))) online.add(c);
    caseFile.set(c, path.join(dir, 'buildout.cfg'));
  }
  const all = [...cases, ...generated];
  await runOracle(all.filter((c) => !online.has(c)).map((c) => caseFile.get(c)!));
  await runOracle(['--online', ...all.filter((c) => online.has(c)).map((c) => caseFile.get(c)!)]);
});

afterAll(() => {
  server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function ours(file: string, isOnline: boolean): Promise<{ sections?: Sections; error?: unknown }> {
  try {
    const overrides = isOnline ? [] : [{ section: 'buildout', option: 'offline', value: 'true' }];
    const cfg = await loadConfig(file, { overrides });
    const sections: Sections = cfg.sectionNames().map((s) => [s, cfg.sectionEntries(s)]);
    return { sections };
  } catch (error) {
    return { error };
  }
}

describe('config language vs zc.buildout 2.13.2', () => {
  it('has a corpus of at least 40 cases', () => {
    expect(cases.length + generated.length).toBeGreaterThanOrEqual(40);
  });

  for (const c of [...cases, ...generated]) {
    it(c, async () => {
      const file = caseFile.get(c)!;
      const want = oracle.get(file);
      expect(want, 'oracle result').toBeDefined();
      const got = await ours(file, online.has(c));
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
        expect(existsSync(e.origin!.file) || /^(file|https?):\/\//.test(e.origin!.file), e.message).toBe(true);
        expect(e.message).toContain(`${e.origin!.file}:${e.origin!.line}`);
      } else {
        if (got.error) throw got.error;
        expect(got.sections).toEqual(want!.sections);
      }
    });
  }
});
