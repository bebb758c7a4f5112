/**
 * The local Docker engine (Debian's docker.io): started when none answers, images made by
 * `docker import` of a chroot tarball (no registry), and containers run with argument arrays,
 * labelled `kiln=1` (plus `kiln.part=PART`) and always removed: on success, failure, abort, and
 * (synchronously) when the kiln process exits while one is still running.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KilnError, MissingToolError } from '../lib/errors.js';
import { run, type RunOptions, type RunResult } from '../lib/exec.js';
import { which } from '../lib/tools.js';

export const LABEL = 'kiln';
/** label carrying the part name on every container kiln starts */
export const PART_LABEL = 'kiln.part';

/** The image tag of a chroot with content key `key` (what kiln:chroot writes to image-tag). */
export function imageTagForKey(key: string): string {
  return `kiln/chroot:${key.slice(0, 16)}`;
}

async function probe(): Promise<{ ok: boolean; why: string }> {
  const r = await run(['docker', 'info', '--format', '{{.ServerVersion}}'], { allowFailure: true, timeoutMs: 15_000 }).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  return { ok: r.code === 0, why: (r.stderr || r.stdout).trim().split('\n').slice(-3).join('\n') };
}

function dockerdLogPath(): string {
  try {
    accessSync('/var/log', constants.W_OK);
    return '/var/log/kiln-dockerd.log';
  } catch {
    return join(tmpdir(), 'kiln-dockerd.log');
  }
}

let ensured: Promise<void> | undefined;
/**
 * Make sure a Docker engine answers; start dockerd in the background (detached, logging to
 * /var/log/kiln-dockerd.log) when none does. Errors say what is missing and how to fix it.
 */
export function ensureEngine(): Promise<void> {
  ensured ??= (async () => {
    if (!which('docker')) throw new MissingToolError('docker', 'docker.io');
    const first = await probe();
    if (first.ok) return;
    if (/permission denied/i.test(first.why)) {
      throw new KilnError(`the Docker engine refuses this user (${first.why}); run as root or add the user to the 'docker' group`);
    }
    if (!which('dockerd')) throw new MissingToolError('dockerd', 'docker.io');
    if (process.getuid && process.getuid() !== 0) {
      throw new KilnError(`no Docker engine answers (${first.why}) and starting dockerd needs root: run 'bash scripts/setup.sh' as root or start the docker service`);
    }
    const logPath = dockerdLogPath();
    const log = openSync(logPath, 'a');
    const d = spawn('dockerd', [], { detached: true, stdio: ['ignore', log, log] });
    d.on('error', () => {});
    d.unref();
    let last = first;
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 500));
      last = await probe();
      if (last.ok) return;
      if (d.exitCode !== null) break; // dockerd gave up (another one running, no cgroups, ...)
    }
    const tail = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n').slice(-8).join('\n') : '';
    throw new KilnError(`no Docker engine answers and dockerd did not start (${last.why}); see ${logPath}:\n${tail}`);
  })();
  ensured.catch(() => (ensured = undefined));
  return ensured;
}

/** Whether a Docker engine answers or can be started; the reason when not (for skipping tests). */
export async function engineAvailable(): Promise<{ ok: boolean; why?: string }> {
  try {
    await ensureEngine();
    return { ok: true };
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
}

export async function imageExists(tag: string): Promise<boolean> {
  const r = await run(['docker', 'image', 'inspect', '--format', '{{.Id}}', tag], { allowFailure: true });
  return r.code === 0;
}

/** Import a root file system tarball as image `tag` (skipped when the tag exists). */
export async function importImage(tarball: string, tag: string, opts: RunOptions = {}): Promise<void> {
  await ensureEngine();
  if (await imageExists(tag)) return;
  opts.log?.(`# docker import ${tarball} ${tag}\n`);
  await run(['docker', 'import', '--change', 'CMD ["/bin/sh"]', tarball, tag], opts);
}

// Every container this process starts carries SESSION_LABEL=SESSION. When the process exits
// (a second Ctrl-C makes the CLI exit at once, a crash) while any may still exist, they are
// removed synchronously, found by that label: this also covers a container that was created but
// whose start had not returned yet. (SIGKILL cannot be handled: `docker ps --filter label=kiln=1`.)
export const SESSION_LABEL = 'kiln.session';
export const SESSION = `${process.pid}-${Date.now().toString(36)}`;
const live = new Set<string>();
let exitHook = false;
function sessionCleanupAtExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    if (!live.size) return;
    const r = spawnSync('docker', ['ps', '-aq', '--filter', `label=${SESSION_LABEL}=${SESSION}`], { encoding: 'utf8', timeout: 10_000 });
    const ids = (r.stdout ?? '').split('\n').filter(Boolean);
    if (ids.length) spawnSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore', timeout: 20_000 });
  });
}
/** Labels every kiln container carries (kiln=1, the session, and kiln.part when given). */
export function kilnLabels(part?: string): Record<string, string> {
  return { [LABEL]: '1', [SESSION_LABEL]: SESSION, ...(part ? { [PART_LABEL]: part } : {}) };
}
/** A container (name or id) is about to exist: removed at exit unless untracked first. */
export function trackContainer(id: string): void {
  live.add(id);
  sessionCleanupAtExit();
}
export function untrackContainer(id: string): void {
  live.delete(id);
}

