/**
 * kiln:dkms: DKMS kernel modules built for one or more kernels inside a build chroot that holds
 * the matching linux-headers (never on the host), packaged as:
 *   NAME-modules-KVER_VERSION_ARCH.deb   the prebuilt .ko, like `dkms mkbmdeb` (dkms 2.8): Source
 *                                        NAME-dkms-bin, Depends linux-image-KVER, Provides
 *                                        NAME-modules, /lib/modules/KVER/updates/dkms/*.ko, depmod
 *                                        in postinst/postrm
 *   kmod-NAME-KVER-VERSION-1.ARCH.rpm    the same modules for rpm-based targets (/lib/modules/KVER/extra/NAME/)
 *   NAME-dkms_VERSION_all.deb            the DKMS source package, like `dkms mkdeb`
 *
 * The source is a directory or tarball with dkms.conf, or a Debian *-dkms .deb (its
 * /usr/src/NAME-VERSION is used); without dkms.conf one is written from the options.
 * The build runs `dkms add` + `dkms build` in the chroot's container, in dkms's own fixed paths
 * (/usr/src, /var/lib/dkms) so the .ko bytes do not depend on kiln's temporary directory; kernels
 * that BUILD_EXCLUSIVE_* excludes are skipped with a notice; a compile failure shows the compiler's
 * errors first (make.log and the command in the part's log). The .debs carry copyright and
 * changelog, the rpm Group and %changelog (lintian/rpmlint clean but for the rpm's no-signature).
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ExitCode, KilnError } from '../lib/errors.js';
import type { PkgFile } from '../pkg/files.js';
import { checkModules, parseSymvers } from '../pkg/kmod-symvers.js';
import { signingInputs, signingOptions, signingTools, type BuildContext, type OptionSpec, type Recipe } from '../kind.js';
import { writePackages } from '../pkg/info.js';

const SPDX_RE = /^\(?[A-Za-z0-9][A-Za-z0-9.+-]*(?:\s+(?:AND|OR|WITH|and|or|with)\s+\(?[A-Za-z0-9][A-Za-z0-9.+-]*\)?)*\)?$/;

const OPTIONS = {
  source: { type: 'path', description: 'module source: a directory or tarball with dkms.conf, or a *-dkms .deb', required: true },
  kernels: { type: 'list', pattern: /^\d+\.\d+[\w.+-]*$/, expected: 'a kernel version (uname -r)', description: 'kernel versions (uname -r), e.g. 6.1.0-56-amd64; their linux-headers must be in the chroot (or come from `kernel`)' },
  kernel: { type: 'paths', description: 'kiln:kernel parts (${kernel:location}, one per line): their headers are used and their releases added to kernels' },
  'module-signing-key': { type: 'path', description: "signing_key.pem (kiln:x509-key): modules are signed with the kernel's scripts/sign-file" },
  'symbol-check': { type: 'bool', description: "check every undefined symbol (and CRC) against the kernel's Module.symvers before packaging", default: 'true' },
  symvers: { type: 'path', description: "check against this Module.symvers instead of each kernel's own" },
  chroot: { type: 'path', description: 'build chroot with dkms, gcc, make and the linux-headers of each kernel', required: true },
  network: { type: 'bool', description: 'network in the build chroot', default: 'false' },
  architecture: { type: 'pattern', pattern: /^[a-z0-9][a-z0-9-]*$/, expected: 'a Debian architecture', description: 'Debian architecture of the modules', default: 'amd64' },
  formats: { type: 'list', choices: ['bmdeb', 'kmod-rpm', 'dkms-deb'], noun: 'output', description: 'outputs: bmdeb (binary module .deb), kmod-rpm, dkms-deb (source)', default: 'bmdeb kmod-rpm dkms-deb' },
  maintainer: { type: 'pattern', noun: 'maintainer', pattern: /^[^<>\n]+ <[^<>\s]+@[^<>\s]+>$/, expected: "'Name <email>'", description: "'Name <email>' for the packages (default: dkms's own, as mkbmdeb writes it)", default: 'Dynamic Kernel Modules Support Team <pkg-dkms-maint@lists.alioth.debian.org>' },
  license: { type: 'pattern', pattern: SPDX_RE, expected: 'an SPDX license expression', description: 'license (SPDX) for the rpm and a generated copyright file', default: 'GPL-2.0-only' },
  copyright: { type: 'string', description: "copyright holders for a generated copyright file (e.g. '2024 Jane Doe <jane@example.org>')" },
  'copyright-file': { type: 'path', description: 'the packages\' /usr/share/doc/PKG/copyright (default: the source\'s own, else one written from copyright and license)' },
  'package-name': { type: 'pattern', pattern: /^[^"$`\\]+$/, expected: 'a name without quotes, $, ` or \\', description: 'PACKAGE_NAME when the source has no dkms.conf' },
  'package-version': { type: 'pattern', pattern: /^[^"$`\\]+$/, expected: 'a version without quotes, $, ` or \\', description: 'PACKAGE_VERSION when the source has no dkms.conf' },
  'built-module-name': { type: 'pattern', pattern: /^[^"$`\\]+$/, expected: 'module names without quotes, $, ` or \\', description: 'module names when the source has no dkms.conf' },
  'dest-module-location': { type: 'pattern', pattern: /^\/[^"$`\\\s]*$/, expected: 'an absolute module directory', description: 'DEST_MODULE_LOCATION when writing dkms.conf', default: '/updates' },
  make: { type: 'string', description: 'MAKE[0] when writing dkms.conf' },
  clean: { type: 'string', description: 'CLEAN when writing dkms.conf' },
  autoinstall: { type: 'bool', description: 'AUTOINSTALL when writing dkms.conf', default: 'true' },
  ...signingOptions('the kmod .rpm gets a header signature (as kiln:package)'),
} as const satisfies Record<string, OptionSpec>;

export interface DkmsConf {
  name: string;
  version: string;
  modules: Array<{ name: string; dest: string }>;
}

/** The fields kiln needs from a dkms.conf (a shell fragment dkms sources: read, never run, here). */
export function parseDkmsConf(text: string): DkmsConf {
  const v = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_]+(?:\[\d+\])?)=(?:"([^"]*)"|'([^']*)'|(\S*))\s*(?:#.*)?$/.exec(line);
    if (m) v.set(m[1]!, m[2] ?? m[3] ?? m[4] ?? '');
  }
  const name = v.get('PACKAGE_NAME');
  const version = v.get('PACKAGE_VERSION');
  if (!name || !version) throw new KilnError('dkms.conf has no PACKAGE_NAME or PACKAGE_VERSION');
  const modules: DkmsConf['modules'] = [];
  for (let i = 0; v.has(`BUILT_MODULE_NAME[${i}]`); i++) {
    modules.push({ name: v.get(`BUILT_MODULE_NAME[${i}]`)!.replace(/\$PACKAGE_NAME|\$\{PACKAGE_NAME\}/g, name), dest: v.get(`DEST_MODULE_LOCATION[${i}]`) ?? '/updates' });
  }
  if (!modules.length) modules.push({ name: v.get('BUILT_MODULE_NAME') ?? name, dest: v.get('DEST_MODULE_LOCATION') ?? '/updates' });
  return { name, version, modules };
}

