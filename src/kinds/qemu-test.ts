/**
 * kiln:qemu-test: boot a QEMU guest (TCG by default) and decide pass/fail from the guest's
 * isa-debug-exit status and markers on its serial console. Writes serial.log and
 * test-results/qemu.xml (JUnit, collected into out/test-results/PART/ also on failure).
 *
 *   [boot-test]
 *   recipe = kiln:qemu-test
 *   kernel = debian                 (the bookworm kernel, downloaded once into the cache) or a path
 *   init =                          (a shell script run by a generated busybox initrd; its exit
 *       echo HELLO-FROM-GUEST        status is the test's status, `kiln-exit N` ends it early)
 *       test -e /sys/block/vda
 *   modules = ext4                  (kernel modules loaded first, with their dependencies)
 *   extra-disks = 64M               (blank disks: /dev/vda, /dev/vdb, ...; virtio_blk is added)
 *   expect = HELLO-FROM-GUEST       (markers that must appear, in order, one per line)
 *   timeout = 120
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { junitXml, type TestCase } from '../lib/junit.js';
import type { OptionSpec, PartOptions, Recipe } from '../kind.js';
import { buildInitrd, type InitrdFile } from '../vm/initrd.js';
import { debianKernel } from '../vm/kernel.js';
import { blankDisk, bootVm, parseSize, type Accel, type VmDisk, type VmExit } from '../vm/qemu.js';

const DEFAULT_APPEND = 'console=ttyS0 panic=-1 quiet';
/** a `files` line: HOST-PATH [=>] /GUEST/PATH */
const FILES_RE = /^(\S+)\s+(?:=>\s+)?(\/\S*)$/;

const OPTIONS = {
  kernel: { type: 'path', description: "'debian' (the bookworm kernel from apt, cached) or a path to a kernel image" },
  'kernel-version': { type: 'pattern', pattern: /^[0-9][A-Za-z0-9.+~-]*$/, expected: 'a Debian kernel release', description: 'Debian kernel release for kernel = debian, e.g. 6.1.0-56-amd64 (default: what linux-image-amd64 depends on)' },
  initrd: { type: 'path', description: 'path to an initrd' },
  init: { type: 'string', multiline: true, description: 'shell script for a generated busybox initrd (exit status = test status)' },
  modules: { type: 'list', pattern: /^[A-Za-z0-9_-]+$/, expected: 'a kernel module name', description: 'kernel modules to put in the generated initrd and load (with dependencies)' },
  files: { type: 'lines', pattern: FILES_RE, expected: "a 'HOST-PATH /GUEST/PATH' line", description: "'HOST-PATH /GUEST/PATH' lines: extra files for the generated initrd" },
  disk: { type: 'path', description: 'disk image (raw or .qcow2), attached as the first virtio disk; never modified (snapshot)' },
  iso: { type: 'path', description: 'ISO image attached as a CD-ROM' },
  'extra-disks': { type: 'list', pattern: /^\d+(\.\d+)?[KMGT]?(i?B)?$/i, expected: 'a size such as 64M or 1G', description: 'sizes of blank disks to attach (e.g. 64M 1G)' },
  boot: { type: 'enum', choices: ['kernel', 'disk', 'cdrom'], noun: 'boot device', description: 'kernel, disk or cdrom (default: kernel when there is one, else cdrom with an iso, else disk)' },
  append: { type: 'string', description: `extra kernel command line (after '${DEFAULT_APPEND}')` },
  memory: { type: 'int', min: 32, description: 'MiB', default: '256' },
  cpus: { type: 'int', min: 1, description: 'virtual CPUs', default: '1' },
  timeout: { type: 'int', min: 1, description: 'seconds before the guest is killed', default: '120' },
  expect: { type: 'lines', description: 'console markers that must appear, in order, one per line' },
  pass: { type: 'enum', choices: ['status', 'markers'], noun: 'pass rule', description: "'status' (wait for the guest's isa-debug-exit status 0) or 'markers' (pass once all expect markers appeared)" },
  accel: { type: 'enum', choices: ['tcg', 'kvm', 'auto'], noun: 'accelerator', description: 'tcg, kvm or auto (tcg unless KILN_KVM=1)', default: 'auto' },
  uefi: { type: 'bool', description: 'boot with OVMF (Debian package ovmf)', default: 'false' },
} as const satisfies Record<string, OptionSpec>;

