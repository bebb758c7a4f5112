/**
 * deb822 control files (debian/control, DEBIAN/control, Packages, Sources, Release, InRelease,
 * .dsc, .changes, dpkg status) — see deb822(5) and Debian Policy 5.1.
 *
 * The parser is lossless: every field keeps the exact source text it came from (`raw`), blank
 * lines and comment-only blocks between paragraphs are kept as text (`Paragraph.leading`,
 * `Deb822File.trailer`), comment lines inside a paragraph are items of it, and a PGP clearsigned
 * wrapper is kept around the body. `String(parse(text)) === text` for any text that parses.
 * Editing a field (`set`) drops its raw text, and it is then written in canonical form.
 *
 * Field values (`get`): the text after the colon with surrounding whitespace removed, then for
 * each continuation line `\n` + the line as written (its leading space kept, trailing whitespace
 * removed); comment lines inside a field are not part of its value. This is the convention of
 * `dpkg-query -f '${Field}'`, and it is what `formatParagraph` writes back unchanged, e.g.
 * `Description` is `"synopsis\n long text\n .\n more"`, `SHA256` in a Release file is
 * `"\n <hash> <size> <name>\n ..."` (empty first line).
 */

/** Format one paragraph from ordered [field, value] pairs. Multi-line values are folded deb822-style. */
export function formatParagraph(fields: Array<[string, string]>): string {
  let out = '';
  for (const [name, value] of fields) {
    if (!/^[!-9;-~][!-9;-~]*$/.test(name) || name.startsWith('#') || name.startsWith('-')) {
      throw new Error(`invalid deb822 field name: ${JSON.stringify(name)}`);
    }
    const lines = value.split('\n');
    out += `${name}: ${lines[0]}\n`;
    for (const l of lines.slice(1)) out += l.trim() === '' ? ' .\n' : ` ${l.replace(/^ /, '')}\n`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** A syntax error at a line of a file: the message reads `FILE:LINE: message`. */
export class Deb822Error extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'Deb822Error';
  }
}

// ---------------------------------------------------------------------------------------------
// Data model

/** One field. `raw` is its exact source text (all its lines with their line ends, and comment lines inside it). */
export interface Field {
  readonly kind: 'field';
  /** Name as written (case kept). */
  readonly name: string;
  /** The value (see the module comment); assigning it drops `raw`. */
  value: string;
  /** 1-based line of the field name in the source; absent for fields added by `set`. */
  readonly line?: number;
  /** Exact source text; undefined once edited (then written in canonical form). */
  raw?: string;
}

/** A `#` comment line between fields, or at the start or end of a paragraph. */
export interface Comment {
  readonly kind: 'comment';
  /** The line including `#`, without the line end. */
  text: string;
  readonly line?: number;
  raw?: string;
}

export type Item = Field | Comment;

const NAME_RE = /^[!-9;-~]+$/;

function checkName(name: string): void {
  if (!NAME_RE.test(name) || name.startsWith('#') || name.startsWith('-')) {
    throw new Error(`invalid deb822 field name: ${JSON.stringify(name)}`);
  }
}

/** ASCII case-insensitive equality without allocating (field names are ASCII). */
function sameName(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0x41 && x <= 0x5a) x += 0x20;
    if (y >= 0x41 && y <= 0x5a) y += 0x20;
    if (x !== y) return false;
  }
  return true;
}

/** The value of a field from its raw text (comment lines inside it skipped). */
function valueOfRaw(raw: string): string {
  let nl = raw.indexOf('\n');
  const colon = raw.indexOf(':');
  const first = raw.slice(colon + 1, nl < 0 ? raw.length : nl).trim();
  if (nl < 0 || nl === raw.length - 1) return first;
  let out = first;
  let pos = nl + 1;
  while (pos < raw.length) {
    nl = raw.indexOf('\n', pos);
    const end = nl < 0 ? raw.length : nl;
    if (raw.charCodeAt(pos) !== HASH) out += '\n' + raw.slice(pos, end).trimEnd();
    pos = end + 1;
  }
  return out;
}