function findDkmsConf(dir: string, depth = 0): string | undefined {
  if (existsSync(join(dir, 'dkms.conf'))) return dir;
  if (depth > 4) return undefined;
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) {
      const f = findDkmsConf(p, depth + 1);
      if (f) return f;
    }
  }
  return undefined;
}

/** Put the module source in work/src-in and return the directory holding dkms.conf. */
async function unpackSource(ctx: BuildContext): Promise<string> {
  const o = ctx.options;
  const v = o.typed(OPTIONS);
  const src = v.source;
  const into = join(ctx.work, 'src-in');
  mkdirSync(into, { recursive: true });
  if (!existsSync(src)) throw o.error('source', `not found: ${src}`);
  if (statSync(src).isDirectory()) cpSync(src, into, { recursive: true, verbatimSymlinks: true });
  else if (src.endsWith('.deb')) await ctx.run(['dpkg-deb', '-x', src, into]);
  else await ctx.run(['tar', '-xf', src, '-C', into, '--no-same-owner']);
  let dir = findDkmsConf(into);
  if (!dir) {
    // names and versions: no quotes, $, ` or \ (the options' patterns), one line each
    const { 'package-name': name, 'package-version': version } = v;
    if (!name || !version) throw o.error('source', `no dkms.conf in ${src}: give package-name, package-version and built-module-name to write one`);
    dir = into;
    const mods = v['built-module-name']?.split(/\s+/) ?? [name];
    let conf = `PACKAGE_NAME="${name}"\nPACKAGE_VERSION="${version}"\nAUTOINSTALL="${v.autoinstall ? 'yes' : 'no'}"\n`;
    if (v.make) conf += `MAKE[0]="${v.make}"\n`;
    if (v.clean) conf += `CLEAN="${v.clean}"\n`;
    mods.forEach((m, i) => (conf += `BUILT_MODULE_NAME[${i}]="${m}"\nDEST_MODULE_LOCATION[${i}]="${v['dest-module-location']}"\n`));
    writeFileSync(join(dir, 'dkms.conf'), conf);
  }
  return dir;
}

