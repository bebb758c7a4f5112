/**
 * kiln:kernel: a Linux kernel built from a source tarball with patches and a merged config, in a
 * clean-room chroot, packaged by kiln's own writers:
 *
 *   linux-image-REL_REL-REV_amd64.deb     /boot/vmlinuz-REL, System.map-REL, config-REL, /lib/modules/REL
 *   linux-headers-REL_REL-REV_amd64.deb   /usr/src/linux-headers-REL (what out-of-tree modules and
 *                                         DKMS need, the file list of the kernel's builddeb) and
 *                                         the /lib/modules/REL/build link
 *   kernel-REL-REV.x86_64.rpm             as linux-image (REL with '-' as '_' in the rpm version)
 *   kernel-devel-REL-REV.x86_64.rpm       the headers in /usr/src/kernels/REL (RPM convention)
 *
 * and, for other parts, image/ (the installed tree), headers/ (the headers tree), vmlinuz,
 * System.map, config, Module.symvers and kernel.json (release, version, options).
 *
 *   source            tarball (path or URL, sha256 checked) or directory of the kernel source
 *   patches / series  applied in order with patch -p1; a patch that does not apply fails with its
 *                     name and the rejected hunks
 *   config-base       defconfig, tinyconfig, allnoconfig, allmodconfig, allyesconfig or a .config file
 *   config-fragments  fragment files and `config` (inline lines), merged as merge_config.sh -m,
 *                     then make olddefconfig; an option a fragment sets that the final .config
 *                     lacks is an error naming the option and the fragment line
 *   signing-key       signing_key.pem (kiln:x509-key): CONFIG_MODULE_SIG with this key; a config
 *                     with CONFIG_MODULE_SIG and no key is refused (no auto-generated key)
 *   localversion      CONFIG_LOCALVERSION
 * KBUILD_BUILD_TIMESTAMP comes from SOURCE_DATE_EPOCH, user/host/version are fixed.
 */
import { chmodSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fetchVerified, isUrl } from '../lib/download.js';
import { ExitCode, KilnError } from '../lib/errors.js';
import type { PkgFile } from '../pkg/files.js';
import { lostOptions, mergeKconfig, parseKconfig } from '../pkg/kconfig.js';
import { writePackages, type PackageInfo } from '../pkg/info.js';
import { CLEAN_ROOM_OPTIONS, type PartOptions, type Recipe } from '../kind.js';

const BASES = ['defconfig', 'tinyconfig', 'allnoconfig', 'allmodconfig', 'allyesconfig'];
/** what the build needs in the chroot (command -v names) */
const BUILD_TOOLS = ['gcc', 'make', 'bc', 'flex', 'bison', 'perl', 'tar', 'xz', 'patch', 'depmod'];
const KEY_IN_TREE = 'certs/kiln_signing_key.pem';
/** what depmod writes into /lib/modules/REL */
const DEPMOD_OUTPUT = /\/modules\.(dep|dep\.bin|alias|alias\.bin|softdep|symbols|symbols\.bin|builtin\.bin|builtin\.alias\.bin|devname)$/;

/** The patch files in order: `patches` lines, then the entries of a quilt `series` file. */
export function patchList(o: PartOptions): Array<{ file: string; option: string; line: string }> {
  const out: Array<{ file: string; option: string; line: string }> = [];
  for (const l of o.lines('patches')) out.push({ file: o.resolvePath('patches', l), option: 'patches', line: l });
  const series = o.path('series');
  if (series) {
    if (!existsSync(series)) throw o.error('series', `file not found: ${series}`);
    for (const raw of readFileSync(series, 'utf8').split('\n')) {
      const l = raw.replace(/#.*$/, '').trim();
      if (!l) continue;
      const [name, ...opts] = l.split(/\s+/);
      if (opts.some((x) => x !== '-p1')) throw o.errorAt ? o.errorAt('series', l, `only -p1 patches are supported in the series: '${l}'`) : o.error('series', `only -p1 patches: '${l}'`);
      out.push({ file: join(dirname(series), name!), option: 'series', line: name! });
    }
  }
  return out;
}

function isBase(s: string): boolean {
  return BASES.includes(s) || /^[a-z0-9_]+_defconfig$/.test(s);
}

function fragmentsOf(o: PartOptions): Array<{ name: string; text: string }> {
  const fr = o.paths('config-fragments').map((p) => {
    if (!existsSync(p)) throw o.error('config-fragments', `file not found: ${p}`);
    return { name: p, text: readFileSync(p, 'utf8') };
  });
  const inline = o.get('config');
  if (inline?.trim()) fr.push({ name: `${o.origin('config')?.file ?? 'config'} [${o.part}] config`, text: inline.split('\n').map((l) => l.trim()).join('\n') });
  return fr;
}

export function walk(root: string, prefix: string): PkgFile[] {
  const files: PkgFile[] = [];
  const rec = (rel: string) => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(root, r);
      const st = lstatSync(p);
      const path = `${prefix}/${r}`;
      if (st.isSymbolicLink()) files.push({ path, type: 'symlink', target: readlinkSync(p) });
      else if (st.isDirectory()) {
        files.push({ path, type: 'dir', mode: 0o755 });
        rec(r);
      } else files.push({ path, type: 'file', source: p, mode: st.mode & 0o111 ? 0o755 : 0o644 });
    }
  };
  rec('');
  return files;
}

