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
 * The build runs `dkms add` + `dkms build` with kiln's own dkms and source trees (--dkmstree,
 * --sourcetree) in the chroot's container; a compile failure shows make.log's tail.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { debFileName, writeDeb } from '../pkg/deb.js';
import type { PkgFile } from '../pkg/files.js';
import { rpmFileName, writeRpm } from '../pkg/rpm.js';
import type { BuildContext, Recipe } from '../recipe.js';
import { RPM_ARCH } from './package.js';

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
  const src = o.path('source')!;
  const into = join(ctx.work, 'src-in');
  mkdirSync(into, { recursive: true });
  if (!existsSync(src)) throw o.error('source', `not found: ${src}`);
  if (statSync(src).isDirectory()) cpSync(src, into, { recursive: true, verbatimSymlinks: true });
  else if (src.endsWith('.deb')) await ctx.run(['dpkg-deb', '-x', src, into]);
  else await ctx.run(['tar', '-xf', src, '-C', into, '--no-same-owner']);
  let dir = findDkmsConf(into);
  if (!dir) {
    const name = o.get('package-name')?.trim();
    const version = o.get('package-version')?.trim();
    if (!name || !version) throw o.error('source', `no dkms.conf in ${src}: give package-name, package-version and built-module-name to write one`);
    dir = into;
    const mods = o.list('built-module-name').length ? o.list('built-module-name') : [name];
    let conf = `PACKAGE_NAME="${name}"\nPACKAGE_VERSION="${version}"\nAUTOINSTALL="${o.bool('autoinstall', true) ? 'yes' : 'no'}"\n`;
    if (o.get('make')?.trim()) conf += `MAKE[0]="${o.get('make')!.trim()}"\n`;
    if (o.get('clean')?.trim()) conf += `CLEAN="${o.get('clean')!.trim()}"\n`;
    mods.forEach((m, i) => (conf += `BUILT_MODULE_NAME[${i}]="${m}"\nDEST_MODULE_LOCATION[${i}]="${o.get('dest-module-location')?.trim() || '/updates'}"\n`));
    for (const [k, val] of [['name', name], ['version', version], ...mods.map((m) => ['module', m])]) {
      if (/["$`\\\n]/.test(val!)) throw o.error(k === 'module' ? 'built-module-name' : `package-${k}`, `unsafe characters in '${val}'`);
    }
    writeFileSync(join(dir, 'dkms.conf'), conf);
  }
  return dir;
}

const BUILD = `set -eu
dkmstree=$1; srctree=$2; name=$3; ver=$4; shift 4
dkms add --dkmstree "$dkmstree" --sourcetree "$srctree" -m "$name" -v "$ver"
for k in "$@"; do
  if ! dkms build --dkmstree "$dkmstree" --sourcetree "$srctree" -m "$name" -v "$ver" -k "$k"; then
    echo "--- make.log for kernel $k ---" >&2
    tail -n 40 "$dkmstree/$name/$ver/build/make.log" >&2 || true
    exit 1
  fi
done
`;

function modulesOf(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => /\.ko(\.(xz|gz|zst))?$/.test(f)).sort() : [];
}

