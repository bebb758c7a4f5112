/**
 * The output side of the archive writers (tar for .deb, cpio for .rpm): bytes into a Writable
 * (a compressor's input, a file stream) as fast as the consumer takes them.
 *
 * - Small writes (headers, names, padding) are copied into 1 MiB blocks, and file contents are
 *   read straight into them (`writeFile`): one copy of every byte, no buffer per file. With
 *   `recycle` (the compressors of compress.ts), a block the consumer is done with is reused: no
 *   garbage for the payload at all.
 * - Deep buffering: the producer only waits when more than 8 MiB are queued in the stream (not at
 *   the stream's own 16 KiB mark), so reading and hashing the next files overlaps the consumer's
 *   work (the compressor process, libuv's write threads) instead of alternating with it.
 * - `write()` returns undefined while nothing has to wait (no promise per call on the fast path).
 * - If the consumer fails or goes away (compressor died, disk full), pending and later writes
 *   reject instead of waiting forever.
 * - An optional tap sees every byte in order (rpm's digest of the uncompressed cpio archive).
 *
 * Package contents are read with `writeFile`: synchronous reads from the page cache straight into
 * the output blocks. (A stream per file would allocate a 1 MiB buffer even for a 64-byte file,
 * which for 10,000 files is 10 GB of garbage; a buffer sized to each file, as kiln did until
 * 2026-12-03, still cost a second copy of small files and a garbage collector busy with them.)
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { KilnError } from '../lib/errors.js';

const COALESCE = 256 * 1024;
const MAX_QUEUED = 8 * 1024 * 1024;
/** output blocks: small writes and file contents are copied (read) into these */
const BLOCK = 1 << 20;
/** blocks kept for reuse (recycle mode): more than the queue can hold */
const SPARE_BLOCKS = 12;
const oneByte = Buffer.alloc(1);

export interface ByteWriterOptions {
  /** sees every byte in order */
  tap?: (b: Buffer) => void;
  /**
   * Reuse an output block once the consumer's write callback ran: only for consumers that are
   * done with a chunk by then (the compressors of compress.ts: a pipe, a file, parallel gzip,
   * which copies). A PassThrough that keeps chunks must not get this.
   */
  recycle?: boolean;
}

export class ByteWriter {
  private count = 0;
  private block: Buffer | undefined;
  private used = 0;
  private readonly spare: Buffer[] = [];
  private failure: Error | undefined;
  private readonly tap?: (b: Buffer) => void;
  private readonly recycle: boolean;

  constructor(
    private readonly out: Writable,
    private readonly what: string,
    opts: ByteWriterOptions | ((b: Buffer) => void) = {},
  ) {
    const o = typeof opts === 'function' ? { tap: opts } : opts;
    this.tap = o.tap;
    this.recycle = !!o.recycle;
    const fail = (e?: Error) => {
      this.failure ??= e ?? new KilnError(`${what} output closed early`);
    };
    out.on('error', fail);
    out.on('close', () => {
      if (!out.writableFinished) fail();
    });
  }

  /** bytes written so far (queued included) */
  get bytesWritten(): number {
    return this.count;
  }

  /**
   * Queue `buf`. A buffer under 256 KiB is copied into the current block before this returns, so
   * the caller may reuse it at once (tar builds every header in one scratch block); a larger one
   * is handed to the stream as it is and must stay untouched.
   */
  write(buf: Buffer): Promise<void> | void {
    if (this.failure) throw this.failure;
    this.count += buf.length;
    this.tap?.(buf);
    if (buf.length >= COALESCE) {
      this.flushBlock();
      return this.push(buf);
    }
    let wait: Promise<void> | void = undefined;
    for (let off = 0; off < buf.length; ) {
      const b = this.current();
      const n = buf.copy(b, this.used, off);
      this.used += n;
      off += n;
      if (this.used === b.length) wait = this.pushBlock();
    }
    return wait;
  }

