/**
 * Reading files and `[buildout] extends`, like zc.buildout 2.13.2's `_open` and the
 * first half of `Buildout.__init__` (defaults, command-line overrides, directories).
 */
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Origin } from '../lib/errors.js';
import type { Conditions } from './conditions.js';
import { type Data, Key, SectionData, updateData, updateSection } from './data.js';
import { ConfigLanguageError } from './errors.js';
import { parseConfig, type ParsedFile } from './parser.js';
import { pyJoin, pySplit } from './pyutil.js';

export const isUrl = (s: string): boolean => /^[a-zA-Z0-9+.-]+:\/\//.test(s);

export const DEFAULT_ORIGIN: Origin = { file: '<default>', line: 0 };
export const COMPUTED_ORIGIN: Origin = { file: '<computed>', line: 0 };
export const OVERRIDE_ORIGIN: Origin = { file: '<command line>', line: 0 };

/** zc.buildout 2.13.2's `_buildout_default_options` (as seen with Debian's /usr/bin/python3). */
export const ZC_BUILDOUT_DEFAULTS: ReadonlyArray<[string, string]> = [
  ['allow-hosts', '*'],
  ['allow-picked-versions', 'true'],
  ['bin-directory', 'bin'],
  ['develop-eggs-directory', 'develop-eggs'],
  ['eggs-directory', 'eggs'],
  ['executable', '/usr/bin/python3'],
  ['find-links', ''],
  ['install-from-cache', 'false'],
  ['installed', '.installed.cfg'],
  ['log-format', ''],
  ['log-level', 'INFO'],
  ['newest', 'true'],
  ['offline', 'false'],
  ['parts-directory', 'parts'],
  ['prefer-final', 'true'],
  ['python', 'buildout'],
  ['show-picked-versions', 'false'],
  ['socket-timeout', ''],
  ['update-versions-file', ''],
  ['use-dependency-links', 'true'],
  ['allow-unknown-extras', 'false'],
];
/** The version pins zc.buildout adds to its versions section. */
export const ZC_BUILDOUT_VERSION_PINS: ReadonlyArray<[string, string]> = [
  ['zc.buildout', '>=2.13.2'],
  ['zc.recipe.egg', '>=2.0.6'],
];

interface OpenCtx {
  conditions: Conditions;
  /** each file's result (it and what it extends, merged), by location: a file is read, parsed and merged once per load */
  opened: Map<string, Data>;
  /** raw `offline` / `install-from-cache` values: command line, root file, defaults */
  offline: () => boolean;
  texts: Map<string, Promise<string>>;
}

function ioError(detail: string, origin?: Origin): ConfigLanguageError {
  return new ConfigLanguageError('io', detail, origin ? { origin, section: 'buildout', option: 'extends' } : {});
}

/** Files are UTF-8, like Python's text mode here: invalid bytes are an error, a BOM is kept. */
function decode(bytes: Uint8Array, loc: string, via: Origin | undefined): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw ioError(`${loc} is not valid UTF-8`, via);
  }
}

