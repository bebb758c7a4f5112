/**
 * What is inside an artifact, read from the artifact itself (not from the recipe that wrote it):
 *   .deb   control fields (ar -> control.tar.* -> ./control), license from the machine-readable
 *          copyright file, every regular file of data.tar.* with its sha256
 *   .rpm   header tags (lead, signature header, main header: name, version, release, epoch, arch,
 *          license, requires, file names, sizes and SHA-256 digests)
 *   chroot tarball  the installed packages from its ./var/lib/dpkg/status (Depends included),
 *          else the chroot recipe's `manifest` list
 * Compressed members go through the system xz / zstd (argv, no shell); gzip through node:zlib.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { KilnError } from '../lib/errors.js';

export interface PackagedFile {
  path: string;
  size: number;
  sha256: string;
}

export interface PackageInfo {
  format: 'deb' | 'rpm';
  name: string;
  version: string;
  arch: string;
  license?: string;
  source?: string;
  homepage?: string;
  summary?: string;
  /** names of packages this one depends on (Depends / Requires, version constraints dropped) */
  depends: string[];
  files: PackagedFile[];
  /** the package carries an OpenPGP signature (debsigs _gpg* member; rpm header/payload signature) */
  signed: boolean;
}

export interface InstalledPackage {
  name: string;
  version: string;
  arch: string;
  depends: string[];
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function decompress(data: Buffer, name: string): Buffer {
  if (name.endsWith('.gz')) return gunzipSync(data);
  const tool = name.endsWith('.xz') ? 'xz' : name.endsWith('.zst') ? 'zstd' : name.endsWith('.bz2') ? 'bzip2' : undefined;
  if (!tool) return data;
  const r = spawnSync(tool, ['-dc'], { input: data, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new KilnError(`${tool} -dc failed on ${name}: ${r.stderr?.toString().trim() ?? r.error?.message}`);
  return r.stdout;
}

/** Members of an ar archive (the .deb container). */
export function arMembers(data: Buffer): Array<{ name: string; data: Buffer }> {
  if (data.subarray(0, 8).toString('latin1') !== '!<arch>\n') throw new KilnError('not an ar archive');
  const out: Array<{ name: string; data: Buffer }> = [];
  let off = 8;
  while (off + 60 <= data.length) {
    const name = data.subarray(off, off + 16).toString('latin1').trim().replace(/\/$/, '');
    const size = Number(data.subarray(off + 48, off + 58).toString('latin1').trim());
    out.push({ name, data: data.subarray(off + 60, off + 60 + size) });
    off += 60 + size + (size % 2);
  }
  return out;
}

export interface TarEntry {
  path: string;
  type: string;
  data: Buffer;
}

/** Entries of an in-memory tar (ustar, GNU long names, pax path records). */
export function tarEntries(data: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  let off = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  const str = (b: Buffer) => {
    const z = b.indexOf(0);
    return b.subarray(0, z < 0 ? b.length : z).toString('utf8');
  };
  while (off + 512 <= data.length) {
    const h = data.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const sizeField = h.subarray(124, 136);
    const size = sizeField[0]! & 0x80 ? Number(sizeField.readBigUInt64BE(4)) : parseInt(str(sizeField).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 0x30);
    const body = data.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = str(body);
      continue;
    }
    if (type === 'x') {
      for (const m of body.toString('utf8').matchAll(/\d+ path=([^\n]*)\n/g)) paxPath = m[1];
      continue;
    }
    if (type === 'g' || type === 'K') continue;
    const prefix = str(h.subarray(345, 500));
    const name = paxPath ?? longName ?? (prefix ? `${prefix}/${str(h.subarray(0, 100))}` : str(h.subarray(0, 100)));
    longName = paxPath = undefined;
    out.push({ path: name, type: type === '\0' ? '0' : type, data: body });
  }
  return out;
}

/** Parse RFC 822 style paragraphs (control files, dpkg status). */
export function paragraphs(text: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  let cur: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (Object.keys(cur).length) out.push(cur);
      cur = {};
      last = undefined;
      continue;
    }
    if (/^\s/.test(line)) {
      if (last) cur[last] += '\n' + line.trim();
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    last = line.slice(0, i).trim().toLowerCase();
    cur[last] = line.slice(i + 1).trim();
  }
  if (Object.keys(cur).length) out.push(cur);
  return out;
}

/** Package names of a Depends / Pre-Depends field (alternatives included, versions and arch qualifiers dropped). */
export function relationNames(field: string | undefined): string[] {
  if (!field) return [];
  const names = new Set<string>();
  for (const alt of field.split(/[,|]/)) {
    const m = /^\s*([a-z0-9][a-z0-9+.-]*)/.exec(alt);
    if (m) names.add(m[1]!);
  }
  return [...names].sort();
}

const normPath = (p: string) => '/' + p.replace(/^\.?\/+/, '');

export function inspectDeb(file: string): PackageInfo {
  const members = arMembers(readFileSync(file));
  const ctl = members.find((m) => m.name.startsWith('control.tar'));
  const dat = members.find((m) => m.name.startsWith('data.tar'));
  if (!ctl || !dat) throw new KilnError(`${file}: not a Debian package (no control.tar / data.tar member)`);
  const control = tarEntries(decompress(ctl.data, ctl.name)).find((e) => e.path.replace(/^\.\//, '') === 'control');
  if (!control) throw new KilnError(`${file}: control.tar has no control file`);
  const f = paragraphs(control.data.toString('utf8'))[0] ?? {};
  const files: PackagedFile[] = [];
  let license: string | undefined;
  for (const e of tarEntries(decompress(dat.data, dat.name))) {
    if (e.type !== '0' && e.type !== '7') continue;
    const path = normPath(e.path);
    files.push({ path, size: e.data.length, sha256: sha(e.data) });
    if (!license && path === `/usr/share/doc/${f.package}/copyright`) {
      license = /^License:\s*(\S.*)$/m.exec(e.data.toString('utf8'))?.[1]?.trim();
    }
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    format: 'deb',
    name: f.package ?? '',
    version: f.version ?? '',
    arch: f.architecture ?? '',
    license: license && license !== 'unknown' ? license : undefined,
    source: f.source?.split(/\s/)[0],
    homepage: f.homepage,
    summary: f.description?.split('\n')[0],
    depends: relationNames([f['pre-depends'], f.depends].filter(Boolean).join(', ')),
    files,
    signed: members.some((m) => m.name.startsWith('_gpg')),
  };
}

interface RpmHeader {
  tags: Map<number, { type: number; offset: number; count: number }>;
  store: Buffer;
  end: number;
}

function rpmHeader(buf: Buffer, off: number, file: string): RpmHeader {
  if (buf.readUInt32BE(off) !== 0x8eade801) throw new KilnError(`${file}: bad rpm header magic at ${off}`);
  const n = buf.readUInt32BE(off + 8);
  const size = buf.readUInt32BE(off + 12);
  const tags = new Map<number, { type: number; offset: number; count: number }>();
  for (let i = 0; i < n; i++) {
    const e = off + 16 + i * 16;
    tags.set(buf.readUInt32BE(e), { type: buf.readUInt32BE(e + 4), offset: buf.readInt32BE(e + 8), count: buf.readUInt32BE(e + 12) });
  }
  const s = off + 16 + n * 16;
  return { tags, store: buf.subarray(s, s + size), end: s + size };
}

function rpmStrings(h: RpmHeader, tag: number): string[] {
  const t = h.tags.get(tag);
  if (!t || ![6, 8, 9].includes(t.type)) return [];
  const out: string[] = [];
  let p = t.offset;
  for (let i = 0; i < (t.type === 6 ? 1 : t.count); i++) {
    const z = h.store.indexOf(0, p);
    out.push(h.store.subarray(p, z).toString('utf8'));
    p = z + 1;
  }
  return out;
}

function rpmInts(h: RpmHeader, tag: number): number[] {
  const t = h.tags.get(tag);
  if (!t) return [];
  const out: number[] = [];
  for (let i = 0; i < t.count; i++) {
    if (t.type === 4) out.push(h.store.readUInt32BE(t.offset + i * 4));
    else if (t.type === 5) out.push(Number(h.store.readBigUInt64BE(t.offset + i * 8)));
    else if (t.type === 3) out.push(h.store.readUInt16BE(t.offset + i * 2));
  }
  return out;
}

export function inspectRpm(file: string): PackageInfo {
  // lead (96) + signature header (padded to 8) + main header: read the first MiB, more if needed
  const fd = openSync(file, 'r');
  let buf: Buffer;
  try {
    const read = (len: number) => {
      const b = Buffer.alloc(len);
      return b.subarray(0, readSync(fd, b, 0, len, 0));
    };
    buf = read(1 << 20);
    const sig = rpmHeader(buf, 96, file);
    const mainOff = sig.end + ((8 - (sig.end % 8)) % 8);
    const need = mainOff + 16 + buf.readUInt32BE(mainOff + 8) * 16 + buf.readUInt32BE(mainOff + 12);
    if (need > buf.length) buf = read(need);
  } finally {
    closeSync(fd);
  }
  const sig = rpmHeader(buf, 96, file);
  const h = rpmHeader(buf, sig.end + ((8 - (sig.end % 8)) % 8), file);
  const one = (tag: number) => rpmStrings(h, tag)[0];
  const epoch = rpmInts(h, 1003)[0];
  const algo = rpmInts(h, 5011)[0] ?? 1;
  const dirs = rpmStrings(h, 1118);
  const bases = rpmStrings(h, 1117);
  const dirIdx = rpmInts(h, 1116);
  const sizes = rpmInts(h, 1028).length ? rpmInts(h, 1028) : rpmInts(h, 5008);
  const modes = rpmInts(h, 1030);
  const digests = rpmStrings(h, 1035);
  const files: PackagedFile[] = [];
  for (let i = 0; i < bases.length; i++) {
    const mode = modes[i] ?? 0o100644;
    if ((mode & 0o170000) !== 0o100000) continue; // regular files only
    files.push({ path: dirs[dirIdx[i]!]! + bases[i]!, size: sizes[i] ?? 0, sha256: algo === 8 ? (digests[i] ?? '') : '' });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const license = one(1014);
  return {
    format: 'rpm',
    name: one(1000) ?? '',
    version: `${epoch ? `${epoch}:` : ''}${one(1001)}-${one(1002)}`,
    arch: one(1022) ?? '',
    license: license && license !== 'unknown' ? license : undefined,
    source: one(1044),
    homepage: one(1020),
    summary: one(1004),
    depends: [...new Set(rpmStrings(h, 1049).filter((r) => !r.startsWith('rpmlib(') && !r.startsWith('/')))].sort(),
    files,
    // RSAHEADER / DSAHEADER / SIGTAG_PGP / SIGTAG_GPG (OpenPGP signatures in the signature header)
    signed: [268, 267, 1002, 1005].some((t) => sig.tags.has(t)),
  };
}

/** Installed packages of a chroot tarball, from its dpkg status; `manifest` (Package Version Arch lines) as fallback. */
export function inspectChroot(tarball: string, manifestFile?: string): InstalledPackage[] {
  for (const member of ['./var/lib/dpkg/status', 'var/lib/dpkg/status']) {
    const r = spawnSync('tar', ['-xOf', tarball, member], { maxBuffer: 1 << 28 });
    if (r.status === 0 && r.stdout.length > 0) {
      return paragraphs(r.stdout.toString('utf8'))
        .filter((p) => p.package && /\binstalled$/.test(p.status ?? 'install ok installed'))
        .map((p) => ({ name: p.package!, version: p.version ?? '', arch: p.architecture ?? '', depends: relationNames([p['pre-depends'], p.depends].filter(Boolean).join(', ')) }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.arch < b.arch ? -1 : 1));
    }
  }
  if (manifestFile) {
    return readFileSync(manifestFile, 'utf8')
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((w) => w.length >= 3)
      .map(([name, version, arch]) => ({ name: name!.split(':')[0]!, version: version!, arch: arch!, depends: [] }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  return [];
}
