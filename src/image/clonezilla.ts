/**
 * Clonezilla image directories written from a raw disk image file, without block devices:
 * the same files `ocs-sr savedisk NAME DEV` writes (Debian clonezilla 5.3, partclone 0.3.23),
 * made by the same tools on byte ranges of the file:
 *
 *   disk, parts                        "DEV", "DEVp1 DEVp2 ..."
 *   DEV-pt.sf                          sfdisk -d IMG, device names rewritten to /dev/DEV...
 *   DEV-chs.sf                         sfdisk -G IMG (cylinders/heads/sectors)
 *   DEV-pt.parted, DEV-pt.parted.compact   parted -s IMG unit s print / unit compact print
 *   DEV-mbr                            sector 0
 *   DEV-hidden-data-after-mbr          msdos: sectors 1 .. first partition - 1 (< 1024 MiB)
 *   DEV-gpt-1st, DEV-gpt-2nd           GPT: sectors 0-33, the last 33 sectors
 *   DEV-gpt.gdisk, DEV-gpt.sgdisk      GPT: sgdisk -b, sgdisk -p
 *   DEVpN.FS-ptcl-img.SUF[.aa ...]     partclone.FS -c -s PARTITION-FILE | compressor | split
 *                                      (FS ext2/3/4, vfat; anything else: partclone.dd, FS "dd")
 *   blkdev.list, blkid.list, dev-fs.list   lsblk/blkid-style listings of the source disk only
 *   MD5SUMS, SHA1SUMS (B2SUMS)         `md5sum *` over the files above, as ocs -gm/-gs
 *   Info-saved-by-cmd.txt, Info-packages.txt, Info-img-size.txt, clonezilla-img, Info-img-id.txt
 *
 * Reproducible: partclone's image header carries no time or random id (measured: two runs and
 * ocs-sr's own image of the same partition decompress to identical bytes); gzip is pigz with
 * ocs's options plus -n (no mtime in the gzip header); zstd output is identical to ocs's; dates
 * in the text files come from SOURCE_DATE_EPOCH.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import type { RunOptions, RunResult } from '../lib/exec.js';

export type Compression = 'gzip' | 'zstd' | 'none';
export type Checksum = 'md5sum' | 'sha1sum' | 'b2sum';

const SECTOR = 512;
const MiB = 1024 * 1024;
/** hidden_data_after_mbr_limit in /etc/drbl/drbl-ocs.conf (MiB) */
const HIDDEN_DATA_LIMIT = 1024;
/** ocs-sr's partclone options (PARTCLONE_SAVE_OPT, partclone_dd_bs) */
export const PARTCLONE_Z = '10485760';
export const PARTCLONE_DD_BS = '16777216';

/** ocs-get-comp-suffix */
export const COMP_SUFFIX: Record<Compression, string> = { gzip: 'gz', zstd: 'zst', none: 'uncomp' };
/** the compressor command ocs-sr uses (-z1p, -z9, -z0) plus -n for pigz (no time stamp) */
export const COMPRESSOR: Record<Compression, string[]> = {
  gzip: ['pigz', '-c', '--fast', '-b', '1024', '--rsyncable', '-n'],
  zstd: ['zstd', '-c', '-3', '-q'],
  none: ['cat'],
};
export const DECOMPRESSOR: Record<Compression, string[]> = { gzip: ['pigz', '-dc'], zstd: ['zstd', '-dcq'], none: ['cat'] };
/** file systems kiln images with their own partclone; everything else is copied by partclone.dd */
export const PARTCLONE_FS = ['ext2', 'ext3', 'ext4', 'vfat'];

export interface PartitionInfo {
  /** device name inside the image, e.g. sda1 */
  name: string;
  number: number;
  /** bytes */
  start: number;
  size: number;
  /** Clonezilla's file system name (ext4, vfat, ...) or 'dd' for a raw copy */
  fs: string;
  /** what blkid found ('' when nothing) */
  blkidType: string;
  /** image file name prefix (without .aa) */
  image: string;
  /** the image's files (.aa, .ab, ... or the single file) */
  files: string[];
}