// Runs in the chroot's container (bash: dkms is bash, and its BUILD_EXCLUSIVE test is bash's =~).
// The module is built where dkms itself builds it, /usr/src/NAME-VERSION and /var/lib/dkms (in
// the throw-away container, not the host): paths the compiler records in the .ko (DWARF
// comp_dir, __FILE__) are then the same in every build, so the module bytes depend only on the
// inputs. dkms's own signing is off (a key generated on the fly would differ each time); with
// module-signing-key the modules are signed by the kernel's scripts/sign-file with that key. Constant text;
// values arrive as positional parameters:
//   $1 out dir (work dir, mounted)  $2 source dir  $3 name  $4 version  $5 arch (uname -m)
//   $6 make jobs (the part's share of -j)  $7.. kernels
// Writes out/modules/KVER/*.ko, out/excluded (KVER<TAB>reason lines), on failure out/failed
// (KVER) and out/make.log.
const BUILD = `set -euo pipefail
out=$1 src=$2 name=$3 ver=$4 arch=$5 jobs=$6
shift 6
mkdir -p /etc/dkms/framework.conf.d /usr/src /var/lib/dkms "$out/modules"
# headers of kiln-built kernels (kiln:kernel parts' headers/ trees, read-only mounts): copied to
# where Debian's linux-headers put them, with the /lib/modules/KVER/build link
for h in \${KILN_KERNEL_HEADERS:-}; do
  for d in "$h"/usr/src/linux-headers-*; do
    kv=\${d##*/linux-headers-}
    rm -rf "/usr/src/linux-headers-$kv"
    cp -a "$d" "/usr/src/linux-headers-$kv"
    mkdir -p "/lib/modules/$kv"
    ln -sfn "/usr/src/linux-headers-$kv" "/lib/modules/$kv/build"
  done
done
printf '%s\\n' 'sign_file=/nonexistent/kiln-builds-unsigned-modules' > /etc/dkms/framework.conf.d/zz-kiln.conf
rm -rf "/usr/src/$name-$ver" "/var/lib/dkms/$name/$ver"
cp -a "$src" "/usr/src/$name-$ver"
: > "$out/excluded"
# dkms's own BUILD_EXCLUSIVE rule (dkms 3.0 read_conf), with the reason; dkms.conf is sourced
# as dkms sources it
excluded() (
  set +eu
  kernelver=$1 kernel_source_dir=/lib/modules/$1/build dkms_tree=/var/lib/dkms source_tree=/usr/src
  . "/usr/src/$name-$ver/dkms.conf" >/dev/null 2>&1
  if [[ $BUILD_EXCLUSIVE_KERNEL && ! $1 =~ $BUILD_EXCLUSIVE_KERNEL ]]; then
    echo "BUILD_EXCLUSIVE_KERNEL=\\"$BUILD_EXCLUSIVE_KERNEL\\" does not match kernel $1"; return
  fi
  if [[ $BUILD_EXCLUSIVE_ARCH && ! $arch =~ $BUILD_EXCLUSIVE_ARCH ]]; then
    echo "BUILD_EXCLUSIVE_ARCH=\\"$BUILD_EXCLUSIVE_ARCH\\" does not match architecture $arch"; return
  fi
  if [[ $BUILD_EXCLUSIVE_CONFIG && -e $kernel_source_dir/.config ]]; then
    for kconf in $BUILD_EXCLUSIVE_CONFIG; do
      case $kconf in
        !*) if grep -q -E "^\${kconf#!}=[ym]" "$kernel_source_dir/.config"; then echo "BUILD_EXCLUSIVE_CONFIG: \${kconf#!} is set in the .config of kernel $1"; return; fi ;;
        *) if ! grep -q -E "^$kconf=[ym]" "$kernel_source_dir/.config"; then echo "BUILD_EXCLUSIVE_CONFIG: $kconf is not set (y or m) in the .config of kernel $1"; return; fi ;;
      esac
    done
  fi
)
dkms add -m "$name" -v "$ver"
for k in "$@"; do
  reason=$(excluded "$k")
  if [ -n "$reason" ]; then
    echo "kiln: kernel $k skipped: $reason"
    printf '%s\\t%s\\n' "$k" "$reason" >> "$out/excluded"
    continue
  fi
  rc=0
  dkms build -j "$jobs" -m "$name" -v "$ver" -k "$k" || rc=$?
  if [ "$rc" = 77 ]; then
    printf '%s\\t%s\\n' "$k" 'dkms: a BUILD_EXCLUSIVE directive does not match this kernel, architecture or kernel config' >> "$out/excluded"
    continue
  fi
  if [ "$rc" != 0 ]; then
    printf '%s\\n' "$k" > "$out/failed"
    if [ -f "/var/lib/dkms/$name/$ver/build/make.log" ]; then cp "/var/lib/dkms/$name/$ver/build/make.log" "$out/make.log"; fi
    exit "$rc"
  fi
  mkdir -p "$out/modules/$k"
  cp /var/lib/dkms/"$name/$ver/$k"/*/module/* "$out/modules/$k/"
  if [ -f "/lib/modules/$k/build/Module.symvers" ]; then cp "/lib/modules/$k/build/Module.symvers" "$out/modules/$k.symvers"; fi
  # module signing with the given key (kiln:x509-key), by the kernel's own sign-file
  if [ -n "\${KILN_SIGN_KEY:-}" ]; then
    hash=$(grep '^CONFIG_MODULE_SIG_HASH=' "/lib/modules/$k/build/.config" 2>/dev/null | cut -d'"' -f2 || true)
    for ko in "$out/modules/$k"/*.ko; do
      "/lib/modules/$k/build/scripts/sign-file" "\${hash:-sha256}" "$KILN_SIGN_KEY" "$KILN_SIGN_KEY" "$ko"
    done
    echo "kiln: signed the modules for $k with \${hash:-sha256}"
  fi
done
`;

