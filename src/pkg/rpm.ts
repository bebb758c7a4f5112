/**
 * Native .rpm writer (rpm v4 package format, as rpm 4.18 reads and rpmbuild 4.18 writes it).
 *
 *   writeRpm(spec: RpmSpec, outPath) -> Promise<{ path, size }>
 *   rpmFileName(spec) -> 'name-version-release.arch.rpm'
 *   parseDep('foo >= 1.0') -> { name, flags, version }
 *
 * Layout: a 96-byte lead; the signature header (header SHA-256 and SHA-1, MD5 over header and
 * payload, sizes, optionally an OpenPGP header signature: RSA keys in RPMSIGTAG_RSA, DSA/EdDSA/
 * ECDSA keys in RPMSIGTAG_DSA, as rpmsign does); the main header in one immutable region (name,
 * EVR, descriptions, dependencies with sense flags and the rpmlib() features the package needs,
 * weak dependencies, scriptlets with interpreters, changelog, file metadata with SHA-256 file
 * digests, %config/%config(noreplace)/%ghost/%doc/%license flags, payload digests); then the
 * payload: a cpio newc archive (names ./usr/..., %ghost entries left out) compressed with gzip
 * (level 9), xz (level 6, the default: every rpm since 4.6 reads it) or zstd (level 19, rpm >= 4.14).
 *
 * Files: RpmSpec.files is the shared PkgFile manifest (files.ts). Only the listed entries are owned
 * by the package (not the parent directories they imply), as rpmbuild's %files does: a 'dir' entry
 * is %dir. Per-file rpm flags: conffile (or config) = %config, noreplace = %config(noreplace),
 * ghost = %ghost (owned, not in the payload), doc = %doc (implied below /usr/share/{doc,man,info},
 * as rpmbuild's __docdir_path does), license = %license.
 *
 * Streaming, flat memory, one write: the lead, signature header and main header have sizes known
 * before the payload exists (digests are fixed-length hex; the signature header ends with
 * RESERVEDSPACE, 4 KiB of zeros as rpmbuild leaves for rpmsign, which also absorbs the signature
 * and 64-bit sizes), so `outPath.tmp-<pid>-...` starts with room for them and the compressor
 * writes the payload straight after it. File contents are read once (synchronously, in bounded
 * chunks) through the cpio writer (file digests and the uncompressed-payload digest on the way)
 * into the compressor, whose output passes through this process for PAYLOADDIGEST. Then the
 * headers are built, MD5 over header and payload is read back from the page cache, the front is
 * written and the file renamed into place. On any error the temporary file is removed: no
 * partial output.
 *
 * Reproducible: BUILDTIME = SOURCE_DATE_EPOCH (spec.sourceDateEpoch, else 0; never the environment),
 * file mtimes clamped to it, entries sorted; same spec, same bytes (xz/zstd output does not depend
 * on the number of cores, see compress.ts).
 *
 * Limits: single files of 4 GiB and more are refused (rpm needs its own cpio variant and
 * LONGFILESIZES for them); packages whose total size passes 4 GiB use the 64-bit LONGSIZE /
 * LONGSIGSIZE / LONGARCHIVESIZE tags as rpmbuild does. No hard links, no file capabilities.
 *
 * Differences from an rpmbuild -bb of the same tree (see test/rpm.test.ts, which compares them):
 * no OPTFLAGS (nothing is compiled), coarse FILECLASS strings (ELF class and 'directory'
 * instead of libmagic's descriptions; FILECOLORS are the ELF colours rpm uses for multilib),
 * changelog times kept to the second (rpmbuild parses a date and keeps noon of that day),
 * PLATFORM 'ARCH-pc-linux'. The cpio payload itself is byte-identical to rpmbuild's.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { tmpSibling } from '../lib/fsutil.js';
import { Signer } from '../lib/gpg.js';
import { writeAll } from './bytewriter.js';
import { compressToFile, type Compression } from './compress.js';
import { CpioWriter } from './cpio.js';
import { buildManifest, type ManifestEntry, type PkgFile } from './files.js';
import { validateRpmName, validateRpmVersion } from './version.js';

export interface RpmScript {
  body: string;
  /**
   * interpreter (and arguments, space-separated), e.g. '/bin/bash -e' or '<lua>'; default: the
   * body's #! line when it has one, else /bin/sh. A #! line is removed from the stored body.
   */
  prog?: string;
}

export interface RpmChangelogEntry {
  /** seconds since the epoch */
  time: number;
  /** 'Name <email> - version-release' */
  author: string;
  /** '- change' lines */
  text: string;
}

/** A PkgFile with rpm's spelling of the %config flag also accepted. */
export type RpmFile = PkgFile & { config?: boolean };

