/**
 * kiln:chroot: a Debian (or Ubuntu-style) root file system made by mmdebstrap (debootstrap as
 * fallback), as a reproducible tarball, optionally imported as a local container image.
 *
 * Cached by content in CACHE/chroots/KEY/ (KEY = hash of every option, hook contents, the
 * recipe version and SOURCE_DATE_EPOCH): the same options give the cached chroot, in another
 * project or after `kiln clean`, without running mmdebstrap. Outputs (hard links into the cache):
 *   rootfs.tar[.xz|.zst]   the file system (mmdebstrap honours SOURCE_DATE_EPOCH: same mirror
 *                          state and options -> same bytes)
 *   manifest               installed packages and versions (dpkg-query -W)
 *   image-tag              the container image (kiln/chroot:KEY12), when image = true
 * Customize hooks are the user's scripts, run by mmdebstrap with the target as $1 and as $TARGET
 * (like ganeti-instance-debootstrap's CUSTOMIZE_DIR); they are copied, never pasted into a shell.
 */
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { importImage } from '../lib/docker.js';
import { tmpSibling } from '../lib/fsutil.js';
import { which } from '../lib/tools.js';
import { sha256 } from '../engine/hash.js';
import type { BuildContext, PlanContext, Recipe } from '../recipe.js';

const VERSION = '1';

function words(s: string | undefined): string[] {
  return (s ?? '').split(/[\s,]+/).filter(Boolean);
}

function tarName(format: string): string {
  return format === 'tar' ? 'rootfs.tar' : `rootfs.${format}`;
}

