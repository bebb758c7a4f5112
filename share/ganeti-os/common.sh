# kiln ganeti-os: helpers sourced by create, import, export, rename and verify.
# Generated OS definitions carry this file unchanged; what differs between OS definitions is
# in kiln-os.conf (next to this file), the defaults file and the variant files.
# POSIX sh. Every check runs before anything is written to a disk.

set -eu
umask 022
LC_ALL=C
export LC_ALL
SCRIPT_NAME=${0##*/}
OS_DIR=$(cd "$(dirname "$0")" && pwd)

log_error() {
  printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
}

die() {
  log_error "$*"
  exit 1
}

[ -f "$OS_DIR/kiln-os.conf" ] || die "missing $OS_DIR/kiln-os.conf (broken installation)"
. "$OS_DIR/kiln-os.conf"

# the defaults file (admin settings); variant files override it, as in ganeti-instance-debootstrap
if [ -f "$KILN_DEFAULTS_FILE" ]; then
  . "$KILN_DEFAULTS_FILE"
fi
: "${MIRROR:=}"
: "${PROXY:=}"
: "${SUITE:=}"
: "${ARCH:=}"
: "${EXTRAPKGS:=}"
: "${CUSTOMIZE_DIR:=$KILN_CONF_DIR/hooks}"
: "${VARIANTS_DIR:=$KILN_CONF_DIR/variants}"
: "${CACHE_DIR:=/var/cache/$KILN_PACKAGE}"
: "${GENERATE_CACHE:=no}"
: "${CLEAN_CACHE:=14}"
: "${PARTITION_STYLE:=msdos}"
: "${KERNEL_ARGS:=}"
: "${BOOT_SIZE_MB:=64}"
: "${DEBOOTSTRAP_VARIANT:=minbase}"

CLEANUP=""
cleanup() {
  # run the registered commands, newest first
  set +e
  for c in $CLEANUP; do
    case "$c" in
      losetup:*) losetup -d "${c#losetup:}" 2>/dev/null ;;
      rmtree:*) rm -rf -- "${c#rmtree:}" ;;
    esac
  done
  CLEANUP=""
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

make_tmpdir() {
  TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/$KILN_PACKAGE.XXXXXX") || die "cannot create a temporary directory in ${TMPDIR:-/var/tmp}"
  CLEANUP="rmtree:$TMP $CLEANUP"
}

is_uint() {
  case "$1" in
    '' | *[!0-9]*) return 1 ;;
  esac
  return 0
}

need_tools() {
  missing=""
  for t in "$@"; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
  done
  [ -z "$missing" ] || die "missing tools:$missing (install the package's dependencies)"
}

# OS_API_VERSION as Ganeti passes it
check_api() {
  [ -n "${OS_API_VERSION:-}" ] || die "OS_API_VERSION is not set (this script is run by Ganeti with the OS interface environment)"
  case "$OS_API_VERSION" in
    20 | 15 | 10) ;;
    *) die "unsupported OS_API_VERSION '$OS_API_VERSION' (this OS definition implements API 20)" ;;
  esac
}

