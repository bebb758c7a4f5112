/**
 * QEMU guests for tests (x86_64): boot a kernel+initrd, a disk or an ISO; watch the serial
 * console (always also written to a log file), type into it, and read a pass/fail status the
 * guest reports through isa-debug-exit (port 0xf4: QEMU exits with (v<<1)|1).
 *
 * No orphans: every guest is named `kiln-<random>` (visible in `ps`), runs under
 * `setpriv --pdeathsig KILL` when available (dies with this process even on SIGKILL), has a hard
 * time limit, and is killed on abort, on kill(), on SIGINT/SIGTERM and when this process exits.
 * Errors carry the last lines of the serial log.
 *
 * Acceleration: TCG unless asked for. `accel: 'auto'` uses KVM only when KILN_KVM=1 and a probe
 * (a 512-byte boot sector that exits through isa-debug-exit) proves KVM runs guests here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, ftruncateSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KilnError } from './errors.js';
import { run } from './exec.js';
import { requireTool, which } from './tools.js';

export const QEMU = 'qemu-system-x86_64';
const TAIL = 30;

export interface VmDisk {
  file: string;
  format?: 'raw' | 'qcow2';
  readonly?: boolean;
  /** writes go to a throw-away overlay */
  snapshot?: boolean;
  /** default virtio */
  interface?: 'virtio' | 'ide';
}

export type Accel = 'tcg' | 'kvm' | 'auto';

export interface VmOptions {
  kernel?: string;
  initrd?: string;
  append?: string;
  disks?: VmDisk[];
  cdrom?: string;
  /** default: kernel when a kernel is given, else cdrom when an ISO is given, else disk */
  bootFrom?: 'disk' | 'cdrom' | 'kernel';
  /** MiB, default 512 */
  memory?: number;
  cpus?: number;
  /** hard limit for the whole life of the guest (default 300 s) */
  timeoutMs?: number;
  /** serial console log file (required: always written) */
  serialLog: string;
  /** add isa-debug-exit at 0xf4 (default true) */
  debugExit?: boolean;
  accel?: Accel;
  /** boot with OVMF (package ovmf) */
  uefi?: boolean;
  signal?: AbortSignal;
  /** extra qemu arguments (argv entries) */
  extraArgs?: string[];
  /** name tag; default kiln-<random> */
  name?: string;
}

export interface VmExit {
  /** QEMU's exit status (null when killed by a signal) */
  status: number | null;
  signal: string | null;
  /** the value the guest wrote to isa-debug-exit, when it did (status odd) */
  guestCode: number | null;
  /** killed by kiln (timeout, abort, kill()) */
  killed: boolean;
}

export class VmError extends KilnError {
  logFile: string;
  tail: string;
  constructor(message: string, logFile: string, tail: string) {
    super(`${message}\n--- last lines of the serial console (${logFile}) ---\n${tail.replace(/\s+$/, '') || '(nothing)'}`);
    this.name = 'VmError';
    this.logFile = logFile;
    this.tail = tail;
  }
}

// ---- process tracking -----------------------------------------------------------------------

const live = new Set<ChildProcess>();
let hooked = false;

function killNow(c: ChildProcess): void {
  try {
    if (c.pid && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

function hookProcess(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of live) killNow(c);
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const h = () => {
      for (const c of live) killNow(c);
      // when nobody else handles the signal, keep its default meaning (terminate)
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, h);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, h);
  }
}

/** Names of the guests this process is running (for diagnostics and tests). */
export function liveVms(): number {
  return live.size;
}

// ---- sizes and disks ------------------------------------------------------------------------

