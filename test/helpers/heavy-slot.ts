/**
 * The heavy slot: at most one "heavy" test file (QEMU under TCG, chroot and distribution builds:
 * HEAVY_TEST_FILES in test/helpers/schedule.ts) runs at a time, while the other fork runs light
 * files. vitest.config.ts makes this module a setup file of the heavy files only; it takes an
 * exclusive flock(2) on the run's lock file (KILN_TEST_HEAVY_LOCK, one per `vitest` run) before the
 * file's tests are collected, and gives it back after them.
 *
 * The lock is held by a `flock` child (util-linux) that exits when its stdin closes: when this
 * file's afterAll releases it, or when the test process dies however it dies (kill -9 included),
 * the kernel drops the lock. No stale lock files, no timeouts: a heavy file waits as long as the
 * other heavy file runs (its wait shows in its time in the per-file table).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** Take the slot: resolves with a release function once the lock at `lockPath` is held. */
export async function acquireSlot(lockPath: string): Promise<() => Promise<void>> {
  const holder: ChildProcess = spawn('flock', ['--exclusive', lockPath, '-c', 'echo locked && exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  holder.stdin!.on('error', () => {});
  let out = '';
  await new Promise<void>((res, rej) => {
    holder.once('error', (e) => rej(new Error(`heavy slot: cannot run flock: ${e.message}`)));
    holder.once('exit', (code) => rej(new Error(`heavy slot: flock ${lockPath} exited (${code}) before taking the lock`)));
    holder.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('locked\n')) res();
    });
  });
  holder.removeAllListeners('exit');
  return async () => {
    if (holder.exitCode !== null || holder.signalCode !== null) return;
    const exited = once(holder, 'exit');
    holder.stdin!.end();
    await exited;
  };
}
