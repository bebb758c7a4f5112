/**
 * Signed action results. CI signs each action result's payload with its OpenPGP key (GnuPG,
 * detached, armored); a reader with `remote-cache-trust = FINGERPRINT...` uses a result only
 * when gpgv finds a good signature by one of those keys (primary or subkey fingerprint, or the
 * 16-hex-digit long key id), using the public keys of `remote-cache-trusted-keys`.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../lib/exec.js';
import { Signer } from '../lib/gpg.js';

/** Normalized trust entries: upper-case hex fingerprints (40/64) or long key ids (16). */
export function parseTrust(value: string): { ids: string[]; bad: string[] } {
  const ids: string[] = [];
  const bad: string[] = [];
  for (const raw of value.split(/[\s,]+/).filter(Boolean)) {
    const t = raw.replace(/^0x/i, '').toUpperCase();
    if (/^([0-9A-F]{16}|[0-9A-F]{40}|[0-9A-F]{64})$/.test(t)) ids.push(t);
    else bad.push(raw);
  }
  return { ids, bad };
}

export class ResultSigner {
  private signer: Promise<Signer> | undefined;
  private dir = mkdtempSync(join(tmpdir(), 'kiln-ac-sign-'));
  private n = 0;
  constructor(
    private keyFile: string,
    private sourceDateEpoch: number,
    private passphraseFile?: string,
  ) {}

  async sign(payload: string): Promise<string> {
    this.signer ??= Signer.open({ keyFile: this.keyFile, passphraseFile: this.passphraseFile }, this.sourceDateEpoch);
    const s = await this.signer;
    const out = join(this.dir, `sig-${this.n++}.asc`);
    await s.detachSignParts([Buffer.from(payload, 'utf8')], out, true);
    return readFileSync(out, 'utf8');
  }

  async close(): Promise<void> {
    if (this.signer) await (await this.signer).close().catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

export class ResultVerifier {
  private keyring: Promise<string> | undefined;
  private dir = mkdtempSync(join(tmpdir(), 'kiln-ac-verify-'));
  private n = 0;
  constructor(
    private trusted: string[],
    private keyFiles: string[],
  ) {}

  private async makeKeyring(): Promise<string> {
    const home = join(this.dir, 'gnupg');
    mkdirSync(home, { mode: 0o700 });
    for (const f of this.keyFiles) await run(['gpg', '--homedir', home, '--batch', '--quiet', '--import', f]);
    const ring = join(this.dir, 'trusted.gpg');
    await run(['gpg', '--homedir', home, '--batch', '--yes', '--output', ring, '--export']);
    await run(['gpgconf', '--homedir', home, '--kill', 'all'], { allowFailure: true }).catch(() => undefined);
    return ring;
  }

  /** The fingerprint that signed `payload`, when it is trusted; otherwise why not. */
  async verify(payload: string, signature: string | null): Promise<{ ok: true; by: string } | { ok: false; why: string }> {
    if (!signature) return { ok: false, why: 'it is not signed' };
    this.keyring ??= this.makeKeyring();
    const ring = await this.keyring;
    const i = this.n++;
    const data = join(this.dir, `data-${i}`);
    const sig = join(this.dir, `data-${i}.asc`);
    writeFileSync(data, payload);
    writeFileSync(sig, signature);
    try {
      const r = await run(['gpgv', '--keyring', ring, '--status-fd', '1', sig, data], { allowFailure: true, capture: true });
      const valid = r.stdout.split('\n').filter((l) => l.startsWith('[GNUPG:] VALIDSIG '));
      for (const l of valid) {
        const f = l.split(' ');
        const fprs = [f[2], f[11]].filter((x): x is string => !!x).map((x) => x.toUpperCase());
        const hit = fprs.find((fp) => this.trusted.some((t) => fp === t || (t.length === 16 && fp.endsWith(t))));
        if (r.code === 0 && hit) return { ok: true, by: hit };
      }
      if (valid.length) return { ok: false, why: `signed by ${valid[0]!.split(' ')[2]}, which remote-cache-trust does not list` };
      return { ok: false, why: 'its signature is not a good signature by a trusted key' };
    } finally {
      await rm(data, { force: true });
      await rm(sig, { force: true });
    }
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
