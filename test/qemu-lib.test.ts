// The QEMU test library (src/lib/qemu.ts, kernel.ts, initrd.ts) against real QEMU under TCG:
// the Debian bookworm kernel (downloaded once into the user's cache) and busybox initrds.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { debianKernel, moduleClosure, type DebianKernel } from '../src/lib/kernel.js';
import { buildInitrd } from '../src/lib/initrd.js';
import { blankDisk, bootVm, checkGuestExit, liveVms, parseSize, qemuArgs, runConsoleScript, VmError, withVm } from '../src/lib/qemu.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const APPEND = 'console=ttyS0 quiet panic=-1';
const SDE = 1700000000;

let kernel: DebianKernel;
let tmp: string;

/** qemu processes whose command line carries this VM name */
const qemuProcs = (name: string) => spawnSync('pgrep', ['-f', name], { encoding: 'utf8' }).stdout.trim();

const initrd = (file: string, script: string) => buildInitrd({ out: join(tmp, file), script, sourceDateEpoch: SDE });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-qemu-lib-'));
  kernel = await debianKernel({ cacheDir: CACHE });
}, 900_000);

describe('kernel', () => {
  test('the Debian 6.1 kernel: exact release string, files, module dependencies', async () => {
    expect(kernel.version).toMatch(/^6\.1\.0-\d+-amd64$/);
    expect(kernel.package).toBe(`linux-image-${kernel.version}`);
    expect(kernel.headersPackage).toBe(`linux-headers-${kernel.version}`);
    for (const f of [kernel.vmlinuz, kernel.systemMap, kernel.config]) expect(existsSync(f)).toBe(true);
    const mods = moduleClosure(kernel, ['ext4', 'virtio_blk']);
    const at = (n: string) => mods.findIndex((m) => m.endsWith(`/${n}.ko`));
    expect(at('jbd2')).toBeGreaterThanOrEqual(0);
    expect(at('jbd2')).toBeLessThan(at('ext4'));
    expect(at('virtio')).toBeLessThan(at('virtio_blk'));
    expect(() => moduleClosure(kernel, ['no_such_module'])).toThrow(/no module 'no_such_module'/);
    // second call: from the cache, offline
    const again = await debianKernel({ cacheDir: CACHE, version: kernel.version, offline: true });
    expect(again.root).toBe(kernel.root);
  });
});

describe('initrd', () => {
  test('reproducible: same inputs, same bytes', async () => {
    const a = await buildInitrd({ out: join(tmp, 'a.gz'), script: 'echo hi\n', kernel, modules: ['ext4'], sourceDateEpoch: SDE });
    const b = await buildInitrd({ out: join(tmp, 'b.gz'), script: 'echo hi\n', kernel, modules: ['ext4'], sourceDateEpoch: SDE });
    expect(a.sha256).toBe(b.sha256);
    expect(readFileSync(a.path).equals(readFileSync(b.path))).toBe(true);
    const listing = spawnSync('sh', ['-c', 'gzip -dc "$1" | cpio -t --quiet', 'sh', a.path], { encoding: 'utf8' }).stdout.split('\n');
    expect(listing).toContain('init');
    expect(listing).toContain('bin/busybox');
    expect(listing).toContain(`lib/modules/${kernel.version}/kernel/fs/ext4/ext4.ko`);
    const c = await buildInitrd({ out: join(tmp, 'c.gz'), script: 'echo hi\n', sourceDateEpoch: SDE + 1 });
    expect(c.sha256).not.toBe(a.sha256);
  });
});

