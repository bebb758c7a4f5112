// QEMU test library (src/vm) and the kiln:qemu-test recipe: real QEMU under TCG, the Debian
// bookworm kernel (downloaded once into the user's cache), busybox initrds.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { debianKernel, resolveModules, type Kernel } from '../src/vm/kernel.js';
import { buildInitrd } from '../src/vm/initrd.js';
import { kilnAsync, kilnP, project } from './helpers/kiln.js';
import { blankDisk, bootVm, exitError, parseSize, qemuArgs, VmError, withVm } from '../src/vm/qemu.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const APPEND = 'console=ttyS0 panic=-1 quiet';

let kernel: Kernel;
let tmp: string;

const pgrep = (pattern: string) => spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).stdout.trim();
/** pgrep after giving SIGKILLed processes up to 5 s to be gone (a loaded host tears a guest down slowly) */
async function pgrepSettled(pattern: string): Promise<string> {
  for (let i = 0; i < 50 && pgrep(pattern); i++) await new Promise((r) => setTimeout(r, 100));
  return pgrep(pattern);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-qemu-'));
  const t0 = Date.now();
  kernel = await debianKernel({ cacheDir: CACHE });
  console.log(`debian kernel ${kernel.version} (${kernel.packageVersion}) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}, 300_000);

describe('kernel and initrd', () => {
  test('the kernel comes from the cache the second time, with modules.dep', async () => {
    const t0 = Date.now();
    const again = await debianKernel({ cacheDir: CACHE, version: kernel.version });
    console.log(`cached kernel lookup: ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    expect(again.root).toBe(kernel.root);
    expect(again.root).toBe(join(CACHE, 'kernels', `linux-image-${kernel.version}_${kernel.packageVersion}`));
    for (const f of [again.vmlinuz, again.systemMap, again.config, join(again.modulesDir, 'modules.dep')]) expect(existsSync(f)).toBe(true);
    const r = resolveModules(kernel.modulesDir, ['virtio_blk', 'ext4']);
    const names = r.load.map((p) => p.split('/').pop());
    expect(names).toContain('virtio_blk.ko');
    expect(names).toContain('jbd2.ko');
    // dependencies load first
    expect(names.indexOf('jbd2.ko')).toBeLessThan(names.indexOf('ext4.ko'));
    expect(names.indexOf('virtio.ko')).toBeLessThan(names.indexOf('virtio_blk.ko'));
    expect(() => resolveModules(kernel.modulesDir, ['no_such_module'])).toThrow(/neither a module nor built into/);
  });

  test('initrds are reproducible', () => {
    const spec = { init: 'echo hi\n', modules: ['virtio_blk'], kernel, sourceDateEpoch: 1700000000, files: [{ to: '/etc/x', content: 'x\n' }] };
    const a = buildInitrd(join(tmp, 'a.gz'), spec);
    const b = buildInitrd(join(tmp, 'b.gz'), spec);
    expect(readFileSync(a.path).equals(readFileSync(b.path))).toBe(true);
    const list = execFileSync('sh', ['-c', 'zcat "$1" | cpio -t -v --quiet --numeric-uid-gid', 'sh', a.path], { encoding: 'utf8' });
    expect(list).toMatch(/bin\/busybox/);
    expect(list).toMatch(/^c.* dev\/console/m);
    expect(list).toMatch(/virtio_blk\.ko/);
    for (const line of list.trim().split('\n')) expect(line).toMatch(/^\S+\s+\d+\s+0\s+0\s/); // uid/gid 0
    expect(list).toMatch(/virtio_pci\.ko/); // added for virtio_blk
  });

  test('sizes and command lines', () => {
    expect(parseSize('64M')).toBe(64 << 20);
    expect(parseSize('1G')).toBe(1 << 30);
    expect(() => parseSize('lots')).toThrow(/not a size/);
    const a = qemuArgs({ kernel: 'k', serialLog: 'x', disks: [{ file: '/a,b.img', format: 'raw', snapshot: true }] }, 'kiln-x');
    expect(a).toContain('file=/a,,b.img,format=raw,if=virtio,snapshot=on');
    expect(a.join(' ')).toContain('-accel tcg');
  });
});

