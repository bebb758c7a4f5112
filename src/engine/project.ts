/**
 * A project: the loaded config, its parts (sections with `recipe =`), the dependency graph
 * between them (buildout semantics: a ${other:...} reference makes `other` a dependency),
 * validated options, and each part's content signature.
 */
import { dirname, join, resolve, sep } from 'node:path';
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { ConfigError, formatOrigin, type Origin } from '../lib/errors.js';
import { containedPath, partNameProblem } from '../lib/paths.js';
import { Options } from '../options.js';
import type { OptionSpec, PlanContext, Recipe } from '../kind.js';
import { hashPath, sha256, type StatCache } from '../lib/hash.js';
import { isMappedRecipe, resolveRecipe, UnknownRecipeError, unknownRecipe } from './registry.js';
import { defaultCacheDir } from '../lib/cache.js';
import { urlBasename } from '../lib/url-name.js';
import { didYouMean, nearMisses } from './suggest.js';

export const DEFAULT_SOURCE_DATE_EPOCH = 1704067200; // 2024-01-01T00:00:00Z

/** Options every part may have whatever its recipe. */
const ENGINE_OPTIONS = new Set(['recipe', 'location', 'shared']);

export interface ProjectOptions {
  configFile: string;
  /** where outputs go (default: ./out) */
  outDir?: string;
  /** persistent cache (default: $KILN_CACHE_DIR or ~/.cache/kiln) */
  cacheDir?: string;
  overrides?: Array<{ section: string; option: string; value: string }>;
  offline?: boolean;
}

export interface Part {
  name: string;
  recipeSpec: string;
  recipe: Recipe;
  options: Options;
  /** direct dependency parts, with the origin of the option holding the reference */
  deps: Map<string, Origin>;
  location: string;
  shared: boolean;
  signature: string;
  /** what went into the signature (for `kiln plan` explanations) */
  sigParts: SignatureParts;
  /** the recipe is not implemented by kiln: the part is planned and shown, not built */
  unknownRecipe?: boolean;
  /**
   * A part of a SlapOS recipe kiln maps (slapos.recipe.cmmi, ...) whose options kiln's kind does
   * not take (Python hooks, ...): the error, raised when the part is to be built.
   */
  unsupported?: ConfigError;
}

export interface SignatureParts {
  recipe: string;
  version: string;
  options: Record<string, string>;
  inputs: Record<string, string>;
  deps: Record<string, string>;
  sourceDateEpoch: number;
}

/** What a recipe's plan-time hooks (tools, locationInOutput, innerJobs ...) get for a loaded part. */
export function planContext(project: Project, part: Part): PlanContext {
  return { part: part.name, options: part.options, projectDir: project.projectDir, cacheDir: project.cacheDir };
}

export function kilnBuildoutDefaults(configFile: string, outDir: string, cacheDir: string): Record<string, string> {
  return {
    directory: dirname(configFile),
    'out-directory': outDir,
    'parts-directory': '${buildout:out-directory}/parts',
    'logs-directory': '${buildout:out-directory}/logs',
    'bin-directory': '${buildout:directory}/bin',
    'download-cache': join(cacheDir, 'downloads'),
    'shared-part-list': join(cacheDir, 'shared'),
    'kiln-cache-directory': cacheDir,
    'source-date-epoch': String(DEFAULT_SOURCE_DATE_EPOCH),
    offline: 'false',
    parts: '',
  };
}

const REF_RE = /\$\{([^:}\s$]*):([^}\s]+)\}/g;
const SHARED_PLACEHOLDER = (name: string) => `@@kiln-shared-location:${name}@@`;

/** (section, option) pairs referenced anywhere in raw values; `${:x}` resolved to its own section. */
function scanRawReferences(config: Config): { pairs: Set<string>; bySection: Map<string, Set<string>> } {
  const pairs = new Set<string>();
  const bySection = new Map<string, Set<string>>();
  for (const s of config.sectionNames()) {
    const targets = new Set<string>();
    for (const o of config.optionNames(s)) {
      const v = config.raw(s, o);
      if (!v || !v.includes('${')) continue;
      const clean = v.replace(/\$\$/g, '');
      for (const m of clean.matchAll(REF_RE)) {
        const sec = m[1] || s;
        pairs.add(`${sec}\0${m[2]}`);
        if (sec !== s) targets.add(sec);
      }
    }
    bySection.set(s, targets);
  }
  return { pairs, bySection };
}

