/**
 * Native .deb writer (format 2.0, as dpkg-deb builds it).
 *
 *   writeDeb(spec, outPath) -> { path, size, sha256, installedSize }
 *
 * ar members `debian-binary`, `control.tar.{gz,xz,zst}`, `data.tar.{gz,xz,zst,}`; control.tar holds
 * control, md5sums, conffiles, maintainer scripts (0755), triggers, templates; data.tar holds `./`,
 * the implied parent directories and every entry, sorted, mtimes clamped to SOURCE_DATE_EPOCH,
 * owners root:root unless set. Contents stream from disk into the compressor, so memory stays
 * flat for any payload size; the result is assembled next to outPath and renamed into place, and
 * nothing is left behind on error. The same spec gives the same bytes.
 */
import { createHash } from 'node:crypto';
import { createReadStream, rmSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { KilnError } from '../lib/errors.js';
import { tmpSibling } from '../lib/fsutil.js';
import { writeAr } from './ar.js';
import { compressToFile, EXT, type Compression } from './compress.js';
import { formatParagraph } from './deb822.js';
import { buildManifest, type ManifestEntry, type PkgFile } from './files.js';
import { TarWriter } from './tar.js';
import { validateDebPackageName, validateDebVersion } from './version.js';

export interface DebScripts {
  preinst?: string;
  postinst?: string;
  prerm?: string;
  postrm?: string;
  config?: string;
}

export interface DebSpec {
  name: string;
  version: string;
  architecture: string;
  maintainer: string;
  /** first line: synopsis; further lines: extended description */
  description: string;
  source?: string;
  section?: string;
  priority?: string;
  homepage?: string;
  essential?: boolean;
  depends?: string[];
  preDepends?: string[];
  recommends?: string[];
  suggests?: string[];
  enhances?: string[];
  breaks?: string[];
  conflicts?: string[];
  replaces?: string[];
  provides?: string[];
  /** further control fields, in order */
  extraFields?: Array<[string, string]>;
  files: PkgFile[];
  scripts?: DebScripts;
  triggers?: string;
  templates?: string;
  /** regular files under /etc are conffiles (as debhelper does) unless false */
  etcConffiles?: boolean;
  compression?: Compression;
  controlCompression?: Compression;
  sourceDateEpoch?: number;
}

export interface DebResult {
  path: string;
  size: number;
  sha256: string;
  installedSize: number;
}

/** name_version_arch.deb, without the epoch (as dpkg-name and the archive name files). */
export function debFileName(spec: Pick<DebSpec, 'name' | 'version' | 'architecture'>): string {
  return `${spec.name}_${spec.version.replace(/^\d+:/, '')}_${spec.architecture}.deb`;
}

function fail(spec: DebSpec, msg: string): never {
  throw new KilnError(`${spec.name || '(unnamed package)'}: ${msg}`);
}

function validate(spec: DebSpec): void {
  const e = validateDebPackageName(spec.name) ?? validateDebVersion(spec.version);
  if (e) fail(spec, e);
  if (!/^[a-z0-9][a-z0-9-]*$/.test(spec.architecture)) fail(spec, `invalid architecture '${spec.architecture}'`);
  if (!spec.maintainer?.trim()) fail(spec, 'a maintainer is required');
  if (!spec.description?.trim()) fail(spec, 'a description is required');
  for (const [k, v] of spec.extraFields ?? []) if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(k) || v.includes('\n\n')) fail(spec, `invalid control field ${k}`);
  for (const [name, s] of Object.entries(spec.scripts ?? {})) {
    if (s !== undefined && !s.startsWith('#!')) fail(spec, `maintainer script ${name} must start with #! (an interpreter line)`);
  }
}

const depList = (l?: string[]) => (l && l.length ? l.join(', ') : undefined);

function controlText(spec: DebSpec, installedSize: number): string {
  const [synopsis, ...body] = spec.description.replace(/\s+$/, '').split('\n');
  const desc = [synopsis!.trim(), ...body.map((l) => (l.trim() === '' ? '' : l.replace(/^\s?/, '')))].join('\n');
  const f: Array<[string, string | undefined]> = [
    ['Package', spec.name],
    ['Source', spec.source && spec.source !== spec.name ? spec.source : undefined],
    ['Version', spec.version],
    ['Architecture', spec.architecture],
    ['Essential', spec.essential ? 'yes' : undefined],
    ['Maintainer', spec.maintainer.trim()],
    ['Installed-Size', String(installedSize)],
    ['Pre-Depends', depList(spec.preDepends)],
    ['Depends', depList(spec.depends)],
    ['Recommends', depList(spec.recommends)],
    ['Suggests', depList(spec.suggests)],
    ['Enhances', depList(spec.enhances)],
    ['Breaks', depList(spec.breaks)],
    ['Conflicts', depList(spec.conflicts)],
    ['Replaces', depList(spec.replaces)],
    ['Provides', depList(spec.provides)],
    ['Section', spec.section],
    ['Priority', spec.priority],
    ['Homepage', spec.homepage],
    ...(spec.extraFields ?? []),
    ['Description', desc],
  ];
  return formatParagraph(f.filter((x): x is [string, string] => x[1] !== undefined));
}

