/**
 * kiln:ganeti-extstorage: a Ganeti ExtStorage provider (ganeti-extstorage-interface(7)), checked
 * at load time and packaged as a .deb and an .rpm.
 *
 *   INSTALL-DIR/NAME/              create attach detach remove grow setinfo verify (required),
 *                                  snapshot open close (optional): the user's executables;
 *                                  parameters.list (from `parameters`); extra files (libraries)
 *   /etc/default/PACKAGE           the `defaults` (conffile), when given: KEY='VALUE' lines the
 *                                  scripts may source
 *
 * INSTALL-DIR is one of the directories of Ganeti's ExtStorage search path that a package may own
 * (/usr/share/ganeti/extstorage by default, /usr/lib/ganeti/extstorage). Ganeti passes each
 * ExtStorage parameter NAME to the scripts as EXTP_NAME (upper case): the recipe reads the scripts
 * and refuses a parameter a script reads but `parameters` does not document, and one documented
 * but read by no script, so parameters.list says exactly what the provider takes.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { PkgFile } from '../pkg/files.js';
import { COMPRESSIONS } from '../pkg/compress.js';
import { writePackages, type PackageInfo } from '../pkg/info.js';
import { signingInputs, signingOptions, signingTools, type BuildContext, type OptionSpec, type PartOptions, type PlanContext, type Recipe } from '../kind.js';
import { writeFileAtomic } from '../lib/fsutil.js';

/** ganeti/_constants.py ES_SCRIPTS; snapshot, open and close are optional (ExtStorageFromDisk) */
export const REQUIRED_SCRIPTS = ['create', 'attach', 'detach', 'remove', 'grow', 'setinfo', 'verify'] as const;
export const OPTIONAL_SCRIPTS = ['snapshot', 'open', 'close'] as const;
const SCRIPTS: readonly string[] = [...REQUIRED_SCRIPTS, ...OPTIONAL_SCRIPTS];
/** the ES_SEARCH_PATH entries of Debian's ganeti that belong to packages (/srv and /usr/local do not) */
/** .deb and .rpm payload compressions (rpm has no 'none') */
const PAYLOAD_COMPRESSIONS = COMPRESSIONS.filter((c) => c !== 'none');
const INSTALL_DIRS = ['/usr/share/ganeti/extstorage', '/usr/lib/ganeti/extstorage'];

const NAME_RE = /^[a-z0-9][a-z0-9_.-]*$/;
/** Ganeti exports a parameter as EXTP_<NAME.upper()>: it must make a shell variable name */
const PARAM_RE = /^[a-z][a-z0-9_]*$/;
const PKG_RE = /^[a-z0-9][a-z0-9+.-]+$/;
const VERSION_RE = /^[0-9][A-Za-z0-9.+~]*$/;
const DEFAULT_KEY_RE = /^[A-Z_][A-Z0-9_]*$/;
const DEP_RE = /^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?( \((<<|<=|=|>=|>>) [0-9A-Za-z.+~:-]+\))?$/;

interface Param {
  name: string;
  description: string;
}

function parameters(o: PartOptions): Param[] {
  return o.typed(OPTIONS).parameters.map((l) => {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    return { name: m[1]!, description: m[2]!.trim() };
  });
}

/** script name -> [file, the option that named it] */
function scriptFiles(o: PartOptions): Map<string, { file: string; option: string }> {
  const out = new Map<string, { file: string; option: string }>();
  const dir = o.typed(OPTIONS).scripts;
  if (dir && existsSync(dir) && statSync(dir).isDirectory()) {
    for (const s of SCRIPTS) {
      const f = join(dir, s);
      if (existsSync(f)) out.set(s, { file: f, option: 'scripts' });
    }
  }
  for (const s of SCRIPTS) {
    const f = o.path(`script-${s}`);
    if (f) out.set(s, { file: f, option: `script-${s}` });
  }
  return out;
}

function pkgName(o: PartOptions): string {
  const v = o.typed(OPTIONS);
  return v['package-name'] ?? `ganeti-extstorage-${v.name}`;
}

/** `Depends`-style comma lists: one relation per item, alternatives with | */
function relations(o: PartOptions, name: 'depends' | 'recommends' | 'suggests'): string[] {
  return (o.typed(OPTIONS)[name] ?? '')
    .split(/[,\n]/)
    .map((s) => s.trim().replace(/\s+/g, ' '))
    .filter(Boolean);
}

