/**
 * kiln:rpmbuild: build an existing .spec with rpmbuild, on the host (Debian's rpm package) or in
 * a clean-room chroot (which then needs the `rpm` package).
 *
 *   [hello-rpm]
 *   recipe = kiln:rpmbuild
 *   spec = hello.spec
 *   sources =                          (files copied into SOURCES; a directory: its contents)
 *     hello-1.0.tar.gz
 *     patches/
 *   defines =                          ('name value' lines, each a --define)
 *     dist .kiln
 *   options = -ba                      (rpmbuild stage and extra arguments; this is the default)
 *
 * rpmbuild runs with its own _topdir in the scratch directory and, for reproducible output,
 * use_source_date_epoch_as_buildtime, clamp_mtime_to_source_date_epoch and _buildhost kiln, with
 * kiln's SOURCE_DATE_EPOCH; HOME points into the scratch directory so no ~/.rpmmacros leaks in.
 *
 * The source rpm stores the expanded spec, build scripts included, so every path rpmbuild
 * expands (%{_topdir}, %{buildroot}, %{SOURCE0}) ends up in it. The scratch directory differs per
 * build, so _topdir is a stable name, /tmp/kiln-rpmbuild/NAME (NAME = the spec's file name),
 * a symbolic link to the scratch directory: in a chroot the container's private /tmp holds it;
 * on the host a lock file (with the owner's pid) serializes builds of specs of the same name.
 * Binary packages land flat in the part's output (`${part:location}/*.rpm`), source packages in
 * SRPMS/.
 *
 * On Debian the rpm database is empty, so BuildRequires cannot be satisfied there: set
 * `nodeps = true` for specs that declare them (and install the tools yourself).
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { copyFile, cp, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { processAlive, walk } from '../lib/fsutil.js';
import { CLEAN_ROOM_OPTIONS, type BuildContext, type OptionSpec, type PartOptions, type Recipe } from '../kind.js';

const OPTIONS = {
  ...CLEAN_ROOM_OPTIONS,
  spec: { type: 'path', pattern: /\.spec$/, expected: 'a .spec file', description: 'the .spec file (relative to this file)', required: true },
  sources: { type: 'paths', description: 'files copied into SOURCES, one per line; a directory contributes its contents' },
  defines: { type: 'lines', pattern: /^[A-Za-z_][A-Za-z0-9_]*\s+\S/, expected: "a 'name value' line", description: "'name value' lines, each passed as --define 'name value'" },
  options: { type: 'string', multiline: true, description: 'rpmbuild stage and extra arguments, whitespace separated', default: '-ba' },
  nodeps: { type: 'bool', description: 'do not check BuildRequires (the rpm database of a Debian host is empty)', default: 'false' },
  environment: { type: 'env', description: 'KEY=VALUE lines added to the build environment' },
} as const satisfies Record<string, OptionSpec>;

function words(s: string | undefined): string[] {
  return s ? s.split(/\s+/).filter(Boolean) : [];
}

/** 'name value' lines (checked by the option's pattern) as [name, value] pairs. */
function parseDefines(lines: string[]): Array<[string, string]> {
  return lines.map((l) => {
    const m = /^(\S+)\s+(.*)$/.exec(l)!;
    return [m[1]!, m[2]!];
  });
}

/** Every file below dir (or dir itself), mtimes clamped to the epoch: rpmbuild copies them into the SRPM. */
function clampMtimes(path: string, sde: number): void {
  const files = statSync(path).isDirectory() ? [path, ...walk(path).map((r) => join(path, r))] : [path];
  for (const f of files) {
    const st = lstatSync(f);
    if (!st.isSymbolicLink() && st.mtimeMs / 1000 > sde) utimesSync(f, sde, sde);
  }
}

const STABLE_ROOT = '/tmp/kiln-rpmbuild';

/** Point the stable path at target, holding a pid lock for it; returns the release function. */
async function linkStable(stable: string, target: string, ctx: BuildContext): Promise<() => void> {
  mkdirSync(STABLE_ROOT, { recursive: true });
  try {
    chmodSync(STABLE_ROOT, 0o1777); // shared by every user, like /tmp
  } catch {
    /* another user's: already sticky and world-writable */
  }
  const lock = `${stable}.lock`;
  let told = false;
  for (;;) {
    if (ctx.signal.aborted) throw new KilnError(`[${ctx.part}] interrupted while waiting for ${lock}`);
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let pid = NaN;
    try {
      pid = Number(readFileSync(lock, 'utf8').trim());
    } catch {
      continue; // released meanwhile
    }
    if (!Number.isInteger(pid) || !processAlive(pid)) {
      ctx.log(`# kiln: removing stale lock ${lock} (pid ${pid})\n`);
      rmSync(lock, { force: true });
      continue;
    }
    if (!told) ctx.log(`# kiln: waiting for ${lock} (another rpmbuild of the same spec name, pid ${pid})\n`);
    told = true;
    await new Promise((r) => setTimeout(r, 500));
  }
  rmSync(stable, { force: true, recursive: false });
  symlinkSync(target, stable);
  return () => {
    rmSync(stable, { force: true });
    rmSync(lock, { force: true });
  };
}

