/**
 * PartOptions: typed, validated access to a part's resolved options.
 * Every error names file:line, the part and the option.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError, type Origin } from './lib/errors.js';
import type { OptionSpec, OptionValues, PartOptions } from './kind.js';

export class Options implements PartOptions {
  readonly part: string;
  private values: Record<string, string>;
  private origins: (name: string) => Origin | undefined;
  private partOrigin?: Origin;
  private baseDir: string;

  constructor(
    part: string,
    values: Record<string, string>,
    origins: (name: string) => Origin | undefined = () => undefined,
    partOrigin?: Origin,
    baseDir = process.cwd(),
  ) {
    this.part = part;
    this.values = values;
    this.origins = origins;
    this.partOrigin = partOrigin;
    this.baseDir = baseDir;
  }

  has(name: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.values, name);
  }
  get(name: string): string | undefined {
    return this.has(name) ? this.values[name] : undefined;
  }
  require(name: string): string {
    const v = this.get(name);
    if (v === undefined || v.trim() === '') {
      throw new ConfigError(`missing required option '${name}'`, { origin: this.partOrigin, section: this.part, option: name });
    }
    return v;
  }
  list(name: string): string[] {
    const v = this.get(name);
    return v ? v.split(/\s+/).filter(Boolean) : [];
  }
  lines(name: string): string[] {
    const v = this.get(name);
    return v ? v.split('\n').map((l) => l.trim()).filter(Boolean) : [];
  }
  bool(name: string, dflt: boolean): boolean {
    const v = this.get(name)?.trim().toLowerCase();
    if (v === undefined || v === '') return dflt;
    if (['true', 'yes', 'on', '1'].includes(v)) return true;
    if (['false', 'no', 'off', '0'].includes(v)) return false;
    throw this.error(name, `expected a boolean (true/false), got '${this.get(name)}'`);
  }
  int(name: string, dflt: number): number {
    const v = this.get(name)?.trim();
    if (v === undefined || v === '') return dflt;
    if (!/^-?\d+$/.test(v)) throw this.error(name, `expected an integer, got '${v}'`);
    return Number(v);
  }
  env(name: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of this.lines(name)) {
      const i = line.indexOf('=');
      if (i <= 0) throw this.error(name, `expected KEY=VALUE lines, got '${line}'`);
      out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    return out;
  }
  path(name: string): string | undefined {
    const v = this.get(name)?.trim();
    return v ? this.resolvePath(name, v) : undefined;
  }
  paths(name: string): string[] {
    return this.lines(name).map((v) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : this.resolvePath(name, v)));
  }
  resolvePath(name: string, v: string): string {
    if (isAbsolute(v)) return v;
    const o = this.origin(name);
    const base = o && isAbsolute(o.file) ? dirname(o.file) : this.baseDir;
    return resolve(base, v);
  }
  origin(name: string): Origin | undefined {
    return this.origins(name) ?? this.partOrigin;
  }
  error(name: string, detail: string): Error {
    return new ConfigError(detail, { origin: this.origin(name), section: this.part, option: name });
  }
  /**
   * A ConfigError at the line of a multi-line option that reads `line`: the option's own
   * file:line, moved to the continuation line written as `line` in that file when there is one.
   */
  errorAt(name: string, line: string, detail: string): Error {
    const o = this.origin(name);
    let at = o;
    const want = line.trim();
    if (o && o.line > 0 && isAbsolute(o.file) && want) {
      try {
        const lines = readFileSync(o.file, 'utf8').split('\n');
        for (let i = o.line - 1; i < lines.length; i++) {
          const l = lines[i]!;
          if (i > o.line - 1 && /^\S/.test(l)) break; // the next option or section
          const body = i === o.line - 1 ? l.slice(l.indexOf('=') + 1) : l;
          if (body.trim() === want) {
            at = { file: o.file, line: i + 1 };
            break;
          }
        }
      } catch {
        /* the option's line */
      }
    }
    return new ConfigError(detail, { origin: at, section: this.part, option: name });
  }
  all(): Record<string, string> {
    return { ...this.values };
  }

  private checked?: { specs: Record<string, OptionSpec>; values: Record<string, unknown> };
  /**
   * Check every option of `specs` that is set (or required) against its type; a ConfigError with
   * file:line, part and option for the first bad one. Keeps the typed values for typed().
   */
  check(specs: Record<string, OptionSpec>): void {
    const out: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(specs)) out[name] = checkOption(this, name, spec);
    this.checked = { specs, values: out };
  }
  typedAs(name: string, spec: OptionSpec): unknown {
    return checkOption(this, name, spec);
  }
  typed<T extends Record<string, OptionSpec>>(specs: T): OptionValues<T> {
    if (this.checked?.specs !== specs) this.check(specs);
    return this.checked!.values as OptionValues<T>;
  }
}

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;
const URL_SCHEMES = new Set(['http', 'https', 'ftp', 'file']);
const SIZE_RE = /^(\d+)\s*([KMGT]?)(i?B)?$/i;
const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const TRUE = ['true', 'yes', 'on', '1'];
const FALSE = ['false', 'no', 'off', '0'];

