/**
 * Lazy resolution: `<=` macros and `${section:option}` substitution, mirroring
 * zc.buildout 2.13.2's `Buildout.__getitem__` / `Options` (`_initialize`, `_do_extend_raw`,
 * `_dosub`, `get`, `_sub`) so that resolved values, including corner cases, are the same.
 *
 * A section is "initialized" the first time it is needed: macros are expanded, then every
 * option containing `${` is substituted (in sorted order); values are memoised. `$$` is an
 * escape: text between `$$` separators is substituted independently and the `$$` are kept
 * in the value (zc.buildout leaves them for recipes).
 */
import type { Origin } from '../lib/errors.js';
import { ConfigError } from '../lib/errors.js';
import { type Data, Key, SectionData, updateSection } from './data.js';
import { ConfigLanguageError } from './errors.js';
import type { ConditionStats } from './conditions.js';
import type { Loaded } from './load.js';
import { pyCmp, pyJoin, pySplit, pyStrip } from './pyutil.js';
import type { Config, OptionHistoryEntry } from './types.js';

const TEMPLATE_SPLIT = /(\$\{[^}]*\})/;
const VALID = /^\$\{[-a-zA-Z0-9 ._]*:[-a-zA-Z0-9 ._]+\}$/;
const SIMPLE = /^[-a-zA-Z0-9 ._]+\n?$/;

type SeenKey = [string, string];

class Opts {
  raw: Map<string, Key>;
  cooked = new Map<string, string>();
  data = new Map<string, string>();
  /** every option has been resolved (references are complete) */
  complete = false;
  constructor(
    readonly name: string,
    raw: Map<string, Key>,
  ) {
    this.raw = raw;
  }
  keys(): string[] {
    const out = [...this.raw.keys()];
    for (const k of this.data.keys()) if (!this.raw.has(k)) out.push(k);
    return out;
  }
}

export class BuildoutConfig implements Config {
  readonly file: string;
  private data: Data;
  private compat: boolean;
  private opts = new Map<string, Opts>();
  private expanded = new Map<string, Map<string, Key>>();
  private engineDefaults = new Map<string, Map<string, Key>>();
  private refs = new Map<string, Map<string, Origin>>();
  private buildoutReady = false;
  /** how the conditional headers of this load were evaluated (natively / by Python) */
  conditionStats?: ConditionStats;

  constructor(loaded: Loaded) {
    this.file = loaded.file;
    this.data = loaded.data;
    this.compat = loaded.compat;
  }

  // ---- Config API -------------------------------------------------------------------

  sectionNames(): string[] {
    return [...this.data.keys()];
  }

  has(section: string): boolean {
    return this.data.has(section);
  }

  optionNames(section: string): string[] {
    const o = this.opts.get(section);
    if (o) return o.keys();
    if (!this.data.has(section)) return [];
    const raw = this.expandedRaw(section);
    const out = [...raw.keys()];
    for (const k of this.engineDefaults.get(section)?.keys() ?? []) if (!raw.has(k)) out.push(k);
    return out;
  }

  raw(section: string, option: string): string | undefined {
    return this.rawKey(section, option)?.value;
  }

  get(section: string, option: string): string {
    return this.guard(section, option, () => this.get0(section, option));
  }

  private get0(section: string, option: string): string {
    this.ensureBuildout();
    const o = this.section0(section);
    const v = this.getOpt(o, option);
    if (v === undefined)
      throw new ConfigLanguageError('missing-option', `option '${option}' is not defined in section [${section}]`, {
        origin: this.data.get(section)?.origin,
        section,
        option,
      });
    return v;
  }

  getOptional(section: string, option: string): string | undefined {
    if (!this.data.has(section)) return undefined;
    return this.guard(section, option, () => {
      this.ensureBuildout();
      return this.getOpt(this.section0(section), option);
    });
  }

