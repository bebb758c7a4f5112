/**
 * Running a command inside a chroot made by kiln:chroot.
 *
 *   runInChroot({ chroot: '/…/out/parts/bookworm', argv: ['make', '-j2'], mounts: [...], workdir })
 *
 * Engine `docker` (default when a Docker engine answers or can be started): `docker run --rm
 * --network none` from the chroot's image (imported from its tarball when the part did not),
 * labelled kiln=1 / kiln.part=PART, removed on success, failure and abort.
 * Engine `unshare` (no Docker): `unshare --mount --pid --fork --kill-child [--net]`, the chroot's
 * tree (extracted once into CACHE/chroot-trees/KEY) under a throw-away overlay (a full copy when
 * overlayfs is unavailable), /proc, a minimal /dev, read-only /sys, bind mounts, then `chroot`.
 * Either way the command is an argument array and every value is one argv entry: the scripts
 * here are constant and take their values as positional parameters.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { cachedDir, defaultCacheDir } from '../lib/cache.js';
import {
  containerName,
  dockerRunArgs,
  ensureEngine,
  imageExists,
  imageTagForKey,
  importImage,
  PART_LABEL,
  removeContainer,
  runContainer,
  trackContainer,
  type Mount,
} from './docker.js';
import { KilnError, MissingToolError } from '../lib/errors.js';
import { run, type RunOptions, type RunResult } from '../lib/exec.js';
import { rmrf } from '../lib/fsutil.js';
import { which } from '../lib/tools.js';
import { hashFile, sha256 } from '../lib/hash.js';

export type { Mount } from './docker.js';
export type ChrootEngine = 'docker' | 'unshare';

/** What a chroot reference resolved to. */
export interface ChrootRef {
  /** the kiln:chroot output directory, when given one */
  dir?: string;
  tarball?: string;
  imageTag?: string;
  /** an extracted tree (rootfs/ of a chroot built with directory = true, or made by installBuildDeps) */
  rootDir?: string;
  /** content key (of the chroot, or of the tarball's bytes) */
  key?: string;
}

export interface ChrootSpec {
  /** a kiln:chroot output directory (`${some-chroot:location}`) */
  chroot?: string;
  tarball?: string;
  imageTag?: string;
  /** an already resolved reference */
  ref?: ChrootRef;
}

export interface RunInChrootOptions extends ChrootSpec {
  argv: string[];
  mounts?: Mount[];
  /** environment of the command (nothing else from the host leaks in) */
  env?: Record<string, string>;
  /** network access; default false: no interface but loopback */
  network?: boolean;
  /** working directory inside (default /) */
  workdir?: string;
  /** user name or uid[:gid] inside */
  user?: string;
  /** host name inside (docker --hostname; unshare --uts); default: docker's container id, or the host's name */
  hostname?: string;
  /** default: KILN_CHROOT_ENGINE, else docker when an engine answers or can be started, else unshare */
  engine?: ChrootEngine;
  /** labels on the container (docker); kiln=1 always, kiln.part=part when part is given */
  labels?: Record<string, string>;
  /** where extracted trees are kept for the unshare engine (default KILN_CACHE_DIR or ~/.cache/kiln) */
  cacheDir?: string;
  /** unshare engine only: run in rootDir itself instead of a throw-away overlay (installBuildDeps) */
  writable?: boolean;
  signal?: AbortSignal;
  log?: (chunk: string) => void;
  logFile?: string;
  part?: string;
  input?: string | Buffer;
  capture?: boolean;
  allowFailure?: boolean;
  timeoutMs?: number;
}

const TARBALLS = ['rootfs.tar', 'rootfs.tar.xz', 'rootfs.tar.zst'];

function readTrim(p: string): string | undefined {
  return existsSync(p) ? readFileSync(p, 'utf8').trim() || undefined : undefined;
}

/**
 * Resolve a chroot reference: a kiln:chroot output directory (tarball, key, image-tag, rootfs/),
 * a tarball, or an image tag.
 */
