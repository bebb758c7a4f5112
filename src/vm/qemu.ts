/**
 * QEMU guests for tests: boot a kernel+initrd, a disk or an ISO under TCG (or KVM when asked),
 * watch the serial console, type into it, and get a pass/fail status from isa-debug-exit.
 *
 * Every VM is named `kiln-<random>`, has a hard time limit, and is tracked: it is killed on its
 * timeout, on abort (AbortSignal), by kill()/withVm(), and when this process gets SIGINT/SIGTERM
 * or exits. The serial console always goes to a log file; errors carry its last 30 lines.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { spawnGuarded } from '../lib/exec.js';
import { requireTool } from '../lib/tools.js';
import { cachedKernels } from './kernel.js';
import { defaultCacheDir } from '../lib/cache.js';

export const QEMU = 'qemu-system-x86_64';
export const DEBUG_EXIT_PORT = 0xf4;
const TAIL_LINES = 30;

export interface VmDisk {
  file: string;
  /** default raw */
  format?: 'raw' | 'qcow2';
  readonly?: boolean;
  /** writes go to a temporary overlay, the file is unchanged */
  snapshot?: boolean;
  /** bus, default virtio (vda, vdb, ...) */
  interface?: 'virtio' | 'ide' | 'scsi';
}

export type Accel = 'tcg' | 'kvm' | 'auto';

export interface VmOptions {
  kernel?: string;
  initrd?: string;
  /** kernel command line (with kernel) */
  append?: string;
  disks?: VmDisk[];
  cdrom?: string;
  /** default: kernel when kernel is given, else cdrom when cdrom is given, else disk */
  boot?: 'kernel' | 'disk' | 'cdrom';
  /** MiB, default 256 */
  memory?: number;
  /** default 1 */
  cpus?: number;
  /** hard limit on the VM's life; it is killed afterwards (default 120 s) */
  timeoutMs?: number;
  /** serial console log file (always written) */
  serialLog: string;
  /** auto = tcg unless KILN_KVM=1 and probeKvm() proves KVM runs a guest here */
  accel?: Accel;
  /** boot with OVMF (Debian package ovmf) */
  uefi?: boolean;
  /** UEFI from separate OVMF code and variable stores (pflash), e.g. Secure Boot: see ovmfFirmware() */
  ovmf?: OvmfFirmware;
  /** add -device isa-debug-exit at port 0xf4 (default true) */
  debugExit?: boolean;
  /** a name part, for pgrep and logs: the VM is `kiln-<name>-<random>` */
  name?: string;
  signal?: AbortSignal;
  /** further QEMU arguments */
  extraArgs?: string[];
  /** called with QEMU's own stderr and the command line */
  log?: (text: string) => void;
}

export interface VmExit {
  /** QEMU's exit code (null when killed) */
  code: number | null;
  signal: string | null;
  /** the value the guest wrote to port 0xf4, when it did */
  debugExit?: number;
  /** killed by the time limit */
  timedOut: boolean;
  /** killed by kill() or abort */
  killed: boolean;
  /** QEMU's stderr (its own errors) */
  stderr: string;
}

export class VmError extends KilnError {
  tail: string;
  serialLog: string;
  constructor(message: string, serialLog: string, tail: string) {
    super(`${message}\n--- last ${TAIL_LINES} lines of the serial console (${serialLog}) ---\n${tail.replace(/\s+$/, '')}`);
    this.name = 'VmError';
    this.tail = tail;
    this.serialLog = serialLog;
  }
}

// ---------------------------------------------------------------------------------------------
// tracking: no orphan qemu

const running = new Set<ChildProcess>();
let hooked = false;

