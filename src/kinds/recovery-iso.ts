/**
 * kiln:recovery-iso: a bootable hybrid ISO (BIOS: isolinux; also a USB stick image) that restores
 * a Clonezilla image onto a machine's disk, unattended — Clonezilla's "recovery-iso-zip", built
 * offline from kiln parts:
 *
 *   [recovery]
 *   recipe = kiln:recovery-iso
 *   image = ${server-image:location}        (a kiln:clonezilla-image part: image/NAME/ + kiln-image.json)
 *   live = ${restore-live:location}          (kiln:chroot with clonezilla partclone drbl ...; or a tarball)
 *   target = auto                           (vda, sda, nvme0n1 ... or auto: the only disk that is not the
 *                                            medium nor the image medium and is large enough)
 *   secure-boot = no                        (yes: Debian's signed shim/GRUB/kernel; with secure-boot-key and
 *                                            secure-boot-cert: own keys, a signed unified kernel image)
 *   image-location = iso                    (or label:NAME: the image on a second medium labelled NAME)
 *   confirm = yes                           (ask on the console before writing; no: unattended)
 *   after = poweroff                        (poweroff | reboot | shell)
 *
 * ISO layout:
 *   isolinux/            isolinux.bin, ldlinux.c32, menu.c32, libutil.c32, isolinux.cfg (menu:
 *                        the restore entry names the image; a rescue-shell entry), serial console too
 *   live/vmlinuz         the Debian kernel (cached, src/vm/kernel.ts) or `kernel = ` release
 *   live/initrd.gz       busybox initrd (src/vm/initrd.ts): CD/USB/disk drivers, squashfs, overlay
 *   live/filesystem.squashfs   the live system: the chroot tarball as it is (sqfstar), cached
 *   home/partimag/NAME/  the Clonezilla image
 *   kiln/recovery.env    IMAGE_NAME, IMAGE_DEVICE, DISK_SIZE, KILN_ID; kiln/SHA256SUMS of the image
 *
 * Boot: initrd finds the medium holding kiln/recovery.env with its KILN_ID, mounts the squashfs
 * under a tmpfs overlay, chroots into it and runs the restore script, which checks EVERYTHING
 * before the first write (target exists, is not the boot medium, is large enough; every image
 * file against SHA256SUMS; confirmation), then runs Debian's Clonezilla:
 *   ocs-sr -b -nogui -e1 auto -e2 -j2 -k0 -scr -iui -ius -irhr -iefi -p true restoredisk NAME DEV
 * and verifies every restored partition (fsck for its type; SHA-256 of partclone's stream of the
 * restored partition against the image's, kiln/verify.list) before it reports success.
 * Messages go to the screen and the serial console; kiln_debug_exit=1 (tests) also reports the
 * status through QEMU's isa-debug-exit port.
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { walk } from '../lib/fsutil.js';
import type { BuildContext, PartOptions, OptionSpec, Recipe } from '../kind.js';
import { addEfiBoot, buildUki, grubMenu, sbsignFile } from '../image/efi-iso.js';
import { DECOMPRESSOR, PARTCLONE_DD_BS, PARTCLONE_Z, type Compression } from '../image/clonezilla.js';
import { buildInitrd } from '../vm/initrd.js';
import { debianKernel } from '../vm/kernel.js';
import { hashFile } from '../lib/hash.js';

const MB = 1000 * 1000;
const CD_BYTES = 700 * 1024 * 1024;
const DVD_BYTES = 4_700_000_000;

/** initrd modules: CD (ATA, AHCI, SCSI, virtio), USB sticks, NVMe and virtio disks, squashfs, overlay */
export const LIVE_MODULES = [
  'isofs', 'sr_mod', 'cdrom', 'ata_piix', 'ahci', 'sd_mod', 'virtio_pci', 'virtio_blk', 'virtio_scsi',
  'nvme', 'usb_storage', 'uas', 'xhci_pci', 'ehci_pci', 'squashfs', 'loop', 'overlay',
  // a second medium holding the image (image-location = label:NAME): ext4 or FAT
  'ext4', 'crc32c_generic', 'vfat', 'nls_cp437', 'nls_utf8',
];

/** ocs-sr restore options: batch, no GUI, partition table from the image, no post-restore fix-ups
 *  of the restored system (syslinux/grub/udev/initramfs), no power action (the ISO decides). */
export const OCS_OPTIONS = ['-b', '-nogui', '-e1', 'auto', '-e2', '-j2', '-k0', '-scr', '-iui', '-ius', '-irhr', '-iefi', '-p', 'true'];

interface ImageManifest {
  name: string;
  device: string;
  diskSize: number;
  table: string;
  partitions: Array<{ name: string; number: number; fs: string; size: number; files: string[] }>;
  compression?: Compression;
  imageBytes?: number;
}

/** image-location: on the ISO, or on a second medium with this file-system label */
function imageLocation(o: PartOptions): { label?: string } {
  const v = o.typed(OPTIONS)['image-location'];
  return v === 'iso' ? {} : { label: v.slice('label:'.length) };
}

