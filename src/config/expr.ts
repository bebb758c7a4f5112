/**
 * A safe evaluator for the Python expression subset used in conditional section
 * headers (`[section: expression]`). zc.buildout runs `eval('[' + expression + ']')`
 * with the globals of `_default_globals()`; we parse a restricted grammar instead:
 *
 *   names, attribute access, calls of functions provided by the globals, subscripts,
 *   str / int / float literals, True / False / None, tuples, lists,
 *   `not`, `and`, `or`, `x if c else y`, unary `-`/`+`, binary `+`/`-`,
 *   comparisons (chained) `== != < > <= >= in, not in, is, is not`.
 *
 * Python values map to: bool -> boolean, int/float -> number, str -> string,
 * None -> null, tuple -> JS array, list -> PyList, objects -> plain objects
 * (attributes are own properties), callables -> JS functions.
 * Anything else raises ExprError.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PY_WS } from './pyutil.js';

/**
 * kiln cannot evaluate the expression natively: a construct outside the subset (the message
 * names it). zc.buildout would hand it to Python; so does kiln (src/config/pyfallback.ts).
 */
export class ExprError extends Error {}

/** Python itself raises this for the expression (a definite result, no fallback needed). */
export class PyRaise extends ExprError {}

export class PyList {
  constructor(readonly items: unknown[]) {}
}

/** os.environ and similar mappings: supports `in` and `.get()`. */
export class PyDict {
  constructor(readonly map: Map<string, unknown>) {}
}

type Tok =
  | { t: 'name'; v: string }
  | { t: 'num'; v: number }
  | { t: 'str'; v: string }
  | { t: 'op'; v: string }
  | { t: 'end' };

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'is', 'if', 'else', 'True', 'False', 'None', 'for', 'lambda', 'yield', 'await', 'async']);
const WS = new RegExp(`[${PY_WS}]`);

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (WS.test(c)) {
      i++;
      continue;
    }
    // '#' (e.g. from an unescaped \x23) would comment out zc.buildout's closing ']'
    if (c === '#') throw new ExprError("'#' outside a string literal");
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (name) {
      const w = name[0];
      const q = src[i + w.length];
      if ((q === "'" || q === '"') && /^[rRuUbB]$/.test(w)) {
        if (/^[bB]$/.test(w)) throw new ExprError('bytes literals are not supported');
        const [s, n] = readString(src, i + w.length, /^[rR]$/.test(w));
        toks.push({ t: 'str', v: s });
        i = i + w.length + n;
        continue;
      }
      toks.push({ t: 'name', v: w });
      i += w.length;
      continue;
    }
    const num = /^(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][-+]?\d+)?)/.exec(
      src.slice(i),
    );
    if (num && num[0] !== '') {
      const text = num[0].replace(/_/g, '');
      let v: number;
      if (/^0[xX]/.test(text)) v = parseInt(text.slice(2), 16);
      else if (/^0[oO]/.test(text)) v = parseInt(text.slice(2), 8);
      else if (/^0[bB]/.test(text)) v = parseInt(text.slice(2), 2);
      else v = Number(text);
      if (Number.isNaN(v)) throw new ExprError(`bad number ${num[0]}`);
      toks.push({ t: 'num', v });
      i += num[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      const [s, n] = readString(src, i, false);
      toks.push({ t: 'str', v: s });
      i += n;
      continue;
    }
    const op = /^(?:==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.|\+|-|:)/.exec(src.slice(i));
    if (op) {
      toks.push({ t: 'op', v: op[0] });
      i += op[0].length;
      continue;
    }
    const other = /^(?:\*\*|\/\/|<<|>>|:=|->|[*/%@&|^~{}])/.exec(src.slice(i));
    if (other) throw new ExprError(`the operator ${JSON.stringify(other[0])}`);
    throw new ExprError(`unsupported character ${JSON.stringify(c)}`);
  }
  toks.push({ t: 'end' });
  return toks;
}

