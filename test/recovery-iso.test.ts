// kiln:recovery-iso: a disk image (kiln:disk-image) captured in Clonezilla's format
// (kiln:clonezilla-image), put on a bootable isolinux ISO with a live system from a kiln chroot;
// in QEMU (TCG) the ISO restores it unattended onto a blank disk with Debian's ocs-sr and powers
// off; the restored disk then boots to the original system's marker. Failure cases: a missing
// image (build error with file:line), a target that is too small and a corrupt image (a console
// message, the target disk untouched).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, writeSync, realpathSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { debianKernel, type Kernel } from '../src/vm/kernel.js';
import { blankDisk, ovmfFirmware, withVm } from '../src/vm/qemu.js';
import { kilnP, project } from './helpers/kiln.js';
import { busyboxRootfs } from './helpers/images.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const SDE = 1700000000;
const MiB = 1024 * 1024;
const SNAKEOIL = '/usr/share/ovmf/PkKek-1-snakeoil';
const ALL = 'recovery recovery-sb recovery-own recovery-label';
const BUILD_ENV = { KILN_CACHE_DIR: CACHE, KILN_TEST_SB_PASS: 'snakeoil' };
/** the live system's packages: the same list as the clonezilla-image restore guest, so both share one cached chroot */
const LIVE_PACKAGES = ['clonezilla', 'partclone', 'drbl', 'parted', 'gdisk', 'pigz', 'zstd', 'udev', 'kmod', 'e2fsprogs', 'dosfstools', 'bc', 'procps', 'gawk', 'util-linux', 'fdisk'];
let kernel: Kernel;
let tmp: string;
let proj: ReturnType<typeof project>;

const pgrep = (pattern: string) => spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).stdout.trim();
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
/** a disk's partition table without the device names */
const ptable = (file: string) => (JSON.parse(execFileSync('sfdisk', ['--json', file], { encoding: 'utf8' })).partitiontable.partitions as Array<Record<string, unknown>>).map(({ node, ...rest }) => rest);

