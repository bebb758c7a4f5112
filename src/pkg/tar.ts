/**
 * A streaming, deterministic tar writer producing what GNU tar `--format=gnu` writes (and hence what
 * dpkg-deb writes): `ustar  \0` magic, octal fields NUL-terminated, checksum `NNNNNN\0 `, names and
 * link targets over 100 bytes through a preceding `././@LongLink` entry (type L / K, mode 0644, owner
 * root/root 0/0, mtime 0) with the header field holding the first 100 bytes, sizes/ids too large for
 * octal in GNU base-256, the archive ended by two zero blocks and padded to a 10 KiB record.
 *
 * Contents stream from disk with backpressure (memory stays flat whatever the payload); small writes
 * are coalesced into 256 KiB chunks; a hook sees every content chunk (md5sums on the way). If the
 * output fails (compressor died), pending and later writes reject instead of waiting forever.
 */
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { KilnError } from '../lib/errors.js';

export interface TarHeader {
  /** name as stored, e.g. `./usr/bin/x` or `./usr/` */
  name: string;
  type: 'file' | 'dir' | 'symlink';
  /** permission bits (incl. setuid/setgid/sticky) */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  /** content size (files); ignored for other types */
  size: number;
  linkname?: string;
}

export const BLOCK = 512;
export const RECORD = 20 * BLOCK;
const COALESCE = 256 * 1024;

function numeric(buf: Buffer, off: number, len: number, value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0) throw new KilnError(`tar: invalid ${what} ${value}`);
  const s = value.toString(8);
  if (s.length <= len - 1) {
    buf.write(s.padStart(len - 1, '0') + '\0', off, len, 'ascii');
    return;
  }
  // GNU base-256: high bit of the first byte set, big-endian value in the rest
  let v = BigInt(value);
  for (let i = off + len - 1; i > off; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[off] = 0x80;
}

function field(buf: Buffer, off: number, len: number, value: Buffer, what: string): void {
  if (value.length > len) throw new KilnError(`tar: ${what} too long (${value.length} > ${len} bytes): ${value.toString()}`);
  value.copy(buf, off);
}

interface RawHeader {
  name: Buffer;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  size: number;
  linkname: Buffer;
}

function header(h: RawHeader): Buffer {
  const b = Buffer.alloc(BLOCK);
  field(b, 0, 100, h.name, 'name');
  numeric(b, 100, 8, h.mode, 'mode');
  numeric(b, 108, 8, h.uid, 'uid');
  numeric(b, 116, 8, h.gid, 'gid');
  numeric(b, 124, 12, h.size, 'size');
  numeric(b, 136, 12, h.mtime, 'mtime');
  b.fill(0x20, 148, 156); // checksum computed with spaces here
  b.write(h.typeflag, 156, 1, 'ascii');
  field(b, 157, 100, h.linkname, 'link target');
  b.write('ustar  \0', 257, 8, 'ascii'); // GNU magic + version
  field(b, 265, 32, Buffer.from(h.uname), 'user name');
  field(b, 297, 32, Buffer.from(h.gname), 'group name');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

export class TarWriter {
  private written = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failure: Error | undefined;

  constructor(private readonly out: Writable) {
    const fail = (e?: Error) => {
      this.failure ??= e ?? new KilnError('tar output closed early');
    };
    out.on('error', fail);
    out.on('close', () => {
      if (!out.writableFinished) fail();
    });
  }

  /** uncompressed bytes produced so far */
  get bytesWritten(): number {
    return this.written;
  }

  private async flush(): Promise<void> {
    if (!this.pendingBytes) return;
    const buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.push(buf);
  }

  private push(buf: Buffer): Promise<void> | void {
    if (this.failure) throw this.failure;
    if (this.out.write(buf)) return;
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
      const onClose = () => done(this.failure ?? new KilnError('tar output closed early'));
      this.out.on('drain', onDrain);
      this.out.on('error', onError);
      this.out.on('close', onClose);
    });
  }

  private async write(buf: Buffer): Promise<void> {
    this.written += buf.length;
    if (buf.length >= COALESCE) {
      await this.flush();
      await this.push(buf);
      return;
    }
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= COALESCE) await this.flush();
  }

  private async pad(size: number): Promise<void> {
    const n = (BLOCK - (size % BLOCK)) % BLOCK;
    if (n) await this.write(Buffer.alloc(n));
  }

  private async longLink(typeflag: 'L' | 'K', value: Buffer): Promise<void> {
    const data = Buffer.concat([value, Buffer.alloc(1)]);
    await this.write(
      header({ name: Buffer.from('././@LongLink'), typeflag, mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 0, size: data.length, linkname: Buffer.alloc(0) }),
    );
    await this.write(data);
    await this.pad(data.length);
  }

  /**
   * Add an entry. For files, `body` is the content (Buffer) or a host path streamed from disk
   * (it must still have `h.size` bytes); `onChunk` sees the content as it passes.
   */
  async add(h: TarHeader, body?: Buffer | string, onChunk?: (b: Buffer) => void): Promise<void> {
    const typeflag = h.type === 'dir' ? '5' : h.type === 'symlink' ? '2' : '0';
    const size = h.type === 'file' ? h.size : 0;
    // GNU tar's order: the long link target (K) first, then the long name (L)
    let linkname = Buffer.from(h.linkname ?? '');
    if (linkname.length > 100) {
      await this.longLink('K', linkname);
      linkname = linkname.subarray(0, 100);
    }
    let name = Buffer.from(h.name);
    if (name.length > 100) {
      await this.longLink('L', name);
      name = name.subarray(0, 100);
    }
    await this.write(header({ name, typeflag, mode: h.mode, uid: h.uid, gid: h.gid, uname: h.uname, gname: h.gname, mtime: h.mtime, size, linkname }));
    if (h.type !== 'file') return;
    let n = 0;
    if (Buffer.isBuffer(body)) {
      n = body.length;
      if (n === size) {
        onChunk?.(body);
        await this.write(body);
      }
    } else if (typeof body === 'string') {
      const rs = createReadStream(body, { highWaterMark: 1 << 20 });
      try {
        for await (const chunk of rs) {
          const c = chunk as Buffer;
          n += c.length;
          if (n > size) break;
          onChunk?.(c);
          await this.write(c);
        }
      } catch (e) {
        throw new KilnError(`reading ${body}: ${(e as Error).message}`);
      } finally {
        rs.destroy();
      }
    }
    if (n !== size) throw new KilnError(`${typeof body === 'string' ? body : h.name} changed size while being archived (expected ${size} bytes, got ${n})`);
    await this.pad(size);
  }

  /** End-of-archive blocks, padded to a full record; ends the output stream. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
    const n = (RECORD - (this.written % RECORD)) % RECORD;
    if (n) await this.write(Buffer.alloc(n));
    await this.flush();
    if (this.failure) throw this.failure;
    await new Promise<void>((res, rej) => {
      const onError = (e: Error) => rej(e);
      this.out.once('error', onError);
      this.out.end(() => {
        this.out.off('error', onError);
        res();
      });
    });
  }
}