function readString(src: string, start: number, raw: boolean): [string, number] {
  const q = src[start];
  if (src.startsWith(q.repeat(3), start)) throw new ExprError('triple-quoted strings are not supported');
  let out = '';
  let i = start + 1;
  for (;;) {
    if (i >= src.length) throw new ExprError('unterminated string literal');
    const c = src[i];
    if (c === q) return [out, i + 1 - start];
    if (c === '\n') throw new ExprError('unterminated string literal');
    if (c === '\\') {
      const d = src[i + 1];
      if (d === undefined) throw new ExprError('unterminated string literal');
      if (raw) {
        out += c + d;
        i += 2;
        continue;
      }
      const simple: Record<string, string> = {
        '\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '0': '\0', '\n': '',
      };
      if (d === 'x') {
        const h = src.slice(i + 2, i + 4);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) throw new ExprError('bad \\x escape');
        out += String.fromCharCode(parseInt(h, 16));
        i += 4;
        continue;
      }
      if (d in simple) {
        out += simple[d];
        i += 2;
        continue;
      }
      out += c + d; // Python keeps unknown escapes
      i += 2;
      continue;
    }
    out += c;
    i++;
  }
}

type Node =
  | { k: 'const'; v: unknown }
  | { k: 'name'; v: string }
  | { k: 'attr'; o: Node; name: string }
  | { k: 'call'; f: Node; args: Node[] }
  | { k: 'index'; o: Node; i: Node }
  | { k: 'tuple'; items: Node[] }
  | { k: 'list'; items: Node[] }
  | { k: 'not'; e: Node }
  | { k: 'neg'; e: Node; op: '-' | '+' }
  | { k: 'bin'; op: '+' | '-'; a: Node; b: Node }
  | { k: 'and' | 'or'; a: Node; b: Node }
  | { k: 'ifelse'; c: Node; a: Node; b: Node }
  | { k: 'cmp'; first: Node; rest: Array<[string, Node]> };

