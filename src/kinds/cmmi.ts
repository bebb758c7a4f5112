/**
 * kiln:cmmi (alias slapos.recipe.cmmi): configure / make / make install of an upstream source
 * into a staging prefix. Options follow slapos.recipe.cmmi (url, md5sum, path, configure-command,
 * configure-options, environment, patches, patch-options, patch-binary, pre-configure, pre-build,
 * pre-install, post-install, make-binary, make-options, make-targets, prefix).
 *
 * The source is configured with --prefix=LOCATION (the part's stable final path) and installed
 * with DESTDIR into a scratch tree; what lands under DESTDIR/LOCATION becomes the part's output.
 * Hooks are the user's own shell code, run with bash -euo pipefail; recipe values reach them as
 * environment variables (location, prefix, srcdir, DESTDIR), never pasted into the script by kiln.
 */
import { existsSync, statSync } from 'node:fs';
import { copyFile, cp, mkdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fetchVerified, isUrl } from '../lib/download.js';
import { KilnError } from '../lib/errors.js';
import { CLEAN_ROOM_OPTIONS, type BuildContext, type OptionSpec, type Recipe } from '../kind.js';
import { extractArchive } from './archive.js';

/** Run a user hook script (the user's own shell code) with values passed in the environment. */
async function hook(ctx: BuildContext, name: string, script: string | undefined, cwd: string, env: Record<string, string>): Promise<void> {
  if (!script || !script.trim()) return;
  ctx.log(`# kiln: ${name} hook\n`);
  await ctx.run(['bash', '-euo', 'pipefail', '-c', script], { cwd, env });
}

function words(s: string | undefined): string[] {
  return s ? s.split(/\s+/).filter(Boolean) : [];
}