function truthy(v: string | undefined): boolean {
  return !!v && ['true', 'yes', 'on', '1'].includes(v.trim().toLowerCase());
}

export class Project {
  config!: Config;
  configFile!: string;
  projectDir!: string;
  outDir!: string;
  partsDir!: string;
  logsDir!: string;
  kilnDir!: string;
  storeDir!: string;
  sharedDir!: string;
  cacheDir!: string;
  /** [buildout] download-cache (default CACHE/downloads) */
  downloadCache!: string;
  offline = false;
  sourceDateEpoch = DEFAULT_SOURCE_DATE_EPOCH;
  /** parts listed in [buildout] parts, in order */
  selected: string[] = [];
  /** every part needed by the selection, keyed by name */
  parts = new Map<string, Part>();
  /** topological order of `parts` (dependencies first, buildout's order otherwise) */
  order: string[] = [];
  /** recipes kiln does not implement, with the parts (of `parts`) using each, in order */
  unknownRecipes = new Map<string, string[]>();

  /** Parts among `names` whose options kiln's mapped recipes do not take, with the error. */
  unsupportedIn(names: string[]): Part[] {
    return names.map((n) => this.parts.get(n)!).filter((part) => part?.unsupported);
  }

  /** The recipes kiln does not implement among `names`' parts, grouped by recipe. */
  unknownIn(names: string[]): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const n of names) {
      const part = this.parts.get(n);
      if (!part?.unknownRecipe) continue;
      let l = out.get(part.recipeSpec);
      if (!l) out.set(part.recipeSpec, (l = []));
      l.push(n);
    }
    return out;
  }

  /** Parts needed to build `targets` (default: the selection), dependencies first. */
  closure(targets?: string[]): string[] {
    const want = new Set<string>();
    const visit = (n: string) => {
      if (want.has(n)) return;
      want.add(n);
      for (const d of this.parts.get(n)!.deps.keys()) visit(d);
    };
    for (const t of targets ?? this.selected) {
      if (!this.parts.has(t)) {
        throw new ConfigError(`unknown part '${t}'${didYouMean(t, [...this.parts.keys()])} (parts: ${[...this.parts.keys()].join(', ') || 'none'})`);
      }
      visit(t);
    }
    return this.order.filter((n) => want.has(n));
  }
}

export interface LoadProjectResult {
  project: Project;
  statCacheUsed: StatCache;
}

function loadProjectConfig(opts: ProjectOptions, configFile: string, cacheDir: string) {
  const outDir = resolve(opts.outDir ?? 'out');
  const overrides = [...(opts.overrides ?? [])];
  if (opts.offline) overrides.push({ section: 'buildout', option: 'offline', value: 'true' });
  return loadConfig(configFile, {
    buildoutDefaults: kilnBuildoutDefaults(configFile, outDir, cacheDir),
    withZcBuildoutDefaults: true,
    overrides,
  });
}

/** Every section with a recipe gets the location its recipe would set (shared parts: a placeholder until signed). */
function setLocations(config: Config, partsDir: string, sharedParts: Set<string>, origin: Origin): void {
  for (const name of config.sectionNames()) {
    if (name === 'buildout' || !hasRecipe(config, name)) continue;
    const shared = truthy(config.raw(name, 'shared'));
    if (shared) sharedParts.add(name);
    if (shared && config.raw(name, 'location') !== undefined) {
      // the shared store owns the entry (ENTRY/manifest.json + ENTRY/out): its path is kiln's
      throw new ConfigError(`a shared part's location is chosen by kiln (under the shared directory): remove it`, { origin: config.origin(name, 'location'), section: name, option: 'location' });
    }
    if (config.raw(name, 'location') === undefined) {
      // a bad name is reported with its section's file:line; never a path outside parts/
      const loc = partNameProblem(name) ? join(partsDir, '.invalid') : containedPath(partsDir, name, 'part name', undefined, { single: true });
      config.setDefault(name, 'location', shared ? SHARED_PLACEHOLDER(name) : loc, origin);
    }
  }
  // what the download recipe sets when it is initialised (`target`), for every section using it
  for (const name of config.sectionNames()) {
    const spec = config.raw(name, 'recipe')?.trim();
    if (spec && DOWNLOAD_SPECS.has(spec)) INIT_OPTIONS.download!(config, name, { file: '<kiln default for download>', line: 0 });
  }
}

