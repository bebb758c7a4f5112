/**
 * Debian kernels for QEMU tests: `linux-image-6.1.0-N-amd64` from the host's apt lists
 * (bookworm), fetched with `apt-get download`, checked against the SHA256 of the apt index and
 * extracted with `dpkg-deb -x` into a content-keyed cache:
 *
 *   CACHE/kernels/deb-<sha256 of the .deb>/   boot/vmlinuz-KVER, boot/System.map-KVER,
 *                                             boot/config-KVER, lib/modules/KVER/..., kernel.json
 *
 * `version` (e.g. 6.1.0-56-amd64) is the exact string `uname -r` prints in the guest and the
 * suffix of the matching `linux-headers-KVER` package (what DKMS builds against).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename, join } from 'node:path';
import { KilnError } from './errors.js';
import { run } from './exec.js';
import { move, rmrf, tmpSibling } from './fsutil.js';

export interface DebianKernel {
  /** kernel release, as `uname -r` prints it: 6.1.0-56-amd64 */
  version: string;
  /** binary package: linux-image-6.1.0-56-amd64 */
  package: string;
  /** Debian version of that package: 6.1.192-2 */
  packageVersion: string;
  /** SHA256 of the .deb (the cache key) */
  sha256: string;
  /** the extracted package (a read-only cache directory) */
  root: string;
  vmlinuz: string;
  systemMap: string;
  config: string;
  /** ROOT/lib/modules/KVER */
  modulesDir: string;
  /** name of the headers package that matches (for DKMS): linux-headers-6.1.0-56-amd64 */
  headersPackage: string;
}

export interface KernelOptions {
  cacheDir: string;
  /** kernel release (6.1.0-56-amd64) or package name; default: what linux-image-amd64 depends on */
  version?: string;
  /** do not run apt: use the newest (or the requested) kernel already in the cache */
  offline?: boolean;
  log?: (text: string) => void;
  signal?: AbortSignal;
}

const META = 'linux-image-amd64';
const KVER_RE = /^\d+\.\d+\.\d+-\d+-[a-z0-9]+$/;

interface AptRecord {
  Package?: string;
  Version?: string;
  Depends?: string;
  SHA256?: string;
  [k: string]: string | undefined;
}

function parseStanza(text: string): AptRecord {
  const rec: AptRecord = {};
  let key = '';
  for (const line of text.split('\n')) {
    if (line === '') break;
    if (/^\s/.test(line)) {
      if (key) rec[key] += '\n' + line.trim();
      continue;
    }
    const i = line.indexOf(':');
    if (i > 0) {
      key = line.slice(0, i);
      rec[key] = line.slice(i + 1).trim();
    }
  }
  return rec;
}

async function aptShow(pkg: string, opts: KernelOptions): Promise<AptRecord | null> {
  const r = await run(['apt-cache', 'show', '--no-all-versions', pkg], { allowFailure: true, signal: opts.signal });
  if (r.code !== 0 || !r.stdout.trim()) return null;
  return parseStanza(r.stdout);
}

async function aptShowOrUpdate(pkg: string, opts: KernelOptions): Promise<AptRecord> {
  let rec = await aptShow(pkg, opts);
  if (!rec) {
    opts.log?.(`# ${pkg} is not in the apt lists: apt-get update\n`);
    await run(['apt-get', 'update', '-qq'], { signal: opts.signal, log: opts.log, timeoutMs: 300_000 });
    rec = await aptShow(pkg, opts);
  }
  if (!rec) throw new KilnError(`kernel: package ${pkg} is not known to apt (apt-cache show ${pkg}); is a bookworm source configured?`);
  return rec;
}

function packageName(version: string): string {
  if (version.startsWith('linux-image-')) return version;
  if (!KVER_RE.test(version)) throw new KilnError(`kernel: '${version}' is neither a kernel release like 6.1.0-56-amd64 nor a linux-image-* package name`);
  return `linux-image-${version}`;
}

/** Kernels already extracted in the cache, newest first. */
export function cachedKernels(cacheDir: string): DebianKernel[] {
  const dir = join(cacheDir, 'kernels');
  if (!existsSync(dir)) return [];
  const out: DebianKernel[] = [];
  for (const n of readdirSync(dir)) {
    if (!n.startsWith('deb-') || n.includes('.tmp-')) continue;
    const meta = join(dir, n, 'kernel.json');
    if (!existsSync(meta)) continue;
    try {
      out.push(fromMeta(join(dir, n), JSON.parse(readFileSync(meta, 'utf8'))));
    } catch {
      /* ignore a damaged entry */
    }
  }
  const key = (k: DebianKernel) => k.version.split(/[.-]/).map((x) => x.padStart(8, '0')).join('.');
  return out.sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0));
}

function fromMeta(root: string, m: { version: string; package: string; packageVersion: string; sha256: string }): DebianKernel {
  return {
    version: m.version,
    package: m.package,
    packageVersion: m.packageVersion,
    sha256: m.sha256,
    root,
    vmlinuz: join(root, 'boot', `vmlinuz-${m.version}`),
    systemMap: join(root, 'boot', `System.map-${m.version}`),
    config: join(root, 'boot', `config-${m.version}`),
    modulesDir: join(root, 'lib', 'modules', m.version),
    headersPackage: `linux-headers-${m.version}`,
  };
}

function sha256File(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', rej)
      .on('end', () => res(h.digest('hex')));
  });
}

/**
 * The Debian kernel: from the cache when present, else downloaded and extracted once.
 * Concurrent callers may both download; the rename into place is atomic and the loser's copy is dropped.
 */