export interface ImageManifest {
  name: string;
  device: string;
  diskSize: number;
  table: 'msdos' | 'gpt';
  partitions: Array<Pick<PartitionInfo, 'name' | 'number' | 'start' | 'size' | 'fs' | 'image' | 'files'>>;
  compression: Compression;
  splitSize: number;
  checksums: string[];
  imageBytes: number;
  partclone: string;
}

export interface SaveDiskOptions {
  /** raw disk image file */
  disk: string;
  /** the image directory to write (…/image/NAME), created empty by the caller */
  dir: string;
  name: string;
  /** device name inside the image (default sda) */
  device?: string;
  compression?: Compression;
  /** split size in MB (1000*1000 bytes, as `split -b NMB`); 0: no split */
  splitMB?: number;
  checksums?: Checksum[];
  /** scratch directory (one partition is extracted there at a time) */
  work: string;
  sourceDateEpoch: number;
  run: (argv: string[], opts?: RunOptions) => Promise<RunResult>;
  log?: (s: string) => void;
  /** a description of who made the image, for Info-saved-by-cmd.txt */
  savedBy?: string;
  /** pigz threads: the part's share of -j, at least 2 (pigz -p 1 takes its single-threaded path,
   * which writes other bytes than -p 2 and more; from 2 on the output does not depend on it) */
  jobs?: number;
}

/** Partition device name the way the kernel (and ocs) names it: sda1, nvme0n1p1, mmcblk0p1. */
export function partName(dev: string, n: number): string {
  return /\d$/.test(dev) ? `${dev}p${n}` : `${dev}${n}`;
}

/** lsblk's size_to_human_string (util-linux): 1024 base, one rounded decimal, K/M/G/T. */
export function lsblkSize(bytes: number): string {
  const letters = ['B', 'K', 'M', 'G', 'T', 'P', 'E'];
  let exp = 0;
  while (exp < 60 && bytes >= 2 ** (exp + 10)) exp += 10;
  let dec = exp ? Math.floor(bytes / 2 ** exp) : bytes;
  let frac = exp ? bytes % 2 ** exp : 0;
  if (frac) {
    frac = Math.floor((frac * 1000) / 2 ** exp);
    frac = Math.floor((frac + 50) / 100);
    if (frac === 10) {
      dec++;
      frac = 0;
    }
  }
  const c = letters[exp / 10]!;
  return frac ? `${dec}.${frac}${c}` : `${dec}${c}`;
}

/** `du -h` style (rounded up, one decimal below 10). */
export function duSize(bytes: number): string {
  const units = ['K', 'M', 'G', 'T'];
  let v = bytes / 1024;
  let u = 0;
  if (bytes < 1024) return String(bytes);
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const s = v < 10 ? (Math.ceil(v * 10) / 10).toFixed(1) : String(Math.ceil(v));
  return `${s}${units[u]}`;
}

function utc(sde: number): Date {
  return new Date(sde * 1000);
}
const pad = (n: number) => String(n).padStart(2, '0');
/** `date +%F' '%T' '%Z` in UTC */
function dateFT(sde: number): string {
  const d = utc(sde);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}
/** `date +%Y-%m%d-%H%M` */
function dateCompact(sde: number): string {
  const d = utc(sde);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}-${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}`;
}

function readBytes(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, b, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

interface SfdiskTable {
  label: 'dos' | 'gpt';
  id: string;
  device: string;
  sectorsize?: number;
  partitions: Array<{ node: string; start: number; size: number; type: string; uuid?: string; name?: string; bootable?: boolean }>;
}

/** Parse `blkid -p -o export` output. */
function parseExport(s: string): Array<[string, string]> {
  return s
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]);
}

/** Low-level probe of a byte range of the disk file: blkid tags in blkid's order. */
async function probe(o: SaveDiskOptions, start: number, size: number): Promise<Array<[string, string]>> {
  const r = await o.run(['blkid', '-p', '-o', 'export', '-O', String(start), '-S', String(size), o.disk], { capture: true, allowFailure: true });
  // rc 2: nothing found
  return r.code === 0 ? parseExport(r.stdout) : [];
}

const PIPELINE = `set -euo pipefail
save() {
  if [ "$KZ_FS" = dd ]; then
    partclone.dd -z "$KZ_Z" --buffer_size "$KZ_DD_BS" -L "$KZ_LOG" -s "$KZ_SRC" --output -
  else
    "partclone.$KZ_FS" -z "$KZ_Z" -L "$KZ_LOG" -c -s "$KZ_SRC" --output -
  fi
}
compress() {
  case "$KZ_COMP" in
    gzip) pigz -p "$KZ_JOBS" -c --fast -b 1024 --rsyncable -n ;;
    zstd) zstd -c -3 -q ;;
    *) cat ;;
  esac
}
if [ "$KZ_SPLIT" = 0 ]; then
  save | compress > "$KZ_PREFIX"
