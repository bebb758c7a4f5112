/**
 * Native .deb writer (binary package format 2.0), checked against dpkg-deb 1.21.
 *
 *   import { writeDeb, debFileName } from './pkg/deb.js';
 *   const spec: DebSpec = { name: 'hello', version: '1:2.10-3', architecture: 'amd64',
 *     maintainer: 'A B <a@example.org>', description: 'synopsis\nextended text\n\nnext paragraph',
 *     depends: ['libc6 (>= 2.34)'], files: [{ path: '/usr/bin/hello', type: 'file', source: 'build/hello', mode: 0o755 }],
 *     scripts: { postinst: '#!/bin/sh\nset -e\n...' }, sourceDateEpoch: 1700000000 };
 *   const { path, size, installedSize } = await writeDeb(spec, join(out, debFileName(spec)));
 *   debFileName(spec)  // 'hello_2.10-3_amd64.deb' (no epoch, as the archive names files)
 *
 * Layout, as `dpkg-deb --build --root-owner-group` with SOURCE_DATE_EPOCH writes it:
 * - ar members `debian-binary` ("2.0\n"), `control.tar<ext>`, `data.tar<ext>`; member mtime =
 *   SOURCE_DATE_EPOCH, uid/gid 0, mode 100644.
 * - data.tar: GNU tar; `./` first, then directories and files depth-first with names sorted bytewise
 *   in each directory, then all symlinks (dpkg-deb defers them so that unpacking never follows one);
 *   parent directories are implied (0755 root:root); mtimes clamped to SOURCE_DATE_EPOCH; owner
 *   root:root (0/0) unless the entry sets uid/gid/user/group (dpkg maps names first, then ids; an id
 *   given without a name is written with an empty name); setuid/setgid/sticky kept; names and link
 *   targets over 100 bytes via GNU long-name entries. The uncompressed data.tar is byte-identical to
 *   dpkg-deb's for the same tree (test/deb.test.ts checks it), and so is the control.tar. With xz
 *   and none the whole .deb is byte-identical to dpkg-deb's; gzip members differ in the deflate
 *   stream (Node bundles Chromium's zlib, and kiln deflates 1 MiB blocks in parallel), zstd members
 *   in the frame parameters of the zstd CLI versus dpkg's libzstd.
 * - control.tar: `./`, then in bytewise order: conffiles, config, control, md5sums, postinst, postrm,
 *   preinst, prerm, templates, triggers (those that exist). Maintainer scripts 0755, the rest 0644.
 *   md5sums lists regular files except conffiles (as dh_md5sums does), paths without the leading '/'.
 * - Compression: `compression` for data.tar (default xz); control.tar uses `controlCompression`,
 *   default the same as data (dpkg-deb's uniform compression, so 'none' gives a plain control.tar).
 *   lintian (2.116) reports `malformed-deb-archive` for zstd members: prefer xz or gzip for Debian.
 * - Conffiles: files with `conffile: true`, plus every regular file below /etc unless
 *   `etcConffiles: false` (what debhelper's dh_installdeb does). A conffile must be a regular file.
 * - Installed-Size (KiB) as dpkg-gencontrol computes it on the package tree: 1 for the root
 *   directory, 1 per directory, ceil(size/1024) per file (0 for empty files) and per symlink (length
 *   of the target). (dpkg-gencontrol also counts DEBIAN/ when it already exists; we do not.)
 * - SOURCE_DATE_EPOCH: spec.sourceDateEpoch (a parameter: the environment is read by the engine only), else 0. Same spec → same bytes,
 *   whatever the directory, time, umask, source mtimes or number of cores (see compress.ts).
 *
 * Writing: control.tar precedes data.tar in the ar archive, and data.tar goes straight into the
 * package file `<outPath>.tmp-<pid>-…` (its ar size field patched in at the end): no temporary
 * copy of the payload. A compressed control.tar needs the md5sums first, so they are computed
 * beforehand on all cores (digest.ts); an uncompressed one has a size known in advance, so room is
 * left for it and the sums are taken while data.tar is written (every file read once). File
 * contents are read synchronously in bounded chunks (bytewriter.ts) and fed through tar into the
 * compressor. Memory stays flat for any payload size. Then the file is renamed onto outPath. On
 * any error the temporary files are removed, the compressors stopped, and outPath is left
 * untouched (no partial file). A file that changes between the md5 pass and the archive pass is
 * caught when its size changed (as the archive pass checks every size).
 *
 * Errors (KilnError, message starts with the package name): invalid name/version/architecture, empty
 * maintainer/description, invalid relation, bad control field, a path not absolute or with '..', a
 * duplicate path, a missing source file, a symlink without target, a conffile that is not a regular
 * file, an unknown/invalid maintainer script (must start with `#!`), invalid triggers.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, rmSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { KilnError } from '../lib/errors.js';
import { tmpSibling } from '../lib/fsutil.js';
import { Signer, type SigningKey } from '../lib/gpg.js';
import { AR_MAGIC, arHeader } from './ar.js';
import { writeAll } from './bytewriter.js';
import { compressToFile, EXT, isCompression, type Compression, type Compressor } from './compress.js';
import { formatParagraph, parseRelations } from './deb822.js';
import { buildManifest, sortBytewise, type ManifestEntry, type PkgFile } from './files.js';
import { digestFiles } from '../lib/digest.js';
import { TarWriter, type TarHeader } from './tar.js';
import { validateDebPackageName, validateDebVersion } from './version.js';

export type { PkgFile } from './files.js';
export type { Compression } from './compress.js';

export interface DebScripts {
  preinst?: string;
  postinst?: string;
  prerm?: string;
  postrm?: string;
  /** debconf config script */
  config?: string;
}