  /**
   * Write the content of a host file: `size` bytes (from the manifest), read synchronously
   * straight into the output blocks (no buffer per file, no second copy). `onChunk` sees the
   * content as it passes (digests); the chunk is only valid during the call. Throws a clear error
   * when the file cannot be read or no longer has `size` bytes (changed while being archived).
   */
  async writeFile(path: string, size: number, what = path, onChunk?: (b: Buffer) => void): Promise<void> {
    if (this.failure) throw this.failure;
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new KilnError(`reading ${path}: ${(e as Error).message}`);
    }
    const read = (b: Buffer, at: number, len: number, pos: number): number => {
      try {
        return readSync(fd, b, at, len, pos);
      } catch (e) {
        throw new KilnError(`reading ${path}: ${(e as Error).message}`);
      }
    };
    try {
      let off = 0;
      let grewChecked = false;
      while (off < size) {
        const b = this.current();
        const want = Math.min(b.length - this.used, size - off);
        // the last piece asks for one byte more when the block has room: a file that grew is
        // caught without a read of its own
        const last = off + want === size && this.used + want < b.length;
        let n = 0;
        while (n < want) {
          const r = read(b, this.used + n, want - n + (last ? 1 : 0), off + n);
          if (r === 0) throw new KilnError(`${what} changed size while being archived (expected ${size} bytes, read ${off + n})`);
          if (n + r > want) throw new KilnError(`${what} changed size while being archived (expected ${size} bytes, it has more)`);
          n += r;
        }
        if (last) grewChecked = true;
        const chunk = b.subarray(this.used, this.used + want);
        onChunk?.(chunk);
        this.tap?.(chunk);
        this.used += want;
        this.count += want;
        off += want;
        if (this.used === b.length) await this.pushBlock();
      }
      // one byte more: a file that grew (or a /proc file that stat calls empty) is refused too
      if (!grewChecked && read(oneByte, 0, 1, size) > 0) throw new KilnError(`${what} changed size while being archived (expected ${size} bytes, it has more)`);
    } finally {
      closeSync(fd);
    }
  }

  /** Flush what is coalesced and end the stream; resolves when the consumer has everything. */
  async end(): Promise<void> {
    if (this.used) await this.pushBlock();
    if (this.failure) throw this.failure;
    await new Promise<void>((res, rej) => {
      const onError = (e: Error) => rej(e);
      const onClose = () => rej(this.failure ?? new KilnError(`${this.what} output closed early`));
      this.out.once('error', onError);
      this.out.once('close', onClose);
      this.out.end(() => {
        this.out.off('error', onError);
        this.out.off('close', onClose);
        res();
      });
    });
  }

  private current(): Buffer {
    return (this.block ??= this.spare.pop() ?? Buffer.allocUnsafeSlow(BLOCK));
  }

  /** hand the current block to the stream (the caller waits on the result when it is a promise) */
  private pushBlock(): Promise<void> | void {
    const b = this.block!;
    const used = this.used;
    this.block = undefined;
    this.used = 0;
    return this.push(b.subarray(0, used), b);
  }

  private flushBlock(): void {
    // written without waiting: the next push waits for the whole queue anyway
    if (!this.used) return;
    const b = this.block!;
    const used = this.used;
    this.block = undefined;
    this.used = 0;
    this.push(b.subarray(0, used), b, false);
  }

  private push(buf: Buffer, block?: Buffer, wait = true): Promise<void> | void {
    if (this.out.destroyed) throw this.failure ?? new KilnError(`${this.what} output closed early`);
    let back: ((e?: Error | null) => void) | undefined;
    if (block && this.recycle) {
      let called = false;
      back = (e?: Error | null) => {
        if (!e && !called && this.spare.length < SPARE_BLOCKS) this.spare.push(block);
        called = true;
      };
    }
    this.out.write(buf, back);
    // consumed at once (a synchronous file writer, a pipe that took it all): the stream runs the
    // callback only on the next tick, after this producer has taken fresh blocks for everything
    // it reads in between (213 MiB of them for the benchmark's uncompressed package)
    if (back && this.out.writableLength === 0) back();
    if (!wait || this.out.writableLength < MAX_QUEUED) return;
    return new Promise<void>((res, rej) => {
      const done = (e?: Error) => {
        this.out.off('drain', onDrain);
        this.out.off('error', onError);
        this.out.off('close', onClose);
        if (e) rej(e);
        else res();
      };
      const onDrain = () => done();
      const onError = (e: Error) => done(e);
      const onClose = () => done(this.failure ?? new KilnError(`${this.what} output closed early`));
      this.out.on('drain', onDrain);
      this.out.on('error', onError);
      this.out.on('close', onClose);
    });
  }
}

/** write(2) until all of `b` is written, at `position` or (without one) the current offset */
export function writeAll(fd: number, b: Buffer, position?: number): void {
  for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off, position === undefined ? null : position + off);
}