else
  save | compress | split -a 2 -b "\${KZ_SPLIT}MB" - "$KZ_PREFIX."
fi
`;

function sumFile(algo: string, file: string): string {
  return createHash(algo).update(readFileSync(file)).digest('hex');
}
const SUM_ALGO: Record<Checksum, string> = { md5sum: 'md5', sha1sum: 'sha1', b2sum: 'blake2b512' };
const SUM_FILE: Record<Checksum, string> = { md5sum: 'MD5SUMS', sha1sum: 'SHA1SUMS', b2sum: 'B2SUMS' };

/** C-locale sort (what `md5sum *` gives under LC_ALL=C; ocs runs it in its own locale). */
const byteSort = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Write a Clonezilla image directory of `o.disk` into `o.dir`. */
export async function saveDisk(opts: SaveDiskOptions): Promise<ImageManifest> {
  // the real path: sfdisk, parted and sgdisk print it in their listings, which are rewritten to /dev/DEV
  const o = { ...opts, disk: realpathSync(opts.disk) };
  const dev = o.device ?? 'sda';
  const comp = o.compression ?? 'gzip';
  const split = o.splitMB ?? 4096;
  const checksums = o.checksums ?? ['md5sum', 'sha1sum'];
  const log = o.log ?? (() => {});
  const dir = o.dir;
  const put = (f: string, data: string | Buffer) => writeFileSync(join(dir, f), data);
  const diskSize = statSync(o.disk).size;
  const ocsLog: string[] = [];
  const say = (s: string) => {
    ocsLog.push(s);
    log(s + '\n');
  };

  // partition table
  const sf = await o.run(['sfdisk', '--json', o.disk], { capture: true, allowFailure: true });
  if (sf.code !== 0) throw new KilnError(`${o.disk}: no msdos or GPT partition table (sfdisk: ${sf.stderr.trim() || 'no table'})`);
  const table = (JSON.parse(sf.stdout) as { partitiontable: SfdiskTable }).partitiontable;
  if ((table.sectorsize ?? SECTOR) !== SECTOR) throw new KilnError(`${o.disk}: sector size ${table.sectorsize} is not supported (512 only)`);
  const label = table.label === 'gpt' ? 'gpt' : 'msdos';
  const numberOf = (node: string) => {
    const m = /(\d+)$/.exec(node.slice(o.disk.length));
    if (!node.startsWith(o.disk) || !m) throw new KilnError(`${o.disk}: cannot read partition number of '${node}'`);
    return Number(m[1]);
  };
  say(`Starting kiln clonezilla-image at ${dateFT(o.sourceDateEpoch)}...`);
  say(`The selected devices: ${dev}`);

  put('disk', `${dev}\n`);

  // sfdisk -d with device names rewritten
  const dump = await o.run(['sfdisk', '-d', o.disk], { capture: true });
  const ptSf = dump.stdout
    .split('\n')
    .map((l) => {
      if (l.startsWith('device: ')) return `device: /dev/${dev}`;
      if (l.startsWith(o.disk)) {
        const m = /^(\S+)(\s+:.*)$/.exec(l);
        if (m) return `/dev/${partName(dev, numberOf(m[1]!))}${m[2]}`;
      }
      return l;
    })
    .join('\n');
  put(`${dev}-pt.sf`, ptSf);
  // CHS geometry as output_HD_CHS reads it from sfdisk -G
  const geo = await o.run(['sfdisk', '-G', o.disk], { capture: true, allowFailure: true });
  const g = (w: string) => new RegExp(`(\\d+) ${w}`).exec(geo.stdout)?.[1] ?? '';
  put(`${dev}-chs.sf`, `cylinders=${g('cylinders')}\nheads=${g('heads')}\nsectors=${g('sectors')}\n`);
  // parted listings
  for (const [unit, suffix] of [['s', ''], ['compact', '.compact']] as const) {
    const p = await o.run(['parted', '-s', o.disk, 'unit', unit, 'print'], { capture: true, env: { LC_ALL: 'C' } });
    put(`${dev}-pt.parted${suffix}`, p.stdout.split('\n').map((l) => l.replace(/^Disk \/.*(: +[0-9.]+[A-Za-z]*)$/, `Disk /dev/${dev}$1`)).join('\n'));
  }
  put(`${dev}-mbr`, readBytes(o.disk, 0, SECTOR));

  const parts = table.partitions
    .map((p) => ({ ...p, number: numberOf(p.node) }))
    .sort((a, b) => a.number - b.number);
  if (label === 'gpt') {
    say(`Saving the primary GPT of ${dev} as ${dev}-gpt-1st by dd...`);
    put(`${dev}-gpt-1st`, readBytes(o.disk, 0, 34 * SECTOR));
    const sectors = Math.floor(diskSize / SECTOR);
    say(`Saving the secondary GPT of ${dev} as ${dev}-gpt-2nd by dd...`);
    // ocs-sr: dd skip=$((sectors-33+1)) count=33, i.e. the last 32 sectors (the backup entries and header)
    put(`${dev}-gpt-2nd`, readBytes(o.disk, (sectors - 33 + 1) * SECTOR, 33 * SECTOR));
    await o.run(['sgdisk', '-b', join(dir, `${dev}-gpt.gdisk`), o.disk], { capture: true });
    const sp = await o.run(['sgdisk', '-p', o.disk], { capture: true, env: { LC_ALL: 'C' } });
    put(
      `${dev}-gpt.sgdisk`,
      sp.stdout
        .split('\n')
        .map((l) => l.replace(/^Disk \/.*(: \d+ sectors, .*)$/, `Disk /dev/${dev}$1`))
        .map((l) => l.replace(/^Sector size \(logical\): (\d+) bytes$/, 'Sector size (logical/physical): $1/$1 bytes'))
        .join('\n'),
    );
  } else {
    const first = Math.min(...parts.map((p) => p.start));
    const hidden = first - 1;
    if (parts.length && hidden > 0 && hidden < (HIDDEN_DATA_LIMIT * MiB) / SECTOR) {
      say(`Saving the hidden data between MBR (1st sector, i.e. 512 bytes) and 1st partition: dd if=/dev/${dev} of=${dev}-hidden-data-after-mbr skip=1 bs=512 count=${hidden}`);
      put(`${dev}-hidden-data-after-mbr`, readBytes(o.disk, SECTOR, hidden * SECTOR));
    }
  }

  // partitions (msdos extended containers hold no file system: ocs saves none)
  const infos: PartitionInfo[] = [];
  const blkidLines: string[] = [];
  const ptuuid = label === 'gpt' ? table.id.toLowerCase() : table.id.replace(/^0x/, '').toLowerCase();
  blkidLines.push(`/dev/${dev}: PTUUID="${ptuuid}" PTTYPE="${label === 'gpt' ? 'gpt' : 'dos'}"`);
  for (const p of parts) {
    const name = partName(dev, p.number);
    const start = p.start * SECTOR;
    const size = p.size * SECTOR;
    if (label === 'msdos' && ['5', 'f', '85'].includes(p.type.toLowerCase())) {
      say(`${name} is an extended partition: its table is in ${dev}-pt.sf, no image.`);
      continue;
    }
    if (start + size > diskSize) throw new KilnError(`${o.disk}: partition ${p.number} ends at byte ${start + size}, beyond the end of the file (${diskSize} bytes)`);
    const tags = await probe(o, start, size);
    const type = tags.find(([k]) => k === 'TYPE')?.[1] ?? '';
    const fs = PARTCLONE_FS.includes(type) ? type : 'dd';
    const prefix = `${name}.${fs}-ptcl-img.${COMP_SUFFIX[comp]}`;
    infos.push({ name, number: p.number, start, size, fs, blkidType: type, image: prefix, files: [] });
    const partTags = tags.filter(([k]) => !['DEVNAME', 'VERSION', 'USAGE'].includes(k) && !k.startsWith('PART_ENTRY_'));
    if (label === 'gpt') {
      if (p.name) partTags.push(['PARTLABEL', p.name]);
      partTags.push(['PARTUUID', (p.uuid ?? '').toLowerCase()]);
    } else {
      partTags.push(['PARTUUID', `${ptuuid}-${p.number.toString(16).padStart(2, '0')}`]);
    }
    blkidLines.push(`/dev/${name}: ${partTags.map(([k, v]) => `${k}="${v}"`).join(' ')}`);
  }
  if (!infos.length) throw new KilnError(`${o.disk}: the partition table has no partition to save`);
  put('parts', `${infos.map((p) => p.name).join(' ')}\n`);

  for (const p of infos) {
    const src = join(o.work, `${p.name}.part`);
    say(`Starting saving /dev/${p.name} as ${p.image}...`);
    say(`/dev/${p.name} filesystem: ${p.fs === 'dd' ? (p.blkidType || 'none') + ' (raw copy by partclone.dd)' : p.fs}.`);
    await o.run(['dd', `if=${o.disk}`, `of=${src}`, 'bs=1M', 'iflag=skip_bytes,count_bytes', `skip=${p.start}`, `count=${p.size}`, 'conv=sparse', 'status=none']);
    const argv = p.fs === 'dd'
      ? ['partclone.dd', '-z', PARTCLONE_Z, '--buffer_size', PARTCLONE_DD_BS, '-s', `/dev/${p.name}`, '--output', '-']
      : [`partclone.${p.fs}`, '-z', PARTCLONE_Z, '-c', '-s', `/dev/${p.name}`, '--output', '-'];
    say(`Running: ${argv.join(' ')} | ${COMPRESSOR[comp].join(' ')}${split ? ` | split -a 2 -b ${split}MB - ${p.image}.` : ` > ${p.image}`}`);
    const pclog = join(o.work, `${p.name}.partclone.log`);
    await o.run(['bash', '-c', PIPELINE], {
      env: { KZ_FS: p.fs, KZ_SRC: src, KZ_LOG: pclog, KZ_COMP: comp, KZ_SPLIT: String(split), KZ_PREFIX: join(dir, p.image), KZ_Z: PARTCLONE_Z, KZ_DD_BS: PARTCLONE_DD_BS, KZ_JOBS: String(Math.max(2, Math.floor(o.jobs ?? 2))), LC_ALL: 'C' },
    });
    rmSync(src, { force: true });
    // the deterministic lines of partclone's report (no times or rates)
    if (existsSync(pclog)) {
      for (const l of readFileSync(pclog, 'utf8').split(/[\r\n]+/)) {
        if (/^(File system|Device size|Space in use|Free Space|Block size):/.test(l.trim())) say(l.trim());
      }
    }
    p.files = readdirSync(dir).filter((f) => f === p.image || (f.startsWith(`${p.image}.`) && /^[a-z]{2}$/.test(f.slice(p.image.length + 1)))).sort(byteSort);
    if (!p.files.length) throw new KilnError(`partclone wrote no image for ${p.name}`);
    say(`Finished saving /dev/${p.name} as ${p.image}`);
  }

  // listings (the source disk only: no host devices)
  const rows: string[][] = [['KNAME', 'NAME', 'SIZE', 'TYPE', 'FSTYPE', 'MOUNTPOINT', 'MODEL']];
  rows.push([dev, dev, lsblkSize(diskSize), 'disk', '', '', '']);
  infos.forEach((p, i) => rows.push([p.name, `${i === infos.length - 1 ? '`-' : '|-'}${p.name}`, lsblkSize(p.size), 'part', p.blkidType, '', '']));
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  put(
    'blkdev.list',
    rows.map((r) => r.map((v, c) => (c === r.length - 1 ? v : c === 2 ? v.padStart(widths[c]!) : v.padEnd(widths[c]!))).join(' ')).join('\n') + '\n',
  );
  put('blkid.list', blkidLines.join('\n') + '\n');
  put(
    'dev-fs.list',
    '# <Device name>   <File system>   <Size>\n# File system is got from ocs-get-dev-info. It might be different from that of blkid or parted.\n' +
      infos.map((p) => `/dev/${p.name} ${p.blkidType || 'raw'} ${lsblkSize(p.size)}\n`).join(''),
  );

  // checksums over what is there now (ocs: before the Info files and clonezilla-img)
  const summed = readdirSync(dir).sort(byteSort);
  for (const c of checksums) {
    say(`Generating ${SUM_FILE[c]} for image ${o.name}...`);
    put(SUM_FILE[c], summed.map((f) => `${sumFile(SUM_ALGO[c], join(dir, f))}  ${f}\n`).join(''));
  }

  const pc = await o.run(['partclone.ext4', '--version'], { capture: true, allowFailure: true });
  const partclone = /v?(\d+\.\d+\.\d+)/.exec(pc.stdout + pc.stderr)?.[1] ?? 'unknown';
  put('Info-saved-by-cmd.txt', `${o.savedBy ?? 'kiln clonezilla-image'} (as: ocs-sr -b -q2 -j2 ${comp === 'gzip' ? '-z1p' : comp === 'zstd' ? '-z9' : '-z0'} -i ${split} -sfsck -senc -p true savedisk ${o.name} ${dev})\n`);
  put('Info-packages.txt', `Image was saved by these Clonezilla-related packages:\n partclone-${partclone} kiln\n`);
  const bytesNow = () => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  put('Info-img-size.txt', `Image size (Bytes):\n${duSize(bytesNow())}\t/home/partimag/${o.name}\n`);
  say(`Ending kiln clonezilla-image at ${dateFT(o.sourceDateEpoch)}...`);
  const img =
    `This image was saved by Clonezilla at ${dateFT(o.sourceDateEpoch)}.\n` +
    'The log during saving:\n' +
    '----------------------------------------------------------\n' +
    ocsLog.join('\n') +
    '\n### End of log ###\n' +
    `### Image created time: ${dateCompact(o.sourceDateEpoch)}\n`;
  put('clonezilla-img', img);
  put('Info-img-id.txt', `# This checksum is only for identifying the image. Created by the command: sha512sum clonezilla-img\nIMG_ID=${createHash('sha512').update(img).digest('hex')}\n`);

  return {
    name: o.name,
    device: dev,
    diskSize,
    table: label,
    partitions: infos.map(({ name, number, start, size, fs, image, files }) => ({ name, number, start, size, fs, image, files })),
    compression: comp,
    splitSize: split,
    checksums: checksums.map((c) => SUM_FILE[c]),
    imageBytes: bytesNow(),
    partclone,
  };
}