const cfg = (parts: string, extra = '') => `[buildout]
parts = ${parts}
source-date-epoch = ${SDE}

[server-disk]
recipe = kiln:disk-image
rootfs = ${join(tmp, 'bbroot.tar')}
size = 96M
boot-size = 32M
hostname = dns1

# saved as from vda, the guests' disk: ocs-sr restores without converting the image first (its
# create-ocs-tmp-img/ocs-cvt-dev path, sda -> vda, is tested in test/clonezilla-image.test.ts)
[server-image]
recipe = kiln:clonezilla-image
disk = \${server-disk:location}/disk.img
name = dns1-image
target-device-name = vda

[restore-live]
recipe = kiln:chroot
variant = minbase
packages = ${LIVE_PACKAGES.join(' ')}

# UEFI Secure Boot through Debian's signed shim, GRUB and kernel; the target chosen by target = auto;
# the image on a second medium found by its file-system label (one boot covers both paths)
[recovery-sb]
recipe = kiln:recovery-iso
image = \${server-image:location}
live = \${restore-live:location}
target = auto
confirm = no
timeout = 1
label = KILN_RECOVERY_SB
secure-boot = yes
image-location = label:KILNIMAGES
kernel-append = kiln_debug_exit=1

# own keys (Debian's snakeoil test key, encrypted: its passphrase comes from the environment);
# the test hook corrupts the restored root file system before verification
[recovery-own]
recipe = kiln:recovery-iso
image = \${server-image:location}
live = \${restore-live:location}
target = auto
confirm = no
timeout = 1
label = KILN_RECOVERY_OWN
secure-boot = yes
secure-boot-key = ${SNAKEOIL}.key
secure-boot-cert = ${SNAKEOIL}.pem
secure-boot-key-passphrase-env = KILN_TEST_SB_PASS
kernel-append = kiln_debug_exit=1 kiln_test_corrupt=2:/srv/data.txt

# the image on a second medium found by its file-system label
[recovery-label]
recipe = kiln:recovery-iso
image = \${server-image:location}
live = \${restore-live:location}
target = auto
confirm = no
timeout = 1
label = KILN_RECOVERY_LBL
image-location = label:KILNIMAGES
kernel-append = kiln_debug_exit=1

[recovery]
recipe = kiln:recovery-iso
image = \${server-image:location}
live = \${restore-live:location}
target = vda
confirm = no
timeout = 1
kernel-append = kiln_debug_exit=1
${extra}
`;

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
  proj = project({ 'buildout.cfg': cfg(ALL) });
  const t0 = Date.now();
  const r = await kilnP(proj.dir, ['build'], BUILD_ENV);
  if (r.code !== 0) throw new Error(r.stderr);
  console.log(`disk image + Clonezilla image + live chroot + 4 ISOs: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}, 1_800_000);

const iso = (part = 'recovery') => realpathSync(join(proj.dir, `out/parts/${part}/recovery.iso`));

/** the second medium: an ext4 file system labelled KILNIMAGES holding the part's image-medium/ */
function imageMedium(part = 'recovery-label'): string {
  const medium = join(tmp, `images-${part}.img`);
  if (!existsSync(medium)) execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'KILNIMAGES', '-d', realpathSync(join(proj.dir, `out/parts/${part}/image-medium`)), medium, '64M']);
  return medium;
}

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
    const r = await kilnP(again.dir, ['build'], BUILD_ENV);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(join(again.dir, 'out/parts/recovery/recovery.iso'))).toBe(sha(f));
  }, 900_000);

  test.each([
    ['target', 'target = /dev/sd a', /\[recovery\] target: expected a disk name \(vda, sda, nvme0n1\) or auto/],
    ['confirm', 'confirm = maybe', /\[recovery\] confirm: expected yes, no, got 'maybe'/],
    ['after', 'after = halt', /\[recovery\] after: expected poweroff, reboot, shell, got 'halt'/],
    ['label', 'label = kiln recovery', /\[recovery\] label: expected 1-32 characters A-Z 0-9 _/],
    ['kernel-append', 'kernel-append = quiet;reboot', /\[recovery\] kernel-append: expected kernel parameters \(letters, digits, _ \. , = : \/ \+ - and spaces\), got 'quiet;reboot'/],
  ])('bad option %s: an error naming file:line, nothing built', async (opt, line, re) => {
    // only the [recovery] section (the last one) gets the bad line
    const [head, tail] = cfg('recovery').split('\n[recovery]\n') as [string, string];
    const t = tail.replace(new RegExp(`^${opt} = .*$`, 'm'), line);
    const p = project({ 'buildout.cfg': `${head}\n[recovery]\n${t.includes(line) ? t : `${t}${line}\n`}` });
    const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`buildout\\.cfg:\\d+: ${re.source}`));
    expect(existsSync(join(p.dir, 'out/parts'))).toBe(false);
  }, 120_000);

  test('a missing image is a build error naming file:line, part and option', async () => {
    // only the [recovery] section (the last one) loses its image
    const [head, tail] = cfg('recovery').split('\n[recovery]\n') as [string, string];
    const p = project({ 'buildout.cfg': `${head}\n[recovery]\n${tail.replace('image = ${server-image:location}', 'image = /nonexistent/image')}` });
    const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/buildout\.cfg:\d+: \[recovery\] image: \/nonexistent\/image does not exist/);
    expect(existsSync(join(p.dir, 'out/parts/recovery'))).toBe(false);
  }, 300_000);

  test('Secure Boot with Debian-signed shim, GRUB and kernel (OVMF, Microsoft keys enforced): the live system reports Secure Boot on, finds the image on a second disk by its label, target = auto restores and verifies; the restored disk boots', async () => {
    const f = iso('recovery-sb');
    // the signed chain, laid out where the firmware and the signed GRUB look
    const efiImg = join(tmp, 'sb-efi.img');
    execFileSync('xorriso', ['-osirrox', 'on', '-indev', f, '-extract', '/boot/grub/efi.img', efiImg], { stdio: ['ignore', 'pipe', 'pipe'] });
    const fat = (p: string, out: string) => execFileSync('mcopy', ['-n', '-i', efiImg, `::/${p}`, out], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    fat('EFI/BOOT/BOOTX64.EFI', join(tmp, 'sb-boot.efi'));
    fat('EFI/BOOT/grubx64.efi', join(tmp, 'sb-grub.efi'));
    fat('EFI/debian/grub.cfg', join(tmp, 'sb-grub.cfg'));
    expect(sha(join(tmp, 'sb-boot.efi'))).toBe(sha('/usr/lib/shim/shimx64.efi.signed'));
    expect(sha(join(tmp, 'sb-grub.efi'))).toBe(sha('/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed'));
    expect(readFileSync(join(tmp, 'sb-grub.cfg'), 'utf8')).toMatch(/search --no-floppy --set=root --file \/kiln\/recovery\.env/);

    // image-location = label:KILNIMAGES: the ISO carries no partclone image, a second disk does
    const ls = execFileSync('xorriso', ['-indev', f, '-find', '/home', '-type', 'f'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(ls).not.toContain('ptcl-img');
    const medium = imageMedium('recovery-sb');

    // one boot covers the Secure Boot chain and the labelled image medium (formerly two full
    // restores of about 160 s each under TCG: this one and a UEFI one without Secure Boot, whose
    // firmware path the missing-label refusal below still boots)
    const target = blankDisk(join(tmp, 'target-sb.img'), 128 * MiB);
    const log = join(tmp, 'sb.log');
    const t0 = Date.now();
    const x = await withVm({ cdrom: f, boot: 'cdrom', ovmf: ovmfFirmware('secureboot-ms', tmp), disks: [{ file: target, format: 'raw' }, { file: medium, format: 'raw', readonly: true }], memory: 1024, cpus: 2, serialLog: log, timeoutMs: 1_200_000, name: 'riso-sb' }, async (vm) => vm.exited);
    const out = readFileSync(log, 'utf8');
    console.log(`UEFI Secure Boot (shim, GRUB, kernel signed by Debian) boot + restore from a labelled second disk + verify under TCG: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(out, out.slice(-3000)).toMatch(/KILN-RECOVERY-FIRMWARE firmware=uefi secure-boot=enabled lockdown=integrity/);
    expect(out).toContain('image dns1-image on /dev/vdb (label KILNIMAGES)');
    expect(out).toContain('target = auto chose /dev/vda');
    expect(out).toMatch(/KILN-RECOVERY-VERIFY \/dev\/vda1 fs=vfat fsck=pass checksum=pass/);
    expect(out).toMatch(/KILN-RECOVERY-VERIFY \/dev\/vda2 fs=ext4 fsck=pass checksum=pass/);
    expect(out).toContain('KILN-RECOVERY-VERIFIED /dev/vda matches the image dns1-image');
    expect(out).toContain('KILN-RECOVERY-DONE');
    expect(out).toMatch(/KILN-RECOVERY-STATUS 0\b/);
    // lockdown keeps the guest from writing to I/O ports: no isa-debug-exit status, a clean power-off
    expect(x.timedOut).toBe(false);
    expect(ptable(target)).toEqual(ptable(realpathSync(join(proj.dir, 'out/parts/server-disk/disk.img'))));
    const b = await withVm({ disks: [{ file: target, format: 'raw', snapshot: true }], serialLog: join(tmp, 'restored-sb-boot.log'), timeoutMs: 300_000, name: 'riso-sb-restored' }, async (vm) => {
      const m = await vm.waitFor(/KILN-ORIGINAL-SYSTEM host=(\S+) data=([^\r\n]*)\r?\n/);
      await vm.exited;
      return m;
    });
    expect(b).toContain('host=dns1 data=the dns zone');
    expect(pgrep('kiln-riso-sb')).toBe('');
  }, 1_800_000);

  test('Secure Boot with own keys (OVMF with the snakeoil db): the signed unified kernel image boots enforced, restores, and the verification reports the corruption the test hook made; the same ISO unsigned is refused by the firmware; the key is in neither the ISO nor the log', async () => {
    const f = iso('recovery-own');
    // the key never enters the ISO or the build log
    const der = execFileSync('openssl', ['pkey', '-in', `${SNAKEOIL}.key`, '-passin', 'pass:snakeoil', '-outform', 'DER']);
    const keyText = readFileSync(`${SNAKEOIL}.key`, 'utf8').split('\n')[1]!;
    const isoBytes = readFileSync(f);
    // the end of the PKCS#8 DER: the private CRT coefficient (the start holds the public modulus,
    // which the signature's certificate carries)
    expect(isoBytes.indexOf(der.subarray(der.length - 64))).toBe(-1);
    expect(isoBytes.indexOf(Buffer.from(keyText))).toBe(-1);
    const buildLog = readFileSync(join(proj.dir, 'out/logs/recovery-own.log'), 'utf8');
    expect(buildLog).not.toContain(keyText);
    expect(buildLog).not.toMatch(/PRIVATE KEY|pass:snakeoil/);
    const efiImg = join(tmp, 'own-efi.img');
    execFileSync('xorriso', ['-osirrox', 'on', '-indev', f, '-extract', '/boot/grub/efi.img', efiImg], { stdio: ['ignore', 'pipe', 'pipe'] });
    chmodSync(efiImg, 0o644);
    const mt = { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } };
    execFileSync('mcopy', ['-n', '-i', efiImg, '::/EFI/BOOT/BOOTX64.EFI', join(tmp, 'own.efi')], mt);
    execFileSync('sbverify', ['--cert', `${SNAKEOIL}.pem`, join(tmp, 'own.efi')], { stdio: 'pipe' });

    // booted with the snakeoil db (no Microsoft keys), Secure Boot enforced: the live system reports
    // it, restores (target = auto) and verifies; this ISO's test hook (kiln_test_corrupt) flips a byte
    // in the restored root file system after ocs-sr, so the verification must report failure
    const target = blankDisk(join(tmp, 'target-own.img'), 128 * MiB);
    const log = join(tmp, 'own.log');
    const t0 = Date.now();
    const x = await withVm({ cdrom: f, boot: 'cdrom', ovmf: ovmfFirmware('secureboot-snakeoil', tmp), disks: [{ file: target, format: 'raw' }], memory: 1024, cpus: 2, serialLog: log, timeoutMs: 1_200_000, name: 'riso-own' }, async (vm) => vm.exited);
    const out = readFileSync(log, 'utf8');
    console.log(`UEFI Secure Boot (own keys, signed UKI) boot + restore + failed verification (test hook) under TCG: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(out, out.slice(-3000)).toMatch(/KILN-RECOVERY-LIVE firmware=uefi secure-boot=enabled lockdown=integrity/);
    expect(out).toContain('target = auto chose /dev/vda');
    expect(out).toMatch(/TEST HOOK flipped the byte at offset \d+ of \/dev\/vda2/);
    expect(out).toMatch(/KILN-RECOVERY-VERIFY \/dev\/vda1 fs=vfat fsck=pass checksum=pass/);
    expect(out).toMatch(/KILN-RECOVERY-VERIFY \/dev\/vda2 fs=ext4 fsck=pass checksum=FAIL/);
    expect(out).toMatch(/KILN-RECOVERY-VERIFY-FAILED 1 partition\(s\) of \/dev\/vda/);
    expect(out).toMatch(/KILN-RECOVERY-STATUS 20\b/);
    expect(out).not.toContain('KILN-RECOVERY-DONE');
    expect(out).not.toContain('KILN-RECOVERY-VERIFIED');
    // lockdown: no isa-debug-exit status, a clean power-off
    expect(x.timedOut).toBe(false);

    // the same ISO with the signature removed from the unified kernel image: patched in place
    const bad = join(tmp, 'own-unsigned.iso');
    copyFileSync(f, bad);
    const unsigned = join(tmp, 'own-unsigned.efi');
    copyFileSync(join(tmp, 'own.efi'), unsigned);
    execFileSync('sbattach', ['--remove', unsigned], { stdio: 'pipe' });
    expect(spawnSync('sbverify', ['--cert', `${SNAKEOIL}.pem`, unsigned]).status).not.toBe(0);
    execFileSync('mcopy', ['-o', '-i', efiImg, unsigned, '::/EFI/BOOT/BOOTX64.EFI'], mt);
    const lba = execFileSync('xorriso', ['-indev', bad, '-find', '/boot/grub/efi.img', '-exec', 'report_lba', '--'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const m = /File data lba:\s*\d+\s*,\s*(\d+)\s*,\s*\d+\s*,\s*(\d+)\s*,/.exec(lba);
    expect(m, lba).not.toBeNull();
    const img = readFileSync(efiImg);
    expect(img.length).toBe(Number(m![2]));
    const fd = openSync(bad, 'r+');
    writeSync(fd, img, 0, img.length, Number(m![1]) * 2048);
    closeSync(fd);
    const t1 = Date.now();
    const refused = await withVm({ cdrom: bad, boot: 'cdrom', ovmf: ovmfFirmware('secureboot-snakeoil', tmp), disks: [{ file: target, format: 'raw', snapshot: true }], memory: 1024, cpus: 2, serialLog: join(tmp, 'own-unsigned.log'), timeoutMs: 300_000, name: 'riso-own-unsigned' }, async (vm) => {
      // bounded wait for the firmware's refusal; the VM is killed afterwards
      await vm.waitFor(/Access Denied|Security Violation/, 240_000);
      return vm.output();
    });
    console.log(`unsigned unified kernel image refused by the firmware after ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    expect(refused).not.toContain('KILN-RECOVERY-BOOT');
    expect(pgrep('kiln-riso-own')).toBe('');
  }, 1_800_000);

  test('refusals before writing: the image label missing (UEFI); target = auto with two candidate disks (both listed); disks unchanged', async () => {
    const filled = (name: string) => {
      const d = blankDisk(join(tmp, name), 128 * MiB);
      writeFileSync(d, Buffer.alloc(128 * MiB, 0x5a));
      return d;
    };
    const a = filled('cand-a.img');
    const before = sha(a);
    // under UEFI (OVMF, GRUB): the UEFI refusal path of the matrix
    const t1 = Date.now();
    const nolabel = join(tmp, 'nolabel.log');
    const x1 = await withVm({ cdrom: iso('recovery-label'), boot: 'cdrom', uefi: true, disks: [{ file: a, format: 'raw' }], memory: 768, cpus: 2, serialLog: nolabel, timeoutMs: 600_000, name: 'riso-nolabel' }, async (vm) => vm.exited);
    const out1 = readFileSync(nolabel, 'utf8');
    console.log(`UEFI (OVMF, GRUB): missing image label refused after ${((Date.now() - t1) / 1000).toFixed(1)} s`);
    expect(out1, out1.slice(-3000)).toMatch(/KILN-RECOVERY-FIRMWARE firmware=uefi secure-boot=disabled/);
    expect(out1).toMatch(/KILN-RECOVERY-ERROR: no file system labelled KILNIMAGES holds the image dns1-image/);
    expect(out1).toContain('the target disk was not written');
    expect(x1.debugExit).toBe(18);
    expect(sha(a)).toBe(before);
    expect(pgrep('kiln-riso-nolabel')).toBe('');

    const medium = imageMedium();
    const b = filled('cand-b.img');
    const t0 = Date.now();
    const log = join(tmp, 'ambiguous.log');
    const x = await withVm({ cdrom: iso('recovery-label'), boot: 'cdrom', disks: [{ file: a, format: 'raw' }, { file: b, format: 'raw' }, { file: medium, format: 'raw', readonly: true }], memory: 768, cpus: 2, serialLog: log, timeoutMs: 600_000, name: 'riso-ambiguous' }, async (vm) => vm.exited);
    const out = readFileSync(log, 'utf8');
    console.log(`target = auto with two candidates refused after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(out, out.slice(-3000)).toMatch(/KILN-RECOVERY-ERROR: target = auto is ambiguous: 2 candidate disks \(\/dev\/vda \/dev\/vdb\)/);
    expect(x.debugExit).toBe(17);
    expect(sha(a)).toBe(before);
    expect(sha(b)).toBe(before);
  }, 1_200_000);

  test('boots in QEMU, restores unattended onto a blank disk, powers off; the restored disk boots to the original system', async () => {
    const target = blankDisk(join(tmp, 'target.img'), 128 * MiB);
    const r = await bootIso(iso(), target, 'restore');
    console.log(`recovery ISO boot + ocs-sr restore + power off under TCG: ${r.seconds.toFixed(1)} s`);
    expect(r.console).toContain('KILN-RECOVERY-CHECKED image dns1-image');
    expect(r.console, r.console.slice(-3000)).toContain('KILN-RECOVERY-DONE');
    expect(r.console).toContain('KILN-RECOVERY-VERIFIED /dev/vda matches the image dns1-image');
    expect(r.console).toMatch(/KILN-RECOVERY-FIRMWARE firmware=bios secure-boot=n\/a/);
    expect(r.status).toBe(0);
    expect(pgrep('kiln-riso-restore')).toBe('');
    // the restored disk: the same partition table, then it boots with its own bootloader
    expect(ptable(target)).toEqual(ptable(realpathSync(join(proj.dir, 'out/parts/server-disk/disk.img'))));
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
});