export interface RpmSpec {
  name: string;
  version: string;
  release: string;
  epoch?: number;
  /** rpm architecture: noarch, x86_64, aarch64, ... */
  arch: string;
  summary: string;
  description: string;
  license: string;
  group?: string;
  url?: string;
  vendor?: string;
  packager?: string;
  /** 'name', 'name >= 1.0' (operators < <= = >= >), or a rich '(a or b)' */
  requires?: string[];
  provides?: string[];
  conflicts?: string[];
  obsoletes?: string[];
  recommends?: string[];
  suggests?: string[];
  supplements?: string[];
  enhances?: string[];
  files: RpmFile[];
  scripts?: { pre?: RpmScript; post?: RpmScript; preun?: RpmScript; postun?: RpmScript; pretrans?: RpmScript; posttrans?: RpmScript };
  changelog?: RpmChangelogEntry[];
  /** payload compression, default xz */
  compression?: Exclude<Compression, 'none'>;
  /** BUILDTIME and the mtime clamp; default $SOURCE_DATE_EPOCH, else 0 */
  sourceDateEpoch?: number;
  /** BUILDHOST, default 'kiln' (not the machine's name: reproducible) */
  buildHost?: string;
  /** SOURCERPM, default name-version-release.src.rpm */
  sourceRpm?: string;
  /** OpenPGP header signature made with this secret key (gpg) */
  signingKey?: { keyFile: string; passphraseFile?: string };
}

export interface RpmResult {
  path: string;
  size: number;
}

export function rpmFileName(spec: Pick<RpmSpec, 'name' | 'version' | 'release' | 'arch'>): string {
  return `${spec.name}-${spec.version}-${spec.release}.${spec.arch}.rpm`;
}

// ---- tags ---------------------------------------------------------------------------------

/** Signature header tags. */
const SIG = { HEADERSIGNATURES: 62, DSA: 267, RSA: 268, SHA1: 269, LONGSIZE: 270, LONGARCHIVESIZE: 271, SHA256: 273, SIZE: 1000, MD5: 1004, PAYLOADSIZE: 1007, RESERVEDSPACE: 1008 } as const;

/** Main header tags (rpmtag.h). */
const TAG = {
  HEADERIMMUTABLE: 63, HEADERI18NTABLE: 100,
  NAME: 1000, VERSION: 1001, RELEASE: 1002, EPOCH: 1003, SUMMARY: 1004, DESCRIPTION: 1005, BUILDTIME: 1006, BUILDHOST: 1007,
  SIZE: 1009, VENDOR: 1011, LICENSE: 1014, PACKAGER: 1015, GROUP: 1016, URL: 1020, OS: 1021, ARCH: 1022,
  PREIN: 1023, POSTIN: 1024, PREUN: 1025, POSTUN: 1026,
  FILESIZES: 1028, FILEMODES: 1030, FILERDEVS: 1033, FILEMTIMES: 1034, FILEDIGESTS: 1035, FILELINKTOS: 1036, FILEFLAGS: 1037,
  FILEUSERNAME: 1039, FILEGROUPNAME: 1040, SOURCERPM: 1044, FILEVERIFYFLAGS: 1045,
  PROVIDENAME: 1047, REQUIREFLAGS: 1048, REQUIRENAME: 1049, REQUIREVERSION: 1050,
  CONFLICTFLAGS: 1053, CONFLICTNAME: 1054, CONFLICTVERSION: 1055, RPMVERSION: 1064,
  CHANGELOGTIME: 1080, CHANGELOGNAME: 1081, CHANGELOGTEXT: 1082,
  PREINPROG: 1085, POSTINPROG: 1086, PREUNPROG: 1087, POSTUNPROG: 1088,
  OBSOLETENAME: 1090, FILEDEVICES: 1095, FILEINODES: 1096, FILELANGS: 1097,
  PROVIDEFLAGS: 1112, PROVIDEVERSION: 1113, OBSOLETEFLAGS: 1114, OBSOLETEVERSION: 1115,
  DIRINDEXES: 1116, BASENAMES: 1117, DIRNAMES: 1118,
  PAYLOADFORMAT: 1124, PAYLOADCOMPRESSOR: 1125, PAYLOADFLAGS: 1126, PLATFORM: 1132,
  FILECOLORS: 1140, FILECLASS: 1141, CLASSDICT: 1142,
  PRETRANS: 1151, POSTTRANS: 1152, PRETRANSPROG: 1153, POSTTRANSPROG: 1154,
  LONGSIZE: 5009, FILEDIGESTALGO: 5011,
  RECOMMENDNAME: 5046, RECOMMENDVERSION: 5047, RECOMMENDFLAGS: 5048,
  SUGGESTNAME: 5049, SUGGESTVERSION: 5050, SUGGESTFLAGS: 5051,
  SUPPLEMENTNAME: 5052, SUPPLEMENTVERSION: 5053, SUPPLEMENTFLAGS: 5054,
  ENHANCENAME: 5055, ENHANCEVERSION: 5056, ENHANCEFLAGS: 5057,
  ENCODING: 5062, PAYLOADDIGEST: 5092, PAYLOADDIGESTALGO: 5093, PAYLOADDIGESTALT: 5097,
} as const;

const PGPHASHALGO_SHA256 = 8;

// ---- header construction --------------------------------------------------------------

const T = { CHAR: 1, INT8: 2, INT16: 3, INT32: 4, INT64: 5, STRING: 6, BIN: 7, STRING_ARRAY: 8, I18NSTRING: 9 } as const;
type Value = { type: number; data: Buffer; count: number };

