/**
 * Streaming cpio "newc" (070701) writer, as rpm's payload and Linux initramfs use it.
 * Names are written as given (rpm wants a ./ prefix). Entries of 4 GiB and more cannot be
 * written in this format (rpm uses its own 07070X variant for those): they are refused.
 * An optional `tap` sees every byte written (rpm's PAYLOADDIGESTALT over the uncompressed archive).
 */
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { KilnError } from '../lib/errors.js';

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
  private written = 0;
  constructor(
    private out: Writable,
    private tap?: (b: Buffer) => void,
  ) {}
  get bytesWritten(): number {
    return this.written;
  }
  private write(b: Buffer): Promise<void> | void {
    this.written += b.length;
    this.tap?.(b);
    if (this.out.destroyed) throw new KilnError('cpio output closed early');
    if (!this.out.write(b)) {
      // wait for drain, but give up if the consumer goes away (compressor died)
      return new Promise((res, rej) => {
        const done = (err?: Error) => {
          this.out.off('drain', onDrain);
          this.out.off('close', onClose);
          this.out.off('error', done);
          if (err) rej(err);
          else res();
        };
        const onDrain = () => done();
        const onClose = () => done(new KilnError('cpio output closed early'));
        this.out.on('drain', onDrain);
        this.out.on('close', onClose);
        this.out.on('error', done);
      });
    }
  }
  private async pad(): Promise<void> {
    const p = (4 - (this.written % 4)) % 4;
    if (p) await this.write(Buffer.alloc(p));
  }
  /**
   * Add one entry; `body` is its content (a Buffer, or a host file streamed in 1 MiB chunks, which
   * must still have e.size bytes); `onChunk` sees the content (file digests).
   */
  async add(e: CpioEntry, body?: Buffer | string, onChunk?: (b: Buffer) => void): Promise<void> {
    if (e.size > 0xffffffff) throw new KilnError(`${e.name}: files of 4 GiB and more cannot be stored in a cpio newc archive`);
    const name = Buffer.from(e.name + '\0');
    const h = `070701${hex(e.ino)}${hex(e.mode)}${hex(e.uid)}${hex(e.gid)}${hex(e.nlink)}${hex(e.mtime)}${hex(e.size)}${hex(0)}${hex(0)}${hex(0)}${hex(0)}${hex(name.length)}${hex(0)}`;
    await this.write(Buffer.from(h, 'ascii'));
    await this.write(name);
    await this.pad();
    let n = 0;
    if (Buffer.isBuffer(body)) {
      onChunk?.(body);
      await this.write(body);
      n = body.length;
    } else if (typeof body === 'string') {
      const rs = createReadStream(body, { highWaterMark: 1 << 20 });
      try {
        for await (const c of rs) {
          n += (c as Buffer).length;
          if (n > e.size) break;
          onChunk?.(c as Buffer);
          await this.write(c as Buffer);
        }
      } finally {
        rs.destroy();
      }
    }
    if (n !== e.size) throw new KilnError(`${typeof body === 'string' ? body : e.name} changed size while being archived (expected ${e.size} bytes)`);
    await this.pad();
  }
  async finish(): Promise<void> {
    await this.add({ name: 'TRAILER!!!', ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, size: 0 });
    await new Promise<void>((res, rej) => {
      this.out.once('error', rej);
      this.out.end(() => res());
    });
  }
}
