// kiln:disk-image: partitioned images built on plain files by byte offset, booted in QEMU with
// the BIOS (no -kernel) to a marker printed by the rootfs's init scripts.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { debianKernel, type Kernel } from '../src/vm/kernel.js';
import { bootVm, runConsoleScript, withVm } from '../src/vm/qemu.js';
import { buildDiskImage } from '../src/image/diskimage.js';
import { recipe } from '../src/kinds/disk-image.js';
import { recipe as qemuTest } from '../src/kinds/qemu-test.js';
import { makeContext } from './helpers/context.js';
import { kilnP, project } from './helpers/kiln.js';
import { BOOT_HOOK, DEBIAN_BOOT_CHROOT, busyboxRootfs } from './helpers/images.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const SDE = 1700000000;
let kernel: Kernel;
let tmp: string;
let bbTar: string;
/** the msdos image of the busybox rootfs (built by the first image test) */
let msdosImage: string | undefined;

const pgrep = (pattern: string) => spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).stdout.trim();
/** the build logs of a project (kiln writes one per part) */
const readLogs = (dir: string) =>
  existsSync(join(dir, 'out/logs')) ? readdirSync(join(dir, 'out/logs')).map((f) => readFileSync(join(dir, 'out/logs', f), 'utf8')).join('\n') : '';
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const LINE = (re: string) => new RegExp(`${re}[^\\r\\n]*\\r?\\n`);

/** partition table of an image file, as sfdisk reads it */
const sfdiskJson = (img: string) => JSON.parse(execFileSync('sfdisk', ['--json', img], { encoding: 'utf8' })).partitiontable;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-disk-image-'));
  kernel = await debianKernel({ cacheDir: CACHE });
  bbTar = busyboxRootfs(join(tmp, 'bbroot'), join(tmp, 'bbroot.tar'), {
    kernel,
    sourceDateEpoch: SDE,
    inittab: '::sysinit:/etc/init.d/rcS\nttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n',
    rcS:
      '#!/bin/sh\nmount -t proc proc /proc\nmount -t sysfs sys /sys\nmount -o remount,rw /\nhostname -F /etc/hostname\n' +
      'echo "KILN-DISK-BOOTED host=$(hostname) root=$(awk \'$2=="/"{print $1,$3}\' /proc/mounts) kernel=$(uname -r)"\n',
    files: { 'etc/shadow': 'root:*:19000:0:99999:7:::\n' },
  });
}, 900_000);

