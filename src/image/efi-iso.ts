/**
 * UEFI boot for kiln's ISOs: GRUB (Debian's grub-efi-amd64-bin) as EFI/boot/bootx64.efi, inside
 * a FAT image that xorriso records as the EFI El Torito entry (and, with `-isohybrid-gpt-basdat`,
 * as the EFI system partition of the USB-stick view). Works next to an isolinux BIOS entry:
 *
 *   const efi = await addEfiBoot({ tree, grubCfg, findFile: '/kiln/recovery.env', ... });
 *   xorriso -as mkisofs ... -b isolinux/isolinux.bin ... ${efi.xorrisoArgs} tree
 *
 * Reproducible: `grub-mkimage` writes no dates; the FAT image is made by `mkfs.fat --invariant`
 * with a volume id derived from the content, and mtools (which honours SOURCE_DATE_EPOCH) copies
 * files with their (clamped) dates. The GRUB image carries its modules and a small early config
 * that finds the medium by a file only this ISO has, then reads /boot/grub/grub.cfg from it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import type { RunOptions, RunResult } from '../lib/exec.js';

export const GRUB_EFI_DIR = '/usr/lib/grub/x86_64-efi';

/** GRUB modules built into bootx64.efi: ISO/FAT/partition access, search, menus, Linux loader,
 *  serial and screen consoles. */
export const GRUB_MODULES = [
  'iso9660', 'fat', 'part_gpt', 'part_msdos', 'search', 'search_fs_file', 'search_label', 'search_fs_uuid',
  'normal', 'configfile', 'linux', 'echo', 'test', 'sleep', 'reboot', 'halt', 'serial', 'terminal',
  'efi_gop', 'efi_uga', 'all_video', 'gfxterm', 'font', 'ls', 'cat', 'chain',
];

export interface EfiBootOptions {
  /** the ISO tree: EFI/boot/bootx64.efi, boot/grub/grub.cfg and boot/grub/efi.img are written into it */
  tree: string;
  /** GRUB's menu (boot/grub/grub.cfg on the ISO) */
  grubCfg: string;
  /** absolute path (on the ISO) of a file only this medium holds: GRUB's early config finds the
   *  medium with `search --file` */
  findFile: string;
  sourceDateEpoch: number;
  /** kiln's process runner (ctx.run) */
  run: (argv: string[], opts?: RunOptions) => Promise<RunResult>;
  /** scratch directory */
  work: string;
  /**
   * grub (default): GRUB built here by grub-mkimage as EFI/boot/bootx64.efi (no Secure Boot).
   * shim: Debian's signed chain for Secure Boot with the keys firmware ships (Microsoft's UEFI CA):
   *   shimx64.efi.signed as EFI/BOOT/BOOTX64.EFI, grubx64.efi.signed as EFI/BOOT/grubx64.efi and
   *   the small config that finds the medium as EFI/debian/grub.cfg (where the signed GRUB looks:
   *   its built-in prefix is /EFI/debian; EFI/BOOT/grub.cfg too, its $cmdpath fallback).
   * uki: `efiBinary` (a unified kernel image, already signed) as EFI/BOOT/BOOTX64.EFI, nothing else.
   */
  mode?: 'grub' | 'shim' | 'uki';
  /** the EFI binary for mode uki */
  efiBinary?: string;
}

export const SHIM_SIGNED = '/usr/lib/shim/shimx64.efi.signed';
export const GRUB_SIGNED = '/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed';
export const SYSTEMD_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';

export interface EfiBoot {
  /** the FAT image, relative to the tree */
  image: string;
  /** append after the BIOS El Torito arguments of `xorriso -as mkisofs` */
  xorrisoArgs: string[];
}

/** the tools UEFI boot needs, for error messages naming the package */
export function checkEfiTools(): void {
  if (!existsSync(join(GRUB_EFI_DIR, 'linux.mod'))) throw new KilnError(`${GRUB_EFI_DIR} is missing: install the Debian package grub-efi-amd64-bin (UEFI boot)`);
}

const safePath = (p: string) => /^\/[A-Za-z0-9._/-]+$/.test(p) && !p.includes('..');

