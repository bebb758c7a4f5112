/**
 * The recipe interface. A recipe kind is one module in src/kinds/ that exports a Recipe;
 * the engine builds a part by calling install() (or update()) with a BuildContext.
 * Like a buildout recipe's install()/update(), like one nfpm packager per format.
 */
import type { Origin } from './lib/errors.js';
import type { RunOptions, RunResult } from './lib/exec.js';

/**
 * What an option holds. The engine checks every option of every part against its type once, at
 * load time (a bad value is a ConfigError with file:line, part and option: exit 3), and hands the
 * recipe trimmed, typed values (PartOptions.typed()).
 *   string   one line (multiline: free text, kept as written)
 *   bool     true/false/yes/no/on/off/1/0                         -> boolean
 *   int      an integer (min/max)                                  -> number
 *   size     bytes with an optional K/M/G/T suffix (KiB...; min)  -> number of bytes
 *   enum     one of `choices`                                      -> the choice
 *   path     one path, resolved against the file that sets it      -> absolute path (urls: a URL too)
 *   paths    one path per line, each resolved                      -> string[] (urls: URLs too)
 *   list     whitespace-separated words (`choices` / `pattern` per word) -> string[]
 *   lines    non-empty lines, trimmed (`pattern` per line)         -> string[]
 *   env      KEY=VALUE lines                                       -> Record<string, string>
 *   url      a URL (http, https, ftp, file) or a local path (single word)
 *   pattern  one line matching `pattern`
 */
export type OptionType = 'string' | 'bool' | 'int' | 'size' | 'enum' | 'path' | 'paths' | 'list' | 'lines' | 'env' | 'url' | 'pattern';

export interface OptionSpec {
  description: string;
  /** default 'string' */
  type?: OptionType;
  required?: boolean;
  /** default value (a string, as in buildout) */
  default?: string;
  /** enum: the allowed values; list: the allowed words */
  choices?: readonly string[];
  /** what one value is called in errors: "unknown NOUN 'x' (choices)" (default 'value') */
  noun?: string;
  /** pattern: the whole value; path: the path as written; list/lines: each word/line */
  pattern?: RegExp;
  /** what `pattern` means, for the error ("a Debian package name") */
  expected?: string;
  /** added to the error of a multi-line value of a single-line option ("put the long text in 'description'") */
  hint?: string;
  /** int/size bounds */
  min?: number;
  max?: number;
  /** string: free text over several lines (scripts, descriptions) */
  multiline?: boolean;
  /** path/paths: URLs are accepted too */
  urls?: boolean;
}

/** The options of a clean-room recipe (`cleanRoom: true`): one spec, shared by every such kind. */
export const CLEAN_ROOM_OPTIONS = {
  chroot: { type: 'path', description: 'build inside this chroot (${some-chroot:location}): a container, no network, clean room' },
  network: { type: 'bool', description: 'allow network access inside the chroot', default: 'false' },
} as const satisfies Record<string, OptionSpec>;

/**
 * The options of a kind that signs what it makes with an OpenPGP key: one spec for every such
 * kind; `what` says what the key signs ("repomd.xml", "the .rpm header").
 */
export function signingOptions(what: string) {
  return {
    'signing-key': { type: 'path', description: `OpenPGP secret key file (armored or binary): ${what}` },
    'signing-key-passphrase-file': { type: 'path', description: 'file holding the signing key passphrase' },
  } as const satisfies Record<string, OptionSpec>;
}

/** The key files of signingOptions() that are set: inputs of the part. */
export function signingInputs(v: { 'signing-key'?: string; 'signing-key-passphrase-file'?: string }): string[] {
  return [v['signing-key'], v['signing-key-passphrase-file']].filter((x): x is string => !!x);
}

/** The host tools signing needs when a key is set. */
export function signingTools(v: { 'signing-key'?: string }): string[] {
  return v['signing-key'] ? ['gpg', 'gpgconf'] : [];
}

type ValueOf<S extends OptionSpec> = S extends { type: 'bool' }
  ? boolean
  : S extends { type: 'int' | 'size' }
    ? number
    : S extends { type: 'paths' | 'list' | 'lines' }
      ? string[]
      : S extends { type: 'env' }
        ? Record<string, string>
        : S extends { type: 'enum'; choices: readonly (infer C)[] }
          ? C
          : string;

/** The typed values of an option table: list-like types are always there (empty), others when set, required or defaulted. */
export type OptionValues<T extends Record<string, OptionSpec>> = {
  [K in keyof T]: T[K] extends { type: 'paths' | 'list' | 'lines' | 'env' } ? ValueOf<T[K]> : T[K] extends { required: true } | { default: string } ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

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
  /**
   * The trimmed, typed values of the recipe's option table `specs` (checked by the engine at load
   * time; checked here, defaults applied, when a test hands a recipe options directly).
   */
  typed<T extends Record<string, OptionSpec>>(specs: T): OptionValues<T>;
  /**
   * The trimmed, typed value of an option no table names (one of the recipe's optionPatterns,
   * e.g. ganeti-os' suite-VARIANT) read with `spec` (the table entry of the option it overrides):
   * the same check and the same error, at its own file:line.
   */
  typedAs(name: string, spec: OptionSpec): unknown;
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
  /** `[buildout] download-cache` (default CACHE/downloads): where downloads are kept by content */
  downloadCache?: string;
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
  /**
   * The recipe runs its commands in a clean room when its `chroot` option is set (its table
   * includes CLEAN_ROOM_OPTIONS): the engine checks the chroot part and runs ctx.run inside it.
   */
  cleanRoom?: boolean;
  /**
   * The kind runs work in parallel inside a part (make -j, compressor or digest threads) sized by
   * ctx.jobs: it gets a share of the free -j slots. Other kinds hold one slot (ctx.jobs = 1), so a
   * single-threaded part does not keep parts that become ready after it waiting. A function
   * decides per part (kiln:command: when the command uses $KILN_JOBS).
   */
  innerJobs?: boolean | ((ctx: PlanContext) => boolean);
  /** further allowed option names (e.g. /^environment-/) */
  optionPatterns?: RegExp[];
  /** Check option values at plan time. Throw ConfigError (options.error()). */
  validate?(ctx: PlanContext): void;
  /** Local files/directories whose content is part of the signature. */
  inputs?(ctx: PlanContext): string[] | Promise<string[]>;
  /** Host commands needed to build, for doctor and early missing-tool errors. */
  tools?(ctx: PlanContext): string[];
  /**
   * True when the output embeds the part's own location (a file:// URL to it, a compiled-in
   * prefix): such an output is only valid at that path, so the remote cache keys it by the
   * concrete location and a build farm builds it on the coordinator (docs/farm.md).
   */
  locationInOutput?(ctx: PlanContext): boolean;
  /** Build into ctx.staging. */
  install(ctx: BuildContext): Promise<void>;
  /** Cheaper rebuild from ctx.previous when the recipe can (optional); falls back to install. */
  update?(ctx: BuildContext): Promise<void>;
}
