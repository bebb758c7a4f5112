// kiln:recovery-iso: a disk image (kiln:disk-image) captured in Clonezilla's format
// (kiln:clonezilla-image), put on a bootable isolinux ISO with a live system from a kiln chroot;
// in QEMU (TCG) the ISO restores it unattended onto a blank disk with Debian's ocs-sr and powers
// off; the restored disk then boots to the original system's marker. Failure cases: a missing
// image (build error with file:line), a target that is too small and a corrupt image (a console
// message, the target disk untouched).
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, writeSync, realpathSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { debianKernel, type Kernel } from '../src/vm/kernel.js';
import { blankDisk, withVm } from '../src/vm/qemu.js';
import { kilnP, project } from './helpers/kiln.js';
import { busyboxRootfs } from './helpers/images.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const SDE = 1700000000;
const MiB = 1024 * 1024;
/** the live system's packages: the same list as the clonezilla-image restore guest, so both share one cached chroot */
const LIVE_PACKAGES = ['clonezilla', 'partclone', 'drbl', 'parted', 'gdisk', 'pigz', 'zstd', 'udev', 'kmod', 'e2fsprogs', 'dosfstools', 'bc', 'procps', 'gawk', 'util-linux', 'fdisk'];
let kernel: Kernel;
let tmp: string;
let proj: ReturnType<typeof project>;

const pgrep = (pattern: string) => spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).stdout.trim();
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

