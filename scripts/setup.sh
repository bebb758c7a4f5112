#!/usr/bin/env bash
# Host set-up for kiln on Debian 12, as root. Idempotent and fast when nothing is missing:
#  1. installs the missing Debian packages (apt-get update once, only when something is missing),
#  2. starts dockerd when no Docker engine answers,
#  3. installs node modules (npm ci) when package-lock.json changed, and compiles src/ to dist/.
# Env: KILN_SETUP_SKIP_APT=1 skips step 1, KILN_SETUP_SKIP_DOCKER=1 skips step 2.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages kiln and its test suite use (command-line tools and data files).
PACKAGES=(
  # engine, cmmi builds
  build-essential make patch xz-utils zstd gzip pigz curl ca-certificates git graphviz hyperfine
  # oracle for the config language
  python3-zc.buildout
  # packages and repositories
  dpkg-dev debhelper fakeroot lintian rpm rpmlint createrepo-c dnf gnupg debsigs debsig-verify apt-utils diffoscope-minimal
  # chroots, containers, disk images, QEMU
  mmdebstrap debootstrap uidmap docker.io qemu-system-x86 qemu-utils busybox-static e2fsprogs fdisk dosfstools squashfs-tools
  xorriso isolinux syslinux syslinux-common mtools openssl
  # kiln:kernel tests: Debian's kernel source tarball (/usr/src/linux-source-6.1.tar.xz), kmod (modinfo), rpm2cpio/cpio
  linux-source-6.1 kmod cpio
  # UEFI boot of ISOs (src/image/efi-iso.ts) and UEFI guests
  grub-efi-amd64-bin grub-common ovmf
  # Clonezilla images (kiln:clonezilla-image; ocs-chkimg/ocs-sr as oracles)
  clonezilla partclone drbl parted gdisk
  # UEFI Secure Boot media (signed shim/GRUB, sbsign with own keys)
  sbsigntool shim-signed grub-efi-amd64-signed systemd-boot-efi
  # build farm and release evidence: real servers and tools the tests start on 127.0.0.1
  redis-server nginx chromium in-toto
)

missing=()
if [ "${KILN_SETUP_SKIP_APT:-}" != 1 ]; then
  # one dpkg-query for all; a package it does not list as installed is missing
  installed=$(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${PACKAGES[@]}" 2>/dev/null | awk '$1=="installed"{print $2}' || true)
  for p in "${PACKAGES[@]}"; do
    grep -qxF "$p" <<<"$installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    if [ "$(id -u)" != 0 ]; then
      echo "setup: not root; install them with: apt-get install ${missing[*]}" >&2
      exit 4
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# Docker engine: start dockerd when none answers.
if [ "${KILN_SETUP_SKIP_DOCKER:-}" != 1 ] && command -v dockerd >/dev/null; then
  if ! timeout 5 docker info >/dev/null 2>&1; then
    echo "setup: starting dockerd" >&2
    mkdir -p /var/log
    (setsid dockerd >/var/log/kiln-dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do
      timeout 5 docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
    timeout 5 docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start, see /var/log/kiln-dockerd.log" >&2; tail -20 /var/log/kiln-dockerd.log >&2; exit 1; }
  fi
fi

# Node modules: (re)install when package.json or the lock file changed since the last install.
stamp=node_modules/.kiln-lock-hash
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # npm install (not npm ci): npm 11's ci rejects this lock file's optional platform packages
  echo "setup: npm install" >&2
  npm install --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

# Compile TypeScript when a source is newer than the build.
if [ ! -f dist/.stamp ] || [ -n "$(find src tsconfig.json -newer dist/.stamp -print -quit)" ]; then
  echo "setup: compiling TypeScript" >&2
  # compiled in place (no rm -rf dist): CLI processes that are running keep working
  npx tsc -p tsconfig.json
  touch dist/.stamp
fi
