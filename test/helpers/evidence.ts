// Shared by the evidence tests: schema validators and an independent DSSE provenance verifier.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const root = join(import.meta.dirname, '..', '..');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const readJson = (f: string) => JSON.parse(readFileSync(f, 'utf8'));

export function ajv() {
  const a = new Ajv({ strict: false, allErrors: true });
  addFormats(a);
  return a;
}

/** The CycloneDX 1.6 JSON schema shipped with @cyclonedx/cyclonedx-library (+ its spdx and jsf sub-schemas). */
export function cyclonedxValidator() {
  const dir = join(root, 'node_modules', '@cyclonedx', 'cyclonedx-library', 'res', 'schema');
  const a = ajv();
  a.addFormat('idn-email', true);
  a.addFormat('iri-reference', true);
  for (const s of ['spdx.SNAPSHOT.schema.json', 'jsf-0.82.SNAPSHOT.schema.json']) a.addSchema(readJson(join(dir, s)), `http://cyclonedx.org/schema/${s}`);
  return a.compile(readJson(join(dir, 'bom-1.6.SNAPSHOT.schema.json')));
}

function gpgVerifyDetached(pubArmored: string, data: Buffer, sig: Buffer): boolean {
  const d = mkdtempSync(join(tmpdir(), 'kiln-ev-verify-'));
  writeFileSync(join(d, 'key.asc'), pubArmored);
  execFileSync('gpg', ['--batch', '--yes', '--dearmor', '--output', join(d, 'key.gpg'), join(d, 'key.asc')]);
  writeFileSync(join(d, 'data'), data);
  writeFileSync(join(d, 'data.sig'), sig);
  const r = spawnSync('gpgv', ['--keyring', join(d, 'key.gpg'), join(d, 'data.sig'), join(d, 'data')], { encoding: 'utf8' });
  return r.status === 0;
}

/**
 * An independent DSSE verifier (https://github.com/secure-systems-lab/dsse, protocol.md):
 * PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, the OpenPGP signature
 * checked by gpgv over those bytes; then every subject's sha256 against the file under out/.
 */
export function verifyProvenance(out: string, part: string, pub: string): { ok: boolean; why: string } {
  const env = readJson(join(out, 'provenance', `${part}.intoto.json`));
  if (env.payloadType !== 'application/vnd.in-toto+json') return { ok: false, why: 'payload type' };
  const body = Buffer.from(env.payload, 'base64');
  const type = Buffer.from(env.payloadType);
  const paeBytes = Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${body.length} `), body]);
  if (!env.signatures.length) return { ok: false, why: 'unsigned' };
  if (!env.signatures.some((s: { sig: string }) => gpgVerifyDetached(pub, paeBytes, Buffer.from(s.sig, 'base64')))) return { ok: false, why: 'bad signature' };
  const st = JSON.parse(body.toString('utf8'));
  if (st._type !== 'https://in-toto.io/Statement/v1' || st.predicateType !== 'https://slsa.dev/provenance/v1') return { ok: false, why: 'not a SLSA v1 statement' };
  for (const s of st.subject) {
    const f = join(out, s.name);
    if (!existsSync(f) || sha256(readFileSync(f)) !== s.digest.sha256) return { ok: false, why: `subject ${s.name} does not match` };
  }
  return { ok: true, why: '' };
}

