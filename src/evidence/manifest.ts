/**
 * out/manifest.json: every artifact file of every part (path under out/, part, recipe kind,
 * sha256, size, type and media type), the part graph, each part's signature and how it was
 * obtained (built / restored / cached), kiln's version and SOURCE_DATE_EPOCH.
 * Schema: schemas/manifest.schema.json. Nothing in it depends on the directory the project was
 * built in or on the clock: the signature recorded is the part signature with the project, out
 * and cache directories replaced by placeholders (the store key in out/.kiln/store is the same
 * hash over the absolute paths).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { Project } from '../engine/project.js';
import { Store } from '../engine/store.js';
import { hashFile, relocateSignature } from '../lib/hash.js';
import type { RunRecord, PartStatus } from './record.js';
import type { ArtifactType, PartScan } from './scan.js';

export const MANIFEST_VERSION = 1;

export interface ManifestArtifact {
  path: string;
  part: string;
  kind: string;
  type: ArtifactType;
  mediaType: string;
  sha256: string;
  size: number;
}

export interface ManifestPart {
  name: string;
  kind: string;
  recipe: string;
  signature: string;
  status: PartStatus;
  location: string;
  shared: boolean;
  dependencies: string[];
  artifacts: number;
}

export interface Manifest {
  manifestVersion: number;
  kiln: { version: string };
  sourceDateEpoch: number;
  config: { file: string; files: Array<{ path: string; sha256: string }> };
  parts: ManifestPart[];
  graph: { nodes: string[]; edges: Array<[string, string]> };
  artifacts: ManifestArtifact[];
}

export function kilnVersion(): string {
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name: string; version: string }).version;
    } catch {
      /* try the next */
    }
  }
  return '0.0.0';
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Replace the machine-specific directories of a project by placeholders. */
export function relocator(project: Project): (s: string) => string {
  const subs = [
    [project.outDir, '${buildout:out-directory}'],
    [project.cacheDir, '${kiln:cache-directory}'],
    [project.projectDir, '${buildout:directory}'],
  ].filter(([d]) => d && d !== '/').sort((a, b) => b[0]!.length - a[0]!.length) as Array<[string, string]>;
  return (s: string) => {
    for (const [d, r] of subs) if (s.includes(d)) s = s.split(d).join(r);
    return s;
  };
}

const relocatedMemo = new WeakMap<Project, Map<string, string>>();

/** Part signatures independent of where the project lives (dependencies' relocated signatures included). */
export function relocatedSignatures(project: Project): Map<string, string> {
  const memo = relocatedMemo.get(project);
  if (memo) return memo;
  const rel = relocator(project);
  const out = new Map<string, string>();
  for (const name of project.order) {
    const part = project.parts.get(name)!;
    const sp = part.sigParts;
    const { options, inputs, deps } = relocateSignature(sp, rel, (d, sig) => out.get(d) ?? sig);
    out.set(name, createHash('sha256').update(JSON.stringify({ recipe: sp.recipe, version: sp.version, options, inputs, deps, sourceDateEpoch: sp.sourceDateEpoch })).digest('hex'));
  }
  relocatedMemo.set(project, out);
  return out;
}

/** The config files that gave the resolved values (the top file and everything it extends). */
/**
 * The config files the project was read from, with their digests: once per loaded project (the
 * evidence fingerprint and the manifest both need them; the files were read when it was loaded).
 */
export function configFiles(project: Project): Promise<Array<{ path: string; abs: string; sha256: string }>> {
  let r = CONFIG_FILES.get(project);
  if (!r) CONFIG_FILES.set(project, (r = hashConfigFiles(project)));
  return r;
}
const CONFIG_FILES = new WeakMap<Project, Promise<Array<{ path: string; abs: string; sha256: string }>>>();

async function hashConfigFiles(project: Project): Promise<Array<{ path: string; abs: string; sha256: string }>> {
  const cfg = project.config;
  const files = new Set<string>([cfg.file]);
  for (const s of cfg.sectionNames()) {
    const so = cfg.sectionOrigin(s);
    if (so?.file) files.add(so.file);
    for (const o of cfg.optionNames(s)) {
      const og = cfg.origin(s, o);
      if (og?.file) files.add(og.file);
    }
  }
  const out: Array<{ path: string; abs: string; sha256: string }> = [];
  for (const f of files) {
    if (!f.startsWith('/') || !existsSync(f) || !statSync(f).isFile()) continue;
    out.push({ path: projectPath(project, f), abs: f, sha256: await hashFile(f) });
  }
  return out.sort((a, b) => cmp(a.path, b.path));
}

