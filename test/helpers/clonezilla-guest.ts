/**
 * A "restore guest": Debian's own Clonezilla (`ocs-sr restoredisk`) run inside a QEMU guest,
 * restoring a Clonezilla image directory onto a disk file. The host kernel has no partition
 * parsers, so ocs-sr cannot restore onto host loop devices; the guest kernel has them.
 *
 * Guest (direct kernel + initrd boot, no bootloader):
 *   kernel   the cached Debian kernel (src/vm/kernel.ts)
 *   initrd   busybox + virtio/ext4 modules: mounts the root disk, bind-mounts /proc /sys /dev,
 *            then `chroot /newroot /kiln/restore.sh` and reports its status via isa-debug-exit
 *   vda      the target disk (the file to restore onto)
 *   vdb      root file system: ext4 made (mke2fs -d) from a kiln:chroot tarball that holds
 *            clonezilla partclone drbl parted gdisk pigz zstd udev (RESTORE_GUEST_PACKAGES);
 *            cached by the tarball's SHA-256 in CACHE/clonezilla-guest/
 *   images   imageRoot (holding NAME/) mounted at /home/partimag: a read-only virtio-9p share
 *            (default), or an ext4 copy attached as vdc (imageTransport = 'disk')
 * In the guest: systemd-udevd + trigger/settle, then
 *   ocs-sr -b -nogui -e1 auto -e2 -r -j2 -k0 -scr -p true restoredisk NAME vda </dev/null
 */

import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../../src/lib/errors.js';
import { run } from '../../src/lib/exec.js';
import { buildInitrd } from '../../src/vm/initrd.js';
import type { Kernel } from '../../src/vm/kernel.js';
import { bootVm, exitError, type VmDisk } from '../../src/vm/qemu.js';
import { hashFile } from '../../src/lib/hash.js';

/** packages a kiln:chroot needs to be a restore guest (variant minbase) */
export const RESTORE_GUEST_PACKAGES = ['clonezilla', 'partclone', 'drbl', 'parted', 'gdisk', 'pigz', 'zstd', 'udev', 'kmod', 'e2fsprogs', 'dosfstools', 'bc', 'procps', 'gawk', 'util-linux', 'fdisk'];

/** the default ocs-sr options for an unattended restore of a whole disk */
export const OCS_RESTORE_OPTIONS = ['-b', '-nogui', '-e1', 'auto', '-e2', '-r', '-j2', '-k0', '-scr', '-p', 'true'];
/** faster under TCG: no partition growing (-r) and none of the post-restore fix-ups of the
 *  restored Linux (initramfs, syslinux, udev records, EFI NVRAM); the restored bytes are the same */
export const OCS_RESTORE_FAST = ['-b', '-nogui', '-e1', 'auto', '-e2', '-j2', '-k0', '-scr', '-iui', '-ius', '-irhr', '-iefi', '-p', 'true'];

const MiB = 1024 * 1024;

export interface RestoreOptions {
  /** kiln:chroot tarball (rootfs.tar) with RESTORE_GUEST_PACKAGES */
  rootfsTar: string;
  kernel: Kernel;
  /** directory holding the image directory NAME/ (e.g. ${part:location}/image) */
  imageRoot: string;
  name: string;
  /** disk file to restore onto (raw); must exist (e.g. blankDisk()) */
  target: string;
  cacheDir: string;
  /** scratch directory */
  work: string;
  serialLog: string;
  /** ocs-sr options (default OCS_RESTORE_OPTIONS) */
  ocsOptions?: string[];
  timeoutMs?: number;
  memoryMiB?: number;
  /** how the image directory reaches the guest: '9p' (a read-only virtio-9p share, default) or 'disk' (an ext4 copy as vdc) */
  imageTransport?: '9p' | 'disk';
  /** guest CPUs (default 2: TCG runs them in parallel threads) */
  cpus?: number;
  log?: (s: string) => void;
  signal?: AbortSignal;
}

export interface RestoreResult {
  seconds: number;
  /** ocs-sr's exit status in the guest */
  status: number;
  console: string;
}

/** du-like size of a directory tree in bytes (apparent sizes). */
async function treeBytes(dir: string): Promise<number> {
  const r = await run(['du', '-sb', dir], { capture: true });
  return Number(r.stdout.split(/\s/)[0]);
}

