/**
 * kiln:chroot: a Debian (or Ubuntu-style) root file system made by mmdebstrap (debootstrap as
 * fallback), as a reproducible tarball, optionally imported as a local container image.
 *
 * Cached by content in CACHE/chroots/KEY/ (KEY = hash of every option that shapes the file
 * system, hook and keyring contents, the recipe version and SOURCE_DATE_EPOCH): the same options
 * give the cached chroot, in another project or after `rm -rf out`, without running mmdebstrap.
 * Each entry carries CACHE/chroots/KEY/kiln-manifest.json (written before the entry is renamed
 * into place) and is hashed against it on every hit: a damaged entry is quarantined in
 * CACHE/chroots/.quarantine/ and rebuilt, never linked into a part.
 * Outputs (hard links into the cache, read-only):
 *   rootfs.tar[.xz|.zst]   the file system (mmdebstrap honours SOURCE_DATE_EPOCH: same mirror
 *                          state and options -> same bytes)
 *   manifest               installed packages: `Package Version Architecture` (dpkg-query -W)
 *   key                    the content key
 *   image-tag              the container image (kiln/chroot:KEY16), when image = true
 *   rootfs/                the extracted tree, when directory = true
 * Customize hooks are the user's scripts: each is copied to a file and given to mmdebstrap as
 * `--customize-hook=FILE` (run with the target as $1 and as $TARGET, like ganeti-instance-
 * debootstrap's CUSTOMIZE_DIR hooks); nothing from an option is pasted into shell code.
 */
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { cachedDir } from '../lib/cache.js';
import { importImage, imageTagForKey } from '../sandbox/docker.js';
import { MissingToolError } from '../lib/errors.js';
import { rmrf } from '../lib/fsutil.js';
import { requireTool, which } from '../lib/tools.js';
import { sha256 } from '../lib/hash.js';
import type { BuildContext, OptionSpec, PartOptions, PlanContext, Recipe } from '../kind.js';
import { xzThreads } from '../pkg/compress.js';

// 2: apt's partial directories owned by _apt in every build (see scratchBase)
const VERSION = '2';
const FORMATS = ['tar', 'tar.xz', 'tar.zst'] as const;

/** The packages to include: the list's words, split at commas too. */
function packages(o: PartOptions): string[] {
  return o.typed(OPTIONS).packages.flatMap((p) => p.split(',')).filter(Boolean);
}

export function tarName(format: string): string {
  return format === 'tar' ? 'rootfs.tar' : `rootfs.${format}`;
}

/**
 * Which bootstrapper runs: the one asked for (option `bootstrapper`), else mmdebstrap, else
 * debootstrap; MissingToolError naming the Debian package when it is not there.
 */
export function bootstrapper(part?: string, wanted = 'auto'): 'mmdebstrap' | 'debootstrap' {
  if (wanted === 'mmdebstrap' || wanted === 'debootstrap') {
    requireTool(wanted, part);
    return wanted;
  }
  if (which('mmdebstrap')) return 'mmdebstrap';
  if (which('debootstrap')) return 'debootstrap';
  throw new MissingToolError('mmdebstrap', 'mmdebstrap', part);
}

/**
 * The content key of a chroot: options, hook and keyring contents, SOURCE_DATE_EPOCH.
 * (`image`, `directory` and `cache` only change what is done with the result: not in the key.)
 */
export function chrootKey(ctx: PlanContext | BuildContext, sde: number, tool: 'mmdebstrap' | 'debootstrap' = 'mmdebstrap'): string {
  const o = ctx.options;
  const v = o.typed(OPTIONS);
  const hooks = v.customize.map((p) => sha256(readFileSync(p)));
  const keyrings = v.keyrings.map((p) => sha256(readFileSync(p)));
  return sha256(
    JSON.stringify({
      v: VERSION,
      suite: v.suite,
      variant: v.variant,
      arch: v.architecture,
      components: v.components,
      mirror: v.mirror,
      mirrors: v.mirrors,
      packages: packages(o).sort(),
      hooks,
      keyrings,
      sources: v['apt-sources'] ?? '',
      format: v.format,
      sde,
      // debootstrap's tree differs from mmdebstrap's: its own entries (the mmdebstrap key is unchanged)
      tool: tool === 'mmdebstrap' ? undefined : tool,
    }),
  );
}