export async function debianKernel(opts: KernelOptions): Promise<DebianKernel> {
  const cached = cachedKernels(opts.cacheDir);
  const wanted = opts.version ? packageName(opts.version) : undefined;
  if (opts.offline) {
    const hit = wanted ? cached.find((k) => k.package === wanted) : cached[0];
    if (!hit) throw new KilnError(`kernel: offline and no ${wanted ?? 'Debian kernel'} in ${join(opts.cacheDir, 'kernels')}`);
    return hit;
  }
  let pkg = wanted;
  if (!pkg) {
    const meta = await aptShowOrUpdate(META, opts);
    const dep = (meta.Depends ?? '').split(',').map((d) => d.trim().split(/\s/)[0]!).find((d) => /^linux-image-\d/.test(d));
    if (!dep) throw new KilnError(`kernel: cannot find the kernel package in the Depends of ${META}: '${meta.Depends ?? ''}'`);
    pkg = dep;
  }
  const rec = await aptShowOrUpdate(pkg, opts);
  const sha = rec.SHA256;
  if (!sha || !rec.Version) throw new KilnError(`kernel: apt-cache show ${pkg} gives no SHA256/Version`);
  const dir = join(opts.cacheDir, 'kernels', `deb-${sha}`);
  if (existsSync(join(dir, 'kernel.json'))) return fromMeta(dir, JSON.parse(readFileSync(join(dir, 'kernel.json'), 'utf8')));

  mkdirSync(join(opts.cacheDir, 'kernels'), { recursive: true });
  const tmp = tmpSibling(dir);
  mkdirSync(join(tmp, 'download'), { recursive: true });
  try {
    opts.log?.(`# apt-get download ${pkg}=${rec.Version}\n`);
    await run(['apt-get', 'download', '-q', `${pkg}=${rec.Version}`], { cwd: join(tmp, 'download'), signal: opts.signal, log: opts.log, timeoutMs: 900_000 });
    const debs = readdirSync(join(tmp, 'download')).filter((n) => n.endsWith('.deb'));
    if (debs.length !== 1) throw new KilnError(`kernel: apt-get download ${pkg} gave ${debs.length} .deb files`);
    const deb = join(tmp, 'download', debs[0]!);
    const got = await sha256File(deb);
    if (got !== sha) throw new KilnError(`kernel: ${basename(deb)} has SHA256 ${got}, the apt index says ${sha}`);
    await run(['dpkg-deb', '-x', deb, tmp], { signal: opts.signal, log: opts.log });
    await rmrf(join(tmp, 'download'));
    const kvers = readdirSync(join(tmp, 'lib', 'modules'));
    const version = kvers.find((v) => KVER_RE.test(v));
    if (!version || !existsSync(join(tmp, 'boot', `vmlinuz-${version}`))) throw new KilnError(`kernel: ${pkg} has no boot/vmlinuz-KVER and lib/modules/KVER`);
    writeFileSync(join(tmp, 'kernel.json'), JSON.stringify({ version, package: pkg, packageVersion: rec.Version, sha256: sha }, null, 2) + '\n');
    try {
      await move(tmp, dir);
    } catch (e) {
      if (!existsSync(join(dir, 'kernel.json'))) throw e;
    }
  } finally {
    await rmrf(tmp);
  }
  return fromMeta(dir, JSON.parse(readFileSync(join(dir, 'kernel.json'), 'utf8')));
}

// ---- modules --------------------------------------------------------------------------------

const normName = (n: string) => n.replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');

const indexCache = new Map<string, Map<string, string>>();

/** module name (underscores) -> path relative to the modules dir (kernel/fs/ext4/ext4.ko) */
export function moduleIndex(k: DebianKernel): Map<string, string> {
  const hit = indexCache.get(k.modulesDir);
  if (hit) return hit;
  const idx = new Map<string, string>();
  const rec = (rel: string) => {
    for (const n of readdirSync(join(k.modulesDir, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = statSync(join(k.modulesDir, r));
      if (st.isDirectory()) rec(r);
      else if (/\.ko(\.(xz|zst|gz))?$/.test(n)) idx.set(normName(n), r);
    }
  };
  rec('kernel');
  indexCache.set(k.modulesDir, idx);
  return idx;
}

/** Names of built-in modules (modules.builtin): asking for these is not an error. */
function builtins(k: DebianKernel): Set<string> {
  const f = join(k.modulesDir, 'modules.builtin');
  if (!existsSync(f)) return new Set();
  return new Set(readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => normName(basename(l))));
}

/** The `depends=` list from a module's .modinfo section. */
export function moduleDepends(file: string): string[] {
  const buf = readFileSync(file);
  const needle = Buffer.from('\0depends=');
  const i = buf.indexOf(needle);
  if (i < 0) return [];
  const start = i + needle.length;
  const end = buf.indexOf(0, start);
  const s = buf.subarray(start, end < 0 ? undefined : end).toString('latin1');
  return s ? s.split(',').map(normName).filter(Boolean) : [];
}

/**
 * The modules to load for `names`, dependencies first, as paths relative to the modules dir.
 * Built-in modules are skipped; an unknown name is an error.
 */
export function moduleClosure(k: DebianKernel, names: string[]): string[] {
  const idx = moduleIndex(k);
  const builtin = builtins(k);
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (n: string, chain: string[]) => {
    const name = normName(n);
    if (seen.has(name)) return;
    seen.add(name);
    const rel = idx.get(name);
    if (!rel) {
      if (builtin.has(name)) return;
      throw new KilnError(`kernel ${k.version}: no module '${n}'${chain.length ? ` (needed by ${chain.join(' <- ')})` : ''}`);
    }
    for (const d of moduleDepends(join(k.modulesDir, rel))) visit(d, [name, ...chain]);
    out.push(rel);
  };
  for (const n of names) visit(n, []);
  return out;
}