/** The restore guest's root disk (ext4 from the chroot tarball), cached by the tarball's hash. */
export async function restoreGuestRootDisk(rootfsTar: string, cacheDir: string, log?: (s: string) => void): Promise<string> {
  if (!existsSync(rootfsTar)) throw new KilnError(`restore guest: chroot tarball ${rootfsTar} not found`);
  const key = (await hashFile(rootfsTar)).slice(0, 32);
  const dir = join(cacheDir, 'clonezilla-guest');
  const img = join(dir, `root-${key}.ext4`);
  if (existsSync(img)) return img;
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `tmp-${process.pid}-${Date.now()}`);
  const tree = join(tmp, 'root');
  mkdirSync(tree, { recursive: true });
  try {
    await run(['tar', '-x', '--numeric-owner', '--same-permissions', '-f', rootfsTar, '-C', tree], { log });
    mkdirSync(join(tree, 'home/partimag'), { recursive: true });
    mkdirSync(join(tree, 'kiln'), { recursive: true });
    const bytes = await treeBytes(tree);
    const size = Math.ceil((bytes * 1.3 + 256 * MiB) / MiB);
    const out = join(tmp, 'root.ext4');
    await run(['mke2fs', '-q', '-t', 'ext4', '-L', 'kiln-restore', '-d', tree, out, `${size}M`], { log, env: { E2FSPROGS_FAKE_TIME: '1700000000' } });
    renameSync(out, img);
    log?.(`# restore guest root disk ${img} (${size} MiB)\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return img;
}

const INIT = `# kiln restore guest: root on vdb, images on vdc, target vda
mkdir -p /newroot
mount -t ext4 /dev/vdb /newroot || { echo "KILN-RESTORE: cannot mount the root disk"; exit 90; }
if [ -e /sys/bus/virtio/drivers/9pnet_virtio ] && grep -q partimag /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null; then
  mount -t 9p -o trans=virtio,version=9p2000.L,ro partimag /newroot/home/partimag || { echo "KILN-RESTORE: cannot mount the image share"; exit 91; }
else
  mount -t ext4 /dev/vdc /newroot/home/partimag || { echo "KILN-RESTORE: cannot mount the image disk"; exit 91; }
fi
mount --bind /proc /newroot/proc
mount --bind /sys /newroot/sys
mount --bind /dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/run /newroot/tmp
mount -t devpts devpts /newroot/dev/pts
[ -e /newroot/dev/fd ] || ln -s /proc/self/fd /newroot/dev/fd
mount -t tmpfs tmpfs /newroot/run
mount -t tmpfs tmpfs /newroot/tmp
mkdir -p /newroot/kiln && cp /kiln/restore.sh /kiln/name /kiln/ocs-options /newroot/kiln/
chroot /newroot /bin/bash /kiln/restore.sh
rc=$?
sync
umount /newroot/home/partimag 2>/dev/null
exit $rc
`;

const RESTORE = `#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C TERM=dumb
/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1
udevadm trigger >/dev/null 2>&1
udevadm settle --timeout=30 >/dev/null 2>&1
echo "KILN-RESTORE-START $(cat /kiln/name)"
t0=$(date +%s)
# every console line stamped with the seconds since the start (bash builtins: no fork per line)
ocs-sr $(cat /kiln/ocs-options) restoredisk "$(cat /kiln/name)" vda </dev/null 2>&1 | while IFS= read -r l; do printf '[%4d] %s\n' $(( EPOCHSECONDS - t0 )) "$l"; done
rc=\${PIPESTATUS[0]}
sync
echo "KILN-RESTORE-DONE rc=$rc seconds=$(( $(date +%s) - t0 ))"
exit $rc
`;

/** Restore image NAME from imageRoot onto the target disk file inside a QEMU guest. */
export async function restoreInGuest(o: RestoreOptions): Promise<RestoreResult> {
  const log = o.log ?? (() => {});
  if (!existsSync(join(o.imageRoot, o.name, 'disk'))) throw new KilnError(`restore guest: ${join(o.imageRoot, o.name)} is not a Clonezilla disk image`);
  const root = await restoreGuestRootDisk(o.rootfsTar, o.cacheDir, log);
  mkdirSync(o.work, { recursive: true });
  // the image repository: a read-only 9p share of imageRoot (no block device for ocs-sr to probe:
  // its device scan is the slowest part under TCG), or an ext4 disk (vdc) made from it
  const share = (o.imageTransport ?? '9p') === '9p';
  const disks: VmDisk[] = [{ file: o.target }, { file: root, snapshot: true }];
  const extraArgs: string[] = [];
  if (share) {
    if (o.imageRoot.includes(',')) throw new KilnError(`restore guest: the image directory path may not contain ',' (QEMU -virtfs): ${o.imageRoot}`);
    extraArgs.push('-virtfs', `local,path=${o.imageRoot},mount_tag=partimag,security_model=none,readonly=on`);
  } else {
    const repo = join(o.work, 'partimag.ext4');
    const bytes = await treeBytes(o.imageRoot);
    await run(['mke2fs', '-q', '-t', 'ext4', '-d', o.imageRoot, repo, `${Math.ceil((bytes * 1.2 + 32 * MiB) / MiB)}M`], { log });
    disks.push({ file: repo });
  }
  // the guest's scripts come in the initrd and are copied onto the (snapshot) root disk at boot
  const initrd = join(o.work, 'restore-initrd.gz');
  buildInitrd(initrd, {
    init: INIT,
    preamble: true,
    modules: ['virtio_blk', 'ext4', 'crc32c_generic', ...(share ? ['9pnet_virtio', '9p'] : [])],
    kernel: o.kernel,
    files: [
      { to: '/kiln/restore.sh', content: RESTORE, mode: 0o755 },
      { to: '/kiln/name', content: o.name + '\n' },
      { to: '/kiln/ocs-options', content: (o.ocsOptions ?? OCS_RESTORE_OPTIONS).join(' ') + '\n' },
    ],
  });
  const t0 = Date.now();
  const vm = bootVm({
    kernel: o.kernel.vmlinuz,
    initrd,
    append: 'console=ttyS0 panic=-1 quiet',
    disks,
    extraArgs,
    memory: o.memoryMiB ?? 768,
    cpus: o.cpus ?? 2,
    timeoutMs: o.timeoutMs ?? 600_000,
    serialLog: o.serialLog,
    name: 'clonezilla-restore',
    signal: o.signal,
    log,
  });
  const x = await vm.exited;
  const seconds = (Date.now() - t0) / 1000;
  const err = exitError(vm, x);
  if (err) throw err;
  return { seconds, status: x.debugExit ?? -1, console: vm.output() };
}

/** size check helper for callers: the target must hold the source disk */
export function targetBigEnough(target: string, diskSize: number): boolean {
  return statSync(target).size >= diskSize;
}
