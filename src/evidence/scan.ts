/**
 * The artifact files of one part output, classified, hashed and (for packages and chroots)
 * inspected. Store entries never change once committed (they are named by signature), so a scan
 * is kept (ScanCache, out/.kiln/evidence/scans.json) and a no-op build reads no artifact again.
 */
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/fsutil.js';
import { hashFile } from '../lib/hash.js';
import { inspectChroot, inspectDeb, inspectRpm, type InstalledPackage, type PackageInfo } from './inspect.js';

export type ArtifactType =
  | 'deb'
  | 'rpm'
  | 'apt-repository'
  | 'rpm-repository'
  | 'chroot-tarball'
  | 'disk-image'
  | 'iso'
  | 'clonezilla-image'
  | 'kernel-module'
  | 'test-result'
  | 'signing-key'
  | 'log'
  | 'file';

export interface ScannedFile {
  /** path inside the part output, '/'-separated */
  path: string;
  size: number;
  sha256: string;
  type: ArtifactType;
  mediaType: string;
}

export interface PartScan {
  v: number;
  files: ScannedFile[];
  /** package metadata by file path (deb and rpm artifacts) */
  packages: Record<string, PackageInfo>;
  /** installed Debian packages by chroot tarball path */
  chroots: Record<string, InstalledPackage[]>;
}

const SCAN_VERSION = 3;

const EXT_MEDIA: Array<[RegExp, string]> = [
  [/\.deb$/, 'application/vnd.debian.binary-package'],
  [/\.rpm$/, 'application/x-rpm'],
  [/\.iso$/, 'application/x-iso9660-image'],
  [/\.qcow2$/, 'application/x-qemu-disk'],
  [/\.(img|raw)$/, 'application/octet-stream'],
  [/\.tar$/, 'application/x-tar'],
  [/\.tar\.xz$|\.xz$/, 'application/x-xz'],
  [/\.tar\.zst$|\.zst$/, 'application/zstd'],
  [/\.t?gz$/, 'application/gzip'],
  [/(^|\/)([^/]*key[^/]*\.(asc|gpg)|RPM-GPG-KEY[^/]*)$/i, 'application/pgp-keys'],
  [/\.(asc|gpg|sig)$|(^|\/)(InRelease|Release\.gpg)$/, 'application/pgp-signature'],
  [/\.xml$/, 'application/xml'],
  [/\.json$/, 'application/json'],
  [/\.(txt|log|cfg|conf|list|sources|repo)$|(^|\/)(Release|Packages|manifest|key|image-tag|MD5SUMS|SHA1SUMS|B2SUMS)$/, 'text/plain'],
  [/\.ko$/, 'application/x-object'],
];

export function classify(kind: string, path: string): { type: ArtifactType; mediaType: string } {
  let mediaType = EXT_MEDIA.find(([re]) => re.test(path))?.[1] ?? 'application/octet-stream';
  if (kind === 'gpg-key' && mediaType === 'application/pgp-signature') mediaType = 'application/pgp-keys';
  const base = path.split('/').pop()!;
  let type: ArtifactType = 'file';
  if (path.endsWith('.deb')) type = 'deb';
  else if (path.endsWith('.rpm')) type = 'rpm';
  else if (/^test-results\/.*\.xml$/.test(path)) type = 'test-result';
  else if (kind === 'apt-repo') type = 'apt-repository';
  else if (kind === 'rpm-repo') type = 'rpm-repository';
  else if (kind === 'clonezilla-image') type = 'clonezilla-image';
  else if (/^rootfs\.tar(\.xz|\.zst)?$/.test(base) && kind === 'chroot') type = 'chroot-tarball';
  else if (/\.iso$/.test(base)) type = 'iso';
  else if (/\.(img|raw|qcow2)$/.test(base)) type = 'disk-image';
  else if (/\.ko(\.xz|\.zst|\.gz)?$/.test(base)) type = 'kernel-module';
  else if (kind === 'gpg-key') type = 'signing-key';
  else if (/\.log$/.test(base)) type = 'log';
  return { type, mediaType };
}

/** Regular files under dir (sorted, '/'-separated); a chroot's extracted rootfs/ tree is not an artifact. */
function listFiles(dir: string, kind: string): string[] {
  const out: string[] = [];
  const rec = (rel: string) => {
    let names: string[];
    try {
      names = readdirSync(join(dir, rel)).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      if (kind === 'chroot' && r === 'rootfs') continue;
      const st = lstatSync(join(dir, r));
      if (st.isDirectory()) rec(r);
      else if (st.isFile()) out.push(r);
    }
  };
  rec('');
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export async function scanDir(dir: string, kind: string): Promise<PartScan> {
  const scan: PartScan = { v: SCAN_VERSION, files: [], packages: {}, chroots: {} };
  for (const rel of listFiles(dir, kind)) {
    const abs = join(dir, rel);
    const { type, mediaType } = classify(kind, rel);
    scan.files.push({ path: rel, size: lstatSync(abs).size, sha256: await hashFile(abs), type, mediaType });
    try {
      if (type === 'deb') scan.packages[rel] = inspectDeb(abs);
      else if (type === 'rpm') scan.packages[rel] = inspectRpm(abs);
      else if (type === 'chroot-tarball') {
        const m = join(dir, 'manifest');
        scan.chroots[rel] = inspectChroot(abs, existsSync(m) ? m : undefined);
      }
    } catch {
      /* not readable as a package: still an artifact with its hash */
    }
  }
  return scan;
}

/**
 * Scans of part outputs, kept in one file (out/.kiln/evidence/scans.json) keyed by the store
 * entry's signature and path: store entries never change, so a kept scan is reused as is. Only the
 * entries used by the last build are written back.
 */
export class ScanCache {
  private kept: Record<string, PartScan> = {};
  private used: Record<string, PartScan> = {};
  private dirty = false;
  constructor(private file: string) {
    try {
      const s = JSON.parse(readFileSync(file, 'utf8')) as { v: number; scans: Record<string, PartScan> };
      if (s.v === SCAN_VERSION) this.kept = s.scans;
    } catch {
      /* nothing kept yet */
    }
  }

  /** Scan a part's output; `key` names an immutable store entry (without one the directory is scanned every time). */
  async scan(dir: string, kind: string, key?: string): Promise<PartScan> {
    if (!key) return scanDir(dir, kind);
    const k = `${key}:${dir}`;
    let s = this.kept[k];
    if (!s || s.v !== SCAN_VERSION) {
      s = await scanDir(dir, kind);
      this.dirty = true;
    }
    this.used[k] = s;
    return s;
  }

  save(): void {
    if (!this.dirty && Object.keys(this.used).length === Object.keys(this.kept).length) return;
    writeFileAtomic(this.file, JSON.stringify({ v: SCAN_VERSION, scans: this.used }));
  }
}
