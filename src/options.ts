/**
 * PartOptions: typed, validated access to a part's resolved options.
 * Every error names file:line, the part and the option.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError, type Origin } from './lib/errors.js';
import type { PartOptions } from './recipe.js';

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
}