valid_hostname() {
  # RFC 1123 labels, dot separated, at most 253 characters
  [ ${#1} -le 253 ] || return 1
  printf '%s\n' "$1" | grep -Eqx '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*'
}

check_instance_name() {
  [ -n "${INSTANCE_NAME:-}" ] || die "INSTANCE_NAME is not set"
  valid_hostname "$INSTANCE_NAME" || die "INSTANCE_NAME '$INSTANCE_NAME' is not a valid host name"
}

# the variant: OS_VARIANT, or the first one of variants.list; loads its settings
select_variant() {
  list="$KILN_CONF_DIR/variants.list"
  [ -f "$list" ] || die "missing $list"
  VARIANT=${OS_VARIANT:-}
  if [ -z "$VARIANT" ]; then
    VARIANT=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -m1 . || true)
    [ -n "$VARIANT" ] || die "no variant given (OS_VARIANT) and $list lists none"
  fi
  case "$VARIANT" in
    *[!A-Za-z0-9_.+-]* | .*) die "invalid variant name '$VARIANT'" ;;
  esac
  if ! sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -qxF -- "$VARIANT"; then
    die "unknown variant '$VARIANT' (known: $(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep . | tr '\n' ' '| sed 's/ $//'))"
  fi
  VARIANT_DATA="$KILN_DATA_DIR/variants/$VARIANT"
  [ -f "$VARIANT_DATA/info" ] || die "variant '$VARIANT' has no data in $VARIANT_DATA (broken installation)"
  # package data: ROOTFS, ROOTFS_BYTES, KERNEL_VERSION (written by kiln)
  ROOTFS="" ROOTFS_BYTES=0 KERNEL_VERSION=""
  . "$VARIANT_DATA/info"
  # admin settings of the variant (override the defaults file)
  if [ -f "$VARIANTS_DIR/$VARIANT.conf" ]; then
    . "$VARIANTS_DIR/$VARIANT.conf"
  fi
  case "$PARTITION_STYLE" in
    msdos | none) ;;
    *) die "unknown PARTITION_STYLE '$PARTITION_STYLE' (msdos or none)" ;;
  esac
  if [ -n "$KERNEL_VERSION" ] && [ "$PARTITION_STYLE" != msdos ]; then
    die "variant '$VARIANT' installs a kernel and a boot loader: PARTITION_STYLE must be msdos, not '$PARTITION_STYLE'"
  fi
  is_uint "$BOOT_SIZE_MB" && [ "$BOOT_SIZE_MB" -ge 33 ] || die "BOOT_SIZE_MB must be a number of MiB >= 33, not '$BOOT_SIZE_MB'"
  case "$KERNEL_ARGS" in
    *'
'*) die "KERNEL_ARGS must be one line" ;;
  esac
  export SUITE ARCH PARTITION_STYLE
  EXTRA_PKGS=$EXTRAPKGS
  export EXTRA_PKGS
}

# OSP_* against parameters.list and the checks in kiln-parameters (name TAB extended regex)
check_parameters() {
  for var in $(env | sed -n 's/^\(OSP_[A-Za-z0-9_]*\)=.*/\1/p' | sort -u); do
    pname=$(printf '%s' "${var#OSP_}" | tr 'A-Z_' 'a-z-')
    pname_u=$(printf '%s' "${var#OSP_}" | tr 'A-Z' 'a-z')
    found=""
    for cand in "$pname" "$pname_u"; do
      if awk -v n="$cand" '$1 == n { f = 1 } END { exit !f }' "$OS_DIR/parameters.list"; then found=$cand; fi
    done
    [ -n "$found" ] || die "unknown OS parameter '$pname' ($var); known: $(awk '{ printf "%s%s", s, $1; s = " " }' "$OS_DIR/parameters.list")"
    eval "val=\${$var-}"
    case "$val" in
      *'
'*) die "OS parameter '$found' must be one line" ;;
    esac
    re=$(awk -F '\t' -v n="$found" '$1 == n { print $2 }' "$OS_DIR/kiln-parameters")
    if [ -n "$re" ] && ! printf '%s\n' "$val" | grep -Eqx -e "$re"; then
      die "invalid value '$val' for OS parameter '$found' (must match: $re)"
    fi
  done
}

# size of a disk (regular file or block device) in bytes
disk_bytes() {
  if [ -b "$1" ]; then
    blockdev --getsize64 "$1"
  else
    stat -L -c %s "$1"
  fi
}

# DISK (DISK_0_PATH, IMPORT_DEVICE...) must exist and be writable
check_disk() {
  [ -n "$1" ] || die "$2 is not set (no disk to write to)"
  [ -b "$1" ] || [ -f "$1" ] || die "$2 '$1' is neither a block device nor a regular file"
  [ -w "$1" ] || die "$2 '$1' is not writable"
  DISK=$1
  DISK_BYTES=$(disk_bytes "$DISK")
  is_uint "$DISK_BYTES" || die "cannot read the size of $DISK"
}