function validate(ctx: PlanContext): void {
  const o = ctx.options;
  const v = o.typed(OPTIONS);
  // the package name made from the provider name ('_' is no package name character)
  if (!PKG_RE.test(pkgName(o))) throw o.error('package-name', `not a valid package name: '${pkgName(o)}'`);
  for (const k of ['signing-key', 'signing-key-passphrase-file'] as const) {
    const f = v[k];
    if (f && (!existsSync(f) || !statSync(f).isFile())) throw o.error(k, `file not found: ${f}`);
  }
  if (!INSTALL_DIRS.includes(v['install-dir'])) throw o.error('install-dir', `expected one of Ganeti's ExtStorage search path directories a package may own: ${INSTALL_DIRS.join(', ')}; got '${v['install-dir']}'`);
  if (!v.formats.length) throw o.error('formats', 'at least one format is needed (deb, rpm)');
  for (const k of ['depends', 'recommends', 'suggests'] as const) {
    for (const rel of relations(o, k)) {
      for (const alt of rel.split('|').map((s) => s.trim())) {
        if (!DEP_RE.test(alt)) throw o.error(k, `not a package relation: '${alt}' (NAME or NAME (OP VERSION), OP one of << <= = >= >>)`);
      }
    }
  }
  for (const [k, val] of Object.entries(v.defaults)) {
    if (!DEFAULT_KEY_RE.test(k)) throw o.error('defaults', `not a shell variable name: '${k}' (upper-case letters, digits, '_')`);
    if (/[\n\0]/.test(val)) throw o.error('defaults', `the value of ${k} must be one line`);
  }

  // the scripts: where they come from, that they are executable regular files
  const sdir = v.scripts;
  if (sdir) {
    if (!existsSync(sdir) || !statSync(sdir).isDirectory()) throw o.error('scripts', `not a directory: ${sdir}`);
    for (const f of readdirSync(sdir).sort()) {
      if (!SCRIPTS.includes(f)) {
        throw o.error('scripts', `${join(sdir, f)}: not an ExtStorage script name (${SCRIPTS.join(', ')}); list helper files in extra-files`);
      }
    }
  }
  const files = scriptFiles(o);
  for (const s of REQUIRED_SCRIPTS) {
    if (!files.has(s)) {
      const where = sdir ? `neither ${join(sdir, s)} nor script-${s} exists` : `give scripts = DIR or script-${s} = FILE`;
      throw o.error(sdir ? 'scripts' : `script-${s}`, `the required ExtStorage script '${s}' is missing: ${where}`);
    }
  }
  for (const [s, { file, option }] of files) {
    if (!existsSync(file)) throw o.error(option, `script '${s}': file not found: ${file}`);
    const st = statSync(file);
    if (!st.isFile()) throw o.error(option, `script '${s}': not a regular file: ${file}`);
    if ((st.mode & 0o100) === 0) throw o.error(option, `script '${s}': not executable: ${file} (chmod +x; Ganeti refuses a provider whose scripts are not executable)`);
  }
  const extras = v['extra-files'];
  const seen = new Set<string>(SCRIPTS);
  seen.add('parameters.list');
  for (const f of extras) {
    if (!existsSync(f) || !statSync(f).isFile()) throw o.error('extra-files', `file not found: ${f}`);
    const b = basename(f);
    if (seen.has(b)) throw o.error('extra-files', `'${b}' is a name the provider directory already uses`);
    seen.add(b);
  }

  // parameters.list against what the scripts read
  const params = parameters(o);
  const pseen = new Set<string>();
  for (const p of params) {
    if (!PARAM_RE.test(p.name)) throw o.error('parameters', `not a valid parameter name: '${p.name}' (lower-case letters, digits, '_'; Ganeti passes it as EXTP_${p.name.toUpperCase()})`);
    if (pseen.has(p.name)) throw o.error('parameters', `parameter '${p.name}' is listed twice`);
    pseen.add(p.name);
    if (!p.description) throw o.error('parameters', `parameter '${p.name}' has no description (one line each: NAME DESCRIPTION)`);
  }
  const reads = new Map<string, string[]>();
  for (const [s, { file }] of [...files].sort((a, b) => a[0].localeCompare(b[0]))) {
    for (const m of readFileSync(file, 'latin1').matchAll(/EXTP_([A-Za-z0-9_]+)/g)) {
      const l = reads.get(m[1]!) ?? [];
      if (!l.includes(s)) l.push(s);
      reads.set(m[1]!, l);
    }
  }
  for (const f of extras) {
    for (const m of readFileSync(f, 'latin1').matchAll(/EXTP_([A-Za-z0-9_]+)/g)) {
      const l = reads.get(m[1]!) ?? [];
      if (!l.includes(basename(f))) l.push(basename(f));
      reads.set(m[1]!, l);
    }
  }
  const documented = new Set(params.map((p) => p.name.toUpperCase()));
  for (const [x, by] of [...reads].sort()) {
    if (!documented.has(x)) throw o.error('parameters', `${by.join(', ')} read${by.length === 1 ? 's' : ''} EXTP_${x}, but parameter '${x.toLowerCase()}' is not documented here (add a line: ${x.toLowerCase()} DESCRIPTION)`);
  }
  for (const p of params) {
    if (!reads.has(p.name.toUpperCase())) throw o.error('parameters', `parameter '${p.name}' is documented, but no script reads EXTP_${p.name.toUpperCase()}`);
  }
}

