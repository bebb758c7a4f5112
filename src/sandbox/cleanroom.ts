/**
 * Clean-room builds: a part with `chroot = ${some-chroot:location}` runs its commands inside that
 * chroot through runInChroot (src/sandbox/chroot-run.ts): a Docker container from the chroot's image
 * when an engine answers (or can be started), else `unshare` + `chroot` over the chroot's tree
 * (KILN_CHROOT_ENGINE=docker|unshare forces one). The part's work and staging directories are
 * mounted read-write at the same paths, the project, the cache and the dependencies' outputs
 * read-only; no network unless the part sets `network = true`.
 *
 * Both engines give the command the same environment (PATH, HOME=/root, LC_ALL=C.UTF-8, TZ=UTC,
 * SOURCE_DATE_EPOCH, then the recipe's variables) and the same host name (`kiln-build`), so the
 * same part builds the same bytes whichever engine, and whichever host, runs it.
 */
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { defaultEngine, runInChroot, type ChrootEngine, type Mount } from './chroot-run.js';
import { ConfigError } from '../lib/errors.js';
import type { RunOptions, RunResult } from '../lib/exec.js';
import type { BuildContext } from '../kind.js';

export const BUILD_HOSTNAME = 'kiln-build';
const BUILD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A ctx.run that runs every command inside the chroot (Docker, or unshare without an engine). */
export async function cleanRoomRunner(ctx: BuildContext, chrootDir: string, network: boolean, baseOpts: RunOptions, engine?: ChrootEngine): Promise<BuildContext['run']> {
  if (!['rootfs.tar', 'rootfs.tar.xz', 'rootfs.tar.zst', 'image-tag', 'rootfs/etc'].some((f) => existsSync(join(chrootDir, f)))) {
    throw new ConfigError(`${chrootDir} is not the output of a kiln:chroot part (no rootfs.tar, image-tag or rootfs/)`, { section: ctx.part, option: 'chroot' });
  }
  const mounts: Mount[] = [
    { host: ctx.work, guest: ctx.work },
    { host: ctx.staging, guest: ctx.staging },
    { host: ctx.projectDir, guest: ctx.projectDir, readonly: true },
  ];
  // downloads (archives a recipe unpacks with a command) are read from the cache
  if (existsSync(ctx.cacheDir)) mounts.push({ host: ctx.cacheDir, guest: ctx.cacheDir, readonly: true });
  const dl = ctx.downloadCache;
  if (dl && existsSync(dl) && !(dl + '/').startsWith(ctx.cacheDir + '/')) mounts.push({ host: dl, guest: dl, readonly: true });
  for (const loc of Object.values(ctx.deps)) {
    if (existsSync(loc)) mounts.push({ host: realpathSync(loc), guest: loc, readonly: true });
  }
  const eng = engine ?? (await defaultEngine());
  baseOpts.log?.(`# kiln: clean-room engine: ${eng}${eng === 'unshare' ? ' (no Docker engine answers, or KILN_CHROOT_ENGINE=unshare)' : ''}\n`);
  const base: Record<string, string> = { PATH: BUILD_PATH, HOME: '/root', LC_ALL: 'C.UTF-8', TZ: 'UTC', SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch) };
  return (argv: string[], o: RunOptions = {}): Promise<RunResult> => {
    const opts = { ...baseOpts, ...o };
    const env = { ...base, ...Object.fromEntries(Object.entries(o.env ?? {}).filter((e): e is [string, string] => e[1] !== undefined)) };
    return runInChroot({
      chroot: chrootDir,
      argv,
      mounts,
      env,
      workdir: o.cwd ?? ctx.work,
      network,
      hostname: BUILD_HOSTNAME,
      engine: eng,
      cacheDir: ctx.cacheDir,
      part: ctx.part,
      signal: opts.signal,
      log: opts.log,
      logFile: opts.logFile,
      input: opts.input,
      capture: opts.capture,
      allowFailure: opts.allowFailure,
      timeoutMs: opts.timeoutMs,
    });
  };
}
