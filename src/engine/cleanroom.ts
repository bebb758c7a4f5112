/**
 * Clean-room builds: a part with `chroot = ${some-chroot:location}` runs its commands in a
 * container made from that chroot (the local image the chroot recipe imported), with the part's
 * work and staging directories mounted read-write at the same paths, the project and the
 * dependencies' outputs read-only, and no network unless the part sets `network = true`.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { importImage, runContainer, type Mount } from '../lib/docker.js';
import { ConfigError } from '../lib/errors.js';
import type { RunOptions, RunResult } from '../lib/exec.js';
import type { BuildContext } from '../recipe.js';

/** The image tag of a chroot output directory (imported now if the chroot was built without image = true). */
export async function chrootImage(dir: string, opts: RunOptions, where: { part: string }): Promise<string> {
  const tagFile = join(dir, 'image-tag');
  if (existsSync(tagFile)) return readFileSync(tagFile, 'utf8').trim();
  const key = existsSync(join(dir, 'key')) ? readFileSync(join(dir, 'key'), 'utf8').trim() : undefined;
  const tar = ['rootfs.tar', 'rootfs.tar.xz', 'rootfs.tar.zst'].map((f) => join(dir, f)).find(existsSync);
  if (!key || !tar) throw new ConfigError(`${dir} is not the output of a kiln:chroot part (no rootfs.tar and key)`, { section: where.part, option: 'chroot' });
  const tag = `kiln/chroot:${key.slice(0, 16)}`;
  await importImage(tar, tag, opts);
  return tag;
}

/** A ctx.run that runs every command inside the chroot's container. */
export async function cleanRoomRunner(ctx: BuildContext, chrootDir: string, network: boolean, baseOpts: RunOptions): Promise<BuildContext['run']> {
  const image = await chrootImage(chrootDir, baseOpts, { part: ctx.part });
  const mounts: Mount[] = [
    { host: ctx.work, guest: ctx.work },
    { host: ctx.staging, guest: ctx.staging },
    { host: ctx.projectDir, guest: ctx.projectDir, readonly: true },
  ];
  // downloads (archives a recipe unpacks with a command) are read from the cache
  if (existsSync(ctx.cacheDir)) mounts.push({ host: ctx.cacheDir, guest: ctx.cacheDir, readonly: true });
  for (const loc of Object.values(ctx.deps)) {
    if (existsSync(loc)) mounts.push({ host: realpathSync(loc), guest: loc, readonly: true });
  }
  // nested mounts must come after their parents
  mounts.sort((a, b) => a.guest.length - b.guest.length);
  return (argv: string[], o: RunOptions = {}): Promise<RunResult> =>
    runContainer(
      { image, argv, mounts, env: Object.fromEntries(Object.entries(o.env ?? {}).filter((e): e is [string, string] => e[1] !== undefined)), cwd: o.cwd ?? ctx.work, network, labels: { 'kiln.part': ctx.part } },
      { ...baseOpts, ...o, env: undefined, cwd: undefined },
    );
}