function usesDebianKernel(o: PartOptions): boolean {
  // the word 'debian' as written (the typed value of a path option is resolved)
  const k = o.get('kernel')?.trim();
  return k === 'debian' || (!k && !!o.typed(OPTIONS).init?.trim());
}

/** The `files` lines (checked by the option's pattern) as initrd entries. */
function extraFiles(o: PartOptions): InitrdFile[] {
  return o.typed(OPTIONS).files.map((line) => {
    const m = FILES_RE.exec(line)!;
    return { from: o.resolvePath('files', m[1]!), to: m[2]! };
  });
}


function diskFormat(file: string): 'raw' | 'qcow2' {
  return /\.qcow2$/i.test(file) ? 'qcow2' : 'raw';
}

function passMode(o: PartOptions): 'status' | 'markers' {
  const v = o.typed(OPTIONS);
  return v.pass ?? (v.init?.trim() || !v.expect.length ? 'status' : 'markers');
}

export const recipe: Recipe = {
  kind: 'qemu-test',
  version: '1',
  description: 'boot a QEMU guest (kernel+initrd, disk or ISO) and check its exit status and console markers',
  options: OPTIONS,
  validate(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const has = (n: keyof typeof OPTIONS) => { const x = v[n]; return Array.isArray(x) ? x.length > 0 : typeof x === 'string' ? !!x.trim() : x !== undefined; };
    if (has('init') && has('initrd')) throw o.error('init', "give 'init' (a generated initrd) or 'initrd', not both");
    if ((has('modules') || has('files')) && !has('init')) throw o.error(has('modules') ? 'modules' : 'files', "only for a generated initrd: add 'init'");
    if (has('modules') && !usesDebianKernel(o)) throw o.error('modules', 'modules come from the Debian kernel: use kernel = debian');
    if (has('kernel-version') && !usesDebianKernel(o)) throw o.error('kernel-version', 'only with kernel = debian');
    if (!has('kernel') && !has('init') && !has('disk') && !has('iso')) throw o.error('kernel', "nothing to boot: give 'kernel' (+ 'init' or 'initrd'), 'disk' or 'iso'");
    if (has('initrd') && !has('kernel')) throw o.error('initrd', "an initrd needs a 'kernel'");
    const { boot, pass } = v;
    if (boot === 'disk' && !has('disk')) throw o.error('boot', "boot = disk needs 'disk'");
    if (boot === 'cdrom' && !has('iso')) throw o.error('boot', "boot = cdrom needs 'iso'");
    if (pass === 'markers' && !v.expect.length) throw o.error('pass', "pass = markers needs 'expect' markers");
  },
  inputs(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const out: string[] = [];
    if (v.kernel && !usesDebianKernel(o)) out.push(v.kernel);
    for (const n of ['initrd', 'disk', 'iso'] as const) if (v[n]) out.push(v[n]);
    if (v.init?.trim()) for (const f of extraFiles(o)) out.push(f.from!);
    return out;
  },
  tools(ctx) {
    const t = ['qemu-system-x86_64'];
    if (usesDebianKernel(ctx.options)) t.push('apt-get', 'apt-cache', 'dpkg-deb');
    return t;
  },
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const t0 = Date.now();
    const expect = v.expect;
    const mode = passMode(o);
    const timeoutMs = v.timeout * 1000;
    const disks: VmDisk[] = [];
    if (v.disk) disks.push({ file: v.disk, format: diskFormat(v.disk), snapshot: true });
    v['extra-disks'].forEach((s, i) => {
      disks.push({ file: blankDisk(join(ctx.work, `extra-${i}.img`), parseSize(s)), format: 'raw' });
    });

    let kernelPath: string | undefined;
    let initrdPath = v.initrd;
    if (usesDebianKernel(o)) {
      const k = await debianKernel({ cacheDir: ctx.cacheDir, version: v['kernel-version'], offline: ctx.offline, log: ctx.log, signal: ctx.signal });
      ctx.log(`# kernel ${k.version} (${k.package} ${k.packageVersion})\n`);
      kernelPath = k.vmlinuz;
      const init = v.init;
      if (init?.trim()) {
        const modules = [...v.modules];
        if (disks.length && !modules.includes('virtio_blk')) modules.push('virtio_blk');
        const r = buildInitrd(join(ctx.work, 'initrd.gz'), { init, modules, kernel: k, files: extraFiles(o), sourceDateEpoch: ctx.sourceDateEpoch });
        ctx.log(`# initrd: ${r.entries} entries, modules: ${r.modules.map((m) => m.split('/').pop()).join(' ') || '(none)'}\n`);
        initrdPath = r.path;
      }
    } else if (v.kernel) {
      kernelPath = v.kernel;
      // a kernel of one's own (kiln:kernel) with a generated busybox initrd: no modules from it
      if (v.init?.trim()) {
        const r = buildInitrd(join(ctx.work, 'initrd.gz'), { init: v.init, files: extraFiles(o), sourceDateEpoch: ctx.sourceDateEpoch });
        ctx.log(`# initrd: ${r.entries} entries\n`);
        initrdPath = r.path;
      }
    }

    const serialLog = join(ctx.staging, 'serial.log');
    const vm = bootVm({
      kernel: kernelPath,
      initrd: initrdPath,
      append: [DEFAULT_APPEND, v.append].filter(Boolean).join(' '),
      disks,
      cdrom: v.iso,
      boot: v.boot,
      memory: v.memory,
      cpus: v.cpus,
      timeoutMs,
      serialLog,
      accel: v.accel satisfies Accel,
      uefi: v.uefi,
      name: ctx.part,
      signal: ctx.signal,
      log: ctx.log,
    });
    const cases: TestCase[] = [];
    let failure: string | undefined;
    let exit: VmExit | undefined;
    let lastMark = t0;
    try {
      let i = 0;
      for (; i < expect.length; i++) {
        try {
          await vm.waitFor(expect[i]!, Math.max(1, timeoutMs - (Date.now() - t0)));
          cases.push({ name: `expect: ${expect[i]}`, seconds: (Date.now() - lastMark) / 1000 });
          lastMark = Date.now();
        } catch (e) {
          failure = `marker '${expect[i]}' did not appear: ${(e as Error).message.split('\n')[0]}`;
          cases.push({ name: `expect: ${expect[i]}`, seconds: (Date.now() - lastMark) / 1000, failure: `${failure}\n${vm.tail()}` });
          break;
        }
      }
      for (i++; i < expect.length; i++) cases.push({ name: `expect: ${expect[i]}`, seconds: 0, failure: 'not reached' });
      if (mode === 'markers' && !failure) {
        exit = await vm.kill();
      } else {
        exit = await vm.exited;
        if (mode === 'status') {
          let f: string | undefined;
          if (exit.timedOut) f = `the guest did not finish within ${timeoutMs / 1000}s and was killed`;
          else if (exit.killed) f = 'the guest was killed (interrupted)';
          else if (exit.debugExit === undefined) f = `the guest stopped without an exit status (QEMU exit code ${exit.code}${exit.signal ? `, ${exit.signal}` : ''})${exit.stderr.trim() ? `: ${exit.stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`;
          else if (exit.debugExit !== 0) f = `the guest exited with failure status ${exit.debugExit}`;
          cases.push({ name: 'guest exit status', seconds: (Date.now() - lastMark) / 1000, failure: f ? `${f}\n${vm.tail()}` : undefined });
          failure ??= f;
        }
      }
    } finally {
      await vm.kill();
      mkdirSync(join(ctx.staging, 'test-results'), { recursive: true });
      const seconds = (Date.now() - t0) / 1000;
      if (!cases.length) cases.push({ name: 'boot', seconds, failure: failure ?? (exit ? undefined : 'did not run') });
      writeFileSync(join(ctx.staging, 'test-results', 'qemu.xml'), junitXml(ctx.part, cases.map((c) => ({ ...c, output: c.failure ? undefined : c.output }))));
      ctx.log(`# qemu-test ${ctx.part}: ${failure ? 'FAILED' : 'passed'} in ${seconds.toFixed(1)}s (serial console: ${serialLog})\n`);
    }
    if (failure) {
      throw new KilnError(`[${ctx.part}] qemu test failed: ${failure}\n--- last 30 lines of the serial console (serial.log) ---\n${vm.tail().replace(/\s+$/, '')}`);
    }
  },
};
export default recipe;
