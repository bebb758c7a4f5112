/**
 * A streaming, deterministic tar writer (GNU format, as dpkg-deb and GNU tar write it):
 * long names and link targets via ././@LongLink entries, sizes past 8 GiB in base-256,
 * the archive padded to a 10 KiB record. Contents stream from disk with backpressure, so
 * memory stays flat whatever the payload size; a hook sees every content chunk (md5sums).
 */
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { KilnError } from '../lib/errors.js';

export interface TarHeader {
  name: string;
  type: 'file' | 'dir' | 'symlink';
  /** permission bits */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  size: number;
  linkname?: string;
}

const BLOCK = 512;
const RECORD = 20 * BLOCK;

function octal(buf: Buffer, off: number, len: number, value: number): void {
  const s = value.toString(8);
  if (s.length > len - 1) {
    // GNU base-256 for values that do not fit
    buf[off] = 0x80;
    let v = BigInt(value);
    for (let i = off + len - 1; i > off; i--) {
      buf[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return;
  }
  buf.write(s.padStart(len - 1, '0') + '\0', off, len, 'ascii');
}

function str(buf: Buffer, off: number, len: number, s: string): void {
  const b = Buffer.from(s, 'utf8');
  if (b.length > len) throw new Error(`tar field too long: ${s}`);
  b.copy(buf, off);
}

function header(h: { name: string; typeflag: string; mode: number; uid: number; gid: number; uname: string; gname: string; mtime: number; size: number; linkname: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  str(b, 0, 100, h.name);
  octal(b, 100, 8, h.mode);
  octal(b, 108, 8, h.uid);
  octal(b, 116, 8, h.gid);
  octal(b, 124, 12, h.size);
  octal(b, 136, 12, h.mtime);
  b.fill(0x20, 148, 156); // checksum placeholder
  b.write(h.typeflag, 156, 1, 'ascii');
  str(b, 157, 100, h.linkname);
  b.write('ustar  \0', 257, 8, 'ascii'); // GNU magic + version
  str(b, 265, 32, h.uname);
  str(b, 297, 32, h.gname);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

export class TarWriter {
  private written = 0;
  constructor(private out: Writable) {}

  get bytesWritten(): number {
    return this.written;
  }

  private write(buf: Buffer): Promise<void> | void {
    this.written += buf.length;
    if (!this.out.write(buf)) return new Promise((res) => this.out.once('drain', res));
  }

  private async longLink(typeflag: 'L' | 'K', value: string): Promise<void> {
    const data = Buffer.from(value + '\0', 'utf8');
    await this.write(header({ name: '././@LongLink', typeflag, mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 0, size: data.length, linkname: '' }));
    await this.write(data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) await this.write(Buffer.alloc(pad));
  }

  /**
   * Add an entry. For files, `body` is a Buffer or a host path streamed from disk;
   * `onChunk` sees the content as it passes (for checksums).
   */
  async add(h: TarHeader, body?: Buffer | string, onChunk?: (b: Buffer) => void): Promise<void> {
    const typeflag = h.type === 'dir' ? '5' : h.type === 'symlink' ? '2' : '0';
    const size = h.type === 'file' ? h.size : 0;
    let name = h.name;
    if (Buffer.byteLength(name) > 100) {
      await this.longLink('L', name);
      name = name.slice(0, 100);
      while (Buffer.byteLength(name) > 100) name = name.slice(0, -1);
    }
    let linkname = h.linkname ?? '';
    if (Buffer.byteLength(linkname) > 100) {
      await this.longLink('K', linkname);
      linkname = linkname.slice(0, 100);
      while (Buffer.byteLength(linkname) > 100) linkname = linkname.slice(0, -1);
    }
    await this.write(header({ name, typeflag, mode: h.mode, uid: h.uid, gid: h.gid, uname: h.uname, gname: h.gname, mtime: h.mtime, size, linkname }));
    if (h.type !== 'file') return;
    let n = 0;
    if (Buffer.isBuffer(body)) {
      onChunk?.(body);
      await this.write(body);
      n = body.length;
    } else if (typeof body === 'string') {
      for await (const chunk of createReadStream(body, { highWaterMark: 1 << 20 })) {
        const c = chunk as Buffer;
        n += c.length;
        if (n > size) break;
        onChunk?.(c);
        await this.write(c);
      }
    }
    if (n !== size) throw new KilnError(`${typeof body === 'string' ? body : h.name} changed size while being archived (expected ${size} bytes, read ${n})`);
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad) await this.write(Buffer.alloc(pad));
  }

  /** End-of-archive blocks, padded to a full record; ends the output stream. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
    const pad = (RECORD - (this.written % RECORD)) % RECORD;
    if (pad) await this.write(Buffer.alloc(pad));
    await new Promise<void>((res, rej) => {
      this.out.once('error', rej);
      this.out.end(() => res());
    });
  }
}
