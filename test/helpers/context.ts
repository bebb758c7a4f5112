/**
 * A BuildContext for testing one recipe directly, without a config file or the engine.
 * makeContext('part', { option: 'value' }) gives fresh staging/work dirs under a temp root.
 */
import { mkdtempSync, mkdirSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Options } from '../../src/options.js';
import { run } from '../../src/lib/exec.js';
import type { BuildContext } from '../../src/kind.js';

export function makeContext(part: string, values: Record<string, string>, extra: Partial<BuildContext> = {}): BuildContext & { root: string; logFile: string } {
  const root = mkdtempSync(join(tmpdir(), `kiln-test-${part}-`));
  const staging = join(root, 'staging');
  const work = join(root, 'work');
  mkdirSync(staging);
  mkdirSync(work);
  const logFile = join(root, `${part}.log`);
  const options = new Options(part, values, () => undefined, { file: 'test.cfg', line: 1 }, root);
  const ac = new AbortController();
  const log = (t: string) => appendFileSync(logFile, t);
  return {
    root,
    logFile,
    part,
    options,
    location: join(root, 'location'),
    staging,
    work,
    projectDir: root,
    cacheDir: process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln'),
    offline: false,
    jobs: 2,
    sourceDateEpoch: 1700000000,
    signal: ac.signal,
    deps: {},
    log,
    run: (argv, opts = {}) => run(argv, { log, logFile, part, signal: ac.signal, ...opts }),
    ...extra,
  };
}