describe('disk-image recipe', () => {
  test('options are checked', () => {
    const v = (opts: Record<string, string>) => () => recipe.validate!({ part: 'img', options: makeContext('img', opts).options, projectDir: tmp, cacheDir: CACHE });
    expect(v({})).toThrow(/missing required option 'rootfs'/);
    expect(v({ rootfs: 'x.tar', 'partition-table': 'apm' })).toThrow(/partition-table: unknown partition table 'apm' \(msdos, gpt\)/);
    expect(v({ rootfs: 'x.tar', filesystem: 'xfs' })).toThrow(/filesystem: unknown file system 'xfs' \(ext4\)/);
    expect(v({ rootfs: 'x.tar', bootloader: 'grub' })).toThrow(/grub is not supported yet/);
    expect(v({ rootfs: 'x.tar', size: '100M', 'boot-size': '80M' })).toThrow(/too small/);
    expect(v({ rootfs: 'x.tar', size: '1000001' })).toThrow(/size: 1000001 is below the minimum 1048576/);
    expect(v({ rootfs: 'x.tar', size: '1048577' })).toThrow(/size: 1048577 is not a multiple of 1 MiB/);
    expect(v({ rootfs: 'x.tar', size: '256M', 'partition-table': 'gpt', hostname: 'a' })).not.toThrow();
  });

  test('msdos image from a busybox rootfs: layout, reproducible, boots with the BIOS to its marker', async () => {
    const ctx = makeContext('img', { rootfs: bbTar, size: '128M', 'boot-size': '32M', hostname: 'kiln-msdos', 'root-password': 'secret' });
    await recipe.install(ctx);
    const img = join(ctx.staging, 'disk.img');
    msdosImage = img;
    const meta = JSON.parse(readFileSync(join(ctx.staging, 'image.json'), 'utf8'));
    expect(meta).toMatchObject({ file: 'disk.img', table: 'msdos', kernel: kernel.version });
    const pt = sfdiskJson(img);
    expect(pt.label).toBe('dos');
    expect(pt.partitions.map((p: { start: number; type: string; bootable?: boolean }) => [p.start, p.type, !!p.bootable])).toEqual([
      [2048, 'e', true],
      [2048 + 65536, '83', false],
    ]);
    // the root file system, read at its offset: hostname, password hash, fstab
    const fs = `${img}?offset=${meta.partitions[1].start}`;
    const cat = (p: string) => execFileSync('debugfs', ['-R', `cat ${p}`, fs], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(cat('/etc/hostname')).toBe('kiln-msdos\n');
    expect(cat('/etc/shadow')).toMatch(/^root:\$6\$[^:]+:\d+:/);
    expect(cat('/etc/fstab')).toContain(`UUID=${meta.rootUuid}\t/\text4`);

    // the same inputs again: the same bytes
    const again = await buildDiskImage({ out: join(tmp, 'again.img'), size: 128 << 20, bootSize: 32 << 20, rootfs: bbTar, work: join(tmp, 'again'), hostname: 'kiln-msdos', rootPassword: 'secret', sourceDateEpoch: ctx.sourceDateEpoch });
    expect(again.rootUuid).toBe(meta.rootUuid);
    expect(sha(again.path)).toBe(sha(img));

    const t0 = Date.now();
    const seconds = await withVm({ disks: [{ file: img, snapshot: true }], serialLog: join(tmp, 'msdos.log'), timeoutMs: 300_000 }, async (vm) => {
      const m = await vm.waitForMatch(LINE('KILN-DISK-BOOTED'));
      const s = (Date.now() - t0) / 1000;
      expect(m[0]).toContain('host=kiln-msdos');
      expect(m[0]).toContain('root=/dev/vda2 ext4');
      expect(m[0]).toContain(`kernel=${kernel.version}`);
      await vm.waitFor('login:');
      return s;
    });
    console.log(`disk image (msdos, syslinux, busybox init) boot to marker: ${seconds.toFixed(1)} s (TCG)`);
    expect(sha(img)).toBe(sha(again.path)); // booted with snapshot=on: the image is unchanged
  });

  test('the image under kiln:qemu-test (makeContext): console markers, serial log and JUnit', async () => {
    expect(msdosImage).toBeDefined();
    const ctx = makeContext('boot-image', { disk: msdosImage!, expect: 'KILN-DISK-BOOTED host=kiln-msdos\nlogin:', pass: 'markers', timeout: '300' });
    await qemuTest.install(ctx);
    expect(readFileSync(join(ctx.staging, 'serial.log'), 'utf8')).toContain('KILN-DISK-BOOTED host=kiln-msdos');
    const xml = execFileSync('sh', ['-c', 'cat "$1"/test-results/*.xml', 'sh', ctx.staging], { encoding: 'utf8' });
    expect(xml).toMatch(/<testsuite [^>]*failures="0"/);
    // a marker the image never prints: the recipe fails with the console tail
    const bad = makeContext('boot-image-bad', { disk: msdosImage!, expect: 'KILN-DISK-BOOTED\nNEVER-PRINTED', pass: 'markers', timeout: '45' });
    await expect(qemuTest.install(bad)).rejects.toThrow(/NEVER-PRINTED[\s\S]*login:/);
  });

  test('GPT image with the cached Debian kernel (rootfs without /boot), qcow2 output, boots', async () => {
    // a rootfs without the kernel: the recipe takes kernel = debian
    const dir = join(tmp, 'nokernel');
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('tar', ['-xf', bbTar, '-C', dir]);
    rmSync(join(dir, 'boot'), { recursive: true });
    rmSync(join(dir, 'lib'), { recursive: true });
    const tar = join(tmp, 'nokernel.tar');
    execFileSync('tar', ['--sort=name', `--mtime=@${SDE}`, '--owner=0', '--group=0', '--numeric-owner', '-cf', tar, '-C', dir, '.']);
    const noKernel = makeContext('img', { rootfs: tar, size: '128M' });
    await expect(recipe.install(noKernel)).rejects.toThrow(/no \/boot\/vmlinuz-\* .*kernel = debian/);

    const ctx = makeContext('img', { rootfs: tar, size: '160M', 'partition-table': 'gpt', kernel: 'debian', hostname: 'kiln-gpt', format: 'qcow2' });
    await recipe.install(ctx);
    const meta = JSON.parse(readFileSync(join(ctx.staging, 'image.json'), 'utf8'));
    expect(meta).toMatchObject({ file: 'disk.qcow2', table: 'gpt', kernel: kernel.version });
    expect(existsSync(join(ctx.staging, 'disk.img'))).toBe(false);
    const raw = join(tmp, 'gpt.img');
    execFileSync('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', join(ctx.staging, 'disk.qcow2'), raw]);
    const pt = sfdiskJson(raw);
    expect(pt.label).toBe('gpt');
    expect(pt.partitions[0]).toMatchObject({ start: 2048, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', name: 'boot', attrs: 'LegacyBIOSBootable' });
    expect(pt.partitions[1]).toMatchObject({ type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', name: 'root' });

    const vm = bootVm({ disks: [{ file: join(ctx.staging, 'disk.qcow2'), format: 'qcow2', snapshot: true }], serialLog: join(tmp, 'gpt.log'), timeoutMs: 300_000 });
    try {
      const m = await vm.waitForMatch(LINE('KILN-DISK-BOOTED'));
      expect(m[0]).toContain('host=kiln-gpt');
    } finally {
      await vm.kill();
    }
  });
});

// A real Debian system booting systemd from a disk image, end to end through the CLI: a kiln:chroot
// part (bookworm minbase + systemd, cached by content in CACHE/chroots/: mmdebstrap runs once per
// cache) -> kiln:disk-image -> BIOS boot under TCG -> a marker from a systemd unit, the serial
// getty's login prompt, a root login and commands at the shell prompt.
// To keep the boot short the chroot's customize hook masks units a throw-away VM does not need
// (fsck, module loading, pseudo file system mounts, timers, VT gettys), and the kernel command
// line has `quiet systemd.show_status=0`.
describe('disk-image: Debian bookworm with systemd, from a kiln:chroot part', () => {
  test('boots to the systemd marker and a login prompt on ttyS0; root logs in', async () => {
    const cfg = [
      '[buildout]',
      'parts = debian image',
      '',
      ...DEBIAN_BOOT_CHROOT,
      '',
      '[image]',
      'recipe = kiln:disk-image',
      'rootfs = ${debian:location}/rootfs.tar',
      'size = 1G',
      'kernel = debian',
      'hostname = kiln-debian',
      'root-password = kiln',
      'append = quiet systemd.show_status=0',
      '',
    ].join('\n');
    const p = project({ 'buildout.cfg': cfg, 'boot-hook.sh': BOOT_HOOK });
    const b0 = Date.now();
    const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE });
    const built = (Date.now() - b0) / 1000;
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const chrootCached = /chroot cache hit/.test(r.stdout + r.stderr + readLogs(p.dir));
    const img = join(p.dir, 'out/parts/image/disk.img');
    const meta = JSON.parse(readFileSync(join(p.dir, 'out/parts/image/image.json'), 'utf8'));
    expect(meta).toMatchObject({ table: 'msdos', kernel: kernel.version });
    expect(meta.append).toContain('systemd.show_status=0');

    const t0 = Date.now();
    const at = () => (Date.now() - t0) / 1000;
    const res = await withVm({ disks: [{ file: img, snapshot: true }], serialLog: join(tmp, 'debian.log'), timeoutMs: 420_000, name: 'debian-systemd' }, async (vm) => {
      await vm.waitFor('KILN-SYSTEMD-BOOTED kiln-debian');
      const marker = at();
      await vm.waitFor(/kiln-debian login:/);
      const login = at();
      vm.send('root\n');
      await vm.waitFor('Password:');
      vm.send('kiln\n');
      const sh = await runConsoleScript(vm, {
        prompt: /root@kiln-debian:~# /,
        commands: [`test "$(uname -r)" = ${kernel.version}`, 'findmnt -n -o SOURCE,FSTYPE /', 'cat /etc/hostname', 'systemctl is-system-running'],
        timeoutMs: 120_000,
      });
      return { marker, login, shell: at(), sh, name: vm.name };
    });
    console.log(
      `Debian systemd image: kiln build ${built.toFixed(1)} s (chroot ${chrootCached ? 'from the cache' : 'built by mmdebstrap'}); ` +
        `TCG boot: marker ${res.marker.toFixed(1)} s, login prompt ${res.login.toFixed(1)} s, logged in + 4 commands ${res.shell.toFixed(1)} s`,
    );
    expect(res.sh.error).toBeUndefined();
    const [kver, mnt, host, state] = res.sh.checks;
    expect(kver!.failure).toBeUndefined();
    expect(mnt!.output!.trim()).toBe('/dev/vda2 ext4');
    expect(host!.output!.trim()).toBe('kiln-debian');
    // every unit that is not masked came up: no failed units
    expect(state!.output!.trim(), state!.failure).toBe('running');
    expect(pgrep(res.name)).toBe('');
  }, 900_000);
});
