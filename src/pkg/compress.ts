/**
 * Streaming compression into a file, shared by the package writers (.deb, .rpm).
 *
 *   const c = compressToFile('xz', '/tmp/payload.xz', { level: 6 });
 *   c.input.write(chunk) ... c.input.end();   // respect backpressure (write() === false → 'drain')
 *   await c.done;                              // the compressed file is complete
 *   c.abort();                                 // on failure: stop the compressor, done rejects
 *
 * - gzip: node:zlib in-process (runs on libuv's thread pool), header mtime 0, OS unix: the same bytes
 *   as dpkg-deb's zlib for the same level.
 * - xz, zstd: the system binaries, argv arrays (no shell), writing straight into the destination file
 *   descriptor (no copy through node). xz always runs in multi-threaded mode with >= 2 threads: the
 *   output is then independent of the number of threads/cores (block size = 3 × dictionary), so
 *   builds are reproducible across machines. zstd output does not depend on -T either.
 * - none: a plain file.
 * Memory stays bounded: the caller writes with backpressure; xz/zstd buffer at most a few blocks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGzip } from 'node:zlib';
import { KilnError } from '../lib/errors.js';
import { requireTool } from '../lib/tools.js';

export type Compression = 'gzip' | 'xz' | 'zstd' | 'none';

export const COMPRESSIONS: readonly Compression[] = ['xz', 'gzip', 'zstd', 'none'];

/** File name extension of a compressed member (`data.tar` + EXT). */
export const EXT: Record<Compression, string> = { gzip: '.gz', xz: '.xz', zstd: '.zst', none: '' };

/** dpkg-deb's default levels (rpm callers pass their own). */
export const DEFAULT_LEVEL: Record<Compression, number> = { gzip: 9, xz: 6, zstd: 3, none: 0 };

export interface CompressOptions {
  level?: number;
  /** worker threads for xz/zstd; default: all cores (xz at least 2, see above) */
  threads?: number;
}

export interface Compressor {
  /** write uncompressed bytes here (with backpressure), then end() it */
  input: Writable;
  /** resolves when the compressed file is complete and closed; rejects on any failure */
  done: Promise<void>;
  /** stop now (after an error elsewhere): the input is destroyed, the child killed, `done` rejects */
  abort(): void;
}

export function isCompression(s: string): s is Compression {
  return (COMPRESSIONS as readonly string[]).includes(s);
}

/** Compress everything written to `input` into `dest` (created or truncated). */
export function compressToFile(kind: Compression, dest: string, opts?: number | CompressOptions): Compressor {
  const o: CompressOptions = typeof opts === 'number' ? { level: opts } : (opts ?? {});
  if (!isCompression(kind)) throw new KilnError(`unknown compression '${String(kind)}' (${COMPRESSIONS.join(', ')})`);
  const level = o.level ?? DEFAULT_LEVEL[kind];
  if (kind === 'none') {
    const out = createWriteStream(dest);
    const done = new Promise<void>((res, rej) => {
      out.on('close', () => (out.writableFinished ? res() : rej(new KilnError(`writing ${dest} was aborted`))));
      out.on('error', rej);
    });
    done.catch(() => {});
    return { input: out, done, abort: () => out.destroy() };
  }
  if (kind === 'gzip') {
    if (!Number.isInteger(level) || level < 1 || level > 9) throw new KilnError(`invalid gzip level ${level} (1-9)`);
    const gz = createGzip({ level, memLevel: 9, strategy: constants.Z_DEFAULT_STRATEGY }); // as dpkg: deflateInit2(level, 15+16, 9)
    const done = pipeline(gz, createWriteStream(dest));
    done.catch(() => {});
    return { input: gz, done, abort: () => gz.destroy(new KilnError('compression aborted')) };
  }
  const tool = kind;
  requireTool(tool);
  const max = kind === 'xz' ? 9 : 19;
  if (!Number.isInteger(level) || level < (kind === 'xz' ? 0 : 1) || level > max) throw new KilnError(`invalid ${kind} level ${level}`);
  const threads = Math.max(kind === 'xz' ? 2 : 1, o.threads ?? availableParallelism());
  const args =
    kind === 'xz'
      ? [`-${level}`, `--threads=${threads}`, '--check=crc64', '-c']
      : [`-${level}`, `-T${threads}`, '-q', '-c', '--no-progress'];
  const fd = openSync(dest, 'w');
  let child: ChildProcess;
  try {
    child = spawn(tool, args, { stdio: ['pipe', fd, 'pipe'] });
  } finally {
    closeSync(fd); // the child has its own copy
  }
  let err = '';
  let aborted = false;
  child.stderr!.on('data', (b: Buffer) => {
    if (err.length < 4000) err += b.toString();
  });
  const done = new Promise<void>((res, rej) => {
    child.on('error', (e) => rej(new KilnError(`${tool}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (aborted) rej(new KilnError(`${tool} aborted`));
      else if (code === 0) res();
      else rej(new KilnError(`${tool} failed (${signal ? `signal ${signal}` : `exit ${code}`})${err.trim() ? `: ${err.trim()}` : ''}`));
    });
  });
  done.catch(() => {});
  child.stdin!.on('error', () => {}); // EPIPE when the child dies: reported through `done`
  return {
    input: child.stdin!,
    done,
    abort: () => {
      aborted = true;
      child.stdin!.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