class FieldItem implements Field {
  readonly kind = 'field' as const;
  private v: string | undefined;
  constructor(
    readonly name: string,
    public raw: string | undefined,
    readonly line?: number,
    value?: string,
  ) {
    this.v = value;
  }
  get value(): string {
    return (this.v ??= valueOfRaw(this.raw!));
  }
  set value(v: string) {
    // normalized: what reading the written field back gives
    this.v = valueOfRaw(formatField(this.name, v));
    this.raw = undefined;
  }
}

/** Canonical text of a field: `Name: first` then continuation lines; empty lines become ` .`. */
export function formatField(name: string, value: string): string {
  checkName(name);
  const lines = value.split('\n');
  const first = lines[0]!.trim();
  let out = first === '' ? `${name}:\n` : `${name}: ${first}\n`;
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!.trimEnd();
    out += l.trim() === '' ? ' .\n' : /^[ \t]/.test(l) ? `${l}\n` : ` ${l}\n`;
  }
  return out;
}

/**
 * One paragraph (stanza): fields and comment lines in order; lookups are case-insensitive.
 * Parsed paragraphs keep their text and split it into items only when first looked into.
 */
export class Paragraph {
  /**
   * Text before the paragraph: separating blank lines (possibly with spaces/tabs) and comment-only
   * blocks. Undefined means the default: nothing for the first paragraph, one empty line otherwise.
   */
  leading: string | undefined;
  /** 1-based line of the first line of the paragraph (a field or comment) in the source. */
  line: number | undefined;
  private list: Item[] | undefined;
  private raw: string | undefined;

  constructor(fields?: Iterable<[string, string]> | Record<string, string>) {
    if (fields) {
      const entries = Symbol.iterator in fields ? (fields as Iterable<[string, string]>) : Object.entries(fields);
      for (const [k, v] of entries) this.set(k, v);
    }
  }

  /** @internal a parsed paragraph: `raw` was validated by the parser. */
  static _fromRaw(raw: string, line: number, leading: string): Paragraph {
    const p = new Paragraph();
    p.raw = raw;
    p.line = line;
    p.leading = leading;
    return p;
  }

  /** Fields and comments in source order. Change fields through set/delete. */
  get items(): Item[] {
    return (this.list ??= this.raw === undefined ? [] : splitItems(this.raw, this.line ?? 1));
  }

  /** The field object (name as written, line, raw text), case-insensitive. */
  field(name: string): Field | undefined {
    for (const it of this.items) if (it.kind === 'field' && sameName(it.name, name)) return it;
    return undefined;
  }

  /** The value of a field (case-insensitive name), or undefined. */
  get(name: string): string | undefined {
    return this.field(name)?.value;
  }

  has(name: string): boolean {
    return this.field(name) !== undefined;
  }

  /**
   * Set a field. An existing field (any case) keeps its place and the spelling of its name;
   * a new one is appended after the last field. Values follow the `get` convention.
   */
  set(name: string, value: string): this {
    checkName(name);
    const old = this.field(name);
    if (old) {
      if (old.raw === undefined || old.value !== valueOfRaw(formatField(name, value))) old.value = value;
      return this;
    }
    const items = this.items;
    const f = new FieldItem(name, undefined, undefined, valueOfRaw(formatField(name, value)));
    let at = items.length;
    while (at > 0 && items[at - 1]!.kind === 'comment') at--;
    if (at === 0) at = items.length;
    const prev = items[at - 1];
    if (prev?.raw !== undefined && !prev.raw.endsWith('\n')) prev.raw += '\n';
    items.splice(at, 0, f);
    return this;
  }

  /** Remove a field; true if it was there. */
  delete(name: string): boolean {
    const f = this.field(name);
    if (!f) return false;
    const items = this.items;
    const i = items.indexOf(f);
    items.splice(i, 1);
    if (i === items.length && f.raw !== undefined && !f.raw.endsWith('\n')) {
      // keep "no line end at the end of the file" on whatever is now last
      const prev = items[items.length - 1];
      if (prev?.raw?.endsWith('\n')) prev.raw = prev.raw.replace(/\r?\n$/, '');
    }
    return true;
  }

  /** Field names as written, in order. */
  names(): string[] {
    return this.fields().map((f) => f.name);
  }

  /** Field objects in order (comments left out). */
  fields(): Field[] {
    return this.items.filter((i): i is Field => i.kind === 'field');
  }

  /** Comment lines (with `#`) that are items of the paragraph, in order. */
  comments(): string[] {
    return this.items.filter((i): i is Comment => i.kind === 'comment').map((c) => c.text);
  }

