/**
 * Native .rpm writer (rpm v4 package format, as rpm 4.18 reads it).
 *
 *   writeRpm(spec, outPath) -> { path, size, sha256 }
 *
 * Lead, signature header (header SHA256/SHA1, MD5 over header+payload, sizes), main header
 * (immutable region; name/version/release/epoch, dependencies with flags and the rpmlib()
 * features used, weak dependencies, scriptlets with interpreters, changelog, file metadata with
 * SHA-256 file digests and %config/%config(noreplace)/%dir/%ghost/%doc/%license flags, payload
 * digest), then a cpio newc payload compressed with gzip, xz or zstd. Contents stream from disk
 * to a temporary payload file (flat memory), the package is assembled next to outPath and renamed
 * into place; nothing is left on error. BUILDTIME and mtimes come from SOURCE_DATE_EPOCH, files are
 * sorted: the same spec gives the same bytes.
 *
 * Unlike .deb, only the entries listed (not their implied parent directories such as /usr/bin)
 * are owned by the package, as rpmbuild's %files does.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Signer } from '../lib/gpg.js';
import { rename } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { KilnError } from '../lib/errors.js';
import { tmpSibling } from '../lib/fsutil.js';
import { compressToFile, type Compression } from './compress.js';
import { CpioWriter } from './cpio.js';
import { buildManifest, type ManifestEntry, type PkgFile } from './files.js';
import { validateRpmName, validateRpmVersion } from './version.js';

export interface RpmScript {
  body: string;
  /** interpreter, default /bin/sh */
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
  /** 'name', 'name >= 1.0', or rich '(a or b)' */
  requires?: string[];
  provides?: string[];
  conflicts?: string[];
  obsoletes?: string[];
  recommends?: string[];
  suggests?: string[];
  supplements?: string[];
  enhances?: string[];
  files: PkgFile[];
  scripts?: { pre?: RpmScript; post?: RpmScript; preun?: RpmScript; postun?: RpmScript; pretrans?: RpmScript; posttrans?: RpmScript };
  changelog?: RpmChangelogEntry[];
  compression?: Exclude<Compression, 'none'>;
  sourceDateEpoch?: number;
  buildHost?: string;
  sourceRpm?: string;
  /** OpenPGP header signature (RPMSIGTAG_RSA) made with this key */
  signingKey?: { keyFile: string; passphraseFile?: string };
}

export interface RpmResult {
  path: string;
  size: number;
  sha256: string;
}

/** A detached binary OpenPGP signature (SHA-256) of the header blob, for RPMSIGTAG_RSA. */
async function signHeader(header: Buffer, key: { keyFile: string; passphraseFile?: string }, sde: number, tmpBase: string): Promise<Buffer> {
  const hdrFile = `${tmpBase}.hdr`;
  const sigFile = `${tmpBase}.hdr.sig`;
  writeFileSync(hdrFile, header);
  const signer = await Signer.open(key, sde);
  try {
    await signer.detachSign(hdrFile, sigFile, false, 'SHA256');
    return readFileSync(sigFile);
  } finally {
    await signer.close();
    rmSync(hdrFile, { force: true });
    rmSync(sigFile, { force: true });
  }
}

export function rpmFileName(spec: Pick<RpmSpec, 'name' | 'version' | 'release' | 'arch'>): string {
  return `${spec.name}-${spec.version}-${spec.release}.${spec.arch}.rpm`;
}

// ---- header construction --------------------------------------------------------------

const T = { CHAR: 1, INT8: 2, INT16: 3, INT32: 4, INT64: 5, STRING: 6, BIN: 7, STRING_ARRAY: 8, I18NSTRING: 9 } as const;
type Value = { type: number; data: Buffer; count: number };

