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
import { KilnError } from './errors.js';
import type { RunOptions, RunResult } from './exec.js';

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
}

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

export async function addEfiBoot(o: EfiBootOptions): Promise<EfiBoot> {
  checkEfiTools();
  if (!safePath(o.findFile)) throw new KilnError(`addEfiBoot: findFile must be an absolute plain path, got '${o.findFile}'`);
  const grubDir = join(o.tree, 'boot', 'grub');
  mkdirSync(grubDir, { recursive: true });
  writeFileSync(join(grubDir, 'grub.cfg'), o.grubCfg);
  mkdirSync(o.work, { recursive: true });
  const early = join(o.work, 'grub-early.cfg');
  writeFileSync(
    early,
    `search --no-floppy --set=root --file ${o.findFile}\nset prefix=($root)/boot/grub\nconfigfile ($root)/boot/grub/grub.cfg\n`,
  );
  const efi = join(o.work, 'bootx64.efi');
  rmSync(efi, { force: true });
  await o.run(['grub-mkimage', '-O', 'x86_64-efi', '-d', GRUB_EFI_DIR, '-o', efi, '-p', '/boot/grub', '-c', early, ...GRUB_MODULES]);
  // the same file on the ISO (EFI/boot) for firmware that reads the ISO 9660 tree, and in the FAT image
  mkdirSync(join(o.tree, 'EFI', 'boot'), { recursive: true });
  writeFileSync(join(o.tree, 'EFI', 'boot', 'bootx64.efi'), readFileSync(efi));
  utimesSync(efi, o.sourceDateEpoch, o.sourceDateEpoch);

  const img = join(grubDir, 'efi.img');
  rmSync(img, { force: true });
  // room for the loader plus FAT overhead, in KiB, rounded up to 1 MiB
  const kib = Math.ceil((statSync(efi).size / 1024 + 512) / 1024) * 1024;
  const volid = createHash('sha256').update(readFileSync(efi)).digest('hex').slice(0, 8);
  await o.run(['mkfs.fat', '--invariant', '-i', volid, '-n', 'KILN_EFI', '-C', img, String(kib)]);
  const env = { SOURCE_DATE_EPOCH: String(o.sourceDateEpoch), MTOOLS_SKIP_CHECK: '1' };
  await o.run(['mmd', '-i', img, '::/EFI', '::/EFI/boot'], { env });
  await o.run(['mcopy', '-m', '-i', img, efi, '::/EFI/boot/bootx64.efi'], { env });
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
