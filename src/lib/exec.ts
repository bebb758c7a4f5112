/**
 * Running host commands. Always an argument array, never a shell string built
 * from recipe values: a value from a recipe reaches a process as one argv entry.
 *
 * No orphans: every command runs in its own process group, behind `setpriv --pdeathsig KILL`
 * (util-linux; the command dies with kiln's main thread, which is the thread that spawns), and
 * its group is registered with a watchdog: a small `sh` that kiln feeds through a pipe and that
 * kills every registered group (SIGKILL) once that pipe closes, that is once kiln is gone,
 * however it died (kill -9 included). A part's grandchildren die with it that way too.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { CommandError, KilnError } from './errors.js';
import { requireTool } from './tools.js';

export interface RunOptions {
  cwd?: string;
  /** merged over process.env unless cleanEnv is set */
  env?: Record<string, string | undefined>;
  cleanEnv?: boolean;
  /** called with every chunk of stdout/stderr (the part log) */
  log?: (chunk: string) => void;
  signal?: AbortSignal;
  /** data written to stdin; stdin is /dev/null otherwise */
  input?: string | Buffer;
  /** capture stdout into the result (default true) */
  capture?: boolean;
  /** do not throw on non-zero exit */
  allowFailure?: boolean;
  /** log file named in the error message */
  logFile?: string;
  /** part name, for missing-tool errors */
  part?: string;
  /** kill after this many milliseconds */
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

const TAIL_LINES = 30;

// The watchdog: reads '+PGID' / '-PGID' lines (process groups) and 'HPATH' lines (temporary
// GnuPG homes); at end of input kills the groups still listed, then stops the agents of the homes
// that still exist and removes them.
const WATCHDOG_SCRIPT = `trap '' INT TERM HUP
pgs=' '
homes=''
while IFS= read -r l; do
  case "$l" in
    +*) pgs="$pgs\${l#+} " ;;
    -*) g="\${l#-}"; case "$pgs" in *" $g "*) pgs="\${pgs%%" $g "*} \${pgs#*" $g "}" ;; esac ;;
    H*) homes="$homes\${l#H}
" ;;
  esac
done
for g in $pgs; do kill -KILL -$g 2>/dev/null; done
printf '%s' "$homes" | while IFS= read -r h; do
  [ -n "$h" ] && [ -d "$h" ] || continue
  gpgconf --homedir "$h" --kill all >/dev/null 2>&1
  rm -rf -- "$h"
done
exit 0`;

let watchdog: ChildProcess | undefined;
let watchdogBroken = false;

// '-PGID' lines (a command ended) wait up to UNREGISTER_MS and go out with the next write: one
// write (and one wake-up of the watchdog) per command instead of two. A group still listed when
// kiln dies is killed, and an ended command's group is empty (or its leftovers die, as before).
const UNREGISTER_MS = 100;
let pendingUnregister = '';
let unregisterTimer: NodeJS.Timeout | undefined;

function flushUnregister(): void {
  if (unregisterTimer) clearTimeout(unregisterTimer);
  unregisterTimer = undefined;
  if (pendingUnregister) watchdogWrite('');
}

function watchdogUnregister(pid: number): void {
  pendingUnregister += `-${pid}\n`;
  if (!unregisterTimer) {
    unregisterTimer = setTimeout(flushUnregister, UNREGISTER_MS);
    unregisterTimer.unref();
  }
}
process.once('exit', flushUnregister);

function watchdogWrite(line: string): void {
  if (pendingUnregister) {
    line = pendingUnregister + line;
    pendingUnregister = '';
  }
  if (watchdogBroken || !line && watchdog) return;
  if (!watchdog) {
    try {
      watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
      watchdog.on('error', () => (watchdogBroken = true));
      watchdog.stdin!.on('error', () => (watchdogBroken = true));
      watchdog.unref();
      (watchdog.stdin as unknown as { unref?: () => void }).unref?.();
    } catch {
      watchdogBroken = true;
      return;
    }
  }
  watchdog.stdin!.write(line);
}

/**
 * Have the watchdog stop the gpg-agent of `home` and remove it if kiln dies before it does so
 * itself (a temporary GnuPG home holding a secret key).
 */
export function guardDirectory(home: string): void {
  if (!/[\n\r]/.test(home)) watchdogWrite(`H${home}\n`);
}

/** The pid of the watchdog process (for tests), spawning it when needed. */
export function watchdogPid(): number | undefined {
  watchdogWrite('');
  return watchdog?.pid;
}

const SETPRIV = '/usr/bin/setpriv';
let setprivOk: boolean | undefined;

