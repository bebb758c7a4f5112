/**
 * Host tools kiln calls, and the Debian package that provides each.
 * `kiln doctor` reports them; recipes call requireTool() before running one.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { MissingToolError } from './errors.js';

/** command -> Debian package (bookworm) */
export const TOOL_PACKAGES: Record<string, string> = {
  sh: 'dash',
  bash: 'bash',
  tar: 'tar',
  make: 'make',
  gcc: 'gcc',
  cc: 'gcc',
  patch: 'patch',
  xz: 'xz-utils',
  zstd: 'zstd',
  gzip: 'gzip',
  pigz: 'pigz',
  'dpkg-deb': 'dpkg',
  dpkg: 'dpkg',
  'dpkg-buildpackage': 'dpkg-dev',
  'dpkg-source': 'dpkg-dev',
  'dpkg-scanpackages': 'dpkg-dev',
  'apt-ftparchive': 'apt-utils',
  'apt-get': 'apt',
  'apt-cache': 'apt',
  lintian: 'lintian',
  fakeroot: 'fakeroot',
  rpm: 'rpm',
  rpmbuild: 'rpm',
  rpmlint: 'rpmlint',
  createrepo_c: 'createrepo-c',
  dnf: 'dnf',
  gpg: 'gnupg',
  gpgconf: 'gpgconf',
  gpgv: 'gpgv',
  debsigs: 'debsigs',
  'debsig-verify': 'debsig-verify',
  mmdebstrap: 'mmdebstrap',
  debootstrap: 'debootstrap',
  docker: 'docker.io',
  dockerd: 'docker.io',
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  xorriso: 'xorriso',
  mksquashfs: 'squashfs-tools',
  sqfstar: 'squashfs-tools',
  sha256sum: 'coreutils',
  'mke2fs': 'e2fsprogs',
  sfdisk: 'fdisk',
  syslinux: 'syslinux',
  mcopy: 'mtools',
  mmd: 'mtools',
  'grub-mkimage': 'grub-common',
  'mkfs.fat': 'dosfstools',
  debugfs: 'e2fsprogs',
  openssl: 'openssl',
  setpriv: 'util-linux',
  'mkfs.vfat': 'dosfstools',
  dot: 'graphviz',
  hyperfine: 'hyperfine',
  diffoscope: 'diffoscope-minimal',
  dkms: 'dkms',
  partclone: 'partclone',
  'ocs-sr': 'clonezilla',
  'ocs-chkimg': 'clonezilla',
  'partclone.ext4': 'partclone',
  'partclone.vfat': 'partclone',
  'partclone.dd': 'partclone',
  'partclone.chkimg': 'partclone',
  sgdisk: 'gdisk',
  parted: 'parted',
  blkid: 'util-linux',
  dd: 'coreutils',
  split: 'coreutils',
  unshare: 'util-linux',
  chroot: 'coreutils',
  mount: 'mount',
  busybox: 'busybox-static',
  dumpe2fs: 'e2fsprogs',
  mtype: 'mtools',
  dump: 'dump',
  restore: 'dump',
  losetup: 'mount',
  git: 'git',
  curl: 'curl',
};

const whichCache = new Map<string, string | null>();

/** Absolute path of an executable on PATH, or null. */
export function which(cmd: string, path = process.env.PATH ?? ''): string | null {
  if (cmd.includes('/')) {
    try {
      accessSync(cmd, constants.X_OK);
      return cmd;
    } catch {
      return null;
    }
  }
  const key = `${path}\0${cmd}`;
  const hit = whichCache.get(key);
  if (hit !== undefined) return hit;
  let found: string | null = null;
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      found = p;
      break;
    } catch {
      /* next */
    }
  }
  whichCache.set(key, found);
  return found;
}

/** Throw MissingToolError (with the Debian package to install) unless cmd is on PATH. */
export function requireTool(cmd: string, part?: string): string {
  const p = which(cmd);
  if (!p) throw new MissingToolError(cmd, TOOL_PACKAGES[cmd] ?? cmd, part);
  return p;
}
