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
import { checkContainedName, printable } from '../lib/paths.js';
import { parseRelations } from '../pkg/deb822.js';
import { parseDep, type RpmScript, type RpmSpec } from '../pkg/rpm.js';
import { debRelToRpm, rpmVersionRelease, splitDeps, writePackages, type PackageInfo } from '../pkg/info.js';
import { shlibsError } from '../pkg/deb.js';
import { COMPRESSIONS, type Compression } from '../pkg/compress.js';
import { normalizePath, type PkgFile } from '../pkg/files.js';
import { validateDebPackageName, validateDebVersion, validateRpmName, validateRpmVersion } from '../pkg/version.js';
import { signingInputs, signingOptions, type BuildContext, type OptionSpec, type PartOptions, type PlanContext, type Recipe } from '../kind.js';
import { globToRegExp } from './package-files.js';

const DEP_FIELDS = ['depends', 'pre-depends', 'recommends', 'suggests', 'enhances', 'breaks', 'conflicts', 'replaces', 'provides'] as const;
const SCRIPTS = ['preinstall', 'postinstall', 'preremove', 'postremove'] as const;
const DEB_SCRIPT: Record<(typeof SCRIPTS)[number], 'preinst' | 'postinst' | 'prerm' | 'postrm'> = {
  preinstall: 'preinst',
  postinstall: 'postinst',
  preremove: 'prerm',
  postremove: 'postrm',
};

interface FileRule {
  src: string;
  dest: string;
  attrs: Record<string, string | true>;
}

/** A user or group name as dpkg and rpm take it (POSIX portable names, optional trailing $). */
const ACCOUNT_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;

/** The error for one line of a multi-line option: file:line of that line when it is found. */
function lineError(o: PartOptions, option: string, line: string, detail: string): Error {
  return o.errorAt ? o.errorAt(option, line, detail) : o.error(option, detail);
}

function parseAttrs(o: PartOptions, option: string, words: string[], line = ''): Record<string, string | true> {
  const attrs: Record<string, string | true> = {};
  const err = (d: string) => lineError(o, option, line, d);
  for (const w of words) {
    const m = /^(mode|owner|group)=(.+)$/.exec(w);
    if (m) attrs[m[1]!] = m[2]!;
    else if (['config', 'noreplace', 'doc', 'license', 'ghost'].includes(w)) attrs[w] = true;
    else throw err(`unknown file attribute '${w}' (mode=, owner=, group=, config, noreplace, doc, license, ghost)`);
  }
  if (typeof attrs.mode === 'string' && !/^0?[0-7]{3,4}$/.test(attrs.mode)) throw err(`bad mode '${attrs.mode}' (octal, e.g. 0755)`);
  for (const k of ['owner', 'group'] as const) {
    const v = attrs[k];
    if (typeof v === 'string' && !ACCOUNT_RE.test(v)) throw err(`bad ${k} '${printable(v)}' (a user or group name: letters, digits, _ . -, at most 32 characters)`);
  }
  return attrs;
}

function parseFileRules(o: PartOptions): FileRule[] {
  return o.lines('files').map((line) => {
    const m = /^(\S+)\s*=>\s*(\S+)((?:\s+\S+)*)$/.exec(line);
    if (!m) throw lineError(o, 'files', line, `expected 'SOURCE => /dest/path [mode=0755] [owner=..] [group=..] [config] [noreplace] [doc]', got '${line}'`);
    const dest = checkContainedName(m[2]!, 'destination', (d) => lineError(o, 'files', line, d));
    return { src: o.resolvePath('files', m[1]!), dest, attrs: parseAttrs(o, 'files', m[3]!.trim().split(/\s+/).filter(Boolean), line) };
  });
}

function parseDirectories(o: PartOptions): Array<{ path: string; attrs: Record<string, string | true> }> {
  return o.lines('directories').map((line) => {
    const [path, ...words] = line.split(/\s+/);
    checkContainedName(path!, 'directory', (d) => lineError(o, 'directories', line, d));
    return { path: path!, attrs: parseAttrs(o, 'directories', words, line) };
  });
}

