// kiln:clonezilla-image: Clonezilla image directories from raw disk images, checked with Debian's
// own Clonezilla: ocs-chkimg on the host, ocs-sr restoredisk in a QEMU (TCG) guest, then the
// restored file systems compared with the source file by file (read by byte offset).
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { recipe } from '../src/kinds/clonezilla-image.js';
import { verifyImage, lsblkSize } from '../src/image/clonezilla.js';
import { OCS_RESTORE_FAST, RESTORE_GUEST_PACKAGES, restoreInGuest } from './helpers/clonezilla-guest.js';
import { run } from '../src/lib/exec.js';
import { debianKernel } from '../src/vm/kernel.js';
import { blankDisk } from '../src/vm/qemu.js';
import { makeContext } from './helpers/context.js';
import { kilnP, project } from './helpers/kiln.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const MiB = 1024 * 1024;
let tmp: string;
let msdosDisk: string;
let gptDisk: string;

const sh = (argv: string[], input?: string) => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
const pgrep = (pattern: string) => spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).stdout.trim();

/** A small tree with the things a file-by-file comparison should catch. */
function sourceTree(dir: string): string {
  const put = (p: string, s: string | Buffer, mode = 0o644) => {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), s);
    chmodSync(join(dir, p), mode);
  };
  put('etc/hostname', 'dns1\n');
  put('etc/bind/named.conf', 'options { directory "/var/cache/bind"; };\n');
  put('usr/bin/busybox', readFileSync('/bin/busybox'), 0o755);
  symlinkSync('busybox', join(dir, 'usr/bin/sh'));
  // 300 KiB of deterministic noise
  const noise = Buffer.alloc(300 * 1024);
  for (let i = 0, x = 12345; i < noise.length; i++) noise[i] = (x = (x * 1103515245 + 12345) & 0x7fffffff) >>> 16;
  put('var/lib/zone.db', noise, 0o600);
  mkdirSync(join(dir, 'empty-dir'), { recursive: true });
  return dir;
}

/** msdos: p1 FAT16 (vfat), p2 ext4; gpt: + p3 without a file system (raw, partclone.dd). */
function makeDisk(file: string, table: 'msdos' | 'gpt', tree: string): string {
  const size = table === 'gpt' ? 80 * MiB : 64 * MiB;
  rmSync(file, { force: true });
  execFileSync('truncate', ['-s', String(size), file]);
  const sf =
    table === 'msdos'
      ? 'label: dos\nlabel-id: 0x12345678\nstart=2048, size=16M, type=c\nstart=34816, size=40M, type=83\n'
      : 'label: gpt\nlabel-id: 01234567-89AB-CDEF-0123-456789ABCDEF\n' +
        'start=2048, size=16M, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=AAAAAAAA-0000-4000-8000-000000000001, name="boot"\n' +
        'start=34816, size=40M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=AAAAAAAA-0000-4000-8000-000000000002, name="root"\n' +
        'start=116736, size=8M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=AAAAAAAA-0000-4000-8000-000000000003, name="raw"\n';
  sh(['sfdisk', '-q', file], sf);
  sh(['mkfs.vfat', `--offset=2048`, '-i', '1234ABCD', '-n', 'BOOT', file, '16384']);
  writeFileSync(join(tmp, 'syslinux.cfg'), 'DEFAULT linux\n');
  sh(['mmd', '-i', `${file}@@1M`, '::/boot']);
  sh(['mcopy', '-i', `${file}@@1M`, join(tmp, 'syslinux.cfg'), '::/boot/syslinux.cfg']);
  sh(['mke2fs', '-q', '-t', 'ext4', '-d', tree, '-U', '11111111-2222-3333-4444-555555555555', '-L', 'root', '-E', `offset=${34816 * 512}`, file, '40M']);
  if (table === 'gpt') {
    const raw = Buffer.alloc(MiB);
    raw.write('KILN-RAW-PARTITION');
    const fd = execFileSync('dd', [`of=${file}`, 'bs=512', `seek=${116736}`, 'conv=notrunc', 'status=none'], { input: raw });
    void fd;
  }
  return file;
}

interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  data: string;
}
/** path -> type, mode, owner and content hash (or link target) of a tree */
function treeIndex(dir: string, owners = true): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (rel: string) => {
    for (const n of readdirSync(join(dir, rel)).sort()) {
      const p = join(rel, n);
      const st = lstatSync(join(dir, p));
      const e: Entry = { type: st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f', mode: owners ? st.mode & 0o7777 : 0, uid: owners ? st.uid : 0, gid: owners ? st.gid : 0, data: '' };
      if (st.isSymbolicLink()) e.data = readlinkSync(join(dir, p));
      else if (st.isFile()) e.data = createHash('sha256').update(readFileSync(join(dir, p))).digest('hex');
      out.set(p, e);
      if (st.isDirectory()) walk(p);
    }
  };
  walk('');
  return out;
}

/** the files of the ext4 and vfat file systems of a disk image, read by byte offset */
function diskFiles(img: string, dest: string): Record<string, Map<string, Entry>> {
  const pt = JSON.parse(sh(['sfdisk', '--json', img])).partitiontable as { partitions: Array<{ start: number; size: number }> };
  const res: Record<string, Map<string, Entry>> = {};
  pt.partitions.forEach((p, i) => {
    const off = p.start * 512;
    const type = spawnSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', '-O', String(off), '-S', String(p.size * 512), img], { encoding: 'utf8' }).stdout.trim();
    const d = join(dest, `p${i + 1}`);
    mkdirSync(d, { recursive: true });
    if (type === 'ext4') {
      // e2fsck -fn: the file system is clean
      execFileSync('e2fsck', ['-fn', `${img}?offset=${off}`], { stdio: 'pipe' });
      execFileSync('debugfs', ['-R', `rdump / ${d}`, `${img}?offset=${off}`], { stdio: 'pipe' });
      rmSync(join(d, 'lost+found'), { recursive: true, force: true });
      res[`p${i + 1} ext4`] = treeIndex(d);
    } else if (type === 'vfat') {
      execFileSync('mcopy', ['-s', '-n', '-i', `${img}@@${off}`, '::/', d], { stdio: 'pipe' });
      res[`p${i + 1} vfat`] = treeIndex(d, false);
    } else {
      res[`p${i + 1} raw`] = new Map([['', { type: 'raw', mode: 0, uid: 0, gid: 0, data: createHash('sha256').update(execFileSync('dd', [`if=${img}`, 'bs=512', `skip=${p.start}`, `count=${p.size}`, 'status=none'], { maxBuffer: 1 << 30 })).digest('hex') }]]);
    }
  });
  return res;
}

const cfg = (parts: string) => `[buildout]\nparts = ${parts}\n`;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-clonezilla-'));
  const tree = sourceTree(join(tmp, 'tree'));
  msdosDisk = makeDisk(join(tmp, 'msdos.img'), 'msdos', tree);
  gptDisk = makeDisk(join(tmp, 'gpt.img'), 'gpt', tree);
});

