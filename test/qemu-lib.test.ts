// The parts of the QEMU library (src/vm/) that test/qemu.test.ts does not cover, against real
// QEMU under TCG: module closures and the kernel cache layouts, initrd digests, KVM probing,
// captured markers, wait(), and console scripts (commands typed at a guest shell prompt).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { cachedKernels, debianKernel, moduleClosure, moduleIndex, type Kernel } from '../src/vm/kernel.js';
import { buildInitrd } from '../src/vm/initrd.js';
import { bootVm, chooseAccel, probeKvm, qemuArgs, runConsoleScript, runningVms, VmError, withVm } from '../src/vm/qemu.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const APPEND = 'console=ttyS0 quiet panic=-1';
const SDE = 1700000000;

let kernel: Kernel;
let tmp: string;

/** qemu processes whose command line carries this VM name */
const qemuProcs = (name: string) => spawnSync('pgrep', ['-f', name], { encoding: 'utf8' }).stdout.trim();

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-qemu-lib-'));
  kernel = await debianKernel({ cacheDir: CACHE });
}, 900_000);

describe('kernel', () => {
  test('module closure and index, headers package name', () => {
    expect(kernel.version).toMatch(/^6\.1\.0-\d+-amd64$/);
    expect(kernel.headersPackage).toBe(`linux-headers-${kernel.version}`);
    const mods = moduleClosure(kernel, ['ext4', 'virtio_blk']);
    const at = (n: string) => mods.findIndex((m) => m.endsWith(`/${n}.ko`));
    expect(at('jbd2')).toBeGreaterThanOrEqual(0);
    expect(at('jbd2')).toBeLessThan(at('ext4'));
    expect(at('virtio')).toBeLessThan(at('virtio_blk'));
    expect(() => moduleClosure(kernel, ['no_such_module'])).toThrow(/'no_such_module' is neither a module nor built into/);
    expect(moduleIndex(kernel).get('virtio_blk')).toBe('kernel/drivers/block/virtio_blk.ko');
  });

  test('one cache: the kernel is listed, and a kernel unpacked by the old library layout (deb-SHA256/) is reused', async () => {
    expect(cachedKernels(CACHE).map((k) => k.root)).toContain(kernel.root);
    // a cache holding only an old-layout entry for the same package: no download, offline works
    const cache = join(tmp, 'cache');
    const old = join(cache, 'kernels', 'deb-0123abcd');
    mkdirSync(join(old, 'boot'), { recursive: true });
    cpSync(kernel.vmlinuz, join(old, 'boot', `vmlinuz-${kernel.version}`));
    mkdirSync(join(old, 'lib', 'modules', kernel.version), { recursive: true });
    writeFileSync(join(old, 'kernel.json'), JSON.stringify({ version: kernel.version, package: kernel.package, packageVersion: kernel.packageVersion, sha256: '0123abcd' }));
    const t0 = Date.now();
    const k = await debianKernel({ cacheDir: cache, version: kernel.version });
    expect(k.root).toBe(old);
    expect(Date.now() - t0).toBeLessThan(20_000); // apt-cache only, no download
    expect((await debianKernel({ cacheDir: cache, version: kernel.version, offline: true })).root).toBe(old);
    expect(readFileSync(join(cache, 'kernels', 'deb-0123abcd', 'kernel.json'), 'utf8')).toContain(kernel.packageVersion);
    expect(existsSync(join(cache, 'kernels', `${kernel.package}_${kernel.packageVersion}`))).toBe(false);
    rmSync(cache, { recursive: true, force: true });
  }, 60_000);
});

describe('initrd', () => {
  test('sha256 of the bytes; execInit makes the script PID 1', () => {
    const a = buildInitrd(join(tmp, 'a.gz'), { init: 'echo hi\n', kernel, modules: ['ext4'], sourceDateEpoch: SDE });
    const b = buildInitrd(join(tmp, 'b.gz'), { init: 'echo hi\n', kernel, modules: ['ext4'], sourceDateEpoch: SDE });
    expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(a.sha256).toBe(b.sha256);
    const sha = execFileSync('sha256sum', [a.path], { encoding: 'utf8' }).split(' ')[0];
    expect(sha).toBe(a.sha256);
    const c = buildInitrd(join(tmp, 'c.gz'), { init: 'echo hi\n', execInit: true, sourceDateEpoch: SDE });
    const init = execFileSync('sh', ['-c', 'zcat "$1" | cpio -i --to-stdout --quiet init', 'sh', c.path], { encoding: 'utf8' });
    expect(init).toMatch(/\nexec sh \/kiln\/init\.sh\n/);
    expect(init).not.toContain('kiln-exit $?');
  });
});

