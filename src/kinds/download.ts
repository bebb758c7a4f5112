/**
 * kiln:download (alias slapos.recipe.build:download): fetch a file, verify its checksum,
 * keep it in the shared download cache, and place it (or its unpacked contents) in the part.
 */
import { copyFile, chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchVerified, isUrl, urlBasename } from '../lib/download.js';
import { containedPath } from '../lib/paths.js';
import type { BuildContext, OptionSpec, PlanContext, Recipe } from '../kind.js';
import { extractArchive } from './archive.js';

function source(ctx: PlanContext | BuildContext): string {
  const { url } = ctx.options.typed(OPTIONS);
  return isUrl(url) ? url : ctx.options.resolvePath('url', url);
}

/** The file's path in `dir`: `filename`, or the URL's last component, kept inside `dir`. */
function target(ctx: PlanContext | BuildContext, dir: string): string {
  const opts = { single: true, inside: "the part's directory" };
  const o = ctx.options;
  const given = o.typed(OPTIONS).filename;
  if (given) return containedPath(dir, given, 'file name', (d) => o.error('filename', d), opts);
  const src = source(ctx);
  let name: string;
  try {
    name = urlBasename(src);
  } catch (e) {
    throw o.error('url', `cannot take a file name from ${src}: ${(e as Error).message}; set 'filename'`);
  }
  return containedPath(dir, name, `file name taken from the URL (after decoding)`, (d) => o.error('url', `${d}; set 'filename' to name the file`), opts);
}

const OPTIONS = {
  url: { type: 'url', description: 'URL or local path (relative to the file that sets it)', required: true },
  sha256: { type: 'pattern', pattern: /^[0-9a-fA-F]{64}$/, expected: '64 hex digits', description: 'expected SHA-256 of the file' },
  sha512: { type: 'pattern', pattern: /^[0-9a-fA-F]{128}$/, expected: '128 hex digits', description: 'expected SHA-512 of the file' },
  md5sum: { type: 'pattern', pattern: /^[0-9a-fA-F]{32}$/, expected: '32 hex digits', description: 'expected MD5 of the file (SlapOS compatible)' },
  filename: { type: 'string', description: "name of the file in the part (default: the last URL component, percent-decoded for http(s); a local file's own name)" },
  destination: { type: 'string', description: 'SlapOS compatible alias of the output directory (ignored: the output is the location)' },
  extract: { type: 'bool', description: 'unpack the archive into the part instead of copying it', default: 'false' },
  'strip-top-level-dir': { type: 'bool', description: 'when unpacking, drop a single top-level directory', default: 'true' },
  mode: { type: 'pattern', pattern: /^0?[0-7]{3,4}$/, expected: 'an octal mode like 0755', description: 'octal file mode of the downloaded file, e.g. 0755' },
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'download',
  version: '1',
  description: 'Download a file (http(s), file:// or a local path), verify its checksum, cache it, optionally unpack it',
  options: OPTIONS,
  validate(ctx) {
    const o = ctx.options;
    const { url, extract } = o.typed(OPTIONS);
    if (url.startsWith('file://')) {
      try {
        fileURLToPath(url);
      } catch (e) {
        throw o.error('url', `not a usable file:// URL: ${url} (${(e as Error).message}; a '%' in a file name is written %25 in a URL, or give the plain path)`);
      }
    }
    if (!extract) target(ctx, '/staging');
  },
  inputs(ctx) {
    // a local file without checksum: its content is the input
    const src = source(ctx);
    return isUrl(src) ? [] : [src];
  },
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const src = source(ctx);
    const file = await fetchVerified(
      src,
      { sha256: v.sha256, sha512: v.sha512, md5: v.md5sum },
      { cacheDir: ctx.downloadCache ?? join(ctx.cacheDir, 'downloads'), offline: ctx.offline, signal: ctx.signal, log: ctx.log, error: (opt, d) => o.error(opt === 'url' ? 'url' : opt, d) },
    );
    if (v.extract) {
      await extractArchive(ctx, file, ctx.staging, v['strip-top-level-dir']);
      return;
    }
    await mkdir(ctx.staging, { recursive: true });
    const dest = target(ctx, ctx.staging);
    await copyFile(file, dest);
    await chmod(dest, v.mode ? parseInt(v.mode, 8) : 0o644);
  },
};
export default recipe;
