/**
 * A Debian bookworm kernel for QEMU guests, without touching the host: `apt-get download` of
 * linux-image-VERSION into the cache, unpacked with `dpkg-deb -x` (temp dir + rename, so a
 * half-unpacked kernel is never seen), kept under cacheDir/kernels/<package>_<version>/.
 *
 * The package carries no modules.dep (its postinst runs depmod); kiln writes one natively from
 * each module's .modinfo `depends=` so initrd builders can resolve module dependencies without
 * kmod on the host.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { run } from '../lib/exec.js';

export interface Kernel {
  /** uname -r, e.g. 6.1.0-56-amd64 */
  version: string;
  /** Debian package name and version it came from */
  package: string;
  packageVersion: string;
  /** unpacked package root */
  root: string;
  vmlinuz: string;
  /** lib/modules/VERSION */
  modulesDir: string;
  systemMap: string;
  config: string;
  /** the headers package that matches (what DKMS builds against): linux-headers-VERSION */
  headersPackage: string;
}

export interface KernelOptions {
  cacheDir: string;
  /** kernel release (6.1.0-56-amd64), or its package name; default: what linux-image-amd64 depends on */
  version?: string;
  offline?: boolean;
  log?: (text: string) => void;
  signal?: AbortSignal;
}

const META_PACKAGE = 'linux-image-amd64';

/** The kernel release the Debian meta package currently depends on (apt-cache, local data only). */
export async function currentDebianKernel(signal?: AbortSignal): Promise<string> {
  const r = await run(['apt-cache', 'depends', META_PACKAGE], { signal });
  const m = /Depends:\s*linux-image-(\d[^\s]*)/.exec(r.stdout);
  if (!m) throw new KilnError(`cannot find the kernel that ${META_PACKAGE} depends on (apt-cache depends ${META_PACKAGE}); run apt-get update`);
  return m[1]!;
}

async function candidateVersion(pkg: string, signal?: AbortSignal): Promise<string> {
  const r = await run(['apt-cache', 'show', '--no-all-versions', pkg], { signal, allowFailure: true });
  const m = /^Version:\s*(\S+)/m.exec(r.stdout);
  if (r.code !== 0 || !m) throw new KilnError(`Debian package ${pkg} is unknown to apt (apt-cache show ${pkg}); check the kernel version or run apt-get update`);
  return m[1]!;
}

/**
 * Kernels already unpacked in the cache, newest release first (package version breaks ties).
 * Besides kiln's layout (kernels/linux-image-RELEASE_PKGVERSION/.complete) this also lists
 * kernels/deb-SHA256/ entries (with kernel.json) left by kiln versions before the QEMU library
 * was merged, so an older cache still serves offline builds.
 */
export function cachedKernels(cacheDir: string): Kernel[] {
  const dir = join(cacheDir, 'kernels');
  if (!existsSync(dir)) return [];
  const out: Kernel[] = [];
  for (const n of readdirSync(dir)) {
    try {
      const m = /^(linux-image-(\d[^_]*))_(.+)$/.exec(n);
      if (m && existsSync(join(dir, n, '.complete'))) out.push(kernelAt(join(dir, n), m[2]!, m[1]!, m[3]!));
      else if (n.startsWith('deb-') && existsSync(join(dir, n, 'kernel.json'))) {
        const j = JSON.parse(readFileSync(join(dir, n, 'kernel.json'), 'utf8')) as { version: string; package: string; packageVersion: string };
        out.push(kernelAt(join(dir, n), j.version, j.package, j.packageVersion));
      }
    } catch {
      /* a damaged entry: ignored */
    }
  }
  const key = (k: Kernel) => `${k.version}_${k.packageVersion}`.split(/[.+~_-]/).map((x) => x.padStart(10, '0')).join('.');
  return out.sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0));
}

/** An already unpacked kernel for this release, if any is in the cache (newest package version wins). */
function cachedKernel(cacheDir: string, release: string): Kernel | undefined {
  return cachedKernels(cacheDir).find((k) => k.version === release);
}