/** A section is a part when its `recipe` is set and not empty (zc.buildout: `if self.get('recipe')`). */
function hasRecipe(config: Config, name: string): boolean {
  const r = config.raw(name, 'recipe');
  return r !== undefined && r.trim() !== '';
}

const DOWNLOAD_SPECS = new Set(['slapos.recipe.build:download', 'hexagonit.recipe.download', 'kiln:download']);

/**
 * The config with the project's defaults and parts' locations, without loading recipes or
 * checking parts: for `kiln show` of one section when the project as a whole does not load.
 */
export async function loadSectionConfig(opts: ProjectOptions): Promise<Config> {
  const configFile = resolve(opts.configFile);
  const config = await loadProjectConfig(opts, configFile, resolve(opts.cacheDir ?? defaultCacheDir()));
  let partsDir = join(resolve(opts.outDir ?? 'out'), 'parts');
  try {
    partsDir = resolve(config.get('buildout', 'parts-directory'));
  } catch {
    /* kiln's default */
  }
  setLocations(config, partsDir, new Set(), { file: '<kiln default for part>', line: 0 });
  return config;
}

/**
 * Load a project: a short list of named steps, each taking what the previous ones produced.
 *
 *   config    the resolved config, directories, SOURCE_DATE_EPOCH       -> Project (no parts yet)
 *   select    [buildout] parts checked, candidate parts from raw refs   -> Selection
 *   defaults  every part's location (shared parts: a placeholder)       -> shared part names
 *   recipes   recipe kinds loaded, their option defaults applied        -> Recipes
 *   edges     exact dependency edges of the needed parts                -> Edges
 *   order     topological order, cycles reported with their path        -> project.order
 *   validate  each part's options against its kind (file:line errors)   -> Validated
 *   sign      inputs hashed, signature, final location                  -> Part
 */
export async function loadProject(opts: ProjectOptions, statCache: StatCache = {}): Promise<LoadProjectResult> {
  const p = await configStep(opts);
  const sel = selectStep(p);
  const sharedParts = defaultsStep(p);
  const recipes = await recipesStep(p, sel.candidates);
  const deps = await edgesStep(p, recipes);
  p.order = topoOrder(p.selected, deps, p.config);
  const statCacheUsed: StatCache = {};
  for (const name of p.order) {
    const v = validateStep(p, name, recipes, sel.referenced);
    p.parts.set(name, await signStep(p, v, deps.get(name)!, sharedParts.has(name), statCache, statCacheUsed));
  }
  return { project: p, statCacheUsed };
}

const engineOrigin = (kind: string): Origin => ({ file: `<kiln default for ${kind}>`, line: 0 });