  /** [name, value] pairs in order. */
  entries(): Array<[string, string]> {
    return this.fields().map((f) => [f.name, f.value]);
  }

  /** Plain object of name → value (names as written). */
  toObject(): Record<string, string> {
    return Object.fromEntries(this.entries());
  }

  get size(): number {
    return this.fields().length;
  }

  /** The paragraph's text (without `leading`). */
  toString(): string {
    if (this.list === undefined) return this.raw ?? '';
    let out = '';
    for (const it of this.list) {
      if (it.raw !== undefined) out += it.raw;
      else if (it.kind === 'field') out += formatField(it.name, it.value);
      else out += `${it.text}\n`;
    }
    return out;
  }
}

/** Items of a validated paragraph text (no blank lines in it; starts with a field or comment). */
function splitItems(raw: string, line: number): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let fieldStart = -1;
  let fieldLine = 0;
  let fieldName = '';
  let pending: Array<[number, number, number]> = [];
  const endField = (end: number) => {
    if (fieldStart >= 0) items.push(new FieldItem(fieldName, raw.slice(fieldStart, end), fieldLine));
    fieldStart = -1;
  };
  const flush = () => {
    for (const [s, e, l] of pending) {
      const r = raw.slice(s, e);
      items.push({ kind: 'comment', text: r.replace(/\r?\n$/, ''), line: l, raw: r });
    }
    pending = [];
  };
  while (pos < raw.length) {
    const nl = raw.indexOf('\n', pos);
    const end = nl < 0 ? raw.length : nl + 1;
    const c = raw.charCodeAt(pos);
    if (c === HASH) pending.push([pos, end, line]);
    else if (c === SP || c === TAB) pending = []; // comments inside a field stay in its raw text
    else {
      endField(pending.length ? pending[0]![0] : pos);
      flush();
      fieldStart = pos;
      fieldLine = line;
      fieldName = raw.slice(pos, raw.indexOf(':', pos));
    }
    pos = end;
    line++;
  }
  endField(pending.length ? pending[0]![0] : raw.length);
  flush();
  return items;
}

/** Details of a PGP clearsigned wrapper (InRelease, signed .dsc/.changes). Not verified. */
export interface ClearSignature {
  /** Values of the `Hash:` armor headers, e.g. ["SHA256"]. */
  hashes: string[];
  /** Exact text from the start of the file up to and including the empty line that starts the body. */
  header: string;
  /** Exact text from `-----BEGIN PGP SIGNATURE-----` to the end of the file. */
  signature: string;
  /** @internal the body as signed (dash-escaped) and unescaped, to write it back unchanged. */
  _body?: { escaped: string; plain: string };
}

/** A parsed file: paragraphs, trailing text, and the clearsigned wrapper if there was one. */
export class Deb822File {
  paragraphs: Paragraph[] = [];
  /** Text after the last paragraph: blank lines, comment-only blocks. */
  trailer = '';
  /** Present when the input was PGP clearsigned. `toString()` writes the wrapper back (the signature is stale if anything was edited). */
  signed: ClearSignature | undefined;

  constructor(paragraphs?: Paragraph[]) {
    if (paragraphs) this.paragraphs = paragraphs;
  }

  /** The deb822 text (the signed body for clearsigned input, dash-unescaped). */
  body(): string {
    const parts: string[] = [];
    let open = false; // the text so far does not end with a line end
    const add = (s: string) => {
      if (s === '') return;
      if (open) parts.push('\n');
      parts.push(s);
      open = !s.endsWith('\n');
    };
    this.paragraphs.forEach((p, i) => {
      add(p.leading ?? (i === 0 ? '' : '\n'));
      add(p.toString());
    });
    add(this.trailer);
    return parts.join('');
  }

  /** The whole file, byte-for-byte what was parsed if nothing was edited. */
  toString(): string {
    if (!this.signed) return this.body();
    const plain = this.body();
    const kept = this.signed._body;
    const body = kept && kept.plain === plain ? kept.escaped : plain.replace(/^-/gm, '- -');
    return this.signed.header + body + (body.endsWith('\n') || body === '' ? '' : '\n') + this.signed.signature;
  }
}