describe('qemu', () => {
  test('accel: tcg unless asked; KVM only when the probe boots a guest', () => {
    const t0 = Date.now();
    const works = probeKvm();
    console.log(`KVM probe: ${works ? 'works' : 'does not work'} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    expect(Date.now() - t0).toBeLessThan(50_000);
    const saved = process.env.KILN_KVM;
    try {
      delete process.env.KILN_KVM;
      expect(chooseAccel('auto')).toBe('tcg');
      process.env.KILN_KVM = '1';
      expect(chooseAccel('auto')).toBe(works ? 'kvm' : 'tcg');
      expect(chooseAccel('tcg')).toBe('tcg');
    } finally {
      if (saved === undefined) delete process.env.KILN_KVM;
      else process.env.KILN_KVM = saved;
    }
    const a = qemuArgs({ serialLog: '/x', accel: 'kvm', disks: [{ file: '/a.img' }], cdrom: '/c.iso', boot: 'cdrom' }, 'kiln-t');
    expect(a.join(' ')).toContain('-accel kvm -m');
    expect(a).toContain('file=/a.img,format=raw,if=virtio');
    expect(a.join(' ')).toContain('-boot order=d');
  }, 90_000);

  test('a captured marker, typed input, wait() for the exit status', async () => {
    const ird = buildInitrd(join(tmp, 'pass.gz'), { init: 'echo "KILN-BOOTED $(uname -r)"\nread -r line\necho "GOT:$line"\nexit 5\n', sourceDateEpoch: SDE });
    const t0 = Date.now();
    const r = await withVm({ kernel: kernel.vmlinuz, initrd: ird.path, append: APPEND, serialLog: join(tmp, 'pass.log'), timeoutMs: 240_000, name: 'lib-pass' }, async (vm) => {
      const m = await vm.waitForMatch(/KILN-BOOTED (\S+)\r?\n/);
      const booted = (Date.now() - t0) / 1000;
      expect(vm.output().slice(m.index, m.index + 12)).toBe('KILN-BOOTED ');
      expect(vm.exitCode).toBeNull();
      vm.send('hello from the host\n');
      await vm.waitFor('GOT:hello from the host');
      const e = await vm.wait();
      return { release: m[1], booted, e, exitCode: vm.exitCode, name: vm.name, accel: vm.accel };
    });
    console.log(`kernel+initrd boot to marker: ${r.booted.toFixed(1)} s (${r.accel})`);
    expect(r.release).toBe(kernel.version);
    expect(r.e).toMatchObject({ code: 11, debugExit: 5, killed: false, timedOut: false });
    expect(r.exitCode).toBe(11);
    expect(qemuProcs(r.name)).toBe('');
  });

  test('wait() with a time limit kills a guest that does not exit', async () => {
    const ird = buildInitrd(join(tmp, 'hang.gz'), { init: 'echo KILN-HANGING\nwhile :; do sleep 1; done\n', sourceDateEpoch: SDE });
    const vm = bootVm({ kernel: kernel.vmlinuz, initrd: ird.path, append: APPEND, serialLog: join(tmp, 'hang.log'), timeoutMs: 240_000, name: 'lib-hang' });
    try {
      await vm.waitFor('KILN-HANGING');
      const err = await vm.wait(1500).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VmError);
      expect((err as Error).message).toMatch(/timed out after 2s waiting for kiln-lib-hang-\S+ to exit; the guest was killed/);
      expect((err as Error).message).toContain('KILN-HANGING');
      expect((await vm.exited).killed).toBe(true);
      expect(qemuProcs(vm.name)).toBe('');
    } finally {
      await vm.kill();
    }
    expect(runningVms()).toBe(0);
  });

  test('console script: markers, then commands typed at a shell prompt with their exit status', async () => {
    const ird = buildInitrd(join(tmp, 'shell.gz'), { init: "echo KILN-SHELL\nexport PS1='kiln# '\nexec setsid cttyhack sh\n", sourceDateEpoch: SDE });
    const vm = bootVm({ kernel: kernel.vmlinuz, initrd: ird.path, append: APPEND, serialLog: join(tmp, 'shell.log'), timeoutMs: 240_000, name: 'lib-shell' });
    try {
      const r = await runConsoleScript(vm, { expect: ['KILN-SHELL'], prompt: 'kiln# ', commands: ['uname -r', 'false', 'echo ok > /tmp/x && cat /tmp/x', 'test -e /nonexistent'] });
      expect(r.error).toBeUndefined();
      expect(r.checks.map((c) => [c.name, !c.failure])).toEqual([
        ['console: KILN-SHELL', true],
        ['command: uname -r', true],
        ['command: false', false],
        ['command: echo ok > /tmp/x && cat /tmp/x', true],
        ['command: test -e /nonexistent', false],
      ]);
      expect(r.checks[1]!.output!.trim()).toBe(kernel.version);
      expect(r.checks[2]!.failure).toMatch(/^exit status 1: false/);
      expect(r.checks[3]!.output!.trim()).toBe('ok');
      // a marker that never comes ends the script with the VmError, and the guest is killed
      const r2 = await runConsoleScript(vm, { expect: ['KILN-NEVER'], timeoutMs: 1500 });
      expect(r2.error).toBeInstanceOf(VmError);
      expect(r2.checks[0]!.failure).toMatch(/timed out/);
      expect((await vm.exited).killed).toBe(true);
      expect(qemuProcs(vm.name)).toBe('');
    } finally {
      await vm.kill();
    }
  });
});
