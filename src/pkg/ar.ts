/**
 * The ar archive format used by .deb, in the common (System V / GNU) layout dpkg-deb writes:
 * `!<arch>\n`, then per member a 60-byte header — name padded to 16 (no trailing `/`), mtime (12),
 * uid `0` (6), gid `0` (6), mode `100644` (8), size (10), `` `\n `` — the data, and one `\n` of
 * padding after odd sizes. Members are literal buffers or host files streamed from disk; the
 * archive's SHA-256 and size are computed while writing (no second pass).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { KilnError } from '../lib/errors.js';

export interface ArMember {
  name: string;
  /** literal data, or */
  data?: Buffer;
  /** a host file */
  file?: string;
}

export function arHeader(name: string, size: number, mtime: number): Buffer {
  if (!/^[\x21-\x7e]{1,16}$/.test(name) || name.includes('/')) throw new KilnError(`invalid ar member name '${name}'`);
  if (!Number.isInteger(mtime) || mtime < 0 || String(mtime).length > 12) throw new KilnError(`invalid ar member mtime ${mtime}`);
  if (String(size).length > 10) throw new KilnError(`ar member ${name} too large (${size} bytes)`);
  const h = name.padEnd(16) + String(mtime).padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '100644'.padEnd(8) + String(size).padEnd(10) + '`\n';
  return Buffer.from(h, 'ascii');
}

export interface ArResult {
  size: number;
  sha256: string;
}

/** Write an ar archive of the members to `dest` (mtime as given, uid/gid 0, mode 100644 for all). */
export async function writeAr(dest: string, members: ArMember[], mtime: number): Promise<ArResult> {
  const sha = createHash('sha256');
  let total = 0;
  const heads = members.map((m) => {
    const size = m.data ? m.data.length : statSync(m.file!).size;
    return arHeader(m.name, size, mtime);
  });
  async function* gen() {
    const emit = (b: Buffer) => {
      sha.update(b);
      total += b.length;
      return b;
    };
    yield emit(Buffer.from('!<arch>\n'));
    for (const [i, m] of members.entries()) {
      yield emit(heads[i]!);
      let size = 0;
      if (m.data) {
        size = m.data.length;
        yield emit(m.data);
      } else {
        for await (const c of createReadStream(m.file!, { highWaterMark: 1 << 20 })) {
          size += (c as Buffer).length;
          yield emit(c as Buffer);
        }
      }
      if (size !== Number(heads[i]!.subarray(48, 58).toString().trim())) throw new KilnError(`ar member ${m.name} changed size while being written`);
      if (size % 2) yield emit(Buffer.from('\n'));
    }
  }
  await pipeline(gen, createWriteStream(dest));
  return { size: total, sha256: sha.digest('hex') };
}