check_disk_count() {
  [ -n "${DISK_COUNT:-}" ] || die "DISK_COUNT is not set"
  is_uint "$DISK_COUNT" && [ "$DISK_COUNT" -ge 1 ] || die "DISK_COUNT must be at least 1, not '$DISK_COUNT'"
}

MiB=1048576
# the layout for a root file system of CONTENT bytes on DISK; fails when the disk is too small
plan_layout() {
  content=$1
  # ext4 with 4 KiB blocks: content + 25% (metadata, slack) + 32 MiB (journal, reserve)
  need=$((content + content / 4 + 32 * MiB))
  if [ "$PARTITION_STYLE" = none ]; then
    ROOT_OFFSET=0
    ROOT_BYTES=$((DISK_BYTES / 4096 * 4096))
    BOOT_OFFSET=""
  else
    start=$MiB
    if [ -n "$KERNEL_VERSION" ]; then
      BOOT_OFFSET=$start
      BOOT_BYTES=$((BOOT_SIZE_MB * MiB))
      start=$((start + BOOT_BYTES))
    else
      BOOT_OFFSET=""
    fi
    ROOT_OFFSET=$start
    ROOT_BYTES=$(((DISK_BYTES - start) / MiB * MiB))
  fi
  if [ "$ROOT_BYTES" -lt "$need" ]; then
    die "disk $DISK is too small: $DISK_BYTES bytes, the root file system needs $need bytes (at least $(((ROOT_OFFSET + need + MiB - 1) / MiB)) MiB in all)"
  fi
}

# the root file system of an existing disk: sets ROOT_OFFSET, ROOT_BYTES
find_root() {
  if table=$(sfdisk -d "$1" 2>/dev/null) && printf '%s\n' "$table" | grep -q 'start='; then
    line=$(printf '%s\n' "$table" | grep 'start=' | grep -Ei 'type= *83' | tail -n 1)
    [ -n "$line" ] || die "$1 has a partition table without a Linux (type 83) partition"
    s=$(printf '%s\n' "$line" | sed -n 's/.*start= *\([0-9]*\).*/\1/p')
    n=$(printf '%s\n' "$line" | sed -n 's/.*size= *\([0-9]*\).*/\1/p')
    is_uint "$s" && is_uint "$n" || die "cannot read the partition table of $1"
    ROOT_OFFSET=$((s * 512))
    ROOT_BYTES=$((n * 512))
  else
    ROOT_OFFSET=0
    ROOT_BYTES=$(disk_bytes "$1")
  fi
  if ! dumpe2fs -h "$1?offset=$ROOT_OFFSET" >/dev/null 2>&1; then
    die "no ext2/3/4 file system found on $1 at offset $ROOT_OFFSET"
  fi
}

# a read-only device for the root file system (dump needs one)
root_device() {
  if [ "$ROOT_OFFSET" -eq 0 ] && [ -b "$1" ]; then
    ROOT_DEV=$1
  else
    ROOT_DEV=$(losetup -f --show -r -o "$ROOT_OFFSET" --sizelimit "$ROOT_BYTES" "$1") || die "losetup failed on $1"
    CLEANUP="losetup:$ROOT_DEV $CLEANUP"
  fi
}

new_uuid() {
  cat /proc/sys/kernel/random/uuid
}