/** config: the resolved config with kiln's buildout defaults, the project's directories and SOURCE_DATE_EPOCH. */
async function configStep(opts: ProjectOptions): Promise<Project> {
  const p = new Project();
  p.configFile = resolve(opts.configFile);
  p.cacheDir = resolve(opts.cacheDir ?? defaultCacheDir());
  const config = await loadProjectConfig(opts, p.configFile, p.cacheDir);
  p.config = config;
  p.projectDir = config.get('buildout', 'directory');
  p.outDir = resolve(config.get('buildout', 'out-directory'));
  p.partsDir = resolve(config.get('buildout', 'parts-directory'));
  p.logsDir = resolve(config.get('buildout', 'logs-directory'));
  p.kilnDir = join(p.outDir, '.kiln');
  p.storeDir = join(p.kilnDir, 'store');
  p.sharedDir = resolve(config.get('buildout', 'shared-part-list').trim().split(/\s+/).pop() || join(p.cacheDir, 'shared'));
  p.downloadCache = resolve(p.projectDir, config.get('buildout', 'download-cache').trim());
  p.offline = truthy(config.get('buildout', 'offline'));
  const sdeRaw = process.env.SOURCE_DATE_EPOCH ?? config.get('buildout', 'source-date-epoch');
  if (!/^\d+$/.test(sdeRaw.trim())) {
    throw new ConfigError(`source-date-epoch must be a number of seconds, got '${sdeRaw}'`, {
      origin: config.origin('buildout', 'source-date-epoch'),
      section: 'buildout',
      option: 'source-date-epoch',
    });
  }
  p.sourceDateEpoch = Number(sdeRaw.trim());
  return p;
}

interface Selection {
  /** sections with a recipe reachable from the selection through raw references (a superset of the parts) */
  candidates: string[];
  /** `section\0option` pairs referenced anywhere (variables other options use are no typos) */
  referenced: Set<string>;
}

/** select: [buildout] parts names sections with a recipe; candidate parts found from raw references. */
function selectStep(p: Project): Selection {
  const config = p.config;
  const partsOrigin = config.origin('buildout', 'parts');
  p.selected = config.get('buildout', 'parts').split(/\s+/).filter(Boolean);
  for (const s of p.selected) {
    if (!config.has(s)) {
      throw new ConfigError(`[buildout] parts names '${s}', but there is no section [${s}]${didYouMean(s, config.sectionNames())}`, {
        origin: partsOrigin,
        section: 'buildout',
        option: 'parts',
      });
    }
    if (!hasRecipe(config, s)) {
      throw new ConfigError(`section [${s}] is listed in [buildout] parts but has no 'recipe' option`, {
        origin: config.sectionOrigin(s) ?? partsOrigin,
        section: s,
      });
    }
  }
  // a superset of the parts; exact edges come after resolution (edgesStep)
  const { pairs: referenced, bySection } = scanRawReferences(config);
  const candidates: string[] = [];
  const seen = new Set<string>();
  const stack = [...p.selected].reverse();
  while (stack.length) {
    const s = stack.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    if (config.has(s) && hasRecipe(config, s)) candidates.push(s);
    for (const t of bySection.get(s) ?? []) if (config.has(t) && !seen.has(t)) stack.push(t);
  }
  return { candidates, referenced };
}

/**
 * defaults: every section with a recipe gets its location, as zc.buildout's recipes set it when
 * the section is first used (a reference to ${x:location} from a section that is not a part
 * works). First of all: resolving any option may resolve whole sections (buildout semantics).
 */
function defaultsStep(p: Project): Set<string> {
  const sharedParts = new Set<string>();
  setLocations(p.config, p.partsDir, sharedParts, engineOrigin('part'));
  return sharedParts;
}

/** Each part's kind, the spec it was named by; kinds kiln does not implement in `unknown`. */
interface Recipes {
  byPart: Map<string, { recipe: Recipe; spec: string }>;
  unknown: Set<string>;
  load(name: string): Promise<{ recipe: Recipe; spec: string }>;
}

/**
 * recipes: load the candidates' kinds (those named without substitution first, then the rest,
 * each resolving only after the defaults before it) and apply their option defaults; a recipe
 * kiln does not implement (a buildout egg) is no error until such a part is built.
 */