const str = (s: string): Value => ({ type: T.STRING, data: Buffer.from(s + '\0'), count: 1 });
const i18n = (s: string): Value => ({ type: T.I18NSTRING, data: Buffer.from(s + '\0'), count: 1 });
const strArr = (a: string[]): Value => ({ type: T.STRING_ARRAY, data: Buffer.concat(a.map((s) => Buffer.from(s + '\0'))), count: a.length });
const bin = (b: Buffer): Value => ({ type: T.BIN, data: b, count: b.length });
function int32(a: number[]): Value {
  const b = Buffer.alloc(4 * a.length);
  a.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return { type: T.INT32, data: b, count: a.length };
}
function int16(a: number[]): Value {
  const b = Buffer.alloc(2 * a.length);
  a.forEach((v, i) => b.writeUInt16BE(v & 0xffff, i * 2));
  return { type: T.INT16, data: b, count: a.length };
}
function int64(a: number[]): Value {
  const b = Buffer.alloc(8 * a.length);
  a.forEach((v, i) => b.writeBigUInt64BE(BigInt(v), i * 8));
  return { type: T.INT64, data: b, count: a.length };
}
const ALIGN: Record<number, number> = { [T.INT16]: 2, [T.INT32]: 4, [T.INT64]: 8 };

/** Serialise a header (with magic) whose entries all sit in one immutable region `regionTag`. */
function buildHeader(tags: Map<number, Value>, regionTag: number): Buffer {
  const entries = [...tags.entries()].sort((a, b) => a[0] - b[0]);
  const il = entries.length + 1;
  const index: Buffer[] = [];
  const data: Buffer[] = [];
  let dl = 0;
  const entry = (tag: number, type: number, offset: number, count: number) => {
    const b = Buffer.alloc(16);
    b.writeUInt32BE(tag, 0);
    b.writeUInt32BE(type, 4);
    b.writeInt32BE(offset, 8);
    b.writeUInt32BE(count, 12);
    return b;
  };
  for (const [tag, v] of entries) {
    const a = ALIGN[v.type] ?? 1;
    const pad = (a - (dl % a)) % a;
    if (pad) {
      data.push(Buffer.alloc(pad));
      dl += pad;
    }
    index.push(entry(tag, v.type, dl, v.count));
    data.push(v.data);
    dl += v.data.length;
  }
  // the region: a first index entry pointing at a trailer (at the end of the data) that points
  // back over the whole index
  data.push(entry(regionTag, T.BIN, -(il * 16), 16));
  const regionEntry = entry(regionTag, T.BIN, dl, 16);
  dl += 16;
  const head = Buffer.alloc(16);
  head.write('8eade801', 0, 'hex');
  head.writeUInt32BE(il, 8);
  head.writeUInt32BE(dl, 12);
  return Buffer.concat([head, regionEntry, ...index, ...data]);
}

// ---- dependencies ------------------------------------------------------------------------

const SENSE = {
  LESS: 2, GREATER: 4, EQUAL: 8, POSTTRANS: 32, PRETRANS: 128, INTERP: 256,
  SCRIPT_PRE: 512, SCRIPT_POST: 1024, SCRIPT_PREUN: 2048, SCRIPT_POSTUN: 4096, RPMLIB: 1 << 24,
} as const;

export interface Dep {
  name: string;
  flags: number;
  version: string;
}

const EVR_RE = /^(\d+:)?[A-Za-z0-9._+~^]+(-[A-Za-z0-9._+~^]+)?$/;

/** 'name', 'name OP [epoch:]version[-release]' or a rich dependency '(...)' (kept verbatim). */
export function parseDep(s: string): Dep {
  const t = s.trim();
  if (t.startsWith('(')) {
    let depth = 0;
    for (const c of t) depth += c === '(' ? 1 : c === ')' ? -1 : 0;
    if (depth !== 0 || !t.endsWith(')')) throw new KilnError(`invalid rich rpm dependency '${s}' (unbalanced parentheses)`);
    return { name: t, flags: 0, version: '' };
  }
  const m = /^([^\s,<>=]+)(?:\s*(<=|>=|=|==|<|>)\s*(\S+))?$/.exec(t);
  if (!m || (m[3] !== undefined && !EVR_RE.test(m[3]))) throw new KilnError(`invalid rpm dependency '${s}' (expected 'name', 'name OP [epoch:]version[-release]' with OP one of < <= = >= >, or a rich '(...)')`);
  const op = m[2] ?? '';
  const flags = (op.includes('<') ? SENSE.LESS : 0) | (op.includes('>') ? SENSE.GREATER : 0) | (op.includes('=') ? SENSE.EQUAL : 0);
  return { name: m[1]!, flags, version: m[3] ?? '' };
}

/** Sorted and unique, as rpmbuild records them. */
function uniqDeps(ds: Dep[]): Dep[] {
  const m = new Map<string, Dep>();
  for (const d of ds) m.set(`${d.name}\0${d.flags}\0${d.version}`, d);
  const cmp = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  return [...m.values()].sort((a, b) => cmp(a.name, b.name) || a.flags - b.flags || cmp(a.version, b.version));
}

function depTags(tags: Map<number, Value>, deps: Dep[], nameTag: number, versionTag: number, flagsTag: number): void {
  if (!deps.length) return;
  tags.set(nameTag, strArr(deps.map((d) => d.name)));
  tags.set(versionTag, strArr(deps.map((d) => d.version)));
  tags.set(flagsTag, int32(deps.map((d) => d.flags)));
}

