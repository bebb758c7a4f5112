/** Streaming cpio "newc" (070701) writer, as rpm's payload uses it (names with a ./ prefix). */
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
  constructor(private out: Writable) {}
  get bytesWritten(): number {
    return this.written;
  }
  private write(b: Buffer): Promise<void> | void {
    this.written += b.length;
    if (!this.out.write(b)) return new Promise((r) => this.out.once('drain', r));
  }
  private async pad(): Promise<void> {
    const p = (4 - (this.written % 4)) % 4;
    if (p) await this.write(Buffer.alloc(p));
  }
  async add(e: CpioEntry, body?: Buffer | string, onChunk?: (b: Buffer) => void): Promise<void> {
    if (e.size > 0xffffffff) throw new KilnError(`${e.name}: files over 4 GiB are not supported in rpm payloads yet`);
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
      for await (const c of createReadStream(body, { highWaterMark: 1 << 20 })) {
        n += (c as Buffer).length;
        if (n > e.size) break;
        onChunk?.(c as Buffer);
        await this.write(c as Buffer);
      }
    }
    if (n !== e.size) throw new KilnError(`${typeof body === 'string' ? body : e.name} changed size while being archived`);
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
