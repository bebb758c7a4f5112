/**
 * Streaming cpio "newc" (070701) writer, as rpm's payload and Linux initramfs use it.
 * Names are written as given (rpm wants a ./ prefix). Entries of 4 GiB and more cannot be
 * written in this format (rpm uses its own 07070X variant for those): they are refused.
 * An optional `tap` sees every byte written (rpm's PAYLOADDIGESTALT over the uncompressed archive).
 */
import type { Writable } from 'node:stream';
import { KilnError } from '../lib/errors.js';
import { ByteWriter } from './bytewriter.js';

export interface CpioEntry {
  name: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
}

const hex = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

export class CpioWriter {
  private readonly w: ByteWriter;
  /** `recycle`: the output is a compressor of compress.ts (see ByteWriterOptions) */
  constructor(out: Writable, tap?: (b: Buffer) => void, opts: { recycle?: boolean } = {}) {
    this.w = new ByteWriter(out, 'cpio', { tap, recycle: opts.recycle });
  }
  get bytesWritten(): number {
    return this.w.bytesWritten;
  }
  private pad(): Promise<void> | void {
    const p = (4 - (this.w.bytesWritten % 4)) % 4;
    if (p) return this.w.write(Buffer.alloc(p));
  }
  /**
   * Add one entry; `body` is its content (a Buffer, or a host file read in bounded chunks, which
   * must still have e.size bytes); `onChunk` sees the content (file digests).
   */
  async add(e: CpioEntry, body?: Buffer | string, onChunk?: (b: Buffer) => void): Promise<void> {
    if (e.size > 0xffffffff) throw new KilnError(`${e.name}: files of 4 GiB and more cannot be stored in a cpio newc archive`);
    const name = Buffer.from(e.name + '\0');
    const h = `070701${hex(e.ino)}${hex(e.mode)}${hex(e.uid)}${hex(e.gid)}${hex(e.nlink)}${hex(e.mtime)}${hex(e.size)}${hex(0)}${hex(0)}${hex(0)}${hex(0)}${hex(name.length)}${hex(0)}`;
    await this.w.write(Buffer.concat([Buffer.from(h, 'ascii'), name]));
    await this.pad();
    if (Buffer.isBuffer(body)) {
      if (body.length !== e.size) throw new KilnError(`${e.name} changed size while being archived (expected ${e.size} bytes, got ${body.length})`);
      onChunk?.(body);
      await this.w.write(body);
    } else if (typeof body === 'string') {
      await this.w.writeFile(body, e.size, body, onChunk);
    } else if (e.size) throw new KilnError(`${e.name}: no content for an entry of ${e.size} bytes`);
    await this.pad();
  }
  async finish(): Promise<void> {
    await this.add({ name: 'TRAILER!!!', ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, size: 0 });
    await this.w.end();
  }
}
