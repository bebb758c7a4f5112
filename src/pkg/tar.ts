/**
 * A streaming, deterministic tar writer producing what GNU tar `--format=gnu` writes (and hence what
 * dpkg-deb writes): `ustar  \0` magic, octal fields NUL-terminated, checksum `NNNNNN\0 `, names and
 * link targets over 100 bytes through a preceding `././@LongLink` entry (type L / K, mode 0644, owner
 * root/root 0/0, mtime 0) with the header field holding the first 100 bytes, sizes/ids too large for
 * octal in GNU base-256, the archive ended by two zero blocks and padded to a 10 KiB record.
 *
 * Contents are read from disk in bounded chunks and written with backpressure through ByteWriter
 * (coalesced small writes, deep queue; memory stays flat whatever the payload); a hook sees every
 * content chunk (md5sums on the way). If the output fails (compressor died), pending and later
 * writes reject instead of waiting forever.
 */
import type { Writable } from 'node:stream';
import { KilnError } from '../lib/errors.js';
import { ByteWriter } from './bytewriter.js';

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

function numeric(buf: Buffer, off: number, len: number, value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0) throw new KilnError(`tar: invalid ${what} ${value}`);
  if (value < 8 ** (len - 1)) {
    // len - 1 octal digits, zero-padded, then NUL (written digit by digit: no string per field)
    let v = value;
    for (let i = off + len - 2; i >= off; i--) {
      buf[i] = 0x30 + (v % 8);
      v = Math.floor(v / 8);
    }
    buf[off + len - 1] = 0;
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

/** A header as written: the name and link name as bytes, the type as its flag. */
interface RawHeader extends Omit<TarHeader, 'name' | 'type' | 'linkname'> {
  name: Buffer;
  typeflag: string;
  linkname: Buffer;
}

const ROOT = Buffer.from('root');
const nameBytes = (n: string): Buffer => (n === 'root' ? ROOT : Buffer.from(n));
/** zeros for padding (never written to) */
const ZEROS = Buffer.alloc(RECORD);

/** the header block being built: reused (ByteWriter copies writes this small into its blocks) */
const scratch = Buffer.alloc(BLOCK);
const EMPTY = Buffer.alloc(0);

/** The header block of an entry; valid until the next call (write it at once). */
function header(h: RawHeader): Buffer {
  const b = scratch.fill(0);
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
  field(b, 265, 32, nameBytes(h.uname), 'user name');
  field(b, 297, 32, nameBytes(h.gname), 'group name');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

export class TarWriter {
  private readonly w: ByteWriter;

  /** `recycle`: the output is a compressor of compress.ts (see ByteWriterOptions) */
  constructor(out: Writable, opts: { recycle?: boolean } = {}) {
    this.w = new ByteWriter(out, 'tar', { recycle: opts.recycle });
  }

  /** uncompressed bytes produced so far */
  get bytesWritten(): number {
    return this.w.bytesWritten;
  }

  private write(buf: Buffer): Promise<void> | void {
    return this.w.write(buf);
  }

  private async pad(size: number): Promise<void> {
    const n = (BLOCK - (size % BLOCK)) % BLOCK;
    if (n) await this.write(ZEROS.subarray(0, n));
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
   * (it must still have `h.size` bytes; `sourceName` names it in errors); `onChunk` sees the
   * content as it passes.
   */
  async add(h: TarHeader, body?: Buffer | string, onChunk?: (b: Buffer) => void, sourceName?: string): Promise<void> {
    const typeflag = h.type === 'dir' ? '5' : h.type === 'symlink' ? '2' : '0';
    const size = h.type === 'file' ? h.size : 0;
    // GNU tar's order: the long link target (K) first, then the long name (L)
    let linkname = h.linkname ? Buffer.from(h.linkname) : EMPTY;
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
    if (Buffer.isBuffer(body)) {
      if (body.length !== size) throw new KilnError(`${h.name} changed size while being archived (expected ${size} bytes, got ${body.length})`);
      onChunk?.(body);
      await this.write(body);
    } else if (typeof body === 'string') {
      await this.w.writeFile(body, size, sourceName ?? body, onChunk);
    } else if (size) throw new KilnError(`${h.name}: no content for a file of ${size} bytes`);
    await this.pad(size);
  }

  /** End-of-archive blocks, padded to a full record; ends the output stream. */
  async finish(): Promise<void> {
    await this.write(Buffer.alloc(2 * BLOCK));
    const n = (RECORD - (this.bytesWritten % RECORD)) % RECORD;
    if (n) await this.write(Buffer.alloc(n));
    await this.w.end();
  }
}
