/**
 * OpenPGP signing with GnuPG, in a private temporary GNUPGHOME holding only the user's key:
 * the user's own keyring is never touched. Signatures use SOURCE_DATE_EPOCH as their creation
 * time (--faked-system-time; or the key's creation time when that is later), so RSA and EdDSA
 * signatures over the same bytes with the same key are reproducible.
 */
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError } from './errors.js';
import { run, type RunOptions } from './exec.js';
import { requireTool } from './tools.js';

export interface SigningKey {
  /** armored or binary secret key file */
  keyFile: string;
  passphraseFile?: string;
}

export class Signer {
  private constructor(
    private home: string,
    readonly fingerprint: string,
    private passphraseFile: string | undefined,
    private runOpts: RunOptions,
    private time: number,
  ) {}

  static async open(key: SigningKey, sourceDateEpoch: number, runOpts: RunOptions = {}): Promise<Signer> {
    const home = mkdtempSync(join(tmpdir(), 'kiln-gnupg-'));
    const base = ['gpg', '--homedir', home, '--batch', '--no-tty', '--quiet'];
    try {
      const passArgs = key.passphraseFile ? ['--pinentry-mode', 'loopback', '--passphrase-file', key.passphraseFile] : [];
      await run([...base, ...passArgs, '--import', key.keyFile], runOpts);
      const list = await run([...base, '--with-colons', '--list-secret-keys'], runOpts);
      const lines = list.stdout.split('\n');
      const fpr = lines.find((l) => l.startsWith('fpr:'))?.split(':')[9];
      if (!fpr) throw new KilnError(`no secret key found in ${key.keyFile}`);
      // a key cannot sign before it was created: sign at max(SOURCE_DATE_EPOCH, key creation)
      const created = Math.max(0, ...lines.filter((l) => l.startsWith('sec:') || l.startsWith('ssb:')).map((l) => Number(l.split(':')[5]) || 0));
      return new Signer(home, fpr, key.passphraseFile, runOpts, Math.max(sourceDateEpoch, created));
    } catch (e) {
      await rm(home, { recursive: true, force: true });
      throw e;
    }
  }

  private args(digest = 'SHA512'): string[] {
    return [
      'gpg', '--homedir', this.home, '--batch', '--no-tty', '--quiet', '--yes',
      '--faked-system-time', `${this.time}!`, '--digest-algo', digest, '--local-user', this.fingerprint,
      ...(this.passphraseFile ? ['--pinentry-mode', 'loopback', '--passphrase-file', this.passphraseFile] : []),
    ];
  }

  /** Write an inline-signed (cleartext) copy of `file` to `out` (InRelease). */
  async clearsign(file: string, out: string): Promise<void> {
    await run([...this.args(), '--clearsign', '--output', out, file], this.runOpts);
  }

  /** Write a detached signature of `file` to `out` (armored unless binary). */
  async detachSign(file: string, out: string, armor = true, digest = 'SHA512'): Promise<void> {
    await this.detachSignParts([file], out, armor, digest);
  }

  /**
   * A detached signature over the concatenation of `parts` (files, byte ranges of files and
   * literal buffers), streamed
   * through gpg's stdin: no concatenated copy on disk, memory stays flat (debsigs' _gpgorigin).
   */
  async detachSignParts(parts: Array<string | Buffer | { file: string; start: number; length: number }>, out: string, armor = false, digest = 'SHA512'): Promise<void> {
    const argv = [...this.args(digest), ...(armor ? ['--armor'] : []), '--detach-sign', '--output', out];
    requireTool('gpg');
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'], signal: this.runOpts.signal });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const done = new Promise<number | null>((res, rej) => {
      child.on('error', rej);
      child.on('close', (code) => res(code));
    });
    async function* source() {
      for (const p of parts) {
        if (Buffer.isBuffer(p)) yield p;
        else if (typeof p === 'string') for await (const c of createReadStream(p, { highWaterMark: 1 << 20 })) yield c as Buffer;
        else if (p.length > 0) for await (const c of createReadStream(p.file, { start: p.start, end: p.start + p.length - 1, highWaterMark: 1 << 20 })) yield c as Buffer;
      }
    }
    const fed = pipeline(Readable.from(source()), child.stdin!).catch((e: Error) => e);
    const [code, feedErr] = await Promise.all([done, fed]);
    if (code !== 0) throw new KilnError(`gpg --detach-sign failed (exit ${code}): ${stderr.trim().split('\n').slice(-5).join('\n')}`);
    if (feedErr) throw new KilnError(`gpg --detach-sign: ${feedErr.message}`);
  }

  /** The public key, armored. */
  async exportPublic(armor = true): Promise<Buffer> {
    const r = await run(['gpg', '--homedir', this.home, '--batch', ...(armor ? ['--armor'] : []), '--export-options', 'export-minimal', '--export', this.fingerprint], {
      ...this.runOpts,
      capture: true,
    });
    if (armor) return Buffer.from(r.stdout);
    // binary: re-export to a file to keep bytes intact
    const out = join(this.home, 'pub.gpg');
    await run(['gpg', '--homedir', this.home, '--batch', '--yes', '--export-options', 'export-minimal', '--output', out, '--export', this.fingerprint], this.runOpts);
    return readFileSync(out);
  }

  get homedir(): string {
    return this.home;
  }

  async close(): Promise<void> {
    await run(['gpgconf', '--homedir', this.home, '--kill', 'all'], { ...this.runOpts, allowFailure: true }).catch(() => undefined);
    await rm(this.home, { recursive: true, force: true });
  }
}

/** Make a new signing key (for tests and examples): returns the armored secret key file path. */
export async function generateTestKey(dir: string, name = 'kiln test archive key <kiln@example.invalid>'): Promise<string> {
  const home = mkdtempSync(join(tmpdir(), 'kiln-gnupg-gen-'));
  try {
    await run(['gpg', '--homedir', home, '--batch', '--passphrase', '', '--quick-gen-key', name, 'rsa3072', 'sign', 'never']);
    const out = join(dir, 'signing-key.asc');
    await run(['gpg', '--homedir', home, '--batch', '--armor', '--output', out, '--export-secret-keys']);
    return out;
  } finally {
    await run(['gpgconf', '--homedir', home, '--kill', 'all'], { allowFailure: true }).catch(() => undefined);
    await rm(home, { recursive: true, force: true });
  }
}
