/**
 * Streaming compression into a file: gzip (zlib, mtime 0), xz and zstd (the system binaries,
 * multi-threaded but with output independent of the thread count), or none.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGzip } from 'node:zlib';
import { KilnError } from '../lib/errors.js';
import { requireTool } from '../lib/tools.js';

export type Compression = 'gzip' | 'xz' | 'zstd' | 'none';

export const EXT: Record<Compression, string> = { gzip: '.gz', xz: '.xz', zstd: '.zst', none: '' };

export interface Compressor {
  /** write uncompressed bytes here, then end() it */
  input: Writable;
  /** resolves when the compressed file is complete */
  done: Promise<void>;
}

/** Compress everything written to `input` into `dest`. */
export function compressToFile(kind: Compression, dest: string, level?: number): Compressor {
  if (kind === 'none') {
    const out = createWriteStream(dest);
    return { input: out, done: new Promise((res, rej) => out.on('finish', () => res()).on('error', rej)) };
  }
  if (kind === 'gzip') {
    const gz = createGzip({ level: level ?? 9, strategy: constants.Z_DEFAULT_STRATEGY });
    return { input: gz, done: pipeline(gz, createWriteStream(dest)) };
  }
  const tool = kind === 'xz' ? 'xz' : 'zstd';
  requireTool(tool);
  // multi-threaded mode with >= 2 threads: same bytes whatever the number of cores
  const threads = Math.max(2, availableParallelism());
  const args =
    kind === 'xz'
      ? ['xz', `-${level ?? 6}`, `--threads=${threads}`, '-c']
      : ['zstd', `-${level ?? 19}`, `-T${threads}`, '-q', '-c', '--no-progress'];
  const child = spawn(args[0]!, args.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (b) => (err += b));
  const out = pipeline(child.stdout!, createWriteStream(dest));
  const exited = new Promise<void>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => (code === 0 ? res() : rej(new KilnError(`${tool} failed (exit ${code}): ${err.trim()}`))));
  });
  child.stdin!.on('error', () => {});
  return { input: child.stdin!, done: Promise.all([out, exited]).then(() => undefined) };
}