async function readLocation(ctx: OpenCtx, loc: string, via: Origin | undefined): Promise<string> {
  let p = ctx.texts.get(loc);
  if (!p) {
    p = (async () => {
      if (!isUrl(loc)) {
        let bytes: Uint8Array;
        try {
          // synchronous: files are read one after the other anyway (extends order), and
          // hundreds of small reads through the thread pool cost more than they overlap
          bytes = readFileSync(loc);
        } catch (e) {
          throw ioError(`cannot read ${loc}: ${(e as Error).message}`, via);
        }
        return decode(bytes, loc, via);
      }
      if (/^file:/i.test(loc)) {
        const m = /^file:\/\/[^/?#]*([^?#]*)/i.exec(loc);
        const fp = m ? m[1] : '';
        let bytes: Uint8Array;
        try {
          bytes = await readFile(fp);
        } catch (e) {
          throw ioError(`cannot read ${loc}: ${(e as Error).message}`, via);
        }
        return decode(bytes, loc, via);
      }
      if (ctx.offline()) throw ioError(`couldn't download ${loc} in offline mode`, via);
      let res: Response;
      try {
        res = await fetch(loc, { signal: AbortSignal.timeout(120_000) });
      } catch (e) {
        throw ioError(`error downloading extends for URL ${loc}: ${(e as Error).message}`, via);
      }
      if (!res.ok) throw ioError(`error downloading extends for URL ${loc}: HTTP ${res.status} ${res.statusText}`, via);
      return decode(new Uint8Array(await res.arrayBuffer()), loc, via);
    })();
    ctx.texts.set(loc, p);
  }
  return p;
}

const PROFILE_BASE = '${:_profile_base_location_}';

/**
 * SlapOS's buildout (slapos.buildout) replaces `${:_profile_base_location_}` in every value of a
 * file by the file's directory (or URL prefix) when it reads the file, so a value copied by a
 * macro or an extending file keeps pointing next to the file that wrote it. `$$` escapes it.
 */
function profileBase(value: string, base: string): string {
  if (!value.includes(PROFILE_BASE)) return value;
  return value
    .split('$$')
    .map((piece) => piece.split(PROFILE_BASE).join(base))
    .join('$$');
}

function annotate(parsed: ParsedFile, file: string, base: string): Data {
  const d: Data = new Map();
  for (const [name, sect] of parsed) {
    const keys = new Map<string, Key>();
    for (const [opt, o] of sect.options) keys.set(opt, Key.set(profileBase(o.value, base), { file, line: o.line }, 'file'));
    d.set(name, new SectionData(keys, { file, line: sect.line }));
  }
  return d;
}

interface SeenEntry {
  loc: string;
  via?: Origin;
}

/** zc.buildout's `_open`: one file and, recursively, what it extends. */
async function openConfig(
  ctx: OpenCtx,
  base: string,
  filename: string,
  seen: SeenEntry[],
  via: Origin | undefined,
  onRoot: (buildout: Map<string, string>) => void,
): Promise<Data> {
  let loc: string;
  let newBase: string;
  if (isUrl(filename)) {
    loc = new URL(filename).href;
    newBase = loc.slice(0, loc.lastIndexOf('/'));
  } else if (isUrl(base)) {
    if (path.isAbsolute(filename)) {
      loc = path.resolve(filename);
      newBase = path.dirname(loc);
    } else {
      loc = new URL(base + '/' + filename).href;
      newBase = loc.slice(0, loc.lastIndexOf('/'));
    }
  } else {
    loc = path.resolve(pyJoin(base, filename));
    newBase = path.dirname(loc);
  }
  const text = await readLocation(ctx, loc, via);

  const idx = seen.findIndex((s) => s.loc === loc);
  if (idx >= 0) {
    const chain = [...seen.slice(idx).map((s) => s.loc), loc].join(' -> ');
    throw new ConfigLanguageError('extends-loop', `recursive extends: ${chain}`, {
      origin: via,
      section: 'buildout',
      option: 'extends',
    });
  }
  const root = seen.length === 0;
  // A file's result depends only on its location (zc.buildout opens it again for every
  // extends that names it: diamonds make that exponential). Loops through it were found
  // the first time, since that opening went through everything it extends.
  const memo = ctx.opened.get(loc);
  if (memo && !root) return memo;
  seen.push({ loc, via });

  const outcomes = await ctx.conditions.evaluateFile(text, loc);
  const parsed = parseConfig(text, loc, (h) => outcomes.get(h.line) ?? true);
  const bsect = parsed.get('buildout');
  const ext = bsect?.options.get('extends');
  if (ext) bsect!.options.delete('extends');
  if (bsect?.options.has('extended-by')) {
    throw new ConfigLanguageError('user', `no-longer supported "extended-by" option found in ${loc}`, {
      origin: { file: loc, line: bsect.options.get('extended-by')!.line },
      section: 'buildout',
      option: 'extended-by',
    });
  }
  if (root && bsect) onRoot(new Map([...bsect.options].map(([k, v]) => [k, v.value])));
  let result = annotate(parsed, loc, newBase);

  if (ext && ext.value) {
    const extOrigin: Origin = { file: loc, line: ext.line };
    const files = pySplit(ext.value);
    if (files.length) {
      const m = new Merge(await openConfig(ctx, newBase, files[0], seen, extOrigin, onRoot));
      for (const f of files.slice(1)) m.merge(await openConfig(ctx, newBase, f, seen, extOrigin, onRoot));
      m.merge(result);
      result = m.data;
    }
  }
  seen.pop();
  ctx.opened.set(loc, result);
  return result;
}

function hasOps(s: SectionData): boolean {
  for (const k of s.keys.keys()) {
    const c = k.charCodeAt(k.length - 1);
    if (c === 43 || c === 45) return true;
  }
  return false;
}

/**
 * zc.buildout's `_update(d1, d2)`, repeated over a file's extends then the file itself, without
 * modifying the inputs: results of opened files are shared (memoised), so the base map is
 * copied once and a shared section is copied before it is first changed.
 */
class Merge {
  data: Data;
  private owned = new Set<SectionData>();
  constructor(base: Data) {
    this.data = new Map(base);
  }
  merge(over: Data): void {
    for (const [name, sect] of over) {
      const s1 = this.data.get(name);
      if (!s1) {
        this.data.set(name, sect);
        continue;
      }
      // the same (memoised) section merged over itself changes nothing, unless it holds
      // `name +` / `name -` keys, which would apply again
      if (s1 === sect && !hasOps(sect)) continue;
      let target = s1;
      if (!this.owned.has(s1)) {
        target = s1.clone();
        this.owned.add(target);
        this.data.set(name, target);
      }
      updateSection(target, sect);
    }
  }
}

export interface Loaded {
  file: string;
  data: Data;
  compat: boolean;
}

function expandUser(p: string): string {
  if (p === '~' || p.startsWith('~/')) return os.homedir() + p.slice(1);
  return p;
}

export async function loadData(
  file: string,
  opts: {
    buildoutDefaults?: Record<string, string>;
    /** zc.buildout's own [buildout] defaults (and [versions] pins) under buildoutDefaults */
    withZcBuildoutDefaults?: boolean;
    overrides?: Array<{ section: string; option: string; value: string }>;
    conditions: Conditions;
  },
): Promise<Loaded> {
  const compat = opts.buildoutDefaults === undefined;
  const zcDefaults = compat || !!opts.withZcBuildoutDefaults;
  const defaults = new SectionData();
  const defaultEntries = compat
    ? ZC_BUILDOUT_DEFAULTS
    : [...(zcDefaults ? ZC_BUILDOUT_DEFAULTS : []), ...Object.entries(opts.buildoutDefaults!)];
  for (const [k, v] of defaultEntries) defaults.keys.set(k, Key.set(v, DEFAULT_ORIGIN, 'default', 'default'));
  const data: Data = new Map([['buildout', defaults]]);

  let top = file;
  if (!isUrl(file)) {
    top = path.resolve(file);
    try {
      await stat(top);
    } catch {
      throw new ConfigLanguageError('io', `couldn't open ${top}`);
    }
    if (!defaults.keys.has('directory'))
      defaults.keys.set('directory', Key.set(path.dirname(top), COMPUTED_ORIGIN, 'computed', 'default'));
  } else top = new URL(file).href;

  // command-line style overrides: sorted and grouped by section, like zc.buildout
  const over = [...(opts.overrides ?? [])].sort(
    (a, b) =>
      (a.section < b.section ? -1 : a.section > b.section ? 1 : 0) ||
      (a.option < b.option ? -1 : a.option > b.option ? 1 : 0) ||
      (a.value < b.value ? -1 : a.value > b.value ? 1 : 0),
  );
  const cl: Data = new Map();
  for (const o of over) {
    let s = cl.get(o.section);
    if (!s) cl.set(o.section, (s = new SectionData(new Map(), OVERRIDE_ORIGIN)));
    s.keys.set(o.option, Key.set(o.value, OVERRIDE_ORIGIN, 'override', 'override'));
  }

  let rootBuildout = new Map<string, string>();
  const dl = (name: string): string | undefined =>
    cl.get('buildout')?.keys.get(name)?.value ?? rootBuildout.get(name) ?? defaults.keys.get(name)?.value;
  const ctx: OpenCtx = {
    conditions: opts.conditions,
    opened: new Map(),
    offline: () => dl('offline') === 'true' || dl('install-from-cache') === 'true',
    texts: new Map(),
  };
  const base = isUrl(top) ? top.slice(0, top.lastIndexOf('/')) : path.dirname(top);
  const fileData = await openConfig(ctx, base, top, [], undefined, (b) => (rootBuildout = b));
  updateData(data, fileData);
  updateData(data, cl);
  const bsect = data.get('buildout')!;

  if (zcDefaults) {
    if (!bsect.keys.has('versions')) {
      bsect.keys.set('versions', Key.set('versions', DEFAULT_ORIGIN, 'default', 'default'));
      if (!data.has('versions')) data.set('versions', new SectionData(new Map(), DEFAULT_ORIGIN));
    }
    const vname = bsect.keys.get('versions')!.value;
    if (vname) {
      const vs = data.get(vname);
      if (!vs)
        throw new ConfigLanguageError('missing-section', `the versions section [${vname}] is not defined`, {
          origin: bsect.keys.get('versions')!.origin,
          section: 'buildout',
          option: 'versions',
        });
      for (const [k, v] of ZC_BUILDOUT_VERSION_PINS)
        if (!vs.keys.has(k)) vs.keys.set(k, Key.set(v, DEFAULT_ORIGIN, 'default', 'default'));
    }
  }

  // Absolutize these relative to the file that set them (zc.buildout does the same).
  for (const name of ['download-cache', 'eggs-directory', 'extends-cache']) {
    const key = bsect.keys.get(name);
    if (!key) continue;
    const orig = key.value;
    if (orig.includes('${')) continue;
    if (path.isAbsolute(orig)) continue;
    const src = key.bSource;
    let basedir: string;
    if (!src || src.kind !== 'file') {
      basedir = bsect.keys.get('directory')?.value ?? process.cwd();
    } else {
      if (isUrl(src.origin.file))
        throw new ConfigLanguageError(
          'user',
          `setting "${name}" to a non absolute location ("${orig}") within a remote configuration file ("${src.origin.file}") is ambiguous`,
          { origin: src.origin, section: 'buildout', option: name },
        );
      basedir = path.dirname(src.origin.file);
    }
    let abs = expandUser(orig);
    if (!path.isAbsolute(abs)) abs = pyJoin(basedir, abs);
    key.value = path.resolve(abs);
  }

  // Standard directories are relative to buildout:directory (unless they use ${...}).
  const dir = bsect.keys.get('directory');
  if (dir) {
    for (const n of ['bin', 'parts', 'eggs', 'develop-eggs']) {
      const key = bsect.keys.get(`${n}-directory`);
      if (key && !key.value.includes('${')) key.value = pyJoin(dir.value, key.value);
    }
  }
  return { file: top, data, compat };
}