/**
 * spawn() for a command of a part: own process group, killed when kiln dies (pdeathsig on the
 * command, the watchdog for its whole group). The group is unregistered when the child closes.
 */
export function spawnGuarded(cmd: string, args: string[], options: SpawnOptions): ChildProcess {
  if (setprivOk === undefined) setprivOk = existsSync(SETPRIV);
  const [c, a] = setprivOk ? [SETPRIV, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
  const child = spawn(c, a, { ...options, detached: true });
  if (child.pid) {
    const pid = child.pid;
    watchdogWrite(`+${pid}\n`);
    child.once('close', () => watchdogUnregister(pid));
  }
  return child;
}

/** Linux refuses one argument or environment string longer than this (MAX_ARG_STRLEN). */
const MAX_ARG_STRLEN = 32 * 4096;

/** A clear message for E2BIG: which argument or variable is too big, and how big. */
function e2bigMessage(argv: string[], env: Record<string, string | undefined>): string {
  let worst = { what: '', size: 0 };
  argv.forEach((a, i) => {
    const n = Buffer.byteLength(a);
    if (n > worst.size) worst = { what: i === 0 ? 'the command name' : `argument ${i}`, size: n };
  });
  let total = argv.reduce((t, a) => t + Buffer.byteLength(a) + 1, 0);
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    const n = Buffer.byteLength(k) + 1 + Buffer.byteLength(v);
    total += n + 1;
    if (n > worst.size) worst = { what: `environment variable ${k}`, size: n };
  }
  const limit = worst.size > MAX_ARG_STRLEN ? ` (Linux takes at most ${MAX_ARG_STRLEN} bytes per argument or variable)` : '';
  return `cannot run ${argv[0]}: argument list and environment too long (${total} bytes in all; the largest is ${worst.what}, ${worst.size} bytes${limit}): pass big values in a file instead`;
}

function tailOf(s: string, n = TAIL_LINES): string {
  const lines = s.split('\n');
  return lines.slice(Math.max(0, lines.length - n - 1)).join('\n');
}

/** Run argv[0] with arguments argv[1..]. Rejects with CommandError (with output tail) on failure. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  if (argv.length === 0) throw new Error('run: empty argv');
  const cmd = argv[0]!;
  if (cmd.includes('/')) {
    // a path (./configure): must exist and be executable, relative to the command's cwd
    const abs = resolve(opts.cwd ?? process.cwd(), cmd);
    try {
      accessSync(abs, constants.X_OK);
    } catch {
      return Promise.reject(new KilnError(`${opts.part ? `[${opts.part}] ` : ''}cannot run ${cmd}: ${abs} does not exist or is not executable`));
    }
  } else requireTool(cmd, opts.part);
  const env = opts.cleanEnv ? { ...opts.env } : { ...process.env, ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawnGuarded(argv[0]!, argv.slice(1), {
        cwd: opts.cwd,
        env: env as NodeJS.ProcessEnv,
        stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        detached: true, // own process group, so an abort kills the whole tree
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'E2BIG') return reject(new KilnError(`${opts.part ? `[${opts.part}] ` : ''}${e2bigMessage(argv, env)}`));
      return reject(e);
    }
    let stdout = '';
    let stderr = '';
    let combined = '';
    const capture = opts.capture !== false;
    const onData = (which: 'out' | 'err') => (b: Buffer) => {
      const s = b.toString('utf8');
      if (which === 'out' && capture) stdout += s;
      if (which === 'err') stderr += s;
      combined += s;
      if (combined.length > 256 * 1024) combined = combined.slice(-64 * 1024);
      opts.log?.(s);
    };
    child.stdout!.on('data', onData('out'));
    child.stderr!.on('data', onData('err'));
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
    const killTree = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        /* gone */
      }
    };
    const onAbort = () => {
      killTree('SIGTERM');
      setTimeout(() => killTree('SIGKILL'), 3000).unref();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = opts.timeoutMs ? setTimeout(onAbort, opts.timeoutMs) : undefined;
    child.on('error', (e) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      if ((e as NodeJS.ErrnoException).code === 'E2BIG') reject(new KilnError(`${opts.part ? `[${opts.part}] ` : ''}${e2bigMessage(argv, env)}`));
      else reject(e);
    });
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      const res: RunResult = { code, signal: sig, stdout, stderr };
      if ((code === 0 && !sig) || opts.allowFailure) resolve(res);
      else reject(new CommandError(argv, code, sig, tailOf(combined), opts.logFile));
    });
  });
}