function parseSymlinks(o: PartOptions): Array<{ path: string; target: string }> {
  return o.lines('symlinks').map((line) => {
    const m = /^(\S+)\s*->\s*(\S+)$/.exec(line);
    if (!m) throw lineError(o, 'symlinks', line, `expected '/path/in/package -> target', got '${line}'`);
    checkContainedName(m[1]!, 'symlink', (d) => lineError(o, 'symlinks', line, d));
    if (m[2]!.includes('\0')) throw lineError(o, 'symlinks', line, 'the symlink target contains a NUL byte');
    return { path: m[1]!, target: m[2]! };
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
  const origin = new Map<PkgFile, string>();
  for (const d of parseDirectories(o)) {
    const f = applyAttrs({ path: d.path, type: 'dir' }, d.attrs);
    origin.set(f, 'directories');
    out.push(f);
  }
  for (const l of parseSymlinks(o)) {
    const f: PkgFile = { path: l.path, type: 'symlink', target: l.target };
    origin.set(f, 'symlinks');
    out.push(f);
  }
  // a directory given explicitly wins over the same directory found in a copied tree
  const seen = new Map<string, number>();
  const result: PkgFile[] = [];
  for (const f of out) {
    let key: string;
    try {
      key = normalizePath(f.path);
    } catch (e) {
      throw o.error(origin.get(f) ?? 'files', (e as Error).message);
    }
    const prev = seen.get(key);
    if (prev !== undefined) {
      if (f.type === 'dir' && result[prev]!.type === 'dir') {
        result[prev] = { ...result[prev]!, ...f };
        continue;
      }
      throw o.error(origin.get(f) ?? 'files', `duplicate path in package: ${key}`);
    }
    seen.set(key, result.length);
    result.push(f);
  }
  return result;
}

/** Debian relationship list ("a (>= 1), b | c") -> entries. */
/**
 * A maintainer script, in one of two explicit forms: `NAME = text` is always the script itself
 * (one line or several; `#!/bin/sh` and `set -e` are added unless it starts with `#!`), and
 * `NAME-file = path` reads the script from a file (relative to the config file that sets it).
 */
function script(o: PartOptions, name: string): string | undefined {
  const file = o.get(`${name}-file`)?.trim();
  if (file) return readFileSync(o.resolvePath(`${name}-file`, file), 'utf8');
  const v = o.get(name);
  if (v === undefined || v.trim() === '') return undefined;
  const t = v.trim();
  return t.startsWith('#!') ? t + '\n' : `#!/bin/sh\nset -e\n${t}\n`;
}

/** Every maintainer-script option name (each also takes a `-file` form). */
const SCRIPT_OPTIONS = [...SCRIPTS, 'deb-preinst', 'deb-postinst', 'deb-prerm', 'deb-postrm', 'deb-config', 'rpm-pre', 'rpm-post', 'rpm-preun', 'rpm-postun', 'rpm-pretrans', 'rpm-posttrans'];

/** The relationship fields (Debian syntax; deb-/rpm- overrides) and the maintainer scripts (each also as NAME-file). */
const RELATION_AND_SCRIPT_OPTIONS: Record<string, OptionSpec> = Object.fromEntries([
  ...DEP_FIELDS.flatMap((f) => [
    [f, { type: 'string', multiline: true, description: `${f}: Debian syntax, translated for rpm` }],
    [`deb-${f}`, { type: 'string', multiline: true, description: `${f} of the .deb only` }],
    [`rpm-${f}`, { type: 'lines', description: `${f} of the .rpm only (rpm syntax)` }],
  ]),
  ...['requires', 'obsoletes'].map((f) => [`rpm-${f}`, { type: 'lines', description: `rpm ${f[0]!.toUpperCase()}${f.slice(1)} (rpm syntax)` }]),
  ...[...SCRIPTS, 'deb-preinst', 'deb-postinst', 'deb-prerm', 'deb-postrm', 'deb-config', 'rpm-pre', 'rpm-post', 'rpm-preun', 'rpm-postun', 'rpm-pretrans', 'rpm-posttrans'].flatMap((s) => [
    ...(s === 'rpm-pretrans' || s === 'rpm-posttrans' ? [] : [[s, { type: 'string', multiline: true, description: `maintainer script ${s}` }]]),
    [`${s}-file`, { type: 'path', description: `a file holding the maintainer script ${s}` }],
  ]),
]);

const ONE_LINE = ['name', 'version', 'release', 'summary', 'maintainer', 'architecture', 'license', 'copyright', 'source', 'homepage', 'section', 'priority', 'group', 'vendor'];

/** Checks of the package metadata at load time (exit 3 with file:line instead of exit 1 at build time). */
function validateFields(o: PartOptions, formats: string[]): void {
  for (const k of ONE_LINE) {
    const v = o.get(k);
    if (v === undefined) continue;
    const t = v.trim();
    // (section, priority, homepage and maintainer: the table's types) a carriage return or another control character
    if (/[\n\r]/.test(t)) throw o.error(k, `must be a single line, got ${JSON.stringify(t)}${k === 'summary' ? " (put the long text in 'description')" : ''}`);
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x08\x0b-\x1f\x7f]/.test(t)) throw o.error(k, `contains a control character: ${JSON.stringify(t)}`);
  }
  const description = o.get('description');
  if (description !== undefined && /[\r\0]/.test(description)) throw o.error('description', 'contains a carriage return or NUL byte');
  // relationships: Debian syntax, and translatable for rpm unless an rpm-* option replaces them
  for (const f of DEP_FIELDS) {
    for (const opt of [f, `deb-${f}`]) {
      const v = o.get(opt);
      if (v === undefined || !v.trim()) continue;
      for (const rel of splitDeps(v)) {
        try {
          parseRelations(rel);
        } catch (e) {
          throw lineError(o, opt, rel, `${(e as Error).message} (Debian syntax: 'name', 'name (>= 1.0)', alternatives with '|', entries separated by ',')`);
        }
      }
    }
  }
  if (formats.includes('rpm')) {
    const RPM_OF: Record<string, string> = { depends: 'requires', 'pre-depends': 'pre-depends', recommends: 'recommends', suggests: 'suggests', enhances: 'enhances', breaks: 'breaks', conflicts: 'conflicts', provides: 'provides' };
    for (const [deb, rpm] of Object.entries(RPM_OF)) {
      if (o.get(`rpm-${rpm}`) !== undefined) continue;
      for (const rel of splitDeps(o.get(deb))) {
        try {
          parseDep(debRelToRpm(rel));
        } catch (e) {
          const m = (e as Error).message;
          throw lineError(o, deb, rel, `${m}${m.includes('rpm-') ? '' : ` (or give rpm-${rpm})`}`);
        }
      }
    }
    for (const rpm of ['requires', 'pre-depends', 'provides', 'conflicts', 'breaks', 'obsoletes', 'recommends', 'suggests', 'enhances']) {
      for (const line of o.lines(`rpm-${rpm}`)) {
        for (const d of line.split(/,\s*/).filter(Boolean)) {
          try {
            parseDep(d);
          } catch (e) {
            throw lineError(o, `rpm-${rpm}`, line, (e as Error).message);
          }
        }
      }
    }
  }
  const triggers = o.get('deb-triggers');
  if (triggers !== undefined) {
    for (const line of triggers.split('\n')) {
      const l = line.replace(/#.*/, '').trim();
      if (!l) continue;
      const [d, name, ...rest] = l.split(/\s+/);
      if (!TRIGGER_DIRECTIVES.includes(d!) || !name || rest.length) throw lineError(o, 'deb-triggers', line, `expected '<${TRIGGER_DIRECTIVES.join('|')}> <trigger-name>' per line, got '${line.trim()}'`);
    }
  }
  for (const s of SCRIPT_OPTIONS) {
    const inline = o.get(s)?.trim();
    const file = o.get(`${s}-file`)?.trim();
    if (inline && file) throw o.error(`${s}-file`, `give '${s}' (the script itself) or '${s}-file' (a file holding it), not both`);
    if (file && hostFile(o.resolvePath(`${s}-file`, file)) !== 'file') throw o.error(`${s}-file`, `script file not found: ${o.resolvePath(`${s}-file`, file)}`);
    if (file && !/^#!\s*\/\S/.test(readFileSync(o.resolvePath(`${s}-file`, file), 'utf8').slice(0, 256))) throw o.error(`${s}-file`, `${o.resolvePath(`${s}-file`, file)} must start with an interpreter line such as '#!/bin/sh'`);
    if (inline?.includes('\0')) throw o.error(s, 'contains a NUL byte');
  }
}

const TRIGGER_DIRECTIVES = ['interest', 'interest-await', 'interest-noawait', 'activate', 'activate-await', 'activate-noawait'];

function rfc2822(sde: number): string {
  const d = new Date(sde * 1000);
  return d.toUTCString().replace('GMT', '+0000');
}

const RPM_SCRIPT = { preinstall: 'pre', postinstall: 'post', preremove: 'preun', postremove: 'postun' } as const;

function rpmScript(text: string | undefined): RpmScript | undefined {
  if (!text) return undefined;
  const m = /^#!\s*(\S+)/.exec(text);
  return { body: text, prog: m ? m[1] : '/bin/sh' };
}

/** The part's options as one format-neutral package description (src/pkg/info.ts), with what only .deb or .rpm has. */
function packageInfo(ctx: BuildContext | PlanContext, files: PkgFile[], sde: number): PackageInfo {
  const o = ctx.options;
  const v = o.typed(OPTIONS);
  const { name, version, maintainer, sign } = v;
  const source = v.source || undefined;
  const keyFile = v['signing-key'];
  const key = keyFile ? { keyFile, passphraseFile: v['signing-key-passphrase-file'] } : undefined;
  // .deb: a copyright file and changelog.Debian.gz unless the files list has them
  const debScripts: Record<string, string | undefined> = {};
  for (const s of SCRIPTS) debScripts[DEB_SCRIPT[s]] = script(o, `deb-${DEB_SCRIPT[s]}`) ?? script(o, s);
  const docDir = `/usr/share/doc/${name}`;
  const extra: PkgFile[] = [];
  const has = (p: string) => files.some((f) => normalizePath(f.path) === p);
  if (!has(`${docDir}/copyright`)) {
    const holder = v.copyright || maintainer;
    extra.push({ path: `${docDir}/copyright`, type: 'file', content: `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: ${source ?? name}\n\nFiles: *\nCopyright: ${holder}\nLicense: ${v.license || 'unknown'}\n` });
  }
  if (!has(`${docDir}/changelog.Debian.gz`) && !has(`${docDir}/changelog.gz`)) {
    const text = `${source ?? name} (${version}) unstable; urgency=medium\n\n  * Package built by kiln.\n\n -- ${maintainer}  ${rfc2822(sde)}\n`;
    extra.push({ path: `${docDir}/changelog.Debian.gz`, type: 'file', content: gzipSync(Buffer.from(text), { level: 9 }) });
  }
  const debDep = (f: (typeof DEP_FIELDS)[number]) => splitDeps(o.get(`deb-${f}`) ?? o.get(f));
  // .rpm: rpm-X given: its lines as they are; else the Debian field translated
  const rpmDeps = (rpmName: string, debName?: string): string[] => {
    if (o.get(`rpm-${rpmName}`) !== undefined) return o.lines(`rpm-${rpmName}`).flatMap((l) => l.split(/,\s*/)).filter(Boolean);
    return debName ? splitDeps(o.get(debName)).map(debRelToRpm) : [];
  };
  const rpmScripts: NonNullable<RpmSpec['scripts']> = {};
  for (const [common, rpm] of Object.entries(RPM_SCRIPT) as Array<[keyof typeof RPM_SCRIPT, (typeof RPM_SCRIPT)[keyof typeof RPM_SCRIPT]]>) {
    rpmScripts[rpm] = rpmScript(script(o, `rpm-${rpm}`) ?? script(o, common));
  }
  rpmScripts.pretrans = rpmScript(script(o, 'rpm-pretrans'));
  rpmScripts.posttrans = rpmScript(script(o, 'rpm-posttrans'));
  const { epoch, version: rpmVersion, release } = rpmVersionRelease(version, v.release);
  return {
    name,
    version,
    release: v.release,
    arch: v.architecture,
    maintainer,
    summary: v.summary,
    description: v.description?.trim() || undefined,
    license: v.license ?? '',
    homepage: v.homepage,
    files,
    compression: v.compression,
    sourceDateEpoch: sde,
    signingKey: key && sign.includes('rpm') ? key : undefined,
    deb: {
      source,
      section: v.section,
      priority: v.priority,
      depends: debDep('depends'),
      preDepends: debDep('pre-depends'),
      recommends: debDep('recommends'),
      suggests: debDep('suggests'),
      enhances: debDep('enhances'),
      breaks: debDep('breaks'),
      conflicts: debDep('conflicts'),
      replaces: debDep('replaces'),
      provides: debDep('provides'),
      files: [...files, ...extra],
      scripts: debScripts,
      triggers: v['deb-triggers']?.trim() || undefined,
      shlibs: v['deb-shlibs'].join('\n') || undefined,
      ...(key && sign.includes('deb') ? { signingKey: key, signatureRole: v['deb-signature-role'] } : {}),
    },
    rpm: {
      group: v.group ?? '',
      vendor: v.vendor,
      requires: [...rpmDeps('requires', 'depends'), ...rpmDeps('pre-depends', 'pre-depends')],
      provides: rpmDeps('provides', 'provides'),
      conflicts: [...rpmDeps('conflicts', 'conflicts'), ...rpmDeps('breaks', 'breaks')],
      obsoletes: rpmDeps('obsoletes'),
      recommends: rpmDeps('recommends', 'recommends'),
      suggests: rpmDeps('suggests', 'suggests'),
      enhances: rpmDeps('enhances', 'enhances'),
      scripts: rpmScripts,
      changelog: [{ time: sde, author: `${maintainer} - ${epoch !== undefined ? `${epoch}:` : ''}${rpmVersion}-${release}`, text: v.changelog?.trim() || '- Package built by kiln.' }],
      sourceRpm: `${source ?? name}-${rpmVersion}-${release}.src.rpm`,
    },
  };
}

const OPTIONS = {
  name: { type: 'pattern', pattern: /^[^\n]+$/, expected: 'a package name', description: 'package name', required: true },
  version: { type: 'string', description: "version, Debian style 'upstream-revision' (rpm: version-release)", required: true },
  release: { type: 'string', description: 'rpm release (default: the Debian revision, or 1)' },
  summary: { type: 'string', hint: "put the long text in 'description'", description: 'one-line summary', required: true },
  description: { type: 'string', multiline: true, description: 'long description (multi-line)' },
  maintainer: { type: 'pattern', pattern: /^[^<>]*<[^<>\s]+>$/, expected: "'Full Name <email@address>'", description: "'Name <email>'", required: true },
  architecture: { type: 'pattern', pattern: /^[a-z0-9][a-z0-9-]*$/, expected: 'a Debian architecture', description: 'Debian architecture (all, amd64, ...); rpm gets noarch, x86_64, ...', default: 'all' },
  formats: { type: 'list', choices: ['deb', 'rpm'], noun: 'format', description: 'deb and/or rpm', default: 'deb rpm' },
  license: { type: 'string', description: 'license (SPDX), rpm License and the generated copyright file', default: 'unknown' },
  copyright: { type: 'string', description: 'copyright holder for the generated copyright file' },
  source: { type: 'string', description: 'source package name (several binary packages from one source)' },
  homepage: { type: 'url', description: 'upstream URL' },
  section: { type: 'pattern', pattern: /^[A-Za-z0-9][A-Za-z0-9+._/-]*$/, noun: 'Debian section', expected: 'a word such as utils, admin, contrib/net', description: 'Debian section', default: 'misc' },
  priority: { type: 'enum', choices: ['required', 'important', 'standard', 'optional', 'extra'], noun: 'priority', description: 'Debian priority', default: 'optional' },
  group: { type: 'string', description: 'rpm group', default: 'Applications/System' },
  ...signingOptions('.rpm packages get a header signature; .deb packages a debsigs signature (_gpg<role> member) when `sign` lists deb'),
  sign: { type: 'list', choices: ['deb', 'rpm'], noun: 'format', description: "which formats the signing key signs: rpm, deb (deb is opt-in: lintian reports every debsigs member as misplaced-extra-member-in-deb, as it does for debsigs' own output)", default: 'rpm' },
  'deb-signature-role': { type: 'pattern', noun: 'role', pattern: /^[a-z]{1,12}$/, expected: 'a lower-case word: origin, maint, archive', description: 'debsigs signature role: the ar member _gpg<role> (origin, maint, archive)', default: 'origin' },
  vendor: { type: 'string', description: 'rpm vendor' },
  files: { type: 'lines', description: "'SOURCE => /dest [mode=] [owner=] [group=] [config] [noreplace] [doc] [license] [ghost]' lines" },
  directories: { type: 'lines', description: "'/path [mode=] [owner=] [group=]' lines" },
  symlinks: { type: 'lines', description: "'/path -> target' lines" },
  compression: { type: 'enum', choices: COMPRESSIONS, noun: 'compression', description: 'payload compression: xz, gzip, zstd (none: deb only)', default: 'xz' },
  changelog: { type: 'string', multiline: true, description: 'rpm changelog text (default: one generated entry)' },
  'deb-triggers': { type: 'string', multiline: true, description: 'dpkg triggers file content' },
  'deb-shlibs': { type: 'lines', description: "DEBIAN/shlibs lines of a shared-library package: 'LIBRARY SOVERSION DEPENDENCY' (e.g. 'libfoo 1 libfoo1 (>= 1.2)'), deb-shlibs(5)" },
  'rpm-pretrans': { type: 'string', multiline: true, description: 'rpm %pretrans scriptlet' },
  'rpm-posttrans': { type: 'string', multiline: true, description: 'rpm %posttrans scriptlet' },
  ...RELATION_AND_SCRIPT_OPTIONS,
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'package',
  version: '1',
  description: 'binary packages (.deb and/or .rpm) from files of other parts',
  options: OPTIONS,
  innerJobs: true, // ctx.jobs: package writers' threads (compressors, md5)
  validate(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const { formats, name } = v;
    if (!formats.length) throw o.error('formats', 'no format given');
    // name and version rules of the formats built
    if (formats.includes('deb')) {
      const e = validateDebPackageName(name);
      if (e) throw o.error('name', e);
      const ve = validateDebVersion(v.version);
      if (ve) throw o.error('version', ve);
    }
    if (formats.includes('rpm')) {
      const e = validateRpmName(name);
      if (e) throw o.error('name', e);
      const { version, release } = rpmVersionRelease(v.version, v.release);
      const ve = validateRpmVersion(version) ?? validateRpmVersion(release, 'release');
      if (ve) throw o.error('version', ve);
    }
    if (v['deb-shlibs'].length) {
      const e = shlibsError(v['deb-shlibs'].join('\n'));
      if (e) throw o.error('deb-shlibs', e);
    }
    if (v.compression === 'none' && formats.includes('rpm')) throw o.error('compression', "'none' is for deb only");
    parseFileRules(o);
    parseDirectories(o);
    parseSymlinks(o);
    validateFields(o, formats);
  },
  inputs(ctx) {
    const o = ctx.options;
    const ins = parseFileRules(o).map((r) => r.src).filter((s) => !/[*?[]/.test(s));
    // a script given as a file (NAME-file): its content is an input
    for (const s of SCRIPT_OPTIONS) if (o.path(`${s}-file`)) ins.push(o.path(`${s}-file`)!);
    return [...ins, ...signingInputs(o.typed(OPTIONS))];
  },
  tools(ctx) {
    const c = ctx.options.typed(OPTIONS).compression;
    return c === 'xz' ? ['xz'] : c === 'zstd' ? ['zstd'] : [];
  },
  async install(ctx) {
    const o = ctx.options;
    const files = collectFiles(o);
    const { formats } = o.typed(OPTIONS);
    const sde = ctx.sourceDateEpoch;
    const wrap = (e: unknown) => (e instanceof KilnError ? new KilnError(`[${ctx.part}] ${e.message}`) : e);
    const order = (['deb', 'rpm'] as const).filter((f) => formats.includes(f));
    const written = await writePackages(packageInfo(ctx, files, sde), order, ctx.staging, { threads: ctx.jobs }).catch((e) => Promise.reject(wrap(e)));
    for (const r of written) ctx.log(`# wrote ${r.path} (${r.size} bytes)\n`);
  },
};
export default recipe;