export const recipe: Recipe = {
  kind: 'rpmbuild',
  version: '1',
  description: 'build an existing .spec with rpmbuild (binary and source rpms), on the host or in a chroot',
  options: OPTIONS,
  cleanRoom: true,
  validate(ctx) {
    ctx.options.typed(OPTIONS);
  },
  inputs(ctx) {
    const v = ctx.options.typed(OPTIONS);
    return [v.spec, ...v.sources];
  },
  tools() {
    return ['rpmbuild'];
  },
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const spec = v.spec;
    if (!existsSync(spec) || !statSync(spec).isFile()) throw o.error('spec', `spec file not found: ${spec}`);
    const top = join(ctx.work, 'rpmbuild');
    for (const d of ['SPECS', 'SOURCES', 'BUILD', 'BUILDROOT', 'RPMS', 'SRPMS', 'tmp']) await mkdir(join(top, d), { recursive: true });
    const home = join(ctx.work, 'home');
    await mkdir(home, { recursive: true });
    const specCopy = join(top, 'SPECS', basename(spec));
    await copyFile(spec, specCopy);
    for (const s of v.sources) {
      if (!existsSync(s)) throw o.error('sources', `source not found: ${s}`);
      if (statSync(s).isDirectory()) await cp(s, join(top, 'SOURCES'), { recursive: true, verbatimSymlinks: true });
      else await copyFile(s, join(top, 'SOURCES', basename(s)));
    }
    clampMtimes(join(top, 'SOURCES'), ctx.sourceDateEpoch);
    clampMtimes(specCopy, ctx.sourceDateEpoch);
    // top is reached through the stable path, see above
    const stable = join(STABLE_ROOT, basename(spec, '.spec'));
    const defines: Array<[string, string]> = [
      ['_topdir', stable],
      ['_tmppath', join(stable, 'tmp')],
      ['use_source_date_epoch_as_buildtime', '1'],
      ['clamp_mtime_to_source_date_epoch', '1'],
      ['_buildhost', 'kiln'],
      ...parseDefines(v.defines),
    ];
    const argv = ['rpmbuild', ...words(v.options)];
    if (v.nodeps) argv.push('--nodeps');
    for (const [k, v] of defines) argv.push('--define', `${k} ${v}`);
    argv.push(join(stable, 'SPECS', basename(spec)));
    const env: Record<string, string> = { LC_ALL: 'C.UTF-8', TZ: 'UTC', ...v.environment, HOME: home, SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch) };
    if (v.chroot) {
      // the container's /tmp is its own: make the link there, then build (values reach sh through the environment)
      const script = 'mkdir -p "${KILN_STABLE%/*}"\nln -s "$KILN_TOP" "$KILN_STABLE"\nexec "$@"';
      await ctx.run(['sh', '-ec', script, 'sh', ...argv], { cwd: top, env: { ...env, KILN_STABLE: stable, KILN_TOP: top } });
    } else {
      const release = await linkStable(stable, top, ctx);
      try {
        await ctx.run(argv, { cwd: top, env });
      } finally {
        release();
      }
    }
    const binaries = walk(join(top, 'RPMS')).map((r) => join(top, 'RPMS', r)).filter((f) => f.endsWith('.rpm')).sort();
    const sources = readdirSync(join(top, 'SRPMS')).filter((f) => f.endsWith('.rpm')).sort();
    if (!binaries.length && !sources.length) throw new KilnError(`[${ctx.part}] rpmbuild ${words(v.options).join(' ')} produced no rpm`);
    const seen = new Set<string>();
    for (const f of binaries) {
      const name = basename(f);
      if (seen.has(name)) throw new KilnError(`[${ctx.part}] rpmbuild produced two packages named ${name}`);
      seen.add(name);
      await copyFile(f, join(ctx.staging, name));
    }
    if (sources.length) await mkdir(join(ctx.staging, 'SRPMS'));
    for (const f of sources) await copyFile(join(top, 'SRPMS', f), join(ctx.staging, 'SRPMS', f));
    ctx.log(`# kiln: collected ${[...binaries.map((f) => basename(f)), ...sources.map((f) => `SRPMS/${f}`)].join(' ')}\n`);
  },
};
export default recipe;
