/**
 * kiln:disk-image: a bootable raw disk image (BIOS, msdos or GPT) from a root file system
 * tarball, built on plain files by byte offset (see src/image/diskimage.ts). Boots in QEMU with
 * the firmware (no -kernel): syslinux -> kernel + small busybox initrd -> the rootfs's /sbin/init,
 * with the console on ttyS0.
 *
 *   [image]
 *   recipe = kiln:disk-image
 *   rootfs = ${bookworm:location}/rootfs.tar
 *   size = 2G
 *   partition-table = gpt
 *   hostname = demo
 *   root-password = demo           (optional; SHA-512 crypt in /etc/shadow)
 *   kernel = debian                (when the rootfs has no /boot/vmlinuz-*)
 *
 * Outputs: disk.img (or disk.qcow2 with format = qcow2), image.json (ids, partitions, kernel).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDiskImage, type PartitionTable } from '../image/diskimage.js';
import { debianKernel } from '../vm/kernel.js';
import type { OptionSpec, PartOptions, Recipe } from '../kind.js';

const MiB = 1024 * 1024;

/** A size option (typed: bytes) that must be a whole number of MiB. */
function size(o: PartOptions, name: 'size' | 'boot-size'): number {
  const n = o.typed(OPTIONS)[name];
  if (n % MiB) throw o.error(name, `${o.get(name)?.trim() || OPTIONS[name].default} is not a multiple of 1 MiB`);
  return n;
}

function bootloader(o: PartOptions): 'syslinux' | 'none' {
  const b = o.typed(OPTIONS).bootloader;
  if (b === 'syslinux' || b === 'extlinux') return 'syslinux';
  if (b === 'none') return 'none';
  if (b === 'grub') throw o.error('bootloader', "grub is not supported yet (grub-bios-setup needs a block device); use 'syslinux'");
  throw o.error('bootloader', `expected syslinux or none, got '${b}'`);
}

const OPTIONS = {
  rootfs: { type: 'path', description: 'root file system tarball (.tar, .tar.xz, .tar.zst), e.g. ${bookworm:location}/rootfs.tar', required: true },
  size: { type: 'size', min: 1024 * 1024, description: 'image size (multiple of 1 MiB)', default: '1G' },
  'partition-table': { type: 'enum', choices: ['msdos', 'gpt'], noun: 'partition table', description: 'msdos or gpt', default: 'msdos' },
  filesystem: { type: 'enum', choices: ['ext4'], noun: 'file system', description: 'root file system type (ext4)', default: 'ext4' },
  bootloader: { type: 'pattern', pattern: /^[a-z]+$/, expected: 'a boot loader name (syslinux or none)', description: 'syslinux (BIOS, also for GPT via gptmbr) or none', default: 'syslinux' },
  'boot-size': { type: 'size', min: 1024 * 1024, description: 'size of the FAT boot partition (kernel, initrd, syslinux)', default: '64M' },
  kernel: { type: 'pattern', pattern: /^debian(:\S+)?$/, expected: "'debian' or 'debian:KERNEL-RELEASE'", description: "'debian' or 'debian:6.1.0-N-amd64' (the cached Debian kernel) when the rootfs has no /boot/vmlinuz-*" },
  modules: { type: 'list', pattern: /^[A-Za-z0-9_-]+$/, expected: 'a kernel module name', description: 'extra kernel modules for the boot initrd (storage and ext4 drivers are always there)' },
  hostname: { type: 'pattern', pattern: /^[A-Za-z0-9][A-Za-z0-9.-]*$/, expected: 'a host name', description: 'written to /etc/hostname and /etc/hosts' },
  'root-password': { type: 'string', description: 'root password (hashed into /etc/shadow); unset: unchanged' },
  append: { type: 'string', description: 'extra kernel command line' },
  format: { type: 'enum', choices: ['raw', 'qcow2'], noun: 'format', description: 'raw or qcow2', default: 'raw' },
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'disk-image',
  version: '1',
  description: 'bootable raw disk image (BIOS; msdos or GPT; ext4 root; syslinux) from a rootfs tarball',
  options: OPTIONS,
  validate(ctx) {
    const o = ctx.options;
    const total = size(o, 'size');
    const boot = size(o, 'boot-size');
    if (total < boot + 32 * MiB) throw o.error('size', `too small for a ${boot / MiB} MiB boot partition and a root file system`);
    bootloader(o);
  },
  inputs(ctx) {
    return [ctx.options.typed(OPTIONS).rootfs];
  },
  tools: () => ['tar', 'sfdisk', 'mke2fs', 'debugfs', 'mkfs.vfat', 'syslinux', 'mcopy', 'openssl'],
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const k = v.kernel;
    const kernel = k
      ? await debianKernel({ cacheDir: ctx.cacheDir, version: k.slice('debian:'.length) || undefined, offline: ctx.offline, log: ctx.log, signal: ctx.signal })
      : undefined;
    const fmt = v.format;
    const raw = fmt === 'raw' ? join(ctx.staging, 'disk.img') : join(ctx.work, 'disk.img');
    const t0 = Date.now();
    const img = await buildDiskImage({
      out: raw,
      size: size(o, 'size'),
      rootfs: v.rootfs,
      work: ctx.work,
      table: v['partition-table'] satisfies PartitionTable,
      bootSize: size(o, 'boot-size'),
      bootloader: bootloader(o),
      kernel,
      hostname: v.hostname,
      rootPassword: o.has('root-password') ? o.get('root-password') : undefined,
      append: v.append,
      modules: v.modules,
      sourceDateEpoch: ctx.sourceDateEpoch,
      log: ctx.log,
      signal: ctx.signal,
    });
    let file = 'disk.img';
    if (fmt === 'qcow2') {
      file = 'disk.qcow2';
      await ctx.run(['qemu-img', 'convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, join(ctx.staging, file)]);
    }
    writeFileSync(
      join(ctx.staging, 'image.json'),
      JSON.stringify({ file, format: fmt, table: img.table, rootUuid: img.rootUuid, partitions: img.partitions, kernel: img.kernelVersion, append: img.append }, null, 2) + '\n',
    );
    ctx.log(`# disk image ${file}: ${img.table}, root UUID ${img.rootUuid}, kernel ${img.kernelVersion ?? '-'}, built in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  },
};