/** Secure Boot: none, Debian's signed chain (shim, GRUB, kernel), or own keys (a signed unified kernel image) */
function secureBoot(o: PartOptions): { mode: 'none' | 'distribution' | 'own'; key?: string; cert?: string; passEnv?: string } {
  const v = o.typed(OPTIONS);
  const { 'secure-boot': sb, 'secure-boot-key': key, 'secure-boot-cert': cert, 'secure-boot-key-passphrase-env': passEnv } = v;
  if (sb === 'no') {
    if (key || cert) throw o.error(key ? 'secure-boot-key' : 'secure-boot-cert', 'needs secure-boot = yes');
    return { mode: 'none' };
  }
  if (v.uefi !== 'yes') throw o.error('secure-boot', 'needs uefi = yes');
  if (!key && !cert) return { mode: 'distribution' };
  if (!key || !cert) throw o.error(key ? 'secure-boot-cert' : 'secure-boot-key', 'own keys need both secure-boot-key (PEM private key) and secure-boot-cert (PEM certificate)');
  for (const [opt, f] of [['secure-boot-key', key], ['secure-boot-cert', cert]] as const) if (!existsSync(f) || !statSync(f).isFile()) throw o.error(opt, `${f} is not a file`);
  if (passEnv && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(passEnv)) throw o.error('secure-boot-key-passphrase-env', `not an environment variable name: '${passEnv}'`);
  return { mode: 'own', key, cert, passEnv };
}


function readManifest(o: PartOptions, loc: string): { manifest: ImageManifest; dir: string } {
  const mf = join(loc, 'kiln-image.json');
  if (!existsSync(loc)) throw o.error('image', `${loc} does not exist (expected a kiln:clonezilla-image part's location)`);
  if (!existsSync(mf)) throw o.error('image', `${loc} has no kiln-image.json: not the output of a kiln:clonezilla-image part`);
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(readFileSync(mf, 'utf8')) as ImageManifest;
  } catch (e) {
    throw o.error('image', `${mf}: ${(e as Error).message}`);
  }
  if (!manifest.name || !/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(manifest.name)) throw o.error('image', `${mf}: bad image name '${manifest.name}'`);
  if (!/^[a-z][a-z0-9]*$/.test(manifest.device ?? '')) throw o.error('image', `${mf}: bad device '${manifest.device}'`);
  if (!Number.isInteger(manifest.diskSize) || manifest.diskSize <= 0) throw o.error('image', `${mf}: bad diskSize`);
  const dir = join(loc, 'image', manifest.name);
  if (!existsSync(join(dir, 'disk')) || !existsSync(join(dir, 'parts'))) throw o.error('image', `${dir} is missing or not a Clonezilla disk image (no 'disk'/'parts')`);
  return { manifest, dir };
}

// ---- the scripts that run on the recovery medium -------------------------------------------------

/** initrd: find the medium, mount the live system, chroot into it, run the restore. PID 1. */
const INIT = `# kiln recovery medium: /init (after kiln's preamble: busybox, /proc /sys /dev, modules)
arg() { for a in $(cat /proc/cmdline); do case "$a" in "$1="*) echo "\${a#*=}";; esac; done; }
say() { echo "$*"; [ -c /dev/tty0 ] && echo "$*" > /dev/tty0 2>/dev/null; true; }
finish() {
  sync
  say "KILN-RECOVERY-STATUS $1"
  [ "$(arg kiln_debug_exit)" = 1 ] && kiln-exit "$1"
  case "$(arg kiln_after)" in
    reboot) say "kiln: rebooting"; sleep 3; reboot -f ;;
    shell) say "kiln: a shell (exit powers off)"; setsid cttyhack sh; poweroff -f ;;
    *) say "kiln: powering off"; sleep 3; poweroff -f ;;
  esac
  sleep 30
}
fail() { say "KILN-RECOVERY-ERROR: $1"; say "kiln: the target disk was not written."; finish "\${2:-1}"; }

. /kiln/id.env
say "KILN-RECOVERY-BOOT $KILN_ID"
# firmware and Secure Boot state, from the firmware's own variable (efivarfs) and the kernel's lockdown
fw=bios sb=n/a
if [ -d /sys/firmware/efi ]; then
  fw=uefi sb=disabled
  for m in /lib/modules/*/kernel/fs/efivarfs/efivarfs.ko; do [ -f "$m" ] && { insmod "$m" || say "kiln: insmod $m failed"; }; done
  grep -q efivarfs /proc/mounts || mount -t efivarfs efivarfs /sys/firmware/efi/efivars || say "kiln: cannot mount efivarfs"
  v=$(od -An -tu1 -j4 -N1 /sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c | tr -d ' ')
  case "$v" in
    1) sb=enabled ;;
    0) sb=disabled ;;
    # no efivarfs: what the kernel's EFI code read from the same variable at boot
    *) sb=$(dmesg | awk '/secureboot: Secure boot (enabled|disabled)/ { print $NF; exit }'); sb=\${sb:-unknown} ;;
  esac
fi
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
lockdown=$(awk '{ for (i = 1; i <= NF; i++) if (substr($i, 1, 1) == "[") print substr($i, 2, length($i) - 2) }' /sys/kernel/security/lockdown 2>/dev/null)
say "KILN-RECOVERY-FIRMWARE firmware=$fw secure-boot=$sb lockdown=\${lockdown:-unknown}"
mkdir -p /medium /live /rw /newroot
medium=
i=0
while [ -z "$medium" ] && [ $i -lt 30 ]; do
  for d in /dev/sr* /dev/vd? /dev/sd? /dev/nvme?n? /dev/hd?; do
    [ -b "$d" ] || continue
    mount -t iso9660 -o ro "$d" /medium 2>/dev/null || continue
    if [ -f /medium/kiln/recovery.env ] && grep -qx "KILN_ID=$KILN_ID" /medium/kiln/recovery.env; then medium=$d; break; fi
    umount /medium
  done
  [ -n "$medium" ] || { sleep 1; i=$((i + 1)); }
done
[ -n "$medium" ] || fail "the recovery medium (KILN_ID $KILN_ID) was not found" 90
say "kiln: recovery medium on $medium"
mount -t squashfs -o loop,ro /medium/live/filesystem.squashfs /live || fail "cannot mount the live system" 91
mount -t tmpfs -o size=75% tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/live,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "cannot mount the overlay" 92
mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/run /newroot/tmp /newroot/home/partimag /newroot/kiln /newroot/run/kiln/medium
mount --bind /proc /newroot/proc
mount --bind /sys /newroot/sys
mount --bind /dev /newroot/dev
mkdir -p /newroot/dev/pts
mount -t devpts devpts /newroot/dev/pts 2>/dev/null
[ -e /newroot/dev/fd ] || ln -s /proc/self/fd /newroot/dev/fd
mount -t tmpfs tmpfs /newroot/tmp
mount --bind /medium /newroot/run/kiln/medium
# ocs-sr writes next to the image (a converted copy when the target's name differs from the
# saved disk's): the read-only image gets a tmpfs layer
mkdir -p /rw/pi-upper /rw/pi-work
mount -t overlay overlay -o lowerdir=/medium/home/partimag,upperdir=/rw/pi-upper,workdir=/rw/pi-work /newroot/home/partimag || fail "cannot mount the image directory" 92
cp /kiln/restore.sh /newroot/kiln/restore.sh
echo "$medium" > /newroot/kiln/medium
echo "firmware=$fw secure-boot=$sb lockdown=\${lockdown:-unknown}" > /newroot/kiln/firmware
case "$(arg kiln_action)" in
  shell) say "kiln: rescue shell in the live system (exit powers off)"; setsid cttyhack chroot /newroot /bin/bash -l; finish 0 ;;
esac
chroot /newroot /bin/bash /kiln/restore.sh
rc=$?
sync
[ $rc = 0 ] && say "KILN-RECOVERY-DONE" || say "KILN-RECOVERY-FAILED status $rc"
finish $rc
`;

