/**
 * OpenPGP signing with GnuPG, in a private temporary GNUPGHOME holding only the user's key:
 * the user's own keyring is never touched. Temporary homes live under the project's
 * out/.kiln/tmp/ (setGnupgRoot; $TMPDIR for library use, or with a marker symlink in the root when
 * the root's path is too long for gpg-agent's sockets), mode 0700, named
 * `gpg-PID-XXXXXX`; their gpg-agent is stopped and the home removed when done, by the watchdog
 * (src/lib/exec.ts) when kiln is killed, and by reapGnupgHomes() at the next start otherwise. Signatures use SOURCE_DATE_EPOCH as their creation
 * time (--faked-system-time; or the key's creation time when that is later), so RSA and EdDSA
 * signatures over the same bytes with the same key are reproducible.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError } from './errors.js';
import { guardDirectory, run, spawnGuarded, type RunOptions } from './exec.js';
import { processAlive } from './fsutil.js';
import { requireTool } from './tools.js';

let gnupgRoot: string | undefined;

/** Where temporary GnuPG homes go from now on (the project's out/.kiln/tmp). */
export function setGnupgRoot(dir: string | undefined): void {
  gnupgRoot = dir;
}

const HOME_RE = /^(?:kiln-)?gpg-(\d+)-[A-Za-z0-9]{6}$/;
// gpg-agent's sockets live in the home: S.gpg-agent.browser must fit a socket path (108 bytes)
const MAX_ROOT = 108 - '/gpg-4194304-XXXXXX/S.gpg-agent.browser'.length - 1;

/** Markers of homes that went to $TMPDIR instead of the GnuPG root: `tmpdir-` + the home's name, a symlink to it. */
const MARKER_PREFIX = 'tmpdir-';
const markers = new Map<string, string>();

/**
 * A new private GnuPG home (mode 0700) under the GnuPG root (or `fallback`, or $TMPDIR when the
 * root's path is too long for gpg-agent's sockets). kiln's watchdog removes it if kiln dies. A
 * home that goes to $TMPDIR although a GnuPG root is set leaves a marker in the root (a symlink
 * to it), so reapGnupgHomes() finds it without listing $TMPDIR.
 */
export function makeGnupgHome(fallback?: string): string {
  const wanted = gnupgRoot ?? fallback ?? tmpdir();
  const root = wanted.length > MAX_ROOT ? tmpdir() : wanted;
  mkdirSync(root, { recursive: true });
  const home = mkdtempSync(join(root, root === tmpdir() ? `kiln-gpg-${process.pid}-` : `gpg-${process.pid}-`));
  chmodSync(home, 0o700);
  guardDirectory(home);
  if (root !== wanted && gnupgRoot && wanted === gnupgRoot) {
    const marker = join(gnupgRoot, MARKER_PREFIX + basename(home));
    try {
      mkdirSync(gnupgRoot, { recursive: true });
      symlinkSync(home, marker);
      markers.set(home, marker);
    } catch {
      /* the watchdog still removes the home if kiln dies */
    }
  }
  return home;
}

/** Stop the agent of a temporary GnuPG home and remove it. */
export async function removeGnupgHome(home: string, runOpts: RunOptions = {}): Promise<void> {
  await run(['gpgconf', '--homedir', home, '--kill', 'all'], { ...runOpts, allowFailure: true }).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
  const marker = markers.get(home);
  if (marker) {
    markers.delete(home);
    await rm(marker, { force: true });
  }
}

/**
 * Leftovers of killed kiln runs (homes whose kiln process is gone): stop their agents and remove
 * them. Homes of live processes are left alone. Returns the removed paths.
 *
 * With a root (the project's out/.kiln/tmp: the CLI), the root's homes and the $TMPDIR homes its
 * markers point at; $TMPDIR itself is not listed (it may hold thousands of names, and a no-op
 * build must not pay for them). Without a root (library use), the `kiln-gpg-*` homes of $TMPDIR.
 */
export function reapGnupgHomes(root: string | undefined = gnupgRoot): string[] {
  const removed: string[] = [];
  const reap = (home: string, pid: number): boolean => {
    if (pid === process.pid || processAlive(pid)) return false;
    if (existsSync(home)) {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'all'], { stdio: 'ignore', timeout: 20_000 });
      rmSync(home, { recursive: true, force: true });
      removed.push(home);
    }
    return true;
  };
  const dir = root ?? tmpdir();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (root && n.startsWith(MARKER_PREFIX)) {
      // a marker: its home is in $TMPDIR, named kiln-gpg-PID-XXXXXX (anything else is not ours)
      const marker = join(dir, n);
      let target: string;
      try {
        target = readlinkSync(marker);
      } catch {
        continue;
      }
      const m = HOME_RE.exec(basename(target));
      if (!m || !basename(target).startsWith('kiln-') || MARKER_PREFIX + basename(target) !== n) continue;
      if (reap(target, Number(m[1]))) rmSync(marker, { force: true });
      continue;
    }
    const m = HOME_RE.exec(n);
    if (!m || (!root && !n.startsWith('kiln-')) || (root && n.startsWith('kiln-'))) continue;
    reap(join(dir, n), Number(m[1]));
  }
  return removed;
}

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
    const home = makeGnupgHome();
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
      await removeGnupgHome(home, runOpts);
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
    const child = spawnGuarded(argv[0]!, argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'], signal: this.runOpts.signal });
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
    await removeGnupgHome(this.home, this.runOpts);
  }
}

/** Make a new signing key (for tests and examples): returns the armored secret key file path. */
export async function generateTestKey(dir: string, name = 'kiln test archive key <kiln@example.invalid>'): Promise<string> {
  const home = makeGnupgHome();
  try {
    await run(['gpg', '--homedir', home, '--batch', '--passphrase', '', '--quick-gen-key', name, 'rsa3072', 'sign', 'never']);
    const out = join(dir, 'signing-key.asc');
    await run(['gpg', '--homedir', home, '--batch', '--armor', '--output', out, '--export-secret-keys']);
    return out;
  } finally {
    await removeGnupgHome(home);
  }
}