export interface DebSpec {
  name: string;
  /** [epoch:]upstream[-revision] */
  version: string;
  /** amd64, arm64, all, ... */
  architecture: string;
  /** 'Full Name <email>' */
  maintainer: string;
  /** first line: synopsis; further lines: extended description (blank line = paragraph break) */
  description: string;
  /** source package name, when it differs (may carry a version: 'src (1.0-1)') */
  source?: string;
  section?: string;
  priority?: string;
  homepage?: string;
  essential?: boolean;
  /** relationship fields: one entry per comma-separated item, e.g. 'libc6 (>= 2.34) | libc6-udeb' */
  depends?: string[];
  preDepends?: string[];
  recommends?: string[];
  suggests?: string[];
  enhances?: string[];
  breaks?: string[];
  conflicts?: string[];
  replaces?: string[];
  provides?: string[];
  /** further control fields (Multi-Arch, Built-Using, ...), written before Description in this order */
  extraFields?: Record<string, string> | Array<[string, string]>;
  files: PkgFile[];
  scripts?: DebScripts;
  /** content of DEBIAN/triggers */
  triggers?: string;
  /** content of DEBIAN/shlibs: 'LIBRARY SOVERSION DEPENDENCY' lines (deb-shlibs(5)) */
  shlibs?: string;
  /** debconf templates */
  templates?: string;
  /** regular files under /etc are conffiles (as debhelper does) unless false */
  etcConffiles?: boolean;
  /** data.tar compression, default xz */
  compression?: Compression;
  /** control.tar compression, default: the same as `compression` (dpkg-deb's uniform compression) */
  controlCompression?: Compression;
  /** compression level (default dpkg-deb's: xz 6, gzip 9, zstd 3) */
  compressionLevel?: number;
  /** the build's SOURCE_DATE_EPOCH (default 0); this module never reads the environment */
  sourceDateEpoch?: number;
  /**
   * Sign the package the way debsigs does: an ar member `_gpg<role>` (default role `origin`)
   * after data.tar, holding a binary detached OpenPGP signature over the concatenated contents of
   * debian-binary, control.tar.* and data.tar.*; checked by debsig-verify. The signature time is
   * SOURCE_DATE_EPOCH (or the key's creation time when later), so signing is reproducible.
   */
  signingKey?: SigningKey;
  signatureRole?: string;
}