describe('bootVm (TCG)', () => {
  test('(a) kernel + busybox initrd prints a marker and exits with status 0', async () => {
    const initrd = buildInitrd(join(tmp, 'pass.gz'), { init: 'echo KILN-MARKER-OK\nexit 0\n' });
    const t0 = Date.now();
    const x = await withVm({ kernel: kernel.vmlinuz, initrd: initrd.path, append: APPEND, serialLog: join(tmp, 'pass.log'), timeoutMs: 90_000, name: 'pass' }, async (vm) => {
      await vm.waitFor('KILN-MARKER-OK', 90_000);
      console.log(`boot to marker: ${((Date.now() - t0) / 1000).toFixed(2)} s`);
      return vm.exited;
    });
    console.log(`boot to exit: ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    expect(x.debugExit).toBe(0);
    expect(x.code).toBe(1);
    expect(readFileSync(join(tmp, 'pass.log'), 'utf8')).toContain('KILN-MARKER-OK');
  });

  test('(b) a failure status from the guest: the error says so, with the tail', async () => {
    const initrd = buildInitrd(join(tmp, 'fail.gz'), { init: 'echo about to fail\nexit 7\n' });
    const vm = bootVm({ kernel: kernel.vmlinuz, initrd: initrd.path, append: APPEND, serialLog: join(tmp, 'fail.log'), timeoutMs: 90_000, name: 'fail' });
    try {
      const x = await vm.exited;
      expect(x.debugExit).toBe(7);
      const err = exitError(vm, x)!;
      expect(err).toBeInstanceOf(VmError);
      expect(err.message).toMatch(/failure status 7/);
      expect(err.message).toContain('about to fail');
      expect(err.message).toContain('kiln: exit status 7');
    } finally {
      await vm.kill();
    }
  });

  test('(c) a guest that never finishes is killed at the time limit, no qemu left', async () => {
    const initrd = buildInitrd(join(tmp, 'hang.gz'), { init: 'echo hanging now\nwhile :; do sleep 1; done\n' });
    // 12 s, not more: the test waits for the whole limit (SeaBIOS, which the message must show,
    // prints in the first second); on a loaded host the guest may not reach the marker before it
    const vm = bootVm({ kernel: kernel.vmlinuz, initrd: initrd.path, append: APPEND, serialLog: join(tmp, 'hang.log'), timeoutMs: 12_000, name: 'hang' });
    const seen = await vm.waitFor('hanging now', 12_000).then(() => true, () => false);
    const x = await vm.exited;
    expect(x.timedOut).toBe(true);
    const err = exitError(vm, x)!;
    expect(err.message).toMatch(/did not finish in time[\s\S]*last 30 lines of the serial console[\s\S]*SeaBIOS/);
    if (seen) expect(err.message).toContain('hanging now');
    expect(pgrep(vm.name)).toBe('');
    // a waitFor that cannot succeed any more rejects with the tail
    await expect(vm.waitFor('never')).rejects.toThrow(/killed at its time limit[\s\S]*SeaBIOS/);
  });

  test('(d) an extra blank disk is visible in the guest (virtio_blk)', async () => {
    const disk = blankDisk(join(tmp, 'extra.img'), parseSize('64M'));
    expect(statSync(disk).blocks).toBe(0); // sparse
    const init = 'cat /sys/block/vda/size 2>/dev/null && echo "DISK vda $(cat /sys/block/vda/size)"\n[ -e /sys/block/vda ] || exit 3\n';
    const initrd = buildInitrd(join(tmp, 'disk.gz'), { init, modules: ['virtio_blk'], kernel });
    const x = await withVm(
      { kernel: kernel.vmlinuz, initrd: initrd.path, append: APPEND, disks: [{ file: disk, format: 'raw' }], serialLog: join(tmp, 'disk.log'), timeoutMs: 90_000, name: 'disk' },
      async (vm) => {
        await vm.waitFor(/DISK vda \d+\r?\n/);
        return vm.exited;
      },
    );
    expect(x.debugExit).toBe(0);
    expect(readFileSync(join(tmp, 'disk.log'), 'utf8')).toContain(`DISK vda ${(64 << 20) / 512}`);
  });

  test('an abort (AbortSignal) kills the VM', async () => {
    const initrd = buildInitrd(join(tmp, 'abort.gz'), { init: 'echo waiting for abort\nwhile :; do sleep 1; done\n' });
    const ac = new AbortController();
    const vm = bootVm({ kernel: kernel.vmlinuz, initrd: initrd.path, append: APPEND, serialLog: join(tmp, 'abort.log'), timeoutMs: 90_000, name: 'abort', signal: ac.signal });
    await vm.waitFor('waiting for abort');
    expect(pgrep(vm.name)).not.toBe('');
    ac.abort();
    const x = await vm.exited;
    expect(x.killed).toBe(true);
    expect(pgrep(vm.name)).toBe('');
  });

  test('SIGTERM to a process running a VM leaves no qemu behind', async () => {
    const initrd = buildInitrd(join(tmp, 'term.gz'), { init: 'echo guest is up\nwhile :; do sleep 1; done\n' });
    // a private build of the library (dist/ may be rebuilt by other test files meanwhile)
    const root = join(import.meta.dirname, '..');
    const out = join(tmp, 'js');
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), join(root, 'src', 'vm', 'qemu.ts'), '--outDir', out, '--rootDir', join(root, 'src'), '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--skipLibCheck', '--strict']);
    writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
    const script = `import { bootVm } from ${JSON.stringify(join(out, 'vm', 'qemu.js'))};
const vm = bootVm({ kernel: process.argv[1], initrd: process.argv[2], append: ${JSON.stringify(APPEND)}, serialLog: process.argv[3], timeoutMs: 90000, name: 'sigterm' });
vm.waitFor('guest is up').then(() => console.log('NAME ' + vm.name));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, kernel.vmlinuz, initrd.path, join(tmp, 'term.log')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const name = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (b) => {
        out += b;
        const m = /NAME (\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('close', () => reject(new Error(`script ended early: ${out}`)));
    });
    expect(pgrep(name)).not.toBe('');
    const closed = new Promise<string | null>((r) => child.on('close', (_c, sig) => r(sig)));
    child.kill('SIGTERM');
    expect(await closed).toBe('SIGTERM');
    expect(await pgrepSettled(name)).toBe('');
  });

  test('send() types into the console', async () => {
    const initrd = buildInitrd(join(tmp, 'echo.gz'), { init: 'echo READY-FOR-INPUT\nread line\necho "GOT:$line"\n[ "$line" = hello ]\n' });
    const x = await withVm({ kernel: kernel.vmlinuz, initrd: initrd.path, append: APPEND, serialLog: join(tmp, 'echo.log'), timeoutMs: 90_000, name: 'echo' }, async (vm) => {
      await vm.waitFor('READY-FOR-INPUT');
      vm.send('hello\n');
      await vm.waitFor('GOT:hello');
      return vm.exited;
    });
    expect(x.debugExit).toBe(0);
  });
});

describe('kiln:qemu-test through the CLI', () => {
  const env = { KILN_CACHE_DIR: CACHE };
  const part = (name: string, init: string[], extra = '') =>
    `[${name}]\nrecipe = kiln:qemu-test\nkernel = debian\ninit =\n${init.map((l) => `    ${l}`).join('\n')}\n${extra}`;

  test('(e) a passing part: serial.log and JUnit XML in out/test-results/', async () => {
    const cfg =
      `[buildout]\nparts = boot\n` +
      part(
        'boot',
        ['echo GUEST-UP', 'test -e /sys/block/vda', 'echo DISK-OK', 'grep -q ext4 /proc/filesystems', 'grep -q hello-from-host /etc/data.txt', 'echo FILES-OK'],
        'modules = ext4\nfiles = data.txt /etc/data.txt\nextra-disks = 16M\nexpect =\n    GUEST-UP\n    DISK-OK\n    FILES-OK\ntimeout = 120\n',
      );
    const p = project({ 'buildout.cfg': cfg, 'data.txt': 'hello-from-host\n' });
    const t0 = Date.now();
    const r = await kilnP(p.dir, ['build'], env);
    console.log(`kiln build of a qemu-test part: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(readFileSync(join(p.dir, 'out/parts/boot/serial.log'), 'utf8')).toContain('DISK-OK');
    const xml = readFileSync(join(p.dir, 'out/test-results/boot/qemu.xml'), 'utf8');
    expect(xml).toMatch(/<testsuite name="boot" tests="4" failures="0"/);
    expect(xml).toContain('expect: DISK-OK');
  }, 300_000);

  test('(e) a failing part: exit status and a missing marker, with the log tail and the part name', async () => {
    const cfg = `[buildout]\nparts = broken\n` + part('broken', ['echo SOMETHING-WENT-WRONG', 'exit 4'], 'expect =\n    NEVER-PRINTED\ntimeout = 120\n');
    const p = project({ 'buildout.cfg': cfg });
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code).toBe(1);
    const all = r.stderr + r.stdout;
    expect(all).toMatch(/\[broken\] qemu test failed: marker 'NEVER-PRINTED' did not appear/);
    expect(all).toContain('SOMETHING-WENT-WRONG');
    const xml = readFileSync(join(p.dir, 'out/test-results/broken/qemu.xml'), 'utf8');
    expect(xml).toMatch(/tests="2" failures="2"/);
    expect(xml).toContain('failure status 4');
    expect(pgrep('kiln-broken')).toBe('');
  }, 300_000);

  test('own kernel and initrd, pass = markers: passes once the markers appear, the guest is killed', async () => {
    // a guest that never reports a status: its init prints and then idles
    const initrd = buildInitrd(join(tmp, 'own.gz'), { preamble: false, init: '#!/bin/sh\necho OWN-INITRD-UP\n/bin/busybox sleep 1\necho SECOND-MARKER\nwhile :; do /bin/busybox sleep 1; done\n' });
    const cfg = `[buildout]\nparts = own\n[own]\nrecipe = kiln:qemu-test\nkernel = ${kernel.vmlinuz}\ninitrd = ${initrd.path}\nexpect =\n    OWN-INITRD-UP\n    SECOND-MARKER\ntimeout = 150\n`;
    const p = project({ 'buildout.cfg': cfg });
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const xml = readFileSync(join(p.dir, 'out/test-results/own/qemu.xml'), 'utf8');
    expect(xml).toMatch(/tests="2" failures="0"/);
    expect(pgrep('kiln-own-')).toBe('');
  }, 300_000);

  test('an interrupted build (SIGINT) kills its guest', async () => {
    const cfg = `[buildout]\nparts = forever\n` + part('forever', ['echo GUEST-WAITING-FOREVER', 'while :; do sleep 1; done'], 'timeout = 200\n');
    const p = project({ 'buildout.cfg': cfg });
    const c = kilnAsync(p.dir, ['build'], env);
    let out = '';
    c.stdout!.on('data', (b) => (out += b));
    c.stderr!.on('data', (b) => (out += b));
    const closed = new Promise<number | null>((r) => c.on('close', (code) => r(code)));
    // wait for the guest to come up: the serial log is in the part's staging dir, so poll for the VM by name
    while (!pgrep('kiln-forever-')) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 3000));
    c.kill('SIGINT');
    const code = await closed;
    expect(code, out).toBe(130);
    expect(pgrep('kiln-forever-')).toBe('');
  }, 120_000);

  test('bad options are config errors', async () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = x\n[x]\nrecipe = kiln:qemu-test\ninit = true\nextra-disks = lots\n` });
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/buildout\.cfg:6: \[x\] extra-disks: expected a size such as 64M or 1G, got 'lots'/);
  });
});
