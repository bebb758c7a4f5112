/**
 * kiln:dpkg-buildpackage: build an existing Debian source package (a directory with debian/, or
 * a .dsc) with the distribution's own tools, on the host or in a clean-room chroot.
 *
 *   [hello-deb]
 *   recipe = kiln:dpkg-buildpackage
 *   source = hello/                     (a directory with debian/, or hello_1.0-1.dsc)
 *   options = -us -uc -b                (extra dpkg-buildpackage arguments; this is the default)
 *   chroot = ${buildenv:location}       (optional: build in a container made from this chroot)
 *   build-depends = true                (chroot only: install the Build-Depends first)
 *   environment = DEB_BUILD_OPTIONS=nocheck
 *
 * The source is copied into a scratch directory (dpkg-buildpackage writes its results next to
 * the source tree, in the parent directory); every .deb, .udeb, .ddeb, .buildinfo and .changes the
 * build produces (and .dsc / source tarballs when `options` asks for a source build) lands flat
 * in the part's output, so `${hello-deb:location}/*.deb` feeds kiln:apt-repo.
 *
 * SOURCE_DATE_EPOCH is kiln's (not the changelog's), LC_ALL=C.UTF-8 and TZ=UTC unless
 * `environment` says otherwise: two builds of the same source give the same bytes.
 *
 * build-depends = true, in a chroot: installing packages needs the network, the build must not
 * have it. Each command runs in a fresh container, so the work is split in two: first a container
 * WITH network runs `apt-get update` and `apt-get build-dep --download-only` into a private apt
 * state directory under the work dir (the chroot image stays untouched); then the build container,
 * WITHOUT network, installs those already-downloaded packages (`apt-get build-dep --no-download`)
 * and runs dpkg-buildpackage in the same container.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { copyFile, cp, mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { cleanRoomRunner } from '../sandbox/cleanroom.js';
import { KilnError } from '../lib/errors.js';
import { parse, parseChecksums } from '../pkg/deb822.js';
import { CLEAN_ROOM_OPTIONS, type BuildContext, type OptionSpec, type PartOptions, type PlanContext, type Recipe } from '../kind.js';

/** What the build leaves next to the source tree and the part keeps. */
const RESULT = /\.(deb|udeb|ddeb|buildinfo|changes|dsc|tar\.(gz|xz|bz2|lzma|zst)|diff\.gz)$/;

const OPTIONS = {
  ...CLEAN_ROOM_OPTIONS,
  source: { type: 'path', description: 'a source tree with debian/, or a .dsc (its files next to it); relative to this file', required: true },
  options: { type: 'string', multiline: true, description: 'dpkg-buildpackage arguments, whitespace separated', default: '-us -uc -b' },
  'build-depends': { type: 'bool', description: 'in a chroot: install the Build-Depends first (downloaded with network, installed and built without)', default: 'false' },
  environment: { type: 'env', description: 'KEY=VALUE lines added to the build environment (e.g. DEB_BUILD_OPTIONS=nocheck)' },
} as const satisfies Record<string, OptionSpec>;

function words(s: string | undefined): string[] {
  return s ? s.split(/\s+/).filter(Boolean) : [];
}

const isDsc = (p: string) => p.endsWith('.dsc');

/** The files a .dsc lists (Files / Checksums-Sha256), which must sit next to it. */
function dscFiles(o: PartOptions, dsc: string): string[] {
  let text: string;
  try {
    text = readFileSync(dsc, 'utf8');
  } catch (e) {
    throw o.error('source', `cannot read ${dsc}: ${(e as Error).message}`);
  }
  let names: string[];
  try {
    const para = parse(text, { file: dsc }).paragraphs[0];
    const field = para?.get('Checksums-Sha256') ?? para?.get('Files');
    if (!para || !field) throw new Error('no Files or Checksums-Sha256 field');
    names = parseChecksums(field).map((c) => c.name);
  } catch (e) {
    throw o.error('source', `${dsc} is not a valid .dsc: ${(e as Error).message}`);
  }
  for (const n of names) if (n.includes('/') || n.startsWith('.')) throw o.error('source', `${dsc} lists a file with a path: ${n}`);
  return names.map((n) => join(dirname(dsc), n));
}

function sourcePath(ctx: PlanContext | BuildContext): string {
  return ctx.options.typed(OPTIONS).source;
}