/** '512M', '1G', '64MiB', '4096' (bytes), '10K' */
export function parseSize(s: string | number): number {
  if (typeof s === 'number') return s;
  const m = /^\s*(\d+)\s*([KMGT]?)(i?B)?\s*$/i.exec(s);
  if (!m) throw new KilnError(`bad size '${s}' (expected e.g. 64M, 1G, 4096)`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Number(m[1]) * mult;
}

/** A sparse raw disk of `size` bytes (or qcow2 when the path ends with .qcow2). */
export async function blankDisk(path: string, size: string | number): Promise<string> {
  const bytes = parseSize(size);
  mkdirSync(dirname(path), { recursive: true });
  if (path.endsWith('.qcow2')) {
    await run(['qemu-img', 'create', '-q', '-f', 'qcow2', path, String(bytes)]);
  } else {
    const fd = openSync(path, 'w');
    try {
      ftruncateSync(fd, bytes);
    } finally {
      closeSync(fd);
    }
  }
  return path;
}

// ---- acceleration ---------------------------------------------------------------------------

let kvmProbe: Promise<boolean> | undefined;

/** Does KVM run a guest here? Boots a boot sector that exits through isa-debug-exit (10 s limit). */
export function probeKvm(): Promise<boolean> {
  kvmProbe ??= (async () => {
    if (!existsSync('/dev/kvm')) return false;
    const dir = mkdtempSync(join(tmpdir(), 'kiln-kvm-probe-'));
    try {
      const mbr = Buffer.alloc(512);
      // mov al,0x2a; out 0xf4,al; hlt; jmp $-1
      Buffer.from([0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]).copy(mbr);
      mbr[510] = 0x55;
      mbr[511] = 0xaa;
      writeFileSync(join(dir, 'probe.img'), mbr);
      const r = await run(
        [QEMU, '-accel', 'kvm', '-display', 'none', '-monitor', 'none', '-serial', 'none', '-net', 'none', '-m', '32', '-no-reboot',
          '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-drive', `file=${join(dir, 'probe.img')},format=raw,if=ide`],
        { allowFailure: true, timeoutMs: 10_000 },
      );
      return r.code === ((0x2a << 1) | 1);
    } catch {
      return false;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return kvmProbe;
}

export async function chooseAccel(a: Accel = 'auto'): Promise<'tcg' | 'kvm'> {
  if (a === 'tcg' || a === 'kvm') return a;
  if (process.env.KILN_KVM === '1' && (await probeKvm())) return 'kvm';
  return 'tcg';
}

// ---- arguments ------------------------------------------------------------------------------

/** QEMU -drive/-chardev values separate options with commas: a comma in a path is doubled. */
const q = (path: string) => path.replace(/,/g, ',,');

const OVMF_CODE = ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_CODE.fd'];
const OVMF_VARS = ['/usr/share/OVMF/OVMF_VARS_4M.fd', '/usr/share/OVMF/OVMF_VARS.fd'];

/** The qemu argv (without the binary) for these options; `varsFile` is the writable OVMF vars copy. */
export function qemuArgs(o: VmOptions, name: string, accel: 'tcg' | 'kvm', varsFile?: string): string[] {
  const a: string[] = ['-name', name, '-machine', 'pc', '-accel', accel];
  if (accel === 'kvm') a.push('-cpu', 'host');
  a.push('-m', String(o.memory ?? 512), '-smp', String(o.cpus ?? 1));
  a.push('-display', 'none', '-vga', 'none', '-monitor', 'none', '-serial', 'stdio', '-parallel', 'none', '-no-reboot', '-net', 'none');
  if (o.debugExit !== false) a.push('-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04');
  if (o.uefi) {
    const code = OVMF_CODE.find(existsSync);
    if (!code || !varsFile) throw new KilnError('uefi: OVMF is not installed (Debian package: ovmf; run: apt-get install ovmf)');
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${q(code)}`, '-drive', `if=pflash,format=raw,unit=1,file=${q(varsFile)}`);
  }
  const boot = o.bootFrom ?? (o.kernel ? 'kernel' : o.cdrom ? 'cdrom' : 'disk');
  if (boot === 'kernel') {
    if (!o.kernel) throw new KilnError('bootVm: bootFrom kernel without a kernel');
    a.push('-kernel', o.kernel);
    if (o.initrd) a.push('-initrd', o.initrd);
    a.push('-append', o.append ?? 'console=ttyS0 panic=-1');
  } else {
    if (o.kernel) throw new KilnError(`bootVm: a kernel is given but bootFrom is ${boot}`);
    a.push('-boot', boot === 'cdrom' ? 'order=d' : 'order=c');
  }
  for (const d of o.disks ?? []) {
    let v = `file=${q(d.file)},format=${d.format ?? 'raw'},if=${d.interface ?? 'virtio'}`;
    if (d.readonly) v += ',readonly=on';
    if (d.snapshot) v += ',snapshot=on';
    a.push('-drive', v);
  }
  if (o.cdrom) a.push('-drive', `file=${q(o.cdrom)},format=raw,media=cdrom,if=ide,readonly=on`);
  a.push(...(o.extraArgs ?? []));
  return a;
}

// ---- the VM ---------------------------------------------------------------------------------

export interface Vm {
  /** the -name tag (kiln-<random>), also on qemu's command line */
  readonly name: string;
  readonly pid: number | undefined;
  readonly accel: 'tcg' | 'kvm';
  readonly serialLog: string;
  /** QEMU's exit status once it exited (null before, or when killed) */
  readonly exitCode: number | null;
  /** resolves when QEMU is gone (never rejects) */
  readonly exited: Promise<VmExit>;
  /** console text seen so far */
  output(): string;
  /**
   * Wait until `marker` appears on the console after everything matched before; resolves with
   * the match. On timeout or when the guest exits first: the guest is killed and this rejects
   * with a VmError carrying the console tail.
   */
  waitFor(marker: string | RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** type a line on the serial console */
  send(line: string): void;
  /** wait for QEMU to exit (killing it after timeoutMs); VmError on timeout */
  wait(timeoutMs?: number): Promise<VmExit>;
  kill(): Promise<VmExit>;
  /** last lines of the console */
  tail(n?: number): string;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export async function bootVm(o: VmOptions): Promise<Vm> {
  requireTool(QEMU);
  if (o.signal?.aborted) throw new KilnError('bootVm: aborted');
  const accel = await chooseAccel(o.accel);
  const name = o.name ?? `kiln-${randomBytes(6).toString('hex')}`;
  let varsDir: string | undefined;
  let varsFile: string | undefined;
  if (o.uefi) {
    const vars = OVMF_VARS.find(existsSync);
    if (vars) {
      varsDir = mkdtempSync(join(tmpdir(), 'kiln-ovmf-'));
      varsFile = join(varsDir, 'vars.fd');
      copyFileSync(vars, varsFile);
    }
  }
  const args = qemuArgs(o, name, accel, varsFile);
  mkdirSync(dirname(o.serialLog), { recursive: true });
  const log: WriteStream = createWriteStream(o.serialLog);
  const setpriv = which('setpriv');
  const argv = setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', QEMU, ...args] : [QEMU, ...args];
  hookProcess();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  log.write(''); // create the file now

  let text = '';
  let cursor = 0;
  let stderr = '';
  let killed = false;
  let exitInfo: VmExit | undefined;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };

  child.stdout!.on('data', (b: Buffer) => {
    log.write(b);
    text += b.toString('utf8');
    if (text.length > 8 * 1024 * 1024 && cursor > 1024 * 1024) {
      const drop = cursor - 64 * 1024;
      text = text.slice(drop);
      cursor -= drop;
    }
    notify();
  });
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString('utf8');
    if (stderr.length > 64 * 1024) stderr = stderr.slice(-16 * 1024);
  });
  child.stdin!.on('error', () => {});

  const exited = new Promise<VmExit>((resolve) => {
    const done = (status: number | null, signal: string | null) => {
      if (exitInfo) return;
      live.delete(child);
      clearTimeout(hardTimer);
      o.signal?.removeEventListener('abort', onAbort);
      exitInfo = { status, signal, guestCode: status !== null && status % 2 === 1 ? (status - 1) / 2 : null, killed };
      log.end();
      if (varsDir) rmSync(varsDir, { recursive: true, force: true });
      notify();
      resolve(exitInfo);
    };
    child.on('error', (e) => {
      stderr += `\n${e.message}`;
      done(null, 'spawn-error');
    });
    child.on('exit', (code, sig) => done(code, sig));
  });

  const tail = (n = TAIL) => {
    const all = text.replace(/\r/g, '');
    const lines = all.split('\n');
    let t = lines.slice(-n).join('\n');
    if (stderr.trim()) t += `\n--- qemu stderr ---\n${stderr.trim().split('\n').slice(-10).join('\n')}`;
    return t;
  };
  const doKill = () => {
    if (exitInfo) return;
    killed = true;
    killNow(child);
  };
  const timeoutMs = o.timeoutMs ?? 300_000;
  let hardTimedOut = false;
  const hardTimer = setTimeout(() => {
    hardTimedOut = true;
    doKill();
  }, timeoutMs);
  const onAbort = () => doKill();
  o.signal?.addEventListener('abort', onAbort, { once: true });

  const describeExit = (e: VmExit) =>
    hardTimedOut
      ? `the guest ${name} reached its time limit of ${timeoutMs / 1000} s and was killed`
      : e.killed
        ? `the guest ${name} was killed`
        : e.guestCode !== null
          ? `the guest ${name} exited through isa-debug-exit with code ${e.guestCode} (qemu status ${e.status})`
          : `qemu (${name}) exited with ${e.signal ? `signal ${e.signal}` : `status ${e.status}`}`;

  const vm: Vm = {
    name,
    get pid() {
      return child.pid;
    },
    accel,
    serialLog: o.serialLog,
    get exitCode() {
      return exitInfo?.status ?? null;
    },
    exited,
    output: () => text,
    tail,
    send(line: string) {
      if (exitInfo) throw new VmError(`cannot type on the console: ${describeExit(exitInfo)}`, o.serialLog, tail());
      child.stdin!.write(line.endsWith('\n') ? line : line + '\n');
    },
    waitFor(marker, ms = timeoutMs) {
      const re = typeof marker === 'string' ? new RegExp(escapeRe(marker)) : new RegExp(marker.source, marker.flags.replace('g', ''));
      const what = typeof marker === 'string' ? `'${marker}'` : String(marker);
      return new Promise<RegExpExecArray>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const check = () => {
          const m = re.exec(text.slice(cursor));
          if (m) {
            finish();
            m.index += cursor;
            cursor = m.index + m[0].length;
            resolve(m);
            return;
          }
          if (exitInfo) {
            finish();
            reject(new VmError(`waiting for ${what} on the console: ${describeExit(exitInfo)}`, o.serialLog, tail()));
          }
        };
        const finish = () => {
          listeners.delete(check);
          if (timer) clearTimeout(timer);
        };
        timer = setTimeout(() => {
          finish();
          doKill();
          void exited.then(() => reject(new VmError(`timed out after ${ms / 1000} s waiting for ${what} on the console of ${name}; the guest was killed`, o.serialLog, tail())));
        }, ms);
        listeners.add(check);
        check();
      });
    },
    async wait(ms = timeoutMs) {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        doKill();
      }, ms);
      const e = await exited;
      clearTimeout(timer);
      if (timedOut) throw new VmError(`timed out after ${ms / 1000} s waiting for ${name} to exit; the guest was killed`, o.serialLog, tail());
      return e;
    },
    async kill() {
      doKill();
      return exited;
    },
  };
  return vm;
}

/** Boot, run fn, and always kill the guest afterwards. */
export async function withVm<T>(o: VmOptions, fn: (vm: Vm) => Promise<T>): Promise<T> {
  const vm = await bootVm(o);
  try {
    return await fn(vm);
  } finally {
    await vm.kill();
  }
}

/** A VmError for a guest that exited through isa-debug-exit with a non-zero code, else null. */
export function checkGuestExit(vm: Vm, e: VmExit, want = 0): VmError | null {
  if (e.guestCode === want && !e.killed) return null;
  const how =
    e.killed ? 'was killed' : e.guestCode !== null ? `reported failure through isa-debug-exit: code ${e.guestCode}, expected ${want}` : `exited without reporting a status (qemu ${e.signal ? `signal ${e.signal}` : `status ${e.status}`})`;
  return new VmError(`the guest ${vm.name} ${how}`, vm.serialLog, vm.tail());
}

/** Serial log of a finished VM (for reports). */
export function readSerialLog(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

// ---- console checks (for test recipes) ------------------------------------------------------

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
 * line cannot match the status pattern). Stops at the first step that cannot go on (timeout or
 * the guest gone: that VmError is returned in `error`, the guest killed); a command that exits
 * non-zero is a failed check but the next commands still run.
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
  const commands = s.commands ?? [];
  if (commands.length && s.prompt === undefined) throw new KilnError('runConsoleScript: commands need a prompt');
  for (const m of s.expect ?? []) {
    const name = `console: ${typeof m === 'string' ? m : String(m)}`;
    try {
      await vm.waitFor(m, left());
      checks.push({ name, seconds: lap() });
    } catch (e) {
      checks.push({ name, seconds: lap(), failure: (e as Error).message });
      return { checks, error: e as VmError };
    }
  }
  for (const [i, cmd] of commands.entries()) {
    const name = `command: ${cmd}`;
    try {
      if (/[\r\n]/.test(cmd)) throw new KilnError(`a console command must be one line: ${JSON.stringify(cmd)}`);
      await vm.waitFor(s.prompt!, left());
      const tag = `KILN-RC-${i + 1}-`;
      const before = vm.output().length;
      vm.send(`${cmd} ; echo "${tag}$?"`);
      const m = await vm.waitFor(new RegExp(`${tag}(\\d+)`), left());
      // output: from the line after the echoed command to the status line
      let out = vm.output().slice(before, m.index).replace(/\r/g, '');
      const nl = out.indexOf('\n');
      out = nl >= 0 ? out.slice(nl + 1) : '';
      const rc = Number(m[1]);
      checks.push({ name, seconds: lap(), output: out, failure: rc === 0 ? undefined : `exit status ${rc}: ${cmd}\n${out.split('\n').slice(-20).join('\n')}` });
    } catch (e) {
      checks.push({ name, seconds: lap(), failure: (e as Error).message });
      if (e instanceof VmError) return { checks, error: e };
      throw e;
    }
  }
  return { checks };
}