# /etc/hostname, /etc/hosts and the root line of /etc/fstab in the tree $1
configure_tree() {
  t=$1
  mkdir -p "$t/etc"
  for f in hostname hosts fstab; do
    if [ -L "$t/etc/$f" ]; then die "/etc/$f in the root file system is a symbolic link; not writing through it"; fi
  done
  printf '%s\n' "$INSTANCE_NAME" >"$t/etc/hostname"
  short=${INSTANCE_NAME%%.*}
  if [ -f "$t/etc/hosts" ]; then
    grep -v '^127\.0\.1\.1[[:space:]]' "$t/etc/hosts" >"$t/etc/hosts.kiln" || true
  else
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$t/etc/hosts.kiln"
  fi
  if [ "$short" = "$INSTANCE_NAME" ]; then
    printf '127.0.1.1\t%s\n' "$INSTANCE_NAME" >>"$t/etc/hosts.kiln"
  else
    printf '127.0.1.1\t%s %s\n' "$INSTANCE_NAME" "$short" >>"$t/etc/hosts.kiln"
  fi
  mv "$t/etc/hosts.kiln" "$t/etc/hosts"
  chmod 0644 "$t/etc/hosts" "$t/etc/hostname"
  if [ -f "$t/etc/fstab" ]; then
    awk '!($0 ~ /^[ \t]*[^# \t]+[ \t]+\/[ \t]/)' "$t/etc/fstab" >"$t/etc/fstab.kiln"
  else
    : >"$t/etc/fstab.kiln"
  fi
  printf 'UUID=%s\t/\text4\terrors=remount-ro\t0\t1\n' "$ROOT_UUID" >>"$t/etc/fstab.kiln"
  mv "$t/etc/fstab.kiln" "$t/etc/fstab"
  chmod 0644 "$t/etc/fstab"
}

# the customize hooks (run-parts) on the tree $1
run_hooks() {
  [ -d "$CUSTOMIZE_DIR" ] || return 0
  TARGET=$1
  BLOCKDEV=$DISK
  # the root file system is made from TARGET after the hooks ran: FSYSDEV names the disk and
  # FSYSDEV_OFFSET/FSYSDEV_SIZE where on it the file system will be
  FSYSDEV=$DISK
  FSYSDEV_OFFSET=$ROOT_OFFSET
  FSYSDEV_SIZE=$ROOT_BYTES
  export TARGET BLOCKDEV FSYSDEV FSYSDEV_OFFSET FSYSDEV_SIZE ROOT_UUID INSTANCE_NAME VARIANT
  run-parts --exit-on-error "$CUSTOMIZE_DIR" || die "customize hook in $CUSTOMIZE_DIR failed"
}

# write the partition table, the boot partition (with a kernel) and the root ext4 made from tree $1
write_disk() {
  tree=$1
  if [ "$PARTITION_STYLE" = msdos ]; then
    {
      echo "label: dos"
      echo "unit: sectors"
      echo
      if [ -n "$BOOT_OFFSET" ]; then
        echo "start=$((BOOT_OFFSET / 512)), size=$((BOOT_BYTES / 512)), type=e, bootable"
        echo "start=$((ROOT_OFFSET / 512)), size=$((ROOT_BYTES / 512)), type=83"
      else
        echo "start=$((ROOT_OFFSET / 512)), size=$((ROOT_BYTES / 512)), type=83, bootable"
      fi
    } | sfdisk --no-reread --no-tell-kernel -q "$DISK" >/dev/null || die "sfdisk failed on $DISK"
  fi
  mke2fs -q -F -t ext4 -b 4096 -U "$ROOT_UUID" -L root -E "offset=$ROOT_OFFSET,root_owner=0:0" -d "$tree" "$DISK" "$((ROOT_BYTES / 4096))" ||
    die "mke2fs failed on $DISK (offset $ROOT_OFFSET)"
  if [ -n "$BOOT_OFFSET" ]; then
    # (mkfs.vfat warns that the block count is not the whole disk: that is the point)
    mkfs.vfat -F 16 -n BOOT --offset="$((BOOT_OFFSET / 512))" -h "$((BOOT_OFFSET / 512))" "$DISK" "$((BOOT_BYTES / 1024))" >"$TMP/mkfs.vfat.log" 2>&1 ||
      die "mkfs.vfat failed on $DISK: $(cat "$TMP/mkfs.vfat.log")"
    syslinux --offset "$BOOT_OFFSET" --install "$DISK" || die "syslinux failed on $DISK"
    {
      echo "SERIAL 0 115200"
      echo "PROMPT 0"
      echo "TIMEOUT 0"
      echo "DEFAULT linux"
      echo
      echo "LABEL linux"
      echo "  LINUX /vmlinuz"
      echo "  INITRD /initrd.gz"
      echo "  APPEND root=UUID=$ROOT_UUID ro console=tty0 console=ttyS0,115200${KERNEL_ARGS:+ $KERNEL_ARGS}"
    } >"$TMP/syslinux.cfg"
    for f in "$VARIANT_DATA/vmlinuz" "$VARIANT_DATA/initrd.gz" "$TMP/syslinux.cfg"; do
      MTOOLS_SKIP_CHECK=1 mcopy -o -i "$DISK@@$BOOT_OFFSET" "$f" "::${f##*/}" || die "mcopy failed on $DISK"
    done
    dd if="$mbr" of="$DISK" bs=440 count=1 conv=notrunc status=none || die "cannot write the MBR boot code to $DISK"
  fi
  sync
}