export interface DebResult {
  path: string;
  /** bytes */
  size: number;
  /** the Installed-Size field (KiB) */
  installedSize: number;
}

/** name_version_arch.deb with the epoch dropped (what the Debian archive and dpkg-name use). */
export function debFileName(spec: Pick<DebSpec, 'name' | 'version' | 'architecture'>): string {
  return `${spec.name}_${spec.version.replace(/^\d+:/, '')}_${spec.architecture}.deb`;
}

const SCRIPTS = ['preinst', 'postinst', 'prerm', 'postrm', 'config'] as const;
const RELATIONS = [
  ['Pre-Depends', 'preDepends'],
  ['Depends', 'depends'],
  ['Recommends', 'recommends'],
  ['Suggests', 'suggests'],
  ['Enhances', 'enhances'],
  ['Breaks', 'breaks'],
  ['Conflicts', 'conflicts'],
  ['Replaces', 'replaces'],
  ['Provides', 'provides'],
] as const;
const TRIGGER_DIRECTIVES = new Set(['interest', 'interest-await', 'interest-noawait', 'activate', 'activate-await', 'activate-noawait']);

function fail(spec: Pick<DebSpec, 'name'>, msg: string): never {
  throw new KilnError(`${spec.name || '(unnamed package)'}: ${msg}`);
}

function extraFieldList(spec: DebSpec): Array<[string, string]> {
  const x = spec.extraFields;
  if (!x) return [];
  return Array.isArray(x) ? x : Object.entries(x);
}

function oneLine(spec: DebSpec, what: string, v: unknown, required = false): void {
  if (v === undefined && !required) return;
  if (typeof v !== 'string' || !v.trim()) fail(spec, `${what} must be a non-empty string`);
  if (/[\n\r]/.test(v)) fail(spec, `${what} must be a single line: ${JSON.stringify(v)}`);
}

