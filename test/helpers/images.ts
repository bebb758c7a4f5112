// Shared test fixtures for bootable images: a busybox root file system with the Debian kernel,
// and the customize hook that trims a Debian systemd image for fast boots under TCG (the hook's
// text is part of the chroot's cache key: keep it byte-for-byte stable, the tests share the chroot).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { moduleClosure, type Kernel } from '../../src/vm/kernel.js';

/** systemd units a throw-away test VM does not need (masked by BOOT_HOOK) */
export const MASKED = [
  'systemd-fsck-root.service', 'systemd-fsckd.service', 'systemd-modules-load.service', 'kmod-static-nodes.service',
  'modprobe@configfs.service', 'modprobe@dm_mod.service', 'modprobe@efi_pstore.service', 'modprobe@fuse.service', 'modprobe@loop.service',
  'systemd-binfmt.service', 'proc-sys-fs-binfmt_misc.automount', 'sys-kernel-debug.mount', 'sys-kernel-tracing.mount', 'sys-kernel-config.mount',
  'sys-fs-fuse-connections.mount', 'dev-hugepages.mount', 'dev-mqueue.mount', 'systemd-pstore.service', 'systemd-journal-flush.service',
  'systemd-random-seed.service', 'e2scrub_reap.service', 'getty-static.service', 'getty@tty1.service',
  'apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer', 'e2scrub_all.timer', 'fstrim.timer', 'systemd-tmpfiles-clean.timer',
];
export const BOOT_HOOK = [
  '#!/bin/sh',
  '# kiln test image: mask units a throw-away VM does not need, add a unit that prints a boot marker',
  'set -e',
  'cd "$TARGET/etc/systemd/system"',
  `for u in ${MASKED.join(' ')}; do ln -sf /dev/null "$u"; done`,
  "printf '%s\\n' '[Unit]' 'Description=kiln boot marker' '' '[Service]' 'Type=oneshot' 'StandardOutput=tty' 'TTYPath=/dev/ttyS0' \\",
  "  'ExecStart=/bin/sh -c \"echo KILN-SYSTEMD-BOOTED $(cat /etc/hostname)\"' '' '[Install]' 'WantedBy=multi-user.target' > kiln-marker.service",
  'mkdir -p multi-user.target.wants',
  'ln -sf ../kiln-marker.service multi-user.target.wants/kiln-marker.service',
  '',
].join('\n');

/** the Debian systemd chroot the boot tests share (same options, same cache entry): a config
 *  section as lines; the project must hold BOOT_HOOK as boot-hook.sh */
export const DEBIAN_BOOT_CHROOT = [
  '[debian]',
  'recipe = kiln:chroot',
  'suite = bookworm',
  'variant = minbase',
  'packages = systemd-sysv udev',
  'customize = boot-hook.sh',
];

export interface BusyboxRootfsOptions {
  kernel: Kernel;
  sourceDateEpoch: number;
  /** /etc/inittab */
  inittab: string;
  /** /etc/init.d/rcS (run by busybox init at boot) */
  rcS: string;
  /** further files: guest path -> content (mode 0644) */
  files?: Record<string, string>;
}

/** A busybox root file system tarball (static busybox and its applets, the Debian kernel in /boot,
 *  virtio/ext4 modules), reproducible: sorted, mtimes = SOURCE_DATE_EPOCH, numeric root owners. */
export function busyboxRootfs(dir: string, out: string, o: BusyboxRootfsOptions): string {
  rmSync(dir, { recursive: true, force: true });
  const put = (p: string, s: string, mode = 0o644) => {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), s);
    chmodSync(join(dir, p), mode);
  };
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const a of execFileSync('/bin/busybox', ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (a === 'bin/busybox') continue;
    mkdirSync(dirname(join(dir, a)), { recursive: true });
    symlinkSync('/bin/busybox', join(dir, a));
  }
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'root', 'run']) mkdirSync(join(dir, d), { recursive: true });
  put('etc/inittab', o.inittab);
  put('etc/init.d/rcS', o.rcS, 0o755);
  put('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
  put('etc/group', 'root:x:0:\n');
  put('etc/hostname', 'unnamed\n');
  for (const [p, c] of Object.entries(o.files ?? {})) put(p, c, p === 'etc/shadow' ? 0o640 : 0o644);
  mkdirSync(join(dir, 'boot'), { recursive: true });
  copyFileSync(o.kernel.vmlinuz, join(dir, `boot/vmlinuz-${o.kernel.version}`));
  for (const m of moduleClosure(o.kernel, ['virtio_pci', 'virtio_blk', 'ext4', 'crc32c_generic'])) {
    const t = join(dir, 'lib/modules', o.kernel.version, m);
    mkdirSync(dirname(t), { recursive: true });
    copyFileSync(join(o.kernel.modulesDir, m), t);
  }
  execFileSync('tar', ['--sort=name', `--mtime=@${o.sourceDateEpoch}`, '--owner=0', '--group=0', '--numeric-owner', '-cf', out, '-C', dir, '.']);
  return out;
}