/** throws when any file below dir holds a PEM private key (the signing key must never be packaged) */
function assertNoPrivateKey(dir: string, part: string): void {
  const rec = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isDirectory()) rec(p);
      else if (st.isFile() && readFileSync(p).includes('PRIVATE KEY-----')) throw new KilnError(`[${part}] refusing to package ${p}: it holds a private key`);
    }
  };
  rec(dir);
}

function rfc2822(sde: number): string {
  return new Date(sde * 1000).toUTCString().replace('GMT', '+0000');
}

/** the builddeb file list of linux-headers (scripts/package/builddeb deploy_kernel_headers, 6.1) */
const HEADERS = `set -euo pipefail
src=$1 dest=$2 arch=$3 list=$4
cd "$src"
is_enabled() { grep -q "^$1=y" .config; }
{
  find . arch/$arch -maxdepth 1 -name 'Makefile*'
  find include scripts -type f -o -type l
  find arch/$arch -name Kbuild.platforms -o -name Platform
  find $(find arch/$arch -name include -o -name scripts -type d) -type f
  if is_enabled CONFIG_OBJTOOL; then echo tools/objtool/objtool; fi
  find arch/$arch/include Module.symvers include scripts -type f
  if is_enabled CONFIG_GCC_PLUGINS; then find scripts/gcc-plugins -name '*.so'; fi
} | LC_ALL=C sort -u > "$list"
mkdir -p "$dest"
tar -c -f - -T "$list" | tar -xf - -C "$dest"
cp .config "$dest/.config"
# host tools (modpost, fixdep, sign-file, objtool...) stripped, as Debian's linux-headers ships them;
# without their GNU build-id: objtool's is a hash over debug info that holds the build directory
# (tools/ is built with absolute paths), so two builds in different directories would differ there
find "$dest" -type f -perm -u+x | while read -r f; do
  if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then strip --strip-unneeded --remove-section=.note.gnu.build-id "$f"; fi
done
`;