// disk images, restored targets and extracted trees: a few hundred MiB
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('clonezilla-image recipe', () => {
  test('options are checked', () => {
    const v = (opts: Record<string, string>) => () => recipe.validate!({ part: 'img', options: makeContext('img', opts).options, projectDir: tmp, cacheDir: CACHE });
    expect(v({})).toThrow(/missing required option 'disk'/);
    expect(v({ disk: 'd.img', compression: 'xz' })).toThrow(/compression: unknown compression 'xz' \(/);
    expect(v({ disk: 'd.img', 'split-size': '4G' })).toThrow(/split-size: expected an integer, got '4G'/);
    expect(v({ disk: 'd.img', name: '../x' })).toThrow(/name: expected a usable image directory name \(letters, digits, \. _ \+ -\), got '\.\.\/x'/);
    expect(v({ disk: 'd.img', 'target-device-name': 'sd a' })).toThrow(/target-device-name/);
    expect(v({ disk: 'd.img', checksums: 'md5sum crc32' })).toThrow(/checksums: unknown checksum 'crc32' \(md5sum, sha1sum, b2sum\)/);
    expect(v({ disk: 'd.img', compression: 'zstd', 'split-size': '0', 'target-device-name': '/dev/nvme0n1' })).not.toThrow();
    // without 'name', the part name is the directory name: it must be one
    expect(() => recipe.validate!({ part: 'a b', options: makeContext('a b', { disk: 'd.img' }).options, projectDir: tmp, cacheDir: CACHE })).toThrow(/name: 'a b' is not a usable image directory name/);
    expect(lsblkSize(64 * MiB)).toBe('64M');
    expect(lsblkSize(1536 * MiB)).toBe('1.5G');
  });

  test('msdos disk through the CLI: ocs-sr savedisk layout, pigz -p from the -j share, kiln-image.json, reproducible, ocs-chkimg accepts it', async () => {
    const files = { 'buildout.cfg': cfg('server') + `\n[server]\nrecipe = kiln:clonezilla-image\ndisk = ${msdosDisk}\nname = dns-server\n` };
    const a = project(files);
    // pigz runs with the part's share of -j (one part alone under -j 3: all three slots): a wrapper
    // first on PATH records its arguments and runs the real pigz (the compressions; the check's
    // `pigz -dc` is not counted)
    const wrapped = (name: string) => {
      const bin = join(tmp, `pigz-wrapper-${name}`);
      mkdirSync(bin, { recursive: true });
      const real = execFileSync('sh', ['-c', 'command -v pigz'], { encoding: 'utf8' }).trim();
      writeFileSync(join(bin, 'pigz'), `#!/bin/sh\necho "$*" >> ${join(bin, 'args')}\nexec ${real} "$@"\n`);
      chmodSync(join(bin, 'pigz'), 0o755);
      return { PATH: `${bin}:${process.env.PATH}`, args: () => readFileSync(join(bin, 'args'), 'utf8').trim().split('\n').filter((l) => l.includes('--fast')) };
    };
    const wa = wrapped('a');
    const t0 = Date.now();
    const r = await kilnP(a.dir, ['build', '-c', 'buildout.cfg', '-j', '3'], { PATH: wa.PATH });
    expect(r.code, r.stderr).toBe(0);
    expect(wa.args()).toEqual(['-p 3 -c --fast -b 1024 --rsyncable -n', '-p 3 -c --fast -b 1024 --rsyncable -n']);
    console.log(`clonezilla-image (msdos, 64 MiB disk, gzip): ${((Date.now() - t0) / 1000).toFixed(1)} s through the CLI`);
    const out = realpathSync(join(a.dir, 'out/parts/server'));
    const dir = join(out, 'image/dns-server');
    expect(readdirSync(dir).sort()).toEqual([
      'Info-img-id.txt', 'Info-img-size.txt', 'Info-packages.txt', 'Info-saved-by-cmd.txt', 'MD5SUMS', 'SHA1SUMS',
      'blkdev.list', 'blkid.list', 'clonezilla-img', 'dev-fs.list', 'disk', 'parts',
      'sda-chs.sf', 'sda-hidden-data-after-mbr', 'sda-mbr', 'sda-pt.parted', 'sda-pt.parted.compact', 'sda-pt.sf',
      'sda1.vfat-ptcl-img.gz.aa', 'sda2.ext4-ptcl-img.gz.aa',
    ]);
    expect(readFileSync(join(dir, 'disk'), 'utf8')).toBe('sda\n');
    expect(readFileSync(join(dir, 'parts'), 'utf8')).toBe('sda1 sda2\n');
    expect(readFileSync(join(dir, 'sda-pt.sf'), 'utf8')).toContain('/dev/sda2 : start=       34816, size=       81920, type=83');
    expect(readFileSync(join(dir, 'sda-chs.sf'), 'utf8')).toBe('cylinders=8\nheads=255\nsectors=63\n');
    expect(readFileSync(join(dir, 'dev-fs.list'), 'utf8')).toContain('/dev/sda1 vfat 16M\n/dev/sda2 ext4 40M\n');
    expect(readFileSync(join(dir, 'blkid.list'), 'utf8')).toContain('/dev/sda2: LABEL="root" UUID="11111111-2222-3333-4444-555555555555"');
    expect(readFileSync(join(dir, 'clonezilla-img'), 'utf8')).toMatch(/^This image was saved by Clonezilla at 2024-01-01 00:00:00 UTC\./);
    // MD5SUMS as md5sum itself checks it
    expect(sh(['bash', '-c', 'cd "$1" && md5sum -c --quiet MD5SUMS && sha1sum -c --quiet SHA1SUMS && echo ok', 'x', dir]).trim()).toBe('ok');
    // the gzip streams carry no time stamp
    expect(readFileSync(join(dir, 'sda2.ext4-ptcl-img.gz.aa')).readUInt32LE(4)).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'kiln-image.json'), 'utf8'));
    expect(m).toMatchObject({ name: 'dns-server', device: 'sda', diskSize: 64 * MiB, table: 'msdos', compression: 'gzip' });
    expect(m.partitions).toMatchObject([
      { name: 'sda1', number: 1, start: MiB, size: 16 * MiB, fs: 'vfat', image: 'sda1.vfat-ptcl-img.gz' },
      { name: 'sda2', number: 2, start: 34816 * 512, size: 40 * MiB, fs: 'ext4', image: 'sda2.ext4-ptcl-img.gz' },
    ]);
    expect(m.imageBytes).toBe(readdirSync(dir).reduce((n: number, f: string) => n + lstatSync(join(dir, f)).size, 0));

    // the same disk in another project: the same bytes, file by file
    // (under -j 1: pigz -p 2, never -p 1, whose single-threaded path writes other bytes; the
    // same bytes as under -j 3)
    const b = project(files);
    const wb = wrapped('b');
    expect((await kilnP(b.dir, ['build', '-c', 'buildout.cfg', '-j', '1'], { PATH: wb.PATH })).code).toBe(0);
    expect(wb.args()[0]).toMatch(/^-p 2 /);
    const dirB = join(b.dir, 'out/parts/server/image/dns-server');
    for (const f of readdirSync(dir)) expect(readFileSync(join(dirB, f)).equals(readFileSync(join(dir, f))), f).toBe(true);

    // Debian's ocs-chkimg on a copy (it writes nothing into the image, but the store is read-only)
    const copy = join(tmp, 'chk-msdos');
    cpSync(join(out, 'image'), copy, { recursive: true });
    const t1 = Date.now();
    const chk = spawnSync('ocs-chkimg', ['-b', '-or', copy, 'dns-server'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    console.log(`ocs-chkimg (msdos image): ${((Date.now() - t1) / 1000).toFixed(1)} s, rc ${chk.status}`);
    expect(chk.status, chk.stdout.slice(-2000)).toBe(0);
    expect(chk.stdout).toMatch(/All the images of partition or LV devices in this image were checked and they are restorable: dns-server/);
  }, 600_000);

  test('GPT disk, zstd, split into 1 MB volumes, a raw partition: ocs-chkimg accepts it; a flipped byte fails ocs-chkimg and kiln\'s check', async () => {
    const p = project({
      'buildout.cfg': cfg('gpt') + `\n[gpt]\nrecipe = kiln:clonezilla-image\ndisk = ${gptDisk}\ncompression = zstd\nsplit-size = 1\nchecksums = md5sum sha1sum b2sum\ntarget-device-name = vda\n`,
    });
    const r = await kilnP(p.dir, ['build', '-c', 'buildout.cfg']);
    expect(r.code, r.stderr).toBe(0);
    const out = realpathSync(join(p.dir, 'out/parts/gpt'));
    const dir = join(out, 'image/gpt');
    const names = readdirSync(dir).sort();
    for (const f of ['vda-gpt-1st', 'vda-gpt-2nd', 'vda-gpt.gdisk', 'vda-gpt.sgdisk', 'vda-pt.sf', 'vda-mbr', 'B2SUMS', 'vda3.dd-ptcl-img.zst.aa']) expect(names).toContain(f);
    expect(names).not.toContain('vda-hidden-data-after-mbr');
    // the ext4 image is over 1 MB: more than one volume, as split -b 1MB names them
    const ext4 = names.filter((n) => n.startsWith('vda2.ext4-ptcl-img.zst.'));
    expect(ext4.slice(0, 2)).toEqual(['vda2.ext4-ptcl-img.zst.aa', 'vda2.ext4-ptcl-img.zst.ab']);
    expect(lstatSync(join(dir, ext4[0]!)).size).toBe(1000 * 1000);
    expect(readFileSync(join(dir, 'vda-gpt-1st')).equals(readFileSync(gptDisk).subarray(0, 34 * 512))).toBe(true);
    const m = JSON.parse(readFileSync(join(out, 'kiln-image.json'), 'utf8'));
    expect(m.table).toBe('gpt');
    expect(m.partitions.map((x: { fs: string }) => x.fs)).toEqual(['vfat', 'ext4', 'dd']);

    const copy = join(tmp, 'chk-gpt');
    cpSync(join(out, 'image'), copy, { recursive: true });
    const t1 = Date.now();
    const chk = spawnSync('ocs-chkimg', ['-b', '-or', copy, 'gpt'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    console.log(`ocs-chkimg (gpt image, 3 partitions): ${((Date.now() - t1) / 1000).toFixed(1)} s, rc ${chk.status}`);
    expect(chk.status, chk.stdout.slice(-2000)).toBe(0);
    await expect(verifyImage(copy + '/gpt', (argv, o) => run(argv, o))).resolves.toContain('vda2 (partclone.chkimg)');

    // flip one byte in the middle of the second ext4 volume
    const victim = join(copy, 'gpt', ext4[1]!);
    const buf = readFileSync(victim);
    buf[buf.length >> 1] ^= 0xff;
    writeFileSync(victim, buf);
    const bad = spawnSync('ocs-chkimg', ['-b', '-or', copy, 'gpt'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/vda2/);
    await expect(verifyImage(copy + '/gpt', (argv, o) => run(argv, o))).rejects.toThrow(/B2SUMS: vda2\.ext4-ptcl-img\.zst\.ab does not match[\s\S]*vda2: .*partclone\.chkimg failed/);
    // without the checksum files, partclone.chkimg alone still finds it
    for (const f of ['MD5SUMS', 'SHA1SUMS', 'B2SUMS']) rmSync(join(copy, 'gpt', f));
    await expect(verifyImage(copy + '/gpt', (argv, o) => run(argv, o))).rejects.toThrow(/vda2: .*partclone\.chkimg failed/);
  }, 600_000);

  test('a qcow2 disk (kiln:disk-image format = qcow2) gives the same image as the raw one', async () => {
    const q = join(tmp, 'msdos.qcow2');
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', msdosDisk, q]);
    const p = project({ 'buildout.cfg': cfg('raw qcow') + `\n[raw]\nrecipe = kiln:clonezilla-image\ndisk = ${msdosDisk}\nname = same\n\n[qcow]\nrecipe = kiln:clonezilla-image\ndisk = ${q}\nname = same\n` });
    const r = await kilnP(p.dir, ['build', '-c', 'buildout.cfg']);
    expect(r.code, r.stderr).toBe(0);
    const a = join(p.dir, 'out/parts/raw/image/same');
    const b = join(p.dir, 'out/parts/qcow/image/same');
    expect(readdirSync(b)).toEqual(readdirSync(a));
    // Info-saved-by-cmd.txt names the part; everything else is the same bytes
    for (const f of readdirSync(a).filter((f) => f !== 'Info-saved-by-cmd.txt')) expect(readFileSync(join(b, f)).equals(readFileSync(join(a, f))), f).toBe(true);
    expect(readFileSync(join(b, 'Info-saved-by-cmd.txt'), 'utf8')).toBe(readFileSync(join(a, 'Info-saved-by-cmd.txt'), 'utf8').replace('part raw', 'part qcow'));
  }, 300_000);

  test('a missing disk, a file that is no disk: clear errors with file:line', async () => {
    const p = project({ 'buildout.cfg': cfg('img') + '\n[img]\nrecipe = kiln:clonezilla-image\ndisk = nowhere/disk.img\n' });
    const r = await kilnP(p.dir, ['build', '-c', 'buildout.cfg']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/buildout\.cfg:6: \[img\] disk: .*nowhere\/disk\.img does not exist/);
    writeFileSync(join(p.dir, 'blank.img'), Buffer.alloc(MiB));
    p.write({ 'buildout.cfg': cfg('img') + '\n[img]\nrecipe = kiln:clonezilla-image\ndisk = blank.img\n' });
    const r2 = await kilnP(p.dir, ['build', '-c', 'buildout.cfg']);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/buildout\.cfg:6: \[img\] disk: .*blank\.img: no msdos or GPT partition table/);
  }, 120_000);
});

// Debian's ocs-sr restores the images inside a QEMU guest (the host kernel cannot show it
// partitions); the restored file systems are then compared with the source file by file.
// The msdos image (device sda, restored onto vda: ocs-sr converts it) always runs; the GPT one
// (zstd, device vda, a raw partition) too when KILN_SLOW_TESTS=1: each restore is 100-400 s of TCG.
const RESTORES = process.env.KILN_SLOW_TESTS === '1' ? ['msdos', 'gpt'] : ['msdos'];
describe('clonezilla-image: ocs-sr restoredisk in a QEMU guest', () => {
  test(`${RESTORES.join(' and ')} image(s) restore onto blank disks; the file systems match the source`, async () => {
    // the guest's root file system: a kiln chroot (cached by content in the shared cache)
    const p = project({
      'buildout.cfg':
        cfg('restore-guest msdos gpt') +
        `\n[restore-guest]\nrecipe = kiln:chroot\nvariant = minbase\npackages = ${RESTORE_GUEST_PACKAGES.join(' ')}\n` +
        `\n[msdos]\nrecipe = kiln:clonezilla-image\ndisk = ${msdosDisk}\n` +
        `\n[gpt]\nrecipe = kiln:clonezilla-image\ndisk = ${gptDisk}\ncompression = zstd\ntarget-device-name = vda\n`,
    });
    const t0 = Date.now();
    const r = await kilnP(p.dir, ['build', '-c', 'buildout.cfg'], { KILN_CACHE_DIR: CACHE });
    expect(r.code, r.stderr).toBe(0);
    console.log(`restore guest chroot + 2 images: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const kernel = await debianKernel({ cacheDir: CACHE });
    const rootfsTar = realpathSync(join(p.dir, 'out/parts/restore-guest/rootfs.tar'));
    for (const [part, src] of ([['msdos', msdosDisk], ['gpt', gptDisk]] as const).filter(([n]) => RESTORES.includes(n))) {
      const out = realpathSync(join(p.dir, 'out/parts', part));
      const target = blankDisk(join(tmp, `${part}-target.img`), (part === 'gpt' ? 96 : 64) * MiB);
      const res = await restoreInGuest({
        rootfsTar,
        kernel,
        imageRoot: join(out, 'image'),
        name: part,
        target,
        cacheDir: CACHE,
        work: join(tmp, `${part}-guest`),
        serialLog: join(tmp, `${part}-restore.log`),
        ocsOptions: OCS_RESTORE_FAST,
        timeoutMs: 900_000,
      });
      console.log(`ocs-sr restoredisk (${part}) in QEMU TCG: ${res.seconds.toFixed(1)} s`);
      expect(res.status).toBe(0);
      expect(res.console).toMatch(/KILN-RESTORE-DONE rc=0/);
      expect(pgrep('kiln-clonezilla-restore')).toBe('');
      // partition tables: the same partitions
      const ptOf = (f: string) => (JSON.parse(sh(['sfdisk', '--json', f])).partitiontable.partitions as Array<Record<string, unknown>>).map(({ node, ...rest }) => rest);
      expect(ptOf(target)).toEqual(ptOf(src));
      // file systems, file by file
      const want = diskFiles(src, join(tmp, `${part}-src-files`));
      const got = diskFiles(target, join(tmp, `${part}-restored-files`));
      expect(Object.keys(got)).toEqual(Object.keys(want));
      for (const k of Object.keys(want)) expect([...got[k]!.entries()], k).toEqual([...want[k]!.entries()]);
      expect(want['p2 ext4']!.get('var/lib/zone.db')).toMatchObject({ type: 'f', mode: 0o600 });
    }
  }, 2_400_000);

  test.runIf(process.env.KILN_SLOW_TESTS === '1')('a target disk smaller than the source: ocs-sr refuses, the target is left untouched', async () => {
    const p = project({ 'buildout.cfg': cfg('restore-guest msdos') + `\n[restore-guest]\nrecipe = kiln:chroot\nvariant = minbase\npackages = ${RESTORE_GUEST_PACKAGES.join(' ')}\n\n[msdos]\nrecipe = kiln:clonezilla-image\ndisk = ${msdosDisk}\n` });
    expect((await kilnP(p.dir, ['build', '-c', 'buildout.cfg'], { KILN_CACHE_DIR: CACHE })).code).toBe(0);
    const target = blankDisk(join(tmp, 'small-target.img'), 32 * MiB);
    const res = restoreInGuest({
      rootfsTar: realpathSync(join(p.dir, 'out/parts/restore-guest/rootfs.tar')),
      kernel: await debianKernel({ cacheDir: CACHE }),
      imageRoot: realpathSync(join(p.dir, 'out/parts/msdos/image')),
      name: 'msdos',
      target,
      cacheDir: CACHE,
      work: join(tmp, 'small-guest'),
      serialLog: join(tmp, 'small-restore.log'),
      ocsOptions: OCS_RESTORE_FAST,
      timeoutMs: 900_000,
    });
    await expect(res).rejects.toThrow(/failure status/);
    const log = readFileSync(join(tmp, 'small-restore.log'), 'utf8');
    expect(log).toMatch(/KILN-RESTORE-DONE rc=[1-9]/);
    expect(log).toMatch(/too small|smaller|not big enough/i);
    // nothing was written: the sparse file is still all zeros
    expect(readFileSync(target).every((b) => b === 0)).toBe(true);
    expect(pgrep('kiln-clonezilla-restore')).toBe('');
  }, 1_200_000);
});
