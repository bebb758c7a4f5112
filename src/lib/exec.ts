/**
 * Running host commands. Always an argument array, never a shell string built
 * from recipe values: a value from a recipe reaches a process as one argv entry.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
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
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env: env as NodeJS.ProcessEnv,
      stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so an abort kills the whole tree
    });
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
      reject(e);
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