export interface Mount {
  host: string;
  guest: string;
  readonly?: boolean;
}

export interface ContainerRun {
  image: string;
  argv: string[];
  mounts?: Mount[];
  env?: Record<string, string>;
  cwd?: string;
  /** user name or uid[:gid] inside the container */
  user?: string;
  network?: boolean;
  /** extra labels (kiln=1 is always set) */
  labels?: Record<string, string>;
  /** keep the container after it exits (the caller commits and removes it); default: removed */
  keep?: boolean;
  /** container name (default: a unique kiln-PID-... name) */
  name?: string;
  /** host name inside (default: docker's, the container id) */
  hostname?: string;
}

let seq = 0;
export function containerName(): string {
  return `kiln-${process.pid}-${Date.now().toString(36)}-${seq++}`;
}

/** `docker rm -f` (never fails). */
export async function removeContainer(name: string): Promise<void> {
  await run(['docker', 'rm', '-f', name], { allowFailure: true }).catch(() => undefined);
  untrackContainer(name);
}

/** The `docker run` arguments for c (argument array; values are single argv entries). */
export function dockerRunArgs(c: ContainerRun, name: string, interactive = false): string[] {
  const args = ['docker', 'run', '--name', name, '--label', `${LABEL}=1`, '--label', `${SESSION_LABEL}=${SESSION}`];
  if (!c.keep) args.push('--rm');
  if (interactive) args.push('--interactive');
  for (const [k, v] of Object.entries(c.labels ?? {})) args.push('--label', `${k}=${v}`);
  if (!c.network) args.push('--network', 'none');
  for (const m of c.mounts ?? []) {
    if (m.host.includes(',') || m.guest.includes(',')) throw new KilnError(`cannot mount a path containing ',' into a container: ${m.host} -> ${m.guest}`);
    args.push('--mount', `type=bind,source=${m.host},target=${m.guest}${m.readonly ? ',readonly' : ''}`);
  }
  for (const [k, v] of Object.entries(c.env ?? {})) args.push('--env', `${k}=${v}`);
  if (c.cwd) args.push('--workdir', c.cwd);
  if (c.user) args.push('--user', c.user);
  if (c.hostname) args.push('--hostname', c.hostname);
  args.push('--', c.image, ...c.argv);
  return args;
}

/** Run argv in a fresh container (removed afterwards, killed on abort). Network off unless asked. */
export async function runContainer(c: ContainerRun, opts: RunOptions = {}): Promise<RunResult> {
  await ensureEngine();
  const name = c.name ?? containerName();
  const args = dockerRunArgs(c, name, opts.input !== undefined);
  const kill = () => void removeContainer(name);
  opts.signal?.addEventListener('abort', kill, { once: true });
  trackContainer(name);
  let exited = false; // `docker run` reported the container's exit status: --rm has removed it
  try {
    const r = await run(args, { ...opts, env: undefined, cwd: undefined });
    exited = r.code !== null && r.code < 125;
    return r;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    exited = typeof code === 'number' && code < 125;
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', kill);
    // on abort, timeout, a killed client or a docker error, remove it explicitly
    // (a kept container stays tracked until the caller removes it)
    if (opts.signal?.aborted || (!c.keep && !exited)) await removeContainer(name);
    else if (!c.keep) untrackContainer(name);
  }
}

/** Containers kiln started that still exist (for tests and clean-up); optionally of one part. */
export async function kilnContainers(part?: string): Promise<string[]> {
  const filter = part ? ['--filter', `label=${PART_LABEL}=${part}`] : ['--filter', `label=${LABEL}=1`];
  const r = await run(['docker', 'ps', '-a', ...filter, '--format', '{{.Names}}'], { allowFailure: true });
  return r.stdout.split('\n').filter(Boolean);
}