export const recipe: Recipe = {
  kind: 'dkms',
  version: '1',
  description: 'DKMS modules prebuilt for given kernels in a chroot: binary module .deb (mkbmdeb), kmod .rpm, source dkms .deb',
  options: {
    source: { description: 'module source: a directory or tarball with dkms.conf, or a *-dkms .deb', required: true },
    kernels: { description: 'kernel versions (uname -r), e.g. 6.1.0-56-amd64; their linux-headers must be in the chroot', required: true },
    chroot: { description: 'build chroot with dkms, gcc, make and the linux-headers of each kernel', required: true },
    network: { description: 'network in the build chroot', default: 'false' },
    architecture: { description: 'Debian architecture of the modules', default: 'amd64' },
    formats: { description: 'outputs: bmdeb (binary module .deb), kmod-rpm, dkms-deb (source)', default: 'bmdeb kmod-rpm dkms-deb' },
    maintainer: { description: "'Name <email>' for the packages (default: dkms's own, as mkbmdeb writes it)", default: 'Dynamic Kernel Modules Support Team <pkg-dkms-maint@lists.alioth.debian.org>' },
    'package-name': { description: 'PACKAGE_NAME when the source has no dkms.conf' },
    'package-version': { description: 'PACKAGE_VERSION when the source has no dkms.conf' },
    'built-module-name': { description: 'module names when the source has no dkms.conf' },
    'dest-module-location': { description: 'DEST_MODULE_LOCATION when writing dkms.conf', default: '/updates' },
    make: { description: 'MAKE[0] when writing dkms.conf' },
    clean: { description: 'CLEAN when writing dkms.conf' },
    autoinstall: { description: 'AUTOINSTALL when writing dkms.conf', default: 'true' },
  },
  validate(ctx) {
    const o = ctx.options;
    for (const k of o.list('kernels')) if (!/^\d+\.\d+[\w.+-]*$/.test(k)) throw o.error('kernels', `not a kernel version: '${k}'`);
    for (const f of o.list('formats')) if (!['bmdeb', 'kmod-rpm', 'dkms-deb'].includes(f)) throw o.error('formats', `unknown output '${f}' (bmdeb, kmod-rpm, dkms-deb)`);
  },
  inputs(ctx) {
    return [ctx.options.path('source')!];
  },
  tools: () => ['docker', 'xz'],
  async install(ctx) {
    const o = ctx.options;
    const kernels = o.list('kernels');
    const srcDir = await unpackSource(ctx);
    const conf = parseDkmsConf(readFileSync(join(srcDir, 'dkms.conf'), 'utf8'));
    const srctree = join(ctx.work, 'srctree');
    const dkmstree = join(ctx.work, 'dkmstree');
    mkdirSync(dkmstree, { recursive: true });
    cpSync(srcDir, join(srctree, `${conf.name}-${conf.version}`), { recursive: true, verbatimSymlinks: true });
    try {
      await ctx.run(['sh', '-c', BUILD, 'sh', dkmstree, srctree, conf.name, conf.version, ...kernels]);
    } catch (e) {
      throw new KilnError(`[${ctx.part}] module ${conf.name}/${conf.version} failed to build:\n${(e as Error).message}`);
    }
    const arch = o.get('architecture')!.trim();
    const uarch = arch === 'amd64' ? 'x86_64' : arch === 'arm64' ? 'aarch64' : arch;
    const maintainer = o.get('maintainer')!.trim();
    const formats = o.list('formats');
    const sde = ctx.sourceDateEpoch;
    const summary: string[] = [];
    for (const k of kernels) {
      const built = join(dkmstree, conf.name, conf.version, k, uarch, 'module');
      const kos = modulesOf(built);
      if (!kos.length) throw new KilnError(`[${ctx.part}] dkms built no module for ${k} (looked in ${built})`);
      const depmod = `#!/bin/sh\nset -e\nif [ -e /boot/System.map-${k} ]; then\n  depmod -a -F /boot/System.map-${k} ${k} || true\nfi\n`;
      if (formats.includes('bmdeb')) {
        const files: PkgFile[] = kos.map((f) => ({ path: `/lib/modules/${k}/updates/dkms/${f}`, type: 'file', source: join(built, f), mode: 0o644 }));
        const spec = {
          name: `${conf.name}-modules-${k}`,
          version: conf.version,
          architecture: arch,
          maintainer,
          source: `${conf.name}-dkms-bin`,
          section: 'misc',
          priority: 'optional',
          description: `${conf.name} binary drivers for linux-image-${k}\nThis package contains ${conf.name} drivers for the ${k} Linux kernel,\nbuilt from ${conf.name}-dkms for the ${arch} architecture.`,
          depends: [`linux-image-${k}`],
          provides: [`${conf.name}-modules`],
          files,
          scripts: { postinst: depmod, postrm: depmod },
          sourceDateEpoch: sde,
        };
        await writeDeb(spec, join(ctx.staging, debFileName(spec)));
        summary.push(debFileName(spec));
      }
      if (formats.includes('kmod-rpm')) {
        const files: PkgFile[] = kos.map((f) => ({ path: `/lib/modules/${k}/extra/${conf.name}/${f}`, type: 'file', source: join(built, f), mode: 0o644 }));
        const spec = {
          name: `kmod-${conf.name}-${k.replace(/-/g, '_')}`,
          version: conf.version.replace(/-/g, '_'),
          release: '1',
          arch: RPM_ARCH[arch] ?? arch,
          summary: `${conf.name} kernel modules for ${k}`,
          description: `${conf.name} kernel modules prebuilt by kiln (DKMS) for the ${k} Linux kernel.`,
          license: 'GPL-2.0-only',
          packager: maintainer,
          // RHEL-style kernels provide kernel-uname-r = `uname -r`; a Debian release such as
          // 6.1.0-56-amd64 has two '-' and is no valid rpm version, so no such requirement then
          requires: /^[A-Za-z0-9._+~^]+(-[A-Za-z0-9._+~^]+)?$/.test(k) ? [`kernel-uname-r = ${k}`] : [],
          provides: [`kmod-${conf.name} = ${conf.version.replace(/-/g, '_')}`],
          files,
          scripts: { post: { body: depmod }, postun: { body: depmod } },
          sourceDateEpoch: sde,
        };
        await writeRpm(spec, join(ctx.staging, rpmFileName(spec)));
        summary.push(rpmFileName(spec));
      }
    }
    if (formats.includes('dkms-deb')) {
      const base = join(srctree, `${conf.name}-${conf.version}`);
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
      const spec = {
        name: `${conf.name}-dkms`,
        version: conf.version,
        architecture: 'all',
        maintainer,
        section: 'kernel',
        priority: 'optional',
        description: `${conf.name} driver in DKMS format\nThe ${conf.name} kernel module source, built for each installed kernel by DKMS.`,
        depends: ['dkms (>= 2.1.0.0)'],
        files,
        scripts: {
          postinst: `#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n  dkms add -m ${conf.name} -v ${conf.version} || true\n  dkms autoinstall || true\nfi\n`,
          prerm: `#!/bin/sh\nset -e\ndkms remove -m ${conf.name} -v ${conf.version} --all || true\n`,
        },
        sourceDateEpoch: sde,
      };
      await writeDeb(spec, join(ctx.staging, debFileName(spec)));
      summary.push(debFileName(spec));
    }
    writeFileSync(join(ctx.staging, 'dkms-build.json'), JSON.stringify({ name: conf.name, version: conf.version, modules: conf.modules, kernels, packages: summary }, null, 1) + '\n');
  },
};
export default recipe;