export const recipe: Recipe = {
  kind: 'dpkg-buildpackage',
  version: '1',
  description: 'build an existing Debian source package (debian/ directory or .dsc) with dpkg-buildpackage, on the host or in a chroot',
  options: OPTIONS,
  cleanRoom: true,
  validate(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    if (v['build-depends'] && !v.chroot) {
      throw o.error('build-depends', 'installing build dependencies needs a chroot (kiln does not install packages on the host; install them yourself, dpkg-buildpackage checks them)');
    }
  },
  inputs(ctx) {
    const src = sourcePath(ctx);
    if (!isDsc(src) || !existsSync(src)) return [src];
    return [src, ...dscFiles(ctx.options, src)];
  },
  tools(ctx) {
    return ['dpkg-buildpackage', ...(isDsc(sourcePath(ctx)) ? ['dpkg-source'] : [])];
  },
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const src = v.source;
    const build = join(ctx.work, 'build');
    await mkdir(build, { recursive: true });
    let tree: string;
    if (isDsc(src)) {
      if (!existsSync(src) || !statSync(src).isFile()) throw o.error('source', `.dsc not found: ${src}`);
      const files = dscFiles(o, src);
      for (const f of files) if (!existsSync(f)) throw o.error('source', `${basename(src)} lists ${basename(f)}, which is not next to it (${f})`);
      for (const f of [src, ...files]) await copyFile(f, join(build, basename(f)));
      tree = join(build, 'source');
    } else {
      if (!existsSync(src) || !statSync(src).isDirectory()) throw o.error('source', `source not found: ${src} (a directory with debian/, or a .dsc)`);
      if (!existsSync(join(src, 'debian', 'control'))) throw o.error('source', `${src} has no debian/control`);
      tree = join(build, basename(src) || 'source');
      await cp(src, tree, { recursive: true, verbatimSymlinks: true });
    }
    const before = new Set(readdirSync(build));
    const env: Record<string, string> = {
      LC_ALL: 'C.UTF-8',
      TZ: 'UTC',
      ...v.environment,
      SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch),
    };
    if (isDsc(src)) await ctx.run(['dpkg-source', '-x', basename(src), tree], { cwd: build, env });
    const dpkgBuildpackage = ['dpkg-buildpackage', ...words(v.options)];
    const chroot = v.chroot;
    if (chroot && v['build-depends']) {
      // private apt state in the work dir: lists and archives survive from one container to the next
      const apt = join(ctx.work, 'apt');
      await mkdir(join(apt, 'lists', 'partial'), { recursive: true });
      await mkdir(join(apt, 'archives', 'partial'), { recursive: true });
      const aptOpts = ['-o', `Dir::State::Lists=${apt}/lists`, '-o', `Dir::Cache::Archives=${apt}/archives`, '-o', 'APT::Sandbox::User=root', '-o', 'Debug::NoLocking=1'];
      ctx.log('# kiln: downloading build dependencies (network on for this step only)\n');
      const online = await cleanRoomRunner(ctx, chroot, true, { log: ctx.log, part: ctx.part, signal: ctx.signal });
      await online(['apt-get', ...aptOpts, '-q', 'update'], { cwd: tree, env });
      await online(['apt-get', ...aptOpts, '-q', '-y', '--download-only', 'build-dep', tree], { cwd: tree, env });
      ctx.log('# kiln: installing build dependencies and building (no network)\n');
      // the values reach the script through the environment, never pasted into it
      const script = 'apt-get -o "Dir::State::Lists=$KILN_APT/lists" -o "Dir::Cache::Archives=$KILN_APT/archives" -o APT::Sandbox::User=root -o Debug::NoLocking=1 -q -y --no-download build-dep "$KILN_TREE"\nexec "$@"';
      await ctx.run(['sh', '-ec', script, 'sh', ...dpkgBuildpackage], { cwd: tree, env: { ...env, DEBIAN_FRONTEND: 'noninteractive', KILN_APT: apt, KILN_TREE: tree } });
    } else {
      await ctx.run(dpkgBuildpackage, { cwd: tree, env });
    }
    const made = readdirSync(build).filter((f) => !before.has(f) && RESULT.test(f)).sort();
    if (!made.some((f) => /\.(deb|udeb|ddeb|dsc)$/.test(f))) {
      throw new KilnError(`[${ctx.part}] dpkg-buildpackage ${words(v.options).join(' ')} produced no package next to the source tree (found: ${made.join(', ') || 'nothing'})`);
    }
    for (const f of made) await copyFile(join(build, f), join(ctx.staging, f));
    ctx.log(`# kiln: collected ${made.join(' ')}\n`);
  },
};
export default recipe;