/** Check a spec without writing anything; throws KilnError with a clear message. */
export function validateDebSpec(spec: DebSpec): void {
  if (!spec || typeof spec !== 'object') throw new KilnError('deb spec must be an object');
  const e = validateDebPackageName(String(spec.name ?? '')) ?? validateDebVersion(String(spec.version ?? ''));
  if (e) fail(spec, e);
  if (typeof spec.architecture !== 'string' || !/^[a-z0-9][a-z0-9-]*$/.test(spec.architecture)) fail(spec, `invalid architecture '${String(spec.architecture)}'`);
  oneLine(spec, 'maintainer', spec.maintainer, true);
  if (spec.signatureRole !== undefined && !/^[a-z]{1,12}$/.test(spec.signatureRole)) fail(spec, `invalid signature role '${spec.signatureRole}' (debsigs roles are lower-case words: origin, maint, archive)`);
  if (typeof spec.description !== 'string' || !spec.description.split('\n')[0]!.trim()) fail(spec, 'a description is required (first line: the synopsis)');
  spec.description.split('\n').forEach((l, i) => {
    // in the control file ' .' is an empty line; ' .other' is reserved (lintian: invalid control statement)
    if (i > 0 && /^ ?\.\S/.test(l)) fail(spec, `description line ${i + 1} starts with '.': ${JSON.stringify(l)} (reserved in control files)`);
    if (l.includes('\r')) fail(spec, `description line ${i + 1} contains a carriage return`);
  });
  for (const k of ['source', 'section', 'priority', 'homepage'] as const) oneLine(spec, k, spec[k]);
  for (const [field, key] of RELATIONS) {
    const list = spec[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) fail(spec, `${key} must be a list of relations`);
    for (const r of list) {
      if (typeof r !== 'string' || /[\n\r,]/.test(r) || !r.trim()) fail(spec, `${field}: invalid entry ${JSON.stringify(r)} (one relation per entry, alternatives with '|')`);
      try {
        parseRelations(r);
      } catch (err) {
        fail(spec, `${field}: ${(err as Error).message}`);
      }
    }
  }
  const seen = new Set(['package', 'source', 'version', 'architecture', 'essential', 'maintainer', 'installed-size', 'section', 'priority', 'homepage', 'description', ...RELATIONS.map(([f]) => f.toLowerCase())]);
  for (const [k, v] of extraFieldList(spec)) {
    if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(k)) fail(spec, `invalid control field name '${k}'`);
    if (seen.has(k.toLowerCase())) fail(spec, `control field ${k} is given twice (or is generated by kiln)`);
    seen.add(k.toLowerCase());
    if (typeof v !== 'string' || !v.trim() || /\n\s*\n/.test(v) || v.includes('\r')) fail(spec, `invalid value for control field ${k}: ${JSON.stringify(v)}`);
  }
  if (spec.scripts !== undefined && (typeof spec.scripts !== 'object' || spec.scripts === null)) fail(spec, 'scripts must be an object');
  for (const [name, s] of Object.entries(spec.scripts ?? {})) {
    if (s === undefined) continue;
    if (!(SCRIPTS as readonly string[]).includes(name)) fail(spec, `unknown maintainer script '${name}' (${SCRIPTS.join(', ')})`);
    if (typeof s !== 'string') fail(spec, `maintainer script ${name} must be a string`);
    const first = s.split('\n')[0]!;
    if (!/^#!\s*\/\S/.test(first) || first.includes('\r')) fail(spec, `maintainer script ${name} must start with an interpreter line such as '#!/bin/sh' (got ${JSON.stringify(first.slice(0, 40))})`);
    if (s.includes('\0')) fail(spec, `maintainer script ${name} contains a NUL byte`);
  }
  if (spec.triggers !== undefined) {
    if (typeof spec.triggers !== 'string') fail(spec, 'triggers must be a string');
    spec.triggers.split('\n').forEach((line, i) => {
      const l = line.replace(/#.*/, '').trim();
      if (!l) return;
      const [d, name, ...rest] = l.split(/\s+/);
      if (!TRIGGER_DIRECTIVES.has(d!) || !name || rest.length) fail(spec, `triggers line ${i + 1}: expected '<${[...TRIGGER_DIRECTIVES].join('|')}> <trigger-name>', got '${line}'`);
    });
  }
  if (spec.shlibs !== undefined) {
    const e = typeof spec.shlibs === 'string' ? shlibsError(spec.shlibs) : 'shlibs must be a string';
    if (e) fail(spec, e);
  }
  if (spec.templates !== undefined && typeof spec.templates !== 'string') fail(spec, 'templates must be a string');
  for (const k of ['compression', 'controlCompression'] as const) {
    const c = spec[k];
    if (c !== undefined && !isCompression(c)) fail(spec, `unknown ${k} '${String(c)}' (xz, gzip, zstd, none)`);
  }
  if (!Array.isArray(spec.files)) fail(spec, 'files must be a list');
  if (spec.sourceDateEpoch !== undefined && (!Number.isInteger(spec.sourceDateEpoch) || spec.sourceDateEpoch < 0)) fail(spec, `invalid sourceDateEpoch ${spec.sourceDateEpoch}`);
}

/** The caller's SOURCE_DATE_EPOCH (the engine reads the environment, once, in project.ts): 0 when the spec has none. */
function sourceDateEpoch(spec: DebSpec): number {
  return spec.sourceDateEpoch ?? 0;
}

const relList = (l?: string[]) => (l && l.length ? l.map((x) => x.trim()).join(', ') : undefined);

/** The control file text (deb822 paragraph). */
export function debControl(spec: DebSpec, installedSize: number): string {
  const [synopsis, ...body] = spec.description.replace(/\s+$/, '').split('\n');
  const desc = [synopsis!.trim(), ...body.map((l) => (l.trim() === '' || l.trim() === '.' ? '' : l))].join('\n');
  const f: Array<[string, string | undefined]> = [
    ['Package', spec.name],
    ['Source', spec.source && spec.source !== spec.name ? spec.source.trim() : undefined],
    ['Version', spec.version],
    ['Architecture', spec.architecture],
    ['Essential', spec.essential ? 'yes' : undefined],
    ['Maintainer', spec.maintainer.trim()],
    ['Installed-Size', String(installedSize)],
    ...RELATIONS.map(([field, key]): [string, string | undefined] => [field, relList(spec[key])]),
    ['Section', spec.section?.trim()],
    ['Priority', spec.priority?.trim()],
    ['Homepage', spec.homepage?.trim()],
    ...extraFieldList(spec).map(([k, v]): [string, string] => [k, v.trim()]),
    ['Description', desc],
  ];
  return formatParagraph(f.filter((x): x is [string, string] => x[1] !== undefined));
}

/** Installed-Size in KiB, as dpkg-gencontrol computes it over the package tree (root included). */
export function debInstalledSize(entries: ManifestEntry[]): number {
  let kib = 1; // the package root directory
  for (const e of entries) kib += e.type === 'dir' ? 1 : Math.ceil(e.size / 1024);
  return kib;
}

/** data.tar order: dpkg-deb's tree walk (sorted per directory), symlinks moved to the end. */
export function debDataOrder(entries: ManifestEntry[]): ManifestEntry[] {
  return [...entries.filter((e) => e.type !== 'symlink'), ...entries.filter((e) => e.type === 'symlink')];
}

const root = (name: string, type: TarHeader['type'], mode: number, mtime: number, size = 0): TarHeader => ({ name, type, mode, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime, size });

/** Run a tar producer into a compressor; on failure stop both and report the first real cause. */
async function produce(comp: Compressor, producer: () => Promise<void>): Promise<void> {
  let producerFailed = false;
  const p = producer().catch((e) => {
    producerFailed = true;
    comp.abort();
    throw e;
  });
  const d = comp.done.catch((e) => {
    comp.input.destroy();
    throw e;
  });
  const [pr, dr] = await Promise.allSettled([p, d]);
  if (pr.status === 'rejected' && (producerFailed || dr.status === 'fulfilled')) throw pr.reason;
  if (dr.status === 'rejected') throw dr.reason;
  if (pr.status === 'rejected') throw pr.reason;
}

/** Why a DEBIAN/shlibs text is malformed (deb-shlibs(5): '[TYPE:] LIBRARY SOVERSION DEPENDENCIES'), or undefined. */
export function shlibsError(text: string): string | undefined {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!.trim();
    if (!l || l.startsWith('#')) continue;
    if (!/^([a-z]+:\s+)?[A-Za-z0-9_.+-]+\s+[A-Za-z0-9_.+-]+\s+[a-z0-9][a-z0-9+.-]*(\s*\([<>=]{1,2}\s*[A-Za-z0-9.+~:-]+\))?(\s*[,|]\s*[a-z0-9][a-z0-9+.-]*(\s*\([<>=]{1,2}\s*[A-Za-z0-9.+~:-]+\))?)*$/.test(l)) {
      return `shlibs line ${i + 1}: expected '[TYPE:] LIBRARY SOVERSION DEPENDENCIES' (e.g. 'libfoo 1 libfoo1 (>= 1.2)'), got '${l}'`;
    }
  }
  return undefined;
}