const OPTIONS = {
  name: { type: 'pattern', pattern: NAME_RE, expected: "a valid ExtStorage provider name (lower-case letters, digits, '_', '.', '-')", description: 'provider name (gnt-instance add --disk provider=NAME; the directory under the search path)', required: true },
  scripts: { type: 'path', description: 'directory holding the scripts: create attach detach remove grow setinfo verify (required), snapshot open close (optional)' },
  parameters: { type: 'lines', description: 'ExtStorage parameters, one per line: NAME DESCRIPTION (parameters.list; the scripts see EXTP_NAME)' },
  'extra-files': { type: 'paths', description: 'further files installed next to the scripts (a shell library they source), one path per line' },
  defaults: { type: 'env', description: 'KEY=VALUE lines written to /etc/default/PACKAGE (conffile) for the scripts to source' },
  'install-dir': { type: 'pattern', pattern: /^\/\S*$/, expected: 'an absolute directory', description: "directory of Ganeti's ExtStorage search path: /usr/share/ganeti/extstorage or /usr/lib/ganeti/extstorage", default: '/usr/share/ganeti/extstorage' },
  'package-name': { type: 'pattern', pattern: PKG_RE, expected: 'a valid package name', description: 'package name (default ganeti-extstorage-NAME)' },
  version: { type: 'pattern', pattern: VERSION_RE, expected: 'a valid version (digits first; letters, digits, . + ~)', description: 'package version', default: '1.0' },
  release: { type: 'pattern', pattern: VERSION_RE, expected: 'a valid release', description: 'rpm release', default: '1' },
  maintainer: { type: 'pattern', pattern: /^[^<>\n]+ <[^<>\s]+@[^<>\s]+>$/, expected: "'Full Name <email>'", description: "'Name <email>' of the packages", default: 'kiln <kiln@example.org>' },
  url: { type: 'url', description: 'project URL (rpm URL, deb Homepage)' },
  summary: { type: 'string', description: 'one-line package description' },
  license: { type: 'string', description: 'license (SPDX) for the copyright file and the rpm', default: 'MIT' },
  depends: { type: 'string', description: 'Debian dependencies of the provider (comma-separated, e.g. the storage tools it drives)' },
  recommends: { type: 'string', description: 'Debian Recommends', default: 'ganeti-3.0 | ganeti' },
  suggests: { type: 'string', description: 'Debian Suggests' },
  'rpm-requires': { type: 'lines', pattern: /^[A-Za-z0-9_/][A-Za-z0-9_.+/()-]*( (<|<=|=|>=|>) [A-Za-z0-9_.+~^:-]+)?$/, expected: 'an rpm requirement (NAME or NAME OP VERSION)', description: 'rpm Requires of the provider, one per line (default: derived from nothing; util-linux for losetup etc. must be named)' },
  formats: { type: 'list', choices: ['deb', 'rpm'], noun: 'format', description: 'deb rpm', default: 'deb rpm' },
  ...signingOptions('the .rpm gets a header signature (as kiln:package)'),
  compression: { type: 'enum', choices: PAYLOAD_COMPRESSIONS, noun: 'compression', description: 'payload compression of the packages: xz, gzip, zstd', default: 'xz' },
} as const satisfies Record<string, OptionSpec>;

