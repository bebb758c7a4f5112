/**
 * kiln:package: one description, packages in several formats (`formats = deb rpm`), like nfpm.
 * One part is one binary package; several binary packages from one component are several parts
 * sharing a `<=` macro (see recipes/components/hello/packages.cfg).
 *
 *   files =
 *     ${hello:location}/bin/hello => /usr/bin/hello mode=0755
 *     ${hello:location}/share/man/man1/*.1 => /usr/share/man/man1/
 *     ${hello:location}/share/locale => /usr/share/locale          (a directory: copied recursively)
 *     etc/hello.conf => /etc/hello.conf config noreplace owner=root group=root
 *   directories = /var/lib/hello mode=0750
 *   symlinks = /usr/bin/hi -> hello
 *
 * Dependencies use Debian syntax (`libc6 (>= 2.36), foo | bar`) and are translated for rpm
 * (`libc6 >= 2.36`, `(foo or bar)`) unless rpm-requires etc. are given. Maintainer scripts
 * (preinstall/postinstall/preremove/postremove) serve both formats; deb-* and rpm-* override.
 * For .deb, a copyright file and changelog.Debian.gz are generated unless the files list has them.
 */
import { lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { KilnError } from '../lib/errors.js';
import { debFileName, shlibsError, writeDeb, type DebSpec } from '../pkg/deb.js';
import type { Compression } from '../pkg/compress.js';
import { normalizePath, type PkgFile } from '../pkg/files.js';
import { validateDebPackageName, validateDebVersion, validateRpmName, validateRpmVersion } from '../pkg/version.js';
import type { BuildContext, PartOptions, PlanContext, Recipe } from '../recipe.js';
import { globToRegExp } from './package-files.js';

const DEP_FIELDS = ['depends', 'pre-depends', 'recommends', 'suggests', 'enhances', 'breaks', 'conflicts', 'replaces', 'provides'] as const;
const SCRIPTS = ['preinstall', 'postinstall', 'preremove', 'postremove'] as const;
const DEB_SCRIPT: Record<(typeof SCRIPTS)[number], 'preinst' | 'postinst' | 'prerm' | 'postrm'> = {
  preinstall: 'preinst',
  postinstall: 'postinst',
  preremove: 'prerm',
  postremove: 'postrm',
};

/** Debian architecture -> rpm architecture. */
export const RPM_ARCH: Record<string, string> = { all: 'noarch', amd64: 'x86_64', arm64: 'aarch64', i386: 'i686', armhf: 'armv7hl', ppc64el: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

interface FileRule {
  src: string;
  dest: string;
  attrs: Record<string, string | true>;
}

function parseAttrs(o: PartOptions, option: string, words: string[]): Record<string, string | true> {
  const attrs: Record<string, string | true> = {};
  for (const w of words) {
    const m = /^(mode|owner|group)=(.+)$/.exec(w);
    if (m) attrs[m[1]!] = m[2]!;
    else if (['config', 'noreplace', 'doc', 'license', 'ghost'].includes(w)) attrs[w] = true;
    else throw o.error(option, `unknown file attribute '${w}' (mode=, owner=, group=, config, noreplace, doc, license, ghost)`);
  }
  if (typeof attrs.mode === 'string' && !/^0?[0-7]{3,4}$/.test(attrs.mode)) throw o.error(option, `bad mode '${attrs.mode}' (octal, e.g. 0755)`);
  return attrs;
}

function parseFileRules(o: PartOptions): FileRule[] {
  return o.lines('files').map((line) => {
    const m = /^(\S+)\s*=>\s*(\S+)((?:\s+\S+)*)$/.exec(line);
    if (!m) throw o.error('files', `expected 'SOURCE => /dest/path [mode=0755] [owner=..] [group=..] [config] [noreplace] [doc]', got '${line}'`);
    const dest = m[2]!;
    if (!dest.startsWith('/')) throw o.error('files', `destination '${dest}' must be an absolute path in the package`);
    if (dest.split('/').includes('..')) throw o.error('files', `destination '${dest}' contains '..'`);
    return { src: o.resolvePath('files', m[1]!), dest, attrs: parseAttrs(o, 'files', m[3]!.trim().split(/\s+/).filter(Boolean)) };
  });
}

function hostFile(path: string): 'file' | 'dir' | 'symlink' | undefined {
  try {
    const st = lstatSync(path);
    return st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : undefined;
  } catch {
    return undefined;
  }
}

function applyAttrs(f: PkgFile, attrs: Record<string, string | true>): PkgFile {
  if (typeof attrs.mode === 'string') f.mode = parseInt(attrs.mode, 8);
  if (typeof attrs.owner === 'string') f.user = attrs.owner;
  if (typeof attrs.group === 'string') f.group = attrs.group;
  if (attrs.config) f.conffile = true;
  if (attrs.noreplace) f.noreplace = true;
  if (attrs.doc) f.doc = true;
  if (attrs.license) f.license = true;
  if (attrs.ghost) f.ghost = true;
  return f;
}

/** A host entry as a package entry: modes normalised to 0755/0644 (umask-independent). */
function fromHost(src: string, dest: string): PkgFile {
  const t = hostFile(src)!;
  if (t === 'symlink') return { path: dest, type: 'symlink', target: readlinkSync(src) };
  if (t === 'dir') return { path: dest, type: 'dir' };
  const exec = (statSync(src).mode & 0o111) !== 0;
  return { path: dest, type: 'file', source: src, mode: exec ? 0o755 : 0o644 };
}

function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${n}` : n;
    out.push(r);
    if (hostFile(join(dir, r)) === 'dir') out.push(...walk(dir, r));
  }
  return out;
}

/** Expand the files/directories/symlinks options into package entries. */
export function collectFiles(o: PartOptions): PkgFile[] {
  const out: PkgFile[] = [];
  for (const r of parseFileRules(o)) {
    const star = r.src.search(/[*?[]/);
    if (star >= 0) {
      const base = r.src.slice(0, r.src.lastIndexOf('/', star));
      const re = globToRegExp(r.src.slice(base.length + 1));
      const matches = hostFile(base) === 'dir' ? walk(base).filter((p) => re.test(p)) : [];
      if (!matches.length) throw o.error('files', `no file matches ${r.src}`);
      if (!r.dest.endsWith('/') && matches.length > 1) throw o.error('files', `${r.src} matches ${matches.length} files: the destination ${r.dest} must end with '/'`);
      for (const m of matches) {
        const dest = r.dest.endsWith('/') ? r.dest + m.split('/').pop() : r.dest;
        out.push(applyAttrs(fromHost(join(base, m), dest), r.attrs));
      }
      continue;
    }
    const t = hostFile(r.src);
    if (!t) throw o.error('files', `source not found: ${r.src}`);
    if (t === 'dir') {
      const destDir = r.dest.replace(/\/+$/, '') || '/';
      for (const rel of walk(r.src)) out.push(applyAttrs(fromHost(join(r.src, rel), `${destDir}/${rel}`), t === 'dir' && hostFile(join(r.src, rel)) === 'dir' ? {} : r.attrs));
      continue;
    }
    const dest = r.dest.endsWith('/') ? r.dest + r.src.split('/').pop() : r.dest;
    out.push(applyAttrs(fromHost(r.src, dest), r.attrs));
  }
  for (const line of o.lines('directories')) {
    const [path, ...words] = line.split(/\s+/);
    if (!path!.startsWith('/')) throw o.error('directories', `'${path}' must be an absolute path`);
    out.push(applyAttrs({ path: path!, type: 'dir' }, parseAttrs(o, 'directories', words)));
  }
  for (const line of o.lines('symlinks')) {
    const m = /^(\S+)\s*->\s*(\S+)$/.exec(line);
    if (!m || !m[1]!.startsWith('/')) throw o.error('symlinks', `expected '/path/in/package -> target', got '${line}'`);
    out.push({ path: m[1]!, type: 'symlink', target: m[2]! });
  }
  // a directory given explicitly wins over the same directory found in a copied tree
  const seen = new Map<string, number>();
  const result: PkgFile[] = [];
  for (const f of out) {
    let key: string;
    try {
      key = normalizePath(f.path);
    } catch (e) {
      throw o.error('files', (e as Error).message);
    }
    const prev = seen.get(key);
    if (prev !== undefined) {
      if (f.type === 'dir' && result[prev]!.type === 'dir') {
        result[prev] = { ...result[prev]!, ...f };
        continue;
      }
      throw o.error('files', `duplicate path in package: ${key}`);
    }
    seen.set(key, result.length);
    result.push(f);
  }
  return result;
}

/** Debian relationship list ("a (>= 1), b | c") -> entries. */
export function splitDeps(s: string | undefined): string[] {
  return (s ?? '').split(/,/).map((x) => x.replace(/\s+/g, ' ').trim()).filter(Boolean);
}

/** One Debian relationship in rpm syntax: "foo (>= 1.0)" -> "foo >= 1.0"; alternatives -> rich "(a or b)". */
export function debRelToRpm(rel: string): string {
  const one = (r: string) => {
    const m = /^([^\s(]+)\s*(?:\(\s*(<<|<=|=|>=|>>)\s*([^)\s]+)\s*\))?\s*(?:\[.*\])?$/.exec(r.trim());
    if (!m) throw new KilnError(`cannot translate dependency '${r}' for rpm: give rpm-* options`);
    const name = m[1]!.replace(/:any$/, '');
    if (!m[2]) return name;
    const op = m[2] === '<<' ? '<' : m[2] === '>>' ? '>' : m[2];
    return `${name} ${op} ${m[3]}`;
  };
  const alts = rel.split('|').map(one);
  return alts.length === 1 ? alts[0]! : `(${alts.join(' or ')})`;
}

function script(o: PartOptions, name: string): string | undefined {
  const v = o.get(name);
  if (v === undefined || v.trim() === '') return undefined;
  const t = v.trim();
  if (!t.includes('\n') && !t.startsWith('#!')) {
    const p = o.resolvePath(name, t);
    if (hostFile(p) === 'file') return readFileSync(p, 'utf8');
  }
  return t.startsWith('#!') ? t + '\n' : `#!/bin/sh\nset -e\n${t}\n`;
}

function rfc2822(sde: number): string {
  const d = new Date(sde * 1000);
  return d.toUTCString().replace('GMT', '+0000');
}

function debSpec(ctx: BuildContext | PlanContext, files: PkgFile[], sde: number): DebSpec {
  const o = ctx.options;
  const name = o.require('name').trim();
  const version = o.require('version').trim();
  const maintainer = o.require('maintainer').trim();
  const long = o.get('description')?.trim();
  const scripts: Record<string, string | undefined> = {};
  for (const s of SCRIPTS) scripts[DEB_SCRIPT[s]] = script(o, `deb-${DEB_SCRIPT[s]}`) ?? script(o, s);
  const docDir = `/usr/share/doc/${name}`;
  const extra: PkgFile[] = [];
  const has = (p: string) => files.some((f) => normalizePath(f.path) === p);
  if (!has(`${docDir}/copyright`)) {
    const holder = o.get('copyright')?.trim() || maintainer;
    extra.push({ path: `${docDir}/copyright`, type: 'file', content: `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: ${o.get('source')?.trim() || name}\n\nFiles: *\nCopyright: ${holder}\nLicense: ${o.get('license')?.trim() || 'unknown'}\n` });
  }
  if (!has(`${docDir}/changelog.Debian.gz`) && !has(`${docDir}/changelog.gz`)) {
    const text = `${o.get('source')?.trim() || name} (${version}) unstable; urgency=medium\n\n  * Package built by kiln.\n\n -- ${maintainer}  ${rfc2822(sde)}\n`;
    extra.push({ path: `${docDir}/changelog.Debian.gz`, type: 'file', content: gzipSync(Buffer.from(text), { level: 9 }) });
  }
  const dep = (f: (typeof DEP_FIELDS)[number]) => splitDeps(o.get(`deb-${f}`) ?? o.get(f));
  return {
    name,
    version,
    architecture: o.get('architecture')!.trim(),
    maintainer,
    description: `${o.require('summary').trim()}${long ? '\n' + long : ''}`,
    source: o.get('source')?.trim() || undefined,
    section: o.get('section')!.trim(),
    priority: o.get('priority')!.trim(),
    homepage: o.get('homepage')?.trim() || undefined,
    depends: dep('depends'),
    preDepends: dep('pre-depends'),
    recommends: dep('recommends'),
    suggests: dep('suggests'),
    enhances: dep('enhances'),
    breaks: dep('breaks'),
    conflicts: dep('conflicts'),
    replaces: dep('replaces'),
    provides: dep('provides'),
    files: [...files, ...extra],
    scripts,
    triggers: o.get('deb-triggers')?.trim() || undefined,
    shlibs: o.lines('deb-shlibs').join('\n') || undefined,
    compression: o.get('compression')!.trim() as Compression,
    sourceDateEpoch: sde,
  };
}

/** rpm version/release from a Debian-style version: upstream and revision (release 1 when none). */
export function rpmVersionRelease(o: PartOptions): { epoch?: number; version: string; release: string } {
  let v = o.require('version').trim();
  let epoch: number | undefined;
  const c = /^(\d+):(.*)$/.exec(v);
  if (c) {
    epoch = Number(c[1]);
    v = c[2]!;
  }
  const d = v.lastIndexOf('-');
  const version = d >= 0 ? v.slice(0, d) : v;
  const release = o.get('release')?.trim() || (d >= 0 ? v.slice(d + 1) : '1');
  return { epoch, version, release };
}

export const recipe: Recipe = {
  kind: 'package',
  version: '1',
  description: 'binary packages (.deb and/or .rpm) from files of other parts',
  options: {
    name: { description: 'package name', required: true },
    version: { description: "version, Debian style 'upstream-revision' (rpm: version-release)", required: true },
    release: { description: 'rpm release (default: the Debian revision, or 1)' },
    summary: { description: 'one-line summary', required: true },
    description: { description: 'long description (multi-line)' },
    maintainer: { description: "'Name <email>'", required: true },
    architecture: { description: 'Debian architecture (all, amd64, ...); rpm gets noarch, x86_64, ...', default: 'all' },
    formats: { description: 'deb and/or rpm', default: 'deb rpm' },
    license: { description: 'license (SPDX), rpm License and the generated copyright file', default: 'unknown' },
    copyright: { description: 'copyright holder for the generated copyright file' },
    source: { description: 'source package name (several binary packages from one source)' },
    homepage: { description: 'upstream URL' },
    section: { description: 'Debian section', default: 'misc' },
    priority: { description: 'Debian priority', default: 'optional' },
    group: { description: 'rpm group', default: 'Applications/System' },
    'signing-key': { description: "OpenPGP secret key file: .rpm packages get a header signature; .deb packages a debsigs signature (_gpg<role> member) when `sign` lists deb" },
    sign: { description: "which formats the signing key signs: rpm, deb (deb is opt-in: lintian reports every debsigs member as misplaced-extra-member-in-deb, as it does for debsigs' own output)", default: 'rpm' },
    'deb-signature-role': { description: 'debsigs signature role: the ar member _gpg<role> (origin, maint, archive)', default: 'origin' },
    'signing-key-passphrase-file': { description: 'file holding the signing key passphrase' },
    vendor: { description: 'rpm vendor' },
    files: { description: "'SOURCE => /dest [mode=] [owner=] [group=] [config] [noreplace] [doc] [license] [ghost]' lines" },
    directories: { description: "'/path [mode=] [owner=] [group=]' lines" },
    symlinks: { description: "'/path -> target' lines" },
    compression: { description: 'payload compression: xz, gzip, zstd (none: deb only)', default: 'xz' },
    changelog: { description: 'rpm changelog text (default: one generated entry)' },
    'deb-triggers': { description: 'dpkg triggers file content' },
    'deb-shlibs': { description: "DEBIAN/shlibs lines of a shared-library package: 'LIBRARY SOVERSION DEPENDENCY' (e.g. 'libfoo 1 libfoo1 (>= 1.2)'), deb-shlibs(5)" },
    'rpm-pretrans': { description: 'rpm %pretrans scriptlet' },
    'rpm-posttrans': { description: 'rpm %posttrans scriptlet' },
  },
  optionPatterns: [
    new RegExp(`^(deb-|rpm-)?(${DEP_FIELDS.join('|')})$`),
    /^rpm-(requires|obsoletes)$/,
    new RegExp(`^(${SCRIPTS.join('|')})$`),
    /^deb-(preinst|postinst|prerm|postrm|config)$/,
    /^rpm-(pre|post|preun|postun)$/,
  ],
  validate(ctx) {
    const o = ctx.options;
    const formats = o.list('formats');
    for (const f of formats) if (f !== 'deb' && f !== 'rpm') throw o.error('formats', `unknown format '${f}' (deb, rpm)`);
    if (!formats.length) throw o.error('formats', 'no format given');
    const name = o.require('name').trim();
    if (formats.includes('deb')) {
      const e = validateDebPackageName(name);
      if (e) throw o.error('name', e);
      const v = validateDebVersion(o.require('version').trim());
      if (v) throw o.error('version', v);
      if (!/^[a-z0-9][a-z0-9-]*$/.test(o.get('architecture')!.trim())) throw o.error('architecture', `invalid architecture '${o.get('architecture')}'`);
    }
    if (formats.includes('rpm')) {
      const e = validateRpmName(name);
      if (e) throw o.error('name', e);
      const { version, release } = rpmVersionRelease(o);
      const v = validateRpmVersion(version) ?? validateRpmVersion(release, 'release');
      if (v) throw o.error('version', v);
    }
    if (o.get('deb-shlibs')?.trim()) {
      const e = shlibsError(o.lines('deb-shlibs').join('\n'));
      if (e) throw o.error('deb-shlibs', e);
    }
    const comp = o.get('compression')!.trim();
    if (!['xz', 'gzip', 'zstd', 'none'].includes(comp)) throw o.error('compression', `unknown compression '${comp}' (xz, gzip, zstd, none)`);
    if (comp === 'none' && formats.includes('rpm')) throw o.error('compression', "'none' is for deb only");
    for (const f of o.list('sign')) if (f !== 'deb' && f !== 'rpm') throw o.error('sign', `unknown format '${f}' (deb, rpm)`);
    if (!/^[a-z]{1,12}$/.test(o.get('deb-signature-role')!.trim())) throw o.error('deb-signature-role', `invalid role '${o.get('deb-signature-role')}' (a lower-case word: origin, maint, archive)`);
    parseFileRules(o);
  },
  inputs(ctx) {
    const o = ctx.options;
    const ins = parseFileRules(o).map((r) => r.src).filter((s) => !/[*?[]/.test(s));
    for (const s of [...SCRIPTS, 'deb-preinst', 'deb-postinst', 'deb-prerm', 'deb-postrm', 'rpm-pre', 'rpm-post', 'rpm-preun', 'rpm-postun']) {
      const v = o.get(s)?.trim();
      // a script given as a file: its content is an input (inline one-line scripts are options)
      if (v && !v.includes('\n') && !v.startsWith('#!') && hostFile(o.resolvePath(s, v)) === 'file') ins.push(o.resolvePath(s, v));
    }
    for (const k of ['signing-key', 'signing-key-passphrase-file']) if (o.path(k)) ins.push(o.path(k)!);
    return ins;
  },
  tools(ctx) {
    const c = ctx.options.get('compression')?.trim();
    return c === 'xz' ? ['xz'] : c === 'zstd' ? ['zstd'] : [];
  },
  async install(ctx) {
    const o = ctx.options;
    const files = collectFiles(o);
    const formats = o.list('formats');
    const sde = ctx.sourceDateEpoch;
    const wrap = (e: unknown) => (e instanceof KilnError ? new KilnError(`[${ctx.part}] ${e.message}`) : e);
    if (formats.includes('deb')) {
      const spec = debSpec(ctx, files, sde);
      if (o.path('signing-key') && o.list('sign').includes('deb')) {
        spec.signingKey = { keyFile: o.path('signing-key')!, passphraseFile: o.path('signing-key-passphrase-file') };
        spec.signatureRole = o.get('deb-signature-role')!.trim();
      }
      const r = await writeDeb(spec, join(ctx.staging, debFileName(spec))).catch((e) => Promise.reject(wrap(e)));
      ctx.log(`# wrote ${r.path} (${r.size} bytes)\n`);
    }
    if (formats.includes('rpm')) {
      const { rpmSpecFromOptions } = await import('./package-rpm.js');
      const { writeRpm, rpmFileName } = await import('../pkg/rpm.js');
      const spec = rpmSpecFromOptions(ctx, files, sde);
      const r = await writeRpm(spec, join(ctx.staging, rpmFileName(spec))).catch((e) => Promise.reject(wrap(e)));
      ctx.log(`# wrote ${r.path} (${r.size} bytes)\n`);
    }
  },
};
export default recipe;

export { script };