function modulesOf(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => /\.ko(\.(xz|gz|zst))?$/.test(f)).sort() : [];
}

function rfc2822(sde: number): string {
  return new Date(sde * 1000).toUTCString().replace('GMT', '+0000');
}

/** Word-wrap to `width` columns (rpmlint: description lines under 80). */
export function wrap(text: string, width = 72): string {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + w.length > width) {
      out.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out.join('\n');
}

/** Debian changelog entry (changelog.gz or changelog.Debian.gz), gzip without name or time: reproducible. */
function debChangelog(source: string, version: string, maintainer: string, sde: number, text: string): Buffer {
  return gzipSync(Buffer.from(`${source} (${version}) unstable; urgency=medium\n\n${wrap(text, 74).replace(/^/gm, '    ').replace(/^ {4}/, '  * ')}\n\n -- ${maintainer}  ${rfc2822(sde)}\n`), { level: 9 });
}

const LICENSE_FILES = ['COPYING', 'COPYING.txt', 'LICENSE', 'LICENSE.txt', 'LICENCE', 'LICENSE.md'];
const GPL = /GNU GENERAL PUBLIC LICENSE\s+Version (\d)/;

/**
 * The copyright file of the packages: the copyright-file option; else the module source's own
 * Debian copyright (debian/copyright, copyright, or /usr/share/doc/*\/copyright of a *-dkms .deb);
 * else a DEP-5 file written from the copyright and license options, with the source's license
 * file (COPYING, LICENSE, ...) as the license text (a full GNU GPL text is referred to in
 * /usr/share/common-licenses instead, as Debian policy asks).
 */
