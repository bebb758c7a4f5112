/**
 * Containment: every name that comes from a config value or a URL and becomes a path goes
 * through containedPath() (or checkContainedName() for paths inside a package), so no value
 * can make kiln write outside the directory it meant (`../../x`, a URL's `..%2F`, an absolute
 * name, a NUL byte). The check is lexical and strict: a `..` component is refused even where it
 * would stay inside, so the error is the same whatever the directory layout.
 */
import { isAbsolute, join, resolve, sep } from 'node:path';
import { KilnError } from './errors.js';

/** Builds the error for a bad name (a ConfigError naming file:line, part and option, usually). */
export type Where = (detail: string) => Error;

export interface ContainOptions {
  /** the name must be one path component (a file name): no '/' at all */
  single?: boolean;
  /** how the message names the base directory (default: its path) */
  inside?: string;
}

/** Why `name` is not a safe relative name, or undefined when it is. */
export function unsafeNameReason(name: string, opts: ContainOptions = {}): string | undefined {
  if (name === '') return 'is empty';
  if (name.includes('\0')) return 'contains a NUL byte';
  if (/[\n\r]/.test(name)) return 'contains a line break';
  if (isAbsolute(name)) return 'is an absolute path';
  const comps = name.split('/');
  if (comps.includes('..')) return "contains '..'";
  if (opts.single && name.includes('/')) return "contains '/'";
  if (opts.single && name === '.') return "is '.'";
  return undefined;
}

/**
 * `base/name`, after checking that `name` (a config- or URL-derived name, `what` describes it
 * for the message) stays inside `base`. Throws `where(detail)` (or a KilnError) otherwise.
 */
export function containedPath(base: string, name: string, what: string, where?: Where, opts: ContainOptions = {}): string {
  const fail = (why: string): Error => {
    const detail = `${what} '${printable(name)}' ${why}: it must stay inside ${opts.inside ?? base}`;
    return where ? where(detail) : new KilnError(detail);
  };
  const why = unsafeNameReason(name, opts);
  if (why) throw fail(why);
  const root = resolve(base);
  const full = resolve(root, name);
  if (full !== root && !full.startsWith(root.endsWith(sep) ? root : root + sep)) throw fail('leaves the directory');
  return join(root, name);
}

/**
 * An absolute path inside a package (or any virtual root): must start with '/', and contain no
 * '..' component, NUL or line break. Returns the path unchanged.
 */
export function checkContainedName(path: string, what: string, where?: Where): string {
  const fail = (why: string): Error => {
    const detail = `${what} '${printable(path)}' ${why}`;
    return where ? where(detail) : new KilnError(detail);
  };
  if (!path.startsWith('/')) throw fail('must be an absolute path in the package');
  const why = path === '/' ? undefined : unsafeNameReason(path.replace(/^\/+/, ''));
  if (why) throw fail(why);
  return path;
}

/** Part (section) names become file names (out/parts/NAME, out/logs/NAME.log): a safe set only. */
export const PART_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.+@-]*$/;

export function partNameProblem(name: string): string | undefined {
  if (PART_NAME_RE.test(name) && name.length <= 200) return undefined;
  return `part name '${printable(name)}' is not allowed: part names become file names (out/parts/NAME), so they use letters, digits and _ . + @ - only, start with a letter, digit or _, and have at most 200 characters`;
}

/** A name for messages: control characters shown escaped. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
