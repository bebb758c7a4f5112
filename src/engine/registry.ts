/**
 * Recipe kinds by name. Built-in kinds load lazily (a no-op build only imports the kinds
 * its config uses). `recipe =` accepts:
 *   kiln:NAME                       built-in kind
 *   slapos.recipe.cmmi, slapos.recipe.build:download, ...   SlapOS aliases of built-ins
 *   ./path/to/module.js | .mjs | .ts[:export]   project-local module (relative to the file defining the option)
 *   npm-package[:export]            an installed npm package exporting a Recipe
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, type Origin } from '../lib/errors.js';
import type { Recipe } from '../kind.js';
import { sha256 } from '../lib/hash.js';

type Loader = () => Promise<Record<string, unknown>>;

/**
 * Every built-in kind and the lazy import of its module (a no-op build imports only the kinds its
 * config uses). A new kind is one line here; test/registry.test.ts checks that each module's
 * `kind` is its key.
 */
const BUILTIN = {
  'apt-repo': () => import('../kinds/apt-repo.js'),
  chroot: () => import('../kinds/chroot.js'),
  'clonezilla-image': () => import('../kinds/clonezilla-image.js'),
  cmmi: () => import('../kinds/cmmi.js'),
  command: () => import('../kinds/command.js'),
  'container-test': () => import('../kinds/container-test.js'),
  'disk-image': () => import('../kinds/disk-image.js'),
  dkms: () => import('../kinds/dkms.js'),
  download: () => import('../kinds/download.js'),
  'dpkg-buildpackage': () => import('../kinds/dpkg-buildpackage.js'),
  'ganeti-extstorage': () => import('../kinds/ganeti-extstorage.js'),
  'ganeti-os': () => import('../kinds/ganeti-os.js'),
  'gpg-key': () => import('../kinds/gpg-key.js'),
  kernel: () => import('../kinds/kernel.js'),
  package: () => import('../kinds/package.js'),
  'qemu-test': () => import('../kinds/qemu-test.js'),
  'recovery-iso': () => import('../kinds/recovery-iso.js'),
  'rpm-repo': () => import('../kinds/rpm-repo.js'),
  rpmbuild: () => import('../kinds/rpmbuild.js'),
  'x509-key': () => import('../kinds/x509-key.js'),
} satisfies Record<string, Loader>;

export type BuiltinKind = keyof typeof BUILTIN;

const ALIASES: Record<string, BuiltinKind> = {
  'slapos.recipe.cmmi': 'cmmi',
  'slapos.recipe.cmmi:default': 'cmmi',
  'slapos.recipe.build:download': 'download',
  'slapos.recipe.build:download-unpacked': 'download',
  'hexagonit.recipe.download': 'download',
  'plone.recipe.command': 'command',
};

/** A SlapOS / buildout recipe name kiln maps to one of its kinds (slapos.recipe.cmmi, ...). */
export function isMappedRecipe(spec: string): boolean {
  return Object.prototype.hasOwnProperty.call(ALIASES, spec.trim());
}

/** The lazy import of a built-in kind's module. */
export function builtinLoader(kind: string): Loader | undefined {
  return Object.prototype.hasOwnProperty.call(BUILTIN, kind) ? BUILTIN[kind as BuiltinKind] : undefined;
}

const KINDS = Object.keys(BUILTIN).sort();
export function builtinKinds(): string[] {
  return [...KINDS];
}

function pickRecipe(mod: Record<string, unknown>, exportName: string | undefined): Recipe | undefined {
  const cands = exportName ? [mod[exportName]] : [mod.recipe, mod.default, (mod.default as Record<string, unknown> | undefined)?.recipe];
  for (const c of cands) {
    if (c && typeof c === 'object' && typeof (c as Recipe).install === 'function' && typeof (c as Recipe).kind === 'string') return c as Recipe;
  }
  return undefined;
}

/**
 * A recipe kiln does not implement (a buildout egg such as zc.recipe.egg or
 * slapos.recipe.template, with no npm package of that name): its parts can be planned,
 * graphed and shown, not built.
 */
export class UnknownRecipeError extends ConfigError {}

/** The recipe of a part whose recipe kiln does not implement: takes any option, cannot build. */
export function unknownRecipe(spec: string): Recipe {
  return {
    kind: 'unknown',
    version: '0',
    description: `${spec} (not implemented by kiln)`,
    options: {},
    optionPatterns: [/^/],
    async install() {
      throw new ConfigError(`recipe ${spec} is not implemented by kiln`);
    },
  };
}

const cache = new Map<string, Promise<Recipe>>();
const npmResolved = new Map<string, string | null>();
const chains = new Map<string, string>();

/** The node_modules directories Node's resolution looks at from `dir` upwards. */
function nodeModulesChain(dir: string): string {
  let c = chains.get(dir);
  if (c === undefined) {
    const parent = dirname(dir);
    const here = existsSync(join(dir, 'node_modules')) ? join(dir, 'node_modules') : '';
    const up = parent === dir ? '' : nodeModulesChain(parent);
    c = here ? `${here}|${up}` : up;
    chains.set(dir, c);
  }
  return c;
}