function copyrightText(ctx: BuildContext, srcIn: string, srcDir: string, name: string, version: string): { text: string; from: string } {
  const o = ctx.options;
  const v = o.typed(OPTIONS);
  const explicit = v['copyright-file'];
  if (explicit) {
    if (!existsSync(explicit) || !statSync(explicit).isFile()) throw o.error('copyright-file', `not a file: ${explicit}`);
    return { text: readFileSync(explicit, 'utf8'), from: explicit };
  }
  const docs = join(srcIn, 'usr/share/doc');
  const candidates = [join(srcDir, 'debian/copyright'), join(srcDir, 'copyright'), ...(existsSync(docs) ? readdirSync(docs).sort().map((d) => join(docs, d, 'copyright')) : [])];
  for (const c of candidates) if (existsSync(c) && statSync(c).isFile()) return { text: readFileSync(c, 'utf8'), from: c };
  const licenseFile = LICENSE_FILES.map((f) => join(srcDir, f)).find((f) => existsSync(f) && statSync(f).isFile());
  const holder = v.copyright || `the ${name} authors`;
  let license = v.license;
  let body: string;
  const lt = licenseFile ? readFileSync(licenseFile, 'utf8') : '';
  const gpl = GPL.exec(lt);
  if (gpl || /^GPL-[23]/.test(license)) {
    const gplv = gpl?.[1] ?? license[4]!;
    if (gpl && !license.startsWith(`GPL-${gplv}`)) license = `GPL-${gplv}`;
    body = `On Debian systems, the complete text of the GNU General Public License version ${gplv} can be found in /usr/share/common-licenses/GPL-${gplv}.`;
  } else if (lt.trim()) {
    body = lt.replace(/\s+$/, '');
  } else body = `See the ${name} ${version} source for the license text.`;
  const indent = (t: string) => t.split('\n').map((l) => (l.trim() ? ` ${l.trimEnd()}` : ' .')).join('\n');
  const text = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: ${name}\nComment: kernel module packages built by kiln from ${name} ${version} (DKMS)\n\nFiles: *\nCopyright: ${holder}\nLicense: ${license}\n${indent(body.includes('\n') ? body : wrap(body, 72))}\n`;
  return { text, from: licenseFile ? `options and ${licenseFile}` : 'options' };
}

export const recipe: Recipe = {
  kind: 'dkms',
  version: '3',
  description: 'DKMS modules prebuilt for given kernels in a chroot: binary module .deb (mkbmdeb), kmod .rpm, source dkms .deb',
  options: OPTIONS,
  cleanRoom: true,
  innerJobs: true, // ctx.jobs: dkms build -j and the package writers' threads
  validate(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    if (!v.kernels.length && !v.kernel.length) throw o.error('kernels', "give 'kernels' or 'kernel' (a kiln:kernel part)");
    // set but empty, or control characters (a tab): not a line of holders
    const c = o.get('copyright');
    if (c !== undefined && (!c.trim() || /[\x00-\x1f\x7f]/.test(c.trim()))) throw o.error('copyright', 'one line of copyright holders, e.g. 2024 Jane Doe <jane@example.org>');
    for (const k of ['signing-key', 'signing-key-passphrase-file'] as const) {
      const f = v[k];
      if (f && (!existsSync(f) || !statSync(f).isFile())) throw o.error(k, `file not found: ${f}`);
    }
  },
  inputs(ctx) {
    const v = ctx.options.typed(OPTIONS);
    return [v.source, ...(v['copyright-file'] ? [v['copyright-file']] : []), ...signingInputs(v), ...(v['module-signing-key'] ? [v['module-signing-key']] : []), ...(v.symvers ? [v.symvers] : [])];
  },
  tools: (ctx) => ['docker', 'xz', ...signingTools(ctx.options.typed(OPTIONS))],
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const kernels = [...v.kernels];
    for (const kp of v.kernel) {
      const kj = join(kp, 'kernel.json');
      if (!existsSync(kj)) throw o.error('kernel', `${kp} is not the output of a kiln:kernel part (no kernel.json)`);
      const rel = (JSON.parse(readFileSync(kj, 'utf8')) as { release: string }).release;
      if (!kernels.includes(rel)) kernels.push(rel);
    }
    const srcDir = await unpackSource(ctx);
    const conf = parseDkmsConf(readFileSync(join(srcDir, 'dkms.conf'), 'utf8'));
    const arch = v.architecture;
    const uarch = arch === 'amd64' ? 'x86_64' : arch === 'arm64' ? 'aarch64' : arch;
    const out = join(ctx.work, 'build-out');
    mkdirSync(out, { recursive: true });
    const argv = ['bash', '-c', BUILD, 'kiln-dkms-build', out, srcDir, conf.name, conf.version, uarch, String(Math.max(1, ctx.jobs)), ...kernels];
    ctx.log(`# kiln: dkms add + build of ${conf.name}/${conf.version} in the clean room (/usr/src, /var/lib/dkms) for ${kernels.join(' ')}\n`);
    ctx.log(`# kiln: command in the chroot: bash -c BUILD ${argv.slice(3).map((a) => JSON.stringify(a)).join(' ')} (BUILD: the script in kiln's src/kinds/dkms.ts)\n`);
    const kernelParts = o.paths('kernel');
    const signKey = o.path('module-signing-key');
    for (const k of ['module-signing-key', 'symvers']) {
      const f = o.path(k);
      if (f && (!existsSync(f) || !statSync(f).isFile())) throw o.error(k, `file not found: ${f}`);
    }
    const r = await ctx.run(argv, { allowFailure: true, env: { KILN_KERNEL_HEADERS: kernelParts.map((k) => join(k, 'headers')).join(' '), ...(signKey ? { KILN_SIGN_KEY: signKey } : {}) } });
    if (ctx.signal.aborted) throw new KilnError('interrupted', ExitCode.INTERRUPTED);
    if (r.code !== 0) {
      const failed = existsSync(join(out, 'failed')) ? readFileSync(join(out, 'failed'), 'utf8').trim() : undefined;
      const makeLog = existsSync(join(out, 'make.log')) ? readFileSync(join(out, 'make.log'), 'utf8') : '';
      if (makeLog) ctx.log(`# kiln: dkms make.log for kernel ${failed}:\n${makeLog}${makeLog.endsWith('\n') ? '' : '\n'}`);
      // the compiler's own error lines first, then the end of make.log (or of dkms's output)
      const lines = (makeLog || r.stderr || r.stdout).split('\n');
      const errors = lines.filter((l) => /(^|: )(fatal )?error: |^ERROR: |\*\*\* /.test(l)).slice(0, 15);
      const tail = lines.slice(-25).join('\n').trim();
      throw new KilnError(
        `[${ctx.part}] module ${conf.name}/${conf.version} failed to build${failed ? ` for kernel ${failed}` : ''}:\n` +
          (errors.length ? `${errors.join('\n')}\n--- end of ${makeLog ? 'make.log' : 'dkms output'} ---\n` : '') +
          tail,
      );
    }
    const excluded = new Map<string, string>();
    for (const l of readFileSync(join(out, 'excluded'), 'utf8').split('\n')) {
      const t = l.indexOf('\t');
      if (t > 0) excluded.set(l.slice(0, t), l.slice(t + 1));
    }
    for (const [k, why] of excluded) {
      const msg = `kernel ${k} skipped (no package for it): ${why}`;
      if (ctx.notice) ctx.notice(msg);
      else ctx.log(`# kiln: ${msg}\n`);
    }
    const built = kernels.filter((k) => !excluded.has(k));
    // the kernel-ABI check before anything is packaged: undefined symbols vs the kernel's
    // Module.symvers (or the `symvers` option's), CRCs when the module has __versions
    const symversOpt = o.path('symvers');
    if (o.bool('symbol-check', true)) {
      for (const k of built) {
        const sv = symversOpt ?? join(out, 'modules', `${k}.symvers`);
        if (!existsSync(sv)) {
          const msg = `kernel ${k}: no Module.symvers in its headers, symbol check skipped`;
          if (ctx.notice) ctx.notice(msg);
          else ctx.log(`# kiln: ${msg}\n`);
          continue;
        }
        const problems = checkModules(modulesOf(join(out, 'modules', k)).map((f) => join(out, 'modules', k, f)), parseSymvers(readFileSync(sv, 'utf8')));
        if (problems.length) {
          throw new KilnError(`[${ctx.part}] symbol check failed for kernel ${k} against ${symversOpt ? sv : `its Module.symvers`} (nothing packaged):\n${problems.slice(0, 20).map((p) => `  ${p.detail}`).join('\n')}${problems.length > 20 ? `\n  ... ${problems.length - 20} more` : ''}`);
        }
        ctx.log(`# kiln: symbol check for ${k}: every undefined symbol is exported by the kernel${symversOpt ? ` (${sv})` : ''}, CRCs match\n`);
      }
    }
    if (!built.length) {
      throw new KilnError(`[${ctx.part}] module ${conf.name}/${conf.version}: every kernel is excluded by dkms.conf's BUILD_EXCLUSIVE, nothing to package:\n${[...excluded].map(([k, w]) => `  ${k}: ${w}`).join('\n')}`);
    }
    const { maintainer, formats } = v;
    const sde = ctx.sourceDateEpoch;
    const copyright = copyrightText(ctx, join(ctx.work, 'src-in'), srcDir, conf.name, conf.version);
    ctx.log(`# kiln: copyright file from ${copyright.from}\n`);
    const docs = (pkg: string, source: string, version: string, change: string): PkgFile[] => [
      // a native version (no Debian revision) has changelog.gz, a Debian one changelog.Debian.gz
      { path: `/usr/share/doc/${pkg}/${version.includes('-') ? 'changelog.Debian.gz' : 'changelog.gz'}`, type: 'file', content: debChangelog(source, version, maintainer, sde, change), mode: 0o644 },
      { path: `/usr/share/doc/${pkg}/copyright`, type: 'file', content: copyright.text, mode: 0o644 },
    ];
    const summary: string[] = [];
    for (const k of built) {
      const dir = join(out, 'modules', k);
      const kos = modulesOf(dir);
      if (!kos.length) throw new KilnError(`[${ctx.part}] dkms built no module for ${k} (looked in ${dir})`);
      const missing = conf.modules.filter((m) => !kos.some((f) => f.replace(/\.ko(\..*)?$/, '') === m.name));
      if (missing.length) throw new KilnError(`[${ctx.part}] dkms.conf declares ${missing.map((m) => m.name).join(', ')} but dkms built only ${kos.join(', ')} for ${k}`);
      const depmod = `#!/bin/sh\nset -e\nif [ -e /boot/System.map-${k} ]; then\n  depmod -a -F /boot/System.map-${k} ${k} || true\nfi\n`;
      // as dh_installmodules writes it for mkbmdeb: depmod on configure and the abort-* actions
      const postinst = `#!/bin/sh\nset -e\nif [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then\n  if [ -e /boot/System.map-${k} ]; then\n    depmod -a -F /boot/System.map-${k} ${k} || true\n  fi\nfi\n`;
      if (formats.includes('bmdeb')) {
        const name = `${conf.name}-modules-${k}`;
        const files: PkgFile[] = [
          ...kos.map((f): PkgFile => ({ path: `/lib/modules/${k}/updates/dkms/${f}`, type: 'file', source: join(dir, f), mode: 0o644 })),
          ...docs(name, `${conf.name}-dkms-bin`, conf.version, `${conf.name} ${conf.version} modules built by kiln (DKMS) for linux-image-${k}.`),
        ];
        const written = await writePackages(
          {
            name,
            version: conf.version,
            arch,
            maintainer,
            summary: `${conf.name} binary drivers for linux-image-${k}`,
            description: `This package contains ${conf.name} drivers for the ${k} Linux kernel,\nbuilt from ${conf.name}-dkms for the ${arch} architecture.`,
            relations: { depends: [`linux-image-${k}`], provides: [`${conf.name}-modules`] },
            scripts: { postinstall: postinst, postremove: depmod },
            files,
            sourceDateEpoch: sde,
            deb: { source: `${conf.name}-dkms-bin`, section: 'misc', priority: 'optional' },
          },
          ['deb'],
          ctx.staging,
          { threads: ctx.jobs },
        );
        summary.push(written[0]!.file);
      }
      if (formats.includes('kmod-rpm')) {
        const ver = conf.version.replace(/-/g, '_');
        const files: PkgFile[] = [
          // the rpm owns its module directory, so erasing it leaves nothing behind
          { path: `/lib/modules/${k}/extra/${conf.name}`, type: 'dir', mode: 0o755 },
          ...kos.map((f): PkgFile => ({ path: `/lib/modules/${k}/extra/${conf.name}/${f}`, type: 'file', source: join(dir, f), mode: 0o644 })),
        ];
        const written = await writePackages(
          {
            name: `kmod-${conf.name}-${k.replace(/-/g, '_')}`,
            version: ver,
            release: '1',
            arch,
            maintainer,
            summary: `${conf.name} kernel modules for ${k}`,
            description: wrap(`The ${conf.name} kernel modules (${kos.map((f) => f.replace(/\.ko(\..*)?$/, '')).join(', ')}) prebuilt by kiln with DKMS for the ${k} Linux kernel.`),
            license: v.license,
            files,
            sourceDateEpoch: sde,
            signingKey: v['signing-key'] ? { keyFile: v['signing-key'], passphraseFile: v['signing-key-passphrase-file'] } : undefined,
            rpm: {
              group: 'System Environment/Kernel',
              // RHEL-style kernels provide kernel-uname-r = `uname -r`; a Debian release such as
              // 6.1.0-56-amd64 has two '-' and is no valid rpm version, so no such requirement then
              requires: /^[A-Za-z0-9._+~^]+(-[A-Za-z0-9._+~^]+)?$/.test(k) ? [`kernel-uname-r = ${k}`] : [],
              provides: [`kmod-${conf.name} = ${ver}`],
              scripts: { post: { body: depmod }, postun: { body: depmod } },
              changelog: [{ time: sde, author: `${maintainer} - ${ver}-1`, text: `- ${conf.name} ${conf.version} modules built by kiln (DKMS) for kernel ${k}` }],
            },
          },
          ['rpm'],
          ctx.staging,
          { threads: ctx.jobs },
        );
        summary.push(written[0]!.file);
      }
    }
    if (formats.includes('dkms-deb')) {
      const base = srcDir;
      const name = `${conf.name}-dkms`;
      const files: PkgFile[] = [];
      const walk = (rel: string) => {
        for (const n of readdirSync(join(base, rel)).sort()) {
          const r = rel ? `${rel}/${n}` : n;
          const st = statSync(join(base, r));
          if (st.isDirectory()) walk(r);
          else files.push({ path: `/usr/src/${conf.name}-${conf.version}/${r}`, type: 'file', source: join(base, r), mode: st.mode & 0o111 ? 0o755 : 0o644 });
        }
      };
      walk('');
      files.push(...docs(name, name, conf.version, `${conf.name} ${conf.version} source packaged for DKMS by kiln.`));
      const written = await writePackages(
        {
          name,
          version: conf.version,
          arch: 'all',
          maintainer,
          summary: `${conf.name} driver in DKMS format`,
          description: `The ${conf.name} kernel module source, built for each installed kernel by DKMS.`,
          relations: { depends: ['dkms (>= 2.1.0.0)'] },
          scripts: {
            postinstall: `#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n  dkms add -m ${conf.name} -v ${conf.version} || true\n  dkms autoinstall || true\nfi\n`,
            preremove: `#!/bin/sh\nset -e\ndkms remove -m ${conf.name} -v ${conf.version} --all || true\n`,
          },
          files,
          sourceDateEpoch: sde,
          deb: { section: 'kernel', priority: 'optional' },
        },
        ['deb'],
        ctx.staging,
        { threads: ctx.jobs },
      );
      summary.push(written[0]!.file);
    }
    writeFileSync(
      join(ctx.staging, 'dkms-build.json'),
      JSON.stringify({ name: conf.name, version: conf.version, modules: conf.modules, kernels: built, skipped: [...excluded].map(([kernel, reason]) => ({ kernel, reason })), packages: summary }, null, 1) + '\n',
    );
  },
};
export default recipe;
