/**
 * Small re-implementations of the Python string/path behaviour zc.buildout relies on
 * (str.isspace / strip, textwrap.dedent, os.path.join), so values match byte for byte.
 */

/** Characters for which Python's str.isspace() is true (also what `\s` matches in Python str regexes). */
export const PY_WS = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

const WS_CHAR = new RegExp(`^[${PY_WS}]$`);
const LEADING_WS = new RegExp(`^[${PY_WS}]+`);
const TRAILING_WS = new RegExp(`[${PY_WS}]+$`);
const WS_RUN = new RegExp(`[${PY_WS}]+`);

export function isPySpace(ch: string | undefined): boolean {
  return ch !== undefined && ch !== '' && WS_CHAR.test(ch);
}

const isWsCode = (c: number): boolean =>
  c === 32 || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f) || (c >= 0x85 && WS_CHAR.test(String.fromCharCode(c)));

export function pyRstrip(s: string): string {
  return s.length && isWsCode(s.charCodeAt(s.length - 1)) ? s.replace(TRAILING_WS, '') : s;
}

export function pyStrip(s: string): string {
  if (!s.length || (!isWsCode(s.charCodeAt(0)) && !isWsCode(s.charCodeAt(s.length - 1)))) return s;
  return s.replace(LEADING_WS, '').replace(TRAILING_WS, '');
}

/** Python's str.split() without arguments. */
export function pySplit(s: string): string[] {
  return pyStrip(s)
    .split(WS_RUN)
    .filter((w) => w !== '');
}

/** textwrap.dedent (Python 3.11). */
export function dedent(text: string): string {
  const lines = text.split('\n').map((l) => (/^[ \t]+$/.test(l) ? '' : l));
  let margin: string | undefined;
  for (const line of lines) {
    const m = /^([ \t]*)[^ \t\n]/.exec(line);
    if (!m) continue;
    const indent = m[1];
    if (margin === undefined) margin = indent;
    else if (indent.startsWith(margin)) {
      // deeper: keep
    } else if (margin.startsWith(indent)) margin = indent;
    else {
      let i = 0;
      while (i < margin.length && i < indent.length && margin[i] === indent[i]) i++;
      margin = margin.slice(0, i);
    }
  }
  if (margin) {
    const mg = margin;
    return lines.map((l) => (l.startsWith(mg) ? l.slice(mg.length) : l)).join('\n');
  }
  return lines.join('\n');
}

/** posixpath.join for two components (no normalisation). */
export function pyJoin(a: string, b: string): string {
  if (b.startsWith('/')) return b;
  if (a === '' || a.endsWith('/')) return a + b;
  return a + '/' + b;
}

/** posixpath.dirname */
export function pyDirname(p: string): string {
  const i = p.lastIndexOf('/') + 1;
  let head = p.slice(0, i);
  if (head && head !== '/'.repeat(head.length)) head = head.replace(/\/+$/, '');
  return head;
}

/** Python code-point string comparison (for sorted()). */
export function pyCmp(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // UTF-16 order equals code point order except surrogates (astral) vs U+E000..U+FFFF
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb && (ca >= 0xe000 || cb >= 0xe000)) return sa ? 1 : -1;
    return ca < cb ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}