# what the boot partition needs, checked before anything is written
check_boot_tools() {
  [ -n "$KERNEL_VERSION" ] || return 0
  need_tools mkfs.vfat syslinux mcopy dd
  mbr=""
  for m in /usr/lib/SYSLINUX/mbr.bin /usr/lib/syslinux/mbr/mbr.bin /usr/share/syslinux/mbr.bin; do
    if [ -f "$m" ]; then mbr=$m; break; fi
  done
  [ -n "$mbr" ] || die "syslinux MBR code (mbr.bin) not found (Debian package syslinux-common)"
  for f in vmlinuz initrd.gz; do
    [ -r "$VARIANT_DATA/$f" ] || die "variant '$VARIANT': missing $VARIANT_DATA/$f (broken installation)"
  done
}

# the variant's root file system tarball: the packaged one, else (GENERATE_CACHE=yes) one made
# by debootstrap from MIRROR/SUITE/ARCH/EXTRAPKGS (through PROXY) and kept in CACHE_DIR for
# CLEAN_CACHE days. Sets ROOTFS_TAR.
rootfs_tarball() {
  if [ -n "$ROOTFS" ]; then
    ROOTFS_TAR="$VARIANT_DATA/$ROOTFS"
    [ -r "$ROOTFS_TAR" ] || die "variant '$VARIANT': missing $ROOTFS_TAR (broken installation)"
    return 0
  fi
  [ -n "$SUITE" ] || die "variant '$VARIANT' has no packaged root file system and no SUITE to make one"
  ROOTFS_TAR="$CACHE_DIR/$VARIANT-$SUITE-${ARCH:-native}.tar"
  if [ -f "$ROOTFS_TAR" ] && is_uint "$CLEAN_CACHE" && [ -n "$(find "$ROOTFS_TAR" -mtime "+$CLEAN_CACHE" 2>/dev/null)" ]; then
    rm -f "$ROOTFS_TAR"
  fi
  [ -f "$ROOTFS_TAR" ] && return 0
  [ "$GENERATE_CACHE" = yes ] || die "variant '$VARIANT' has no packaged root file system and no cached one ($ROOTFS_TAR), and GENERATE_CACHE is not yes"
  need_tools debootstrap
  make_tmpdir
  gen=$TMP/debootstrap
  set -- --variant="$DEBOOTSTRAP_VARIANT"
  [ -z "$ARCH" ] || set -- "$@" --arch="$ARCH"
  [ -z "$EXTRAPKGS" ] || set -- "$@" --include="$(printf '%s' "$EXTRAPKGS" | tr ' ' ',')"
  set -- "$@" "$SUITE" "$gen"
  [ -z "$MIRROR" ] || set -- "$@" "$MIRROR"
  http_proxy=${PROXY:-${http_proxy:-}} debootstrap "$@" >&2 || die "debootstrap $SUITE failed"
  rm -rf "$gen/var/cache/apt/archives/"*.deb "$gen/var/lib/apt/lists/"*_* 
  mkdir -p "$CACHE_DIR"
  tar --numeric-owner --xattrs -C "$gen" -cf "$ROOTFS_TAR.new" . || die "cannot write $ROOTFS_TAR"
  mv "$ROOTFS_TAR.new" "$ROOTFS_TAR"
  ROOTFS_BYTES=$(du -sb "$gen" | cut -f1)
  rm -rf "$gen"
}