async function recipesStep(p: Project, candidates: string[]): Promise<Recipes> {
  const config = p.config;
  const byPart = new Map<string, { recipe: Recipe; spec: string }>();
  const unknown = new Set<string>();
  const specOf = (name: string) => {
    const raw = config.raw(name, 'recipe')!;
    return (raw.includes('${') ? config.get(name, 'recipe') : raw).trim();
  };
  const loadKind = async (name: string, spec: string): Promise<Recipe> => {
    try {
      return await resolveRecipe(spec, config.origin(name, 'recipe'), name, p.cacheDir);
    } catch (e) {
      if (!(e instanceof UnknownRecipeError)) throw e;
      unknown.add(name);
      return unknownRecipe(spec);
    }
  };
  const load = async (name: string) => {
    let r = byPart.get(name);
    if (!r) {
      const spec = specOf(name);
      r = { recipe: await loadKind(name, spec), spec };
      byPart.set(name, r);
    }
    return r;
  };
  const lateDefaults: Array<() => void> = [];
  const applyDefaults = (name: string) => {
    const { recipe } = byPart.get(name)!;
    for (const [opt, spec] of Object.entries(recipe.options)) {
      if (spec.default !== undefined && config.raw(name, opt) === undefined) config.setDefault(name, opt, spec.default, engineOrigin(recipe.kind));
    }
    const init = INIT_OPTIONS[recipe.kind];
    if (init) lateDefaults.push(() => init(config, name, engineOrigin(recipe.kind)));
  };
  const rawFirst = candidates.filter((n) => !config.raw(n, 'recipe')!.includes('${'));
  await Promise.all(rawFirst.map(load));
  for (const name of rawFirst) applyDefaults(name);
  for (const name of candidates) {
    if (byPart.has(name)) continue;
    await load(name);
    applyDefaults(name);
  }
  for (const f of lateDefaults) f();
  return { byPart, unknown, load };
}

type Edges = Map<string, Map<string, Origin>>;

/** edges: each needed part's dependencies (its references, followed through plain sections), with the origin of each. */
async function edgesStep(p: Project, recipes: Recipes): Promise<Edges> {
  const config = p.config;
  const deps: Edges = new Map();
  const plainRefs = new Map<string, Map<string, Origin>>();
  const partRefs = (name: string): Map<string, Origin> => {
    const out = new Map<string, Origin>();
    const seenPlain = new Set<string>();
    const follow = (refs: Map<string, Origin>, via: Origin | undefined) => {
      for (const [sec, o] of refs) {
        if (sec === name || sec === 'buildout') continue;
        if (recipes.byPart.has(sec) || hasRecipe(config, sec)) {
          if (!out.has(sec)) out.set(sec, via ?? o);
        } else if (!seenPlain.has(sec)) {
          seenPlain.add(sec);
          let r = plainRefs.get(sec);
          if (!r) {
            r = config.references(sec);
            plainRefs.set(sec, r);
          }
          follow(r, via ?? o);
        }
      }
    };
    follow(config.references(name), undefined);
    return out;
  };
  const seen = new Set<string>();
  const queue = [...p.selected];
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i]!;
    if (seen.has(n)) continue;
    seen.add(n);
    await recipes.load(n); // a part only an exact edge reaches
    const d = partRefs(n);
    deps.set(n, d);
    for (const t of d.keys()) queue.push(t);
  }
  return deps;
}

const KIND_TABLES = new WeakMap<Recipe, { allowed: Set<string>; required: Array<[string, OptionSpec]> }>();
/** Per kind, once (not once a part): the option names a part may set, and the required options. */
function kindTables(recipe: Recipe): { allowed: Set<string>; required: Array<[string, OptionSpec]> } {
  let t = KIND_TABLES.get(recipe);
  if (!t) {
    t = {
      allowed: new Set([...ENGINE_OPTIONS, ...(INIT_OPTION_NAMES[recipe.kind] ?? []), ...Object.keys(recipe.options)]),
      required: Object.entries(recipe.options).filter(([, s]) => s.required),
    };
    KIND_TABLES.set(recipe, t);
  }
  return t;
}

/** A part whose options passed its kind's checks (or, for a mapped SlapOS recipe, the error kept for build time). */
interface Validated {
  name: string;
  recipe: Recipe;
  spec: string;
  isUnknown: boolean;
  lenient: boolean;
  values: Record<string, string>;
  options: Options;
  unsupported?: ConfigError;
}

