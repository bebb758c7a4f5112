/**
 * Digests of many host files at once (the .deb writer's md5sums), on all cores.
 *
 *   const hex = await digestFiles([{ path: '/x/a', size: 12 }, ...], 'md5');   // same order
 *
 * Small jobs (under 16 MiB in all, or one core) are hashed here; larger ones are cut into
 * slices of about 4 MiB (whole files) handed out as they finish to this thread and `threads - 1`
 * worker threads (this thread would only wait otherwise, and a worker costs about 50 ms of CPU to
 * start), each reading with one reusable buffer. A file that no longer has its manifest size is an error (the package
 * would otherwise list a digest of content it does not ship).
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { KilnError } from './errors.js';

export interface DigestJob {
  path: string;
  size: number;
  /** names the file in errors (default: path) */
  what?: string;
}

const INLINE_LIMIT = 16 << 20;
const SLICE = 4 << 20;

/** The hashing loop, shared by this thread and the workers (which get it as source text). */
function hashOne(path: string, size: number, what: string, algo: string, buf: Buffer, mods: { createHash: typeof createHash; openSync: typeof openSync; readSync: typeof readSync; closeSync: typeof closeSync }): string {
  let fd: number;
  try {
    fd = mods.openSync(path, 'r');
  } catch (e) {
    throw new Error(`reading ${path}: ${(e as Error).message}`);
  }
  try {
    const h = mods.createHash(algo);
    let off = 0;
    for (;;) {
      const r = mods.readSync(fd, buf, 0, buf.length, off);
      if (r === 0) break;
      h.update(buf.subarray(0, r));
      off += r;
      if (off > size) break;
    }
    if (off !== size) throw new Error(`${what} changed size while being archived (expected ${size} bytes, read ${off})`);
    return h.digest('hex');
  } finally {
    mods.closeSync(fd);
  }
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const hashOne = ${hashOne.toString()};
const buf = Buffer.allocUnsafe(1 << 20);
const mods = { createHash, openSync, readSync, closeSync };
parentPort.on('message', ({ id, algo, jobs }) => {
  try {
    parentPort.postMessage({ id, out: jobs.map(([p, s, w]) => hashOne(p, s, w, algo, buf, mods)) });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message || e) });
  }
});
`;

let inlineBuffer: Buffer | undefined;

/** `threads`: at most this many hashing threads (a build passes its part's share of -j); default: the cores, at most 4. */
export async function digestFiles(jobs: DigestJob[], algo: 'md5' | 'sha256', threads = Math.min(availableParallelism(), 4)): Promise<string[]> {
  const total = jobs.reduce((n, j) => n + j.size, 0);
  const mods = { createHash, openSync, readSync, closeSync };
  const wrap = (f: () => string) => {
    try {
      return f();
    } catch (e) {
      throw new KilnError((e as Error).message);
    }
  };
  if (total < INLINE_LIMIT || threads < 2) {
    // one read buffer for every inline call (hashing here is synchronous: no two calls share it at
    // once). A fresh 1 MiB buffer per call cost a build of N small parts N MiB of external memory
    // (page faults, and garbage collections V8 starts for external memory).
    const buf = (inlineBuffer ??= Buffer.allocUnsafe(1 << 20));
    return jobs.map((j) => wrap(() => hashOne(j.path, j.size, j.what ?? j.path, algo, buf, mods)));
  }
  // slices of whole files, about SLICE bytes each, in order
  const slices: Array<{ start: number; end: number }> = [];
  for (let i = 0, start = 0, bytes = 0; i < jobs.length; i++) {
    bytes += jobs[i]!.size + 4096;
    if (bytes >= SLICE || i === jobs.length - 1) {
      slices.push({ start, end: i + 1 });
      start = i + 1;
      bytes = 0;
    }
  }
  const out: string[] = new Array<string>(jobs.length);
  // this thread hashes slices too (it would only wait otherwise): one worker less to start
  // (about 50 ms of CPU each)
  const workers = Array.from({ length: Math.min(threads, slices.length) - 1 }, () => new Worker(WORKER_SOURCE, { eval: true, execArgv: [] }));
  let nextSlice = 0;
  let failed = false;
  const here = async (): Promise<void> => {
    const buf = Buffer.allocUnsafe(1 << 20);
    while (nextSlice < slices.length && !failed) {
      const s = slices[nextSlice++]!;
      for (let i = s.start; i < s.end; i++) out[i] = wrap(() => hashOne(jobs[i]!.path, jobs[i]!.size, jobs[i]!.what ?? jobs[i]!.path, algo, buf, mods));
      // let the workers' messages in (they take the next slices)
      await new Promise<void>((res) => setImmediate(res));
    }
  };
  try {
    await Promise.all([
      here().catch((e) => {
        failed = true;
        throw e;
      }),
      ...workers.map(
        (w) =>
          new Promise<void>((res, rej) => {
            const send = () => {
              if (nextSlice >= slices.length || failed) return res();
              const id = nextSlice++;
              const s = slices[id]!;
              w.postMessage({ id, algo, jobs: jobs.slice(s.start, s.end).map((j) => [j.path, j.size, j.what ?? j.path]) });
            };
            w.on('message', (m: { id: number; out?: string[]; error?: string }) => {
              if (m.error) {
                failed = true;
                return rej(new KilnError(m.error));
              }
              const s = slices[m.id]!;
              m.out!.forEach((h, k) => (out[s.start + k] = h));
              send();
            });
            w.on('error', (e) => rej(new KilnError(`digest worker: ${e.message}`)));
            w.on('exit', (code) => (code !== 0 ? rej(new KilnError(`digest worker exited (${code})`)) : res()));
            send();
          }),
      ),
    ]);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return out;
}