/** what the shebang `#!/usr/bin/env NAME` becomes (the paths Debian and Fedora install them at) */
const INTERPRETERS: Record<string, string> = { bash: '/bin/bash', sh: '/bin/sh', perl: '/usr/bin/perl', python: '/usr/bin/python3', python3: '/usr/bin/python3', awk: '/usr/bin/awk' };
/** the obsolete FSF postal addresses in license comments (what rpmlint's incorrect-fsf-address looks for) */
const OLD_FSF = /(675[\s*#]+Mass[\s*#]+Ave|59[\s*#]+Temple[\s*#]+Place)([\w\s*#,.-]{0,60}?)(02139|0211\d*-1307)/g;

export interface TidyReport {
  /** .gitignore files and empty files left out */
  removed: string[];
  /** `#!/usr/bin/env X` made absolute */
  interpreters: string[];
  /** executable bit dropped (text without a shebang) or set (a script with one) */
  modes: string[];
  /** license comments whose obsolete FSF postal address was replaced by the current one */
  fsfAddress: string[];
}

/**
 * The headers tree as distributions ship it in kernel-devel/linux-headers (run on the tree before
 * both formats are written, so the .deb and the .rpm hold the same files):
 * - no `.gitignore` (version-control files) and no empty files: kbuild's `include/config/CONFIG_X`
 *   stamps only tell fixdep when to rebuild the kernel itself (an external module's dependency
 *   records name them through `$(wildcard ...)`), and dummy-tools' empty plugin-version.h;
 * - `#!/usr/bin/env X` becomes the absolute interpreter (`/usr/bin/perl`, `/usr/bin/python3`,
 *   `/bin/bash`), as Fedora's brp-mangle-shebangs and its kernel.spec's py3_shebang_fix do;
 * - a text file marked executable without a shebang (scripts/atomic/fallbacks/*: sourced shell
 *   fragments) loses its executable bit; a script with a shebang gets it;
 * - license comments with the FSF's obsolete postal address (675 Mass Ave / 59 Temple Place) get
 *   the current one (51 Franklin Street, Fifth Floor, Boston, MA 02110-1301): comments only, the
 *   line count is kept.
 */
export function tidyHeaders(root: string): TidyReport {
  const rep: TidyReport = { removed: [], interpreters: [], modes: [], fsfAddress: [] };
  const rec = (rel: string) => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(root, r);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        rec(r);
        continue;
      }
      if (!st.isFile()) continue;
      if (n === '.gitignore' || st.size === 0) {
        rmSync(p);
        rep.removed.push(r);
        continue;
      }
      const buf = readFileSync(p);
      if (buf.subarray(0, 8192).includes(0)) continue; // binary (ELF host tools, ...)
      let text = buf.toString('latin1');
      let changed = false;
      const env = /^#!\s*\/usr\/bin\/env\s+(\S+)/.exec(text);
      if (env) {
        const abs = INTERPRETERS[env[1]!] ?? `/usr/bin/${env[1]}`;
        text = text.replace(/^#!\s*\/usr\/bin\/env\s+\S+/, `#!${abs}`);
        changed = true;
        rep.interpreters.push(r);
      }
      if (OLD_FSF.test(text) || /Franklin\s+Steet/.test(text)) {
        OLD_FSF.lastIndex = 0;
        text = text.replace(OLD_FSF, (m) => `51 Franklin Street, Fifth Floor,${/\n[ \t*#]*/.exec(m)?.[0] ?? ' '}Boston, MA 02110-1301`).replace(/Franklin(\s+)Steet/g, 'Franklin$1Street');
        changed = true;
        rep.fsfAddress.push(r);
      }
      OLD_FSF.lastIndex = 0;
      if (changed) writeFileSync(p, Buffer.from(text, 'latin1'));
      const exec = (st.mode & 0o111) !== 0;
      const shebang = text.startsWith('#!');
      if (exec && !shebang) {
        chmodSync(p, st.mode & ~0o111 & 0o7777);
        rep.modes.push(r);
      } else if (!exec && shebang && r.startsWith('scripts/')) {
        chmodSync(p, (st.mode | 0o111) & 0o7777);
        rep.modes.push(r);
      }
    }
  };
  rec('');
  return rep;
}

export interface KernelPackaging {
  /** installed tree (boot/, lib/modules/REL) */
  img: string;
  /** headers tree (usr/src/linux-headers-REL) */
  hdr: string;
  release: string;
  out: string;
  sourceDateEpoch: number;
  revision: string;
  maintainer: string;
  formats: string[];
  buildHost: string;
  sourceName: string;
  part: string;
}