// ---------------------------------------------------------------------------------------------
// Parser

export interface ParseOptions {
  /** Name used in error messages (`FILE:LINE: message`). Default `<input>`. */
  file?: string;
  /** Reject `#` comment lines (deb822(5) allows them only in debian/control). Default false. */
  noComments?: boolean;
}

const SP = 0x20;
const TAB = 0x09;
const HASH = 0x23;
const CR = 0x0d;
const NL = 0x0a;
const DASH = 0x2d;

function isBlank(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c !== SP && c !== TAB && c !== CR) return false;
  }
  return true;
}

/** Split a PGP clearsigned message; null when `text` is not one. Line numbers of the body start at `bodyLine`. */
export function splitClearsigned(
  text: string,
  file = '<input>',
): { body: string; bodyLine: number; signature: ClearSignature } | null {
  const m = /^(?:[ \t\r]*\n)*-----BEGIN PGP SIGNED MESSAGE-----\r?\n/.exec(text);
  if (!m) return null;
  let pos = m[0].length;
  let line = m[0].split('\n').length; // the next line's number
  const hashes: string[] = [];
  for (;;) {
    if (pos >= text.length) throw new Deb822Error(file, line, 'PGP signed message has no body');
    const nl = text.indexOf('\n', pos);
    const end = nl < 0 ? text.length : nl;
    const l = text.slice(pos, end).replace(/\r$/, '');
    pos = nl < 0 ? text.length : nl + 1;
    line++;
    if (l === '') break;
    const h = /^([A-Za-z]+): ?(.*)$/.exec(l);
    if (!h) throw new Deb822Error(file, line - 1, `bad PGP armor header: ${JSON.stringify(l)}`);
    if (h[1] === 'Hash') hashes.push(...h[2]!.split(',').map((s) => s.trim()).filter(Boolean));
  }
  const header = text.slice(0, pos);
  const bodyLine = line;
  const sig = /^-----BEGIN PGP SIGNATURE-----\r?$/m;
  sig.lastIndex = 0;
  const rest = text.slice(pos);
  const s = sig.exec(rest);
  if (!s) throw new Deb822Error(file, bodyLine, 'PGP signed message without "-----BEGIN PGP SIGNATURE-----"');
  const signature = rest.slice(s.index);
  if (!/^-----END PGP SIGNATURE-----\r?$/m.test(signature)) {
    const at = bodyLine + rest.slice(0, s.index).split('\n').length - 1;
    throw new Deb822Error(file, at, 'PGP signature without "-----END PGP SIGNATURE-----"');
  }
  // The line end before the signature belongs to the body (a deb822 body always ends in one).
  const rawBody = rest.slice(0, s.index);
  const escaped = rawBody.split('\n');
  for (let i = 0; i < escaped.length; i++) {
    const l = escaped[i]!;
    if (l.startsWith('- ')) escaped[i] = l.slice(2);
    else if (l.startsWith('-')) throw new Deb822Error(file, bodyLine + i, 'line starting with "-" in a PGP signed message is not dash-escaped');
  }
  const body = escaped.join('\n');
  return { body, bodyLine, signature: { hashes, header, signature, _body: { escaped: rawBody, plain: body } } };
}

/**
 * Parse deb822 text. Errors (`Deb822Error`, message `FILE:LINE: ...`): continuation line before
 * any field, line without a colon, empty field name, invalid field name, duplicate field in a
 * paragraph. A clearsigned wrapper is detected and removed (see `Deb822File.signed`).
 */