/** in the live system: checks, confirmation, ocs-sr, verification. Nothing is written before
 *  every check passed; success is only reported when the restored partitions verified. */
const RESTORE = `#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C TERM=\${TERM:-linux}
arg() { for a in $(cat /proc/cmdline); do case "$a" in "$1="*) echo "\${a#*=}";; esac; done; }
say() { echo "$*"; [ -c /dev/tty0 ] && echo "$*" > /dev/tty0 2>/dev/null; true; }
die() { say "KILN-RECOVERY-ERROR: $1"; say "kiln: the target disk was not written."; exit "\${2:-1}"; }
. /run/kiln/medium/kiln/recovery.env
whole() { local p; p=$(lsblk -ndo PKNAME "/dev/$1" 2>/dev/null); echo "\${p:-$1}"; }
medium=$(basename "$(cat /kiln/medium)")
medium_disk=$(whole "$medium")
say "KILN-RECOVERY-LIVE $(cat /kiln/firmware)"

/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1
udevadm trigger >/dev/null 2>&1
udevadm settle --timeout=30 >/dev/null 2>&1

# the image: on the recovery medium, or on a second medium found by its file-system label
image_disk=
if [ -n "\${IMAGE_LABEL:-}" ]; then
  dev=
  for i in 1 2 3 4 5 6 7 8 9 10; do
    dev=$(blkid -o device -t "LABEL=$IMAGE_LABEL" 2>/dev/null | head -n 1)
    [ -n "$dev" ] && break
    sleep 1; udevadm settle --timeout=5 >/dev/null 2>&1
  done
  if [ -z "$dev" ]; then
    labels=$(blkid -o value -s LABEL 2>/dev/null | tr '\\n' ' ' | sed 's/ $//')
    die "no file system labelled $IMAGE_LABEL holds the image $IMAGE_NAME (image-location = label:$IMAGE_LABEL); labels found: \${labels:-none}" 18
  fi
  image_disk=$(whole "$(basename "$dev")")
  mkdir -p /run/kiln/images /tmp/pi-upper /tmp/pi-work
  mount -o ro "$dev" /run/kiln/images || die "cannot mount $dev (label $IMAGE_LABEL)" 18
  [ -d "/run/kiln/images/$IMAGE_NAME" ] || die "$dev (label $IMAGE_LABEL) has no directory $IMAGE_NAME at its root" 18
  # ocs-sr writes next to the image: a tmpfs layer over the read-only medium
  mount -t overlay overlay -o lowerdir=/run/kiln/images,upperdir=/tmp/pi-upper,workdir=/tmp/pi-work /home/partimag || die "cannot mount the image directory" 92
  say "kiln: image $IMAGE_NAME on $dev (label $IMAGE_LABEL)"
fi

target=$(arg kiln_target); target=\${target:-auto}
if [ "$target" = auto ]; then
  # the only disk that is not the recovery medium, not the image medium and large enough
  all=$(lsblk -dnbo NAME,TYPE,SIZE | awk '$2 == "disk" && $1 !~ /^(loop|sr|ram|zram)/ { print $1 " " $3 }')
  cands=$(echo "$all" | awk -v m="$medium_disk" -v i="$image_disk" -v need="$DISK_SIZE" 'NF == 2 && $1 != m && $1 != i && $2 >= need { print $1 }' | tr '\\n' ' ' | sed 's/ $//')
  n=$(echo $cands | wc -w)
  [ "$n" -ge 1 ] || die "no target disk found (auto: a disk other than the recovery medium $medium_disk\${image_disk:+ and the image medium $image_disk} of at least $DISK_SIZE bytes; disks: $(echo $all))" 10
  [ "$n" -eq 1 ] || die "target = auto is ambiguous: $n candidate disks ($(for d in $cands; do printf '/dev/%s ' "$d"; done | sed 's/ $//')); set target to one of them" 17
  target=$cands
  say "kiln: target = auto chose /dev/$target (the only candidate)"
fi
[ -b "/dev/$target" ] || die "target disk /dev/$target does not exist" 11
[ "$target" != "$medium_disk" ] || die "target /dev/$target is the recovery medium itself" 12
[ "$target" != "$image_disk" ] || die "target /dev/$target holds the image (label $IMAGE_LABEL)" 12
size=$(blockdev --getsize64 "/dev/$target") || die "cannot read the size of /dev/$target" 13
[ "$size" -ge "$DISK_SIZE" ] || die "target disk /dev/$target is too small: $size bytes, the image $IMAGE_NAME needs $DISK_SIZE bytes" 14
say "kiln: checking the image $IMAGE_NAME (SHA-256 of every file)"
( cd /home/partimag && sha256sum --quiet --strict -c /run/kiln/medium/kiln/SHA256SUMS ) > /tmp/sums.log 2>&1 \\
  || { cat /tmp/sums.log; die "the image $IMAGE_NAME is corrupt (checksum mismatch, see above)" 15; }
say "KILN-RECOVERY-CHECKED image $IMAGE_NAME ($DISK_SIZE bytes) -> /dev/$target ($size bytes)"
if [ "$(arg kiln_confirm)" != no ]; then
  say ""
  say "All data on /dev/$target ($size bytes) will be replaced by the image $IMAGE_NAME."
  say "Type yes and Enter to restore, anything else to stop:"
  read -r answer < /dev/console || answer=
  [ "$answer" = yes ] || die "not confirmed" 16
fi
# ocs-sr's device cache (ocs-prep-cache: three ocs-get-dev-info runs per disk and partition, each a
# bash sourcing the 16,000 lines of ocs-functions) serves its menus; a batch restore onto a named
# disk does not need it, and under emulation it cost minutes. Clonezilla live's own config file:
mkdir -p /etc/ocs && echo 'use_dev_list_cache="no"' >> /etc/ocs/ocs-live.conf
say "KILN-RECOVERY-START $IMAGE_NAME -> /dev/$target"
t0=$(date +%s)
ocs-sr $OCS_OPTIONS restoredisk "$IMAGE_NAME" "$target" </dev/null
rc=$?
sync
say "kiln: ocs-sr finished with status $rc after $(( $(date +%s) - t0 )) s"
[ $rc = 0 ] || exit $rc

part() { case "$1" in *[0-9]) echo "\${1}p$2" ;; *) echo "$1$2" ;; esac; }
# test hook (kernel parameter kiln_test_corrupt=N:/path): flip the first data byte of a file in
# restored partition N, so that verification must fail
hook=$(arg kiln_test_corrupt)
if [ -n "$hook" ]; then
  p=/dev/$(part "$target" "\${hook%%:*}") f=\${hook#*:}
  blk=$(debugfs -R "bmap $f 0" "$p" 2>/dev/null | tail -n 1)
  bs=$(dumpe2fs -h "$p" 2>/dev/null | awk -F: '/^Block size/ { gsub(/ /, "", $2); print $2 }')
  if [ -n "$blk" ] && [ -n "$bs" ]; then
    off=$((blk * bs))
    b=$(dd if="$p" bs=1 skip="$off" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    printf "\\\\$(printf %o $(( b ^ 255 )))" | dd of="$p" bs=1 seek="$off" count=1 conv=notrunc 2>/dev/null
    sync; blockdev --flushbufs "$p"
    say "kiln: TEST HOOK flipped the byte at offset $off of $p ($f)"
  else say "kiln: TEST HOOK could not find $f on $p"; fi
fi

# verification: every restored partition against the image, before success is reported
say "kiln: verifying the restored partitions of /dev/$target"
blockdev --flushbufs "/dev/$target" 2>/dev/null; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
bad=0
while read -r num fs want; do
  [ -n "$num" ] || continue
  p=$(part "$target" "$num"); dev=/dev/$p
  if [ ! -b "$dev" ]; then say "KILN-RECOVERY-VERIFY $dev fs=$fs missing"; bad=$((bad + 1)); continue; fi
  case "$fs" in
    ext2|ext3|ext4) fsck=(e2fsck -fn "$dev") ;;
    vfat|fat12|fat16|fat32) fsck=(fsck.vfat -n "$dev") ;;
    *) fsck=() ;;
  esac
  fr=n/a
  if [ \${#fsck[@]} -gt 0 ]; then
    if "\${fsck[@]}" > "/tmp/fsck-$p.log" 2>&1; then fr=pass; else fr=FAIL; tail -n 5 "/tmp/fsck-$p.log"; fi
  fi
  # partclone's image of a partition has no dates or ids: capturing the restored partition again
  # gives the same stream as the image's (decompressed) partclone stream when every used block is right
  if [ "$fs" = dd ]; then got=$(partclone.dd -z "$PARTCLONE_Z" --buffer_size "$PARTCLONE_DD_BS" -L "/tmp/pc-$p.log" -s "$dev" --output - 2>/dev/null | sha256sum)
  else got=$("partclone.$fs" -z "$PARTCLONE_Z" -L "/tmp/pc-$p.log" -c -s "$dev" --output - 2>/dev/null | sha256sum); fi
  got=\${got%% *}
  [ "$got" = "$want" ] && cr=pass || cr=FAIL
  say "KILN-RECOVERY-VERIFY $dev fs=$fs fsck=$fr checksum=$cr"
  [ $fr != FAIL ] && [ $cr = pass ] || bad=$((bad + 1))
done < /run/kiln/medium/kiln/verify.list
if [ $bad -gt 0 ]; then
  say "KILN-RECOVERY-VERIFY-FAILED $bad partition(s) of /dev/$target do not match the image $IMAGE_NAME"
  exit 20
fi
say "KILN-RECOVERY-VERIFIED /dev/$target matches the image $IMAGE_NAME"
exit 0
`;