const OPTIONS = {
  ...CLEAN_ROOM_OPTIONS,
  url: { type: 'url', description: 'source archive URL or local path' },
  path: { type: 'path', description: 'local source directory (instead of url)' },
  md5sum: { type: 'pattern', pattern: /^[0-9a-fA-F]{32}$/, expected: '32 hex digits', description: 'MD5 of the archive (SlapOS compatible)' },
  sha256: { type: 'pattern', pattern: /^[0-9a-fA-F]{64}$/, expected: '64 hex digits', description: 'SHA-256 of the archive' },
  sha512: { type: 'pattern', pattern: /^[0-9a-fA-F]{128}$/, expected: '128 hex digits', description: 'SHA-512 of the archive' },
  'configure-command': { type: 'string', description: "configure program and leading arguments (default ./configure; 'false' to skip)", default: './configure' },
  'configure-options': { type: 'string', multiline: true, description: 'extra configure arguments, whitespace separated' },
  prefix: { type: 'path', description: 'install prefix (default: the part location)' },
  environment: { type: 'env', description: 'KEY=VALUE lines added to the build environment' },
  patches: { type: 'paths', urls: true, description: 'patch files or URLs applied in order (URL#md5 accepted)' },
  'patch-options': { type: 'string', description: 'arguments to patch (default -p0, as slapos.recipe.cmmi)', default: '-p0' },
  'patch-binary': { type: 'string', description: 'patch program', default: 'patch' },
  'pre-configure': { type: 'string', multiline: true, description: 'shell hook run in the source tree before configure' },
  'pre-build': { type: 'string', multiline: true, description: 'shell hook run before make' },
  'pre-install': { type: 'string', multiline: true, description: 'shell hook run before make install' },
  'post-install': { type: 'string', multiline: true, description: 'shell hook run after make install (files are under $DESTDIR$location)' },
  'make-binary': { type: 'string', description: 'make program', default: 'make' },
  'make-options': { type: 'string', multiline: true, description: 'extra make arguments, whitespace separated' },
  'make-targets': { type: 'string', multiline: true, description: 'install targets', default: 'install' },
  'strip-top-level-dir': { type: 'bool', description: 'drop the archive top-level directory', default: 'true' },
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'cmmi',
  version: '1',
  description: 'configure / make / make install an upstream source into the part (slapos.recipe.cmmi compatible)',
  options: OPTIONS,
  cleanRoom: true,
  innerJobs: true, // ctx.jobs: make -j
  validate(ctx) {
    const o = ctx.options;
    const { url, path } = o.typed(OPTIONS);
    if (!url && !path) throw o.error('url', "one of 'url' or 'path' is required");
    if (url && path) throw o.error('path', "give 'url' or 'path', not both");
  },
  inputs(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const ins: string[] = [];
    if (v.path) ins.push(v.path);
    if (v.url && !isUrl(v.url)) ins.push(o.resolvePath('url', v.url));
    for (const p of v.patches) if (!isUrl(p)) ins.push(p.split('#')[0]!);
    return ins;
  },
  tools(ctx) {
    const v = ctx.options.typed(OPTIONS);
    return ['tar', 'bash', v['make-binary'] || 'make', ...(v.patches.length ? ['patch'] : [])];
  },
  // without prefix, ./configure --prefix=LOCATION: the programs know where they live
  locationInOutput: (ctx) => !ctx.options.typed(OPTIONS).prefix,
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const src = join(ctx.work, 'src');
    const dl = { cacheDir: ctx.downloadCache ?? join(ctx.cacheDir, 'downloads'), offline: ctx.offline, signal: ctx.signal, log: ctx.log, error: (opt: string, d: string) => o.error(opt, d) };
    if (v.path) {
      const p = v.path;
      if (!existsSync(p) || !statSync(p).isDirectory()) throw o.error('path', `source directory not found: ${p}`);
      await cp(p, src, { recursive: true, verbatimSymlinks: true });
    } else {
      const url = v.url!;
      const file = await fetchVerified(isUrl(url) ? url : o.resolvePath('url', url), { md5: v.md5sum, sha256: v.sha256, sha512: v.sha512 }, dl);
      await extractArchive(ctx, file, src, v['strip-top-level-dir']);
    }
    const prefix = v.prefix || ctx.location;
    const destdir = join(ctx.work, 'destdir');
    const env: Record<string, string> = {
      ...v.environment,
      location: ctx.location,
      prefix,
      srcdir: src,
      DESTDIR: destdir,
      SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch),
    };
    // patches
    // each patch is copied into the work directory first: a clean-room build sees only the
    // project, the cache and the work directories, and a patch may live beside an extended profile
    const patchDir = join(ctx.work, 'patches');
    let n = 0;
    for (const spec of v.patches) {
      const [loc, md5] = spec.split('#');
      const file = await fetchVerified(loc!, { md5 }, dl);
      await mkdir(patchDir, { recursive: true });
      const copy = join(patchDir, `${String(++n).padStart(2, '0')}-${basename(loc!.replace(/[?#].*$/, '')) || 'patch'}`);
      await copyFile(file, copy);
      await ctx.run([v['patch-binary'] || 'patch', ...words(v['patch-options']), '-i', copy], { cwd: src, env });
    }
    await hook(ctx, 'pre-configure', v['pre-configure'], src, env);
    const configure = words(v['configure-command']);
    if (configure.length && !['false', 'none', 'no'].includes(configure[0]!.toLowerCase())) {
      await ctx.run([...configure, `--prefix=${prefix}`, ...words(v['configure-options'])], { cwd: src, env });
    }
    const make = v['make-binary'] || 'make';
    await hook(ctx, 'pre-build', v['pre-build'], src, env);
    await ctx.run([make, `-j${ctx.jobs}`, ...words(v['make-options'])], { cwd: src, env });
    await hook(ctx, 'pre-install', v['pre-install'], src, env);
    await ctx.run([make, ...words(v['make-options']), ...words(v['make-targets']), `DESTDIR=${destdir}`], { cwd: src, env });
    await hook(ctx, 'post-install', v['post-install'], src, env);
    const installed = join(destdir, prefix);
    if (!existsSync(installed)) {
      throw new KilnError(`[${ctx.part}] make install put nothing under ${prefix} in DESTDIR (does the Makefile honour DESTDIR?)`);
    }
    await rm(ctx.staging, { recursive: true, force: true });
    await rename(installed, ctx.staging);
  },
};
export default recipe;