/** dpkg's Installed-Size: KiB, each file rounded up, other entries one each. */
function installedSizeOf(entries: ManifestEntry[]): number {
  let kib = 0;
  for (const e of entries) kib += e.type === 'file' ? Math.ceil(e.size / 1024) : 1;
  return kib;
}

export async function writeDeb(spec: DebSpec, outPath: string): Promise<DebResult> {
  validate(spec);
  const sde = spec.sourceDateEpoch ?? Number(process.env.SOURCE_DATE_EPOCH ?? 0);
  let entries: ManifestEntry[];
  try {
    entries = buildManifest(spec.files, sde);
  } catch (e) {
    fail(spec, (e as Error).message);
  }
  const ghost = entries.find((e) => e.ghost);
  if (ghost) fail(spec, `${ghost.path}: ghost files exist only in rpm packages`);
  const comp = spec.compression ?? 'xz';
  const ccomp = spec.controlCompression ?? (comp === 'none' ? 'gzip' : comp === 'zstd' ? 'xz' : comp);
  const tmpBase = tmpSibling(outPath);
  const dataFile = `${tmpBase}.data`;
  const controlFile = `${tmpBase}.control`;
  const arFile = `${tmpBase}.deb`;
  try {
    // data.tar
    const md5s: string[] = [];
    const dc = compressToFile(comp, dataFile);
    const data = new TarWriter(dc.input);
    const writing = (async () => {
      await data.add({ name: './', type: 'dir', mode: 0o755, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: sde, size: 0 });
      for (const e of entries) {
        const name = '.' + e.path + (e.type === 'dir' ? '/' : '');
        const h = { name, type: e.type, mode: e.perm, uid: e.uid, gid: e.gid, uname: e.user, gname: e.group, mtime: e.mtime, size: e.size, linkname: e.target };
        if (e.type === 'file') {
          const md5 = createHash('md5');
          await data.add(h, e.content ?? e.source, (c) => md5.update(c));
          md5s.push(`${md5.digest('hex')}  ${e.path.slice(1)}\n`);
        } else await data.add(h);
      }
      await data.finish();
    })();
    await Promise.all([writing, dc.done]);

    // control.tar
    const installedSize = installedSizeOf(entries);
    const conffiles = entries.filter((e) => e.type === 'file' && (e.conffile || (spec.etcConffiles !== false && e.path.startsWith('/etc/')))).map((e) => e.path);
    const members: Array<[string, string, number]> = [['control', controlText(spec, installedSize), 0o644]];
    if (md5s.length) members.push(['md5sums', md5s.join(''), 0o644]);
    if (conffiles.length) members.push(['conffiles', conffiles.map((p) => p + '\n').join(''), 0o644]);
    for (const s of ['preinst', 'postinst', 'prerm', 'postrm', 'config'] as const) {
      const body = spec.scripts?.[s];
      if (body !== undefined) members.push([s, body.endsWith('\n') ? body : body + '\n', 0o755]);
    }
    if (spec.triggers) members.push(['triggers', spec.triggers.endsWith('\n') ? spec.triggers : spec.triggers + '\n', 0o644]);
    if (spec.templates) members.push(['templates', spec.templates.endsWith('\n') ? spec.templates : spec.templates + '\n', 0o644]);
    members.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const cc = compressToFile(ccomp, controlFile);
    const ctl = new TarWriter(cc.input);
    const cw = (async () => {
      await ctl.add({ name: './', type: 'dir', mode: 0o755, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: sde, size: 0 });
      for (const [name, text, mode] of members) {
        const b = Buffer.from(text);
        await ctl.add({ name: `./${name}`, type: 'file', mode, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: sde, size: b.length }, b);
      }
      await ctl.finish();
    })();
    await Promise.all([cw, cc.done]);

    await writeAr(
      arFile,
      [
        { name: 'debian-binary', data: Buffer.from('2.0\n') },
        { name: `control.tar${EXT[ccomp]}`, file: controlFile },
        { name: `data.tar${EXT[comp]}`, file: dataFile },
      ],
      sde,
    );
    const sha = createHash('sha256');
    let size = 0;
    for await (const c of createReadStream(arFile)) {
      sha.update(c as Buffer);
      size += (c as Buffer).length;
    }
    await rename(arFile, outPath);
    return { path: outPath, size, sha256: sha.digest('hex'), installedSize };
  } finally {
    for (const f of [dataFile, controlFile, arFile]) rmSync(f, { force: true });
  }
}