export function resolveChroot(spec: ChrootSpec | string, part?: string): ChrootRef {
  const s: ChrootSpec = typeof spec === 'string' ? (spec.startsWith('/') ? { chroot: spec } : { imageTag: spec }) : spec;
  if (s.ref) return s.ref;
  if (s.chroot) {
    const dir = s.chroot;
    const tarball = TARBALLS.map((f) => join(dir, f)).find((f) => existsSync(f));
    const rootDir = existsSync(join(dir, 'rootfs', 'etc')) ? join(dir, 'rootfs') : undefined;
    const ref: ChrootRef = { dir, tarball, rootDir, key: readTrim(join(dir, 'key')), imageTag: readTrim(join(dir, 'image-tag')) };
    if (!ref.tarball && !ref.imageTag && !ref.rootDir) {
      throw new KilnError(`${part ? `[${part}] ` : ''}${dir} is not the output of a kiln:chroot part (no rootfs.tar, image-tag or rootfs/)`);
    }
    return ref;
  }
  if (s.tarball) {
    if (!existsSync(s.tarball)) throw new KilnError(`${part ? `[${part}] ` : ''}chroot tarball not found: ${s.tarball}`);
    return { tarball: s.tarball };
  }
  if (s.imageTag) return { imageTag: s.imageTag };
  throw new KilnError('runInChroot: give chroot (a kiln:chroot output directory), tarball or imageTag');
}

/** The tarball's key: the chroot's key, or a hash of its bytes. */
async function tarKey(ref: ChrootRef): Promise<string> {
  ref.key ??= await hashFile(ref.tarball!);
  return ref.key;
}

/** The image of a chroot, imported from its tarball when there is none yet. */
export async function chrootImage(spec: ChrootSpec | string, opts: RunOptions = {}): Promise<string> {
  const ref = resolveChroot(spec, opts.part);
  if (ref.imageTag && (!ref.tarball || (await imageExists(ref.imageTag)))) return ref.imageTag;
  if (!ref.tarball) throw new KilnError(`${opts.part ? `[${opts.part}] ` : ''}chroot ${ref.dir ?? ref.rootDir} has no tarball to import as an image`);
  const tag = ref.imageTag ?? imageTagForKey(await tarKey(ref));
  await importImage(ref.tarball, tag, opts);
  ref.imageTag = tag;
  return tag;
}

let chosen: Promise<ChrootEngine> | undefined;
/** docker when an engine answers or can be started, else unshare (KILN_CHROOT_ENGINE overrides). */
export function defaultEngine(): Promise<ChrootEngine> {
  const forced = process.env.KILN_CHROOT_ENGINE;
  if (forced === 'docker' || forced === 'unshare') return Promise.resolve(forced);
  chosen ??= ensureEngine().then(
    () => 'docker' as const,
    () => 'unshare' as const,
  );
  return chosen;
}

/** An extracted tree of the chroot, for the unshare engine. */
async function chrootTree(ref: ChrootRef, cacheDir: string, opts: RunOptions): Promise<string> {
  if (ref.rootDir) return ref.rootDir;
  if (!ref.tarball) throw new KilnError(`${opts.part ? `[${opts.part}] ` : ''}the unshare engine needs the chroot's tarball or rootfs/ (an image tag alone needs Docker)`);
  const entry = await cachedDir(join(cacheDir, 'chroot-trees'), await tarKey(ref), {
    complete: (d) => existsSync(join(d, 'etc')),
    build: async (tmp) => {
      await run(['tar', '-x', '--numeric-owner', '--same-permissions', '-f', ref.tarball!, '-C', tmp], opts);
    },
    log: opts.log,
  });
  ref.rootDir = entry.dir;
  return entry.dir;
}

// Runs inside `unshare --mount --pid --fork`: builds the root (overlay over the tree, or a copy,
// or the tree itself), mounts /proc, a small /dev, /sys read-only and the bind mounts, then
// chroots. Constant text; everything variable arrives as positional parameters:
//   $1 tree  $2 scratch dir  $3 mode (overlay|copy|direct)  $4 network (0|1)  $5 user  $6 N mounts,
//   then N × (host guest ro), then the command (env -i … argv).
const UNSHARE_SCRIPT = `set -eu
tree=$1 scratch=$2 mode=$3 net=$4 user=$5 n=$6
shift 6
mount --make-rprivate /
if [ -n "\${KILN_HOSTNAME:-}" ]; then printf '%s' "$KILN_HOSTNAME" > /proc/sys/kernel/hostname; fi
case $mode in
  direct) root=$tree ;;
  overlay)
    root=$scratch/merged
    mkdir -p "$scratch/upper" "$scratch/work" "$root"
    if ! mount -t overlay overlay -o "lowerdir=$tree,upperdir=$scratch/upper,workdir=$scratch/work" "$root" 2>/dev/null; then
      cp -a "$tree/." "$root/"
    fi ;;
  *) root=$scratch/merged; mkdir -p "$root"; cp -a "$tree/." "$root/" ;;
esac
mkdir -p "$root/proc" "$root/dev" "$root/sys" "$root/tmp"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=755,nosuid tmpfs "$root/dev"
for d in null zero full random urandom tty; do
  : > "$root/dev/$d"
  mount --bind "/dev/$d" "$root/dev/$d"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys" 2>/dev/null || true
if [ "$net" = 1 ]; then
  rm -f "$root/etc/resolv.conf"
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
elif command -v ip >/dev/null 2>&1; then
  ip link set lo up 2>/dev/null || true
fi
i=0
while [ "$i" -lt "$n" ]; do
  host=$1 guest=$2 ro=$3
  shift 3
  if [ -d "$host" ]; then
    mkdir -p "$root$guest"
  else
    mkdir -p "$root$(dirname "$guest")"
    [ -e "$root$guest" ] || : > "$root$guest"
  fi
  mount --bind "$host" "$root$guest"
  if [ "$ro" = 1 ]; then mount -o remount,bind,ro "$root$guest"; fi
  i=$((i + 1))
done
if [ -n "$user" ]; then exec chroot --userspec="$user" "$root" "$@"; fi
exec chroot "$root" "$@"
`;

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function checkEnv(env: Record<string, string>): void {
  for (const k of Object.keys(env)) if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new KilnError(`not an environment variable name: '${k}'`);
}

