/**
 * The recipe interface. A recipe kind is one module in src/recipes/ that exports a Recipe;
 * the engine builds a part by calling install() (or update()) with a BuildContext.
 * Like a buildout recipe's install()/update(), like one nfpm packager per format.
 */
import type { Origin } from './lib/errors.js';
import type { RunOptions, RunResult } from './lib/exec.js';

export interface OptionSpec {
  description: string;
  required?: boolean;
  /** default value (a string, as in buildout) */
  default?: string;
}

/** Typed access to a part's resolved options; every error names file:line, part and option. */
export interface PartOptions {
  readonly part: string;
  has(name: string): boolean;
  get(name: string): string | undefined;
  /** the value, or a ConfigError naming where the part is defined */
  require(name: string): string;
  /** whitespace-separated words */
  list(name: string): string[];
  /** one entry per non-empty line, trimmed */
  lines(name: string): string[];
  bool(name: string, dflt: boolean): boolean;
  int(name: string, dflt: number): number;
  /** `KEY=VALUE` lines as a record */
  env(name: string): Record<string, string>;
  /** a path option resolved against the directory of the file that defined it */
  path(name: string): string | undefined;
  /** one path per line (URLs left alone), each resolved like path() */
  paths(name: string): string[];
  /** resolve a relative path found in option `name` against the file that defined the option */
  resolvePath(name: string, value: string): string;
  origin(name: string): Origin | undefined;
  /** a ConfigError pointing at this option */
  error(name: string, detail: string): Error;
  /** a ConfigError pointing at the line of option `name` that reads `line` (the option's line when not found) */
  errorAt?(name: string, line: string, detail: string): Error;
  all(): Record<string, string>;
}

export interface BuildContext {
  part: string;
  options: PartOptions;
  /** Stable final path of the part's output (what ${part:location} gives). Bake this into outputs. */
  location: string;
  /** Empty directory: everything the part produces goes here; moved into place atomically on success. */
  staging: string;
  /** Scratch directory, removed afterwards. */
  work: string;
  /** Directory of the top-level config (buildout:directory). */
  projectDir: string;
  /** Persistent cache shared across projects (~/.cache/kiln): downloads, chroots. */
  cacheDir: string;
  offline: boolean;
  /** parallelism available to this part (make -j) */
  jobs: number;
  sourceDateEpoch: number;
  signal: AbortSignal;
  /** Previous good output of this part when it exists (read-only), for update(). */
  previous?: string;
  /** Locations of the parts this part depends on. */
  deps: Record<string, string>;
  /** Append to the part's log (out/logs/PART.log). */
  log(text: string): void;
  /** Tell the user something about the build that is no failure (a skipped input): a line in the
   *  part's log and a `part-notice` build event (printed, and in `--json`). */
  notice?(message: string): void;
  /** Run a command (argv array, no shell), logged to the part's log; failures carry the log tail. */
  run(argv: string[], opts?: RunOptions): Promise<RunResult>;
}

/** What a recipe sees at plan time (no side effects allowed). */
export interface PlanContext {
  part: string;
  options: PartOptions;
  projectDir: string;
  cacheDir: string;
}

export interface Recipe {
  /** kind name, e.g. 'download'; referenced as `recipe = kiln:download` */
  kind: string;
  /** bump to invalidate every cached output of this kind */
  version: string;
  description: string;
  options: Record<string, OptionSpec>;
  /** further allowed option names (e.g. /^environment-/) */
  optionPatterns?: RegExp[];
  /** Check option values at plan time. Throw ConfigError (options.error()). */
  validate?(ctx: PlanContext): void;
  /** Local files/directories whose content is part of the signature. */
  inputs?(ctx: PlanContext): string[] | Promise<string[]>;
  /** Host commands needed to build, for doctor and early missing-tool errors. */
  tools?(ctx: PlanContext): string[];
  /** Build into ctx.staging. */
  install(ctx: BuildContext): Promise<void>;
  /** Cheaper rebuild from ctx.previous when the recipe can (optional); falls back to install. */
  update?(ctx: BuildContext): Promise<void>;
}