/** Kill a VM's whole process group (coreutils timeout + qemu). */
function killGroup(c: ChildProcess): void {
  try {
    if (c.pid) process.kill(-c.pid, 'SIGKILL');
  } catch {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function killAllNow(): void {
  for (const c of running) killGroup(c);
  running.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  killAllNow();
  // keep the default behaviour (terminate) when nobody else handles the signal
  if (process.listenerCount(sig) === 1) {
    process.removeListener(sig, onSignal);
    process.kill(process.pid, sig);
  }
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAllNow);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** Names of VMs started by this process that still run. */
export function runningVms(): number {
  return running.size;
}

// ---------------------------------------------------------------------------------------------

const kvmProbes = new Map<string, boolean>();

/** The newest Debian kernel in kiln's cache (defaultCacheDir()), for the KVM probe. */
function cachedProbeKernel(): string | undefined {
  return cachedKernels(defaultCacheDir())[0]?.vmlinuz;
}

/**
 * Does KVM run a guest here? Two boots under -accel kvm, 20 s limit each, cached per process:
 * a 512-byte boot sector (`mov al,0x2a; out 0xf4,al`) must report through isa-debug-exit, and a
 * Linux kernel (the given one, else the newest cached Debian kernel) without a root file system
 * must get as far as its panic (`panic=-1` + `-no-reboot`: QEMU exits 0 with "Kernel panic" on
 * the console). Measured on the build hosts: the boot sector passes, the kernel hangs after
 * decompression, so KVM is (rightly) not used there.
 */
export function probeKvm(kernel: string | undefined = cachedProbeKernel()): boolean {
  const key = kernel ?? '';
  const known = kvmProbes.get(key);
  if (known !== undefined) return known;
  let ok = false;
  if (existsSync('/dev/kvm')) {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-kvm-probe-'));
    const base = ['-accel', 'kvm', '-nographic', '-monitor', 'none', '-nic', 'none', '-m', '128', '-no-reboot', '-device', `isa-debug-exit,iobase=0x${DEBUG_EXIT_PORT.toString(16)},iosize=0x04`];
    const opts = { encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'], timeout: 20_000, killSignal: 'SIGKILL' as const };
    try {
      const mbr = Buffer.alloc(512);
      Buffer.from([0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]).copy(mbr);
      mbr[510] = 0x55;
      mbr[511] = 0xaa;
      writeFileSync(join(dir, 'probe.img'), mbr);
      const r = spawnSync(QEMU, [...base, '-serial', 'none', '-drive', `file=${qv(join(dir, 'probe.img'))},format=raw,if=ide`], opts);
      ok = r.status === ((0x2a << 1) | 1);
      if (ok && kernel) {
        const k = spawnSync(QEMU, [...base, '-serial', 'stdio', '-kernel', kernel, '-append', 'console=ttyS0 panic=-1 root=/dev/kiln-none'], opts);
        ok = k.status === 0 && /Kernel panic/.test(k.stdout ?? '');
      }
    } catch {
      ok = false;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  kvmProbes.set(key, ok);
  return ok;
}

/**
 * tcg or kvm for an accel option: auto is KVM only with KILN_KVM=1 and a passing probeKvm()
 * (with the kernel about to be booted, when there is one).
 */
export function chooseAccel(a: Accel | undefined, kernel?: string): 'tcg' | 'kvm' {
  if (a === 'kvm' || a === 'tcg') return a;
  return process.env.KILN_KVM === '1' && probeKvm(kernel ?? cachedProbeKernel()) ? 'kvm' : 'tcg';
}

/** QEMU's option syntax doubles commas in values. */
const qv = (s: string) => s.replace(/,/g, ',,');

const OVMF_CANDIDATES = ['/usr/share/ovmf/OVMF.fd', '/usr/share/OVMF/OVMF.fd', '/usr/share/qemu/OVMF.fd'];

export function ovmfPath(): string {
  const p = OVMF_CANDIDATES.find((f) => existsSync(f));
  if (!p) throw new KilnError('UEFI boot needs OVMF: install the Debian package ovmf (apt-get install ovmf)');
  return p;
}

export interface OvmfFirmware {
  /** OVMF code image (read-only) */
  code: string;
  /** the variable store: written by the firmware, so a copy per VM */
  vars: string;
  /** q35 with SMM and a secure pflash (what OVMF_CODE_*.secboot.fd needs) */
  secureBoot?: boolean;
}

const OVMF_DIR = '/usr/share/OVMF';

/**
 * Debian's OVMF (package ovmf) as code + a fresh copy of a variable store in dir:
 * - 'secureboot-ms': OVMF_CODE_4M.secboot.fd + OVMF_VARS_4M.ms.fd (Microsoft keys enrolled, Secure Boot on)
 * - 'secureboot-snakeoil': OVMF_CODE_4M.secboot.fd + OVMF_VARS_4M.snakeoil.fd (Debian's test key
 *   /usr/share/ovmf/PkKek-1-snakeoil.{key,pem} as PK, KEK and db; Secure Boot on)
 * - 'uefi': OVMF_CODE_4M.fd + OVMF_VARS_4M.fd (no Secure Boot)
 */
export function ovmfFirmware(kind: 'secureboot-ms' | 'secureboot-snakeoil' | 'uefi', dir: string): OvmfFirmware {
  const [code, vars] =
    kind === 'uefi' ? ['OVMF_CODE_4M.fd', 'OVMF_VARS_4M.fd'] : ['OVMF_CODE_4M.secboot.fd', kind === 'secureboot-ms' ? 'OVMF_VARS_4M.ms.fd' : 'OVMF_VARS_4M.snakeoil.fd'];
  for (const f of [code, vars]) if (!existsSync(join(OVMF_DIR, f))) throw new KilnError(`${join(OVMF_DIR, f)} is missing: install the Debian package ovmf`);
  mkdirSync(dir, { recursive: true });
  const copy = join(dir, `${randomBytes(4).toString('hex')}-${vars}`);
  writeFileSync(copy, readFileSync(join(OVMF_DIR, vars)));
  return { code: join(OVMF_DIR, code), vars: copy, secureBoot: kind !== 'uefi' };
}

/** The QEMU command line for these options (without tracking or spawning). */
export function qemuArgs(o: VmOptions, name: string): string[] {
  const boot = o.boot ?? (o.kernel ? 'kernel' : o.cdrom ? 'cdrom' : 'disk');
  const accel = chooseAccel(o.accel, o.kernel);
  const args = ['-name', name, '-accel', accel, '-m', String(o.memory ?? 256), '-smp', String(o.cpus ?? 1)];
  args.push('-nographic', '-monitor', 'none', '-serial', 'stdio', '-parallel', 'none', '-no-reboot', '-nic', 'none');
  if (o.debugExit !== false) args.push('-device', `isa-debug-exit,iobase=0x${DEBUG_EXIT_PORT.toString(16)},iosize=0x04`);
  if (o.ovmf) {
    // Secure Boot capable code needs SMM (q35) and a write-protected flash for the variables
    if (o.ovmf.secureBoot) args.push('-machine', 'q35,smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on');
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${qv(o.ovmf.code)}`, '-drive', `if=pflash,format=raw,unit=1,file=${qv(o.ovmf.vars)}`);
  } else if (o.uefi) args.push('-bios', ovmfPath());
  if (boot === 'kernel') {
    if (!o.kernel) throw new KilnError('boot = kernel needs a kernel');
    args.push('-kernel', o.kernel);
    if (o.initrd) args.push('-initrd', o.initrd);
    args.push('-append', o.append ?? 'console=ttyS0 panic=-1');
  } else if (boot === 'cdrom') {
    if (!o.cdrom) throw new KilnError('boot = cdrom needs a cdrom');
    args.push('-boot', 'order=d');
  } else {
    if (!o.disks?.length) throw new KilnError('boot = disk needs a disk');
    args.push('-boot', 'order=c');
  }
  let scsi = false;
  for (const d of o.disks ?? []) {
    let spec = `file=${qv(d.file)},format=${d.format ?? 'raw'}`;
    const bus = d.interface ?? 'virtio';
    if (bus === 'scsi') {
      if (!scsi) args.push('-device', 'virtio-scsi-pci,id=scsi0');
      scsi = true;
      spec += ',if=none';
    } else spec += `,if=${bus}`;
    if (d.readonly) spec += ',readonly=on';
    if (d.snapshot) spec += ',snapshot=on';
    if (bus === 'scsi') {
      const id = `sd${args.length}`;
      args.push('-drive', `${spec},id=${id}`, '-device', `scsi-hd,drive=${id},bus=scsi0.0`);
    } else args.push('-drive', spec);
  }
  if (o.cdrom) args.push('-drive', `file=${qv(o.cdrom)},media=cdrom,readonly=on,if=ide,format=raw`);
  args.push(...(o.extraArgs ?? []));
  return args;
}

export interface Vm {
  /** kiln-... (QEMU -name, for pgrep -f) */
  name: string;
  pid: number | undefined;
  serialLog: string;
  argv: string[];
  /** console output so far (\r removed) */
  output(): string;
  /** last lines of the console */
  tail(n?: number): string;
  /** tcg or kvm */
  accel: 'tcg' | 'kvm';
  /** wait until the console shows this (after the previous waitFor's match); rejects on timeout or exit */
  waitFor(pattern: string | RegExp, timeoutMs?: number): Promise<string>;
  /** waitFor, resolving with the match (capture groups; index into output()) */
  waitForMatch(pattern: string | RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** wait for QEMU to exit; after timeoutMs the guest is killed and this rejects with a VmError */
  wait(timeoutMs?: number): Promise<VmExit>;
  /** QEMU's exit code once it exited (null before, or when killed) */
  readonly exitCode: number | null;
  /** type into the serial console */
  send(text: string): void;
  exited: Promise<VmExit>;
  kill(): Promise<VmExit>;
}

export function bootVm(o: VmOptions): Vm {
  requireTool(QEMU);
  if (o.signal?.aborted) throw new KilnError('interrupted');
  const name = `kiln-${o.name ? o.name.replace(/[^A-Za-z0-9_.-]/g, '_') + '-' : ''}${randomBytes(5).toString('hex')}`;
  const args = qemuArgs(o, name);
  const accel = args[args.indexOf('-accel') + 1] as 'tcg' | 'kvm';
  const timeoutMs = o.timeoutMs ?? 120_000;
  mkdirSync(dirname(o.serialLog), { recursive: true });
  const logStream: WriteStream = createWriteStream(o.serialLog);
  o.log?.(`# ${QEMU} ${args.join(' ')}\n`);
  hook();
  // qemu runs under coreutils `timeout` in its own process group, guarded like every command of
  // a part (src/lib/exec.ts): it dies with this process, SIGKILL included; and the guest cannot
  // outlive its time limit by more than 10 s in any case
  const hardSeconds = Math.ceil(timeoutMs / 1000) + 10;
  const child = spawnGuarded('timeout', ['-s', 'KILL', String(hardSeconds), QEMU, ...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  running.add(child);

  let out = '';
  let dropped = 0; // characters trimmed from the front of `out`
  let cursor = 0; // absolute position after the last waitFor match
  let stderr = '';
  let done: VmExit | undefined;
  let timedOut = false;
  let killed = false;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };

  child.stdout!.on('data', (b: Buffer) => {
    logStream.write(b);
    out += b.toString('utf8').replace(/\r/g, '');
    if (out.length > 8 << 20) {
      const cut = out.length - (4 << 20);
      out = out.slice(cut);
      dropped += cut;
    }
    notify();
  });
  child.stderr!.on('data', (b: Buffer) => {
    const s = b.toString('utf8');
    stderr += s;
    o.log?.(s);
  });
  child.stdin!.on('error', () => {});

  const tail = (n = TAIL_LINES) => {
    const lines = out.replace(/\n+$/, '').split('\n');
    return lines.slice(Math.max(0, lines.length - n)).join('\n');
  };

  const hardKill = () => killGroup(child);
  const timer = setTimeout(() => {
    timedOut = true;
    hardKill();
  }, timeoutMs);
  const onAbort = () => {
    killed = true;
    hardKill();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });

  const exited = new Promise<VmExit>((resolve) => {
    const finish = (code: number | null, sig: string | null) => {
      if (done) return;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      running.delete(child);
      // odd exit codes are the guest's isa-debug-exit writes, unless QEMU itself failed
      const qemuFailed = /qemu-system-\w+: /.test(stderr) && code === 1;
      const debugExit = o.debugExit !== false && code !== null && code % 2 === 1 && !qemuFailed ? (code - 1) >> 1 : undefined;
      done = { code, signal: sig, debugExit, timedOut, killed, stderr };
      logStream.end(() => resolve(done!));
      notify();
    };
    child.on('error', (e) => {
      stderr += `${e.message}\n`;
      finish(null, null);
    });
    child.on('close', finish);
  });

  const describeExit = (x: VmExit) =>
    x.timedOut
      ? `the VM ${name} was killed at its time limit (${timeoutMs / 1000}s)`
      : x.killed
        ? `the VM ${name} was killed`
        : x.debugExit !== undefined
          ? `the guest exited with status ${x.debugExit} (isa-debug-exit)`
          : `QEMU exited with ${x.signal ? `signal ${x.signal}` : `code ${x.code}`}${x.stderr.trim() ? `: ${x.stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`;

  const escapeRe = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const waitForMatch = (pattern: string | RegExp, waitMs = timeoutMs): Promise<RegExpExecArray> => {
    const t0 = Date.now();
    const re = typeof pattern === 'string' ? new RegExp(escapeRe(pattern)) : new RegExp(pattern.source, pattern.flags.replace('g', ''));
    return new Promise<RegExpExecArray>((resolve, reject) => {
      let t: NodeJS.Timeout | undefined;
      const cleanup = () => {
        listeners.delete(check);
        if (t) clearTimeout(t);
      };
      const check = () => {
        const from = Math.max(0, cursor - dropped);
        const m = re.exec(out.slice(from));
        if (m) {
          m.index += from;
          cursor = dropped + m.index + m[0].length;
          cleanup();
          resolve(m);
          return;
        }
        if (done) {
          cleanup();
          reject(new VmError(`waiting for ${String(pattern)}: ${describeExit(done)} before it appeared`, o.serialLog, tail()));
        }
      };
      t = setTimeout(() => {
        cleanup();
        reject(new VmError(`timed out after ${((Date.now() - t0) / 1000).toFixed(0)}s waiting for ${String(pattern)} on the console of ${name}`, o.serialLog, tail()));
      }, waitMs);
      listeners.add(check);
      check();
    });
  };

  const vm: Vm = {
    name,
    get pid() {
      return child.pid;
    },
    serialLog: o.serialLog,
    argv: [QEMU, ...args],
    accel,
    output: () => out,
    tail,
    send(text: string) {
      if (!done) child.stdin!.write(text);
    },
    waitFor(pattern, waitMs = timeoutMs) {
      return waitForMatch(pattern, waitMs).then((m) => m[0]);
    },
    waitForMatch,
    async wait(waitMs = timeoutMs) {
      let late = false;
      const t = setTimeout(() => {
        late = true;
        killed = true;
        hardKill();
      }, waitMs);
      const x = await exited;
      clearTimeout(t);
      if (late) throw new VmError(`timed out after ${(waitMs / 1000).toFixed(0)}s waiting for ${name} to exit; the guest was killed`, o.serialLog, tail());
      return x;
    },
    get exitCode() {
      return done?.code ?? null;
    },
    exited,
    kill() {
      if (!done) {
        killed = true;
        hardKill();
      }
      return exited;
    },
  };
  return vm;
}

/** Boot a VM, run fn with it, and kill it whatever happens. */
export async function withVm<T>(o: VmOptions, fn: (vm: Vm) => Promise<T>): Promise<T> {
  const vm = bootVm(o);
  try {
    return await fn(vm);
  } finally {
    await vm.kill();
  }
}

/** Error for an exit that is not a clean pass (status 0), with the serial tail; undefined if it passed. */
export function exitError(vm: Vm, x: VmExit): VmError | undefined {
  if (x.debugExit === 0) return undefined;
  const why = x.timedOut
    ? `the VM ${vm.name} did not finish in time and was killed`
    : x.killed
      ? `the VM ${vm.name} was killed`
      : x.debugExit !== undefined
        ? `the guest exited with failure status ${x.debugExit} (isa-debug-exit)`
        : `QEMU exited with ${x.signal ? `signal ${x.signal}` : `code ${x.code}`} without a status from the guest${x.stderr.trim() ? `: ${x.stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`;
  return new VmError(why, vm.serialLog, vm.tail());
}

/** A sparse blank disk image of this size. */
export function blankDisk(path: string, sizeBytes: number): string {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, sizeBytes);
  } finally {
    closeSync(fd);
  }
  return path;
}

/** `64M`, `1G`, `512K`, `1048576` (binary units) to bytes. */
export function parseSize(s: string | number): number {
  if (typeof s === 'number') return s;
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(s.trim());
  if (!m) throw new KilnError(`not a size: '${s}' (use e.g. 64M, 1G)`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Math.round(Number(m[1]) * mult);
}

/** Last lines of a serial log file. */
export function logTail(file: string, n = TAIL_LINES): string {
  if (!existsSync(file)) return '';
  const lines = readFileSync(file, 'utf8').replace(/\r/g, '').replace(/\n+$/, '').split('\n');
  return lines.slice(Math.max(0, lines.length - n)).join('\n');
}

// ---------------------------------------------------------------------------------------------
// console checks (for test recipes)

export interface ConsoleCheck {
  /** testcase name (JUnit) */
  name: string;
  seconds: number;
  /** console output of a command (between the typed line and its status) */
  output?: string;
  failure?: string;
}

export interface ConsoleScript {
  /** markers that must appear on the console, in order (strings are literal) */
  expect?: (string | RegExp)[];
  /** shell prompt to wait for before each command */
  prompt?: string | RegExp;
  /** commands typed after the prompt; each must exit 0 */
  commands?: string[];
  /** overall time for all steps (default: the VM's own limit) */
  timeoutMs?: number;
}

/**
 * Run console checks against a booted guest: each `expect` marker in order, then each command
 * typed at `prompt` with its exit status read back (`CMD ; echo KILN-RC-N-$?`; the echoed input
 * line cannot match the status pattern `KILN-RC-N-<digits>`). Stops at the first step that cannot
 * go on (timeout or the guest gone): the guest is killed and that VmError is returned in `error`.
 * A command that exits non-zero is a failed check, but the next commands still run.
 */
export async function runConsoleScript(vm: Vm, s: ConsoleScript): Promise<{ checks: ConsoleCheck[]; error?: VmError }> {
  const checks: ConsoleCheck[] = [];
  const deadline = s.timeoutMs !== undefined ? Date.now() + s.timeoutMs : undefined;
  const left = () => (deadline === undefined ? undefined : Math.max(1000, deadline - Date.now()));
  let last = Date.now();
  const lap = () => {
    const now = Date.now();
    const sec = (now - last) / 1000;
    last = now;
    return sec;
  };
  const stop = async (name: string, e: unknown) => {
    checks.push({ name, seconds: lap(), failure: (e as Error).message });
    if (!(e instanceof VmError)) throw e;
    await vm.kill();
    return { checks, error: e };
  };
  const commands = s.commands ?? [];
  if (commands.length && s.prompt === undefined) throw new KilnError('runConsoleScript: commands need a prompt');
  for (const m of s.expect ?? []) {
    const name = `console: ${typeof m === 'string' ? m : String(m)}`;
    try {
      await vm.waitForMatch(m, left());
      checks.push({ name, seconds: lap() });
    } catch (e) {
      return stop(name, e);
    }
  }
  for (const [i, cmd] of commands.entries()) {
    const name = `command: ${cmd}`;
    if (/[\r\n]/.test(cmd)) throw new KilnError(`a console command must be one line: ${JSON.stringify(cmd)}`);
    try {
      await vm.waitForMatch(s.prompt!, left());
      const tag = `KILN-RC-${i + 1}-`;
      const before = vm.output().length;
      vm.send(`${cmd} ; echo "${tag}$?"\n`);
      const m = await vm.waitForMatch(new RegExp(`${tag}(\\d+)`), left());
      // output: from the line after the echoed command to the status line
      // terminal control sequences (bash's bracketed-paste switches, colours) are not output
      let out = vm.output().slice(before, m.index).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
      const nl = out.indexOf('\n');
      out = nl >= 0 ? out.slice(nl + 1) : '';
      const rc = Number(m[1]);
      checks.push({ name, seconds: lap(), output: out, failure: rc === 0 ? undefined : `exit status ${rc}: ${cmd}\n${out.split('\n').slice(-20).join('\n')}` });
    } catch (e) {
      return stop(name, e);
    }
  }
  return { checks };
}
