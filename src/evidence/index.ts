/**
 * Release evidence written after every build (docs/evidence.md):
 *   out/manifest.json                  artifacts, part graph, signatures, statuses
 *   out/sbom/kiln.cdx.json, kiln.spdx.json           the whole build
 *   out/sbom/parts/PART.cdx.json, PART.spdx.json     parts that made packages or chroots
 *   out/provenance/PART.intoto.json    DSSE envelope of the part's SLSA provenance statement
 *   out/provenance/signing-key.asc     the public key the envelopes are signed with
 *   out/.kiln/evidence/last-run.json   timings and reasons of the last build (for the report)
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Project } from '../engine/project.js';
import { ConfigError, ExitCode, KilnError } from '../lib/errors.js';
import { writeFileAtomic } from '../lib/fsutil.js';
import { buildManifest, configFiles, kilnVersion, type ManifestResult } from './manifest.js';
import type { Envelope, SigningKeyRef } from './provenance.js';
import type { RunRecord } from './record.js';

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

/**
 * writeFileAtomic unless the file already holds exactly `text`: a no-op build rewrites no evidence
 * file it would leave unchanged. Without an fsync per file (a 500-part build writes three files a
 * part: one fsync each was a third of the build's main-thread file-system time): evidence is
 * derived data, readers never see a partial file (temporary name + rename), and a file a power
 * failure truncates or loses no longer has the size the stamp records, so the next build
 * regenerates it (writeEvidenceIfChanged).
 */
function writeIfChanged(path: string, text: string): void {
  let old: string | undefined;
  try {
    old = readFileSync(path, 'utf8');
  } catch {
    /* missing */
  }
  if (old !== text) writeFileAtomic(path, text, { durable: false });
}

/** Remove files of `dir` ending in one of `suffixes` that are not in `keep`. */
function prune(dir: string, suffixes: string[], keep: Set<string>): void {
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) if (suffixes.some((s) => f.endsWith(s)) && !keep.has(f)) rmSync(join(dir, f), { force: true });
}

/** The evidence files under out/ (relative paths), sorted. */
function evidenceFiles(out: string): string[] {
  const files = existsSync(join(out, 'manifest.json')) ? ['manifest.json'] : [];
  for (const d of ['sbom', 'sbom/parts', 'provenance']) {
    if (!existsSync(join(out, d))) continue;
    for (const f of readdirSync(join(out, d), { withFileTypes: true })) if (f.isFile()) files.push(`${d}/${f.name}`);
  }
  return files.sort();
}

/** size and mtime of each evidence file: an edited, added or removed file changes it */
function fileStamps(out: string): Record<string, [number, number]> {
  const r: Record<string, [number, number]> = {};
  for (const f of evidenceFiles(out)) {
    const st = statSync(join(out, f));
    r[f] = [st.size, st.mtimeMs];
  }
  return r;
}

interface EvidenceStamp {
  fingerprint: string;
  files: Record<string, [number, number]>;
}

/**
 * Everything the evidence is computed from: kiln's version, SOURCE_DATE_EPOCH, the config files'
 * digests, each part's signature (the store entry is verified by plan's checks before a part counts
 * as cached), status, kind and place, the signing key's bytes and the builder id. Undefined when a
 * part failed (its test results are read from out/test-results/, outside the store).
 */
async function fingerprint(project: Project, names: string[], run: RunRecord, opts: EvidenceOptions): Promise<string | undefined> {
  const h = createHash('sha256');
  const cfg = project.config;
  h.update(JSON.stringify([kilnVersion(), project.sourceDateEpoch, project.outDir, project.projectDir, cfg.getOptional('buildout', 'evidence-builder-id') ?? '']));
  for (const f of await configFiles(project)) h.update(`\0${f.abs}\0${f.sha256}`);
  for (const name of [...names].sort()) {
    const part = project.parts.get(name)!;
    const status = run.parts[name]?.status;
    if (status !== 'built' && status !== 'restored' && status !== 'cached') return undefined;
    h.update(JSON.stringify([name, part.signature, status, part.recipe.kind, part.recipeSpec, part.location, part.shared, [...part.deps.keys()].sort()]));
  }
  const key = configuredKey(project, opts);
  if (key && key !== 'none') {
    h.update(`\0key\0${key.keyFile}\0${createHash('sha256').update(readFileSync(key.keyFile)).digest('hex')}\0${key.passphraseFile ?? ''}`);
    if (key.passphraseFile) h.update(readFileSync(key.passphraseFile));
  } else h.update(`\0key\0${key ?? ''}`);
  return h.digest('hex');
}