/** The control.tar members (name, text, mode) in the order dpkg-deb writes them (bytewise). */
function controlMembers(spec: DebSpec, installedSize: number, md5sums: string, conffiles: ManifestEntry[]): Array<[string, string, number]> {
  const nl = (s: string) => (s.endsWith('\n') ? s : s + '\n');
  const members: Array<[string, string, number]> = [['control', debControl(spec, installedSize), 0o644]];
  if (md5sums) members.push(['md5sums', md5sums, 0o644]);
  if (conffiles.length) members.push(['conffiles', conffiles.map((e) => e.path + '\n').join(''), 0o644]);
  for (const s of SCRIPTS) {
    const body = spec.scripts?.[s];
    if (body !== undefined) members.push([s, nl(body), 0o755]);
  }
  if (spec.triggers?.trim()) members.push(['triggers', nl(spec.triggers), 0o644]);
  if (spec.shlibs?.trim()) members.push(['shlibs', nl(spec.shlibs), 0o644]);
  if (spec.templates?.trim()) members.push(['templates', nl(spec.templates), 0o644]);
  return members.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
}

/** The data.tar header of a manifest entry. */
function dataHeader(e: ManifestEntry): TarHeader {
  // a non-zero id without a name: no name in the header (dpkg resolves names first, so a
  // defaulted 'root' would win over the id)
  const uname = e.uid !== 0 && e.user === 'root' ? '' : e.user;
  const gname = e.gid !== 0 && e.group === 'root' ? '' : e.group;
  return { name: '.' + e.path + (e.type === 'dir' ? '/' : ''), type: e.type, mode: e.perm, uid: e.uid, gid: e.gid, uname, gname, mtime: e.mtime, size: e.size, linkname: e.target };
}