/** The content key of a chroot: options, hook contents, SOURCE_DATE_EPOCH. */
export function chrootKey(ctx: PlanContext | BuildContext, sde: number): string {
  const o = ctx.options;
  const hooks = o.paths('customize').map((p) => sha256(readFileSync(p)));
  const keyrings = o.paths('keyrings').map((p) => sha256(readFileSync(p)));
  return sha256(
    JSON.stringify({
      v: VERSION,
      suite: o.get('suite')!.trim(),
      variant: o.get('variant')!.trim(),
      arch: o.get('architecture')!.trim(),
      components: words(o.get('components')),
      mirror: o.get('mirror')!.trim(),
      mirrors: o.lines('mirrors'),
      packages: words(o.get('packages')).sort(),
      hooks,
      keyrings,
      sources: o.get('apt-sources') ?? '',
      format: o.get('format')!.trim(),
      sde,
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

async function build(ctx: BuildContext, dir: string): Promise<void> {
  const o = ctx.options;
  const format = o.get('format')!.trim();
  const tar = join(dir, tarName(format));
  const hookDir = join(ctx.work, 'hooks');
  mkdirSync(hookDir, { recursive: true });
  o.paths('customize').forEach((p, i) => {
    const n = String(i + 1).padStart(2, '0');
    copyFileSync(p, join(hookDir, `user-${n}`));
    chmodSync(join(hookDir, `user-${n}`), 0o755);
    writeFileSync(join(hookDir, `customize${n}.sh`), `#!/bin/sh\nset -e\nTARGET="$1"\nexport TARGET\nexec "$(dirname "$0")/user-${n}" "$@"\n`, { mode: 0o755 });
  });
  const args = [
    'mmdebstrap',
    `--variant=${o.get('variant')!.trim()}`,
    `--architectures=${o.get('architecture')!.trim()}`,
    `--components=${words(o.get('components')).join(',')}`,
    `--format=tar`,
  ];
  const pkgs = words(o.get('packages'));
  if (pkgs.length) args.push(`--include=${pkgs.join(',')}`);
  for (const k of o.paths('keyrings')) args.push(`--keyring=${k}`);
  if (o.paths('customize').length) args.push(`--hook-dir=${hookDir}`);
  if (o.get('apt-sources')?.trim()) {
    const src = join(ctx.work, 'kiln.sources');
    writeFileSync(src, o.get('apt-sources')!.trim() + '\n');
    args.push(`--customize-hook=upload ${src} /etc/apt/sources.list.d/kiln.sources`);
  }
  // the package list, written inside, copied out as the manifest, then removed
  const manifestDir = join(ctx.work, 'manifest-dir');
  args.push(
    `--customize-hook=mkdir -p "$1/tmp/kiln-manifest" && chroot "$1" dpkg-query -W -f '\${Package} \${Version} \${Architecture}\\n' > "$1/tmp/kiln-manifest/manifest"`,
    `--customize-hook=sync-out /tmp/kiln-manifest ${manifestDir}`,
    '--customize-hook=rm -rf "$1/tmp/kiln-manifest"',
  );
  const rawTar = join(ctx.work, 'rootfs.tar');
  // extra `deb URI SUITE COMPONENTS` lines (e.g. bookworm-security) follow the main mirror
  args.push(o.get('suite')!.trim(), rawTar, o.get('mirror')!.trim(), ...o.lines('mirrors'));
  mkdirSync(join(ctx.work, 'manifest-dir'), { recursive: true });
  if (which('mmdebstrap')) {
    await ctx.run(args, { env: { SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch), TMPDIR: ctx.work } });
  } else {
    // debootstrap fallback: a directory, then a sorted, clamped tarball
    const root = join(ctx.work, 'root');
    await ctx.run(['debootstrap', `--variant=${o.get('variant')!.trim() === 'minbase' ? 'minbase' : 'buildd'}`, `--arch=${o.get('architecture')!.trim()}`,
      ...(pkgs.length ? [`--include=${pkgs.join(',')}`] : []), o.get('suite')!.trim(), root, o.get('mirror')!.trim()]);
    await ctx.run(['chroot', root, 'dpkg-query', '-W', '-f', '${Package} ${Version} ${Architecture}\\n'], { capture: true }).then((r) => writeFileSync(join(ctx.work, 'manifest-dir', 'manifest'), r.stdout));
    await ctx.run(['tar', '--sort=name', `--mtime=@${ctx.sourceDateEpoch}`, '--clamp-mtime', '--numeric-owner', '-C', root, '-cf', rawTar, '.']);
  }
  if (format === 'tar') renameSync(rawTar, tar);
  else await ctx.run(['sh', '-c', format === 'tar.xz' ? 'xz -T2 -6 -c "$1" > "$2"' : 'zstd -T2 -19 -q -c "$1" > "$2"', 'sh', rawTar, tar]);
  copyFileSync(join(ctx.work, 'manifest-dir', 'manifest'), join(dir, 'manifest'));
}

export const recipe: Recipe = {
  kind: 'chroot',
  version: VERSION,
  description: 'Debian root file system (mmdebstrap) as a reproducible tarball and a local container image, cached by content',
  options: {
    suite: { description: 'suite or codename', default: 'bookworm' },
    variant: { description: 'mmdebstrap variant: minbase, buildd, important, standard, ...', default: 'minbase' },
    architecture: { description: 'Debian architecture', default: 'amd64' },
    components: { description: 'archive components', default: 'main' },
    mirror: { description: 'mirror URL', default: 'http://deb.debian.org/debian' },
    mirrors: { description: "more apt sources, one 'deb URI SUITE COMPONENT...' line each (e.g. the security suite)" },
    packages: { description: 'extra packages to include (whitespace or comma separated)' },
    keyrings: { description: 'keyring files to verify the mirror with, one per line' },
    customize: { description: 'hook scripts (one per line) run with the target as $1 and $TARGET' },
    'apt-sources': { description: 'deb822 sources written to /etc/apt/sources.list.d/kiln.sources' },
    format: { description: 'tar, tar.xz or tar.zst', default: 'tar' },
    image: { description: 'import the tarball as a local container image', default: 'false' },
    cache: { description: 'use the content-keyed chroot cache', default: 'true' },
  },
  validate(ctx) {
    const o = ctx.options;
    if (!['tar', 'tar.xz', 'tar.zst'].includes(o.get('format')!.trim())) throw o.error('format', `unknown format '${o.get('format')}' (tar, tar.xz, tar.zst)`);
    o.bool('image', false);
    o.bool('cache', true);
    for (const p of [...o.paths('customize'), ...o.paths('keyrings')]) if (!existsSync(p)) throw o.error(p.endsWith('.gpg') ? 'keyrings' : 'customize', `file not found: ${p}`);
    for (const l of o.lines('mirrors')) if (!/^deb(-src)?\s+\S+:\/\/\S+\s+\S+(\s+\S+)*$/.test(l)) throw o.error('mirrors', `expected 'deb URI SUITE COMPONENT...', got '${l}'`);
    for (const pk of words(o.get('packages'))) if (!/^[a-z0-9][a-z0-9+.:-]*$/.test(pk)) throw o.error('packages', `not a package name: '${pk}'`);
  },
  inputs(ctx) {
    return [...ctx.options.paths('customize'), ...ctx.options.paths('keyrings')];
  },
  tools(ctx) {
    return [which('mmdebstrap') ? 'mmdebstrap' : 'debootstrap', ...(ctx.options.bool('image', false) ? ['docker'] : [])];
  },
  async install(ctx) {
    const o = ctx.options;
    const key = chrootKey(ctx, ctx.sourceDateEpoch);
    const cached = join(ctx.cacheDir, 'chroots', key);
    const tar = tarName(o.get('format')!.trim());
    if (o.bool('cache', true) && existsSync(join(cached, tar))) {
      ctx.log(`# chroot cache hit: ${cached}\n`);
    } else {
      const tmp = tmpSibling(cached);
      mkdirSync(tmp, { recursive: true });
      try {
        await build(ctx, tmp);
        if (o.bool('cache', true)) {
          mkdirSync(join(ctx.cacheDir, 'chroots'), { recursive: true });
          await rm(cached, { recursive: true, force: true });
          renameSync(tmp, cached);
        } else {
          for (const f of [tar, 'manifest']) linkOrCopy(join(tmp, f), join(ctx.staging, f));
        }
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    }
    if (o.bool('cache', true)) for (const f of [tar, 'manifest']) linkOrCopy(join(cached, f), join(ctx.staging, f));
    writeFileSync(join(ctx.staging, 'key'), key + '\n');
    if (o.bool('image', false)) {
      const tag = `kiln/chroot:${key.slice(0, 16)}`;
      await importImage(join(ctx.staging, tar), tag, { log: ctx.log, signal: ctx.signal, part: ctx.part });
      writeFileSync(join(ctx.staging, 'image-tag'), tag + '\n');
    }
  },
};
export default recipe;
