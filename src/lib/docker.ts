/**
 * The local Docker engine (Debian's docker.io): started when none answers, images made by
 * `docker import` of a chroot tarball (no registry), and containers run with argument arrays,
 * labelled `kiln=1` and always removed (also on abort).
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { KilnError, MissingToolError } from './errors.js';
import { run, type RunOptions, type RunResult } from './exec.js';
import { which } from './tools.js';

export const LABEL = 'kiln';

async function answers(): Promise<boolean> {
  const r = await run(['docker', 'info', '--format', '{{.ServerVersion}}'], { allowFailure: true, timeoutMs: 15_000 }).catch(() => undefined);
  return !!r && r.code === 0;
}

let ensured: Promise<void> | undefined;
/** Make sure a Docker engine answers; start dockerd in the background when none does. */
export function ensureEngine(): Promise<void> {
  ensured ??= (async () => {
    if (!which('docker')) throw new MissingToolError('docker', 'docker.io');
    if (await answers()) return;
    if (!which('dockerd')) throw new MissingToolError('dockerd', 'docker.io');
    const log = openSync('/var/log/kiln-dockerd.log', 'a');
    const d = spawn('dockerd', [], { detached: true, stdio: ['ignore', log, log] });
    d.unref();
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 500));
      if (await answers()) return;
    }
    throw new KilnError('dockerd did not start (see /var/log/kiln-dockerd.log)');
  })();
  ensured.catch(() => (ensured = undefined));
  return ensured;
}

export async function imageExists(tag: string): Promise<boolean> {
  const r = await run(['docker', 'image', 'inspect', '--format', '{{.Id}}', tag], { allowFailure: true });
  return r.code === 0;
}

/** Import a root file system tarball as image `tag` (skipped when the tag exists). */
export async function importImage(tarball: string, tag: string, opts: RunOptions = {}): Promise<void> {
  await ensureEngine();
  if (await imageExists(tag)) return;
  await run(['docker', 'import', '--change', 'CMD ["/bin/sh"]', tarball, tag], opts);
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
  network?: boolean;
  /** extra labels (kiln=1 is always set) */
  labels?: Record<string, string>;
}

let seq = 0;
/** Run argv in a fresh container (removed afterwards, killed on abort). Network off unless asked. */
export async function runContainer(c: ContainerRun, opts: RunOptions = {}): Promise<RunResult> {
  await ensureEngine();
  const name = `kiln-${process.pid}-${Date.now().toString(36)}-${seq++}`;
  const args = ['docker', 'run', '--rm', '--name', name, '--label', `${LABEL}=1`];
  for (const [k, v] of Object.entries(c.labels ?? {})) args.push('--label', `${k}=${v}`);
  if (!c.network) args.push('--network', 'none');
  for (const m of c.mounts ?? []) args.push('--mount', `type=bind,source=${m.host},target=${m.guest}${m.readonly ? ',readonly' : ''}`);
  for (const [k, v] of Object.entries(c.env ?? {})) args.push('--env', `${k}=${v}`);
  if (c.cwd) args.push('--workdir', c.cwd);
  args.push(c.image, ...c.argv);
  const kill = () => void run(['docker', 'rm', '-f', name], { allowFailure: true }).catch(() => undefined);
  opts.signal?.addEventListener('abort', kill, { once: true });
  try {
    return await run(args, { ...opts, env: undefined });
  } finally {
    opts.signal?.removeEventListener('abort', kill);
    if (opts.signal?.aborted) kill();
  }
}

/** Containers kiln started that still exist (for tests and clean-up). */
export async function kilnContainers(): Promise<string[]> {
  const r = await run(['docker', 'ps', '-a', '--filter', `label=${LABEL}=1`, '--format', '{{.Names}}'], { allowFailure: true });
  return r.stdout.split('\n').filter(Boolean);
}
