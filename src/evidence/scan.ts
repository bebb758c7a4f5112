/**
 * The artifact files of one part output, classified, hashed and (for packages and chroots)
 * inspected. Store entries never change once committed (they are named by signature), so a scan
 * is kept in out/.kiln/evidence/scan/KEY.json and a no-op build reads no artifact again.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/fsutil.js';
import { hashFile } from '../engine/hash.js';
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
  v: 1;
  files: ScannedFile[];
  /** package metadata by file path (deb and rpm artifacts) */
  packages: Record<string, PackageInfo>;
  /** installed Debian packages by chroot tarball path */
  chroots: Record<string, InstalledPackage[]>;
}

const SCAN_VERSION = 1;

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
  [/\.(asc|gpg|sig)$|(^|\/)(InRelease|Release\.gpg)$/, 'application/pgp-signature'],
  [/\.xml$/, 'application/xml'],
  [/\.json$/, 'application/json'],
  [/\.(txt|log|cfg|conf|list|sources|repo)$|(^|\/)(Release|Packages|manifest|key|image-tag|MD5SUMS|SHA1SUMS|B2SUMS)$/, 'text/plain'],
  [/\.ko$/, 'application/x-object'],
];

export function classify(kind: string, path: string): { type: ArtifactType; mediaType: string } {
  const mediaType = EXT_MEDIA.find(([re]) => re.test(path))?.[1] ?? 'application/octet-stream';
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
 * Scan a part's output. `cacheKey` names an immutable store entry (its signature): the scan is
 * kept under cacheDir and reused; without a key the directory is scanned every time.
 */
export async function scanPart(dir: string, kind: string, cacheDir: string, cacheKey?: string): Promise<PartScan> {
  const cacheFile = cacheKey ? join(cacheDir, `${createHash('sha256').update(`${cacheKey}\0${realpathOr(dir)}`).digest('hex').slice(0, 40)}.json`) : undefined;
  if (cacheFile) {
    try {
      const s = JSON.parse(readFileSync(cacheFile, 'utf8')) as PartScan;
      if (s.v === SCAN_VERSION) return s;
    } catch {
      /* not scanned yet */
    }
  }
  const scan = await scanDir(dir, kind);
  if (cacheFile) writeFileAtomic(cacheFile, JSON.stringify(scan));
  return scan;
}

function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
