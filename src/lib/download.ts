/**
 * Downloads into a content-addressed cache, with checksum verification.
 *
 *   CACHE/sha256/HEX    content by SHA-256 (a download with a known sha256 never touches the network again)
 *   CACHE/url/HEX       SHA-256 of the URL -> a file holding the content's sha256 (downloads without one)
 *   CACHE/.quarantine/  cached files whose bytes no longer hash to their name (every hand-out hashes)
 *
 * Local paths and file:// URLs are read in place (and still verified).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { KilnError } from './errors.js';
import { tmpSibling, writeFileAtomic } from './fsutil.js';
import { quarantine } from './manifest.js';

export type Algo = 'sha256' | 'sha512' | 'md5';
export interface Checksums {
  sha256?: string;
  sha512?: string;
  md5?: string;
}

export interface DownloadOptions {
  cacheDir: string; // .../downloads
  offline: boolean;
  signal?: AbortSignal;
  log?: (s: string) => void;
  /** error factory naming the option (file:line, part, option) */
  error?: (option: string, detail: string) => Error;
}

export { isUrl, safeDecode, urlBasename } from './url-name.js';
import { isUrl, safeDecode } from './url-name.js';

async function hashStream(path: string): Promise<Record<Algo, string>> {
  const hs = { sha256: createHash('sha256'), sha512: createHash('sha512'), md5: createHash('md5') };
  await pipeline(createReadStream(path), async function* (src) {
    for await (const b of src) for (const h of Object.values(hs)) h.update(b as Buffer);
  });
  return { sha256: hs.sha256.digest('hex'), sha512: hs.sha512.digest('hex'), md5: hs.md5.digest('hex') };
}

function verify(source: string, got: Record<Algo, string>, want: Checksums, opts: DownloadOptions): void {
  const checks: Array<[Algo, string | undefined, string]> = [
    ['sha256', want.sha256, 'sha256'],
    ['sha512', want.sha512, 'sha512'],
    ['md5', want.md5, 'md5sum'],
  ];
  for (const [algo, expected, option] of checks) {
    if (!expected) continue;
    if (got[algo] !== expected.trim().toLowerCase()) {
      const detail = `${algo} checksum mismatch for ${source}: expected ${expected.trim()}, got ${got[algo]}`;
      throw opts.error ? opts.error(option, detail) : new KilnError(detail);
    }
  }
}

/**
 * Fetch `source` (http(s) URL, file:// URL or local path) and return the path of a verified
 * file in the cache (or the local file itself). Throws on checksum mismatch, leaving nothing cached.
 */
export async function fetchVerified(source: string, want: Checksums, opts: DownloadOptions): Promise<string> {
  let local: string | undefined;
  if (source.startsWith('file://')) {
    try {
      local = fileURLToPath(source);
    } catch (e) {
      const detail = `not a usable file:// URL: ${source} (${(e as Error).message}; a '%' in a file name is written %25 in a URL, or give the plain path)`;
      throw opts.error ? opts.error('url', detail) : new KilnError(detail);
    }
  } else if (!isUrl(source)) local = source;
  if (local !== undefined) {
    if (!existsSync(local) || !statSync(local).isFile()) {
      const detail = `file not found: ${local}`;
      throw opts.error ? opts.error('url', detail) : new KilnError(detail);
    }
    verify(local, await hashStream(local), want, opts);
    return local;
  }
  const bySha = (h: string) => join(opts.cacheDir, 'sha256', h);
  // a cached file is handed out only after its bytes hash to its name; a damaged one is quarantined
  const cached = async (h: string): Promise<{ path: string; got: Record<Algo, string> } | undefined> => {
    if (!/^[0-9a-f]{64}$/.test(h)) return undefined;
    const p = bySha(h);
    if (!existsSync(p)) return undefined;
    const got = await hashStream(p);
    if (got.sha256 === h) return { path: p, got };
    const q = quarantine(p, join(opts.cacheDir, '.quarantine'), `sha256-${h}`, [{ path: p, problem: `content differs (sha256 ${got.sha256})` }]);
    opts.log?.(`# download cache: ${p} does not hash to its name (got sha256 ${got.sha256}): quarantined in ${q}\n`);
    process.stderr.write(`kiln: warning: download cache entry ${p} was damaged (sha256 ${got.sha256}); quarantined in ${q}, fetching ${source} again\n`);
    return undefined;
  };
  if (want.sha256) {
    const hit = await cached(want.sha256.trim().toLowerCase());
    if (hit) {
      verify(source, hit.got, want, opts);
      return hit.path;
    }
  }
  const urlKey = join(opts.cacheDir, 'url', createHash('sha256').update(source).digest('hex'));
  if (existsSync(urlKey)) {
    const hit = await cached(readFileSync(urlKey, 'utf8').trim());
    if (hit) {
      verify(source, hit.got, want, opts);
      return hit.path;
    }
  }
  if (opts.offline) {
    const detail = `offline, and ${source} is not in the download cache (${opts.cacheDir})`;
    throw opts.error ? opts.error('url', detail) : new KilnError(detail);
  }
  mkdirSync(join(opts.cacheDir, 'sha256'), { recursive: true });
  const tmp = tmpSibling(join(opts.cacheDir, 'sha256', 'download'));
  try {
    opts.log?.(`# downloading ${source}\n`);
    let res: Response;
    try {
      res = await fetch(source, { signal: opts.signal, redirect: 'follow' });
    } catch (e) {
      const cause = (e as { cause?: Error }).cause;
      throw new KilnError(`download of ${source} failed: ${cause?.message ?? (e as Error).message}`);
    }
    if (!res.ok || !res.body) throw new KilnError(`download of ${source} failed: HTTP ${res.status} ${res.statusText}`);
    const expected = Number(res.headers.get('content-length') ?? NaN);
    let received = 0;
    try {
      await pipeline(
        Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
        async function* (src) {
          for await (const b of src) {
            received += (b as Buffer).length;
            yield b as Buffer;
          }
        },
        createWriteStream(tmp),
      );
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      const cause = (e as { cause?: Error }).cause;
      const why = cause?.message ?? (e as Error).message;
      const of = Number.isFinite(expected) ? ` of ${expected}` : '';
      throw new KilnError(`download of ${source} failed after ${received}${of} bytes: the connection ended early (${why})`);
    }
    if (Number.isFinite(expected) && received !== expected) {
      throw new KilnError(`download of ${source} is truncated: got ${received} of ${expected} bytes (Content-Length)`);
    }
    const got = await hashStream(tmp);
    verify(source, got, want, opts);
    const dest = bySha(got.sha256);
    renameSync(tmp, dest);
    writeFileAtomic(urlKey, got.sha256 + '\n');
    mkdirSync(join(opts.cacheDir, 'url'), { recursive: true });
    return dest;
  } finally {
    rmSync(tmp, { force: true });
  }
}
