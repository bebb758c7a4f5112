/**
 * Bootable disk images from a root file system tarball, built on a plain file by byte offset
 * (no loop devices, partition parsing or mounts: the host kernel has none to offer):
 *
 *   sfdisk IMG                      msdos or GPT table (fixed disk/partition ids)
 *   mkfs.vfat --offset=START IMG    p1 "boot" (FAT16): kernel, initrd, syslinux.cfg, ldlinux.*
 *   mcopy -i IMG@@OFF               files into p1
 *   syslinux --offset OFF --install p1's boot sector and ldlinux.sys; mbr.bin / gptmbr.bin into
 *                                   the first 440 bytes
 *   mke2fs -d ROOT -E offset=OFF    p2 ext4 root from the extracted tarball (fixed UUID and hash
 *                                   seed, E2FSPROGS_FAKE_TIME)
 *
 * Boot: BIOS -> syslinux MBR -> syslinux -> kernel + a small busybox initrd (storage and ext4
 * modules of that kernel) -> finds root=UUID=..., mounts it, switch_root to /sbin/init.
 * The kernel is the newest /boot/vmlinuz-* of the rootfs (modules from its /lib/modules), or
 * a given one (e.g. the cached Debian kernel). Serial console: console=ttyS0,115200 is the last
 * console= (systemd starts a getty there), syslinux talks on the serial port too.
 *
 * All ids derive from a seed (the rootfs content hash and the options): same inputs, same ids.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, closeSync, writeSync, writeFileSync, utimesSync, ftruncateSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { run, type RunOptions } from '../lib/exec.js';
import { buildInitrd } from '../vm/initrd.js';
import { moduleIndex, resolveModules, type Kernel } from '../vm/kernel.js';
import { walk } from '../lib/fsutil.js';
import { hashFile } from '../lib/hash.js';

export type PartitionTable = 'msdos' | 'gpt';

export interface DiskImageOptions {
  /** output image (raw) */
  out: string;
  /** total size in bytes */
  size: number;
  /** root file system: a tarball (.tar, .tar.gz, .tar.xz, .tar.zst) */
  rootfs: string;
  /** scratch directory (the rootfs is extracted here) */
  work: string;
  table?: PartitionTable;
  /** size of the FAT boot partition in bytes (default 64 MiB) */
  bootSize?: number;
  /** 'syslinux' (BIOS; msdos or GPT) or 'none' (partitions and file systems only) */
  bootloader?: 'syslinux' | 'none';
  /** kernel to boot when the rootfs has none in /boot (or to override it) */
  kernel?: Kernel;
  hostname?: string;
  /** plain root password (hashed with SHA-512 crypt into /etc/shadow); none: unchanged */
  rootPassword?: string;
  /** extra kernel command line (after root=... ro console=...) */
  append?: string;
  /** extra modules for the initrd */
  modules?: string[];
  sourceDateEpoch: number;
  /** extra seed for the ids (default: hash of the rootfs and the options) */
  seed?: string;
  log?: (s: string) => void;
  signal?: AbortSignal;
}

export interface DiskImage {
  path: string;
  table: PartitionTable;
  rootUuid: string;
  /** partition offsets and sizes in bytes */
  partitions: { name: string; start: number; size: number }[];
  kernelVersion?: string;
  append?: string;
}

const SECTOR = 512;
const MiB = 1024 * 1024;
/** storage and file system drivers the initrd loads when the kernel has them */
export const BOOT_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_scsi', 'sd_mod', 'ahci', 'ata_piix', 'ata_generic', 'nvme', 'crc32c_generic', 'ext4'];

const MBR_CANDIDATES = { msdos: ['/usr/lib/SYSLINUX/mbr.bin', '/usr/lib/syslinux/mbr/mbr.bin'], gpt: ['/usr/lib/SYSLINUX/gptmbr.bin', '/usr/lib/syslinux/mbr/gptmbr.bin'] };
const GPT_ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const GPT_LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';