describe('qemu', () => {
  test('arguments: sizes, commas in paths, boot order', async () => {
    expect(parseSize('64M')).toBe(64 * 1024 * 1024);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(() => parseSize('lots')).toThrow(/bad size/);
    const a = qemuArgs({ serialLog: '/x', disks: [{ file: '/a,b.img' }], cdrom: '/c.iso', bootFrom: 'cdrom' }, 'kiln-t', 'tcg');
    expect(a).toContain('file=/a,,b.img,format=raw,if=virtio');
    expect(a.join(' ')).toContain('-boot order=d');
    expect(a.join(' ')).toContain('isa-debug-exit,iobase=0xf4,iosize=0x04');
    const disk = await blankDisk(join(tmp, 'blank.img'), '16M');
    expect(statSync(disk).size).toBe(16 * 1024 * 1024);
  });

  test('boots the Debian kernel with a busybox initrd: marker, typed input, pass through isa-debug-exit', async () => {
    const ird = await initrd('pass.gz', 'echo "KILN-BOOTED $(uname -r)"\nread -r line\necho "GOT:$line"\nkiln-exit 0\n');
    const t0 = Date.now();
    const r = await withVm({ kernel: kernel.vmlinuz, initrd: ird.path, append: APPEND, serialLog: join(tmp, 'pass.log'), timeoutMs: 240_000 }, async (vm) => {
      const m = await vm.waitFor(/KILN-BOOTED (\S+)\r?\n/);
      const booted = (Date.now() - t0) / 1000;
      vm.send('hello from the host');
      await vm.waitFor('GOT:hello from the host');
      const e = await vm.wait();
      expect(checkGuestExit(vm, e)).toBeNull();
      return { release: m[1], booted, e, name: vm.name };
    });
    console.log(`kernel+initrd boot to marker: ${r.booted.toFixed(1)} s (TCG)`);
    expect(r.release).toBe(kernel.version);
    expect(r.e).toMatchObject({ status: 1, guestCode: 0, killed: false });
    expect(readFileSync(join(tmp, 'pass.log'), 'utf8')).toContain('KILN-BOOTED');
    expect(qemuProcs(r.name)).toBe('');
  });

  test('console script: markers, then commands typed at a shell prompt with their exit status', async () => {
    const ird = await buildInitrd({
      out: join(tmp, 'shell.gz'),
      script: "echo KILN-SHELL\nexport PS1='kiln# '\nexec setsid cttyhack sh\n",
      sourceDateEpoch: SDE,
    });
    const vm = await bootVm({ kernel: kernel.vmlinuz, initrd: ird.path, append: APPEND, serialLog: join(tmp, 'shell.log'), timeoutMs: 240_000 });
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
      // a marker that never comes ends the script with the VmError (guest killed)
      const r2 = await runConsoleScript(vm, { expect: ['KILN-NEVER'], timeoutMs: 1500 });
      expect(r2.error).toBeInstanceOf(VmError);
      expect(r2.checks[0]!.failure).toMatch(/timed out/);
      expect((await vm.exited).killed).toBe(true);
    } finally {
      await vm.kill();
    }
  });

  test('a guest that reports failure: its code, and an error with the console tail', async () => {
    const ird = await initrd('fail.gz', 'echo "KILN-FAILING now"\nkiln-exit 3\n');
    const vm = await bootVm({ kernel: kernel.vmlinuz, initrd: ird.path, append: APPEND, serialLog: join(tmp, 'fail.log'), timeoutMs: 240_000 });
    const e = await vm.wait();
    expect(e).toMatchObject({ status: 7, guestCode: 3, killed: false });
    expect(vm.exitCode).toBe(7);
    const err = checkGuestExit(vm, e);
    expect(err).toBeInstanceOf(VmError);
    expect(err!.message).toMatch(/code 3/);
    expect(err!.message).toContain('KILN-FAILING now');
    // waiting for a marker on a guest that is gone fails at once
    await expect(vm.waitFor('never printed')).rejects.toThrow(/exited through isa-debug-exit with code 3/);
  });

  test('a guest that hangs: killed on timeout, error with the console tail, no qemu left', async () => {
    const ird = await initrd('hang.gz', 'echo KILN-HANGING\nwhile :; do sleep 1; done\n');
    const vm = await bootVm({ kernel: kernel.vmlinuz, initrd: ird.path, append: APPEND, serialLog: join(tmp, 'hang.log'), timeoutMs: 240_000 });
    expect(vm.name).toMatch(/^kiln-[0-9a-f]{12}$/);
    expect(qemuProcs(vm.name)).not.toBe('');
    await vm.waitFor('KILN-HANGING');
    const err = await vm.waitFor('KILN-NEVER', 2000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmError);
    expect((err as Error).message).toMatch(/timed out after 2 s waiting for 'KILN-NEVER'.*the guest was killed/);
    expect((err as Error).message).toContain('KILN-HANGING');
    expect((await vm.exited).killed).toBe(true);
    expect(qemuProcs(vm.name)).toBe('');
    expect(liveVms()).toBe(0);
  });

  test('the hard time limit kills a guest nobody waits on', async () => {
    const ird = await initrd('limit.gz', 'while :; do sleep 1; done\n');
    const vm = await bootVm({ kernel: kernel.vmlinuz, initrd: ird.path, append: APPEND, serialLog: join(tmp, 'limit.log'), timeoutMs: 3000 });
    const e = await vm.exited;
    expect(e.killed).toBe(true);
    expect(qemuProcs(vm.name)).toBe('');
    await expect(vm.waitFor('x')).rejects.toThrow(/reached its time limit of 3 s/);
  });

  test('an aborted signal kills the guest', async () => {
    const ird = await initrd('abort.gz', 'while :; do sleep 1; done\n');
    const ac = new AbortController();
    const vm = await bootVm({ kernel: kernel.vmlinuz, initrd: ird.path, append: APPEND, serialLog: join(tmp, 'abort.log'), timeoutMs: 240_000, signal: ac.signal });
    ac.abort();
    expect((await vm.exited).killed).toBe(true);
    expect(qemuProcs(vm.name)).toBe('');
  });
});
