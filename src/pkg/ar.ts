/** The ar archive format used by .deb (common format, as dpkg-deb writes it). */
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';

export interface ArMember {
  name: string;
  /** literal data or a host file */
  data?: Buffer;
  file?: string;
}

function arHeader(name: string, size: number, mtime: number): Buffer {
  if (name.length > 16) throw new Error(`ar member name too long: ${name}`);
  const h = name.padEnd(16) + String(mtime).padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '100644'.padEnd(8) + String(size).padEnd(10) + '`\n';
  return Buffer.from(h, 'ascii');
}

/** Write an ar archive of the members to `dest` (mtime, uid/gid 0, mode 100644 for all). */
export async function writeAr(dest: string, members: ArMember[], mtime: number): Promise<void> {
  const out = createWriteStream(dest);
  async function* gen() {
    yield Buffer.from('!<arch>\n');
    for (const m of members) {
      const size = m.data ? m.data.length : statSync(m.file!).size;
      yield arHeader(m.name, size, mtime);
      if (m.data) yield m.data;
      else for await (const c of createReadStream(m.file!, { highWaterMark: 1 << 20 })) yield c as Buffer;
      if (size % 2) yield Buffer.from('\n');
    }
  }
  await pipeline(gen, out);
}
