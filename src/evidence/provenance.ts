/**
 * SLSA v1 provenance for every part with artifacts: an in-toto Statement v1 whose subjects are
 * the part's artifact files, wrapped in a DSSE envelope (out/provenance/PART.intoto.json). The
 * envelope is signed with an OpenPGP key (the signature is a binary detached signature over the
 * DSSE pre-authentication encoding, made by gpg at SOURCE_DATE_EPOCH, so RSA/EdDSA signatures are
 * reproducible); without a key the envelope has no signatures. An unchanged statement keeps its
 * existing signature: a no-op build runs no gpg.
 *
 *   PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Project } from '../engine/project.js';
import { Signer } from '../lib/gpg.js';
import { relocatedSignatures, relocator, type ManifestResult } from './manifest.js';
import type { Inventory } from './model.js';

export const PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const BUILD_TYPE = 'https://kiln.invalid/slsa/build-types/part/v1';
export const DEFAULT_BUILDER_ID = 'https://kiln.invalid/builders/local';

export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: Array<{ keyid: string; sig: string }>;
}

export function pae(type: string, body: Buffer): Buffer {
  const t = Buffer.from(type, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${body.length} `), body]);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function statements(project: Project, mr: ManifestResult, inv: Inventory, builderId = DEFAULT_BUILDER_ID): Map<string, Record<string, unknown>> {
  const rel = relocator(project);
  const sigs = relocatedSignatures(project);
  const out = new Map<string, Record<string, unknown>>();
  const m = mr.manifest;
  const cfgDigest = mr.configFiles.find((f) => f.path === m.config.file)?.sha256;
  for (const p of m.parts) {
    const subjects = m.artifacts.filter((a) => a.part === p.name && !a.path.startsWith('test-results/'));
    if (!subjects.length || !mr.scans.has(p.name)) continue;
    const part = project.parts.get(p.name)!;
    const options: Record<string, string> = {};
    for (const [k, v] of Object.entries(part.options.all()).sort((a, b) => cmp(a[0], b[0]))) options[k] = rel(v);
    // downloads and chroot images this part was made from (through its dependencies)
    const closure = new Set<string>();
    const visit = (n: string) => {
      for (const d of project.parts.get(n)!.deps.keys()) if (!closure.has(d)) closure.add(d), visit(d);
    };
    if (inv.sources.length || inv.chroots.length) visit(p.name);
    const resolved: Array<Record<string, unknown>> = [];
    for (const s of inv.sources) if (closure.has(s.part)) resolved.push({ name: `source:${s.part}`, uri: s.url, ...(s.sha256 ? { digest: { sha256: s.sha256 } } : {}) });
    for (const c of inv.chroots) if (closure.has(c.part)) resolved.push({ name: `chroot:${c.part}`, uri: c.artifact, digest: { sha256: c.sha256 } });
    resolved.sort((a, b) => cmp(a.name as string, b.name as string));
    out.set(p.name, {
      _type: 'https://in-toto.io/Statement/v1',
      subject: subjects.map((a) => ({ name: a.path, digest: { sha256: a.sha256 } })),
      predicateType: 'https://slsa.dev/provenance/v1',
      predicate: {
        buildDefinition: {
          buildType: BUILD_TYPE,
          externalParameters: {
            config: { path: m.config.file, ...(cfgDigest ? { digest: { sha256: cfgDigest } } : {}) },
            configFiles: mr.configFiles.map((f) => ({ path: f.path, digest: { sha256: f.sha256 } })),
            part: p.name,
            recipe: part.recipeSpec,
            options,
          },
          internalParameters: {
            recipeKind: part.recipe.kind,
            recipeVersion: part.recipe.version,
            sourceDateEpoch: m.sourceDateEpoch,
            signature: sigs.get(p.name),
            dependencies: p.dependencies.map((d) => ({ part: d, signature: sigs.get(d) })),
          },
          resolvedDependencies: resolved,
        },
        runDetails: {
          builder: { id: builderId, version: { kiln: m.kiln.version } },
          metadata: { invocationId: `${p.name}@${sigs.get(p.name)}` },
          byproducts: [{ name: 'log', uri: `logs/${p.name}.log`, mediaType: 'text/plain' }],
        },
      },
    });
  }
  return out;
}

export interface SigningKeyRef {
  keyFile: string;
  passphraseFile?: string;
}

/** Wrap statements in DSSE envelopes; reuse an existing envelope whose payload and key are unchanged. */
export async function envelopes(
  stmts: Map<string, Record<string, unknown>>,
  existing: (part: string) => Envelope | undefined,
  key: SigningKeyRef | undefined,
  sourceDateEpoch: number,
): Promise<{ envelopes: Map<string, Envelope>; keyid?: string; publicKey?: Buffer }> {
  const result = new Map<string, Envelope>();
  let signer: Signer | undefined;
  let work: string | undefined;
  let keyid: string | undefined;
  let publicKey: Buffer | undefined;
  try {
    if (key) {
      signer = await Signer.open({ keyFile: key.keyFile, passphraseFile: key.passphraseFile }, sourceDateEpoch);
      keyid = signer.fingerprint;
      publicKey = await signer.exportPublic(true);
      work = mkdtempSync(join(tmpdir(), 'kiln-dsse-'));
    }
    let n = 0;
    for (const [part, st] of stmts) {
      const body = Buffer.from(JSON.stringify(st));
      const payload = body.toString('base64');
      const env: Envelope = { payloadType: PAYLOAD_TYPE, payload, signatures: [] };
      if (signer && keyid) {
        const prev = existing(part);
        if (prev && prev.payload === payload && prev.signatures.length === 1 && prev.signatures[0]!.keyid === keyid) env.signatures = prev.signatures;
        else {
          const sigFile = join(work!, `sig-${n++}`);
          await signer.detachSignParts([pae(PAYLOAD_TYPE, body)], sigFile, false, 'SHA512');
          env.signatures = [{ keyid, sig: readFileSync(sigFile).toString('base64') }];
        }
      }
      result.set(part, env);
    }
  } finally {
    if (signer) await signer.close();
    if (work) await rm(work, { recursive: true, force: true });
  }
  return { envelopes: result, keyid, publicKey };
}
