/**
 * kiln's config language: zc.buildout 2.13.2-compatible recipe files.
 * See docs/config-language.md.
 */
import { Conditions } from './conditions.js';
import { defaultConditionGlobals } from './expr.js';
import { defaultPython } from './pyfallback.js';
import { loadData } from './load.js';
import { BuildoutConfig } from './resolve.js';
import type { Config, LoadOptions } from './types.js';

export type { Config, LoadOptions, OptionHistoryEntry } from './types.js';
export { ConfigLanguageError, type ConfigErrorKind } from './errors.js';
export { BuildoutConfig } from './resolve.js';

/**
 * Load a config file (absolute or relative path, or a file:// / http(s):// URL), with
 * its `extends`, defaults and overrides. Substitution is lazy: errors in values are
 * reported by `get` / `section` / `references`, parse / extends errors here.
 */
export async function loadConfig(file: string, opts: LoadOptions = {}): Promise<BuildoutConfig & Config> {
  let globals: Record<string, unknown> | undefined;
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts.conditionGlobals ?? {}))
    if (typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') extra[k] = v;
  const conditions = new Conditions(
    () => (globals ??= { ...defaultConditionGlobals(), ...(opts.conditionGlobals ?? {}) }),
    opts.python === undefined ? defaultPython() : opts.python,
    opts.log ?? ((m) => process.stderr.write(`kiln: ${m}\n`)),
    extra,
  );
  let loaded;
  try {
    loaded = await loadData(file, {
      buildoutDefaults: opts.buildoutDefaults,
      withZcBuildoutDefaults: opts.withZcBuildoutDefaults,
      overrides: opts.overrides,
      conditions,
    });
  } finally {
    conditions.close();
  }
  const cfg = new BuildoutConfig(loaded);
  cfg.conditionStats = conditions.stats;
  return cfg;
}
