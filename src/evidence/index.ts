/**
 * Release evidence written after every build (docs/evidence.md):
 *   out/manifest.json                  artifacts, part graph, signatures, statuses
 *   out/sbom/kiln.cdx.json, kiln.spdx.json           the whole build
 *   out/sbom/parts/PART.cdx.json, PART.spdx.json     parts that made packages or chroots
 *   out/provenance/PART.intoto.json    DSSE envelope of the part's SLSA provenance statement
 *   out/provenance/signing-key.asc     the public key the envelopes are signed with
 *   out/.kiln/evidence/last-run.json   timings and reasons of the last build (for the report)
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Project } from '../engine/project.js';
import { ConfigError, ExitCode, KilnError } from '../lib/errors.js';
import { writeFileAtomic } from '../lib/fsutil.js';
import { buildManifest, type ManifestResult } from './manifest.js';
import { buildInventory } from './model.js';
import { envelopes, statements, type Envelope, type SigningKeyRef } from './provenance.js';
import type { RunRecord } from './record.js';
import { cyclonedx } from './sbom-cyclonedx.js';
import { spdx } from './sbom-spdx.js';

export interface EvidenceOptions {
  /** OpenPGP secret key file for the provenance envelopes (overrides the config) */
  signingKey?: string;
}

export const json = (v: unknown) => JSON.stringify(v, null, 1) + '\n';

/** A part name as a file name: characters other than [A-Za-z0-9._+-] and a leading dot percent-encoded (no path escapes). */
export function fileName(part: string): string {
  return part.replace(/[^A-Za-z0-9._+-]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')).replace(/^\./, '%2E');
}

/**
 * The configured key file (--evidence-key, else [buildout] evidence-signing-key), checked before
 * anything is built: a missing file is a config error naming the option and where it was set.
 * A key file inside a part's output (e.g. ${archive-key:location}/secret.asc) may not exist yet.
 */
export function configuredKey(project: Project, opts: EvidenceOptions, beforeBuild = false): SigningKeyRef | 'none' | undefined {
  const cfg = project.config;
  const file = opts.signingKey ?? cfg.getOptional('buildout', 'evidence-signing-key')?.trim();
  if (!file) return undefined;
  if (file === 'none') return 'none';
  const abs = isAbsolute(file) ? file : resolve(opts.signingKey ? process.cwd() : project.projectDir, file);
  const inPart = [...project.parts.values()].some((p) => abs.startsWith(p.location + '/'));
  if (!existsSync(abs) && !(beforeBuild && inPart)) {
    if (opts.signingKey) throw new KilnError(`--evidence-key: file not found: ${abs}`, ExitCode.USAGE);
    throw new ConfigError(`file not found: ${abs}`, { origin: cfg.origin('buildout', 'evidence-signing-key'), section: 'buildout', option: 'evidence-signing-key' });
  }
  const pass = cfg.getOptional('buildout', 'evidence-signing-key-passphrase-file')?.trim();
  const passAbs = pass ? resolve(project.projectDir, pass) : undefined;
  if (passAbs && !existsSync(passAbs)) {
    throw new ConfigError(`file not found: ${passAbs}`, { origin: cfg.origin('buildout', 'evidence-signing-key-passphrase-file'), section: 'buildout', option: 'evidence-signing-key-passphrase-file' });
  }
  return { keyFile: abs, passphraseFile: passAbs };
}

/** Key for the envelopes: --evidence-key, [buildout] evidence-signing-key, else the (first) kiln:gpg-key part's key. */
export function signingKey(project: Project, mr: ManifestResult, opts: EvidenceOptions): SigningKeyRef | undefined {
  const k = configuredKey(project, opts);
  if (k === 'none') return undefined;
  if (k) return k;
  for (const p of mr.manifest.parts) {
    if (p.kind !== 'gpg-key' || !mr.dirs.has(p.name)) continue;
    const f = join(mr.dirs.get(p.name)!, 'secret.asc');
    if (existsSync(f)) return { keyFile: f };
  }
  return undefined;
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Remove files of `dir` ending in one of `suffixes` that are not in `keep`. */
function prune(dir: string, suffixes: string[], keep: Set<string>): void {
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) if (suffixes.some((s) => f.endsWith(s)) && !keep.has(f)) rmSync(join(dir, f), { force: true });
}

export async function writeEvidence(project: Project, names: string[], run: RunRecord | undefined, opts: EvidenceOptions = {}): Promise<ManifestResult> {
  const out = project.outDir;
  const mr = await buildManifest(project, names, run);
  writeFileAtomic(join(out, 'manifest.json'), json(mr.manifest));

  const inv = buildInventory(project, mr);
  writeFileAtomic(join(out, 'sbom', 'kiln.cdx.json'), json(cyclonedx(inv)));
  writeFileAtomic(join(out, 'sbom', 'kiln.spdx.json'), json(spdx(inv)));
  const keepSbom = new Set<string>();
  for (const p of mr.manifest.parts) {
    const scan = mr.scans.get(p.name);
    if (!scan || (!Object.keys(scan.packages).length && !Object.keys(scan.chroots).length)) continue;
    const pi = buildInventory(project, mr, new Set([p.name]));
    const f = fileName(p.name);
    writeFileAtomic(join(out, 'sbom', 'parts', `${f}.cdx.json`), json(cyclonedx(pi)));
    writeFileAtomic(join(out, 'sbom', 'parts', `${f}.spdx.json`), json(spdx(pi)));
    keepSbom.add(`${f}.cdx.json`).add(`${f}.spdx.json`);
  }
  prune(join(out, 'sbom', 'parts'), ['.cdx.json', '.spdx.json'], keepSbom);

  const provDir = join(out, 'provenance');
  const stmts = statements(project, mr, inv, project.config.getOptional('buildout', 'evidence-builder-id')?.trim() || undefined);
  const key = signingKey(project, mr, opts);
  const env = await envelopes(stmts, (part) => readJson<Envelope>(join(provDir, `${fileName(part)}.intoto.json`)), key, project.sourceDateEpoch);
  const keepProv = new Set<string>();
  for (const [part, e] of env.envelopes) {
    const f = `${fileName(part)}.intoto.json`;
    const text = JSON.stringify(e) + '\n';
    const path = join(provDir, f);
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) writeFileAtomic(path, text);
    keepProv.add(f);
  }
  prune(provDir, ['.intoto.json'], keepProv);
  if (env.publicKey) writeFileAtomic(join(provDir, 'signing-key.asc'), env.publicKey);
  else rmSync(join(provDir, 'signing-key.asc'), { force: true });

  if (run) writeFileAtomic(join(project.kilnDir, 'evidence', 'last-run.json'), json(run));
  return mr;
}

export function lastRun(project: Project): RunRecord | undefined {
  return readJson<RunRecord>(join(project.kilnDir, 'evidence', 'last-run.json'));
}