/** Link (or copy across file systems) src to dest. */
function linkOrCopy(src: string, dest: string): void {
  try {
    linkSync(src, dest);
  } catch {
    copyFileSync(src, dest);
  }
}

// Fixed hook scripts: the values they use come in environment variables set by kiln.
const HOOK_SOURCES = '#!/bin/sh\nset -e\nmkdir -p "$1/etc/apt/sources.list.d"\ncp "$KILN_APT_SOURCES" "$1/etc/apt/sources.list.d/kiln.sources"\n';
const HOOK_MANIFEST = `#!/bin/sh\nset -e\nchroot "$1" dpkg-query -W -f '\${Package} \${Version} \${Architecture}\\n' > "$KILN_MANIFEST"\n`;
const hookWrapper = (user: string) => `#!/bin/sh\nset -e\nTARGET="$1"\nexport TARGET\nexec "$(dirname "$0")/${user}" "$@"\n`;
// debootstrap leaves files that change on every run; mmdebstrap removes or fixes them itself
const HOOK_NORMALISE = [
  '#!/bin/sh',
  'set -e',
  'cd "$1"',
  'rm -f var/cache/ldconfig/aux-cache var/log/bootstrap.log var/log/dpkg.log var/log/alternatives.log var/cache/apt/pkgcache.bin var/cache/apt/srcpkgcache.bin',
  'rm -rf var/log/apt/* var/lib/apt/lists/* var/cache/apt/archives/*.deb debootstrap',
  'mkdir -p var/lib/apt/lists/partial',
  '[ ! -e etc/machine-id ] || : > etc/machine-id',
  'rm -f var/lib/dbus/machine-id',
  '',
].join('\n');

