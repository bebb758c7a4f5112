/**
 * What the coordinator (`kiln build --farm`) and the workers (`kiln worker --farm`) share: the
 * Redis connection, queue names by capability set, the job's data, worker registration.
 *
 * One BullMQ queue per set of required capabilities ("kiln-parts", "kiln-parts.docker",
 * "kiln-parts.docker+qemu", ...); a worker listens on every queue whose set it covers.
 */
import { Redis } from 'ioredis';
import { ExitCode, KilnError } from '../lib/errors.js';

export const CAPABILITIES = ['docker', 'kvm', 'qemu', 'root'] as const;
export type Capability = (typeof CAPABILITIES)[number];
export const WORKERS_KEY = 'kiln:workers';
/** a worker refreshes its registration this often; a silent worker counts as gone after 3 periods */
export const HEARTBEAT_MS = 5_000;

export interface FarmJobData {
  part: string;
  actionKey: string;
  /** the project directory (without out/ and the cache), a tar blob in the remote cache */
  project: { sha256: string; size: number };
  /** config file, relative to the project directory */
  config: string;
  overrides: Array<{ section: string; option: string; value: string }>;
  coordinator: string;
}

export interface FarmJobResult {
  worker: string;
  seconds: number;
}

export interface RedisTarget {
  host: string;
  port: number;
  password?: string;
  username?: string;
  db?: number;
  display: string;
}

export function parseRedisUrl(url: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new KilnError(`--farm takes a redis://HOST:PORT URL, got '${url}'`, ExitCode.USAGE);
  }
  if (u.protocol !== 'redis:') throw new KilnError(`--farm takes a redis://HOST:PORT URL, got '${u.protocol}//…'`, ExitCode.USAGE);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 6379),
    password: u.password ? decodeURIComponent(u.password) : process.env.KILN_FARM_REDIS_PASSWORD,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    db: Number.isInteger(db) ? db : undefined,
    display: `redis://${u.hostname}:${u.port || 6379}`,
  };
}

/** ioredis options for BullMQ (no retry limit per request, as BullMQ requires for workers). */
export function connection(t: RedisTarget) {
  return { host: t.host, port: t.port, password: t.password, username: t.username, db: t.db, maxRetriesPerRequest: null };
}

/** Fail fast with a clear error when Redis does not answer. */
export async function pingRedis(t: RedisTarget): Promise<void> {
  const c = new Redis({ ...connection(t), lazyConnect: true, connectTimeout: 5_000, retryStrategy: () => null, maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.ping();
  } catch (e) {
    throw new KilnError(`cannot reach the farm's Redis at ${t.display}: ${(e as Error).message}`);
  } finally {
    c.disconnect();
  }
}

export function queueName(caps: string[]): string {
  return caps.length ? `kiln-parts.${[...caps].sort().join('+')}` : 'kiln-parts';
}

/** Every subset of `caps` (the queues a worker with these capabilities serves). */
export function subsets(caps: string[]): string[][] {
  const s = [...new Set(caps)].sort();
  const out: string[][] = [];
  for (let m = 0; m < 1 << s.length; m++) out.push(s.filter((_, i) => m & (1 << i)));
  return out;
}

/** Capabilities a part needs from the machine that builds it. */
export function partCapabilities(tools: string[], inChroot: boolean): string[] {
  const caps = new Set<string>();
  if (inChroot) caps.add('docker');
  for (const t of tools) {
    if (t === 'docker') caps.add('docker');
    if (t.startsWith('qemu-system') || t === 'qemu-img') caps.add('qemu');
    if (t === 'mmdebstrap' || t === 'debootstrap' || t === 'losetup' || t === 'mount' || t === 'chroot') caps.add('root');
  }
  return [...caps].sort();
}