/** validate: the part's name, unknown options (typo hints), `$$`, shared locations, required and typed options, the kind's validate. */
function validateStep(p: Project, name: string, recipes: Recipes, referenced: Set<string>): Validated {
  const config = p.config;
  const nameProblem = partNameProblem(name);
  if (nameProblem) throw new ConfigError(nameProblem, { origin: config.sectionOrigin(name), section: name });
  const { recipe, spec } = recipes.byPart.get(name)!;
  const isUnknown = recipes.unknown.has(name);
  if (isUnknown) {
    let l = p.unknownRecipes.get(spec);
    if (!l) p.unknownRecipes.set(spec, (l = []));
    l.push(name);
  }
  // Imported profiles (SlapOS recipe names kiln maps) may use options kiln's kind does not
  // take: such a part is planned and shown, and only building it is an error.
  const lenient = isMappedRecipe(spec);
  let unsupported: ConfigError | undefined;
  const check = (f: () => void) => {
    if (!lenient) return f();
    if (unsupported) return;
    try {
      f();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      unsupported = e;
    }
  };
  const { allowed, required } = kindTables(recipe);
  for (const opt of isUnknown ? [] : config.optionNames(name)) {
    if (allowed.has(opt)) continue;
    // a near miss of a declared option is a typo, even where a pattern of the recipe takes it,
    // when that pattern would take the declared name as well (a catch-all such as
    // kiln:command's): 'commnad' is a typo of 'command'. A pattern that does not take the
    // declared name is explicit: container-test's test-os next to 'tests' is meant.
    const near = nearMisses(opt, allowed);
    if (recipe.optionPatterns?.some((re) => re.test(opt) && !near.some((n) => re.test(n)))) continue;
    const typo = near.length > 0;
    if (!typo && referenced.has(`${name}\0${opt}`)) continue; // a variable other options use, as in buildout profiles
    check(() => {
      throw new ConfigError(
        `unknown option '${opt}' for recipe ${spec}${didYouMean(opt, [...allowed])}; it takes: ${Object.keys(recipe.options).sort().join(', ')}`,
        { origin: config.origin(name, opt), section: name, option: opt },
      );
    });
  }
  const values = config.section(name);
  // buildout keeps `$$` in resolved values; recipes get the `$` it stands for (so `$${VAR}`
  // in a recipe file reaches a script as `${VAR}`)
  for (const [k, v] of Object.entries(values)) if (v.includes('$$')) values[k] = v.replace(/\$\$/g, '$');
  // replace shared-part placeholders by their real locations (deps come first in order)
  for (const [k, v] of Object.entries(values)) {
    if (v.includes('@@kiln-shared-location:')) {
      values[k] = v.replace(/@@kiln-shared-location:([^@]+)@@/g, (all: string, n: string) => p.parts.get(n)?.location ?? all);
    }
  }
  const options = new Options(name, values, (o) => config.origin(name, o), config.sectionOrigin(name), p.projectDir);
  for (const [opt, ospec] of required) {
    if (values[opt] === undefined || values[opt]!.trim() === '') {
      check(() => {
        throw new ConfigError(`missing required option '${opt}' for recipe ${spec} (${ospec.description})`, {
          origin: config.sectionOrigin(name),
          section: name,
          option: opt,
        });
      });
    }
  }
  // every option against its type (once, here): recipes read the typed values
  if (!unsupported) check(() => options.check(isUnknown ? {} : recipe.options));
  const planCtx: PlanContext = { part: name, options, projectDir: p.projectDir, cacheDir: p.cacheDir };
  if (!isUnknown && !unsupported) check(() => recipe.validate?.(planCtx));
  return { name, recipe, spec, isUnknown, lenient, values, options, unsupported };
}