/** A UUID (version 4 layout) from a seed. */
export function seededUuid(seed: string, what: string): string {
  const h = createHash('sha256').update(`${seed}\0${what}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** Newest /boot/vmlinuz-KVER in an extracted rootfs whose /lib/modules/KVER exists. */
export function rootfsKernel(root: string): Kernel | undefined {
  const boot = join(root, 'boot');
  if (!existsSync(boot)) return undefined;
  const vers = readdirSync(boot)
    .filter((n) => n.startsWith('vmlinuz-'))
    .map((n) => n.slice('vmlinuz-'.length))
    .filter((v) => existsSync(join(root, 'usr/lib/modules', v)) || existsSync(join(root, 'lib/modules', v)))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const v = vers.at(-1);
  if (!v) return undefined;
  const mods = existsSync(join(root, 'usr/lib/modules', v)) ? join(root, 'usr/lib/modules', v) : join(root, 'lib/modules', v);
  return {
    version: v,
    package: `linux-image-${v}`,
    packageVersion: '',
    root,
    vmlinuz: join(boot, `vmlinuz-${v}`),
    systemMap: join(boot, `System.map-${v}`),
    config: join(boot, `config-${v}`),
    modulesDir: mods,
    headersPackage: `linux-headers-${v}`,
  };
}

/** The /init of the boot initrd: root= from the kernel command line (default: `root`, e.g. UUID=...). */
export function initScript(root: string): string {
  return `# kiln disk-image initrd: find the root file system, mount it, switch_root
root="${root}"
init=/sbin/init
for x in $(cat /proc/cmdline); do
  case "$x" in
    root=*) root="\${x#root=}" ;;
    init=*) init="\${x#init=}" ;;
  esac
done
n=0
while ! dev=$(findfs "$root" 2>/dev/null); do
  n=$((n + 1))
  if [ "$n" -gt 300 ]; then
    echo "kiln-initrd: root file system $root not found; a shell follows"
    exec sh
  fi
  sleep 0.1
done
mkdir -p /newroot
if ! mount -t ext4 -o ro "$dev" /newroot; then
  echo "kiln-initrd: cannot mount $dev ($root); a shell follows"
  exec sh
fi
[ -d /newroot/dev ] && mount --move /dev /newroot/dev
umount /proc /sys 2>/dev/null
exec switch_root /newroot "$init"
`;
}

async function sh(argv: string[], o: DiskImageOptions, extra: RunOptions = {}) {
  return run(argv, { log: o.log, signal: o.signal, ...extra });
}

function setMtime(path: string, t: number) {
  utimesSync(path, t, t);
}

/** Apply hostname, root password, fstab to an extracted rootfs. */
async function customize(root: string, o: DiskImageOptions, rootUuid: string, seed: string): Promise<void> {
  const t = o.sourceDateEpoch;
  const etc = join(root, 'etc');
  mkdirSync(etc, { recursive: true });
  const write = (rel: string, text: string, mode?: number) => {
    const p = join(root, rel);
    if (existsSync(p) && lstatSync(p).isSymbolicLink()) throw new KilnError(`disk-image: /${rel} in the rootfs is a symbolic link; not writing through it`);
    writeFileSync(p, text);
    if (mode !== undefined) chmodSync(p, mode);
    setMtime(p, t);
  };
  if (o.hostname) {
    if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*$/.test(o.hostname)) throw new KilnError(`disk-image: bad hostname '${o.hostname}'`);
    write('etc/hostname', `${o.hostname}\n`);
    const hostsPath = join(etc, 'hosts');
    let hosts = existsSync(hostsPath) ? readFileSync(hostsPath, 'utf8') : '127.0.0.1\tlocalhost\n';
    hosts = hosts.split('\n').filter((l) => !/^127\.0\.1\.1\s/.test(l)).join('\n').replace(/\n*$/, '\n');
    write('etc/hosts', hosts + `127.0.1.1\t${o.hostname}\n`);
  }
  if (o.rootPassword !== undefined) {
    const salt = createHash('sha256').update(`${seed}\0salt`).digest('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, 16);
    const r = await sh(['openssl', 'passwd', '-6', '-salt', salt, '-stdin'], o, { input: o.rootPassword + '\n', log: undefined });
    const hash = r.stdout.trim();
    const shadowPath = join(etc, 'shadow');
    const days = Math.floor(o.sourceDateEpoch / 86400);
    const lines = existsSync(shadowPath) ? readFileSync(shadowPath, 'utf8').split('\n').filter(Boolean) : [];
    const i = lines.findIndex((l) => l.startsWith('root:'));
    const f = i >= 0 ? lines[i]!.split(':') : ['root', '', '', '0', '99999', '7', '', '', ''];
    while (f.length < 9) f.push('');
    f[1] = hash;
    f[2] = String(days);
    if (i >= 0) lines[i] = f.join(':');
    else lines.unshift(f.join(':'));
    write('etc/shadow', lines.join('\n') + '\n', 0o640);
  }
  const fstab = join(etc, 'fstab');
  const old = existsSync(fstab) ? readFileSync(fstab, 'utf8') : '';
  const kept = old.split('\n').filter((l) => l.trim() && !/^\s*\S+\s+\/\s/.test(l));
  write('etc/fstab', [...kept, `UUID=${rootUuid}\t/\text4\terrors=remount-ro\t0\t1`].join('\n') + '\n');
  setMtime(etc, t);
}

/**
 * mke2fs -d copies atime and ctime of the extracted files (the extraction time): set them (and
 * mtimes newer than SOURCE_DATE_EPOCH) to SOURCE_DATE_EPOCH with debugfs, by path.
 */
async function normalizeTimes(root: string, fsSpec: string, o: DiskImageOptions, env: Record<string, string>): Promise<void> {
  const t = o.sourceDateEpoch;
  const cmds: string[] = [];
  let skipped = 0;
  for (const rel of ['', ...walk(root)]) {
    if (/["\\\n\r]/.test(rel)) {
      skipped++;
      continue;
    }
    const p = `"/${rel}"`;
    cmds.push(`sif ${p} atime @${t}`, `sif ${p} ctime @${t}`);
    if (lstatSync(join(root, rel)).mtimeMs > t * 1000) cmds.push(`sif ${p} mtime @${t}`);
  }
  if (skipped) o.log?.(`# ${skipped} file names with quotes, backslashes or newlines keep their extraction-time atime/ctime\n`);
  const file = join(o.work, 'debugfs-times.cmd');
  writeFileSync(file, cmds.join('\n') + '\n');
  const r = await sh(['debugfs', '-w', '-f', file, fsSpec], o, { log: undefined, env });
  const errs = r.stderr.split('\n').filter((l) => l.trim() && !/^debugfs \d/.test(l));
  if (errs.length) throw new KilnError(`disk-image: debugfs could not set file times:\n${errs.slice(0, 10).join('\n')}`);
}