export function projectPath(project: Project, abs: string): string {
  const r = relative(project.projectDir, abs);
  return r.startsWith('..') || r.startsWith(sep) ? abs : r.split(sep).join('/');
}

export interface ManifestResult {
  manifest: Manifest;
  /** scans of each part's output (parts with a current output only) */
  scans: Map<string, PartScan>;
  /** absolute directory of each part's output */
  dirs: Map<string, string>;
  configFiles: Array<{ path: string; abs: string; sha256: string }>;
}

/** Where a part's artifacts are, relative to out/ ('parts/NAME'; 'shared/NAME' for shared parts). */
export function partPrefix(project: Project, name: string): string {
  const part = project.parts.get(name)!;
  if (part.shared) return `shared/${name}`;
  const r = relative(project.outDir, part.location);
  return r.startsWith('..') ? `parts/${name}` : r.split(sep).join('/');
}

export async function buildManifest(project: Project, names: string[], run: RunRecord | undefined): Promise<ManifestResult> {
  const store = new Store(project);
  const sigs = relocatedSignatures(project);
  // loaded when the manifest is built (package inspection: zlib, dpkg-deb): not by a no-op build
  const { classify, ScanCache } = await import('./scan.js');
  const scanCache = new ScanCache(join(project.kilnDir, 'evidence', 'scans.json'));
  const scans = new Map<string, PartScan>();
  const dirs = new Map<string, string>();
  const parts: ManifestPart[] = [];
  const artifacts: ManifestArtifact[] = [];
  const edges: Array<[string, string]> = [];
  const sorted = [...names].sort(cmp);
  for (const name of sorted) {
    const part = project.parts.get(name)!;
    const ran = run?.parts[name]?.status;
    // a part the build just built, restored or found cached is linked to its current entry
    const upToDate = ran === 'built' || ran === 'restored' || ran === 'cached' || (ran === undefined && store.isLinked(part));
    const status: PartStatus = ran ?? (upToDate ? 'cached' : 'not-run');
    const deps = [...part.deps.keys()].sort(cmp);
    for (const d of deps) edges.push([name, d]);
    const prefix = partPrefix(project, name);
    let count = 0;
    if ((status === 'built' || status === 'restored' || status === 'cached') && upToDate) {
      const dir = store.storePath(part);
      const scan = await scanCache.scan(dir, part.recipe.kind, part.signature);
      scans.set(name, scan);
      dirs.set(name, dir);
      for (const f of scan.files) {
        artifacts.push({ path: `${prefix}/${f.path}`, part: name, kind: part.recipe.kind, type: f.type, mediaType: f.mediaType, sha256: f.sha256, size: f.size });
        count++;
      }
    }
    // JUnit reports of failed parts are only in out/test-results/PART/
    if (status === 'failed') {
      const tr = join(project.outDir, 'test-results', name);
      if (existsSync(tr)) {
        for (const f of readdirSync(tr).sort(cmp)) {
          if (!f.endsWith('.xml')) continue;
          const abs = join(tr, f);
          const { mediaType } = classify(part.recipe.kind, f);
          artifacts.push({ path: `test-results/${name}/${f}`, part: name, kind: part.recipe.kind, type: 'test-result', mediaType, sha256: await hashFile(abs), size: statSync(abs).size });
          count++;
        }
      }
    }
    parts.push({
      name,
      kind: part.recipe.kind,
      recipe: part.recipeSpec,
      signature: sigs.get(name)!,
      status,
      location: prefix,
      shared: part.shared,
      dependencies: deps,
      artifacts: count,
    });
  }
  scanCache.save();
  const cf = await configFiles(project);
  const manifest: Manifest = {
    manifestVersion: MANIFEST_VERSION,
    kiln: { version: kilnVersion() },
    sourceDateEpoch: project.sourceDateEpoch,
    config: { file: projectPath(project, project.config.file), files: cf.map(({ path, sha256 }) => ({ path, sha256 })) },
    parts,
    graph: { nodes: sorted, edges: edges.sort((a, b) => cmp(a[0], b[0]) || cmp(a[1], b[1])) },
    artifacts: artifacts.sort((a, b) => cmp(a.path, b.path)),
  };
  return { manifest, scans, dirs, configFiles: cf };
}