class Parser {
  private p = 0;
  constructor(private toks: Tok[]) {}
  private peek(): Tok {
    return this.toks[this.p];
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }
  private isKw(v: string): boolean {
    const t = this.peek();
    return t.t === 'name' && t.v === v;
  }
  private expectOp(v: string): void {
    if (!this.isOp(v)) throw new ExprError(`expected '${v}' but found ${describe(this.peek())}`);
    this.p++;
  }
  atEnd(): boolean {
    return this.peek().t === 'end';
  }
  /** A comma separated list; returns the items and whether a comma was seen. */
  exprList(closers: string[]): { items: Node[]; comma: boolean } {
    const items: Node[] = [];
    let comma = false;
    while (!this.atEnd() && !closers.some((c) => this.isOp(c))) {
      items.push(this.test());
      if (this.isKw('for') || this.isKw('async')) throw new ExprError('a comprehension (for ... in ...)');
      if (this.isOp(',')) {
        this.p++;
        comma = true;
      } else break;
    }
    return { items, comma };
  }
  test(): Node {
    const a = this.orTest();
    if (this.isKw('if')) {
      this.p++;
      const c = this.orTest();
      if (!this.isKw('else')) throw new ExprError(`expected 'else' but found ${describe(this.peek())}`);
      this.p++;
      const b = this.test();
      return { k: 'ifelse', c, a, b };
    }
    return a;
  }
  private orTest(): Node {
    return this.leftFold('or', () => this.andTest());
  }
  private andTest(): Node {
    return this.leftFold('and', () => this.notTest());
  }
  /** `x (KW x)*` grouped to the left, as Python's grammar does for `or` and `and`. */
  private leftFold(kw: 'or' | 'and', operand: () => Node): Node {
    let a = operand();
    while (this.isKw(kw)) {
      this.p++;
      a = { k: kw, a, b: operand() };
    }
    return a;
  }
  private notTest(): Node {
    if (this.isKw('not')) {
      this.p++;
      return { k: 'not', e: this.notTest() };
    }
    return this.comparison();
  }
  private comparison(): Node {
    const first = this.arith();
    const rest: Array<[string, Node]> = [];
    for (;;) {
      const t = this.peek();
      let op: string | undefined;
      if (t.t === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(t.v)) {
        op = t.v;
        this.p++;
      } else if (this.isKw('in')) {
        op = 'in';
        this.p++;
      } else if (this.isKw('not')) {
        const n = this.toks[this.p + 1];
        if (n.t === 'name' && n.v === 'in') {
          op = 'not in';
          this.p += 2;
        } else break;
      } else if (this.isKw('is')) {
        this.p++;
        op = 'is';
        if (this.isKw('not')) {
          this.p++;
          op = 'is not';
        }
      } else break;
      rest.push([op, this.arith()]);
    }
    return rest.length ? { k: 'cmp', first, rest } : first;
  }
  private arith(): Node {
    let a = this.unary();
    while (this.isOp('+') || this.isOp('-')) {
      const op = (this.peek() as { v: '+' | '-' }).v;
      this.p++;
      a = { k: 'bin', op, a, b: this.unary() };
    }
    return a;
  }
  private unary(): Node {
    if (this.isOp('-') || this.isOp('+')) {
      const op = (this.peek() as { v: '+' | '-' }).v;
      this.p++;
      return { k: 'neg', op, e: this.unary() };
    }
    return this.primary();
  }
  private primary(): Node {
    let n = this.atom();
    for (;;) {
      if (this.isOp('.')) {
        this.p++;
        const t = this.peek();
        if (t.t !== 'name' || KEYWORDS.has(t.v)) throw new ExprError(`expected an attribute name after '.'`);
        this.p++;
        n = { k: 'attr', o: n, name: t.v };
      } else if (this.isOp('(')) {
        this.p++;
        const { items } = this.exprList([')']);
        this.expectOp(')');
        n = { k: 'call', f: n, args: items };
      } else if (this.isOp('[')) {
        this.p++;
        if (this.isOp(':')) throw new ExprError('a slice ([a:b])');
        const i = this.test();
        if (this.isOp(':')) throw new ExprError('a slice ([a:b])');
        this.expectOp(']');
        n = { k: 'index', o: n, i };
      } else return n;
    }
  }
  private atom(): Node {
    const t = this.peek();
    if (t.t === 'num') {
      this.p++;
      return { k: 'const', v: t.v };
    }
    if (t.t === 'str') {
      this.p++;
      let s = t.v;
      while (this.peek().t === 'str') s += (this.toks[this.p++] as { v: string }).v;
      return { k: 'const', v: s };
    }
    if (t.t === 'name') {
      if (t.v === 'True' || t.v === 'False' || t.v === 'None') {
        this.p++;
        return { k: 'const', v: t.v === 'None' ? null : t.v === 'True' };
      }
      if (t.v === 'lambda') throw new ExprError('a lambda');
      if (KEYWORDS.has(t.v)) throw new ExprError(`unexpected '${t.v}'`);
      this.p++;
      return { k: 'name', v: t.v };
    }
    if (this.isOp('(')) {
      this.p++;
      const { items, comma } = this.exprList([')']);
      this.expectOp(')');
      if (items.length === 1 && !comma) return items[0];
      return { k: 'tuple', items };
    }
    if (this.isOp('[')) {
      this.p++;
      const { items } = this.exprList([']']);
      this.expectOp(']');
      return { k: 'list', items };
    }
    throw new ExprError(`unexpected ${describe(t)}`);
  }
}

function describe(t: Tok): string {
  if (t.t === 'end') return 'end of expression';
  if (t.t === 'str') return 'string literal';
  return `'${String(t.v)}'`;
}

function typeName(v: unknown): string {
  if (v === null) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return 'tuple';
  if (v instanceof PyList) return 'list';
  if (v instanceof PyDict) return 'dict';
  if (typeof v === 'function') return 'function';
  return 'object';
}

export function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false) return false;
  if (v === true) return true;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof PyList) return v.items.length > 0;
  if (v instanceof PyDict) return v.map.size > 0;
  return true;
}

function isNum(v: unknown): v is number | boolean {
  return typeof v === 'number' || typeof v === 'boolean';
}