const str = (s: string): Value => ({ type: T.STRING, data: Buffer.from(s + '\0'), count: 1 });
const i18n = (s: string): Value => ({ type: T.I18NSTRING, data: Buffer.from(s + '\0'), count: 1 });
const strArr = (a: string[]): Value => ({ type: T.STRING_ARRAY, data: Buffer.concat(a.map((s) => Buffer.from(s + '\0'))), count: a.length });
const bin = (b: Buffer): Value => ({ type: T.BIN, data: b, count: b.length });
function int32(a: number[]): Value {
  const b = Buffer.alloc(4 * a.length);
  a.forEach((v, i) => b.writeInt32BE(v | 0, i * 4));
  return { type: T.INT32, data: b, count: a.length };
}
function int16(a: number[]): Value {
  const b = Buffer.alloc(2 * a.length);
  a.forEach((v, i) => b.writeUInt16BE(v & 0xffff, i * 2));
  return { type: T.INT16, data: b, count: a.length };
}
const ALIGN: Record<number, number> = { [T.INT16]: 2, [T.INT32]: 4, [T.INT64]: 8 };

/** Serialise a header (with magic) whose entries sit in one immutable region `regionTag`. */
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
  // region trailer: an entry pointing back over the whole index
  const trailer = entry(regionTag, T.BIN, -(il * 16), 16);
  const regionEntry = entry(regionTag, T.BIN, dl, 16);
  data.push(trailer);
  dl += 16;
  const head = Buffer.alloc(16);
  head.write('8eade801', 0, 'hex');
  head.writeUInt32BE(il, 8);
  head.writeUInt32BE(dl, 12);
  return Buffer.concat([head, regionEntry, ...index, ...data]);
}

// ---- dependencies ------------------------------------------------------------------------

const SENSE = { LESS: 2, GREATER: 4, EQUAL: 8, INTERP: 256, SCRIPT_PRE: 512, SCRIPT_POST: 1024, SCRIPT_PREUN: 2048, SCRIPT_POSTUN: 4096, PRETRANS: 128, POSTTRANS: 32, RPMLIB: 1 << 24 } as const;

interface Dep {
  name: string;
  flags: number;
  version: string;
}

export function parseDep(s: string): Dep {
  const t = s.trim();
  if (t.startsWith('(')) return { name: t, flags: 0, version: '' }; // rich dependency, kept verbatim
  const m = /^(\S+)(?:\s*(<=|>=|=|==|<|>)\s*(\S+))?$/.exec(t);
  if (!m) throw new KilnError(`invalid rpm dependency '${s}' (expected 'name', 'name OP version' or a rich '(...)')`);
  const op = m[2] ?? '';
  const flags = (op.includes('<') ? SENSE.LESS : 0) | (op.includes('>') ? SENSE.GREATER : 0) | (op.includes('=') ? SENSE.EQUAL : 0);
  return { name: m[1]!, flags, version: m[3] ?? '' };
}

function depTags(tags: Map<number, Value>, deps: Dep[], nameTag: number, versionTag: number, flagsTag: number): void {
  if (!deps.length) return;
  tags.set(nameTag, strArr(deps.map((d) => d.name)));
  tags.set(versionTag, strArr(deps.map((d) => d.version)));
  tags.set(flagsTag, int32(deps.map((d) => d.flags)));
}

function validate(spec: RpmSpec): void {
  const e = validateRpmName(spec.name) ?? validateRpmVersion(spec.version) ?? validateRpmVersion(spec.release, 'release');
  if (e) throw new KilnError(`${spec.name || '(unnamed package)'}: ${e}`);
  if (!/^[A-Za-z0-9_]+$/.test(spec.arch)) throw new KilnError(`${spec.name}: invalid rpm architecture '${spec.arch}'`);
  if (!spec.summary?.trim() || spec.summary.includes('\n')) throw new KilnError(`${spec.name}: a one-line summary is required`);
  if (!spec.license?.trim()) throw new KilnError(`${spec.name}: a license is required`);
  if (spec.epoch !== undefined && (!Number.isInteger(spec.epoch) || spec.epoch < 0)) throw new KilnError(`${spec.name}: invalid epoch ${spec.epoch}`);
}