/** Whether every directory from / down to dir can be entered by any user. */
function traversable(dir: string): boolean {
  let d = resolve(dir);
  for (;;) {
    try {
      if ((statSync(d).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    if (d === dirname(d)) return true;
    d = dirname(d);
  }
}

/**
 * Where mmdebstrap builds the tree. apt downloads as the _apt user only when _apt can reach the
 * tree, and then leaves /var/{lib/apt/lists,cache/apt/archives}/partial owned by _apt, otherwise
 * by root: the bytes of the tarball would depend on the permissions of the temp dir's parents.
 * So the tree is always built below a directory everyone can traverse.
 */
function scratchBase(ctx: BuildContext): string {
  const c = [tmpdir(), '/var/tmp', '/tmp'].find(traversable);
  if (!c) ctx.log('# warning: no world-traversable temp directory: apt downloads unsandboxed, the tarball differs from other hosts\n');
  return c ?? tmpdir();
}

async function build(ctx: BuildContext, dir: string, tool: 'mmdebstrap' | 'debootstrap'): Promise<void> {
  const o = ctx.options;
  const v = o.typed(OPTIONS);
  const format = v.format;
  const tar = join(dir, tarName(format));
  // a private scratch dir (mode 0755 so that _apt can reach the tree); hooks live in it: no shell
  // metacharacters in their paths, so mmdebstrap execs them directly
  const scratch = await mkdtemp(join(scratchBase(ctx), 'kiln-chroot-'));
  chmodSync(scratch, 0o755);
  const hooks = join(scratch, 'hooks');
  mkdirSync(hooks, { mode: 0o700 });
  try {
    const hookFiles: string[] = [];
    const hook = (name: string, text: string) => {
      const p = join(hooks, name);
      writeFileSync(p, text, { mode: 0o755 });
      chmodSync(p, 0o755);
      return p;
    };
    const env: Record<string, string> = { SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch), KILN_MANIFEST: join(hooks, 'manifest') };
    const sources = v['apt-sources']?.trim();
    if (sources) {
      env.KILN_APT_SOURCES = join(hooks, 'kiln.sources');
      writeFileSync(env.KILN_APT_SOURCES, sources + '\n');
      chmodSync(env.KILN_APT_SOURCES, 0o644);
      hookFiles.push(hook('10-sources', HOOK_SOURCES));
    }
    v.customize.forEach((p, i) => {
      const n = String(i + 1).padStart(2, '0');
      copyFileSync(p, join(hooks, `user-${n}`));
      chmodSync(join(hooks, `user-${n}`), 0o755);
      hookFiles.push(hook(`20-customize-${n}`, hookWrapper(`user-${n}`)));
    });
    hookFiles.push(hook('90-manifest', HOOK_MANIFEST));

    const { suite, architecture: arch, variant, mirror } = v;
    const components = v.components.join(',');
    const pkgs = packages(o);
    const rawTar = join(ctx.work, 'rootfs.tar');
    if (tool === 'mmdebstrap') {
      const args = ['mmdebstrap', `--variant=${variant}`, `--architectures=${arch}`, `--components=${components}`, '--format=tar'];
      if (pkgs.length) args.push(`--include=${pkgs.join(',')}`);
      for (const k of v.keyrings) args.push(`--keyring=${k}`);
      for (const h of hookFiles) args.push(`--customize-hook=${h}`);
      // extra `deb URI SUITE COMPONENTS` lines (e.g. bookworm-security) follow the main mirror
      args.push(suite, rawTar, mirror, ...v.mirrors);
      await ctx.run(args, { env: { ...env, TMPDIR: scratch } });
    } else {
      // debootstrap fallback: a directory, the same hooks, the known-variable files removed, then a
      // sorted tarball with clamped mtimes and numeric owners
      const root = join(scratch, 'root');
      const args = ['debootstrap', `--variant=${variant === 'minbase' || variant === 'buildd' ? variant : 'minbase'}`, `--arch=${arch}`, `--components=${components}`];
      if (pkgs.length) args.push(`--include=${pkgs.join(',')}`);
      for (const k of v.keyrings) args.push(`--keyring=${k}`);
      args.push(suite, root, mirror);
      await ctx.run(args, { env });
      for (const h of [...hookFiles, hook('95-normalise', HOOK_NORMALISE)]) await ctx.run([h, root], { env });
      await ctx.run(
        ['tar', '--sort=name', `--mtime=@${ctx.sourceDateEpoch}`, '--clamp-mtime', '--numeric-owner', '--format=pax', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '--xattrs', '-C', root, '-cf', rawTar, '.'],
        { env: { LC_ALL: 'C.UTF-8' } },
      );
      await rmrf(root);
    }
    if (format === 'tar') renameSync(rawTar, tar);
    // fixed script, paths as positional parameters
    // with the part's share of -j (xz stays in multi-threaded mode with one thread, +1: the same
    // bytes for any count; zstd's multi-threaded output does not depend on the count either)
    else await ctx.run(['sh', '-c', format === 'tar.xz' ? 'xz -T"$3" -6 -c -- "$1" > "$2"' : 'zstd -T"$4" -19 -q -c -- "$1" > "$2"', 'sh', rawTar, tar, xzThreads(ctx.jobs), String(Math.max(1, ctx.jobs))]);
    copyFileSync(env.KILN_MANIFEST!, join(dir, 'manifest'));
    // the cache is shared through hard links: nobody may write through them
    chmodSync(tar, 0o444);
    chmodSync(join(dir, 'manifest'), 0o444);
  } finally {
    await rmrf(scratch);
  }
}

const OPTIONS = {
  suite: { type: 'pattern', pattern: /^[a-z0-9][a-z0-9.+_-]*$/i, expected: 'a suite or codename', description: 'suite or codename', default: 'bookworm' },
  variant: { type: 'enum', choices: ['extract', 'custom', 'essential', 'apt', 'required', 'minbase', 'buildd', 'important', 'standard'], noun: 'variant', description: 'mmdebstrap variant: extract, custom, essential, apt, required, minbase, buildd, important, standard', default: 'minbase' },
  architecture: { type: 'pattern', pattern: /^[a-z0-9][a-z0-9.+_-]*$/i, expected: 'a Debian architecture', description: 'Debian architecture', default: 'amd64' },
  components: { type: 'list', pattern: /^[a-z0-9][a-z0-9/._-]*$/i, expected: 'a component name', description: 'archive components', default: 'main' },
  mirror: { type: 'pattern', pattern: /^[a-z][a-z0-9+.-]*:\/\/\S+$/i, expected: 'a mirror URL', description: 'mirror URL', default: 'http://deb.debian.org/debian' },
  mirrors: { type: 'lines', pattern: /^deb(-src)?\s+\S+:\/\/\S+\s+\S+(\s+\S+)*$/, expected: "an apt source line 'deb URI SUITE COMPONENT...'", description: "more apt sources, one 'deb URI SUITE COMPONENT...' line each (e.g. the security suite)" },
  packages: { type: 'list', pattern: /^,*[a-z0-9](?!.*,[^a-z0-9,])[a-z0-9+.:=~,-]*$/, expected: 'a package name', description: 'extra packages to include (whitespace or comma separated)' },
  keyrings: { type: 'paths', description: 'keyring files to verify the mirror with, one per line' },
  customize: { type: 'paths', description: 'hook scripts (one per line) run with the target as $1 and $TARGET' },
  'apt-sources': { type: 'string', multiline: true, description: 'deb822 sources written to /etc/apt/sources.list.d/kiln.sources' },
  format: { type: 'enum', choices: FORMATS, noun: 'format', description: 'tar, tar.xz or tar.zst', default: 'tar' },
  image: { type: 'bool', description: 'import the tarball as a local container image (tag in image-tag)', default: 'false' },
  directory: { type: 'bool', description: 'also extract the tree into rootfs/ (needs root for device nodes and owners)', default: 'false' },
  cache: { type: 'bool', description: 'use the content-keyed chroot cache', default: 'true' },
  bootstrapper: { type: 'enum', choices: ['auto', 'mmdebstrap', 'debootstrap'], noun: 'bootstrapper', description: 'auto (mmdebstrap, else debootstrap), mmdebstrap or debootstrap', default: 'auto' },
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'chroot',
  version: VERSION,
  description: 'Debian root file system (mmdebstrap) as a reproducible tarball and a local container image, cached by content',
  options: OPTIONS,
  innerJobs: true, // ctx.jobs: the tarball's xz/zstd threads
  validate(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    for (const name of ['customize', 'keyrings'] as const) for (const p of v[name]) if (!existsSync(p)) throw o.error(name, `file not found: ${p}`);
  },
  inputs(ctx) {
    const v = ctx.options.typed(OPTIONS);
    return [...v.customize, ...v.keyrings];
  },
  tools(ctx) {
    const v = ctx.options.typed(OPTIONS);
    const wanted = v.bootstrapper;
    const t: string[] = [wanted !== 'auto' ? wanted : which('mmdebstrap') || !which('debootstrap') ? 'mmdebstrap' : 'debootstrap'];
    if (v.format === 'tar.xz') t.push('xz');
    if (v.format === 'tar.zst') t.push('zstd');
    if (v.image) t.push('docker');
    if (v.directory) t.push('tar');
    return t;
  },
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const tool = bootstrapper(ctx.part, v.bootstrapper);
    const key = chrootKey(ctx, ctx.sourceDateEpoch, tool);
    const tar = tarName(v.format);
    let from: string;
    if (v.cache) {
      const entry = await cachedDir(join(ctx.cacheDir, 'chroots'), key, {
        complete: (d) => existsSync(join(d, tar)) && existsSync(join(d, 'manifest')),
        build: (tmp) => build(ctx, tmp, tool),
        log: ctx.log,
        manifest: true, // hashed on every hit: a damaged tarball is quarantined, never linked
      });
      from = entry.dir;
      ctx.log(entry.hit ? `# chroot cache hit: ${entry.dir} (${tool} not run)\n` : `# chroot built by ${tool}, cached in ${entry.dir}\n`);
    } else {
      from = join(ctx.work, 'uncached');
      mkdirSync(from, { recursive: true });
      await build(ctx, from, tool);
    }
    for (const f of [tar, 'manifest']) linkOrCopy(join(from, f), join(ctx.staging, f));
    writeFileSync(join(ctx.staging, 'key'), key + '\n');
    if (v.directory) {
      const root = join(ctx.staging, 'rootfs');
      mkdirSync(root);
      await ctx.run(['tar', '-x', '--numeric-owner', '--same-permissions', '--xattrs', '--xattrs-include=*', '-f', join(ctx.staging, tar), '-C', root]);
    }
    if (v.image) {
      const tag = imageTagForKey(key);
      await importImage(join(ctx.staging, tar), tag, { log: ctx.log, signal: ctx.signal, part: ctx.part });
      writeFileSync(join(ctx.staging, 'image-tag'), tag + '\n');
    }
  },
};
export default recipe;
