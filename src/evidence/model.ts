/**
 * The software inventory both SBOM formats are written from: packages kiln built (read from the
 * .deb/.rpm files), upstream sources (parts with a `url`), chroots and their installed Debian
 * packages, and which package came from which sources and build chroots (through the part graph).
 * Everything sorted; nothing taken from the clock or the build directory.
 */
import { createHash } from 'node:crypto';
import type { Project } from '../engine/project.js';
import type { InstalledPackage, PackageInfo } from './inspect.js';
import type { ManifestResult } from './manifest.js';
import { partPrefix, relocator } from './manifest.js';

export interface BuiltPackage {
  ref: string;
  purl: string;
  info: PackageInfo;
  sha256: string;
  size: number;
  /** first part that produced it (a repository's copy is listed in artifacts too) */
  part: string;
  artifacts: string[];
  sources: string[];
  buildChroots: string[];
  dependsOn: string[];
}

export interface Source {
  ref: string;
  part: string;
  name: string;
  version?: string;
  url: string;
  sha256?: string;
}

export interface Chroot {
  ref: string;
  part: string;
  artifact: string;
  sha256: string;
  suite: string;
  arch: string;
  packages: Array<InstalledPackage & { ref: string; purl: string; dependsOn: string[] }>;
}

export interface Inventory {
  name: string;
  sourceDateEpoch: number;
  kilnVersion: string;
  packages: BuiltPackage[];
  sources: Source[];
  chroots: Chroot[];
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const enc = (s: string) => encodeURIComponent(s);

export function purlFor(format: 'deb' | 'rpm', namespace: string, name: string, version: string, arch: string, distro?: string): string {
  const q = [arch ? `arch=${enc(arch)}` : '', distro ? `distro=${enc(distro)}` : ''].filter(Boolean).join('&');
  return `pkg:${format}/${namespace}/${enc(name.toLowerCase())}@${enc(version)}${q ? `?${q}` : ''}`;
}

export function shortHash(s: string, n = 12): string {
  return createHash('sha256').update(s).digest('hex').slice(0, n);
}

/** Transitive dependency parts of `name` (not itself), sorted. */
function closureOf(project: Project, name: string): string[] {
  const seen = new Set<string>();
  const visit = (n: string) => {
    for (const d of project.parts.get(n)!.deps.keys()) {
      if (seen.has(d)) continue;
      seen.add(d);
      visit(d);
    }
  };
  visit(name);
  return [...seen].sort(cmp);
}

export function buildInventory(project: Project, mr: ManifestResult, parts?: Set<string>): Inventory {
  const rel = relocator(project);
  const m = mr.manifest;
  const sources = new Map<string, Source>();
  const chroots = new Map<string, Chroot>();
  const packages = new Map<string, BuiltPackage>();
  const want = (n: string) => !parts || parts.has(n);

  // upstream sources: every part with a url, in the whole graph (a package's origin may be outside `parts`)
  for (const p of m.parts) {
    const part = project.parts.get(p.name)!;
    const url = part.options.get('url')?.trim();
    if (!url) continue;
    // a file another part made (cmmi of a kiln:download output) is not an upstream source
    if ([project.outDir, ...[...project.parts.values()].map((x) => x.location)].some((d) => url === d || url.startsWith(d + '/'))) continue;
    const scan = mr.scans.get(p.name);
    let sha = part.options.get('sha256')?.trim().toLowerCase();
    if (!sha && part.recipe.kind === 'download' && scan?.files.length === 1) sha = scan.files[0]!.sha256;
    const relUrl = rel(url);
    sources.set(p.name, { ref: `source:${p.name}`, part: p.name, name: relUrl.split('/').pop() || p.name, version: part.options.get('version')?.trim() || undefined, url: relUrl, sha256: sha || undefined });
  }
  for (const p of m.parts) {
    const scan = mr.scans.get(p.name);
    if (!scan) continue;
    const part = project.parts.get(p.name)!;
    const prefix = partPrefix(project, p.name);
    for (const [file, pkgs] of Object.entries(scan.chroots)) {
      const f = scan.files.find((x) => x.path === file)!;
      const suite = part.options.get('suite')?.trim() || 'unknown';
      const ref = `chroot:${p.name}`;
      const byName = new Map(pkgs.map((x) => [x.name, x]));
      const pk = pkgs.map((x) => {
        const purl = purlFor('deb', 'debian', x.name, x.version, x.arch, suite);
        return { ...x, purl, ref: `${ref}:${purl}`, dependsOn: [] as string[] };
      });
      const refOf = new Map(pk.map((x) => [x.name, x.ref]));
      for (const x of pk) x.dependsOn = x.depends.filter((d) => byName.has(d) && d !== x.name).map((d) => refOf.get(d)!).sort(cmp);
      chroots.set(p.name, { ref, part: p.name, artifact: `${prefix}/${file}`, sha256: f.sha256, suite, arch: part.options.get('architecture')?.trim() || pkgs.find((x) => x.arch !== 'all')?.arch || '', packages: pk });
    }
  }
  for (const p of m.parts) {
    const scan = mr.scans.get(p.name);
    if (!scan) continue;
    if (!Object.keys(scan.packages).length) continue;
    const prefix = partPrefix(project, p.name);
    const closure = closureOf(project, p.name);
    for (const [file, info] of Object.entries(scan.packages)) {
      const f = scan.files.find((x) => x.path === file)!;
      const purl = purlFor(info.format, 'kiln', info.name, info.version, info.arch);
      let key = purl;
      const existing = packages.get(key);
      if (existing && existing.sha256 !== f.sha256) key = `${purl}#${f.sha256.slice(0, 16)}`;
      const prev = packages.get(key);
      if (prev) {
        prev.artifacts.push(`${prefix}/${file}`);
        continue;
      }
      packages.set(key, {
        ref: key,
        purl,
        info,
        sha256: f.sha256,
        size: f.size,
        part: p.name,
        artifacts: [`${prefix}/${file}`],
        sources: closure.filter((d) => sources.has(d)).map((d) => sources.get(d)!.ref),
        buildChroots: closure.filter((d) => chroots.has(d)).map((d) => chroots.get(d)!.ref),
        dependsOn: [],
      });
    }
  }
  // depends-on between built packages of the same format
  const all = [...packages.values()];
  for (const b of all) {
    b.dependsOn = all.filter((o) => o !== b && o.info.format === b.info.format && b.info.depends.includes(o.info.name)).map((o) => o.ref).sort(cmp);
  }
  // restrict to the requested parts (per-part SBOMs keep the sources and chroots their packages came from)
  const pkgList = all.filter((b) => b.artifacts.some((a) => want(m.artifacts.find((x) => x.path === a)?.part ?? b.part))).sort((a, b) => cmp(a.ref, b.ref));
  const usedSources = new Set(pkgList.flatMap((b) => b.sources));
  const usedChroots = new Set(pkgList.flatMap((b) => b.buildChroots));
  for (const b of pkgList) b.artifacts.sort(cmp);
  return {
    name: m.config.file.split('/').pop()!.replace(/\.cfg$/, ''),
    sourceDateEpoch: m.sourceDateEpoch,
    kilnVersion: m.kiln.version,
    packages: pkgList,
    sources: [...sources.values()].filter((s) => want(s.part) || usedSources.has(s.ref)).sort((a, b) => cmp(a.ref, b.ref)),
    chroots: [...chroots.values()].filter((c) => want(c.part) || usedChroots.has(c.ref)).sort((a, b) => cmp(a.ref, b.ref)),
  };
}

/** ISO 8601 without fractions, from SOURCE_DATE_EPOCH. */
export function isoTime(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A name-based UUID (version 5 layout) from content, for serial numbers and namespaces. */
export function contentUuid(content: string): string {
  const h = createHash('sha256').update(content).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