/** A partition's size in bytes from DEV-pt.sf. */
function partitionBytes(dir: string, dev: string, part: string): number | undefined {
  const f = join(dir, `${dev}-pt.sf`);
  if (!existsSync(f)) return undefined;
  for (const l of readFileSync(f, 'utf8').split('\n')) {
    const m = /^\/dev\/(\S+)\s*:.*\bsize=\s*(\d+)/.exec(l);
    if (m && m[1] === part) return Number(m[2]) * SECTOR;
  }
  return undefined;
}

/**
 * kiln's own check of a Clonezilla image directory: the files ocs-sr needs are there, every
 * partition in `parts` has an image, MD5SUMS/SHA1SUMS/B2SUMS match, and each image stream
 * decompresses and passes `partclone.chkimg` (what ocs-chkimg runs). Throws with every problem.
 */
export async function verifyImage(dir: string, run: (argv: string[], opts?: RunOptions) => Promise<RunResult>): Promise<string[]> {
  const problems: string[] = [];
  const checked: string[] = [];
  const has = (f: string) => existsSync(join(dir, f));
  if (!has('disk') || !has('parts')) throw new KilnError(`${dir}: not a Clonezilla disk image (no 'disk' or 'parts' file)`);
  const dev = readFileSync(join(dir, 'disk'), 'utf8').trim();
  for (const f of [`${dev}-pt.sf`, `${dev}-mbr`]) if (!has(f)) problems.push(`${f} is missing`);
  for (const [c, f] of Object.entries(SUM_FILE) as Array<[Checksum, string]>) {
    if (!has(f)) continue;
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean)) {
      const m = /^([0-9a-f]+) [ *](.+)$/.exec(line);
      if (!m) {
        problems.push(`${f}: bad line '${line}'`);
        continue;
      }
      if (!has(m[2]!)) problems.push(`${f}: ${m[2]} is missing`);
      else if (sumFile(SUM_ALGO[c], join(dir, m[2]!)) !== m[1]) problems.push(`${f}: ${m[2]} does not match its checksum`);
    }
    checked.push(f);
  }
  const names = readdirSync(dir).sort(byteSort);
  for (const part of readFileSync(join(dir, 'parts'), 'utf8').trim().split(/\s+/).filter(Boolean)) {
    const img = names.find((n) => n.startsWith(`${part}.`) && /-ptcl-img\.(gz|zst|uncomp)(\.[a-z]{2})?$/.test(n));
    if (!img) {
      problems.push(`${part}: no partclone image (${part}.FS-ptcl-img.*)`);
      continue;
    }
    const prefix = img.replace(/\.[a-z]{2}$/, '');
    const files = names.filter((n) => n === prefix || (n.startsWith(`${prefix}.`) && /^[a-z]{2}$/.test(n.slice(prefix.length + 1))));
    const suf = /ptcl-img\.(gz|zst|uncomp)/.exec(prefix)![1]!;
    const comp = (Object.entries(COMP_SUFFIX).find(([, s]) => s === suf)![0]) as Compression;
    // the decompressor is one of kiln's fixed commands; the file names are arguments
    const stream = `cd "$KZ_DIR" && cat -- "$@" | ${DECOMPRESSOR[comp].join(' ')}`;
    if (/\.dd-ptcl-img\./.test(prefix)) {
      // partclone.dd writes the raw bytes (ocs-chkimg skips these): the stream must decompress to the partition's size
      const want = partitionBytes(dir, dev, part);
      const r = await run(['bash', '-c', `set -o pipefail; ${stream} | wc -c`, 'chk', ...files], { env: { KZ_DIR: dir, LC_ALL: 'C' }, capture: true, allowFailure: true });
      const got = Number(r.stdout.trim());
      if (r.code !== 0) problems.push(`${part}: ${files.join(' ')}: does not decompress: ${r.stderr.trim().split('\n').slice(-2).join('; ')}`);
      else if (want !== undefined && got !== want) problems.push(`${part}: ${files.join(' ')}: ${got} bytes, the partition has ${want}`);
      else checked.push(`${part} (raw, ${got} bytes)`);
      continue;
    }
    const r2 = await run(['bash', '-c', `set -o pipefail; ${stream} | partclone.chkimg -s - -L /dev/null`, 'chk', ...files], {
      env: { KZ_DIR: dir, LC_ALL: 'C' },
      capture: true,
      allowFailure: true,
    });
    if (r2.code !== 0) problems.push(`${part}: ${files.join(' ')}: partclone.chkimg failed: ${(r2.stderr + r2.stdout).split('\n').filter((l) => /error|fail|crc|corrupt|unexpected/i.test(l)).slice(-3).join('; ') || `exit ${r2.code}`}`);
    else checked.push(`${part} (partclone.chkimg)`);
  }
  if (problems.length) throw new KilnError(`Clonezilla image ${dir} is damaged:\n  ${problems.join('\n  ')}`);
  return checked;
}
