/** A command's exit status and output, without blocking the event loop (vitest's RPC needs it). */
import { spawn } from 'node:child_process';

export interface ProcResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runAsync(cmd: string, args: string[], env: Record<string, string> = {}): Promise<ProcResult> {
  return new Promise((res, rej) => {
    const c = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => (stdout += b));
    c.stderr.on('data', (b: Buffer) => (stderr += b));
    c.on('error', rej);
    c.on('close', (status) => res({ status, stdout, stderr }));
  });
}

/** argv run chrooted in the tree `root` (a private mount namespace with /dev and /proc), PATH only. */
export function inChrootTree(root: string, argv: string[]): Promise<ProcResult> {
  const script = 'R=$1; shift; mount --rbind /dev "$R/dev" && mount -t proc proc "$R/proc" && exec chroot "$R" "$@"';
  return runAsync('env', ['-i', 'PATH=/sbin:/bin:/usr/sbin:/usr/bin', 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', root, ...argv]);
}