/**
 * Write the evidence unless it is already current: when the fingerprint of its inputs equals the
 * one recorded after the last write and every evidence file is still there with the size and mtime
 * it had then, nothing is recomputed (the no-op build of a large graph stays fast). Only the run
 * record is written. Returns whether the evidence was (re)written.
 */
export async function writeEvidenceIfChanged(project: Project, names: string[], run: RunRecord, opts: EvidenceOptions = {}): Promise<boolean> {
  const stampFile = join(project.kilnDir, 'evidence', 'stamp.json');
  const fp = await fingerprint(project, names, run, opts);
  const old = readJson<EvidenceStamp>(stampFile);
  if (fp && old?.fingerprint === fp && JSON.stringify(old.files) === JSON.stringify(fileStamps(project.outDir))) {
    writeFileAtomic(join(project.kilnDir, 'evidence', 'last-run.json'), json(run), { durable: false });
    return false;
  }
  rmSync(stampFile, { force: true });
  await writeEvidence(project, names, run, opts);
  if (fp) writeFileAtomic(stampFile, json({ fingerprint: fp, files: fileStamps(project.outDir) } satisfies EvidenceStamp));
  return true;
}

export async function writeEvidence(project: Project, names: string[], run: RunRecord | undefined, opts: EvidenceOptions = {}): Promise<ManifestResult> {
  const out = project.outDir;
  // loaded only when the evidence is (re)written: a no-op build does not pay for them
  const [{ buildInventory }, { envelopes, statements }, { cyclonedx }, { spdx }] = await Promise.all([
    import('./model.js'),
    import('./provenance.js'),
    import('./sbom-cyclonedx.js'),
    import('./sbom-spdx.js'),
  ]);
  const mr = await buildManifest(project, names, run);
  writeIfChanged(join(out, 'manifest.json'), json(mr.manifest));

  const inv = buildInventory(project, mr);
  writeIfChanged(join(out, 'sbom', 'kiln.cdx.json'), json(cyclonedx(inv)));
  writeIfChanged(join(out, 'sbom', 'kiln.spdx.json'), json(spdx(inv)));
  const keepSbom = new Set<string>();
  for (const p of mr.manifest.parts) {
    const scan = mr.scans.get(p.name);
    if (!scan || (!Object.keys(scan.packages).length && !Object.keys(scan.chroots).length)) continue;
    const pi = buildInventory(project, mr, new Set([p.name]));
    const f = fileName(p.name);
    writeIfChanged(join(out, 'sbom', 'parts', `${f}.cdx.json`), json(cyclonedx(pi)));
    writeIfChanged(join(out, 'sbom', 'parts', `${f}.spdx.json`), json(spdx(pi)));
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
    writeIfChanged(path, text);
    keepProv.add(f);
  }
  prune(provDir, ['.intoto.json'], keepProv);
  if (env.publicKey) writeFileAtomic(join(provDir, 'signing-key.asc'), env.publicKey);
  else rmSync(join(provDir, 'signing-key.asc'), { force: true });

  if (run) writeFileAtomic(join(project.kilnDir, 'evidence', 'last-run.json'), json(run), { durable: false });
  return mr;
}

export function lastRun(project: Project): RunRecord | undefined {
  return readJson<RunRecord>(join(project.kilnDir, 'evidence', 'last-run.json'));
}