export function parse(text: string, opts: ParseOptions = {}): Deb822File {
  const file = opts.file ?? '<input>';
  const doc = new Deb822File();
  let firstLine = 1;
  const cs = splitClearsigned(text, file);
  if (cs) {
    doc.signed = cs.signature;
    text = cs.body;
    firstLine = cs.bodyLine;
  }
  const len = text.length;
  let pos = 0;
  let lineNo = firstLine - 1;
  let inPara = false; // inside a block that has a field
  let inField = false;
  let paraStart = 0;
  let paraLine = 0;
  let sepStart = 0; // start of the text not yet given to a paragraph
  let commentFrom = -1; // start of the run of comment lines just seen (-1: none)
  let commentLine = 0;
  const seen = new Map<string, number>(); // lower-case field name → line, for the current paragraph

  const endPara = (end: number) => {
    doc.paragraphs.push(Paragraph._fromRaw(text.slice(paraStart, end), paraLine, text.slice(sepStart, paraStart)));
    sepStart = end;
    inPara = false;
    inField = false;
  };

  while (pos < len) {
    const nl = text.indexOf('\n', pos);
    const contentEnd = nl < 0 ? len : nl;
    const end = nl < 0 ? len : nl + 1;
    lineNo++;
    const c = text.charCodeAt(pos);
    if (c === NL || isBlank(text, pos, contentEnd)) {
      if (inPara) endPara(pos);
      commentFrom = -1;
    } else if (c === HASH) {
      if (opts.noComments) throw new Deb822Error(file, lineNo, 'comment lines are not allowed here');
      if (commentFrom < 0) {
        commentFrom = pos;
        commentLine = lineNo;
      }
    } else if (c === SP || c === TAB) {
      if (!inField) throw new Deb822Error(file, lineNo, 'continuation line before any field');
      commentFrom = -1; // comment lines in between belong to the field
    } else {
      const colon = text.indexOf(':', pos);
      if (colon < 0 || colon >= contentEnd) {
        throw new Deb822Error(file, lineNo, `line without a colon: ${JSON.stringify(text.slice(pos, contentEnd).replace(/\r$/, ''))}`);
      }
      if (colon === pos) throw new Deb822Error(file, lineNo, 'empty field name');
      const name = text.slice(pos, colon);
      if (c === DASH || !NAME_RE.test(name)) throw new Deb822Error(file, lineNo, `invalid field name ${JSON.stringify(name)}`);
      if (!inPara) {
        inPara = true;
        seen.clear();
        paraStart = commentFrom >= 0 ? commentFrom : pos;
        paraLine = commentFrom >= 0 ? commentLine : lineNo;
      }
      const key = name.toLowerCase();
      const dup = seen.get(key);
      if (dup !== undefined) throw new Deb822Error(file, lineNo, `duplicate field ${JSON.stringify(name)} (first at line ${dup})`);
      seen.set(key, lineNo);
      inField = true;
      commentFrom = -1;
    }
    pos = end;
  }
  if (inPara) endPara(len);
  doc.trailer = text.slice(sepStart);
  return doc;
}

/** Parse text that must hold exactly one paragraph (e.g. DEBIAN/control). */
export function parseParagraph(text: string, opts: ParseOptions = {}): Paragraph {
  const doc = parse(text, opts);
  if (doc.paragraphs.length !== 1) {
    throw new Error(`${opts.file ?? '<input>'}: expected one paragraph, found ${doc.paragraphs.length}`);
  }
  return doc.paragraphs[0]!;
}

/** Write paragraphs (each an instance or [name, value] pairs), separated by empty lines. */
export function formatParagraphs(paras: Array<Paragraph | Array<[string, string]>>): string {
  return new Deb822File(paras.map((p) => (p instanceof Paragraph ? p : new Paragraph(p)))).toString();
}

// ---------------------------------------------------------------------------------------------
// Relationship fields (Depends, Build-Depends, ...): Debian Policy 7.1, 7.5 and build profiles.

export type RelationOp = '<<' | '<=' | '=' | '>=' | '>>' | '<' | '>';

/** One alternative, e.g. `libc6:amd64 (>= 2.36) [amd64 !i386] <!nocheck> <stage1 cross>`. */
export interface Relation {
  name: string;
  /** Architecture qualifier after `:` (`any`, `native`, an architecture). */
  archQualifier?: string;
  version?: { op: RelationOp; version: string };
  /** Architecture restriction list as written, `!` kept (`['amd64', '!i386']`). */
  architectures?: string[];
  /** Build-profile restriction formulas: one list per `<...>` group, `!` kept. */
  restrictions?: string[][];
}

/** AND of OR-groups: `a (>= 1) | b, c` → `[[a, b], [c]]`. */
export type Relations = Relation[][];

const REL_RE =
  /^(\$\{[^}\s]+\}|[A-Za-z0-9][A-Za-z0-9+.\-]*)(?::([A-Za-z0-9][A-Za-z0-9\-]*))?\s*(?:\(\s*(<<|<=|>=|>>|=|<|>)\s*([A-Za-z0-9.+~:_\-\${}]+)\s*\)\s*)?(?:\[([^\[\]]*)\]\s*)?((?:<[^<>]*>\s*)*)$/;