const cfg = (parts: string, extra = '') => `[buildout]
parts = ${parts}
source-date-epoch = ${SDE}

[server-disk]
recipe = kiln:disk-image
rootfs = ${join(tmp, 'bbroot.tar')}
size = 96M
boot-size = 32M
hostname = dns1

[server-image]
recipe = kiln:clonezilla-image
disk = \${server-disk:location}/disk.img
name = dns1-image

[restore-live]
recipe = kiln:chroot
variant = minbase
packages = ${LIVE_PACKAGES.join(' ')}

[recovery]
recipe = kiln:recovery-iso
image = \${server-image:location}
live = \${restore-live:location}
target = vda
confirm = no
timeout = 1
kernel-append = kiln_debug_exit=1
${extra}`;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-recovery-'));
  kernel = await debianKernel({ cacheDir: CACHE });
  // a busybox system whose init prints a marker with the hostname and a file's content, then powers off
  busyboxRootfs(join(tmp, 'bbroot'), join(tmp, 'bbroot.tar'), {
    kernel,
    sourceDateEpoch: SDE,
    inittab: '::sysinit:/etc/init.d/rcS\n',
    rcS:
      '#!/bin/sh\nmount -t proc proc /proc\nhostname -F /etc/hostname\necho "KILN-ORIGINAL-SYSTEM host=$(hostname) data=$(cat /srv/data.txt)"\n' +
      'printf "\\\\001" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null\npoweroff -f\n',
    files: { 'srv/data.txt': 'the dns zone\n' },
  });
  proj = project({ 'buildout.cfg': cfg('recovery') });
  const t0 = Date.now();
  const r = await kilnP(proj.dir, ['build'], { KILN_CACHE_DIR: CACHE });
  if (r.code !== 0) throw new Error(r.stderr);
  console.log(`disk image + Clonezilla image + live chroot + ISO: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}, 1_800_000);

const iso = () => realpathSync(join(proj.dir, 'out/parts/recovery/recovery.iso'));

/** boot the ISO with a target disk; returns the guest's status and the console */
async function bootIso(isoFile: string, target: string, name: string, timeoutMs = 900_000) {
  const t0 = Date.now();
  const log = join(tmp, `${name}.log`);
  const r = await withVm({ cdrom: isoFile, boot: 'cdrom', disks: [{ file: target, format: 'raw' }], memory: 768, cpus: 2, serialLog: log, timeoutMs, name: `riso-${name}` }, async (vm) => {
    const x = await vm.exited;
    return x;
  });
  return { status: r.debugExit, seconds: (Date.now() - t0) / 1000, console: readFileSync(log, 'utf8') };
}

describe('kiln:recovery-iso', () => {
  test('the ISO: hybrid, bootable, menu naming the image, size reported; reproducible', async () => {
    const f = iso();
    const report = execFileSync('xorriso', ['-indev', f, '-report_el_torito', 'plain'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(report).toMatch(/El Torito boot img\s*:\s*1\s+BIOS/);
    expect(report).toMatch(/El Torito boot img\s*:\s*2\s+UEFI/);
    const ls = execFileSync('xorriso', ['-indev', f, '-find', '/', '-type', 'f'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    for (const p of ['/live/vmlinuz', '/live/initrd.gz', '/live/filesystem.squashfs', '/isolinux/isolinux.cfg', '/kiln/recovery.env', '/kiln/SHA256SUMS', '/home/partimag/dns1-image/disk', '/home/partimag/dns1-image/parts']) expect(ls).toContain(`'${p}'`);
    // isohybrid MBR: boot signature at 510
    const fd = openSync(f, 'r');
    const mbr = Buffer.alloc(512);
    readSync(fd, mbr, 0, 512, 0);
    closeSync(fd);
    expect(mbr.readUInt16LE(510)).toBe(0xaa55);
    const cfgOut = join(tmp, 'isolinux.cfg');
    execFileSync('xorriso', ['-osirrox', 'on', '-indev', f, '-extract', '/isolinux/isolinux.cfg', cfgOut], { stdio: ['ignore', 'pipe', 'pipe'] });
    const cfgText = readFileSync(cfgOut, 'utf8');
    expect(cfgText).toMatch(/MENU LABEL Restore dns1-image onto \/dev\/vda \(no questions\), then poweroff/);
    const info = JSON.parse(readFileSync(join(proj.dir, 'out/parts/recovery/recovery.json'), 'utf8'));
    expect(info.size).toBe(readFileSync(f).length);
    console.log(`recovery.iso: ${(info.size / 1e6).toFixed(1)} MB, ${info.fits}`);
    const log = readFileSync(join(proj.dir, 'out/logs/recovery.log'), 'utf8');
    expect(log).toMatch(/recovery\.iso: \d+ bytes .*fits on a CD/);
    // a second project, another directory, later: the same bytes
    const again = project({ 'buildout.cfg': cfg('recovery') });
    const r = await kilnP(again.dir, ['build'], { KILN_CACHE_DIR: CACHE });
    expect(r.code, r.stderr).toBe(0);
    expect(sha(join(again.dir, 'out/parts/recovery/recovery.iso'))).toBe(sha(f));
  }, 900_000);

  test('boots in QEMU, restores unattended onto a blank disk, powers off; the restored disk boots to the original system', async () => {
    const target = blankDisk(join(tmp, 'target.img'), 128 * MiB);
    const r = await bootIso(iso(), target, 'restore');
    console.log(`recovery ISO boot + ocs-sr restore + power off under TCG: ${r.seconds.toFixed(1)} s`);
    expect(r.console).toContain('KILN-RECOVERY-CHECKED image dns1-image');
    expect(r.console, r.console.slice(-3000)).toContain('KILN-RECOVERY-DONE');
    expect(r.status).toBe(0);
    expect(pgrep('kiln-riso-restore')).toBe('');
    // the restored disk: the same partition table, then it boots with its own bootloader
    const pt = (f: string) => (JSON.parse(execFileSync('sfdisk', ['--json', f], { encoding: 'utf8' })).partitiontable.partitions as Array<Record<string, unknown>>).map(({ node, ...rest }) => rest);
    expect(pt(target)).toEqual(pt(realpathSync(join(proj.dir, 'out/parts/server-disk/disk.img'))));
    const t0 = Date.now();
    const b = await withVm({ disks: [{ file: target, format: 'raw', snapshot: true }], serialLog: join(tmp, 'restored-boot.log'), timeoutMs: 300_000, name: 'riso-restored' }, async (vm) => {
      const m = await vm.waitFor(/KILN-ORIGINAL-SYSTEM host=(\S+) data=([^\r\n]*)\r?\n/);
      const x = await vm.exited;
      return { m, x };
    });
    console.log(`restored disk boot to the original marker under TCG: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(b.m).toContain('host=dns1 data=the dns zone');
    expect(b.x.debugExit).toBe(1);
    expect(pgrep('kiln-riso-')).toBe('');
  }, 1_200_000);

  test('a target smaller than the image: message on the console, non-zero status, the disk untouched', async () => {
    const small = blankDisk(join(tmp, 'small.img'), 32 * MiB);
    writeFileSync(small, Buffer.alloc(32 * MiB, 0x5a));
    const before = sha(small);
    const r = await bootIso(iso(), small, 'small', 600_000);
    console.log(`too-small target refused after ${r.seconds.toFixed(1)} s`);
    expect(r.console).toMatch(/KILN-RECOVERY-ERROR: target disk \/dev\/vda is too small: 33554432 bytes, the image dns1-image needs 100663296 bytes/);
    expect(r.console).toContain('the target disk was not written');
    expect(r.status).toBe(14);
    expect(sha(small)).toBe(before);
  }, 900_000);

  test('UEFI: the ISO boots under OVMF through GRUB into the live system; a too-small target is refused, untouched', async () => {
    const small = blankDisk(join(tmp, 'small-uefi.img'), 32 * MiB);
    writeFileSync(small, Buffer.alloc(32 * MiB, 0x5a));
    const before = sha(small);
    const t0 = Date.now();
    const log = join(tmp, 'uefi.log');
    const x = await withVm({ cdrom: iso(), boot: 'cdrom', uefi: true, disks: [{ file: small, format: 'raw' }], memory: 768, cpus: 2, serialLog: log, timeoutMs: 600_000, name: 'riso-uefi' }, async (vm) => vm.exited);
    const out = readFileSync(log, 'utf8');
    console.log(`UEFI (OVMF, GRUB) boot to the live system's refusal: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(out, out.slice(-3000)).toMatch(/KILN-RECOVERY-ERROR: target disk \/dev\/vda is too small/);
    expect(x.debugExit).toBe(14);
    expect(sha(small)).toBe(before);
    expect(pgrep('kiln-riso-uefi')).toBe('');
  }, 900_000);

  test('a corrupt image on the medium: caught before writing, the disk untouched', async () => {
    // flip one byte inside the first partclone image file on a copy of the ISO
    const bad = join(tmp, 'corrupt.iso');
    copyFileSync(iso(), bad);
    const files = execFileSync('xorriso', ['-indev', bad, '-find', '/home/partimag/dns1-image', '-name', '*ptcl-img*', '-exec', 'report_lba', '--'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const m = /File data lba:\s*\d+\s*,\s*(\d+)\s*,\s*\d+\s*,\s*(\d+)\s*,/.exec(files);
    expect(m, files).not.toBeNull();
    const at = Number(m![1]) * 2048 + Math.floor(Number(m![2]) / 2);
    const fd = openSync(bad, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
    const target = blankDisk(join(tmp, 'target2.img'), 128 * MiB);
    const before = sha(target);
    const r = await bootIso(bad, target, 'corrupt', 600_000);
    console.log(`corrupt image refused after ${r.seconds.toFixed(1)} s`);
    expect(r.console).toMatch(/KILN-RECOVERY-ERROR: the image dns1-image is corrupt/);
    expect(r.status).toBe(15);
    expect(sha(target)).toBe(before);
  }, 900_000);

  test.each([
    ['target', 'target = /dev/sd a', /\[recovery\] target: expected a disk name \(vda, sda, nvme0n1\) or auto/],
    ['confirm', 'confirm = maybe', /\[recovery\] confirm: expected yes, no, got 'maybe'/],
    ['after', 'after = halt', /\[recovery\] after: expected poweroff, reboot, shell, got 'halt'/],
    ['label', 'label = kiln recovery', /\[recovery\] label: expected 1-32 characters A-Z 0-9 _/],
    ['kernel-append', 'kernel-append = quiet;reboot', /\[recovery\] kernel-append: unexpected characters/],
  ])('bad option %s: an error naming file:line, nothing built', async (opt, line, re) => {
    const text = cfg('recovery').replace(new RegExp(`^${opt} = .*$`, 'm'), line);
    const p = project({ 'buildout.cfg': text.includes(line) ? text : `${text}${line}\n` });
    const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`buildout\\.cfg:\\d+: ${re.source}`));
    expect(existsSync(join(p.dir, 'out/parts'))).toBe(false);
  }, 120_000);

  test('a missing image is a build error naming file:line, part and option', async () => {
    const p = project({ 'buildout.cfg': cfg('recovery').replace('image = ${server-image:location}', 'image = /nonexistent/image') });
    const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/buildout\.cfg:\d+: \[recovery\] image: \/nonexistent\/image does not exist/);
    expect(existsSync(join(p.dir, 'out/parts/recovery'))).toBe(false);
  }, 300_000);
});