/** Compile a project-local TypeScript recipe with the TypeScript compiler (cached by content). */
async function loadTs(file: string, cacheDir: string): Promise<Record<string, unknown>> {
  const src = readFileSync(file, 'utf8');
  const out = join(cacheDir, 'ts-recipes', `${sha256(file + '\0' + src).slice(0, 24)}.mjs`);
  if (!existsSync(out)) {
    const ts = (await import('typescript')).default;
    const js = ts.transpileModule(src, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, sourceMap: false },
    }).outputText;
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, js);
  }
  return import(pathToFileURL(out).href);
}

/**
 * Resolve a `recipe =` value to a Recipe. `origin` is where the option was set (errors name it,
 * and relative module paths resolve against its directory).
 */
export function resolveRecipe(spec: string, origin: Origin | undefined, part: string, cacheDir: string): Promise<Recipe> {
  spec = spec.trim();
  const baseDir = origin && isAbsolute(origin.file) ? dirname(origin.file) : process.cwd();
  const key = `${baseDir}\0${spec}`;
  let p = cache.get(key);
  if (!p) {
    p = doResolve(spec, origin, part, baseDir, cacheDir);
    cache.set(key, p);
    // an unknown recipe stays unknown (hundreds of parts may use one); other failures are retried
    p.catch((e) => {
      if (!(e instanceof UnknownRecipeError)) cache.delete(key);
    });
  }
  // (an UnknownRecipeError names the first part that asked: loadProject only needs its kind)
  return p;
}

async function doResolve(spec: string, origin: Origin | undefined, part: string, baseDir: string, cacheDir: string): Promise<Recipe> {
  const err = (detail: string) => new ConfigError(detail, { origin, section: part, option: 'recipe' });
  let kind: string | undefined;
  if (spec.startsWith('kiln:')) kind = spec.slice(5);
  else if (ALIASES[spec]) kind = ALIASES[spec];
  if (kind !== undefined) {
    const loader = builtinLoader(kind);
    if (!loader) throw err(`unknown recipe '${spec}' (built-in kinds: ${builtinKinds().map((k) => 'kiln:' + k).join(', ')})`);
    const r = pickRecipe(await loader(), undefined);
    if (!r) throw err(`built-in recipe module for '${spec}' exports no recipe`);
    return r;
  }
  // module[:export]
  let modSpec = spec;
  let exportName: string | undefined;
  const m = /^(.*?):([A-Za-z_$][\w$]*)$/.exec(spec);
  if (m && !/^[A-Za-z]:[\\/]/.test(spec)) {
    modSpec = m[1]!;
    exportName = m[2];
  }
  let mod: Record<string, unknown>;
  if (modSpec.startsWith('.') || isAbsolute(modSpec)) {
    const file = resolve(baseDir, modSpec);
    if (!existsSync(file) || !statSync(file).isFile()) throw err(`recipe module not found: ${file}`);
    try {
      mod = file.endsWith('.ts') ? await loadTs(file, cacheDir) : await import(pathToFileURL(file).href);
    } catch (e) {
      throw err(`cannot load recipe module ${file}: ${(e as Error).message}`);
    }
  } else {
    if (modSpec === spec && /^[A-Za-z_][\w.-]*:[\w.-]+$/.test(spec)) {
      // a buildout entry point such as slapos.recipe.build:vm.install-ubuntu (not a JS export name)
      throw new UnknownRecipeError(`unknown recipe '${spec}': not a built-in kind nor an npm package (a buildout recipe kiln does not implement)`, {
        origin,
        section: part,
        option: 'recipe',
      });
    }
    if (!/^(@[\w.-]+\/)?[\w.-]+(\/[\w./-]+)?$/.test(modSpec)) {
      throw err(`unknown recipe '${spec}' (use kiln:KIND, a ./local/module.ts or an npm package; built-in kinds: ${builtinKinds().join(', ')})`);
    }
    let resolved: string;
    try {
      // the same package name from many directories (a profile's components): Node's
      // resolution only depends on the node_modules directories above baseDir
      const key = `${nodeModulesChain(baseDir)}\0${modSpec}`;
      let r = npmResolved.get(key);
      if (r === undefined) {
        try {
          r = createRequire(join(baseDir, 'package.json')).resolve(modSpec);
        } catch {
          r = null;
        }
        npmResolved.set(key, r);
      }
      if (r === null) throw new Error('not found');
      resolved = r;
    } catch {
      throw new UnknownRecipeError(
        `unknown recipe '${spec}': not a built-in kind and no npm package '${modSpec}' is installed (built-in kinds: ${builtinKinds().map((k) => 'kiln:' + k).join(', ')})`,
        { origin, section: part, option: 'recipe' },
      );
    }
    mod = await import(pathToFileURL(resolved).href);
  }
  const r = pickRecipe(mod, exportName);
  if (!r) throw err(`module '${modSpec}' does not export a recipe${exportName ? ` named '${exportName}'` : ''} (an object with kind, version, options and install())`);
  return r;
}