/** Parse a relationship field value (folded lines allowed). Empty groups from stray commas are skipped. */
export function parseRelations(value: string): Relations {
  const out: Relations = [];
  for (const group of value.split(',')) {
    if (group.trim() === '') continue;
    const alts: Relation[] = [];
    for (const alt of group.split('|')) {
      const s = alt.trim();
      if (s === '') throw new Error(`empty alternative in relation ${JSON.stringify(group.trim())}`);
      const m = REL_RE.exec(s);
      if (!m) throw new Error(`invalid relation ${JSON.stringify(s)}`);
      const r: Relation = { name: m[1]! };
      if (m[2]) r.archQualifier = m[2];
      if (m[3]) r.version = { op: m[3] as RelationOp, version: m[4]! };
      if (m[5] !== undefined) {
        const archs = m[5].trim().split(/\s+/).filter(Boolean);
        if (!archs.length) throw new Error(`empty architecture list in relation ${JSON.stringify(s)}`);
        r.architectures = archs;
      }
      if (m[6]) {
        r.restrictions = [...m[6].matchAll(/<([^<>]*)>/g)].map((g) => {
          const terms = g[1]!.trim().split(/\s+/).filter(Boolean);
          if (!terms.length) throw new Error(`empty build profile list in relation ${JSON.stringify(s)}`);
          return terms;
        });
      }
      alts.push(r);
    }
    out.push(alts);
  }
  return out;
}

/** Canonical text of one alternative. */
export function formatRelation(r: Relation): string {
  let s = r.name;
  if (r.archQualifier) s += `:${r.archQualifier}`;
  if (r.version) s += ` (${r.version.op} ${r.version.version})`;
  if (r.architectures) s += ` [${r.architectures.join(' ')}]`;
  for (const g of r.restrictions ?? []) s += ` <${g.join(' ')}>`;
  return s;
}

/** Canonical text of a relationship field: `a (>= 1) | b, c`. */
export function formatRelations(rels: Relations): string {
  return rels.map((alts) => alts.map(formatRelation).join(' | ')).join(', ');
}

// ---------------------------------------------------------------------------------------------
// Checksum fields: Release MD5Sum/SHA1/SHA256/SHA512, .dsc/.changes Files and Checksums-*.

export interface Checksum {
  hash: string;
  size: number;
  name: string;
  /** Only in the `Files` field of .changes (`md5 size section priority name`). */
  section?: string;
  priority?: string;
}

/** Parse a multi-line checksum field value (lines `hash size name`, or `hash size section priority name`). */
export function parseChecksums(value: string): Checksum[] {
  const out: Checksum[] = [];
  for (const line of value.split('\n')) {
    const w = line.trim().split(/[ \t]+/);
    if (w.length === 1 && w[0] === '') continue;
    if (w.length !== 3 && w.length !== 5) throw new Error(`invalid checksum line ${JSON.stringify(line.trim())}: expected "hash size name"`);
    const [hash, size] = w as [string, string];
    if (!/^[0-9a-fA-F]+$/.test(hash)) throw new Error(`invalid checksum line ${JSON.stringify(line.trim())}: bad hash`);
    if (!/^[0-9]+$/.test(size)) throw new Error(`invalid checksum line ${JSON.stringify(line.trim())}: bad size`);
    const c: Checksum = w.length === 3 ? { hash, size: Number(size), name: w[2]! } : { hash, size: Number(size), section: w[2]!, priority: w[3]!, name: w[4]! };
    out.push(c);
  }
  return out;
}

/**
 * A checksum field value (empty first line, one ` hash size name` line each). `sizeWidth` pads
 * sizes on the left like Release files do (`' ' + hash + ' ' + size.padStart(sizeWidth) + ' ' + name`).
 */
export function formatChecksums(list: Checksum[], opts: { sizeWidth?: number } = {}): string {
  return list
    .map((c) => {
      const size = String(c.size).padStart(opts.sizeWidth ?? 0);
      const mid = c.section !== undefined ? ` ${c.section} ${c.priority ?? ''}` : '';
      return `\n ${c.hash} ${size}${mid} ${c.name}`;
    })
    .join('');
}