export const recipe: Recipe = {
  kind: 'ganeti-extstorage',
  version: '1',
  description: 'Ganeti ExtStorage provider (ganeti-extstorage-interface(7)) checked at load time, as .deb and .rpm',
  options: OPTIONS,
  innerJobs: true, // ctx.jobs: package writers' threads
  optionPatterns: [new RegExp(`^script-(${SCRIPTS.join('|')})$`)],
  validate,
  inputs(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    return [...[...scriptFiles(o).values()].map((s) => s.file), ...v['extra-files'], ...signingInputs(v)];
  },
  tools(ctx) {
    const v = ctx.options.typed(OPTIONS);
    return v.formats.includes('rpm') ? signingTools(v) : [];
  },
  async install(ctx: BuildContext) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const { name, version, release, maintainer } = v;
    const pkg = pkgName(o);
    const license = v.license ?? '';
    const sde = ctx.sourceDateEpoch;
    const esDir = `${v['install-dir']}/${name}`;
    const params = parameters(o);
    const scripts = [...scriptFiles(o)].sort((a, b) => a[0].localeCompare(b[0]));
    const defaults = v.defaults;
    // the provider directory is the package's own (rpm removes it with the package)
    const files: PkgFile[] = [{ path: esDir, type: 'dir', mode: 0o755 }];
    for (const [s, { file }] of scripts) files.push({ path: `${esDir}/${s}`, type: 'file', source: file, mode: 0o755 });
    files.push({ path: `${esDir}/parameters.list`, type: 'file', content: params.map((p) => `${p.name} ${p.description}\n`).join(''), mode: 0o644 });
    for (const f of v['extra-files']) files.push({ path: `${esDir}/${basename(f)}`, type: 'file', source: f, mode: 0o644 });
    const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    if (Object.keys(defaults).length) {
      const text =
        `# Settings of the Ganeti ExtStorage provider '${name}' (package ${pkg}), read by its scripts.\n` +
        Object.entries(defaults)
          .map(([k, val]) => `${k}=${shq(val)}\n`)
          .join('');
      files.push({ path: `/etc/default/${pkg}`, type: 'file', content: text, mode: 0o644, conffile: true, noreplace: true });
    }
    const summaryLine = v.summary || `Ganeti ExtStorage provider '${name}'`;
    const long =
      `Ganeti ExtStorage provider '${name}' (ganeti-extstorage-interface(7)):\n` +
      `disks of Ganeti instances created with --disk provider=${name}.\n` +
      (params.length ? `Parameters: ${params.map((p) => p.name).join(', ')}.` : 'It takes no parameters.');
    const { formats, compression } = v;
    const docDir = `/usr/share/doc/${pkg}`;
    const date = new Date(sde * 1000);
    const info: PackageInfo = {
      name: pkg,
      version,
      release,
      arch: 'all',
      maintainer,
      summary: summaryLine,
      description: long,
      license,
      homepage: v.url,
      relations: { depends: relations(o, 'depends'), recommends: relations(o, 'recommends'), suggests: relations(o, 'suggests') },
      files,
      compression,
      sourceDateEpoch: sde,
      signingKey: v['signing-key'] ? { keyFile: v['signing-key'], passphraseFile: v['signing-key-passphrase-file'] } : undefined,
      deb: {
        section: 'admin',
        priority: 'optional',
        files: [
          ...files,
          { path: `${docDir}/copyright`, type: 'file', content: `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: ${pkg}\n\nFiles: *\nCopyright: ${date.getUTCFullYear()} ${maintainer}\nLicense: ${license}\n` },
          { path: `${docDir}/changelog.gz`, type: 'file', content: gzipSync(Buffer.from(`${pkg} (${version}) unstable; urgency=medium\n\n  * Built by kiln.\n\n -- ${maintainer}  ${date.toUTCString().replace(/GMT$/, '+0000')}\n`), { level: 9 }) },
        ],
      },
      rpm: {
        version: version.replace(/[-~]/g, '_'),
        group: 'System Environment/Base',
        // the provider's tools are named explicitly (rpm-requires): no translation of depends
        requires: [...new Set(['/bin/sh', ...v['rpm-requires']])].sort(),
        recommends: [],
        suggests: [],
        changelog: [{ time: sde, author: maintainer, text: `- ${version}-${release}: built by kiln` }],
        files: files.map((f) => ({ ...f })),
      },
    };
    const out = (await writePackages(info, (['deb', 'rpm'] as const).filter((f) => formats.includes(f)), ctx.staging, { threads: ctx.jobs })).map((w) => w.file);
    writeFileAtomic(
      join(ctx.staging, 'ganeti-extstorage.json'),
      JSON.stringify({ name, package: pkg, version, directory: esDir, scripts: scripts.map(([s]) => s), parameters: params, defaults, packages: out }, null, 1) + '\n',
    );
  },
};
export default recipe;