const FILE = { CONFIG: 1, DOC: 2, NOREPLACE: 16, GHOST: 64, LICENSE: 128 } as const;

export async function writeRpm(spec: RpmSpec, outPath: string): Promise<RpmResult> {
  validate(spec);
  const sde = spec.sourceDateEpoch ?? Number(process.env.SOURCE_DATE_EPOCH ?? 0);
  let all: ManifestEntry[];
  try {
    all = buildManifest(spec.files, sde);
  } catch (e) {
    throw new KilnError(`${spec.name}: ${(e as Error).message}`);
  }
  const files = all.filter((e) => !e.implied);
  const comp = spec.compression ?? 'xz';
  const tmpBase = tmpSibling(outPath);
  const payloadFile = `${tmpBase}.payload`;
  const outTmp = `${tmpBase}.rpm`;
  try {
    // payload: cpio, compressed; file digests on the way
    const digests = new Map<string, string>();
    const cc = compressToFile(comp, payloadFile, comp === 'gzip' ? 9 : comp === 'xz' ? 6 : 19);
    const cpio = new CpioWriter(cc.input);
    const writing = (async () => {
      let ino = 0;
      for (const e of files) {
        ino++;
        if (e.ghost) continue;
        const h = { name: '.' + e.path, ino, mode: e.mode, uid: 0, gid: 0, nlink: 1, mtime: e.mtime, size: e.type === 'file' ? e.size : e.type === 'symlink' ? Buffer.byteLength(e.target!) : 0 };
        if (e.type === 'file') {
          const d = createHash('sha256');
          await cpio.add(h, e.content ?? e.source, (c) => d.update(c));
          digests.set(e.path, d.digest('hex'));
        } else if (e.type === 'symlink') await cpio.add(h, Buffer.from(e.target!));
        else await cpio.add(h);
      }
      await cpio.finish();
    })();
    await Promise.all([writing, cc.done]);
    const payloadSize = cpio.bytesWritten;
    const payloadDigest = createHash('sha256');
    for await (const c of createReadStream(payloadFile)) payloadDigest.update(c as Buffer);

    // main header
    const tags = new Map<number, Value>();
    const evr = `${spec.epoch !== undefined ? `${spec.epoch}:` : ''}${spec.version}-${spec.release}`;
    tags.set(100, strArr(['C']));
    tags.set(1000, str(spec.name));
    tags.set(1001, str(spec.version));
    tags.set(1002, str(spec.release));
    if (spec.epoch !== undefined) tags.set(1003, int32([spec.epoch]));
    tags.set(1004, i18n(spec.summary.trim()));
    tags.set(1005, i18n((spec.description || spec.summary).replace(/\s+$/, '')));
    tags.set(1006, int32([sde]));
    tags.set(1007, str(spec.buildHost ?? 'kiln'));
    tags.set(1009, int32([files.reduce((n, e) => n + (e.type === 'file' && !e.ghost ? e.size : 0), 0)]));
    if (spec.vendor) tags.set(1011, str(spec.vendor));
    tags.set(1014, str(spec.license));
    if (spec.packager) tags.set(1015, str(spec.packager));
    tags.set(1016, i18n(spec.group ?? 'Unspecified'));
    if (spec.url) tags.set(1020, str(spec.url));
    tags.set(1021, str('linux'));
    tags.set(1022, str(spec.arch));
    tags.set(1044, str(spec.sourceRpm ?? `${spec.name}-${spec.version}-${spec.release}.src.rpm`));
    tags.set(1064, str('4.18.0'));
    tags.set(1124, str('cpio'));
    tags.set(1125, str(comp));
    tags.set(1126, str(comp === 'gzip' ? '9' : comp === 'xz' ? '6' : '19'));
    tags.set(1132, str(`${spec.arch}-pc-linux`));
    tags.set(5011, int32([8])); // file digests: SHA-256
    tags.set(5092, strArr([payloadDigest.digest('hex')]));
    tags.set(5093, int32([8]));
    tags.set(5062, str('utf-8'));

    // scriptlets
    const scripts = spec.scripts ?? {};
    const scriptTags: Array<[keyof NonNullable<RpmSpec['scripts']>, number, number, number]> = [
      ['pre', 1023, 1085, SENSE.SCRIPT_PRE],
      ['post', 1024, 1086, SENSE.SCRIPT_POST],
      ['preun', 1025, 1087, SENSE.SCRIPT_PREUN],
      ['postun', 1026, 1088, SENSE.SCRIPT_POSTUN],
      ['pretrans', 1151, 1153, SENSE.PRETRANS],
      ['posttrans', 1152, 1154, SENSE.POSTTRANS],
    ];
    const requires: Dep[] = (spec.requires ?? []).map(parseDep);
    for (const [k, bodyTag, progTag, sense] of scriptTags) {
      const s = scripts[k];
      if (!s) continue;
      const prog = s.prog ?? '/bin/sh';
      tags.set(bodyTag, str(s.body.replace(/^#!.*\n/, '')));
      tags.set(progTag, strArr([prog]));
      requires.push({ name: prog, flags: SENSE.INTERP | sense, version: '' });
    }
    const rpmlib = (n: string, v: string) => requires.push({ name: `rpmlib(${n})`, flags: SENSE.RPMLIB | SENSE.LESS | SENSE.EQUAL, version: v });
    rpmlib('CompressedFileNames', '3.0.4-1');
    rpmlib('FileDigests', '4.6.0-1');
    rpmlib('PayloadFilesHavePrefix', '4.0-1');
    if (comp === 'xz') rpmlib('PayloadIsXz', '5.2-1');
    if (comp === 'zstd') rpmlib('PayloadIsZstd', '5.4.18-1');
    const allDeps = [...requires, ...(spec.recommends ?? []), ...(spec.suggests ?? []), ...(spec.conflicts ?? [])];
    if (allDeps.some((d) => (typeof d === 'string' ? d : d.name).trim().startsWith('('))) rpmlib('RichDependencies', '4.12.0-1');
    // sorted and unique, as rpmbuild records them
    const uniq = (ds: Dep[]) => {
      const m = new Map<string, Dep>();
      for (const d of ds) m.set(`${d.name}\0${d.flags}\0${d.version}`, d);
      return [...m.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.flags - b.flags));
    };
    const provides = uniq([...(spec.provides ?? []).map(parseDep), { name: spec.name, flags: SENSE.EQUAL, version: evr }]);
    depTags(tags, uniq(requires), 1049, 1050, 1048);
    depTags(tags, provides, 1047, 1113, 1112);
    depTags(tags, uniq((spec.conflicts ?? []).map(parseDep)), 1054, 1055, 1053);
    depTags(tags, uniq((spec.obsoletes ?? []).map(parseDep)), 1090, 1115, 1114);
    depTags(tags, uniq((spec.recommends ?? []).map(parseDep)), 5046, 5047, 5048);
    depTags(tags, uniq((spec.suggests ?? []).map(parseDep)), 5049, 5050, 5051);
    depTags(tags, uniq((spec.supplements ?? []).map(parseDep)), 5052, 5053, 5054);
    depTags(tags, uniq((spec.enhances ?? []).map(parseDep)), 5055, 5056, 5057);

    // changelog (newest first, as rpm keeps it)
    const cl = [...(spec.changelog ?? [])].sort((a, b) => b.time - a.time);
    if (cl.length) {
      tags.set(1080, int32(cl.map((c) => c.time)));
      tags.set(1081, strArr(cl.map((c) => c.author)));
      tags.set(1082, strArr(cl.map((c) => c.text)));
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
      tags.set(1028, int32(files.map((e) => (e.type === 'file' ? e.size : e.type === 'dir' ? 4096 : Buffer.byteLength(e.target!)))));
      tags.set(1030, int16(files.map((e) => e.mode)));
      tags.set(1033, int16(files.map(() => 0)));
      tags.set(1034, int32(files.map((e) => e.mtime)));
      tags.set(1035, strArr(files.map((e) => (e.type === 'file' ? (digests.get(e.path) ?? (e.ghost ? '' : '')) : ''))));
      tags.set(1036, strArr(files.map((e) => (e.type === 'symlink' ? e.target! : ''))));
      // files in the documentation trees are %doc, as rpmbuild marks them
      const isDoc = (e: ManifestEntry) => e.doc || (e.type !== 'dir' && /^\/usr\/share\/(doc|man|info)\//.test(e.path) && !e.license);
      tags.set(1037, int32(files.map((e) => (e.conffile ? FILE.CONFIG : 0) | (e.noreplace ? FILE.NOREPLACE : 0) | (e.ghost ? FILE.GHOST : 0) | (isDoc(e) ? FILE.DOC : 0) | (e.license ? FILE.LICENSE : 0))));
      tags.set(1039, strArr(files.map((e) => e.user)));
      tags.set(1040, strArr(files.map((e) => e.group)));
      tags.set(1045, int32(files.map(() => -1)));
      tags.set(1095, int32(files.map(() => 1)));
      tags.set(1096, int32(files.map((_, i) => i + 1)));
      tags.set(1097, strArr(files.map(() => '')));
      tags.set(1116, int32(dirIndexes));
      tags.set(1117, strArr(basenames));
      tags.set(1118, strArr(dirs));
    }
    const header = buildHeader(tags, 63);

    // signature header
    const payloadBytes = statSync(payloadFile).size;
    const md5 = createHash('md5').update(header);
    for await (const c of createReadStream(payloadFile)) md5.update(c as Buffer);
    const sig = new Map<number, Value>();
    if (spec.signingKey) sig.set(268, bin(await signHeader(header, spec.signingKey, sde, tmpBase)));
    sig.set(269, str(createHash('sha1').update(header).digest('hex')));
    sig.set(273, str(createHash('sha256').update(header).digest('hex')));
    sig.set(1000, int32([header.length + payloadBytes]));
    sig.set(1004, bin(md5.digest()));
    sig.set(1007, int32([payloadSize]));
    let sigHeader = buildHeader(sig, 62);
    const sigPad = (8 - (sigHeader.length % 8)) % 8;
    if (sigPad) sigHeader = Buffer.concat([sigHeader, Buffer.alloc(sigPad)]);

    // lead
    const lead = Buffer.alloc(96);
    lead.write('edabeedb', 0, 'hex');
    lead[4] = 3;
    lead[5] = 0;
    lead.writeUInt16BE(0, 6); // binary
    lead.writeUInt16BE(spec.arch === 'noarch' || spec.arch === 'x86_64' || spec.arch === 'i686' ? 1 : 0, 8);
    Buffer.from(`${spec.name}-${spec.version}-${spec.release}`).subarray(0, 65).copy(lead, 10);
    lead.writeUInt16BE(1, 76); // Linux
    lead.writeUInt16BE(5, 78); // header-style signature

    const out = createWriteStream(outTmp);
    async function* gen() {
      yield lead;
      yield sigHeader;
      yield header;
      for await (const c of createReadStream(payloadFile, { highWaterMark: 1 << 20 })) yield c as Buffer;
    }
    await pipeline(gen, out);
    const sha = createHash('sha256');
    let size = 0;
    const fd = openSync(outTmp, 'r');
    try {
      const buf = Buffer.alloc(1 << 20);
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) {
        sha.update(buf.subarray(0, n));
        size += n;
      }
    } finally {
      closeSync(fd);
    }
    await rename(outTmp, outPath);
    return { path: outPath, size, sha256: sha.digest('hex') };
  } finally {
    for (const f of [payloadFile, outTmp]) rmSync(f, { force: true });
  }
}