/** `n` bytes from '64M', '1G', '4096' (binary units), or undefined. */
export function parseSize(v: string): number | undefined {
  const m = SIZE_RE.exec(v.trim());
  return m ? Number(m[1]) * SIZE_UNITS[m[2]!.toUpperCase()]! : undefined;
}

function checkUrl(o: Options, name: string, v: string, line = v): void {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(v);
  if (m && !URL_SCHEMES.has(m[1]!.toLowerCase())) throw o.errorAt(name, line, `unsupported URL scheme '${m[1]}:' in '${v}' (http, https, ftp, file)`);
  if (/\s/.test(v)) throw o.errorAt(name, line, `expected one URL or path, got '${v}'`);
}

/** The typed value of option `name` (trimmed), or a ConfigError naming its file:line. */
export function checkOption(o: Options, name: string, spec: OptionSpec): unknown {
  const raw = o.get(name) ?? spec.default;
  const type = spec.type ?? 'string';
  const v = raw?.trim() ?? '';
  const listLike = type === 'paths' || type === 'list' || type === 'lines';
  const notThePattern = (item: string) => {
    const expected = spec.expected ?? `of the form ${spec.pattern!.source}`;
    return spec.noun ? `invalid ${spec.noun} '${item}' (expected ${expected})` : `expected ${expected}, got '${item}'`;
  };
  const notAChoice = (item: string) => (spec.noun ? `unknown ${spec.noun} '${item}' (${spec.choices!.join(', ')})` : `expected ${spec.choices!.join(', ')}, got '${item}'`);
  if (v === '') {
    if (spec.required) throw new ConfigError(`missing required option '${name}' (${spec.description})`, { origin: o.origin(name), section: o.part, option: name });
    // set but empty where a default exists: a number or a switch takes its default (as
    // PartOptions.bool/int do); a choice or a name is refused (no empty codename, format...)
    if (spec.default?.trim() && o.has(name)) {
      if (type === 'bool' || type === 'int' || type === 'size') return checkOption(new Options(o.part, { [name]: spec.default }, (n) => o.origin(n)), name, spec);
      if (type === 'enum') throw o.error(name, notAChoice(''));
      if (type === 'pattern' && !spec.pattern!.test('')) throw o.error(name, notThePattern(''));
    }
    return listLike ? [] : type === 'env' ? {} : undefined;
  }
  const single = () => {
    if (v.includes('\n')) throw o.error(name, `must be a single line (got ${v.split('\n').length} lines)${spec.hint ? `; ${spec.hint}` : ''}`);
  };
  const matches = (item: string, line: string) => {
    if (spec.pattern && !spec.pattern.test(item)) throw o.errorAt(name, line, notThePattern(item));
    if (spec.choices && !spec.choices.includes(item)) throw o.errorAt(name, line, `unknown ${spec.noun ?? 'value'} '${item}' (${spec.choices.join(', ')})`);
  };
  switch (type) {
    case 'string':
      if (!spec.multiline) single();
      return spec.multiline ? raw : v;
    case 'bool': {
      const l = v.toLowerCase();
      if (TRUE.includes(l)) return true;
      if (FALSE.includes(l)) return false;
      throw o.error(name, `expected a boolean (true/false, yes/no, on/off, 1/0), got '${v}'`);
    }
    case 'int':
    case 'size': {
      const n = type === 'int' ? (/^-?\d+$/.test(v) ? Number(v) : undefined) : parseSize(v);
      if (n === undefined) throw o.error(name, type === 'int' ? `expected an integer, got '${v}'` : `expected a size (a number of bytes with an optional K, M, G or T suffix), got '${v}'`);
      if (spec.min !== undefined && n < spec.min) throw o.error(name, `${v} is below the minimum ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw o.error(name, `${v} is above the maximum ${spec.max}`);
      return n;
    }
    case 'enum':
      if (!spec.choices!.includes(v)) throw o.error(name, notAChoice(v));
      return v;
    case 'pattern':
      single();
      matches(v, v);
      return v;
    case 'url':
      single();
      checkUrl(o, name, v);
      return v;
    case 'path':
      single();
      if (URL_RE.test(v)) {
        if (!spec.urls) throw o.error(name, `expected a local path, got the URL '${v}'`);
        checkUrl(o, name, v);
        return v;
      }
      matches(v, v);
      return o.resolvePath(name, v);
    case 'paths':
      return o.lines(name).map((l) => {
        if (URL_RE.test(l)) {
          if (!spec.urls) throw o.errorAt(name, l, `expected a local path, got the URL '${l}'`);
          checkUrl(o, name, l);
          return l;
        }
        return o.resolvePath(name, l);
      });
    case 'list': {
      const words = v.split(/\s+/);
      for (const w of words) matches(w, v.split('\n').find((l) => l.includes(w)) ?? w);
      return words;
    }
    case 'lines': {
      const ls = o.lines(name);
      for (const l of ls) matches(l, l);
      return ls;
    }
    case 'env':
      return o.env(name);
  }
}