/** sign: the declared inputs hashed, the signature over kind, options, inputs, dependencies and SOURCE_DATE_EPOCH, the final location. */
async function signStep(p: Project, v: Validated, deps: Map<string, Origin>, shared: boolean, statCache: StatCache, statCacheUsed: StatCache): Promise<Part> {
  const { name, recipe, values, options } = v;
  let unsupported = v.unsupported;
  const depLocations = [...deps.keys()].map((d) => p.parts.get(d)!.location);
  const inputs: Record<string, string> = {};
  let declared: string[] = [];
  if (!v.isUnknown && !unsupported) {
    try {
      declared = (await recipe.inputs?.({ part: name, options, projectDir: p.projectDir, cacheDir: p.cacheDir })) ?? [];
    } catch (e) {
      if (!v.lenient || !(e instanceof ConfigError)) throw e;
      unsupported = e;
    }
  }
  for (const inp of declared) {
    const abs = resolve(p.projectDir, inp);
    if (abs === p.outDir || abs.startsWith(p.outDir + sep) || depLocations.some((l) => abs === l || abs.startsWith(l + sep))) continue;
    inputs[abs] = await hashPath(abs, statCache, statCacheUsed);
  }
  const sigOptions: Record<string, string> = {};
  for (const k of Object.keys(values).sort()) if (!(shared && k === 'location')) sigOptions[k] = values[k]!;
  const depSigs: Record<string, string> = {};
  for (const d of [...deps.keys()].sort()) depSigs[d] = p.parts.get(d)!.signature;
  const sigParts: SignatureParts = {
    recipe: recipe.kind,
    version: recipe.version,
    options: sigOptions,
    inputs,
    deps: depSigs,
    sourceDateEpoch: p.sourceDateEpoch,
  };
  const signature = sha256(JSON.stringify(sigParts));
  let location = resolve(values.location!);
  if (shared && values.location === SHARED_PLACEHOLDER(name)) {
    location = join(p.sharedDir, name, signature.slice(0, 32), 'out');
    values.location = location;
  }
  return { name, recipeSpec: v.spec, recipe, options, deps, location, shared, signature, sigParts, unknownRecipe: v.isUnknown || undefined, unsupported };
}

/**
 * Options the SlapOS recipes kiln maps set when they are initialised, beyond `location` and the
 * declared defaults: slapos.recipe.build:download's `target` (the downloaded file).
 */
const INIT_OPTION_NAMES: Record<string, string[]> = { download: ['target'] };
const INIT_OPTIONS: Record<string, (config: Config, name: string, origin: Origin) => void> = {
  download: (config, name, origin) => {
    if (config.raw(name, 'target') !== undefined || truthy(config.raw(name, 'extract'))) return;
    if (config.raw(name, 'filename') !== undefined) {
      config.setDefault(name, 'target', '${:location}/${:filename}', origin);
      return;
    }
    const url = config.raw(name, 'url');
    if (url === undefined) return;
    const last = url.trim().replace(/\/+$/, '').split('/').pop() ?? '';
    if (!last.includes('${') && !url.includes('${')) {
      config.setDefault(name, 'target', `\${:location}/${urlBasename(url.trim())}`, origin);
      return;
    }
    try {
      const v = config.getOptional(name, 'url');
      if (v !== undefined) config.setDefault(name, 'target', `\${:location}/${urlBasename(v.trim())}`, origin);
    } catch {
      /* the url does not resolve: the part's own error says so where it is used */
    }
  },
};

function topoOrder(roots: string[], deps: Map<string, Map<string, Origin>>, config: Config): string[] {
  const order: string[] = [];
  const state = new Map<string, 1 | 2>(); // 1 visiting, 2 done
  const stack: string[] = [];
  const visit = (n: string) => {
    const st = state.get(n);
    if (st === 2) return;
    if (st === 1) {
      const cyc = [...stack.slice(stack.indexOf(n)), n];
      const edges = cyc.slice(0, -1).map((a, i) => {
        const b = cyc[i + 1]!;
        return `  ${a} -> ${b}  (${formatOrigin(deps.get(a)!.get(b))}: [${a}] references \${${b}:...})`;
      });
      throw new ConfigError(`dependency cycle between parts: ${cyc.join(' -> ')}\n${edges.join('\n')}`, {
        origin: deps.get(cyc[0]!)!.get(cyc[1]!),
        section: cyc[0],
      });
    }
    state.set(n, 1);
    stack.push(n);
    for (const d of deps.get(n)!.keys()) visit(d);
    stack.pop();
    state.set(n, 2);
    order.push(n);
  };
  for (const r of roots) visit(r);
  // parts reachable only as dependencies are visited through their dependants
  for (const n of deps.keys()) visit(n);
  void config;
  return order;
}