/** Mounts sorted so that a parent is mounted before what is mounted inside it. */
function ordered(mounts: Mount[]): Mount[] {
  for (const m of mounts) {
    if (!m.guest.startsWith('/')) throw new KilnError(`mount target must be an absolute path: ${m.guest}`);
    if (!existsSync(m.host)) throw new KilnError(`mount source does not exist: ${m.host}`);
  }
  return [...mounts].sort((a, b) => a.guest.length - b.guest.length);
}

async function runUnshare(o: RunInChrootOptions, ref: ChrootRef, runOpts: RunOptions): Promise<RunResult> {
  if (process.getuid && process.getuid() !== 0) throw new KilnError('running in a chroot without Docker needs root (unshare --mount + chroot)');
  const packages: Record<string, string> = { unshare: 'util-linux', chroot: 'coreutils', mount: 'mount', tar: 'tar' };
  for (const t of ['unshare', 'chroot', 'mount', 'tar']) if (!which(t)) throw new MissingToolError(t, packages[t]!, o.part);
  const tree = await chrootTree(ref, o.cacheDir ?? defaultCacheDir(), runOpts);
  const scratch = await mkdtemp(join(tmpdir(), 'kiln-chroot-run-'));
  // overlayfs options are comma/colon separated: paths with those get a copy instead
  const mode = o.writable ? 'direct' : /[,:]/.test(tree + scratch) ? 'copy' : 'overlay';
  const env = { PATH: DEFAULT_PATH, HOME: o.user && o.user !== 'root' && o.user !== '0' ? '/tmp' : '/root', LC_ALL: 'C.UTF-8', ...o.env };
  checkEnv(env);
  const mounts = ordered(o.mounts ?? []);
  const argv = [
    'unshare', '--mount', '--pid', '--fork', '--kill-child', ...(o.network ? [] : ['--net']), ...(o.hostname ? ['--uts'] : []), '--',
    'sh', '-c', UNSHARE_SCRIPT, 'kiln-chroot', tree, scratch, mode, o.network ? '1' : '0', o.user ?? '', String(mounts.length),
    ...mounts.flatMap((m) => [m.host, m.guest, m.readonly ? '1' : '0']),
    '/usr/bin/env', '-i', `--chdir=${o.workdir ?? '/'}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...o.argv,
  ];
  try {
    return await run(argv, { ...runOpts, cleanEnv: true, env: { PATH: process.env.PATH ?? DEFAULT_PATH, ...(o.hostname ? { KILN_HOSTNAME: o.hostname } : {}) } });
  } finally {
    // the namespace (and every mount in it) is gone once unshare has exited
    await rmrf(scratch);
  }
}

/** Run argv inside a chroot; network off unless asked; always cleaned up (also on abort). */
export async function runInChroot(o: RunInChrootOptions): Promise<RunResult> {
  if (o.argv.length === 0) throw new KilnError('runInChroot: empty argv');
  const ref = resolveChroot(o, o.part);
  const runOpts: RunOptions = { signal: o.signal, log: o.log, logFile: o.logFile, part: o.part, input: o.input, capture: o.capture, allowFailure: o.allowFailure, timeoutMs: o.timeoutMs };
  const engine = o.engine ?? (ref.imageTag && !ref.tarball && !ref.rootDir ? 'docker' : await defaultEngine());
  if (engine === 'unshare') return runUnshare(o, ref, runOpts);
  const image = await chrootImage({ ref }, runOpts);
  checkEnv(o.env ?? {});
  return runContainer(
    {
      image,
      argv: o.argv,
      mounts: ordered(o.mounts ?? []),
      env: o.env,
      cwd: o.workdir,
      user: o.user,
      hostname: o.hostname,
      network: o.network ?? false,
      labels: { ...(o.part ? { [PART_LABEL]: o.part } : {}), ...o.labels },
    },
    runOpts,
  );
}

export interface InstallBuildDepsOptions extends ChrootSpec {
  /** Debian package names (with optional =version); build-dependency syntax is not parsed here */
  packages: string[];
  engine?: ChrootEngine;
  cacheDir?: string;
  signal?: AbortSignal;
  log?: (chunk: string) => void;
  logFile?: string;
  part?: string;
}

// apt-get inside, values as positional parameters; the package lists are dropped afterwards
const APT_SCRIPT = `set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends -- "$@"
apt-get clean
rm -rf /var/lib/apt/lists/*
`;

/**
 * A chroot with `packages` installed (apt-get with network, for this step only), cached by the
 * base chroot and the package list: docker → a committed image kiln/chroot-deps:HASH16;
 * unshare → a tree in CACHE/chroot-trees/. Build with the returned reference (network off).
 */
export async function installBuildDeps(o: InstallBuildDepsOptions): Promise<ChrootRef> {
  const pkgs = [...new Set(o.packages)].sort();
  for (const p of pkgs) if (!/^[a-z0-9][a-z0-9+.:=~-]*$/.test(p)) throw new KilnError(`${o.part ? `[${o.part}] ` : ''}not a package name: '${p}'`);
  const base = resolveChroot(o, o.part);
  if (!pkgs.length) return base;
  const runOpts: RunOptions = { signal: o.signal, log: o.log, logFile: o.logFile, part: o.part };
  const engine = o.engine ?? (base.imageTag && !base.tarball && !base.rootDir ? 'docker' : await defaultEngine());
  if (engine === 'docker') {
    const baseImage = await chrootImage({ ref: base }, runOpts);
    const id = (await run(['docker', 'image', 'inspect', '--format', '{{.Id}}', baseImage], runOpts)).stdout.trim();
    const tag = `kiln/chroot-deps:${sha256(JSON.stringify({ id, pkgs })).slice(0, 16)}`;
    if (await imageExists(tag)) {
      o.log?.(`# build dependencies already installed in ${tag}\n`);
      return { imageTag: tag };
    }
    await ensureEngine();
    const name = containerName();
    const labels = { [PART_LABEL]: o.part ?? 'installBuildDeps' };
    const kill = () => void removeContainer(name);
    o.signal?.addEventListener('abort', kill, { once: true });
    trackContainer(name);
    try {
      await run(dockerRunArgs({ image: baseImage, argv: ['sh', '-c', APT_SCRIPT, 'kiln-apt', ...pkgs], network: true, keep: true, labels }, name), runOpts);
      await run(['docker', 'commit', '--change', 'CMD ["/bin/sh"]', name, tag], runOpts);
    } finally {
      o.signal?.removeEventListener('abort', kill);
      await removeContainer(name);
    }
    return { imageTag: tag };
  }
  const cacheDir = o.cacheDir ?? defaultCacheDir();
  const baseTree = await chrootTree(base, cacheDir, runOpts);
  const key = sha256(JSON.stringify({ base: base.key ?? baseTree, pkgs }));
  const entry = await cachedDir(join(cacheDir, 'chroot-trees'), `deps-${key}`, {
    complete: (d) => existsSync(join(d, 'etc')),
    build: async (tmp) => {
      await run(['cp', '-a', '--reflink=auto', `${baseTree}/.`, tmp], runOpts);
      await runInChroot({ ref: { rootDir: tmp }, engine: 'unshare', writable: true, network: true, argv: ['sh', '-c', APT_SCRIPT, 'kiln-apt', ...pkgs], cacheDir, signal: o.signal, log: o.log, logFile: o.logFile, part: o.part });
    },
    log: o.log,
  });
  return { rootDir: entry.dir, key: `deps-${key}` };
}

/** Where a chroot reference lives, for messages. */
export function describeChroot(ref: ChrootRef): string {
  return ref.imageTag ?? (ref.dir ? basename(ref.dir) : ref.tarball ?? ref.rootDir ?? '?');
}