function kernelAt(root: string, release: string, pkg: string, pkgVersion: string): Kernel {
  const k: Kernel = {
    version: release,
    package: pkg,
    packageVersion: pkgVersion,
    root,
    vmlinuz: join(root, 'boot', `vmlinuz-${release}`),
    modulesDir: join(root, 'lib', 'modules', release),
    systemMap: join(root, 'boot', `System.map-${release}`),
    config: join(root, 'boot', `config-${release}`),
    headersPackage: `linux-headers-${release}`,
  };
  if (!existsSync(k.vmlinuz)) throw new KilnError(`${pkg} ${pkgVersion} in ${root} has no boot/vmlinuz-${release}`);
  return k;
}

/**
 * The Debian kernel (default: the current bookworm one), downloaded and unpacked once into the
 * cache; later calls reuse it without network access.
 */
export async function debianKernel(opts: KernelOptions): Promise<Kernel> {
  let release = opts.version?.trim().replace(/^linux-image-/, '');
  if (!release) release = await currentDebianKernel(opts.signal);
  if (!/^[0-9][A-Za-z0-9.+~-]*$/.test(release)) throw new KilnError(`not a kernel release: '${opts.version}'`);
  const pkg = `linux-image-${release}`;
  const kernels = join(opts.cacheDir, 'kernels');
  let pkgVersion: string;
  try {
    pkgVersion = await candidateVersion(pkg, opts.signal);
  } catch (e) {
    // apt may not know it (any more); an unpacked copy in the cache is still good
    const hit = cachedKernel(opts.cacheDir, release);
    if (hit) return hit;
    throw e;
  }
  const dest = join(kernels, `${pkg}_${pkgVersion}`);
  if (existsSync(join(dest, '.complete'))) return kernelAt(dest, release, pkg, pkgVersion);
  // the same package unpacked by an older kiln (kernels/deb-SHA256/): no second download
  const legacy = cachedKernels(opts.cacheDir).find((k) => k.package === pkg && k.packageVersion === pkgVersion);
  if (legacy) return legacy;
  if (opts.offline) {
    const hit = cachedKernel(opts.cacheDir, release);
    if (hit) return hit;
    throw new KilnError(`offline: kernel ${pkg} is not in the cache (${kernels}); build once online`);
  }
  mkdirSync(kernels, { recursive: true });
  const tmp = await mkdtemp(join(kernels, `.tmp-${pkg}-`));
  try {
    opts.log?.(`# downloading ${pkg} ${pkgVersion} (apt-get download)\n`);
    const dl = join(tmp, 'dl');
    mkdirSync(dl, { mode: 0o755 });
    await run(['apt-get', 'download', '-q', '-o', 'APT::Sandbox::User=root', `${pkg}=${pkgVersion}`], { cwd: dl, signal: opts.signal, log: opts.log });
    const debs = readdirSync(dl).filter((n) => n.endsWith('.deb'));
    if (debs.length !== 1) throw new KilnError(`apt-get download ${pkg}=${pkgVersion} gave ${debs.length} .deb files`);
    const root = join(tmp, 'root');
    opts.log?.(`# unpacking ${debs[0]} (dpkg-deb -x)\n`);
    await run(['dpkg-deb', '-x', join(dl, debs[0]!), root], { signal: opts.signal, log: opts.log });
    rmSync(dl, { recursive: true, force: true });
    const modulesDir = join(root, 'lib', 'modules', release);
    if (existsSync(modulesDir) && !existsSync(join(modulesDir, 'modules.dep'))) writeModulesDep(modulesDir);
    writeFileSync(join(root, '.complete'), `${pkg} ${pkgVersion}\n`);
    try {
      renameSync(root, dest);
    } catch (e) {
      // another process won the race: use its copy
      if (!existsSync(join(dest, '.complete'))) throw e;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return kernelAt(dest, release, pkg, pkgVersion);
}

// ---------------------------------------------------------------------------------------------
// modules

/** Canonical module name: basename without .ko(.xz/.zst/.gz), dashes as underscores. */
export function moduleName(fileOrName: string): string {
  return basename(fileOrName).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
}

function walkModules(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walkModules(p, out);
    else if (/\.ko$/.test(e.name)) out.push(p);
  }
  return out;
}

/** The `depends=` field of a module's .modinfo (direct dependencies). */
export function moduleDepends(koFile: string): string[] {
  const b = readFileSync(koFile);
  const key = Buffer.from('\0depends=');
  const i = b.indexOf(key);
  if (i < 0) return [];
  const start = i + key.length;
  const end = b.indexOf(0, start);
  const v = b.toString('latin1', start, end < 0 ? b.length : end);
  return v.split(',').map((s) => s.trim()).filter(Boolean).map(moduleName);
}

/** Write modules.dep in depmod's format (transitive dependencies, the first to load last). */
export function writeModulesDep(modulesDir: string): void {
  const files = walkModules(join(modulesDir, 'kernel')).sort();
  const byName = new Map<string, string>();
  const direct = new Map<string, string[]>();
  for (const f of files) {
    const rel = relative(modulesDir, f);
    byName.set(moduleName(f), rel);
    direct.set(rel, moduleDepends(f));
  }
  const lines: string[] = [];
  for (const f of files) {
    const rel = relative(modulesDir, f);
    const order: string[] = []; // load order, dependencies first
    const seen = new Set<string>([rel]);
    const visit = (r: string) => {
      for (const d of direct.get(r) ?? []) {
        const dr = byName.get(d);
        if (!dr || seen.has(dr)) continue;
        seen.add(dr);
        visit(dr);
        order.push(dr);
      }
    };
    visit(rel);
    lines.push(`${rel}:${order.length ? ' ' + order.reverse().join(' ') : ''}`);
  }
  writeFileSync(join(modulesDir, 'modules.dep'), lines.join('\n') + '\n');
}

export interface ResolvedModules {
  /** module files relative to modulesDir, in load order (dependencies first) */
  load: string[];
  /** requested modules built into the kernel (nothing to load) */
  builtin: string[];
}

/** Resolve module names (with their dependencies) from modules.dep into a load order. */
export function resolveModules(modulesDir: string, names: string[]): ResolvedModules {
  const depFile = join(modulesDir, 'modules.dep');
  if (!existsSync(depFile)) writeModulesDep(modulesDir);
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of readFileSync(depFile, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const rel = line.slice(0, i);
    deps.set(rel, line.slice(i + 1).split(/\s+/).filter(Boolean));
    byName.set(moduleName(rel), rel);
  }
  const builtinFile = join(modulesDir, 'modules.builtin');
  const builtinNames = new Set(existsSync(builtinFile) ? readFileSync(builtinFile, 'utf8').split('\n').filter(Boolean).map(moduleName) : []);
  const load: string[] = [];
  const builtin: string[] = [];
  const have = new Set<string>();
  for (const raw of names) {
    const n = moduleName(raw);
    const rel = byName.get(n);
    if (!rel) {
      if (builtinNames.has(n)) {
        builtin.push(n);
        continue;
      }
      throw new KilnError(`kernel module '${raw}' is neither a module nor built into the kernel in ${modulesDir}`);
    }
    for (const d of [...(deps.get(rel) ?? [])].reverse().concat(rel)) {
      if (!have.has(d)) {
        have.add(d);
        load.push(d);
      }
    }
  }
  return { load, builtin };
}

/** Module name (underscores) -> file relative to the modules dir, from modules.dep (written when missing). */
export function moduleIndex(k: Pick<Kernel, 'modulesDir'>): Map<string, string> {
  const depFile = join(k.modulesDir, 'modules.dep');
  if (!existsSync(depFile)) writeModulesDep(k.modulesDir);
  const idx = new Map<string, string>();
  for (const line of readFileSync(depFile, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) idx.set(moduleName(line.slice(0, i)), line.slice(0, i));
  }
  return idx;
}

/** The module files to load for `names`, dependencies first (resolveModules(...).load). */
export function moduleClosure(k: Pick<Kernel, 'modulesDir'>, names: string[]): string[] {
  return resolveModules(k.modulesDir, names).load;
}