function liveTarball(o: PartOptions): string {
  const v = o.typed(OPTIONS).live;
  if (existsSync(v) && statSync(v).isFile()) return v;
  if (existsSync(v) && statSync(v).isDirectory()) {
    for (const n of ['rootfs.tar', 'rootfs.tar.zst', 'rootfs.tar.xz', 'rootfs.tar.gz']) if (existsSync(join(v, n))) return join(v, n);
    throw o.error('live', `${v} holds no rootfs.tar[.zst|.xz|.gz]: not a kiln:chroot location (format = dir is not enough; the live system is made from the tarball)`);
  }
  throw o.error('live', `${v} does not exist (expected a kiln:chroot location or a root file system tarball)`);
}

// ---- build ------------------------------------------------------------------------------------

/** squashfs builds under way in this process: several recovery parts with the same live system
 *  (built in parallel) wait for one build instead of racing on the same file */
const squashfsBuilds = new Map<string, Promise<{ path: string; key: string }>>();

/** The live system's squashfs (cached) and its cache key, which identifies its content. */
async function squashfs(ctx: BuildContext, tarball: string): Promise<{ path: string; key: string }> {
  const id = `${tarball}\0${ctx.cacheDir}\0${ctx.sourceDateEpoch}`;
  let p = squashfsBuilds.get(id);
  // a finished build whose file went (cache cleaned): build again
  if (p && !(await p.then((r) => existsSync(r.path), () => false))) p = undefined;
  if (!p) {
    p = buildSquashfs(ctx, tarball);
    squashfsBuilds.set(id, p);
    p.catch(() => squashfsBuilds.delete(id));
  } else ctx.log('# live system: waiting for the same squashfs built for another part\n');
  return p;
}