/** The .debs and .rpms of a built kernel (also run alone by bench/kernel-packaging.mjs). */
export async function packageKernel(k: KernelPackaging): Promise<string[]> {
  const { img, hdr, release, out: st, revision: rev, maintainer, formats } = k;
  const sde = k.sourceDateEpoch;
  const copyright = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: Linux\nComment: kernel built by kiln from ${k.sourceName}\n\nFiles: *\nCopyright: 1991-2026 Linus Torvalds and many others\nLicense: GPL-2.0-only\n On Debian systems, the complete text of the GNU General Public License version 2\n can be found in /usr/share/common-licenses/GPL-2.\n`;
  const docs = (pkg: string): PkgFile[] => [
    { path: `/usr/share/doc/${pkg}`, type: 'dir', mode: 0o755 },
    { path: `/usr/share/doc/${pkg}/changelog.Debian.gz`, type: 'file', content: gzipSync(Buffer.from(`linux-kiln (${release}-${rev}) unstable; urgency=medium\n\n  * Linux ${release} built by kiln (part ${k.part}).\n\n -- ${maintainer}  ${rfc2822(sde)}\n`), { level: 9 }), mode: 0o644 },
    { path: `/usr/share/doc/${pkg}/copyright`, type: 'file', content: copyright, mode: 0o644 },
  ];
  const imageFiles = walk(img, '').filter((f) => f.path !== '/boot');
  // the hooks other packages install (initramfs-tools, grub, kernel-install): as builddeb runs them
  const hook = (d: string) => `#!/bin/sh\nset -e\n# kiln: the kernel's maintainer hooks, as scripts/package/builddeb runs them\nexport DEB_MAINT_PARAMS="$*"\nexport INITRD=Yes\nif [ -d /etc/kernel/${d}.d ]; then\n  run-parts --report --exit-on-error --arg=${release} --arg=/boot/vmlinuz-${release} /etc/kernel/${d}.d\nfi\n`;
  const depmod = `if command -v depmod >/dev/null 2>&1; then\n  depmod -a -F /boot/System.map-${release} ${release}\nfi\n`;
  const rver = release.replace(/-/g, '_');
  const common = { version: `${release}-${rev}`, arch: 'amd64', maintainer, license: 'GPL-2.0-only', homepage: 'https://www.kernel.org/', sourceDateEpoch: sde };
  // the Debian-only control fields; the rpm-only header fields (rpm version REL' with '_', Group,
  // BUILDHOST, changelog) and the rpm's own names, file lists and scripts override the translation
  const deb = { source: 'linux-kiln', section: 'kernel', priority: 'optional' };
  const rcommon = { version: rver, release: rev, group: 'System Environment/Kernel', buildHost: k.buildHost, suggests: [], changelog: [{ time: sde, author: `${maintainer} - ${rver}-${rev}`, text: `- Linux ${release} built by kiln` }] };
  const kernelInstall = (action: string) => `if [ -x /usr/bin/kernel-install ]; then\n  /usr/bin/kernel-install ${action} ${release} /boot/vmlinuz-${release} || true\nelif [ -x /sbin/installkernel ] && [ ${action} = add ]; then\n  /sbin/installkernel ${release} /boot/vmlinuz-${release} /boot/System.map-${release} || true\nfi\n`;
  const imgName = `linux-image-${release}`;
  const hdrName = `linux-headers-${release}`;
  const image: PackageInfo = {
    ...common,
    name: imgName,
    summary: `Linux kernel, version ${release}`,
    description: `This package contains the Linux kernel, modules and corresponding other\nfiles, version: ${release}, built by kiln.`,
    relations: { provides: ['linux-image'], suggests: ['initramfs-tools | linux-initramfs-tool'] },
    files: [...imageFiles, ...docs(imgName)],
    scripts: {
      preinstall: hook('preinst'),
      postinstall: hook('postinst').replace('set -e\n', `set -e\nif [ "$1" = configure ]; then\n${depmod.replace(/^/gm, '  ').trimEnd()}\nfi\n`),
      preremove: hook('prerm'),
      postremove: hook('postrm') + `if [ "$1" = purge ]; then\n  rm -f /lib/modules/${release}/modules.*\nfi\n`,
    },
    deb,
    rpm: {
      ...rcommon,
      name: 'kernel',
      summary: `The Linux kernel ${release}`,
      description: `The Linux kernel ${release} (vmlinuz, System.map, config and modules),\nbuilt by kiln.`,
      provides: [`kernel-uname-r = ${release}`, `kernel = ${rver}-${rev}`],
      // depmod's outputs are %ghost (owned, made by %post's depmod), as Fedora's kernel-core has them
      files: imageFiles
        .filter((f) => f.path.startsWith('/boot/') || f.path === `/lib/modules/${release}` || f.path.startsWith(`/lib/modules/${release}/`))
        .map((f) => (DEPMOD_OUTPUT.test(f.path) ? { ...f, ghost: true } : f)),
      scripts: { post: { body: `${depmod}${kernelInstall('add')}` }, preun: { body: kernelInstall('remove') } },
    },
  };
  const headers: PackageInfo = {
    ...common,
    name: hdrName,
    summary: `Linux kernel headers for ${release}`,
    description: `This package provides kernel header files and build files for ${release},\nfor building external modules (DKMS).`,
    relations: { provides: ['linux-headers'] },
    files: [...walk(hdr, ''), { path: `/lib/modules/${release}/build`, type: 'symlink' as const, target: `/usr/src/linux-headers-${release}` }, ...docs(hdrName)],
    deb,
    rpm: {
      ...rcommon,
      name: 'kernel-devel',
      summary: `Development files for building modules against the Linux kernel ${release}`,
      description: `Kernel headers and makefiles for building external modules (DKMS)\nagainst the Linux kernel ${release}, built by kiln.`,
      provides: [`kernel-devel-uname-r = ${release}`],
      files: [{ path: `/usr/src/kernels/${release}`, type: 'dir' as const, mode: 0o755 }, ...walk(join(hdr, 'usr/src', `linux-headers-${release}`), `/usr/src/kernels/${release}`), { path: `/lib/modules/${release}/build`, type: 'symlink' as const, target: `/usr/src/kernels/${release}` }],
    },
  };
  // one description per package, written in each format (debs first, then rpms)
  const summary: string[] = [];
  for (const f of (['deb', 'rpm'] as const).filter((x) => formats.includes(x))) {
    for (const info of [image, headers]) summary.push(...(await writePackages(info, [f], st)).map((w) => w.file));
  }
  return summary;
}

