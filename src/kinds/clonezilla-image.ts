/**
 * kiln:clonezilla-image: a Clonezilla image directory (what `ocs-sr savedisk` writes) from a raw
 * disk image file, read by byte offset (no loop devices, no partition devices):
 *
 *   [server-image]
 *   recipe = kiln:clonezilla-image
 *   disk = ${server-disk:location}/disk.img     (kiln:disk-image output, ganeti-os output, a file)
 *   name = dns-server                           (default: the part name)
 *   compression = gzip                          (gzip | zstd | none)
 *   split-size = 4096                           (MB per volume file .aa .ab ...; 0: one file)
 *   target-device-name = sda                    (device name used inside the image)
 *   checksums = md5sum sha1sum                  (MD5SUMS, SHA1SUMS, B2SUMS as ocs -gm/-gs/-gb)
 *
 * Output: image/NAME/ (the Clonezilla image) and kiln-image.json (see docs/clonezilla.md).
 * After writing, the image is checked like ocs-chkimg does (checksums, partclone.chkimg).
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveDisk, verifyImage, type Checksum, type Compression } from '../image/clonezilla.js';
import { COMPRESSIONS } from '../pkg/compress.js';
import type { OptionSpec, Recipe } from '../kind.js';

/** pigz -n, zstd or none: the package payload compressions but xz (Clonezilla images are not xz) */
const CLONEZILLA_COMPRESSIONS = COMPRESSIONS.filter((c) => c !== 'xz');
const CHECKSUMS: readonly Checksum[] = ['md5sum', 'sha1sum', 'b2sum'];

const OPTIONS = {
  disk: { type: 'path', description: 'disk image file (raw, or qcow2: converted first), e.g. ${disk:location}/disk.img', required: true },
  name: { type: 'pattern', pattern: /^[A-Za-z0-9][A-Za-z0-9._+-]*$/, expected: 'a usable image directory name (letters, digits, . _ + -)', description: 'image name (the directory image/NAME/); default the part name' },
  compression: { type: 'enum', choices: CLONEZILLA_COMPRESSIONS, noun: 'compression', description: 'gzip (pigz -n), zstd or none', default: 'gzip' },
  'split-size': { type: 'int', min: 0, description: 'volume size in MB (split -b NMB: .aa, .ab ...); 0: no split', default: '4096' },
  'target-device-name': { type: 'pattern', pattern: /^(\/dev\/)?[a-z][a-z0-9]*$/, expected: 'a disk name such as sda, vda or nvme0n1', description: 'disk name inside the image (DEV-pt.sf, DEVpN images)', default: 'sda' },
  checksums: { type: 'list', choices: CHECKSUMS, noun: 'checksum', description: 'md5sum sha1sum b2sum (MD5SUMS, SHA1SUMS, B2SUMS); empty for none', default: 'md5sum sha1sum' },
  verify: { type: 'bool', description: 'check the written image (checksums, partclone.chkimg)', default: 'true' },
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'clonezilla-image',
  version: '2', // 2: pigz -p with at least 2 threads (its -p 1 path writes other bytes)
  description: "Clonezilla image directory (ocs-sr savedisk format: partclone images, partition tables, Info files, checksums) from a raw disk image",
  options: OPTIONS,
  innerJobs: (ctx) => ctx.options.typed(OPTIONS).compression === 'gzip', // ctx.jobs: pigz threads
  validate(ctx) {
    const o = ctx.options;
    // without 'name', the part name is the image directory's name
    if (o.typed(OPTIONS).name === undefined && !OPTIONS.name.pattern.test(o.part)) throw o.error('name', `'${o.part}' is not a usable image directory name (letters, digits, . _ + -): set 'name'`);
  },
  inputs(ctx) {
    const d = ctx.options.typed(OPTIONS).disk;
    // a missing disk is reported by install() with file:line; a dependency's output does not exist at plan time
    return d && existsSync(d) ? [d] : [];
  },
  tools(ctx) {
    const c = ctx.options.typed(OPTIONS).compression;
    return ['sfdisk', 'sgdisk', 'parted', 'blkid', 'dd', 'split', 'partclone.ext4', 'partclone.vfat', 'partclone.dd', 'partclone.chkimg', ...(c === 'gzip' ? ['pigz'] : c === 'zstd' ? ['zstd'] : [])];
  },
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const disk = v.disk;
    if (!existsSync(disk)) throw o.error('disk', `${disk} does not exist`);
    if (!statSync(disk).isFile()) throw o.error('disk', `${disk} is not a regular file (a raw disk image is needed)`);
    let raw = disk;
    const magic = Buffer.alloc(4);
    const fd = openSync(disk, 'r');
    readSync(fd, magic, 0, 4, 0);
    closeSync(fd);
    if (magic.toString('latin1') === 'QFI\xfb') {
      // kiln:disk-image with format = qcow2: read through a raw copy
      raw = join(ctx.work, 'disk.raw');
      await ctx.run(['qemu-img', 'convert', '-q', '-f', 'qcow2', '-O', 'raw', disk, raw]);
    }
    const n = v.name ?? o.part;
    const dir = join(ctx.staging, 'image', n);
    mkdirSync(dir, { recursive: true });
    const t0 = Date.now();
    const m = await saveDisk({
      disk: raw,
      dir,
      name: n,
      device: v['target-device-name'].replace(/^\/dev\//, ''),
      compression: v.compression,
      splitMB: v['split-size'],
      checksums: v.checksums as Checksum[],
      work: ctx.work,
      sourceDateEpoch: ctx.sourceDateEpoch,
      run: ctx.run,
      log: ctx.log,
      savedBy: `kiln clonezilla-image, part ${ctx.part}`,
      jobs: ctx.jobs,
    }).catch((e: Error) => {
      throw o.error('disk', e.message);
    });
    const saved = (Date.now() - t0) / 1000;
    if (v.verify) {
      const checked = await verifyImage(dir, ctx.run);
      ctx.log(`# verified: ${checked.join(', ')}\n`);
    }
    writeFileSync(join(ctx.staging, 'kiln-image.json'), JSON.stringify(m, null, 2) + '\n');
    ctx.log(`# Clonezilla image ${n}: ${m.table}, ${m.partitions.map((p) => `${p.name} ${p.fs}`).join(', ')}; ${m.imageBytes} bytes, saved in ${saved.toFixed(1)} s, ${((Date.now() - t0) / 1000).toFixed(1)} s with the check\n`);
  },
};

export default recipe;