/** the Debian packages Secure Boot with the distribution's keys needs */
export function checkSignedChain(): void {
  if (!existsSync(SHIM_SIGNED)) throw new KilnError(`${SHIM_SIGNED} is missing: install the Debian package shim-signed (secure-boot = yes)`);
  if (!existsSync(GRUB_SIGNED)) throw new KilnError(`${GRUB_SIGNED} is missing: install the Debian package grub-efi-amd64-signed (secure-boot = yes)`);
}

export async function addEfiBoot(o: EfiBootOptions): Promise<EfiBoot> {
  const mode = o.mode ?? 'grub';
  if (mode === 'grub') checkEfiTools();
  if (mode === 'shim') checkSignedChain();
  if (!safePath(o.findFile)) throw new KilnError(`addEfiBoot: findFile must be an absolute plain path, got '${o.findFile}'`);
  const grubDir = join(o.tree, 'boot', 'grub');
  mkdirSync(grubDir, { recursive: true });
  if (mode !== 'uki') writeFileSync(join(grubDir, 'grub.cfg'), o.grubCfg);
  mkdirSync(o.work, { recursive: true });
  const earlyCfg = `search --no-floppy --set=root --file ${o.findFile}\nset prefix=($root)/boot/grub\nconfigfile ($root)/boot/grub/grub.cfg\n`;
  const early = join(o.work, 'grub-early.cfg');
  writeFileSync(early, earlyCfg);
  // files of the EFI system partition: FAT path -> host file
  const files: Array<[string, string]> = [];
  if (mode === 'grub') {
    const efi = join(o.work, 'bootx64.efi');
    rmSync(efi, { force: true });
    await o.run(['grub-mkimage', '-O', 'x86_64-efi', '-d', GRUB_EFI_DIR, '-o', efi, '-p', '/boot/grub', '-c', early, ...GRUB_MODULES]);
    files.push(['EFI/boot/bootx64.efi', efi]);
  } else if (mode === 'shim') {
    files.push(['EFI/BOOT/BOOTX64.EFI', SHIM_SIGNED], ['EFI/BOOT/grubx64.efi', GRUB_SIGNED], ['EFI/BOOT/grub.cfg', early], ['EFI/debian/grub.cfg', early]);
  } else {
    if (!o.efiBinary || !existsSync(o.efiBinary)) throw new KilnError(`addEfiBoot: mode uki needs an existing efiBinary, got '${o.efiBinary}'`);
    files.push(['EFI/BOOT/BOOTX64.EFI', o.efiBinary]);
  }
  // the same files on the ISO (ISO 9660 tree) for firmware that reads it, and in the FAT image
  const stage = join(o.work, 'esp');
  rmSync(stage, { recursive: true, force: true });
  const volHash = createHash('sha256');
  for (const [to, from] of files) {
    const data = readFileSync(from);
    volHash.update(`${to}\0`).update(data);
    for (const root of [o.tree, stage]) {
      mkdirSync(join(root, to, '..'), { recursive: true });
      writeFileSync(join(root, to), data);
    }
    utimesSync(join(stage, to), o.sourceDateEpoch, o.sourceDateEpoch);
  }

  const img = join(grubDir, 'efi.img');
  rmSync(img, { force: true });
  // room for the files plus FAT overhead, in KiB, rounded up to 1 MiB
  const bytes = files.reduce((a, [to]) => a + statSync(join(stage, to)).size, 0);
  const kib = Math.ceil((bytes / 1024 + 512) / 1024) * 1024;
  const volid = volHash.digest('hex').slice(0, 8);
  await o.run(['mkfs.fat', '--invariant', '-i', volid, '-n', 'KILN_EFI', '-C', img, String(kib)]);
  const env = { SOURCE_DATE_EPOCH: String(o.sourceDateEpoch), MTOOLS_SKIP_CHECK: '1' };
  const dirs = [...new Set(files.flatMap(([to]) => to.split('/').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('/'))))].sort();
  await o.run(['mmd', '-i', img, ...dirs.map((d) => `::/${d}`)], { env });
  for (const [to] of files) await o.run(['mcopy', '-m', '-i', img, join(stage, to), `::/${to}`], { env });
  return {
    image: 'boot/grub/efi.img',
    xorrisoArgs: ['-eltorito-alt-boot', '-e', 'boot/grub/efi.img', '-no-emul-boot', '-isohybrid-gpt-basdat'],
  };
}