// ---- validation -----------------------------------------------------------------------------

function validate(spec: RpmSpec): void {
  const who = spec.name || '(unnamed package)';
  const fail = (m: string): never => {
    throw new KilnError(`${who}: ${m}`);
  };
  const e = validateRpmName(spec.name ?? '') ?? validateRpmVersion(spec.version ?? '') ?? validateRpmVersion(spec.release ?? '', 'release');
  if (e) fail(e);
  if (!spec.arch || !/^[A-Za-z0-9_]+$/.test(spec.arch)) fail(`invalid rpm architecture '${spec.arch}'`);
  if (!spec.summary?.trim() || spec.summary.includes('\n')) fail('a one-line summary is required');
  if (!spec.license?.trim()) fail('a license is required');
  for (const k of ['license', 'vendor', 'url', 'group', 'packager', 'sourceRpm'] as const) {
    const v = spec[k];
    if (typeof v === 'string' && /[\n\r\0]/.test(v)) fail(`${k} must be a single line: ${JSON.stringify(v)}`);
  }
  if (spec.epoch !== undefined && (!Number.isInteger(spec.epoch) || spec.epoch < 0 || spec.epoch > 0x7fffffff)) fail(`invalid epoch ${spec.epoch}`);
  if (spec.compression !== undefined && !['gzip', 'xz', 'zstd'].includes(spec.compression)) fail(`unknown payload compression '${spec.compression}' (gzip, xz or zstd)`);
  if (!Array.isArray(spec.files)) fail('files must be a list');
  const sde = spec.sourceDateEpoch;
  if (sde !== undefined && (!Number.isInteger(sde) || sde < 0 || sde > 0xffffffff)) fail(`invalid SOURCE_DATE_EPOCH ${sde}`);
  for (const kind of ['requires', 'provides', 'conflicts', 'obsoletes', 'recommends', 'suggests', 'supplements', 'enhances'] as const) {
    for (const d of spec[kind] ?? []) {
      try {
        const p = parseDep(d);
        if ((kind === 'provides' || kind === 'obsoletes') && p.name.startsWith('(')) fail(`rich dependencies are not allowed in ${kind}: '${d}'`);
      } catch (err) {
        if (err instanceof KilnError && err.message.startsWith(who)) throw err;
        fail(`${kind}: ${(err as Error).message}`);
      }
    }
  }
  for (const c of spec.changelog ?? []) {
    if (!Number.isInteger(c.time) || c.time < 0 || !c.author?.trim()) fail('changelog entries need a time (seconds) and an author');
  }
}

const FILE = { CONFIG: 1, DOC: 2, NOREPLACE: 16, GHOST: 64, LICENSE: 128 } as const;
const VERIFY = { DIGEST: 1, FILESIZE: 2, LINKTO: 4, MTIME: 32 } as const;

/** '#!/bin/bash -e' or prog '/bin/bash -e' -> ['/bin/bash', '-e'] and the body without the #! line. */
function scriptlet(s: RpmScript): { prog: string[]; body: string } {
  const shebang = /^#!\s*([^\n]*)\n?/.exec(s.body);
  const prog = (s.prog ?? shebang?.[1] ?? '/bin/sh').trim().split(/\s+/).filter(Boolean);
  if (!prog.length) prog.push('/bin/sh');
  // rpmbuild stores scriptlets without their trailing newlines
  const body = (shebang ? s.body.slice(shebang[0].length) : s.body).replace(/\s+$/, '');
  return { prog, body };
}

/** OpenPGP public-key algorithm of a binary signature (v4/v5 packet): 1-3 RSA, 17 DSA, 19 ECDSA, 22 EdDSA. */
function sigPubkeyAlgo(sig: Buffer): number {
  let off: number;
  const tag = sig[0]!;
  if (tag & 0x40) {
    // new format length
    const l0 = sig[1]!;
    off = l0 < 192 ? 2 : l0 < 224 ? 3 : 6;
  } else off = 1 + [1, 2, 4, 0][tag & 3]!;
  return sig[off]! === 3 ? sig[off + 15]! : sig[off + 2]!;
}

/** A detached binary OpenPGP signature (SHA-256) of the header blob. */

/** Room left in the signature header (RPMSIGTAG_RESERVEDSPACE, zeros), as rpmbuild leaves it. */
const RESERVED_SPACE = 4096;

/** The signature header (padded to 8 bytes) with `reserved` bytes of RESERVEDSPACE. */
function signatureHeader(tags: Map<number, Value>, reserved: number): Buffer {
  const all = new Map(tags);
  if (reserved > 0) all.set(SIG.RESERVEDSPACE, bin(Buffer.alloc(reserved)));
  const h = buildHeader(all, SIG.HEADERSIGNATURES);
  const pad = (8 - (h.length % 8)) % 8;
  return pad ? Buffer.concat([h, Buffer.alloc(pad)]) : h;
}

