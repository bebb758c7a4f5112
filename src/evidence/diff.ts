/**
 * `kiln diff OLD NEW`: what changed between two builds, from their manifests (artifacts by path
 * and sha256) and the CycloneDX SBOMs next to them (sbom/kiln.cdx.json: package versions of the
 * packages kiln built and of each chroot's installed packages). OLD and NEW are manifest.json
 * files or the out/ directories holding them.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ExitCode, KilnError } from '../lib/errors.js';
import type { Manifest } from './manifest.js';

export interface PackageChange {
  /** where the package is: 'built' or 'chroot:PART' */
  scope: string;
  name: string;
  format: string;
  arch: string;
  old?: string;
  new?: string;
}

export interface ArtifactChange {
  path: string;
  part: string;
  change: 'added' | 'removed' | 'changed';
  oldSha256?: string;
  newSha256?: string;
}

export interface DiffResult {
  artifacts: ArtifactChange[];
  packages: PackageChange[];
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function load(arg: string): { manifest: Manifest; sbom?: Record<string, unknown> } {
  const file = existsSync(arg) && statSync(arg).isDirectory() ? join(arg, 'manifest.json') : arg;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch (e) {
    throw new KilnError(`cannot read manifest ${file}: ${(e as Error).message}`, ExitCode.USAGE);
  }
  if (manifest.manifestVersion !== 1 || !Array.isArray(manifest.artifacts)) throw new KilnError(`${file} is not a kiln manifest (manifestVersion 1)`, ExitCode.USAGE);
  const sbomFile = join(dirname(file), 'sbom', 'kiln.cdx.json');
  let sbom: Record<string, unknown> | undefined;
  try {
    sbom = JSON.parse(readFileSync(sbomFile, 'utf8')) as Record<string, unknown>;
  } catch {
    sbom = undefined;
  }
  return { manifest, sbom };
}

interface Comp {
  name: string;
  version?: string;
  purl?: string;
  type?: string;
  'bom-ref'?: string;
  properties?: Array<{ name: string; value: string }>;
  components?: Comp[];
}

/** (scope, format, name, arch) -> version */
function packageVersions(sbom: Record<string, unknown> | undefined): Map<string, { scope: string; format: string; name: string; arch: string; version: string }> {
  const out = new Map<string, { scope: string; format: string; name: string; arch: string; version: string }>();
  const comps = (sbom?.components as Comp[] | undefined) ?? [];
  const add = (scope: string, c: Comp) => {
    if (!c.purl) return;
    const format = /^pkg:([a-z]+)\//.exec(c.purl)?.[1] ?? '?';
    const arch = c.properties?.find((p) => p.name === 'kiln:arch')?.value ?? decodeURIComponent(/[?&]arch=([^&]+)/.exec(c.purl)?.[1] ?? '');
    out.set(`${scope}\0${format}\0${c.name}\0${arch}`, { scope, format, name: c.name, arch, version: c.version ?? '' });
  };
  for (const c of comps) {
    if (c.type === 'operating-system' && c['bom-ref']?.startsWith('chroot:')) for (const p of c.components ?? []) add(c['bom-ref'], p);
    else if (c.purl) add('built', c);
  }
  return out;
}

export function diffManifests(oldArg: string, newArg: string): DiffResult {
  const a = load(oldArg);
  const b = load(newArg);
  const oa = new Map(a.manifest.artifacts.map((x) => [x.path, x]));
  const nb = new Map(b.manifest.artifacts.map((x) => [x.path, x]));
  const artifacts: ArtifactChange[] = [];
  for (const [p, x] of oa) {
    const y = nb.get(p);
    if (!y) artifacts.push({ path: p, part: x.part, change: 'removed', oldSha256: x.sha256 });
    else if (y.sha256 !== x.sha256) artifacts.push({ path: p, part: y.part, change: 'changed', oldSha256: x.sha256, newSha256: y.sha256 });
  }
  for (const [p, y] of nb) if (!oa.has(p)) artifacts.push({ path: p, part: y.part, change: 'added', newSha256: y.sha256 });
  artifacts.sort((x, y) => cmp(x.path, y.path));
  const va = packageVersions(a.sbom);
  const vb = packageVersions(b.sbom);
  const packages: PackageChange[] = [];
  for (const k of [...new Set([...va.keys(), ...vb.keys()])].sort(cmp)) {
    const x = va.get(k);
    const y = vb.get(k);
    if (x && y && x.version === y.version) continue;
    const s = (x ?? y)!;
    packages.push({ scope: s.scope, name: s.name, format: s.format, arch: s.arch, old: x?.version, new: y?.version });
  }
  return { artifacts, packages };
}

export function diffCommand(args: string[], json: boolean): number {
  if (args.length !== 2) {
    console.error('kiln: diff takes two manifests (out/manifest.json files or out/ directories): kiln diff OLD NEW');
    return ExitCode.USAGE;
  }
  const d = diffManifests(args[0]!, args[1]!);
  if (json) {
    console.log(JSON.stringify(d)); // one line: one JSON document per line, as the build events
    return 0;
  }
  console.log(`packages: ${d.packages.length} changed`);
  for (const p of d.packages) console.log(`  ${p.name} (${p.format}, ${p.arch || 'any'}${p.scope === 'built' ? '' : `, ${p.scope}`}): ${p.old ?? '(new)'} -> ${p.new ?? '(removed)'}`);
  console.log(`artifacts: ${d.artifacts.length} changed`);
  for (const x of d.artifacts) console.log(`  ${x.change.padEnd(7)} ${x.path} (${x.part})`);
  return 0;
}