/** One GRUB menu entry. */
export interface GrubEntry {
  title: string;
  kernel: string;
  initrd: string;
  append: string;
}

/** a GRUB menu on the serial port and the screen, like kiln's isolinux menus */
export function grubMenu(o: { title: string; timeout: number; entries: GrubEntry[] }): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  let s = `serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n`;
  s += `set timeout=${o.timeout}\nset default=0\necho ${q(o.title)}\n\n`;
  for (const e of o.entries) {
    if (/[\n\r]/.test(e.title + e.kernel + e.initrd + e.append)) throw new KilnError('grubMenu: one line per value');
    s += `menuentry ${q(e.title)} {\n  linux ${e.kernel} ${e.append}\n  initrd ${e.initrd}\n}\n\n`;
  }
  return s;
}

/**
 * A unified kernel image (systemd-stub from systemd-boot-efi + kernel + initrd + command line),
 * made with objcopy the way systemd 252 documents it. Signing it (sbsign) makes the firmware check
 * the kernel, the initrd and the command line together.
 */
export async function buildUki(o: {
  out: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  osRelease: string;
  work: string;
  run: (argv: string[], opts?: RunOptions) => Promise<RunResult>;
}): Promise<void> {
  if (!existsSync(SYSTEMD_STUB)) throw new KilnError(`${SYSTEMD_STUB} is missing: install the Debian package systemd-boot-efi (secure-boot-key: unified kernel image)`);
  mkdirSync(o.work, { recursive: true });
  const cmd = join(o.work, 'cmdline.txt');
  const osrel = join(o.work, 'os-release');
  writeFileSync(cmd, o.cmdline);
  writeFileSync(osrel, o.osRelease);
  // section addresses after the stub's own (it ends below 0x20000); the kernel below the initrd
  const kernelSize = statSync(o.kernel).size;
  const initrdAt = 0x2000000 + Math.ceil(kernelSize / 0x100000) * 0x100000 + 0x100000;
  rmSync(o.out, { force: true });
  await o.run([
    'objcopy',
    '--add-section', `.osrel=${osrel}`, '--change-section-vma', '.osrel=0x20000',
    '--add-section', `.cmdline=${cmd}`, '--change-section-vma', '.cmdline=0x30000',
    '--add-section', `.linux=${o.kernel}`, '--change-section-vma', '.linux=0x2000000',
    '--add-section', `.initrd=${o.initrd}`, '--change-section-vma', `.initrd=0x${initrdAt.toString(16)}`,
    SYSTEMD_STUB, o.out,
  ]);
}

/**
 * sbsign `file` in place with a PEM key and certificate. An encrypted key is decrypted with the
 * passphrase from the environment variable `passEnv` into a 0600 file under `work` that is removed
 * right after signing; nothing of the key is logged (only its path).
 */
export async function sbsignFile(o: {
  file: string;
  key: string;
  cert: string;
  work: string;
  passEnv?: string;
  run: (argv: string[], opts?: RunOptions) => Promise<RunResult>;
}): Promise<void> {
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(readFileSync(o.key, 'utf8'));
  let key = o.key;
  const plain = join(o.work, `.sbkey-${process.pid}-${Date.now()}.pem`);
  mkdirSync(o.work, { recursive: true });
  try {
    if (encrypted) {
      if (!o.passEnv || process.env[o.passEnv] === undefined) throw new KilnError(`${o.key} is an encrypted key: set secure-boot-key-passphrase-env to the name of an environment variable holding its passphrase`);
      writeFileSync(plain, '', { mode: 0o600 });
      await o.run(['openssl', 'pkey', '-in', o.key, '-passin', `env:${o.passEnv}`, '-out', plain]);
      key = plain;
    }
    const signed = `${o.file}.signed`;
    rmSync(signed, { force: true });
    await o.run(['sbsign', '--key', key, '--cert', o.cert, '--output', signed, o.file]);
    await o.run(['sbverify', '--cert', o.cert, signed]);
    writeFileSync(o.file, readFileSync(signed));
    rmSync(signed, { force: true });
  } finally {
    rmSync(plain, { force: true });
  }
}