/** The unsigned signature tags with placeholder values of their final sizes (32-bit sizes). */
function placeholderSignature(): Map<number, Value> {
  return new Map<number, Value>([
    [SIG.SHA1, str('0'.repeat(40))],
    [SIG.SHA256, str('0'.repeat(64))],
    [SIG.SIZE, int32([0])],
    [SIG.MD5, bin(Buffer.alloc(16))],
    [SIG.PAYLOADSIZE, int32([0])],
  ]);
}

/** hex digest of `prefix` followed by `length` bytes of an open file from `start` */
function digestRange(fd: number, start: number, length: number, algo: string, prefix?: Buffer): string {
  const h = createHash(algo);
  if (prefix) h.update(prefix);
  const buf = Buffer.allocUnsafe(Math.min(length, 1 << 20) || 1);
  for (let off = 0; off < length; ) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, length - off), start + off);
    if (n === 0) throw new KilnError(`short read at ${start + off}`);
    h.update(buf.subarray(0, n));
    off += n;
  }
  return h.digest('hex');
}


/**
 * The main header. Its size does not depend on the digests (fixed-length hex) nor on the ELF
 * colours (one int32 per file), so it can be sized with placeholders before the payload exists.
 */
function mainHeader(spec: RpmSpec, files: ManifestEntry[], sde: number, comp: string, level: number, digests: Map<string, string>, colors: Map<string, number>, payloadDigest: string, cpioDigestHex: string): Buffer {
  // ---- main header
  const tags = new Map<number, Value>();
  const evr = `${spec.epoch !== undefined ? `${spec.epoch}:` : ''}${spec.version}-${spec.release}`;
  tags.set(TAG.HEADERI18NTABLE, strArr(['C']));
  tags.set(TAG.NAME, str(spec.name));
  tags.set(TAG.VERSION, str(spec.version));
  tags.set(TAG.RELEASE, str(spec.release));
  if (spec.epoch !== undefined) tags.set(TAG.EPOCH, int32([spec.epoch]));
  tags.set(TAG.SUMMARY, i18n(spec.summary.trim()));
  tags.set(TAG.DESCRIPTION, i18n((spec.description || spec.summary).replace(/\s+$/, '')));
  tags.set(TAG.BUILDTIME, int32([sde]));
  tags.set(TAG.BUILDHOST, str(spec.buildHost ?? 'kiln'));
  // installed size: regular files and symlink targets (directories count 0, as in rpmbuild 4.18)
  const installed = files.reduce((n, e) => n + (e.ghost ? 0 : e.type === 'file' ? e.size : e.type === 'symlink' ? Buffer.byteLength(e.target!) : 0), 0);
  if (installed > 0xffffffff) tags.set(TAG.LONGSIZE, int64([installed]));
  else tags.set(TAG.SIZE, int32([installed]));
  if (spec.vendor) tags.set(TAG.VENDOR, str(spec.vendor));
  tags.set(TAG.LICENSE, str(spec.license));
  if (spec.packager) tags.set(TAG.PACKAGER, str(spec.packager));
  tags.set(TAG.GROUP, i18n(spec.group ?? 'Unspecified'));
  if (spec.url) tags.set(TAG.URL, str(spec.url));
  tags.set(TAG.OS, str('linux'));
  tags.set(TAG.ARCH, str(spec.arch));
  tags.set(TAG.SOURCERPM, str(spec.sourceRpm ?? `${spec.name}-${spec.version}-${spec.release}.src.rpm`));
  tags.set(TAG.RPMVERSION, str('4.18.0'));
  tags.set(TAG.PAYLOADFORMAT, str('cpio'));
  tags.set(TAG.PAYLOADCOMPRESSOR, str(comp));
  tags.set(TAG.PAYLOADFLAGS, str(String(level)));
  tags.set(TAG.PLATFORM, str(`${spec.arch}-pc-linux`));
  tags.set(TAG.FILEDIGESTALGO, int32([PGPHASHALGO_SHA256]));
  tags.set(TAG.ENCODING, str('utf-8'));
  tags.set(TAG.PAYLOADDIGEST, strArr([payloadDigest]));
  tags.set(TAG.PAYLOADDIGESTALGO, int32([PGPHASHALGO_SHA256]));
  tags.set(TAG.PAYLOADDIGESTALT, strArr([cpioDigestHex]));

  // scriptlets: body, interpreter, and the interpreter as a requirement (rpmbuild's
  // Requires(pre): /bin/sh etc.); <lua> needs rpm's built-in Lua instead
  const requires: Dep[] = (spec.requires ?? []).map(parseDep);
  const rpmlib = (n: string, v: string) => requires.push({ name: `rpmlib(${n})`, flags: SENSE.RPMLIB | SENSE.LESS | SENSE.EQUAL, version: v });
  const scripts = spec.scripts ?? {};
  const scriptTags: Array<[keyof NonNullable<RpmSpec['scripts']>, number, number, number]> = [
    ['pre', TAG.PREIN, TAG.PREINPROG, SENSE.SCRIPT_PRE],
    ['post', TAG.POSTIN, TAG.POSTINPROG, SENSE.SCRIPT_POST],
    ['preun', TAG.PREUN, TAG.PREUNPROG, SENSE.SCRIPT_PREUN],
    ['postun', TAG.POSTUN, TAG.POSTUNPROG, SENSE.SCRIPT_POSTUN],
    ['pretrans', TAG.PRETRANS, TAG.PRETRANSPROG, SENSE.PRETRANS],
    ['posttrans', TAG.POSTTRANS, TAG.POSTTRANSPROG, SENSE.POSTTRANS],
  ];
  let lua = false;
  let interpArgs = false;
  for (const [k, bodyTag, progTag, sense] of scriptTags) {
    const s = scripts[k];
    if (!s) continue;
    const { prog, body } = scriptlet(s);
    tags.set(bodyTag, str(body));
    // a lone interpreter is a STRING, with arguments a STRING_ARRAY (as rpmbuild writes them)
    tags.set(progTag, prog.length === 1 ? str(prog[0]!) : strArr(prog));
    if (prog.length > 1) interpArgs = true;
    if (prog[0] === '<lua>') lua = true;
    else requires.push({ name: prog[0]!, flags: SENSE.INTERP | sense, version: '' });
  }
  rpmlib('CompressedFileNames', '3.0.4-1');
  rpmlib('FileDigests', '4.6.0-1');
  rpmlib('PayloadFilesHavePrefix', '4.0-1');
  if (comp === 'xz') rpmlib('PayloadIsXz', '5.2-1');
  if (comp === 'zstd') rpmlib('PayloadIsZstd', '5.4.18-1');
  if (lua) rpmlib('BuiltinLuaScripts', '4.2.2-1');
  if (interpArgs) rpmlib('ScriptletInterpreterArgs', '4.0.3-1');
  const depLists = ['requires', 'conflicts', 'recommends', 'suggests', 'supplements', 'enhances'] as const;
  if (depLists.some((k) => (spec[k] ?? []).some((d) => d.trim().startsWith('(')))) rpmlib('RichDependencies', '4.12.0-1');
  const provides = [...(spec.provides ?? []).map(parseDep), { name: spec.name, flags: SENSE.EQUAL, version: evr }];
  depTags(tags, uniqDeps(requires), TAG.REQUIRENAME, TAG.REQUIREVERSION, TAG.REQUIREFLAGS);
  depTags(tags, uniqDeps(provides), TAG.PROVIDENAME, TAG.PROVIDEVERSION, TAG.PROVIDEFLAGS);
  depTags(tags, uniqDeps((spec.conflicts ?? []).map(parseDep)), TAG.CONFLICTNAME, TAG.CONFLICTVERSION, TAG.CONFLICTFLAGS);
  depTags(tags, uniqDeps((spec.obsoletes ?? []).map(parseDep)), TAG.OBSOLETENAME, TAG.OBSOLETEVERSION, TAG.OBSOLETEFLAGS);
  depTags(tags, uniqDeps((spec.recommends ?? []).map(parseDep)), TAG.RECOMMENDNAME, TAG.RECOMMENDVERSION, TAG.RECOMMENDFLAGS);
  depTags(tags, uniqDeps((spec.suggests ?? []).map(parseDep)), TAG.SUGGESTNAME, TAG.SUGGESTVERSION, TAG.SUGGESTFLAGS);
  depTags(tags, uniqDeps((spec.supplements ?? []).map(parseDep)), TAG.SUPPLEMENTNAME, TAG.SUPPLEMENTVERSION, TAG.SUPPLEMENTFLAGS);
  depTags(tags, uniqDeps((spec.enhances ?? []).map(parseDep)), TAG.ENHANCENAME, TAG.ENHANCEVERSION, TAG.ENHANCEFLAGS);

  // changelog, newest first as rpm keeps it (stable for equal times)
  const cl = (spec.changelog ?? []).map((c, i) => ({ c, i })).sort((a, b) => b.c.time - a.c.time || a.i - b.i).map((x) => x.c);
  if (cl.length) {
    tags.set(TAG.CHANGELOGTIME, int32(cl.map((c) => c.time)));
    tags.set(TAG.CHANGELOGNAME, strArr(cl.map((c) => c.author.trim())));
    tags.set(TAG.CHANGELOGTEXT, strArr(cl.map((c) => c.text.replace(/\s+$/, ''))));
  }

  // files
  if (files.length) {
    const dirs: string[] = [];
    const dirIndex = new Map<string, number>();
    const dirIndexes: number[] = [];
    const basenames: string[] = [];
    for (const e of files) {
      const cut = e.path.lastIndexOf('/');
      const d = e.path.slice(0, cut + 1);
      if (!dirIndex.has(d)) {
        dirIndex.set(d, dirs.length);
        dirs.push(d);
      }
      dirIndexes.push(dirIndex.get(d)!);
      basenames.push(e.path.slice(cut + 1));
    }
    // files in the documentation trees are %doc, as rpmbuild marks them
    const isDoc = (e: ManifestEntry) => e.doc || (e.type !== 'dir' && /^\/usr\/share\/(doc|man|info)\//.test(e.path) && !e.license);
    const classes = ['', 'directory', 'ELF 32-bit', 'ELF 64-bit'];
    tags.set(TAG.FILESIZES, int32(files.map((e) => (e.ghost || e.type === 'dir' ? 0 : e.type === 'file' ? e.size : Buffer.byteLength(e.target!)))));
    tags.set(TAG.FILEMODES, int16(files.map((e) => e.mode)));
    tags.set(TAG.FILERDEVS, int16(files.map(() => 0)));
    tags.set(TAG.FILEMTIMES, int32(files.map((e) => e.mtime)));
    tags.set(TAG.FILEDIGESTS, strArr(files.map((e) => digests.get(e.path) ?? '')));
    tags.set(TAG.FILELINKTOS, strArr(files.map((e) => (e.type === 'symlink' ? e.target! : ''))));
    tags.set(TAG.FILEFLAGS, int32(files.map((e) => (e.conffile ? FILE.CONFIG : 0) | (e.noreplace ? FILE.NOREPLACE : 0) | (e.ghost ? FILE.GHOST : 0) | (isDoc(e) ? FILE.DOC : 0) | (e.license ? FILE.LICENSE : 0))));
    tags.set(TAG.FILEUSERNAME, strArr(files.map((e) => e.user)));
    tags.set(TAG.FILEGROUPNAME, strArr(files.map((e) => e.group)));
    // rpm -V checks everything, but a %ghost's digest, size, link target and mtime (as rpmbuild)
    tags.set(TAG.FILEVERIFYFLAGS, int32(files.map((e) => (e.ghost ? ~(VERIFY.DIGEST | VERIFY.FILESIZE | VERIFY.LINKTO | VERIFY.MTIME) : 0xffffffff))));
    tags.set(TAG.FILEDEVICES, int32(files.map(() => 1)));
    tags.set(TAG.FILEINODES, int32(files.map((_, i) => i + 1)));
    tags.set(TAG.FILELANGS, strArr(files.map(() => '')));
    tags.set(TAG.FILECOLORS, int32(files.map((e) => colors.get(e.path) ?? 0)));
    tags.set(TAG.FILECLASS, int32(files.map((e) => (e.type === 'dir' ? 1 : colors.has(e.path) ? 1 + colors.get(e.path)! : 0))));
    tags.set(TAG.CLASSDICT, strArr(classes));
    tags.set(TAG.DIRINDEXES, int32(dirIndexes));
    tags.set(TAG.BASENAMES, strArr(basenames));
    tags.set(TAG.DIRNAMES, strArr(dirs));
  }
  return buildHeader(tags, TAG.HEADERIMMUTABLE);
}

// ---- the writer ---------------------------------------------------------------------------------

/** `opts.threads`: compressor threads (a build passes its part's share of -j; default: the cores). */
export async function writeRpm(spec: RpmSpec, outPath: string, opts: { threads?: number } = {}): Promise<RpmResult> {
  validate(spec);
  // a parameter (default 0): the engine reads the environment, this module never does
  const sde = spec.sourceDateEpoch ?? 0;
  if (!Number.isInteger(sde) || sde < 0) throw new KilnError(`${spec.name}: invalid sourceDateEpoch '${sde}'`);
  let all: ManifestEntry[];
  try {
    all = buildManifest(
      spec.files.map((f) => (f.config && !f.conffile ? { ...f, conffile: true } : f)),
      sde,
    );
  } catch (e) {
    throw new KilnError(`${spec.name}: ${(e as Error).message}`);
  }
  try {
    if (!statSync(dirname(outPath)).isDirectory()) throw new Error();
  } catch {
    throw new KilnError(`${spec.name}: output directory ${dirname(outPath)} does not exist`);
  }
  const files = all.filter((e) => !e.implied);
  const comp = spec.compression ?? 'xz';
  const level = comp === 'gzip' ? 9 : comp === 'xz' ? 6 : 19;
  const tmpBase = tmpSibling(outPath);
  const outTmp = `${tmpBase}.rpm`;
  let fd: number | undefined;
  try {
    // ---- layout: lead, signature header and main header have sizes known before the payload
    // (digests are fixed-length hex, the signature header's RESERVEDSPACE absorbs the rest), so
    // the compressor writes the payload straight into the package after room for them
    const digests = new Map<string, string>();
    const colors = new Map<string, number>();
    const headerOf = (d: Map<string, string>, payloadDigest: string, cpioDigestHex: string) => mainHeader(spec, files, sde, comp, level, d, colors, payloadDigest, cpioDigestHex);
    const DUMMY = '0'.repeat(64);
    const headerSize = headerOf(new Map(files.filter((e) => e.type === 'file' && !e.ghost).map((e) => [e.path, DUMMY])), DUMMY, DUMMY).length;
    const sigHeaderSize = signatureHeader(placeholderSignature(), RESERVED_SPACE).length;
    const payloadStart = 96 + sigHeaderSize + headerSize;
    fd = openSync(outTmp, 'wx+', 0o644);
    writeAll(fd, Buffer.alloc(payloadStart)); // filled in at the end

    // ---- payload: cpio -> compressor -> the package; file digests and the cpio digest on the way
    const cpioDigest = createHash('sha256');
    const payloadSha = createHash('sha256');
    const cc = compressToFile(comp, { fd }, { level, threads: opts.threads, onOutput: (b) => payloadSha.update(b) });
    const cpio = new CpioWriter(cc.input, (b) => cpioDigest.update(b), { recycle: true });
    const writing = (async () => {
      let ino = 0;
      for (const e of files) {
        ino++; // ghosts keep their inode number, as in rpmbuild
        if (e.ghost) continue;
        const h = { name: '.' + e.path, ino, mode: e.mode, uid: 0, gid: 0, nlink: 1, mtime: e.mtime, size: e.type === 'file' ? e.size : e.type === 'symlink' ? Buffer.byteLength(e.target!) : 0 };
        if (e.type === 'file') {
          const d = createHash('sha256');
          let first = true;
          await cpio.add(h, e.content ?? e.source, (c) => {
            if (first && c.length >= 5 && c[0] === 0x7f && c.toString('latin1', 1, 4) === 'ELF') colors.set(e.path, c[4] === 2 ? 2 : 1);
            first = false;
            d.update(c);
          });
          digests.set(e.path, d.digest('hex'));
        } else if (e.type === 'symlink') await cpio.add(h, Buffer.from(e.target!));
        else await cpio.add(h);
      }
      await cpio.finish();
    })();
    try {
      await Promise.all([writing, cc.done]);
    } catch (e) {
      cc.abort(); // the compressor stops
      await Promise.allSettled([writing, cc.done]);
      throw e instanceof KilnError ? new KilnError(`${spec.name}: ${e.message}`) : e;
    }
    const archiveSize = cpio.bytesWritten;
    const payloadBytes = fstatSync(fd).size - payloadStart;
    const payloadDigest = payloadSha.digest('hex');

    const header = headerOf(digests, payloadDigest, cpioDigest.digest('hex'));
    if (header.length !== headerSize) throw new KilnError(`${spec.name}: internal error: header size ${header.length}, ${headerSize} reserved`);

    // ---- signature header
    const sig = new Map<number, Value>();
    if (spec.signingKey) {
      const signer = await Signer.open(spec.signingKey, sde);
      let s: Buffer;
      try {
        await signer.detachSignParts([header], `${tmpBase}.hdr.sig`, false, 'SHA256');
        s = readFileSync(`${tmpBase}.hdr.sig`);
      } finally {
        await signer.close();
        rmSync(`${tmpBase}.hdr.sig`, { force: true });
      }
      const algo = sigPubkeyAlgo(s);
      sig.set(algo >= 1 && algo <= 3 ? SIG.RSA : SIG.DSA, bin(s));
    }
    sig.set(SIG.SHA1, str(createHash('sha1').update(header).digest('hex')));
    sig.set(SIG.SHA256, str(createHash('sha256').update(header).digest('hex')));
    const signedSize = header.length + payloadBytes;
    if (signedSize > 0xffffffff) sig.set(SIG.LONGSIZE, int64([signedSize]));
    else sig.set(SIG.SIZE, int32([signedSize]));
    // MD5 over header and payload: rpm 4.18 still checks it, older rpms rely on it
    sig.set(SIG.MD5, bin(Buffer.from(digestRange(fd, payloadStart, payloadBytes, 'md5', header), 'hex')));
    if (archiveSize > 0xffffffff) sig.set(SIG.LONGARCHIVESIZE, int64([archiveSize]));
    else sig.set(SIG.PAYLOADSIZE, int32([archiveSize]));
    // what the signature and the 64-bit sizes take is taken from the reserved space (as rpmsign
    // does when it signs in place), so the header keeps the size the payload was placed after
    const grow = buildHeader(sig, SIG.HEADERSIGNATURES).length - buildHeader(placeholderSignature(), SIG.HEADERSIGNATURES).length;
    if (grow >= RESERVED_SPACE) throw new KilnError(`${spec.name}: the signature (${grow} bytes) does not fit the ${RESERVED_SPACE} bytes reserved for it`);
    const sigHeader = signatureHeader(sig, RESERVED_SPACE - grow);
    if (sigHeader.length !== sigHeaderSize) throw new KilnError(`${spec.name}: internal error: signature header size ${sigHeader.length}, ${sigHeaderSize} reserved`);

    // ---- lead (obsolete, but still read for its magic)
    const lead = Buffer.alloc(96);
    lead.write('edabeedb', 0, 'hex');
    lead[4] = 3; // major
    lead[5] = 0; // minor
    lead.writeUInt16BE(0, 6); // binary package
    lead.writeUInt16BE(spec.arch === 'noarch' || /^(x86_64|i[3-6]86)$/.test(spec.arch) ? 1 : 0, 8);
    Buffer.from(`${spec.name}-${spec.epoch !== undefined ? `${spec.epoch}:` : ''}${spec.version}-${spec.release}`).subarray(0, 65).copy(lead, 10);
    lead.writeUInt16BE(1, 76); // Linux
    lead.writeUInt16BE(5, 78); // header-style signature

    // ---- the front of the package
    writeAll(fd, Buffer.concat([lead, sigHeader, header]), 0);
    const size = payloadStart + payloadBytes;
    if (fstatSync(fd).size !== size) throw new KilnError(`${outTmp}: short write`);
    closeSync(fd);
    fd = undefined;
    await rename(outTmp, outPath);
    return { path: outPath, size };
  } finally {
    if (fd !== undefined) closeSync(fd);
    rmSync(outTmp, { force: true });
  }
}

/** @internal exposed for unit tests */
export const _internal = { buildHeader, parseDep, scriptlet, sigPubkeyAlgo };
