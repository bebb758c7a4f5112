// UEFI boot for kiln's ISOs (src/image/efi-iso.ts): a hybrid ISO with isolinux (BIOS) and GRUB
// (UEFI) entries boots the cached Debian kernel + a busybox initrd under OVMF and under SeaBIOS
// (QEMU, TCG); the ISO's El Torito catalogue and FAT image are checked with xorriso and fsck.fat;
// two builds at different times give the same bytes.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { addEfiBoot, buildUki, grubMenu, sbsignFile } from '../src/image/efi-iso.js';
import { run } from '../src/lib/exec.js';
import { buildInitrd } from '../src/vm/initrd.js';
import { debianKernel, type Kernel } from '../src/vm/kernel.js';
import { withVm } from '../src/vm/qemu.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const SDE = 1700000000;
let kernel: Kernel;
let tmp: string;

const pgrep = (pattern: string) => spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).stdout.trim();

async function buildIso(name: string): Promise<string> {
  const tree = join(tmp, `${name}-tree`);
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(join(tree, 'isolinux'), { recursive: true });
  mkdirSync(join(tree, 'live'), { recursive: true });
  mkdirSync(join(tree, 'kiln'), { recursive: true });
  copyFileSync(kernel.vmlinuz, join(tree, 'live/vmlinuz'));
  buildInitrd(join(tree, 'live/initrd.gz'), {
    // firmware kind from /sys/firmware/efi; status 7 = UEFI, 8 = BIOS
    init: 'if [ -d /sys/firmware/efi ]; then echo "KILN-EFI-TEST firmware=uefi cmdline=$(cat /proc/cmdline)"; exit 7; fi\necho "KILN-EFI-TEST firmware=bios cmdline=$(cat /proc/cmdline)"\nexit 8\n',
    sourceDateEpoch: SDE,
  });
  writeFileSync(join(tree, 'kiln/efi-test.id'), 'kiln efi test\n');
  writeFileSync(join(tree, 'isolinux/isolinux.cfg'), 'SERIAL 0 115200\nDEFAULT live\nPROMPT 0\nTIMEOUT 1\nLABEL live\n  KERNEL /live/vmlinuz\n  APPEND initrd=/live/initrd.gz console=ttyS0 panic=-1 quiet kiln_entry=isolinux\n');
  copyFileSync('/usr/lib/ISOLINUX/isolinux.bin', join(tree, 'isolinux/isolinux.bin'));
  copyFileSync('/usr/lib/syslinux/modules/bios/ldlinux.c32', join(tree, 'isolinux/ldlinux.c32'));
  const efi = await addEfiBoot({
    tree,
    work: join(tmp, `${name}-work`),
    findFile: '/kiln/efi-test.id',
    sourceDateEpoch: SDE,
    run: (argv, opts) => run(argv, opts),
    grubCfg: grubMenu({
      title: 'kiln efi test',
      timeout: 1,
      entries: [
        { title: 'live', kernel: '/live/vmlinuz', initrd: '/live/initrd.gz', append: 'console=ttyS0 panic=-1 quiet kiln_entry=grub' },
        { title: 'other', kernel: '/live/vmlinuz', initrd: '/live/initrd.gz', append: 'console=ttyS0 panic=-1 kiln_entry=other' },
      ],
    }),
  });
  execFileSync('find', [tree, '-exec', 'touch', '-h', '-d', `@${SDE}`, '{}', '+']);
  const iso = join(tmp, `${name}.iso`);
  execFileSync(
    'xorriso',
    ['-as', 'mkisofs', '-quiet', '-o', iso, '-V', 'KILN_EFI_TEST', '-r', '-J', '-isohybrid-mbr', '/usr/lib/ISOLINUX/isohdpfx.bin',
      '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', ...efi.xorrisoArgs, tree],
    { env: { ...process.env, SOURCE_DATE_EPOCH: String(SDE) }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return iso;
}

let iso: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-efi-iso-'));
  kernel = await debianKernel({ cacheDir: CACHE });
  const t0 = Date.now();
  iso = await buildIso('a');
  console.log(`hybrid BIOS+UEFI ISO built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}, 600_000);

describe('UEFI boot for ISOs (src/image/efi-iso.ts)', () => {
  test('El Torito: a BIOS and a UEFI entry; the FAT image holds bootx64.efi and passes fsck.fat; reproducible', async () => {
    const rep = execFileSync('xorriso', ['-indev', iso, '-report_el_torito', 'plain'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(rep).toMatch(/El Torito boot img\s*:\s*1\s+BIOS/);
    expect(rep).toMatch(/El Torito boot img\s*:\s*2\s+UEFI/);
    const img = join(tmp, 'a-tree/boot/grub/efi.img');
    const fsck = spawnSync('fsck.fat', ['-n', img], { encoding: 'utf8' });
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
    const dir = execFileSync('mdir', ['-i', img, '-b', '::/EFI/boot'], { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    expect(dir).toMatch(/bootx64\.efi/i);
    // the loader is a PE image for x86-64
    const pe = readFileSync(join(tmp, 'a-tree/EFI/boot/bootx64.efi'));
    expect(pe.subarray(0, 2).toString()).toBe('MZ');
    expect(pe.readUInt16LE(pe.readUInt32LE(0x3c) + 4)).toBe(0x8664);
    // GPT for the USB-stick view (isohybrid-gpt-basdat): "EFI PART" at LBA 1
    const head = readFileSync(iso).subarray(512, 520).toString('latin1');
    expect(head).toBe('EFI PART');
    // a second build, a second later, elsewhere: the same bytes
    await new Promise((r) => setTimeout(r, 1100));
    const again = await buildIso('b');
    expect(spawnSync('cmp', [iso, again]).status).toBe(0);
  }, 300_000);

  test('boots under OVMF (UEFI) through GRUB, and under SeaBIOS through isolinux', async () => {
    for (const uefi of [true, false]) {
      const t0 = Date.now();
      const log = join(tmp, `boot-${uefi ? 'uefi' : 'bios'}.log`);
      const x = await withVm({ cdrom: iso, boot: 'cdrom', uefi, memory: 512, serialLog: log, timeoutMs: 90_000, name: `efi-iso-${uefi ? 'uefi' : 'bios'}` }, async (vm) => vm.exited);
      const out = readFileSync(log, 'utf8');
      console.log(`${uefi ? 'UEFI (OVMF) + GRUB' : 'BIOS + isolinux'}: ISO boot to the initrd marker ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      if (uefi) {
        expect(out, out.slice(-2000)).toMatch(/KILN-EFI-TEST firmware=uefi cmdline=.*kiln_entry=grub/);
        expect(x.debugExit).toBe(7);
      } else {
        expect(out, out.slice(-2000)).toMatch(/KILN-EFI-TEST firmware=bios cmdline=.*kiln_entry=isolinux/);
        expect(x.debugExit).toBe(8);
      }
    }
    expect(pgrep('kiln-efi-iso-')).toBe('');
  }, 600_000);
  test('mode shim: Debian-signed shim as BOOTX64.EFI, signed GRUB next to it, the early config where the signed GRUB looks (no QEMU)', async () => {
    const tree = join(tmp, 'shim-tree');
    rmSync(tree, { recursive: true, force: true });
    mkdirSync(join(tree, 'kiln'), { recursive: true });
    const efi = await addEfiBoot({ tree, work: join(tmp, 'shim-work'), findFile: '/kiln/efi-test.id', sourceDateEpoch: SDE, run: (argv, opts) => run(argv, opts), grubCfg: 'echo hi\n', mode: 'shim' });
    const img = join(tree, efi.image);
    expect(spawnSync('fsck.fat', ['-n', img]).status).toBe(0);
    const mt = { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } };
    const get = (p: string) => {
      const out = join(tmp, 'shim-get');
      execFileSync('mcopy', ['-n', '-i', img, `::/${p}`, out], mt);
      return readFileSync(out);
    };
    expect(get('EFI/BOOT/BOOTX64.EFI').equals(readFileSync('/usr/lib/shim/shimx64.efi.signed'))).toBe(true);
    expect(get('EFI/BOOT/grubx64.efi').equals(readFileSync('/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed'))).toBe(true);
    // the signed GRUB's built-in prefix is /EFI/debian: the config that finds the medium is there
    expect(execFileSync('strings', ['/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed'], { encoding: 'utf8', maxBuffer: 64 << 20 })).toContain('/EFI/debian');
    expect(get('EFI/debian/grub.cfg').toString()).toBe('search --no-floppy --set=root --file /kiln/efi-test.id\nset prefix=($root)/boot/grub\nconfigfile ($root)/boot/grub/grub.cfg\n');
    expect(readFileSync(join(tree, 'EFI/debian/grub.cfg'), 'utf8')).toContain('search --no-floppy');
    expect(readFileSync(join(tree, 'boot/grub/grub.cfg'), 'utf8')).toBe('echo hi\n');
  }, 120_000);

  test('buildUki + sbsignFile: a unified kernel image signed with an encrypted key (passphrase from the environment); no decrypted key left; no passphrase: a clear error', async () => {
    const key = '/usr/share/ovmf/PkKek-1-snakeoil.key';
    const cert = '/usr/share/ovmf/PkKek-1-snakeoil.pem';
    const work = join(tmp, 'uki-work');
    const initrd = join(tmp, 'uki-initrd.gz');
    buildInitrd(initrd, { init: 'echo hi\n', sourceDateEpoch: SDE });
    const out = join(tmp, 'uki.efi');
    await buildUki({ out, kernel: kernel.vmlinuz, initrd, cmdline: 'console=ttyS0 kiln_test=1', osRelease: 'ID=kiln-test\n', work, run: (argv, opts) => run(argv, opts) });
    const sections = execFileSync('objdump', ['-h', out], { encoding: 'utf8' });
    for (const sec of ['.osrel', '.cmdline', '.linux', '.initrd']) expect(sections).toContain(sec);
    await expect(sbsignFile({ file: out, key, cert, work, run: (argv, opts) => run(argv, opts) })).rejects.toThrow(/encrypted key: set secure-boot-key-passphrase-env/);
    expect(spawnSync('sbverify', ['--cert', cert, out]).status).not.toBe(0);
    process.env.KILN_TEST_UKI_PASS = 'snakeoil';
    try {
      await sbsignFile({ file: out, key, cert, work, passEnv: 'KILN_TEST_UKI_PASS', run: (argv, opts) => run(argv, opts) });
    } finally {
      delete process.env.KILN_TEST_UKI_PASS;
    }
    expect(spawnSync('sbverify', ['--cert', cert, out]).status).toBe(0);
    expect(readdirSync(work).filter((n) => n.startsWith('.sbkey'))).toEqual([]);
    expect(existsSync(`${out}.signed`)).toBe(false);
  }, 120_000);
});