  section(section: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of this.sectionEntries(section)) out[k] = v;
    return out;
  }

  /** All options of a section, resolved, as ordered pairs (order as zc.buildout's Options.keys()). */
  sectionEntries(section: string): Array<[string, string]> {
    return this.guard(section, undefined, () => {
      this.ensureBuildout();
      const o = this.section0(section);
      return o.keys().map((k): [string, string] => [k, this.getOpt(o, k)!]);
    });
  }

  origin(section: string, option: string): Origin | undefined {
    return this.rawKey(section, option)?.origin;
  }

  sectionOrigin(section: string): Origin | undefined {
    return this.data.get(section)?.origin;
  }

  history(section: string, option: string): OptionHistoryEntry[] {
    const k = this.rawKey(section, option);
    if (!k) return [];
    return k.history.map((h) => ({ op: h.op, value: h.value, origin: h.origin }));
  }

  references(section: string): Map<string, Origin> {
    return this.guard(section, undefined, () => {
      this.ensureBuildout();
      const o = this.section0(section);
      if (!o.complete) {
        for (const k of o.keys()) this.getOpt(o, k);
        o.complete = true;
      }
      return new Map(this.refs.get(section) ?? []);
    });
  }

  /** Resolution is recursive (as in zc.buildout): turn a stack overflow into a ConfigError. */
  private guard<T>(section: string, option: string | undefined, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof RangeError && /call stack/i.test(e.message)) {
        throw new ConfigLanguageError(
          'user',
          'substitutions are nested too deeply (a chain of several hundred ${section:option} references that each need the next one resolved)',
          { origin: option !== undefined ? this.rawKey(section, option)?.origin : this.sectionOrigin(section), section, option },
        );
      }
      throw e;
    }
  }

  setDefault(section: string, option: string, value: string, origin: Origin): void {
    if (!this.data.has(section)) this.data.set(section, new SectionData(new Map(), origin));
    let m = this.engineDefaults.get(section);
    if (!m) this.engineDefaults.set(section, (m = new Map()));
    const key = Key.set(value, origin, 'default', 'default');
    m.set(option, key);
    const o = this.opts.get(section);
    if (o && !o.raw.has(option)) {
      o.raw = new Map(o.raw);
      o.raw.set(option, key);
      o.complete = false;
    }
  }

  // ---- internals ----------------------------------------------------------------------

  private rawKey(section: string, option: string): Key | undefined {
    const o = this.opts.get(section);
    if (o) return o.raw.get(option);
    if (!this.data.has(section)) return undefined;
    let raw: Map<string, Key>;
    try {
      raw = this.expandedRaw(section);
    } catch (e) {
      if (e instanceof ConfigError) return this.data.get(section)!.keys.get(option);
      throw e;
    }
    return raw.get(option) ?? this.engineDefaults.get(section)?.get(option);
  }

  /** Initialise [buildout] first and post-process its directories, like Buildout.__init__. */
  private ensureBuildout(): void {
    if (this.buildoutReady) return;
    this.buildoutReady = true;
    try {
      if (!this.data.has('buildout')) return;
      const b = this.section0('buildout');
      const must = (name: string): string | undefined => {
        const v = this.getOpt(b, name);
        if (v === undefined && this.compat)
          throw new ConfigLanguageError('missing-option', `option '${name}' is not defined in section [buildout]`, {
            section: 'buildout',
            option: name,
          });
        return v;
      };
      const dir = must('directory');
      if (dir === undefined) return;
      for (const n of ['bin', 'parts', 'eggs', 'develop-eggs']) {
        const v = must(`${n}-directory`);
        if (v !== undefined) b.data.set(`${n}-directory`, v.includes('${') ? v : pyJoin(dir, v));
      }
      const installed = must('installed');
      if (installed) b.data.set('installed', pyJoin(dir, installed));
      if (this.compat) {
        const vname = must('versions');
        if (vname) this.section0(vname);
      }
    } catch (e) {
      this.buildoutReady = false;
      this.opts.delete('buildout');
      throw e;
    }
  }

  private section0(name: string, from?: { section: string; option: string; origin?: Origin; what: string }): Opts {
    const existing = this.opts.get(name);
    if (existing) return existing;
    if (!this.data.has(name)) {
      if (from)
        throw new ConfigLanguageError('missing-section', `section [${name}] is not defined (referenced by ${from.what})`, {
          origin: from.origin,
          section: from.section,
          option: from.option,
        });
      throw new ConfigLanguageError('missing-section', `section [${name}] is not defined`, { section: name });
    }
    const o = new Opts(name, this.data.get(name)!.keys);
    this.opts.set(name, o);
    try {
      this.initialize(o);
    } catch (e) {
      this.opts.delete(name);
      throw e;
    }
    return o;
  }

  /** Options._initialize */
  private initialize(o: Opts): void {
    o.raw = this.expandedRaw(o.name);
    const defs = this.engineDefaults.get(o.name);
    if (defs) {
      let copied = false;
      for (const [k, key] of defs) {
        if (o.raw.has(k)) continue;
        if (!copied) {
          o.raw = new Map(o.raw);
          copied = true;
        }
        o.raw.set(k, key);
      }
    }
    const names = [...o.raw.keys()].sort(pyCmp);
    for (const k of names) {
      const v = o.raw.get(k)!.value;
      if (v.includes('${')) this.dosub(o, k, v);
    }
    if (o.name === 'buildout') return;
    const deps = this.getOpt(o, '<part-dependencies>');
    if (deps !== undefined) {
      const origin = o.raw.get('<part-dependencies>')?.origin;
      for (const d of pySplit(deps)) {
        this.section0(d, { section: o.name, option: '<part-dependencies>', origin, what: `=> ${d}` });
        this.addRef(o.name, d, origin);
      }
    }
    this.getOpt(o, 'recipe');
  }

  private addRef(from: string, to: string, origin: Origin | undefined): void {
    if (from === to || !origin) return;
    let m = this.refs.get(from);
    if (!m) this.refs.set(from, (m = new Map()));
    if (!m.has(to)) m.set(to, origin);
  }

  /** The section's raw options after `<=` macros (memoised). */
  private expandedRaw(name: string): Map<string, Key> {
    let e = this.expanded.get(name);
    if (!e) {
      e = this.extendRaw(name, this.data.get(name)!.keys, [], undefined);
      this.expanded.set(name, e);
    }
    return e;
  }

  /** Options._do_extend_raw */
  private extendRaw(name: string, data: Map<string, Key>, doing: string[], via: { section: string; key: Key } | undefined): Map<string, Key> {
    if (name === 'buildout') return data;
    if (doing.includes(name)) {
      const chain = [...doing.slice(doing.indexOf(name)), name].join(' <= ');
      throw new ConfigLanguageError('macro-loop', `infinite macro (<=) loop: ${chain}`, {
        origin: via?.key.origin,
        section: via?.section,
        option: '<',
      });
    }
    doing.push(name);
    try {
      const todo = data.get('<');
      if (todo === undefined) return data;
      const result = new Map<string, Key>();
      for (let iname of todo.value.split('\n')) {
        iname = pyStrip(iname);
        if (!iname) continue;
        const src = this.data.get(iname);
        if (!src)
          throw new ConfigLanguageError('missing-section', `macro source section [${iname}] is not defined (<= ${iname})`, {
            origin: todo.origin,
            section: name,
            option: '<',
          });
        const origin = todo.origin ?? { file: '', line: 0 };
        for (const [k, v] of this.extendRaw(iname, src.keys, doing, { section: name, key: todo })) {
          const c = v.clone();
          const h = { op: 'macro' as const, value: c.value, origin, kind: 'file' as const };
          c.pushHistory(h);
          result.set(k, c);
        }
      }
      let ops = false;
      for (const k of data.keys()) {
        const c = k.charCodeAt(k.length - 1);
        if (c === 43 || c === 45) {
          ops = true;
          break;
        }
      }
      if (ops) updateSection(new SectionData(result), new SectionData(data));
      else {
        // same as updateSection without +=/-= keys
        for (const [k, v] of data) {
          const r = result.get(k);
          if (r) r.override(v);
          else result.set(k, v.clone());
        }
      }
      result.delete('<');
      return result;
    } finally {
      doing.pop();
    }
  }

  private originOf(section: string, option: string): Origin | undefined {
    return this.opts.get(section)?.raw.get(option)?.origin ?? this.rawKey(section, option)?.origin;
  }

  /** Options._dosub */
  private dosub(o: Opts, option: string, v: string): void {
    const seen: SeenKey[] = [[o.name, option]];
    o.cooked.set(option, this.subAll(o, option, v, seen));
  }

  /** Options.get */
  private getOpt(o: Opts, option: string, seen?: SeenKey[]): string | undefined {
    const d = o.data.get(option);
    if (d !== undefined) return d;
    let v = o.cooked.get(option);
    if (v === undefined) {
      v = o.raw.get(option)?.value;
      if (v === undefined) return undefined;
    }
    if (v.includes('${')) {
      if (!seen) seen = [[o.name, option]];
      else {
        const i = seen.findIndex(([s, k]) => s === o.name && k === option);
        if (i >= 0) {
          const [fs, fo] = seen[seen.length - 1];
          const chain = [...seen.slice(i), [o.name, option]].map(([s, k]) => `${s}:${k}`).join(' -> ');
          throw new ConfigLanguageError('cycle', `circular reference in substitutions: ${chain}`, {
            origin: this.originOf(fs, fo),
            section: fs,
            option: fo,
          });
        }
        seen.push([o.name, option]);
      }
      v = this.subAll(o, option, v, seen);
      seen.pop();
    }
    o.data.set(option, v);
    return v;
  }

  /** `'$$'.join(self._sub(s, seen) for s in v.split('$$'))` */
  private subAll(o: Opts, option: string, v: string, seen: SeenKey[]): string {
    if (!v.includes('$$')) return this.sub(o, option, v, seen);
    const pieces = v.split('$$');
    for (let i = 0; i < pieces.length; i++) pieces[i] = this.sub(o, option, pieces[i], seen);
    return pieces.join('$$');
  }

  /** Options._sub: substitute the ${...} in one `$$`-free piece of a value. */
  private sub(o: Opts, option: string, template: string, seen: SeenKey[]): string {
    if (!template.includes('${')) return template;
    const parts = template.split(TEMPLATE_SPLIT);
    if (parts.length === 1) return template;
    let out = parts[0];
    const org = o.raw.get(option)?.origin;
    for (let i = 1; i < parts.length; i += 2) {
      const ref = parts[i];
      const s = ref.slice(2, -1).split(':');
      if (!VALID.test(ref)) {
        const bad = (detail: string) =>
          new ConfigLanguageError('substitution-syntax', `the substitution ${ref} ${detail}`, {
            origin: org,
            section: o.name,
            option,
          });
        if (s.length < 2) throw bad(`doesn't contain a colon`);
        if (s.length > 2) throw bad('has too many colons');
        if (!SIMPLE.test(s[0])) throw bad('has invalid characters in its section name');
        if (!SIMPLE.test(s[1])) throw bad('has invalid characters in its option name');
      }
      const section = s[0] || o.name;
      const opt = s[1];
      this.addRef(o.name, section, org);
      const target = this.section0(section, { section: o.name, option, origin: org, what: ref });
      let v = this.getOpt(target, opt, seen);
      if (v === undefined) {
        if (opt === '_buildout_section_name_') v = o.name;
        else
          throw new ConfigLanguageError(
            'missing-option',
            `option '${opt}' is not defined in section [${section}] (referenced by ${ref})`,
            { origin: org, section: o.name, option },
          );
      }
      out += v + parts[i + 1];
    }
    return out;
  }
}
