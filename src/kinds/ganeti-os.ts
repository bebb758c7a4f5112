/**
 * kiln:ganeti-os: a Ganeti OS definition (ganeti-os-interface API 20, the layout of
 * ganeti-instance-debootstrap) whose instances are installed from kiln chroot tarballs, packaged
 * as a .deb and an .rpm.
 *
 *   /usr/share/ganeti/os/NAME/            create import export rename verify (POSIX sh, fixed
 *                                         text from share/ganeti-os/), common.sh, kiln-os.conf,
 *                                         ganeti_api_version (20), parameters.list,
 *                                         kiln-parameters (allowed values), variants.list ->
 *                                         /etc/ganeti/instance-NAME/variants.list
 *   /etc/default/ganeti-instance-NAME     the defaults file (conffile): MIRROR PROXY SUITE ARCH
 *                                         EXTRAPKGS CUSTOMIZE_DIR GENERATE_CACHE CLEAN_CACHE
 *                                         PARTITION_STYLE KERNEL_ARGS ...
 *   /etc/ganeti/instance-NAME/            variants.list, variants/VARIANT.conf, hooks/ (conffiles)
 *   /usr/lib/ganeti-instance-NAME/        rootfs/SHA16.tar* (each distinct tarball once) and
 *                                         variants/VARIANT/{info, rootfs.tar*, vmlinuz, initrd.gz}
 *
 * The scripts take every value from these files and Ganeti's environment; nothing from an option
 * is pasted into script code (the generated shell assignments are validated and single-quoted).
 * Kernel variants get the kernel plus a small reproducible busybox initrd (src/vm/initrd.ts,
 * the same /init as kiln:disk-image) made at build time; `create` puts them on a FAT boot
 * partition with syslinux, all by byte offset (works on image files and block devices).
 */

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { KilnError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { initScript, BOOT_MODULES, rootfsKernel } from '../image/diskimage.js';
import { buildInitrd } from '../vm/initrd.js';
import { debianKernel, moduleIndex, type Kernel } from '../vm/kernel.js';
import type { PkgFile } from '../pkg/files.js';
import { COMPRESSIONS, xzThreads } from '../pkg/compress.js';
import type { BuildContext, PartOptions, PlanContext, Recipe, OptionSpec, OptionValues } from '../kind.js';
import { writePackages, type PackageInfo } from '../pkg/info.js';
import { hashFile } from '../lib/hash.js';

/** the fixed script texts */
export const SCRIPTS_DIR = new URL('../../share/ganeti-os/', import.meta.url).pathname;
const SCRIPTS = ['create', 'import', 'export', 'rename', 'verify'];

const NAME_RE = /^[a-z0-9][a-z0-9_.-]*$/;
const VARIANT_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const PARAM_RE = /^[a-z0-9][a-z0-9-]*$/;
const MIRROR_RE = /^[a-z][a-z0-9+.-]*:\/\/[^\s'"\\`$]+$/i;
const KERNEL_RE = /^(none|rootfs|debian(:[0-9][A-Za-z0-9.+~-]*)?)$/;
const PER_VARIANT = ['variant', 'kernel', 'suite', 'architecture', 'extra-packages', 'mirror', 'partition-style', 'append'] as const;
/** modules the boot initrd loads besides storage and ext4 (the network card Ganeti's KVM gives) */
const EXTRA_BOOT_MODULES = ['virtio_net'];

/** single-quoted for sh */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

interface Variant {
  name: string;
  tarball?: string;
  kernel: string;
  suite: string;
  arch: string;
  extra: string[];
  mirror: string;
  partitionStyle: string;
  append: string;
}

/**
 * The value of KEY for variant V: KEY-V when it is set (checked with KEY's table entry, at its own
 * file:line), else KEY.
 */
function per<K extends Exclude<(typeof PER_VARIANT)[number], 'variant'>>(o: PartOptions, key: K, v: string): OptionValues<typeof OPTIONS>[K] {
  const own = `${key}-${v}`;
  if (o.get(own)?.trim()) return o.typedAs(own, OPTIONS[key]) as OptionValues<typeof OPTIONS>[K];
  return o.typed(OPTIONS)[key];
}

function variants(o: PartOptions): Variant[] {
  return o.typed(OPTIONS).variants.map((name) => ({
    name,
    tarball: o.get(`variant-${name}`)?.trim() ? (o.typedAs(`variant-${name}`, VARIANT_TARBALL) as string) : undefined,
    kernel: per(o, 'kernel', name),
    suite: per(o, 'suite', name),
    arch: per(o, 'architecture', name),
    extra: per(o, 'extra-packages', name).flatMap((p: string) => p.split(',')).filter(Boolean),
    mirror: per(o, 'mirror', name),
    partitionStyle: per(o, 'partition-style', name),
    append: per(o, 'append', name) ?? '',
  }));
}

/** variant-NAME: the root file system tarball of a variant */
const VARIANT_TARBALL: OptionSpec = { type: 'path', pattern: /\.(tar|tar\.gz|tgz|tar\.xz|tar\.zst)$/, expected: 'a tarball (.tar, .tar.gz, .tar.xz, .tar.zst)', description: 'root file system of the variant' };

interface Param {
  name: string;
  description: string;
  check?: string;
}

function parameters(o: PartOptions): Param[] {
  return o.typed(OPTIONS).parameters.map((l) => {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    return { name: m[1]!, description: m[2]!.trim(), check: o.get(`check-${m[1]}`)?.trim() || undefined };
  });
}

function pkgName(o: PartOptions): string {
  const v = o.typed(OPTIONS);
  return v['package-name'] ?? `ganeti-instance-${v.name}`;
}

function validate(ctx: PlanContext): void {
  const o = ctx.options;
  const t = o.typed(OPTIONS);
  // the package name made from the OS name ('_' is no package name character)
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(pkgName(o))) throw o.error('package-name', `not a valid package name: '${pkgName(o)}'`);
  const vs = t.variants;
  const seen = new Set<string>();
  for (const v of vs) {
    if (seen.has(v)) throw o.error('variants', `variant '${v}' is listed twice`);
    seen.add(v);
  }
  // per-variant options must name a listed variant
  for (const k of Object.keys(o.all())) {
    if (KNOWN_OPTIONS.has(k)) continue;
    const p = PER_VARIANT.find((x) => k.startsWith(`${x}-`));
    if (p && !seen.has(k.slice(p.length + 1))) throw o.error(k, `'${k.slice(p.length + 1)}' is not in variants (${vs.join(' ')})`);
  }
  // each variant's values: its own KEY-VARIANT options checked like KEY (variants() reads them)
  for (const v of variants(o)) {
    if (!v.tarball && !t['generate-cache']) throw o.error('variants', `variant '${v.name}' has no root file system: give variant-${v.name} = a chroot tarball (e.g. \${some-chroot:location}/rootfs.tar), or generate-cache = true`);
    const opt = (k: string) => (o.has(`${k}-${v.name}`) ? `${k}-${v.name}` : k);
    if (v.kernel !== 'none' && v.partitionStyle !== 'msdos') throw o.error(opt('partition-style'), `variant '${v.name}' boots its own kernel (kernel = ${v.kernel}): it needs partition-style = msdos`);
  }
  const pseen = new Set<string>();
  for (const p of parameters(o)) {
    if (!PARAM_RE.test(p.name)) throw o.error('parameters', `not a valid parameter name: '${p.name}' (lower-case letters, digits, '-')`);
    if (pseen.has(p.name)) throw o.error('parameters', `parameter '${p.name}' is listed twice`);
    pseen.add(p.name);
    if (!p.description) throw o.error('parameters', `parameter '${p.name}' has no description (one line each: NAME DESCRIPTION)`);
    if (p.check !== undefined) {
      if (/[\t\n]/.test(p.check)) throw o.error(`check-${p.name}`, 'the pattern must be one line without tabs');
      try {
        new RegExp(`^(?:${p.check})$`);
      } catch (e) {
        throw o.error(`check-${p.name}`, `not a valid extended regular expression: ${(e as Error).message}`);
      }
    }
  }
  for (const k of Object.keys(o.all())) {
    if (k.startsWith('check-') && !pseen.has(k.slice('check-'.length))) throw o.error(k, `'${k.slice('check-'.length)}' is not in parameters`);
  }
  for (const h of t.customize) {
    if (!existsSync(h)) throw o.error('customize', `file not found: ${h}`);
    if (!/^[A-Za-z0-9_-]+$/.test(basename(h))) throw o.error('customize', `hook '${basename(h)}': run-parts only runs names of letters, digits, '_' and '-'`);
  }
}

const OPTIONS = {
  name: { type: 'pattern', pattern: NAME_RE, expected: "a valid OS name (lower-case letters, digits, '_', '.', '-')", description: 'OS name (gnt-instance add -o NAME+VARIANT)', required: true },
  'package-name': { type: 'pattern', pattern: /^[a-z0-9][a-z0-9+.-]+$/, expected: 'a valid package name', description: 'package name (default ganeti-instance-NAME)' },
  version: { type: 'pattern', pattern: /^[0-9][A-Za-z0-9.+~]*$/, expected: 'a valid version (digits first; letters, digits, . + ~)', description: 'package version', default: '1.0' },
  release: { type: 'pattern', pattern: /^[0-9][A-Za-z0-9.+~]*$/, expected: 'a valid release', description: 'rpm release', default: '1' },
  maintainer: { type: 'string', description: "'Name <email>' of the packages", default: 'kiln <kiln@example.org>' },
  url: { type: 'url', description: 'project URL (rpm URL, deb Homepage)' },
  summary: { type: 'string', description: 'one-line package description' },
  license: { type: 'string', description: 'license (SPDX) for the copyright file and the rpm', default: 'MIT' },
  variants: { type: 'list', pattern: VARIANT_RE, expected: 'a valid variant name', description: 'variant names, in the order of variants.list', required: true },
  kernel: { type: 'pattern', pattern: KERNEL_RE, expected: 'none, rootfs, debian or debian:RELEASE', description: 'none (Ganeti boots its own kernel_path), rootfs (the newest /boot/vmlinuz-* in the tarball), debian or debian:RELEASE (kiln\'s cached Debian kernel); kernel-VARIANT per variant', default: 'none' },
  suite: { type: 'pattern', pattern: /^[a-z0-9][a-z0-9.+_-]*$/i, expected: 'a valid suite', description: 'SUITE (hooks, GENERATE_CACHE); suite-VARIANT per variant', default: 'bookworm' },
  architecture: { type: 'pattern', pattern: /^[a-z0-9][a-z0-9-]*$/, expected: 'a valid architecture', description: 'ARCH and the package architecture; architecture-VARIANT per variant', default: 'amd64' },
  'extra-packages': { type: 'list', pattern: /^,*[a-z0-9](?!.*,[^a-z0-9,])[a-z0-9+.:=~,-]*$/, expected: 'a package name', description: 'EXTRAPKGS (hooks, GENERATE_CACHE); extra-packages-VARIANT per variant' },
  mirror: { type: 'pattern', pattern: MIRROR_RE, expected: 'a mirror URL', description: 'MIRROR (GENERATE_CACHE); mirror-VARIANT per variant', default: 'http://deb.debian.org/debian' },
  proxy: { type: 'pattern', pattern: MIRROR_RE, expected: 'a URL', description: 'PROXY for GENERATE_CACHE' },
  'partition-style': { type: 'enum', choices: ['msdos', 'none'], noun: 'partition style', description: 'PARTITION_STYLE: msdos or none (whole-disk file system); partition-style-VARIANT per variant', default: 'msdos' },
  append: { type: 'pattern', pattern: /^[^'"\\`$]*$/, expected: 'a kernel command line without quotes, backslashes or $', description: 'KERNEL_ARGS: extra kernel command line for kernel variants; append-VARIANT per variant' },
  'boot-size': { type: 'int', min: 33, description: 'BOOT_SIZE_MB: FAT boot partition size in MiB for kernel variants', default: '64' },
  'generate-cache': { type: 'bool', description: 'GENERATE_CACHE: make a missing root file system with debootstrap on the node (network)', default: 'false' },
  'clean-cache': { type: 'int', min: 0, description: 'CLEAN_CACHE: days to keep a generated root file system', default: '14' },
  parameters: { type: 'lines', description: 'OS parameters, one per line: NAME DESCRIPTION (parameters.list; the scripts see OSP_NAME)' },
  customize: { type: 'paths', description: 'hook scripts (one per line) for CUSTOMIZE_DIR, run by run-parts with TARGET, SUITE, ARCH, PARTITION_STYLE, EXTRA_PKGS, BLOCKDEV, FSYSDEV' },
  formats: { type: 'list', choices: ['deb', 'rpm'], noun: 'format', description: 'deb rpm', default: 'deb rpm' },
  compression: { type: 'enum', choices: COMPRESSIONS, noun: 'compression', description: 'payload compression of the packages: xz, gzip, zstd, none (the root file systems in them are compressed already)', default: 'gzip' },
  'rootfs-compression': { type: 'enum', choices: ['zstd', 'xz', 'none'], noun: 'compression', description: 'how a plain .tar root file system is shipped: zstd (-3), xz (-6, slower) or none', default: 'zstd' },
} as const satisfies Record<string, OptionSpec>;
const KNOWN_OPTIONS = new Set(Object.keys(OPTIONS));

/** Space the tree takes in ext4: each file rounded up to 4 KiB, plus an inode's worth per entry. */
async function unpackedBytes(ctx: BuildContext, tarball: string): Promise<number> {
  const r = await run(['tar', '--numeric-owner', '-tvf', tarball], { signal: ctx.signal, env: { LC_ALL: 'C' } });
  let bytes = 0;
  for (const line of r.stdout.split('\n')) {
    const m = /^\S+\s+\S+\s+(\d+)\s/.exec(line);
    if (!m) continue;
    bytes += Math.ceil(Number(m[1]) / 4096) * 4096 + 256;
  }
  return bytes;
}

/** The kernel of a variant: from the tarball's /boot + modules, or kiln's cached Debian kernel. */
async function variantKernel(ctx: BuildContext, v: Variant): Promise<Kernel> {
  if (v.kernel.startsWith('debian')) {
    return debianKernel({ cacheDir: ctx.cacheDir, version: v.kernel.slice('debian:'.length) || undefined, offline: ctx.offline, log: ctx.log, signal: ctx.signal });
  }
  const dir = join(ctx.work, 'kernel', v.name);
  mkdirSync(dir, { recursive: true });
  // only /boot and the module trees: the rest of the root file system is not needed here
  await ctx.run(['tar', '-x', '--no-same-owner', '--wildcards', '--no-wildcards-match-slash', '-f', v.tarball!, '-C', dir, '--ignore-failed-read', './boot', './usr/lib/modules', './lib/modules'], { allowFailure: true });
  const k = rootfsKernel(dir);
  if (!k) throw ctx.options.error(ctx.options.has(`kernel-${v.name}`) ? `kernel-${v.name}` : 'kernel', `variant '${v.name}': ${v.tarball} has no /boot/vmlinuz-* with its modules (install a linux-image package in the chroot, or use kernel = debian)`);
  return k;
}

function infoFile(fields: Record<string, string | number>): string {
  return '# package data of this variant, written by kiln (not configuration)\n' + Object.entries(fields).map(([k, v]) => `${k}=${shq(String(v))}\n`).join('');
}

function defaultsFile(o: PartOptions, name: string, pkg: string): string {
  const t = o.typed(OPTIONS);
  const set = (k: string, v: string, doc: string) => `# ${doc}\n${k}=${shq(v)}\n\n`;
  return (
    `# Settings of the Ganeti OS definition '${name}' (package ${pkg}), read by its scripts.\n` +
    `# A variant's /etc/ganeti/instance-${name}/variants/VARIANT.conf overrides them.\n\n` +
    set('MIRROR', t.mirror, 'mirror for GENERATE_CACHE (debootstrap)') +
    set('PROXY', t.proxy ?? '', 'HTTP proxy for GENERATE_CACHE') +
    set('SUITE', t.suite, 'suite: passed to the customize hooks; GENERATE_CACHE bootstraps it') +
    set('ARCH', t.architecture, 'architecture: passed to the hooks; GENERATE_CACHE bootstraps it') +
    set('EXTRAPKGS', t['extra-packages'].flatMap((p) => p.split(',')).filter(Boolean).join(' '), 'extra packages (hooks see EXTRA_PKGS); GENERATE_CACHE includes them') +
    set('CUSTOMIZE_DIR', `/etc/ganeti/instance-${name}/hooks`, 'run-parts directory of customize hooks (TARGET, SUITE, ARCH, PARTITION_STYLE, EXTRA_PKGS, BLOCKDEV, FSYSDEV)') +
    set('GENERATE_CACHE', t['generate-cache'] ? 'yes' : 'no', 'yes: a variant without a packaged root file system is made with debootstrap and cached') +
    set('CLEAN_CACHE', String(t['clean-cache']), 'days to keep a generated root file system in CACHE_DIR') +
    set('CACHE_DIR', `/var/cache/${pkg}`, 'where GENERATE_CACHE keeps root file systems') +
    set('PARTITION_STYLE', t['partition-style'], 'msdos (partition table) or none (file system on the whole disk)') +
    set('KERNEL_ARGS', t.append ?? '', 'extra kernel command line for variants that install a kernel') +
    set('BOOT_SIZE_MB', String(t['boot-size']), 'size of the FAT boot partition (MiB) for variants that install a kernel')
  );
}

function variantConf(o: PartOptions, v: Variant, name: string): string {
  const lines = [`# Settings of variant '${v.name}' of the Ganeti OS '${name}': override /etc/default/ganeti-instance-${name}.`];
  const put = (key: string, opt: string, value: string) => {
    if (o.has(`${opt}-${v.name}`)) lines.push(`${key}=${shq(value)}`);
  };
  put('SUITE', 'suite', v.suite);
  put('ARCH', 'architecture', v.arch);
  put('EXTRAPKGS', 'extra-packages', v.extra.join(' '));
  put('MIRROR', 'mirror', v.mirror);
  put('PARTITION_STYLE', 'partition-style', v.partitionStyle);
  put('KERNEL_ARGS', 'append', v.append);
  return lines.join('\n') + '\n';
}

export const recipe: Recipe = {
  kind: 'ganeti-os',
  version: '1',
  description: 'Ganeti OS definition (API 20) installing instances from chroot tarballs, as .deb and .rpm',
  options: OPTIONS,
  innerJobs: true, // ctx.jobs: rootfs compression and package writers
  optionPatterns: [/^(variant|kernel|suite|architecture|extra-packages|mirror|partition-style|append|check)-./],
  validate,
  inputs(ctx) {
    const o = ctx.options;
    return [SCRIPTS_DIR, ...o.typed(OPTIONS).customize, ...variants(o).flatMap((v) => (v.tarball ? [v.tarball] : []))];
  },
  tools(ctx) {
    const t = ['tar'];
    if (variants(ctx.options).some((v) => v.kernel !== 'none')) t.push('busybox');
    const v = ctx.options.typed(OPTIONS);
    if (v.compression === 'xz' || v['rootfs-compression'] === 'xz') t.push('xz');
    if (v['rootfs-compression'] === 'zstd') t.push('zstd');
    return t;
  },
  async install(ctx) {
    const o = ctx.options;
    const t = o.typed(OPTIONS);
    const { name, version } = t;
    const pkg = pkgName(o);
    const sde = ctx.sourceDateEpoch;
    const osDir = `/usr/share/ganeti/os/${name}`;
    const confDir = `/etc/ganeti/instance-${name}`;
    const dataDir = `/usr/lib/${pkg}`;
    const vs = variants(o);
    const params = parameters(o);
    const files: PkgFile[] = [];
    const text = (path: string, content: string | Buffer, mode = 0o644, conffile = false) => files.push({ path, type: 'file', content, mode, conffile, noreplace: conffile });

    // the OS definition
    for (const s of SCRIPTS) {
      const src = join(SCRIPTS_DIR, s);
      if (!existsSync(src)) throw new KilnError(`ganeti-os: script ${src} missing from the kiln installation`);
      files.push({ path: `${osDir}/${s}`, type: 'file', source: src, mode: 0o755 });
    }
    files.push({ path: `${osDir}/common.sh`, type: 'file', source: join(SCRIPTS_DIR, 'common.sh'), mode: 0o644 });
    text(`${osDir}/ganeti_api_version`, '20\n');
    text(`${osDir}/parameters.list`, params.map((p) => `${p.name} ${p.description}\n`).join(''));
    text(`${osDir}/kiln-parameters`, params.map((p) => `${p.name}\t${p.check ?? ''}\n`).join(''));
    text(
      `${osDir}/kiln-os.conf`,
      `# paths of this OS definition, written by kiln\nKILN_OS_NAME=${shq(name)}\nKILN_PACKAGE=${shq(pkg)}\nKILN_DEFAULTS_FILE=${shq(`/etc/default/${pkg}`)}\nKILN_CONF_DIR=${shq(confDir)}\nKILN_DATA_DIR=${shq(dataDir)}\n`,
    );
    // configuration (conffiles)
    text(`/etc/default/${pkg}`, defaultsFile(o, name, pkg), 0o644, true);
    text(`${confDir}/variants.list`, vs.map((v) => v.name + '\n').join(''), 0o644, true);
    for (const v of vs) text(`${confDir}/variants/${v.name}.conf`, variantConf(o, v, name), 0o644, true);
    files.push({ path: `${confDir}/hooks`, type: 'dir', mode: 0o755 });
    for (const h of t.customize) files.push({ path: `${confDir}/hooks/${basename(h)}`, type: 'file', source: h, mode: 0o755, conffile: true, noreplace: true });

    // package data: each distinct tarball once, per-variant info, kernels and initrds
    const tarballs = new Map<string, string>();
    const summary: Record<string, unknown>[] = [];
    const bootDir = join(ctx.work, 'boot');
    for (const v of vs) {
      const info: Record<string, string | number> = { ROOTFS: '', ROOTFS_BYTES: 0, KERNEL_VERSION: '' };
      const vdir = `${dataDir}/variants/${v.name}`;
      if (v.tarball) {
        if (!existsSync(v.tarball) || !statSync(v.tarball).isFile()) throw o.error(o.has(`variant-${v.name}`) ? `variant-${v.name}` : 'variants', `tarball not found: ${v.tarball}`);
        const sha = await hashFile(v.tarball);
        const ext = /\.(tar(\.gz|\.xz|\.zst)?|tgz)$/.exec(v.tarball)![0];
        const rc = t['rootfs-compression'];
        const packed = ext === '.tar' && rc !== 'none' ? `${ext}.${rc === 'xz' ? 'xz' : 'zst'}` : ext;
        const shared = `${dataDir}/rootfs/${sha.slice(0, 16)}${packed}`;
        if (!tarballs.has(shared)) {
          let source = v.tarball;
          if (packed !== ext) {
            // a plain tarball is compressed once here (zstd -3: seconds for a few hundred MiB; the
            // package then does not spend minutes on it); multi-threaded zstd/xz output does not
            // depend on the thread count
            source = join(ctx.work, `rootfs-${sha.slice(0, 16)}${packed}`);
            const cmd = rc === 'xz' ? 'xz -T"$3" -6 -c -- "$1" > "$2"' : 'zstd -q -T"$3" -3 -c -- "$1" > "$2"';
            await ctx.run(['sh', '-c', cmd, 'sh', v.tarball, source, rc === 'xz' ? xzThreads(ctx.jobs) : String(ctx.jobs)]);
          }
          tarballs.set(shared, source);
          files.push({ path: shared, type: 'file', source, mode: 0o644 });
        }
        files.push({ path: `${vdir}/rootfs${packed}`, type: 'symlink', target: `../../rootfs/${sha.slice(0, 16)}${packed}` });
        info.ROOTFS = `rootfs${packed}`;
        info.ROOTFS_BYTES = await unpackedBytes(ctx, v.tarball);
      }
      let kernelVersion: string | undefined;
      if (v.kernel !== 'none') {
        const k = await variantKernel(ctx, v);
        const idx = moduleIndex(k);
        const mods = [...BOOT_MODULES, ...EXTRA_BOOT_MODULES].filter((m) => idx.has(m.replace(/-/g, '_')));
        const out = join(bootDir, v.name);
        mkdirSync(out, { recursive: true });
        buildInitrd(join(out, 'initrd.gz'), { init: initScript('LABEL=root'), execInit: true, kernel: k, modules: mods, sourceDateEpoch: sde });
        files.push({ path: `${vdir}/vmlinuz`, type: 'file', source: k.vmlinuz, mode: 0o644 });
        files.push({ path: `${vdir}/initrd.gz`, type: 'file', source: join(out, 'initrd.gz'), mode: 0o644 });
        kernelVersion = k.version;
        info.KERNEL_VERSION = k.version;
      }
      text(`${vdir}/info`, infoFile(info));
      summary.push({ variant: v.name, rootfs: info.ROOTFS ? `${vdir}/${info.ROOTFS}` : null, rootfsBytes: info.ROOTFS_BYTES, kernel: kernelVersion ?? null, partitionStyle: v.partitionStyle });
    }

    // the OS definition as a directory too (what the packages install under /usr/share/ganeti/os)
    const debArch = [...new Set(vs.map((v) => v.arch))].length === 1 && vs.some((v) => v.kernel !== 'none' || v.tarball) ? vs[0]!.arch : 'all';
    const docDir = `/usr/share/doc/${pkg}`;
    const maintainer = t.maintainer ?? '';
    const summaryLine = t.summary || `Ganeti OS definition '${name}' (kiln)`;
    const long =
      `Ganeti OS definition '${name}' (OS API 20) made by kiln. Instances are\n` +
      `installed from packaged root file systems, without network access.\n` +
      `Variants: ${vs.map((v) => v.name).join(', ')}.`;
    // tar and debianutils (run-parts) are Essential in Debian: not listed
    const uses = new Set(['e2fsprogs', 'fdisk', 'mount', 'dump']);
    if (vs.some((v) => v.kernel !== 'none')) ['dosfstools', 'mtools', 'syslinux', 'syslinux-common'].forEach((d) => uses.add(d));
    const exts = [...tarballs.keys()];
    if (exts.some((e) => e.endsWith('.xz'))) uses.add('xz-utils');
    if (exts.some((e) => e.endsWith('.zst'))) uses.add('zstd');
    if (t['generate-cache']) uses.add('debootstrap');
    const { formats, compression } = t;
    const RPM_NAMES: Record<string, string> = { fdisk: 'util-linux', mount: 'util-linux', debianutils: '/usr/bin/run-parts', 'syslinux-common': 'syslinux', 'xz-utils': 'xz' };
    const rpmUses = [...uses].map((u) => RPM_NAMES[u] ?? u);
    const info: PackageInfo = {
      name: pkg,
      version,
      release: t.release,
      arch: debArch,
      maintainer,
      summary: summaryLine,
      description: long,
      license: t.license ?? '',
      homepage: t.url,
      files,
      compression,
      sourceDateEpoch: sde,
      deb: {
        section: 'admin',
        priority: 'optional',
        depends: ['ganeti (>= 2.16) | ganeti-3.0', ...[...uses].sort()],
        files: [
          ...files,
          // Debian policy: symbolic links between top-level directories are absolute
          { path: `${osDir}/variants.list`, type: 'symlink', target: `${confDir}/variants.list` },
          { path: `${docDir}/copyright`, type: 'file', content: `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: ${pkg}\n\nFiles: *\nCopyright: ${new Date(sde * 1000).getUTCFullYear()} ${maintainer}\nLicense: ${t.license ?? ''}\n` },
          // a native package (no Debian revision): changelog.gz
          { path: `${docDir}/changelog.gz`, type: 'file', content: gzipSync(Buffer.from(`${pkg} (${version}) unstable; urgency=medium\n\n  * Built by kiln.\n\n -- ${maintainer}  ${new Date(sde * 1000).toUTCString().replace(/GMT$/, '+0000')}\n`), { level: 9 }) },
        ],
      },
      rpm: {
        version: version.replace(/[-~]/g, '_'),
        requires: [...new Set(['ganeti', 'tar', '/usr/bin/run-parts', ...rpmUses])].sort(),
        group: 'System Environment/Base',
        changelog: [{ time: sde, author: maintainer, text: `- ${version}-${t.release}: built by kiln` }],
        // hooks are programs: not %config for rpm (rpmlint: executable-marked-as-config-file);
        // rpmlint wants relative symbolic links
        files: [
          ...files.map((f) => (f.mode === 0o755 && f.conffile ? { ...f, conffile: false, noreplace: false } : { ...f })),
          { path: `${osDir}/variants.list`, type: 'symlink', target: `../../../../..${confDir}/variants.list` },
        ],
      },
    };
    const out = (await writePackages(info, (['deb', 'rpm'] as const).filter((f) => formats.includes(f)), ctx.staging, { threads: ctx.jobs })).map((w) => w.file);
    // the OS definition directory itself, for inspection and for installing without a package
    const tree = join(ctx.staging, 'os', name);
    mkdirSync(tree, { recursive: true });
    for (const f of files) {
      if (!f.path.startsWith(osDir + '/') || f.type !== 'file') continue;
      const dest = join(tree, f.path.slice(osDir.length + 1));
      writeFileSync(dest, f.content ?? readFileSync(f.source!), { mode: f.mode });
    }
    writeFileSync(join(ctx.staging, 'ganeti-os.json'), JSON.stringify({ name, package: pkg, version, osDir, confDir, dataDir, parameters: params, variants: summary, packages: out }, null, 1) + '\n');
  },
};
export default recipe;