function pyEq(a: unknown, b: unknown): boolean {
  if (isNum(a) && isNum(b)) return Number(a) === Number(b);
  if (typeof a === 'string' && typeof b === 'string') return a === b;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => pyEq(x, b[i]));
  if (a instanceof PyList && b instanceof PyList)
    return a.items.length === b.items.length && a.items.every((x, i) => pyEq(x, b.items[i]));
  return a === b;
}

function seqItems(v: unknown): unknown[] | undefined {
  if (Array.isArray(v)) return v;
  if (v instanceof PyList) return v.items;
  return undefined;
}

function pyCompare(a: unknown, b: unknown, op: string): number {
  if (isNum(a) && isNum(b)) return Number(a) < Number(b) ? -1 : Number(a) > Number(b) ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  const sa = seqItems(a);
  const sb = seqItems(b);
  if (sa && sb && Array.isArray(a) === Array.isArray(b)) {
    for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
      if (!pyEq(sa[i], sb[i])) return pyCompare(sa[i], sb[i], op);
    }
    return sa.length - sb.length;
  }
  throw new PyRaise(`TypeError: '${op}' not supported between instances of '${typeName(a)}' and '${typeName(b)}'`);
}

function pyIn(a: unknown, b: unknown): boolean {
  if (typeof b === 'string') {
    if (typeof a !== 'string') throw new PyRaise(`TypeError: 'in <string>' requires string as left operand, not ${typeName(a)}`);
    return b.includes(a);
  }
  const items = seqItems(b);
  if (items) return items.some((x) => pyEq(a, x));
  if (b instanceof PyDict) return typeof a === 'string' && b.map.has(a);
  throw new PyRaise(`TypeError: argument of type '${typeName(b)}' is not iterable`);
}

const STR_METHODS: Record<string, (s: string, ...args: unknown[]) => unknown> = {
  startswith: (s, p) => (Array.isArray(p) ? p.some((x) => s.startsWith(String(x))) : s.startsWith(str(p))),
  endswith: (s, p) => (Array.isArray(p) ? p.some((x) => s.endsWith(String(x))) : s.endsWith(str(p))),
  lower: (s) => s.toLowerCase(),
  upper: (s) => s.toUpperCase(),
  strip: (s) => s.trim(),
  lstrip: (s) => s.trimStart(),
  rstrip: (s) => s.trimEnd(),
  split: (s, sep) => (sep === undefined || sep === null ? s.trim().split(/\s+/).filter(Boolean) : s.split(str(sep))),
};

function str(v: unknown): string {
  if (typeof v !== 'string') throw new ExprError(`expected a str argument, got ${typeName(v)}`);
  return v;
}

function getAttr(o: unknown, name: string): unknown {
  if (name.startsWith('_')) throw new ExprError(`attribute '${name}' is not supported`);
  if (typeof o === 'string') {
    const m = STR_METHODS[name];
    if (!m) throw new ExprError(`str attribute '${name}' is not supported`);
    return (...args: unknown[]) => m(o, ...args);
  }
  if (o instanceof PyDict) {
    if (name === 'get') return (k: unknown, d: unknown = null) => (typeof k === 'string' && o.map.has(k) ? o.map.get(k) : d);
    throw new ExprError(`dict attribute '${name}' is not supported`);
  }
  if (o instanceof PyFile) {
    if (name === 'read') return () => o.text;
    if (name === 'readlines') return () => new PyList(o.text.split(/(?<=\n)/).filter((l) => l !== ''));
    throw new ExprError(`the file method '${name}'`);
  }
  if (o !== null && typeof o === 'object' && !(o instanceof PyList)) {
    // tuples (arrays) carry named fields as own properties (sys.version_info.major)
    if (Object.prototype.hasOwnProperty.call(o, name) && !(Array.isArray(o) && /^\d+$/.test(name))) return (o as Record<string, unknown>)[name];
  }
  const owner = o !== null && typeof o === 'object' && MODULE_NAMES.has(o) ? MODULE_NAMES.get(o)! : `'${typeName(o)}' object`;
  throw new ExprError(`the attribute ${owner}.${name}`);
}

