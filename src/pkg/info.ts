/**
 * One format-neutral description of a binary package (as nfpm's `Info` with per-format
 * overrides), translated here, and only here, into a DebSpec (deb.ts) and an RpmSpec (rpm.ts):
 * the Debian architecture becomes rpm's (amd64 -> x86_64, all -> noarch), a Debian version
 * `[epoch:]upstream[-revision]` becomes rpm's epoch/version/release, Debian relationships
 * (`foo (>= 1.0) | bar`) become rpm dependencies (`(foo >= 1.0 or bar)`), breaks join conflicts,
 * and an uncompressed payload (deb only) becomes gzip for rpm. What only one format has goes in
 * `deb` / `rpm`, which override the translated fields.
 *
 *   await writePackages(info, ['deb', 'rpm'], ctx.staging)   // every recipe that makes packages
 */
import { join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import type { SigningKey } from '../lib/gpg.js';
import type { Compression } from './compress.js';
import { debFileName, writeDeb, type DebSpec } from './deb.js';
import type { PkgFile } from './files.js';
import { rpmFileName, writeRpm, type RpmScript, type RpmSpec } from './rpm.js';

export type PackageFormat = 'deb' | 'rpm';

/** Debian architecture -> rpm architecture. */
export const RPM_ARCH: Readonly<Record<string, string>> = { all: 'noarch', amd64: 'x86_64', arm64: 'aarch64', i386: 'i686', armhf: 'armv7hl', ppc64el: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function rpmArch(debArch: string): string {
  return RPM_ARCH[debArch] ?? debArch;
}

/** A Debian relationship field's comma-separated entries, white space normalised. */
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

/** rpm epoch/version/release of a Debian-style version: the revision is the release (`release` wins; 1 when neither). */
export function rpmVersionRelease(debVersion: string, release?: string): { epoch?: number; version: string; release: string } {
  let v = debVersion;
  let epoch: number | undefined;
  const c = /^(\d+):(.*)$/.exec(v);
  if (c) {
    epoch = Number(c[1]);
    v = c[2]!;
  }
  const d = v.lastIndexOf('-');
  return { epoch, version: d >= 0 ? v.slice(0, d) : v, release: release || (d >= 0 ? v.slice(d + 1) : '1') };
}

export const RELATIONS = ['depends', 'preDepends', 'recommends', 'suggests', 'enhances', 'breaks', 'conflicts', 'replaces', 'provides'] as const;
export type Relation = (typeof RELATIONS)[number];

export interface PackageInfo {
  name: string;
  /** Debian-style `[epoch:]upstream[-revision]` */
  version: string;
  /** rpm release (default: the Debian revision, else 1) */
  release?: string;
  /** Debian architecture (all, amd64, ...) */
  arch: string;
  /** 'Name <email>': deb Maintainer, rpm Packager */
  maintainer: string;
  /** one line */
  summary: string;
  /** long description (deb: after the summary line; rpm: the description, else the summary) */
  description?: string;
  license?: string;
  homepage?: string;
  /** Debian relationships (Debian syntax), translated for rpm */
  relations?: Partial<Record<Relation, string[]>>;
  /** maintainer scripts for both formats (deb preinst/postinst/prerm/postrm, rpm pre/post/preun/postun) */
  scripts?: { preinstall?: string; postinstall?: string; preremove?: string; postremove?: string };
  files: PkgFile[];
  compression?: Compression;
  sourceDateEpoch: number;
  /** signs the .rpm (a .deb is signed only when `deb.signingKey` is set: debsigs is opt-in) */
  signingKey?: SigningKey;
  /** fields only the .deb has, or that differ from the translation */
  deb?: Partial<DebSpec>;
  /** fields only the .rpm has, or that differ from the translation */
  rpm?: Partial<RpmSpec>;
}

/** `over`'s defined fields over `base`. */
function overlay<T extends object>(base: T, over: Partial<T> | undefined): T {
  const out = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

export function toDebSpec(info: PackageInfo): DebSpec {
  const r = info.relations ?? {};
  const s = info.scripts ?? {};
  return overlay<DebSpec>(
    {
      name: info.name,
      version: info.version,
      architecture: info.arch,
      maintainer: info.maintainer,
      description: `${info.summary}${info.description ? '\n' + info.description : ''}`,
      homepage: info.homepage,
      ...Object.fromEntries(RELATIONS.filter((k) => r[k]).map((k) => [k, r[k]])),
      files: info.files,
      scripts: s.preinstall || s.postinstall || s.preremove || s.postremove ? { preinst: s.preinstall, postinst: s.postinstall, prerm: s.preremove, postrm: s.postremove } : undefined,
      compression: info.compression,
      sourceDateEpoch: info.sourceDateEpoch,
    },
    info.deb,
  );
}

function rpmScript(text: string | undefined): RpmScript | undefined {
  if (!text) return undefined;
  const m = /^#!\s*(\S+)/.exec(text);
  return { body: text, prog: m ? m[1] : '/bin/sh' };
}

export function toRpmSpec(info: PackageInfo): RpmSpec {
  const { epoch, version, release } = rpmVersionRelease(info.version, info.release);
  const r = info.relations ?? {};
  const rel = (...ks: Relation[]) => ks.flatMap((k) => (r[k] ?? []).map(debRelToRpm));
  const s = info.scripts ?? {};
  return overlay<RpmSpec>(
    {
      name: info.name,
      version,
      release,
      epoch,
      arch: rpmArch(info.arch),
      summary: info.summary,
      description: info.description || info.summary,
      license: info.license ?? 'unknown',
      url: info.homepage,
      packager: info.maintainer,
      requires: rel('depends', 'preDepends'),
      provides: rel('provides'),
      conflicts: rel('conflicts', 'breaks'),
      recommends: rel('recommends'),
      suggests: rel('suggests'),
      enhances: rel('enhances'),
      files: info.files,
      scripts: s.preinstall || s.postinstall || s.preremove || s.postremove ? { pre: rpmScript(s.preinstall), post: rpmScript(s.postinstall), preun: rpmScript(s.preremove), postun: rpmScript(s.postremove) } : undefined,
      compression: info.compression === 'none' ? 'gzip' : info.compression,
      sourceDateEpoch: info.sourceDateEpoch,
      signingKey: info.signingKey,
    },
    info.rpm,
  );
}

export interface WrittenPackage {
  format: PackageFormat;
  /** file name in `dir` */
  file: string;
  path: string;
  size: number;
}

/**
 * Write `info` as each of `formats` into `dir` (each written atomically by its writer), in the order
 * given. `opts.threads`: compressor and digest threads; recipes pass `ctx.jobs` (their share of -j).
 */
export async function writePackages(info: PackageInfo, formats: readonly PackageFormat[], dir: string, opts: { threads?: number } = {}): Promise<WrittenPackage[]> {
  const out: WrittenPackage[] = [];
  for (const format of formats) {
    if (format === 'deb') {
      const spec = toDebSpec(info);
      const file = debFileName(spec);
      const r = await writeDeb(spec, join(dir, file), opts);
      out.push({ format, file, path: r.path, size: r.size });
    } else {
      const spec = toRpmSpec(info);
      const file = rpmFileName(spec);
      const r = await writeRpm(spec, join(dir, file), opts);
      out.push({ format, file, path: r.path, size: r.size });
    }
  }
  return out;
}
