/**
 * The ar archive format used by .deb, in the common (System V / GNU) layout dpkg-deb writes:
 * `!<arch>\n`, then per member a 60-byte header — name padded to 16 (no trailing `/`), mtime (12),
 * uid `0` (6), gid `0` (6), mode `100644` (8), size (10), `` `\n `` — the data, and one `\n` of
 * padding after odd sizes. The .deb writer (deb.ts) writes the members itself, straight into the
 * package file.
 */
import { KilnError } from '../lib/errors.js';

export const AR_MAGIC = '!<arch>\n';

export function arHeader(name: string, size: number, mtime: number): Buffer {
  if (!/^[\x21-\x7e]{1,16}$/.test(name) || name.includes('/')) throw new KilnError(`invalid ar member name '${name}'`);
  if (!Number.isInteger(mtime) || mtime < 0 || String(mtime).length > 12) throw new KilnError(`invalid ar member mtime ${mtime}`);
  if (String(size).length > 10) throw new KilnError(`ar member ${name} too large (${size} bytes)`);
  const h = name.padEnd(16) + String(mtime).padEnd(12) + '0'.padEnd(6) + '0'.padEnd(6) + '100644'.padEnd(8) + String(size).padEnd(10) + '`\n';
  return Buffer.from(h, 'ascii');
}