/** An open() result: the file's text, read at once (Python's text mode: UTF-8, universal newlines). */
export class PyFile {
  constructor(readonly text: string) {}
}

/** Module objects of the namespace, named in messages ('os.path.foo is not supported'). */
const MODULE_NAMES = new WeakMap<object, string>();

const MAX_OPEN_BYTES = 1 << 20;

function pyRepr(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** Python's open(path[, 'r'|'rt']): small files only; bigger or odd ones are Python's business. */
function pyOpen(p: unknown, mode: unknown = 'r', ...rest: unknown[]): PyFile {
  if (typeof p !== 'string' || rest.length || (mode !== 'r' && mode !== 'rt')) throw new ExprError('open() with other arguments than a path and mode "r"');
  let fd: number;
  try {
    fd = fs.openSync(p, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new PyRaise(`FileNotFoundError: [Errno 2] No such file or directory: ${pyRepr(p)}`);
    if (code === 'EACCES') throw new PyRaise(`PermissionError: [Errno 13] Permission denied: ${pyRepr(p)}`);
    if (code === 'EISDIR') throw new PyRaise(`IsADirectoryError: [Errno 21] Is a directory: ${pyRepr(p)}`);
    throw new ExprError(`open() failing with ${code}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new PyRaise(`IsADirectoryError: [Errno 21] Is a directory: ${pyRepr(p)}`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const b = Buffer.alloc(65536);
      const n = fs.readSync(fd, b, 0, b.length, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_OPEN_BYTES) throw new ExprError(`open() of a file over ${MAX_OPEN_BYTES} bytes`);
      chunks.push(b.subarray(0, n));
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
    } catch {
      throw new ExprError('open() of a file that is not UTF-8');
    }
    return new PyFile(text.replace(/\r\n?/g, '\n'));
  } finally {
    fs.closeSync(fd);
  }
}

function pathArg(p: unknown, fn: string): string {
  if (typeof p !== 'string') throw new ExprError(`os.path.${fn}() of a ${typeName(p)}`);
  return p;
}

function statOr<T>(p: string, follow: boolean, f: (st: fs.Stats) => T, dflt: T): T {
  try {
    return f(follow ? fs.statSync(p) : fs.lstatSync(p));
  } catch {
    return dflt;
  }
}

function osPathModule(): Record<string, unknown> {
  const m: Record<string, unknown> = {
    exists: (p: unknown) => statOr(pathArg(p, 'exists'), true, () => true, false),
    lexists: (p: unknown) => statOr(pathArg(p, 'lexists'), false, () => true, false),
    isdir: (p: unknown) => statOr(pathArg(p, 'isdir'), true, (st) => st.isDirectory(), false),
    isfile: (p: unknown) => statOr(pathArg(p, 'isfile'), true, (st) => st.isFile(), false),
    islink: (p: unknown) => statOr(pathArg(p, 'islink'), false, (st) => st.isSymbolicLink(), false),
    isabs: (p: unknown) => pathArg(p, 'isabs').startsWith('/'),
    basename: (p: unknown) => {
      const s = pathArg(p, 'basename');
      return s.slice(s.lastIndexOf('/') + 1);
    },
    dirname: (p: unknown) => {
      const s = pathArg(p, 'dirname');
      const head = s.slice(0, s.lastIndexOf('/') + 1);
      return head && head !== '/'.repeat(head.length) ? head.replace(/\/+$/, '') : head;
    },
    join: (a: unknown, ...more: unknown[]) => {
      let out = pathArg(a, 'join');
      for (const b of more) {
        const s = pathArg(b, 'join');
        if (s.startsWith('/')) out = s;
        else if (out === '' || out.endsWith('/')) out += s;
        else out += '/' + s;
      }
      return out;
    },
    sep: '/',
  };
  MODULE_NAMES.set(m, 'os.path');
  return m;
}

function evaluate(n: Node, g: Record<string, unknown>): unknown {
  switch (n.k) {
    case 'const':
      return n.v;
    case 'name':
      if (Object.prototype.hasOwnProperty.call(g, n.v)) return fromJs(g[n.v]);
      throw new ExprError(`name '${n.v}' is not defined (natively)`);
    case 'attr':
      return fromJs(getAttr(evaluate(n.o, g), n.name));
    case 'call': {
      const f = evaluate(n.f, g);
      if (typeof f !== 'function') throw new PyRaise(`TypeError: '${typeName(f)}' object is not callable`);
      return fromJs(f(...n.args.map((a) => evaluate(a, g))));
    }
    case 'index': {
      const o = evaluate(n.o, g);
      const i = evaluate(n.i, g);
      if (o instanceof PyDict) {
        if (typeof i === 'string' && o.map.has(i)) return o.map.get(i);
        throw new PyRaise(`KeyError: ${JSON.stringify(i)}`);
      }
      const items = typeof o === 'string' ? [...o] : seqItems(o);
      if (!items || typeof i !== 'number' || !Number.isInteger(i)) throw new ExprError('unsupported subscript');
      const idx = i < 0 ? items.length + i : i;
      if (idx < 0 || idx >= items.length) throw new PyRaise('IndexError: index out of range');
      return items[idx];
    }
    case 'tuple':
      return n.items.map((x) => evaluate(x, g));
    case 'list':
      return new PyList(n.items.map((x) => evaluate(x, g)));
    case 'not':
      return !truthy(evaluate(n.e, g));
    case 'neg': {
      const v = evaluate(n.e, g);
      if (!isNum(v)) throw new PyRaise(`TypeError: bad operand type for unary ${n.op}: '${typeName(v)}'`);
      return n.op === '-' ? -Number(v) : Number(v);
    }
    case 'bin': {
      const a = evaluate(n.a, g);
      const b = evaluate(n.b, g);
      if (isNum(a) && isNum(b)) return n.op === '+' ? Number(a) + Number(b) : Number(a) - Number(b);
      if (n.op === '+' && typeof a === 'string' && typeof b === 'string') return a + b;
      if (n.op === '+' && Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
      throw new PyRaise(`TypeError: unsupported operand type(s) for ${n.op}: '${typeName(a)}' and '${typeName(b)}'`);
    }
    case 'and': {
      const a = evaluate(n.a, g);
      return truthy(a) ? evaluate(n.b, g) : a;
    }
    case 'or': {
      const a = evaluate(n.a, g);
      return truthy(a) ? a : evaluate(n.b, g);
    }
    case 'ifelse':
      return truthy(evaluate(n.c, g)) ? evaluate(n.a, g) : evaluate(n.b, g);
    case 'cmp': {
      let left = evaluate(n.first, g);
      for (const [op, rn] of n.rest) {
        const right = evaluate(rn, g);
        let ok: boolean;
        switch (op) {
          case '==': ok = pyEq(left, right); break;
          case '!=': ok = !pyEq(left, right); break;
          case '<': ok = pyCompare(left, right, op) < 0; break;
          case '>': ok = pyCompare(left, right, op) > 0; break;
          case '<=': ok = pyCompare(left, right, op) <= 0; break;
          case '>=': ok = pyCompare(left, right, op) >= 0; break;
          case 'in': ok = pyIn(left, right); break;
          case 'not in': ok = !pyIn(left, right); break;
          case 'is': ok = left === right || (left === undefined && right === null); break;
          default: ok = !(left === right); break;
        }
        if (!ok) return false;
        left = right;
      }
      return true;
    }
  }
}

/** Values coming from the globals (conditionGlobals may hold any JS value). */
function fromJs(v: unknown): unknown {
  if (v === undefined) return null;
  if (v instanceof Map) return new PyDict(v as Map<string, unknown>);
  return v;
}

/**
 * Evaluate a section-header expression the way zc.buildout does: `[<expression>][0]`.
 * Returns the (Python-truthiness) value of the first list item.
 */
export function evalCondition(expression: string, globals: Record<string, unknown>): unknown {
  const parser = new Parser(tokenize(expression));
  const { items } = parser.exprList([]);
  if (!parser.atEnd()) throw new ExprError('invalid syntax');
  if (items.length === 0) throw new PyRaise('IndexError: list index out of range (empty expression)');
  const values = items.map((i) => evaluate(i, globals));
  return values[0];
}

const PYTHON_VERSION: [number, number, number] = [3, 11, 2];

/**
 * The globals zc.buildout 2.13.2's `_default_globals()` provides, computed for this host
 * as if zc.buildout ran on CPython 3.11 (the Debian bookworm interpreter).
 */
export function defaultConditionGlobals(): Record<string, unknown> {
  const plat = process.platform === 'win32' ? 'win32' : process.platform === 'sunos' ? 'sunos5' : process.platform;
  const osName = process.platform === 'win32' ? 'nt' : 'posix';
  const arch64 = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el', 'mips64'].includes(process.arch);
  const little = os.endianness() === 'LE';
  const env = new Map<string, unknown>(Object.entries(process.env).filter(([, v]) => v !== undefined));
  const machine = typeof os.machine === 'function' ? os.machine() : process.arch;
  const g: Record<string, unknown> = {
    sys: {
      platform: plat,
      byteorder: little ? 'little' : 'big',
      version_info: Object.assign([...PYTHON_VERSION, 'final', 0], {
        major: PYTHON_VERSION[0],
        minor: PYTHON_VERSION[1],
        micro: PYTHON_VERSION[2],
        releaselevel: 'final',
        serial: 0,
      }),
      maxsize: arch64 ? 9223372036854775807 : 2147483647,
    },
    os: {
      name: osName,
      sep: osName === 'nt' ? '\\' : '/',
      linesep: osName === 'nt' ? '\r\n' : '\n',
      environ: new PyDict(env),
      path: osPathModule(),
      F_OK: 0,
      R_OK: 4,
      W_OK: 2,
      X_OK: 1,
      // access(2), as Python's os.access: False on any error
      access: (p: unknown, mode: unknown) => {
        if (typeof p !== 'string' || typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 7)
          throw new ExprError('os.access() with other arguments than a path and os.F_OK/R_OK/W_OK/X_OK');
        try {
          fs.accessSync(p, mode);
          return true;
        } catch {
          return false;
        }
      },
    },
    platform: {
      machine: () => machine,
      system: () => (process.platform === 'win32' ? 'Windows' : os.type()),
      release: () => os.release(),
      node: () => os.hostname(),
      python_version: () => PYTHON_VERSION.join('.'),
      python_version_tuple: () => PYTHON_VERSION.map(String),
      python_implementation: () => 'CPython',
    },
    re: {},
    python2: false,
    python3: true,
    cpython: true,
    pypy: false,
    jython: false,
    ironpython: false,
    linux: plat.includes('linux'),
    windows: plat.includes('win32'),
    cygwin: plat.includes('cygwin'),
    solaris: plat.includes('sunos'),
    macosx: plat.includes('darwin'),
    posix: osName.includes('posix'),
    bits32: !arch64,
    bits64: arch64,
    little_endian: little,
    big_endian: !little,
    // Python builtins that are harmless here
    len: (v: unknown) => {
      if (typeof v === 'string') return [...v].length;
      const items = seqItems(v);
      if (items) return items.length;
      throw new PyRaise(`TypeError: object of type '${typeName(v)}' has no len()`);
    },
    str: (v: unknown) => (typeof v === 'string' ? v : v === null ? 'None' : typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v)),
    int: (v: unknown) => {
      const n = typeof v === 'string' ? Number(v.trim()) : Number(v);
      if (!Number.isFinite(n) || (typeof v === 'string' && !/^\s*[-+]?\d+\s*$/.test(v)))
        throw new PyRaise(`ValueError: invalid literal for int(): ${JSON.stringify(v)}`);
      return Math.trunc(n);
    },
    bool: (v: unknown) => truthy(v),
    open: pyOpen,
  };
  for (const m of ['sys', 'os', 'platform', 're']) MODULE_NAMES.set(g[m] as object, m);
  for (const v of ['24', '25', '26', '27', '30', '31', '32', '33', '34', '35', '36'])
    g['python' + v] = `${PYTHON_VERSION[0]}${PYTHON_VERSION[1]}` === v;
  return g;
}
