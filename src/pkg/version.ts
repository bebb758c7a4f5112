/**
 * Package names and versions: Debian (policy 5.6.1 / 5.6.12, dpkg's verrevcmp) and RPM
 * (rpmvercmp with ~ and ^, EVR). Compared against dpkg --compare-versions and rpm in tests.
 */

export interface DebVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

/** Why `n` is not a valid Debian package name, or undefined. */
export function validateDebPackageName(n: string): string | undefined {
  if (n.length < 2) return `package name '${n}' is too short (at least 2 characters)`;
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(n)) return `package name '${n}' may only contain lower case letters, digits, '+', '-' and '.', and must start with a letter or digit`;
  return undefined;
}

/** Why `v` is not a valid Debian version, or undefined. */
export function validateDebVersion(v: string): string | undefined {
  if (v === '') return 'version is empty';
  if (/\s/.test(v)) return `version '${v}' contains white space`;
  let rest = v;
  const colon = v.indexOf(':');
  if (colon >= 0) {
    const epoch = v.slice(0, colon);
    if (!/^\d+$/.test(epoch)) return `epoch '${epoch}' in version '${v}' is not a number`;
    rest = v.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  const upstream = dash >= 0 ? rest.slice(0, dash) : rest;
  const revision = dash >= 0 ? rest.slice(dash + 1) : '';
  if (upstream === '') return `version '${v}' has an empty upstream part`;
  if (!/^\d/.test(upstream)) return `upstream version '${upstream}' in '${v}' must start with a digit`;
  if (!/^[A-Za-z0-9.+~:-]+$/.test(upstream)) return `upstream version '${upstream}' in '${v}' contains characters other than A-Za-z0-9.+~-`;
  if (upstream.includes(':')) return `version '${v}' has a colon in the upstream part`;
  if (dash >= 0 && revision === '') return `version '${v}' has an empty revision after '-'`;
  if (revision && !/^[A-Za-z0-9.+~]+$/.test(revision)) return `revision '${revision}' in '${v}' contains characters other than A-Za-z0-9.+~`;
  return undefined;
}

export function parseDebVersion(v: string): DebVersion {
  const err = validateDebVersion(v);
  if (err) throw new Error(err);
  let epoch = 0;
  let rest = v;
  const colon = v.indexOf(':');
  if (colon >= 0) {
    epoch = Number(v.slice(0, colon));
    rest = v.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  return dash >= 0 ? { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) } : { epoch, upstream: rest, revision: '' };
}

function order(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

/** Compare digit strings of any length numerically. */
function cmpDigits(a: string, b: string): number {
  a = a.replace(/^0+/, '');
  b = b.replace(/^0+/, '');
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** dpkg's verrevcmp on one part (upstream or revision). */
function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // non-digit prefix
    while ((i < a.length && !/\d/.test(a[i]!)) || (j < b.length && !/\d/.test(b[j]!))) {
      const ac = i < a.length && !/\d/.test(a[i]!) ? order(a[i]) : 0;
      const bc = j < b.length && !/\d/.test(b[j]!) ? order(b[j]) : 0;
      if (ac !== bc) return ac < bc ? -1 : 1;
      if (i < a.length && !/\d/.test(a[i]!)) i++;
      if (j < b.length && !/\d/.test(b[j]!)) j++;
    }
    let da = '';
    let db = '';
    while (i < a.length && /\d/.test(a[i]!)) da += a[i++];
    while (j < b.length && /\d/.test(b[j]!)) db += b[j++];
    const c = cmpDigits(da, db);
    if (c) return c;
  }
  return 0;
}

export function compareDebVersions(a: string, b: string): -1 | 0 | 1 {
  const va = parseDebVersion(a);
  const vb = parseDebVersion(b);
  if (va.epoch !== vb.epoch) return va.epoch < vb.epoch ? -1 : 1;
  const u = verrevcmp(va.upstream, vb.upstream);
  if (u) return u < 0 ? -1 : 1;
  const r = verrevcmp(va.revision, vb.revision);
  return r < 0 ? -1 : r > 0 ? 1 : 0;
}

/** Why `n` is not a valid RPM name, or undefined. */
export function validateRpmName(n: string): string | undefined {
  if (n === '') return 'package name is empty';
  if (!/^[A-Za-z0-9_+.-]+$/.test(n) || /^[-.]/.test(n)) return `package name '${n}' may only contain letters, digits and _+.- (not starting with - or .)`;
  return undefined;
}

/** Why `v` is not a valid RPM version or release, or undefined. */
export function validateRpmVersion(v: string, what = 'version'): string | undefined {
  if (v === '') return `${what} is empty`;
  if (!/^[A-Za-z0-9._+~^]+$/.test(v)) return `${what} '${v}' may only contain letters, digits and ._+~^ (no '-')`;
  return undefined;
}

/** rpm's rpmvercmp (rpm 4.18), with ~ (sorts before anything) and ^ (sorts after the base, before more). */
export function compareRpmVersions(a: string, b: string): -1 | 0 | 1 {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const alnum = (c: string | undefined) => c !== undefined && /[A-Za-z0-9]/.test(c);
  for (;;) {
    while (i < a.length && !alnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !alnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const isnum = /\d/.test(a[i]!);
    const re = isnum ? /\d/ : /[A-Za-z]/;
    let ea = i;
    let eb = j;
    while (ea < a.length && re.test(a[ea]!)) ea++;
    while (eb < b.length && re.test(b[eb]!)) eb++;
    const sa = a.slice(i, ea);
    const sb = b.slice(j, eb);
    if (sb === '') return isnum ? 1 : -1;
    if (isnum) {
      const c = cmpDigits(sa, sb);
      if (c) return c < 0 ? -1 : 1;
    } else if (sa !== sb) return sa < sb ? -1 : 1;
    i = ea;
    j = eb;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

export interface Evr {
  epoch: number;
  version: string;
  release?: string;
}

export function parseEVR(s: string): Evr {
  let epoch = 0;
  let rest = s;
  const c = s.indexOf(':');
  if (c >= 0 && /^\d+$/.test(s.slice(0, c))) {
    epoch = Number(s.slice(0, c));
    rest = s.slice(c + 1);
  }
  const d = rest.lastIndexOf('-');
  return d >= 0 ? { epoch, version: rest.slice(0, d), release: rest.slice(d + 1) } : { epoch, version: rest };
}

export function compareRpmEVR(a: string, b: string): -1 | 0 | 1 {
  const x = parseEVR(a);
  const y = parseEVR(b);
  if (x.epoch !== y.epoch) return x.epoch < y.epoch ? -1 : 1;
  const v = compareRpmVersions(x.version, y.version);
  if (v) return v;
  if (x.release === undefined || y.release === undefined) return 0;
  return compareRpmVersions(x.release, y.release);
}