export const recipe: Recipe = {
  kind: 'kernel',
  version: '3',
  description: 'Linux kernel from source + patches + merged config, built in a chroot: linux-image/linux-headers .debs, kernel/kernel-devel .rpms',
  cleanRoom: true,
  innerJobs: true, // ctx.jobs: make -j
  options: {
    ...CLEAN_ROOM_OPTIONS,
    source: { type: 'path', urls: true, description: 'kernel source: tarball (path or URL) or directory', required: true },
    sha256: { type: 'pattern', pattern: /^[0-9a-f]{64}$/, expected: 'a SHA-256 (64 hex digits)', description: 'SHA-256 of the source tarball (required for a URL)' },
    patches: { type: 'paths', description: 'patch files applied in order (patch -p1), one per line' },
    series: { type: 'path', description: 'a quilt series file; its patches (relative to it) are applied after `patches`' },
    'config-base': { type: 'string', description: `${BASES.join(', ')}, ARCH_defconfig, or a .config file`, default: 'defconfig' },
    'config-fragments': { type: 'paths', description: 'config fragment files merged over the base in order (merge_config.sh -m)' },
    config: { type: 'string', multiline: true, description: 'inline fragment lines (CONFIG_X=y, # CONFIG_Y is not set), merged last' },
    localversion: { type: 'pattern', pattern: /^[A-Za-z0-9._+~-]+$/, expected: 'characters allowed in a kernel release (A-Z a-z 0-9 . _ + ~ -)', description: 'CONFIG_LOCALVERSION, e.g. -kiln1' },
    'signing-key': { type: 'path', description: 'signing_key.pem (key + certificate, e.g. ${key:location}/signing_key.pem): modules are signed with it' },
    revision: { type: 'pattern', pattern: /^[A-Za-z0-9.+~]+$/, expected: 'a package revision', description: 'package revision (deb REL-REVISION, rpm release)', default: '1' },
    formats: { type: 'list', choices: ['deb', 'rpm'], noun: 'format', description: 'deb and/or rpm', default: 'deb rpm' },
    maintainer: { type: 'pattern', noun: 'maintainer', pattern: /^[^<>\n]+ <[^<>\s]+@[^<>\s]+>$/, expected: "'Name <email>'", description: "'Name <email>' of the packages", default: 'kiln kernel builder <kernel@kiln.invalid>' },
    'build-user': { type: 'pattern', pattern: /^[A-Za-z0-9._-]+$/, expected: 'a user name (A-Z a-z 0-9 . _ -)', description: 'KBUILD_BUILD_USER', default: 'kiln' },
    'build-host': { type: 'pattern', pattern: /^[A-Za-z0-9._-]+$/, expected: 'a host name (A-Z a-z 0-9 . _ -)', description: 'KBUILD_BUILD_HOST', default: 'kiln-build' },
  },
  validate(ctx) {
    const o = ctx.options;
    const src = o.require('source').trim();
    if (isUrl(src) && !o.get('sha256')?.trim()) throw o.error('sha256', 'a source URL needs its sha256');
    for (const p of patchList(o)) if (!existsSync(p.file) || !statSync(p.file).isFile()) throw o.errorAt ? o.errorAt(p.option, p.line, `patch file not found: ${p.file}`) : o.error(p.option, `patch file not found: ${p.file}`);
    const base = o.get('config-base')!.trim();
    if (!isBase(base)) {
      const f = o.resolvePath('config-base', base);
      if (!existsSync(f) || !statSync(f).isFile()) throw o.error('config-base', `unknown base config '${base}': not one of ${BASES.join(', ')}, ARCH_defconfig, and no such file (${f})`);
    }
    for (const f of fragmentsOf(o)) {
      const bad = parseKconfig(f.text).bad;
      if (bad.length) throw o.error(f.name.endsWith('config') ? 'config' : 'config-fragments', `${f.name}:${bad[0]!.line}: not a config line: '${bad[0]!.text}' (CONFIG_X=value or # CONFIG_X is not set)`);
    }
    const lv = o.get('localversion')?.trim();
    if (lv && !/^[A-Za-z0-9._+~-]+$/.test(lv)) throw o.error('localversion', `characters not allowed in a kernel release: '${lv}'`);
    if (!/^[A-Za-z0-9.+~]+$/.test(o.get('revision')!.trim())) throw o.error('revision', `not a package revision: '${o.get('revision')}'`);
    for (const f of o.list('formats')) if (!['deb', 'rpm'].includes(f)) throw o.error('formats', `unknown format '${f}' (deb, rpm)`);
    // signing-key and source may be outputs of other parts: checked when building
    if (!/^[^<>\n]+ <[^<>\s]+@[^<>\s]+>$/.test(o.get('maintainer')!.trim())) throw o.error('maintainer', `expected 'Name <email>'`);
  },
  inputs(ctx) {
    const o = ctx.options;
    const ins = patchList(o).map((p) => p.file);
    if (o.path('series')) ins.push(o.path('series')!);
    if (!isUrl(o.require('source').trim())) ins.push(o.path('source')!);
    ins.push(...o.paths('config-fragments'));
    const base = o.get('config-base')!.trim();
    if (!isBase(base)) ins.push(o.resolvePath('config-base', base));
    if (o.path('signing-key')) ins.push(o.path('signing-key')!);
    return ins;
  },
  tools: () => ['tar'],
  async install(ctx) {
    const o = ctx.options;
    const t0 = Date.now();
    const phase = (s: string) => ctx.log(`# kiln: ${s} (${((Date.now() - t0) / 1000).toFixed(1)}s)\n`);
    const work = ctx.work;
    const tree = join(work, 'linux');
    // 0. the chroot has the tools (a missing compiler is named before a long extraction)
    const probe = await ctx.run(['sh', '-c', 'for t in "$@"; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done', 'probe', ...BUILD_TOOLS], { allowFailure: true });
    const missing = probe.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
    if (probe.code !== 0 || missing.length) {
      throw new KilnError(`[${ctx.part}] the build ${o.get('chroot')?.trim() ? 'chroot' : 'host'} lacks ${missing.join(', ') || 'a shell'}: a kernel build needs ${BUILD_TOOLS.join(' ')} (packages gcc make bc flex bison perl tar xz-utils patch kmod, and libelf-dev libssl-dev)`);
    }
    // 1. source
    const src = o.require('source').trim();
    const srcPath = isUrl(src) ? src : o.path('source')!;
    if (!isUrl(src) && !existsSync(srcPath)) throw o.error('source', `not found: ${srcPath}`);
    if (!isUrl(src) && statSync(srcPath).isDirectory()) {
      cpSync(srcPath, tree, { recursive: true, verbatimSymlinks: true });
    } else {
      const file = await fetchVerified(srcPath, { sha256: o.get('sha256') }, { cacheDir: join(ctx.cacheDir, 'downloads'), offline: ctx.offline, signal: ctx.signal, log: ctx.log, error: (_opt: string, d: string) => o.error('source', d) });
      const copy = join(work, `source-${basename(file)}`);
      copyFileSync(file, copy);
      const x = join(work, 'x');
      mkdirSync(x, { recursive: true });
      await ctx.run(['tar', '-xf', copy, '-C', x, '--no-same-owner']);
      const top = readdirSync(x);
      if (top.length !== 1 || !statSync(join(x, top[0]!)).isDirectory()) throw o.error('source', `expected one top-level directory in ${file}, found ${top.slice(0, 5).join(', ')}`);
      renameSync(join(x, top[0]!), tree);
    }
    if (!existsSync(join(tree, 'Makefile')) || !existsSync(join(tree, 'scripts/kconfig'))) throw o.error('source', `no kernel source tree in ${srcPath} (no Makefile and scripts/kconfig)`);
    phase('source unpacked');
    // 2. patches, in order; a failure names the patch and shows the rejected hunks
    const pdir = join(work, 'patches');
    mkdirSync(pdir, { recursive: true });
    let n = 0;
    for (const p of patchList(o)) {
      const copy = join(pdir, `${String(++n).padStart(3, '0')}-${basename(p.file)}`);
      copyFileSync(p.file, copy);
      const r = await ctx.run(['patch', '-p1', '--batch', '--forward', '--no-backup-if-mismatch', '-r', `${copy}.rej`, '-i', copy], { cwd: tree, allowFailure: true });
      if (r.code !== 0) {
        const rej = existsSync(`${copy}.rej`) ? readFileSync(`${copy}.rej`, 'utf8') : '';
        const where = o.origin(p.option);
        throw new KilnError(
          `[${ctx.part}] patch ${n} '${basename(p.file)}' (${p.option}${where ? ` at ${where.file}:${where.line}` : ''}: ${p.file}) does not apply:\n${(r.stdout + r.stderr).trim()}` +
            (rej ? `\n--- rejected hunks ---\n${rej.split('\n').slice(0, 60).join('\n')}` : ''),
        );
      }
    }
    if (n) phase(`${n} patch(es) applied`);
    // 3. config: base, fragments (merge_config.sh -m), olddefconfig, then every requested option must hold
    const env: Record<string, string> = {
      ARCH: 'x86_64',
      KBUILD_BUILD_TIMESTAMP: rfc2822(ctx.sourceDateEpoch),
      KBUILD_BUILD_USER: o.get('build-user')!.trim(),
      KBUILD_BUILD_HOST: o.get('build-host')!.trim(),
      KBUILD_BUILD_VERSION: '1',
      LOCALVERSION: '',
      SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch),
    };
    const make = (args: string[], opts: { allowFailure?: boolean } = {}) => ctx.run(['make', '-C', tree, ...args], { cwd: tree, env, ...opts });
    const base = o.get('config-base')!.trim();
    if (isBase(base)) await make([base]);
    else copyFileSync(o.resolvePath('config-base', base), join(tree, '.config'));
    const frags = fragmentsOf(o);
    const extra: string[] = [];
    const lv = o.get('localversion')?.trim();
    if (lv) extra.push(`CONFIG_LOCALVERSION="${lv}"`, '# CONFIG_LOCALVERSION_AUTO is not set');
    const key = o.path('signing-key');
    if (key && (!existsSync(key) || !statSync(key).isFile())) throw o.error('signing-key', `file not found: ${key}`);
    if (key) {
      const kt = readFileSync(key, 'utf8');
      if (!kt.includes('PRIVATE KEY-----') || !kt.includes('BEGIN CERTIFICATE')) throw o.error('signing-key', `${key} must hold a PEM private key and its certificate (signing_key.pem of kiln:x509-key)`);
      copyFileSync(key, join(tree, KEY_IN_TREE));
      chmodSync(join(tree, KEY_IN_TREE), 0o600);
      extra.push('CONFIG_MODULES=y', 'CONFIG_MODULE_SIG=y', 'CONFIG_MODULE_SIG_ALL=y', `CONFIG_MODULE_SIG_KEY="${KEY_IN_TREE}"`, 'CONFIG_SYSTEM_TRUSTED_KEYRING=y', 'CONFIG_SYSTEM_TRUSTED_KEYS=""');
    }
    if (extra.length) frags.push({ name: `[${ctx.part}] localversion/signing-key`, text: extra.join('\n') + '\n' });
    const merged = mergeKconfig(readFileSync(join(tree, '.config'), 'utf8'), frags);
    for (const ov of merged.overrides) ctx.log(`# kiln: merge: ${ov}\n`);
    writeFileSync(join(tree, '.config'), merged.text);
    await make(['olddefconfig']);
    const final = readFileSync(join(tree, '.config'), 'utf8');
    const lost = lostOptions(final, merged.requested);
    if (lost.length) {
      const opt = lost.some((l) => l.from.endsWith('] config')) ? 'config' : 'config-fragments';
      throw o.error(
        opt,
        `requested option${lost.length > 1 ? 's' : ''} did not survive make olddefconfig (missing dependencies or a typo):\n` +
          lost.map((l) => `  ${l.name}: asked ${l.want} at ${l.from}:${l.line}, the final .config has ${l.got}`).join('\n'),
      );
    }
    if (/^CONFIG_MODULE_SIG=y$/m.test(final) && !key) throw o.error('signing-key', 'the config enables CONFIG_MODULE_SIG: give signing-key (kiln:x509-key) so the modules are signed with a known key, never one generated during the build');
    const modules = /^CONFIG_MODULES=y$/m.test(final);
    phase('config ready');
    // 4. build (the release is known once include/config/auto.conf exists: after the build)
    await make([`-j${Math.max(1, ctx.jobs)}`, 'bzImage', ...(modules ? ['modules'] : [])]);
    const release = readFileSync(join(tree, 'include/config/kernel.release'), 'utf8').trim();
    if (!/^\d+\.\d+[\w.+~-]*$/.test(release)) throw new KilnError(`[${ctx.part}] the kernel release is '${release}'`);
    phase(`compiled: release ${release}`);
    const img = join(work, 'image');
    mkdirSync(join(img, 'boot'), { recursive: true });
    if (modules) {
      await make(['-s', `INSTALL_MOD_PATH=${img}`, 'modules_install']);
      for (const l of ['build', 'source']) {
        const p = join(img, 'lib/modules', release, l);
        if (existsSync(p) || (() => { try { return lstatSync(p).isSymbolicLink(); } catch { return false; } })()) await ctx.run(['rm', '-f', p]);
      }
    }
    copyFileSync(join(tree, 'arch/x86/boot/bzImage'), join(img, 'boot', `vmlinuz-${release}`));
    copyFileSync(join(tree, 'System.map'), join(img, 'boot', `System.map-${release}`));
    writeFileSync(join(img, 'boot', `config-${release}`), final);
    const hdr = join(work, 'headers');
    const hdrDir = join(hdr, 'usr/src', `linux-headers-${release}`);
    await ctx.run(['bash', '-c', HEADERS, 'kiln-kernel-headers', tree, hdrDir, 'x86', join(work, 'headers.list')], { cwd: tree, env });
    mkdirSync(join(hdr, 'lib/modules', release), { recursive: true });
    const tidy = tidyHeaders(hdrDir);
    ctx.log(`# kiln: headers tidied: ${tidy.removed.length} .gitignore/empty files left out, ${tidy.interpreters.length} env interpreters made absolute, ${tidy.modes.length} modes fixed, ${tidy.fsfAddress.length} obsolete FSF addresses replaced\n`);
    assertNoPrivateKey(img, ctx.part);
    assertNoPrivateKey(hdr, ctx.part);
    phase('installed');
    // 5. outputs for other parts
    const st = ctx.staging;
    copyFileSync(join(img, 'boot', `vmlinuz-${release}`), join(st, 'vmlinuz'));
    copyFileSync(join(tree, 'System.map'), join(st, 'System.map'));
    writeFileSync(join(st, 'config'), final);
    if (modules) copyFileSync(join(tree, 'Module.symvers'), join(st, 'Module.symvers'));
    // 6. packages
    const summary = await packageKernel({ img, hdr, release, out: st, sourceDateEpoch: ctx.sourceDateEpoch, revision: o.get('revision')!.trim(), maintainer: o.get('maintainer')!.trim(), formats: o.list('formats'), buildHost: o.get('build-host')!.trim(), sourceName: basename(srcPath), part: ctx.part });
    phase('packaged');
    // the trees, for kiln:dkms (kernel =) and boot tests
    renameSync(img, join(st, 'image'));
    renameSync(hdr, join(st, 'headers'));
    writeFileSync(join(st, 'kernel.json'), JSON.stringify({ release, version: release.replace(/^(\d+\.\d+(?:\.\d+)?).*$/, '$1'), modules, moduleSig: !!key, patches: patchList(o).map((p) => basename(p.file)), base, packages: summary }, null, 1) + '\n');
    if (ctx.signal.aborted) throw new KilnError('interrupted', ExitCode.INTERRUPTED);
  },
};
export default recipe;