/** the live system's squashfs (exported for the -j budget test) */
export async function buildSquashfs(ctx: BuildContext, tarball: string): Promise<{ path: string; key: string }> {
  // cached by the tarball's content: the same chroot gives the same live system without mksquashfs
  const key = createHash('sha256').update(`recovery-iso squashfs v1\0${await hashFile(tarball)}\0${ctx.sourceDateEpoch}`).digest('hex').slice(0, 32);
  const dir = join(ctx.cacheDir, 'recovery-iso');
  const out = join(dir, `live-${key}.squashfs`);
  if (existsSync(out)) {
    ctx.log(`# live system from the cache: ${out}\n`);
    return { path: out, key };
  }
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  rmSync(tmp, { force: true });
  const sde = String(ctx.sourceDateEpoch);
  // sqfstar reads the tarball itself: owners, modes and device nodes as the chroot recorded them
  const cat = tarball.endsWith('.zst') ? ['zstd', '-dc'] : tarball.endsWith('.xz') ? ['xz', '-dc'] : tarball.endsWith('.gz') ? ['gzip', '-dc'] : ['cat'];
  // -processors: the part's share of -j (-reproducible: the image does not depend on it)
  await ctx.run(['sh', '-c', 'unset SOURCE_DATE_EPOCH; "$@" < "$TARBALL" | sqfstar -quiet -no-progress -processors "$JOBS" -comp xz -b 1M -reproducible -mkfs-time "$SDE" -all-time "$SDE" -no-xattrs "$OUT"', 'sh', ...cat], {
    env: { TARBALL: tarball, SDE: sde, OUT: tmp, JOBS: String(Math.max(1, ctx.jobs)) },
  });
  renameSync(tmp, out);
  ctx.log(`# live system ${out} (${(statSync(out).size / MB).toFixed(1)} MB)\n`);
  return { path: out, key };
}

/** the restore entry's kernel command line (also the unified kernel image's, which has no menu) */
function restoreCmdline(o: { target: string; confirm: string; after: string; append: string }): string {
  return `console=tty0 console=ttyS0,115200 panic=30 ${o.append}`.trim() + ` kiln_target=${o.target} kiln_confirm=${o.confirm} kiln_after=${o.after}`;
}

/** the same two entries for GRUB (UEFI) */
function grubCfg(o: { title: string; name: string; target: string; confirm: string; after: string; timeout: number; append: string }): string {
  const base = `console=tty0 console=ttyS0,115200 panic=30 ${o.append}`.trim();
  const what = o.target === 'auto' ? 'the only candidate disk' : `/dev/${o.target}`;
  return grubMenu({
    title: o.title,
    timeout: o.timeout,
    entries: [
      { title: `Restore ${o.name} onto ${what}${o.confirm === 'no' ? ' (no questions)' : ' (asks first)'}, then ${o.after}`, kernel: '/live/vmlinuz', initrd: '/live/initrd.gz', append: `${base} kiln_target=${o.target} kiln_confirm=${o.confirm} kiln_after=${o.after}` },
      { title: 'Rescue shell (restores nothing)', kernel: '/live/vmlinuz', initrd: '/live/initrd.gz', append: `${base} kiln_action=shell kiln_after=poweroff` },
    ],
  });
}