/** `opts.threads`: compressor and md5 threads (a build passes its part's share of -j; default: the cores). */
export async function writeDeb(spec: DebSpec, outPath: string, opts: { threads?: number } = {}): Promise<DebResult> {
  validateDebSpec(spec);
  const sde = sourceDateEpoch(spec);
  let entries: ManifestEntry[];
  try {
    entries = buildManifest(spec.files, sde);
  } catch (e) {
    fail(spec, (e as Error).message);
  }
  for (const e of entries) {
    if (e.ghost) fail(spec, `${e.path}: ghost files exist only in rpm packages`);
    if (e.conffile && e.type !== 'file') fail(spec, `${e.path}: only regular files can be conffiles (it is a ${e.type})`);
  }
  const comp = spec.compression ?? 'xz';
  const ccomp = spec.controlCompression ?? comp;
  const conffiles = entries.filter((e) => e.type === 'file' && (e.conffile || (spec.etcConffiles !== false && e.path.startsWith('/etc/'))));
  const isConffile = new Set(conffiles.map((e) => e.path));

  const tmpBase = tmpSibling(outPath);
  const controlFile = `${tmpBase}.control`;
  const debFile = `${tmpBase}.deb`;
  const sigFile = `${tmpBase}.sig`;
  let renamed = false;
  let fd: number | undefined;
  try {
    const hashed = entries.filter((e) => e.type === 'file' && !isConffile.has(e.path));
    const md5 = new Map<string, string>();
    for (const e of hashed) if (e.content) md5.set(e.path, createHash('md5').update(e.content).digest('hex'));
    // md5sums in path order (bytewise), as dh_md5sums writes them
    const md5Order = sortBytewise(hashed, (e) => e.path);
    const installedSize = debInstalledSize(entries);
    const controlTar = async (sums: (e: ManifestEntry) => string): Promise<Buffer> => {
      const md5s = md5Order.map((e) => `${sums(e)}  ${e.path.slice(1)}\n`).join('');
      const cc = compressToFile(ccomp, controlFile, { level: spec.compressionLevel, threads: opts.threads });
      await produce(cc, async () => {
        const tar = new TarWriter(cc.input, { recycle: true });
        await tar.add(root('./', 'dir', 0o755, sde));
        for (const [name, text, mode] of controlMembers(spec, installedSize, md5s, conffiles)) {
          const b = Buffer.from(text);
          await tar.add(root(`./${name}`, 'file', mode, sde, b.length), b);
        }
        await tar.finish();
      });
      return readFileSync(controlFile);
    };

    // control.tar comes before data.tar, and data.tar is written straight into the package
    // (no temporary copy). A compressed control.tar needs the md5sums first: they are computed
    // beforehand, on all cores. An uncompressed one has a size known in advance (md5 sums have a
    // fixed length): room is left for it, the sums are taken while data.tar is written and it is
    // filled in afterwards, every file read once. (md5 worker threads running alongside the
    // archive pass were slower on 2 cores: 1.77 s against 1.37 s for the benchmark's 200 MiB.)
    const sumsLater = ccomp === 'none';
    if (!sumsLater) {
      const fromDisk = hashed.filter((e) => !e.content);
      const sums = await digestFiles(
        fromDisk.map((e) => ({ path: e.source!, size: e.size, what: `${e.source} (${e.path})` })),
        'md5',
        opts.threads,
      ).catch((err: Error) => fail(spec, err.message));
      fromDisk.forEach((e, i) => md5.set(e.path, sums[i]!));
    }
    let control = await controlTar((e) => md5.get(e.path) ?? '0'.repeat(32));

    // the package: ar magic, debian-binary, control.tar, data.tar (its size patched in when known)
    fd = openSync(debFile, 'wx+', 0o644);
    const debianBinary = Buffer.from('2.0\n');
    writeAll(fd, Buffer.concat([Buffer.from(AR_MAGIC), arHeader('debian-binary', debianBinary.length, sde), debianBinary, arHeader(`control.tar${EXT[ccomp]}`, control.length, sde)]));
    const controlAt = fstatSync(fd).size;
    writeAll(fd, control);
    if (control.length % 2) writeAll(fd, Buffer.from('\n'));
    const dataHeaderAt = fstatSync(fd).size;
    const dataStart = dataHeaderAt + 60;
    writeAll(fd, arHeader(`data.tar${EXT[comp]}`, 0, sde));
    const order = debDataOrder(entries);
    const dc = compressToFile(comp, { fd }, { level: spec.compressionLevel, threads: opts.threads });
    await produce(dc, async () => {
      const tar = new TarWriter(dc.input, { recycle: true });
      await tar.add(root('./', 'dir', 0o755, sde));
      for (const e of order) {
        const body = e.type === 'file' ? (e.content ?? e.source) : undefined;
        const h = sumsLater && e.type === 'file' && !e.content && !isConffile.has(e.path) ? createHash('md5') : undefined;
        await tar.add(dataHeader(e), body, h && ((c) => h.update(c)), `${e.source} (${e.path})`);
        if (h) md5.set(e.path, h.digest('hex'));
      }
      await tar.finish();
    });
    const dataSize = fstatSync(fd).size - dataStart;
    writeAll(fd, arHeader(`data.tar${EXT[comp]}`, dataSize, sde), dataHeaderAt);
    if (sumsLater) {
      const late = await controlTar((e) => md5.get(e.path)!);
      if (late.length !== control.length) throw new KilnError(`internal error: control.tar has ${late.length} bytes, ${control.length} reserved`);
      control = late;
      writeAll(fd, control, controlAt);
    }
    let size = dataStart + dataSize;
    const append = (b: Buffer) => {
      writeAll(fd!, b, size);
      size += b.length;
    };
    if (dataSize % 2) append(Buffer.from('\n'));
    if (spec.signingKey) {
      const signer = await Signer.open(spec.signingKey, sde);
      try {
        await signer.detachSignParts([debianBinary, control, { file: debFile, start: dataStart, length: dataSize }], sigFile, false, 'SHA512');
      } finally {
        await signer.close();
      }
      const sig = readFileSync(sigFile);
      append(arHeader(`_gpg${spec.signatureRole ?? 'origin'}`, sig.length, sde));
      append(sig);
      if (sig.length % 2) append(Buffer.from('\n'));
    }
    if (fstatSync(fd).size !== size) throw new KilnError(`${debFile}: ${fstatSync(fd).size} bytes written, ${size} expected`);
    closeSync(fd);
    fd = undefined;
    await rename(debFile, outPath);
    renamed = true;
    return { path: outPath, size, installedSize };
  } catch (e) {
    const msg = (e as Error).message;
    throw msg.startsWith(`${spec.name}: `) ? e : new KilnError(`${spec.name}: ${msg}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
    for (const f of [controlFile, sigFile, ...(renamed ? [] : [debFile])]) rmSync(f, { force: true });
  }
}