/** Build the image; returns where things are. */
export async function buildDiskImage(o: DiskImageOptions): Promise<DiskImage> {
  const table = o.table ?? 'msdos';
  const bootloader = o.bootloader ?? 'syslinux';
  const bootSize = o.bootSize ?? 64 * MiB;
  if (bootSize % MiB) throw new KilnError('disk-image: the boot partition size must be a multiple of 1 MiB');
  const start1 = MiB;
  const minSize = start1 + bootSize + 16 * MiB + (table === 'gpt' ? MiB : 0);
  if (o.size < minSize) throw new KilnError(`disk-image: size ${o.size} is too small (at least ${minSize} bytes for ${bootSize / MiB} MiB boot + 16 MiB root)`);
  if (o.size % MiB) throw new KilnError('disk-image: the size must be a multiple of 1 MiB');

  const seed = o.seed ?? createHash('sha256').update(JSON.stringify({ rootfs: await hashFile(o.rootfs), size: o.size, table, bootSize, hostname: o.hostname, append: o.append })).digest('hex');
  const rootUuid = seededUuid(seed, 'root-fs');
  const hashSeed = seededUuid(seed, 'root-hash');
  const diskId = seededUuid(seed, 'disk');
  const fatId = seededUuid(seed, 'fat').replace(/-/g, '').slice(0, 8);
  const env = { SOURCE_DATE_EPOCH: String(o.sourceDateEpoch), E2FSPROGS_FAKE_TIME: String(o.sourceDateEpoch), TZ: 'UTC' };

  // 1. the rootfs, extracted (as root: owners and device nodes as in the tarball)
  const root = join(o.work, 'rootfs');
  mkdirSync(root, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  const state = join(o.work, 'fakeroot.state');
  const fr = (argv: string[], first = false) => (asRoot ? argv : ['fakeroot', first ? '-s' : '-i', state, ...(first ? [] : ['-s', state]), '--', ...argv]);
  o.log?.(`# extracting ${o.rootfs}\n`);
  await sh(fr(['tar', '--numeric-owner', '-xpf', o.rootfs, '-C', root], true), o);
  await customize(root, o, rootUuid, seed);

  // 2. partitions
  const sectors = o.size / SECTOR;
  const bootSectors = bootSize / SECTOR;
  const fd = openSync(o.out, 'w');
  ftruncateSync(fd, o.size);
  closeSync(fd);
  const rootStart = start1 / SECTOR + bootSectors;
  const rootSectors = table === 'gpt' ? sectors - rootStart - 34 : sectors - rootStart;
  const script =
    table === 'msdos'
      ? `label: dos\nlabel-id: 0x${diskId.slice(0, 8)}\nunit: sectors\n\nstart=${start1 / SECTOR}, size=${bootSectors}, type=e, bootable\nstart=${rootStart}, size=${rootSectors}, type=83\n`
      : `label: gpt\nlabel-id: ${diskId.toUpperCase()}\nunit: sectors\nfirst-lba: 34\nlast-lba: ${sectors - 34}\n\n` +
        `start=${start1 / SECTOR}, size=${bootSectors}, type=${GPT_ESP}, uuid=${seededUuid(seed, 'part-boot').toUpperCase()}, name="boot", attrs="LegacyBIOSBootable"\n` +
        `start=${rootStart}, size=${rootSectors}, type=${GPT_LINUX}, uuid=${seededUuid(seed, 'part-root').toUpperCase()}, name="root"\n`;
  await sh(['sfdisk', '--no-reread', '--no-tell-kernel', '-q', o.out], o, { input: script });
  const parts = [
    { name: 'boot', start: start1, size: bootSize },
    { name: 'root', start: rootStart * SECTOR, size: rootSectors * SECTOR },
  ];

  // 3. root file system (ext4), straight into the image at its offset
  const blocks = Math.floor(parts[1]!.size / 4096);
  o.log?.(`# mke2fs -d (${blocks} blocks of 4 KiB) at offset ${parts[1]!.start}\n`);
  await sh(
    fr([
      'mke2fs', '-q', '-F', '-t', 'ext4', '-b', '4096', '-L', 'root', '-U', rootUuid, '-m', '1',
      '-E', `offset=${parts[1]!.start},hash_seed=${hashSeed},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0`,
      '-d', root, o.out, String(blocks),
    ]),
    o,
    { env },
  );

  await normalizeTimes(root, `${o.out}?offset=${parts[1]!.start}`, o, env);

  // 4. boot partition (FAT16), kernel, initrd, syslinux
  let kernelVersion: string | undefined;
  let append: string | undefined;
  await sh(['mkfs.vfat', '-F', '16', '-n', 'BOOT', '-i', fatId, '--invariant', `--offset=${start1 / SECTOR}`, '-h', String(start1 / SECTOR), o.out, String(bootSize / 1024)], o, { env });
  if (bootloader === 'syslinux') {
    const kernel = o.kernel ?? rootfsKernel(root);
    if (!kernel) throw new KilnError(`disk-image: the rootfs has no /boot/vmlinuz-* with its /lib/modules, and no kernel was given (kernel = debian)`);
    kernelVersion = kernel.version;
    const idx = moduleIndex(kernel);
    // the storage drivers this kernel has as modules (built-in ones need no loading), plus the extra ones
    const mods = [...BOOT_MODULES.filter((m) => idx.has(m.replace(/-/g, '_'))), ...(o.modules ?? [])];
    try {
      resolveModules(kernel.modulesDir, o.modules ?? []);
    } catch (e) {
      throw new KilnError(`disk-image: kernel ${kernel.version}: ${(e as Error).message}`);
    }
    const boot = join(o.work, 'boot');
    mkdirSync(boot, { recursive: true });
    buildInitrd(join(boot, 'initrd.gz'), { init: initScript(`UUID=${rootUuid}`), execInit: true, kernel, modules: mods, sourceDateEpoch: o.sourceDateEpoch });
    append = `root=UUID=${rootUuid} ro console=tty0 console=ttyS0,115200${o.append ? ' ' + o.append : ''}`;
    writeFileSync(join(boot, 'syslinux.cfg'), `SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT linux\n\nLABEL linux\n  LINUX /vmlinuz\n  INITRD /initrd.gz\n  APPEND ${append}\n`);
    writeFileSync(join(boot, 'kernel-version'), `${kernel.version}\n`);
    const copies: [string, string][] = [
      [kernel.vmlinuz, 'vmlinuz'],
      [join(boot, 'initrd.gz'), 'initrd.gz'],
      [join(boot, 'syslinux.cfg'), 'syslinux.cfg'],
      [join(boot, 'kernel-version'), 'kernel-version'],
    ];
    for (const [src] of copies) setMtime(src, o.sourceDateEpoch);
    const img = `${o.out}@@${start1}`;
    // ldlinux.sys/ldlinux.c32 first, then the rest (mcopy -m keeps the source mtimes)
    await sh(['syslinux', '--offset', String(start1), '--install', o.out], o, { env: { ...env, MTOOLS_SKIP_CHECK: '1' } });
    for (const [src, dest] of copies) await sh(['mcopy', '-m', '-o', '-i', img, src, `::${dest}`], o, { env: { ...env, MTOOLS_SKIP_CHECK: '1' } });
    const mbr = MBR_CANDIDATES[table].find(existsSync);
    if (!mbr) throw new KilnError('disk-image: syslinux MBR code not found (Debian package: syslinux)');
    const code = readFileSync(mbr).subarray(0, 440);
    const wfd = openSync(o.out, 'r+');
    try {
      writeSync(wfd, code, 0, code.length, 0);
    } finally {
      closeSync(wfd);
    }
  }
  return { path: o.out, table, rootUuid, partitions: parts, kernelVersion, append };
}