function isolinuxCfg(o: { title: string; name: string; target: string; confirm: string; after: string; timeout: number; append: string }): string {
  const base = `initrd=/live/initrd.gz console=tty0 console=ttyS0,115200 panic=30 ${o.append}`.trim();
  const what = o.target === 'auto' ? 'the only candidate disk' : `/dev/${o.target}`;
  return `SERIAL 0 115200
UI menu.c32
PROMPT 0
TIMEOUT ${o.timeout * 10}
MENU TITLE ${o.title}
DEFAULT restore

LABEL restore
  MENU LABEL Restore ${o.name} onto ${what}${o.confirm === 'no' ? ' (no questions)' : ' (asks first)'}, then ${o.after}
  KERNEL /live/vmlinuz
  APPEND ${base} kiln_target=${o.target} kiln_confirm=${o.confirm} kiln_after=${o.after}

LABEL shell
  MENU LABEL Rescue shell (restores nothing)
  KERNEL /live/vmlinuz
  APPEND ${base} kiln_action=shell kiln_after=poweroff
`;
}

const OPTIONS = {
  image: { type: 'path', description: 'location of a kiln:clonezilla-image part (image/NAME/ and kiln-image.json)', required: true },
  live: { type: 'path', description: 'live system: a kiln:chroot location (or its rootfs tarball) with clonezilla partclone drbl parted gdisk pigz zstd udev', required: true },
  kernel: { type: 'pattern', pattern: /^(linux-image-)?[0-9][A-Za-z0-9.+~-]*$/, expected: 'a Debian kernel release', description: 'Debian kernel release for the live system (default: what linux-image-amd64 depends on; cached)' },
  target: { type: 'pattern', pattern: /^(\/dev\/)?[a-z][a-z0-9]*$/, expected: 'a disk name (vda, sda, nvme0n1) or auto', description: 'disk to restore onto: vda, sda, nvme0n1 ... or auto (first fixed disk that is not the medium)', default: 'auto' },
  confirm: { type: 'enum', choices: ['yes', 'no'], description: 'yes: ask on the console before writing; no: unattended', default: 'yes' },
  after: { type: 'enum', choices: ['poweroff', 'reboot', 'shell'], description: 'after the restore: poweroff, reboot or shell', default: 'poweroff' },
  label: { type: 'pattern', pattern: /^[A-Z0-9_]{1,32}$/, expected: '1-32 characters A-Z 0-9 _', description: 'ISO volume label (up to 32 characters A-Z 0-9 _)', default: 'KILN_RECOVERY' },
  'menu-title': { type: 'string', description: 'boot menu title', default: 'kiln recovery' },
  timeout: { type: 'int', min: 0, max: 9999, description: 'seconds the boot menu waits before the default entry', default: '10' },
  uefi: { type: 'enum', choices: ['yes', 'no'], description: 'yes: also a UEFI El Torito entry (GRUB, grub-efi-amd64-bin; src/image/efi-iso.ts); no: BIOS only', default: 'yes' },
  'kernel-append': { type: 'pattern', pattern: /^[A-Za-z0-9_.,=:/+\s-]*$/, expected: 'kernel parameters (letters, digits, _ . , = : / + - and spaces)', description: 'extra kernel parameters for both entries (e.g. kiln_debug_exit=1 for QEMU tests)', default: '' },
  'secure-boot': { type: 'enum', choices: ['yes', 'no'], description: "yes: UEFI Secure Boot; without secure-boot-key through Debian's signed shim, GRUB and kernel (keys that ship in firmware)", default: 'no' },
  'secure-boot-key': { type: 'path', description: 'own keys: PEM private key (db) that signs the kernel and a unified kernel image (sbsign); never copied to the ISO or logged' },
  'secure-boot-cert': { type: 'path', description: 'own keys: PEM certificate of secure-boot-key' },
  'secure-boot-key-passphrase-env': { type: 'pattern', pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, expected: 'an environment variable name', description: 'name of an environment variable holding the passphrase of an encrypted secure-boot-key' },
  'image-location': { type: 'pattern', pattern: /^(iso|label:[A-Za-z0-9_-]{1,16})$/, expected: 'iso or label:NAME (NAME: 1-16 characters A-Z a-z 0-9 _ -)', description: 'iso: the image is on the ISO; label:NAME: on a second medium (USB disk, drive) whose file system is labelled NAME, in NAME/IMAGE/ … at its root', default: 'iso' },
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'recovery-iso',
  version: '5',
  description: 'bootable hybrid recovery ISO (isolinux, live system from a kiln chroot) restoring a Clonezilla image unattended',
  options: OPTIONS,
  innerJobs: true, // ctx.jobs: sqfstar -processors (the live system, when not cached)
  validate(ctx) {
    // secure-boot with uefi, both own keys or none, key files that exist
    secureBoot(ctx.options);
  },
  inputs(ctx) {
    // a kiln:chroot part is a dependency (its signature covers it); a plain tarball is an input;
    // own Secure Boot keys are inputs (their SHA-256, not their content, enters the build signature)
    const { live, 'secure-boot-key': key, 'secure-boot-cert': cert } = ctx.options.typed(OPTIONS);
    const sb = [key, cert].filter((f): f is string => !!f && existsSync(f));
    return [...(existsSync(live) && statSync(live).isFile() ? [live] : []), ...sb];
  },
  tools() {
    return ['xorriso', 'sqfstar', 'sha256sum', 'pigz', 'zstd'];
  },
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const { manifest, dir: imageDir } = readManifest(o, v.image);
    const tarball = liveTarball(o);
    for (const f of ['/usr/lib/ISOLINUX/isolinux.bin', '/usr/lib/ISOLINUX/isohdpfx.bin']) if (!existsSync(f)) throw new KilnError(`${f} is missing: install the Debian package isolinux`);
    const c32 = '/usr/lib/syslinux/modules/bios';
    for (const f of ['ldlinux.c32', 'menu.c32', 'libutil.c32']) if (!existsSync(join(c32, f))) throw new KilnError(`${join(c32, f)} is missing: install the Debian package syslinux-common`);

    // 1. the image: checked now (checksums), again on the machine before writing
    ctx.log(`# image ${manifest.name}: ${imageDir}\n`);
    const { verifyImage } = await import('../image/clonezilla.js');
    try {
      const checked = await verifyImage(imageDir, (argv, opts) => ctx.run(argv, opts));
      ctx.log(`# image checked: ${checked.join(', ')}\n`);
    } catch (e) {
      throw o.error('image', (e as Error).message);
    }
    const where = imageLocation(o);
    const sb = secureBoot(o);
    const files = walk(imageDir).filter((r) => {
      const st = lstatSync(join(imageDir, r));
      if (!st.isFile() && !st.isDirectory()) throw new KilnError(`${join(imageDir, r)}: only regular files and directories can go into the image`);
      return st.isFile();
    });
    const sums: string[] = [];
    for (const f of files) sums.push(`${await hashFile(join(imageDir, f))}  ${manifest.name}/${f}\n`);
    const imageBytes = files.reduce((a, f) => a + statSync(join(imageDir, f)).size, 0);
    // what verification after the restore compares against: the SHA-256 of each partition's
    // (decompressed) partclone stream, which partclone reproduces from a correctly restored partition
    const verify: string[] = [];
    const comp: Compression = manifest.compression ?? 'gzip';
    for (const p of manifest.partitions ?? []) {
      if (!Number.isInteger(p.number) || !/^[a-z0-9]+$/.test(p.fs) || !Array.isArray(p.files) || !p.files.length) throw o.error('image', `kiln-image.json: partition ${p.name} lacks number, fs or files`);
      const r = await ctx.run(['bash', '-c', 'set -o pipefail; cat -- "$@" | ' + DECOMPRESSOR[comp].join(' ') + ' | sha256sum', 'sh', ...p.files.map((f) => join(imageDir, f))]);
      verify.push(`${p.number} ${p.fs} ${r.stdout.trim().split(/\s+/)[0]}\n`);
    }

    // 2. live system, kernel, initrd
    const live = await squashfs(ctx, tarball);
    const kernel = await debianKernel({ cacheDir: ctx.cacheDir, version: v.kernel, offline: ctx.offline, log: (s) => ctx.log(s), signal: ctx.signal });
    const id = createHash('sha256').update(sums.join('')).update(live.key).update(kernel.version).update(String(ctx.sourceDateEpoch)).update(where.label ?? '').digest('hex').slice(0, 16);
    const tree = join(ctx.work, 'iso');
    const mk = (p: string) => mkdirSync(join(tree, p), { recursive: true });
    for (const d of ['isolinux', 'live', 'kiln', where.label ? 'home/partimag' : `home/partimag/${manifest.name}`]) mk(d);
    const efivarfs = join(kernel.modulesDir, 'kernel/fs/efivarfs/efivarfs.ko');
    buildInitrd(join(tree, 'live', 'initrd.gz'), {
      init: INIT,
      execInit: true,
      modules: LIVE_MODULES,
      kernel,
      sourceDateEpoch: ctx.sourceDateEpoch,
      files: [
        { to: '/kiln/restore.sh', content: RESTORE, mode: 0o755 },
        { to: '/kiln/id.env', content: `KILN_ID=${id}\n` },
        // loaded by /init only under UEFI (it reads the SecureBoot variable)
        ...(existsSync(efivarfs) ? [{ to: `/lib/modules/${kernel.version}/kernel/fs/efivarfs/efivarfs.ko`, from: efivarfs }] : []),
      ],
    });
    copyFileSync(kernel.vmlinuz, join(tree, 'live', 'vmlinuz'));
    if (sb.mode === 'distribution') {
      // the signed chain ends with the kernel: Debian's linux-image package carries it signed
      const l = await ctx.run(['sbverify', '--list', kernel.vmlinuz], { allowFailure: true });
      if (!/signature 1/.test(l.stdout)) throw o.error('secure-boot', `the kernel ${kernel.package} ${kernel.packageVersion} carries no Secure Boot signature (sbverify --list)`);
      ctx.log(`# secure boot: Debian's signed shim, GRUB and kernel (${kernel.package} ${kernel.packageVersion})\n`);
    }
    copyFileSync(live.path, join(tree, 'live', 'filesystem.squashfs'));
    // the image: on the ISO, or (image-location = label:NAME) next to it for the second medium
    const imageRoot = where.label ? join(ctx.staging, 'image-medium') : join(tree, 'home/partimag');
    for (const f of files) {
      mkdirSync(join(imageRoot, manifest.name, f, '..'), { recursive: true });
      copyFileSync(join(imageDir, f), join(imageRoot, manifest.name, f));
    }
    writeFileSync(join(tree, 'kiln', 'SHA256SUMS'), sums.join(''));
    writeFileSync(join(tree, 'kiln', 'verify.list'), verify.join(''));
    writeFileSync(
      join(tree, 'kiln', 'recovery.env'),
      `KILN_ID=${id}\nIMAGE_NAME=${manifest.name}\nIMAGE_DEVICE=${manifest.device}\nDISK_SIZE=${manifest.diskSize}\nIMAGE_LABEL=${where.label ?? ''}\n` +
        `OCS_OPTIONS="${OCS_OPTIONS.join(' ')}"\nPARTCLONE_Z=${PARTCLONE_Z}\nPARTCLONE_DD_BS=${PARTCLONE_DD_BS}\n`,
    );
    copyFileSync('/usr/lib/ISOLINUX/isolinux.bin', join(tree, 'isolinux', 'isolinux.bin'));
    for (const f of ['ldlinux.c32', 'menu.c32', 'libutil.c32']) copyFileSync(join(c32, f), join(tree, 'isolinux', f));
    const tgt = v.target.replace(/^\/dev\//, '');
    const menu = { title: v['menu-title'] ?? '', name: manifest.name, target: tgt, confirm: v.confirm, after: v.after, timeout: v.timeout, append: v['kernel-append'] ?? '' };
    writeFileSync(join(tree, 'isolinux', 'isolinux.cfg'), isolinuxCfg(menu));
    const uefi = v.uefi === 'yes';
    let efiBinary: string | undefined;
    if (sb.mode === 'own') {
      // own keys: the kernel gets the organisation's signature next to Debian's, and a unified kernel
      // image (systemd-stub + that kernel + the initrd + the restore command line) signed with the
      // key is what the firmware starts: it checks kernel, initrd and command line in one signature.
      // The key is read by openssl/sbsign only; it is not copied into the tree, and only its path is logged.
      const run = (argv: string[], opts?: Parameters<typeof ctx.run>[1]) => ctx.run(argv, opts);
      const signWork = join(ctx.work, 'sign');
      await sbsignFile({ file: join(tree, 'live', 'vmlinuz'), key: sb.key!, cert: sb.cert!, passEnv: sb.passEnv, work: signWork, run });
      efiBinary = join(ctx.work, 'uki', 'kiln-recovery.efi');
      mkdirSync(join(efiBinary, '..'), { recursive: true });
      await buildUki({
        out: efiBinary,
        kernel: join(tree, 'live', 'vmlinuz'),
        initrd: join(tree, 'live', 'initrd.gz'),
        cmdline: restoreCmdline(menu),
        osRelease: `NAME="kiln recovery"\nID=kiln-recovery\nPRETTY_NAME="${menu.title.replace(/["\\]/g, '')} (${manifest.name})"\nVERSION_ID="${kernel.version}"\n`,
        work: join(ctx.work, 'uki'),
        run,
      });
      await sbsignFile({ file: efiBinary, key: sb.key!, cert: sb.cert!, passEnv: sb.passEnv, work: signWork, run });
      ctx.log(`# secure boot: own keys (certificate ${sb.cert}): kernel and unified kernel image signed\n`);
    }
    const efiArgs = uefi
      ? (
          await addEfiBoot({
            tree,
            work: join(ctx.work, 'efi'),
            grubCfg: grubCfg(menu),
            findFile: '/kiln/recovery.env',
            sourceDateEpoch: ctx.sourceDateEpoch,
            run: (argv, opts) => ctx.run(argv, opts),
            mode: sb.mode === 'distribution' ? 'shim' : sb.mode === 'own' ? 'uki' : 'grub',
            efiBinary,
          })
        ).xorrisoArgs
      : [];

    // 3. the ISO: clamped dates, root owners, sorted by xorriso; SOURCE_DATE_EPOCH fixes the volume dates and uuid
    await ctx.run(['find', tree, '-exec', 'touch', '-h', '-d', `@${ctx.sourceDateEpoch}`, '{}', '+']);
    const iso = join(ctx.staging, 'recovery.iso');
    await ctx.run(
      [
        'xorriso', '-as', 'mkisofs', '-quiet', '-o', iso, '-V', v.label, '-iso-level', '3', '-r', '-J', '-joliet-long',
        '-isohybrid-mbr', '/usr/lib/ISOLINUX/isohdpfx.bin', '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat',
        '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', ...efiArgs, tree,
      ],
      { env: { SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch) } },
    );
    const size = statSync(iso).size;
    const fits = size <= CD_BYTES ? 'fits on a CD (700 MiB)' : size <= DVD_BYTES ? 'needs a DVD (over 700 MiB)' : 'too large for a DVD (over 4.7 GB): USB stick only';
    if (size > CD_BYTES) ctx.log(`# warning: recovery.iso is ${(size / MB).toFixed(0)} MB: ${fits}\n`);
    ctx.log(`# recovery.iso: ${size} bytes (${(size / MB).toFixed(1)} MB), ${fits}; image ${manifest.name} ${imageBytes} bytes; kernel ${kernel.version}\n`);
    writeFileSync(
      join(ctx.staging, 'recovery.json'),
      JSON.stringify({ iso: 'recovery.iso', size, sha256: await hashFile(iso), fits, image: manifest.name, imageBytes, diskSize: manifest.diskSize, kernel: kernel.version, id, target: tgt, uefi, secureBoot: sb.mode, imageLocation: where.label ? `label:${where.label}` : 'iso', confirm: v.confirm, after: v.after }, null, 2) + '\n',
    );
  },
};
export default recipe;
