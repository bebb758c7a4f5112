/**
 * The remote cache in a build: after the local store and shared parts, before building.
 *
 *   annotate()  before the build (and in `kiln plan`): a HEAD ac/<key> for each part to build,
 *               concurrent, with a short timeout; hits become `restore (remote)`
 *   restore()   GET the action result, check its signature (remote-cache-trust) and shape,
 *               download its blobs (verified) into a staging dir, commit it like a build
 *   upload()    after a local build (readwrite): list the output tree, pack small files, PUT the
 *               blobs the server lacks (HEAD first), then the action result last
 *
 * Any failure of the service (network, timeout, 5xx, refused credentials) turns the remote cache
 * off for the rest of the build with one warning: the build goes on locally. A result that is
 * unsigned, signed by an untrusted key, malformed, or whose bytes do not match their digests is
 * not used: the part is built locally (and, in readwrite mode, the bad blobs are uploaded again).
 */
import { closeSync, copyFileSync, existsSync, chmodSync, fchmodSync, mkdirSync, mkdtempSync, openSync, readSync, readFileSync, renameSync, symlinkSync, writeFileSync, writeSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { isAbsolute, join, resolve } from 'node:path';
import type { PlanEntry } from '../engine/plan-entry.js';
import type { Part, Project } from '../engine/project.js';
import type { Store } from '../engine/store.js';
import { ConfigError, type Origin } from '../lib/errors.js';
import { rmrf } from '../lib/fsutil.js';
import { actionKeys, ENVELOPE_FORMAT, RESULT_FORMAT, validateResult, type ActionResult, type Digest, type Envelope, type ResultEntry } from './action.js';
import { CacheUnavailable, DigestMismatch, HttpCache } from './http.js';
import { parseTrust, ResultSigner, ResultVerifier } from './trust.js';
import { manifestTree, sameTree, UnsupportedEntry } from './tree.js';
import { MANIFEST, describe, readManifest } from '../lib/manifest.js';

/** Files up to this size travel in packs (one blob per PACK_MAX bytes of small files). */
export const PACK_THRESHOLD = 64 * 1024;
export const PACK_MAX = 64 * 1024 * 1024;

export interface RemoteSettings {
  url: string;
  mode: 'read' | 'readwrite';
  /** trusted signer fingerprints / long key ids; empty: results need no signature */
  trust: string[];
  trustedKeys: string[];
  signKey?: string;
  signPassphraseFile?: string;
  caFile?: string;
  timeoutMs: number;
  headTimeoutMs: number;
  /** files up to this many bytes travel in packs (0: every file is its own blob) */
  packThreshold: number;
}

export interface RemoteCliOptions {
  url?: string;
  mode?: string;
  signKey?: string;
}

/** Remote-cache settings from the command line over [buildout]; undefined when none is set. */
export function remoteSettings(project: Project, cli: RemoteCliOptions): RemoteSettings | undefined {
  const cfg = project.config;
  const opt = (name: string) => {
    const v = cfg.getOptional('buildout', name)?.trim();
    return v ? v : undefined;
  };
  const where = (option: string): { origin?: Origin; section: string; option: string } => ({ origin: cfg.origin('buildout', option), section: 'buildout', option });
  const url = cli.url ?? opt('remote-cache');
  if (!url) return undefined;
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    throw new ConfigError(`remote-cache must be an http:// or https:// URL, got '${url.replace(/\/\/[^@/]*@/, '//***@')}'`, cli.url ? undefined : where('remote-cache'));
  }
  const mode = cli.mode ?? opt('remote-cache-mode') ?? 'read';
  if (mode !== 'read' && mode !== 'readwrite') {
    throw new ConfigError(`remote-cache-mode must be 'read' or 'readwrite', got '${mode}'`, cli.mode ? undefined : where('remote-cache-mode'));
  }
  const file = (v: string | undefined) => (v === undefined ? undefined : isAbsolute(v) ? v : resolve(project.projectDir, v));
  const { ids, bad } = parseTrust(opt('remote-cache-trust') ?? '');
  if (bad.length) {
    throw new ConfigError(
      `remote-cache-trust takes OpenPGP fingerprints (40 hex digits) or long key ids (16), got '${bad[0]}'`,
      where('remote-cache-trust'),
    );
  }
  const trustedKeys = (opt('remote-cache-trusted-keys') ?? '').split(/\s+/).filter(Boolean).map((f) => file(f)!);
  if (ids.length && trustedKeys.length === 0) {
    throw new ConfigError('remote-cache-trust needs remote-cache-trusted-keys: the files with those public keys', where('remote-cache-trust'));
  }
  const num = (name: string, dflt: number) => {
    const v = opt(name);
    if (v === undefined) return dflt;
    if (!/^\d+(\.\d+)?$/.test(v)) throw new ConfigError(`${name} must be a number of seconds, got '${v}'`, where(name));
    return Math.round(Number(v) * 1000);
  };
  const bytes = (name: string, dflt: number) => {
    const v = opt(name);
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) > PACK_MAX) throw new ConfigError(`${name} must be a number of bytes up to ${PACK_MAX}, got '${v}'`, where(name));
    return Number(v);
  };
  return {
    url,
    mode,
    trust: ids,
    trustedKeys,
    signKey: cli.signKey ? resolve(cli.signKey) : file(opt('remote-cache-sign-key')),
    signPassphraseFile: file(opt('remote-cache-sign-passphrase-file')),
    caFile: file(opt('remote-cache-ca-file')),
    timeoutMs: num('remote-cache-timeout', 30_000),
    headTimeoutMs: num('remote-cache-plan-timeout', 5_000),
    packThreshold: bytes('remote-cache-pack-threshold', PACK_THRESHOLD),
  };
}

/** Run `fn` over `items`, at most `n` at a time. */
async function mapLimit<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) await fn(items[i++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

export class RemoteCache {
  readonly http: HttpCache;
  private keys: Map<string, string>;
  private verifier: ResultVerifier | undefined;
  private signer: ResultSigner | undefined;
  /** set after the service failed once: the rest of the build is local */
  private disabled = false;
  /** blobs seen corrupt: uploaded again even though the server "has" them */
  private badBlobs = new Set<string>();
  restored: string[] = [];
  uploaded: string[] = [];

  constructor(
    private project: Project,
    readonly settings: RemoteSettings,
    private warn: (message: string) => void,
  ) {
    this.http = new HttpCache({ url: settings.url, caFile: settings.caFile, timeoutMs: settings.timeoutMs });
    this.keys = actionKeys(project);
    if (settings.trust.length) this.verifier = new ResultVerifier(settings.trust, settings.trustedKeys);
    if (settings.mode === 'readwrite' && settings.signKey) this.signer = new ResultSigner(settings.signKey, project.sourceDateEpoch, settings.signPassphraseFile);
  }

  actionKey(part: string): string {
    return this.keys.get(part)!;
  }

  private unavailable(e: CacheUnavailable): void {
    if (this.disabled) return;
    this.disabled = true;
    this.warn(`remote cache ${this.http.display} unavailable (${e.message}); building locally without it`);
  }

  /** HEAD the action key of each part the local store cannot give: hits become `restore (remote)`. */
  async annotate(planned: PlanEntry[]): Promise<void> {
    const todo = planned.filter((e) => e.status === 'build');
    await mapLimit(todo, 16, async (e) => {
      if (this.disabled) return;
      try {
        if (await this.http.has('ac', this.actionKey(e.part), this.settings.headTimeoutMs)) {
          e.remote = { buildReasons: e.reasons };
          e.status = 'restore';
          e.reasons = [`an action result for it is in the remote cache (ac/${this.actionKey(e.part).slice(0, 12)})`];
        }
      } catch (err) {
        if (err instanceof CacheUnavailable) this.unavailable(err);
        else throw err;
      }
    });
  }

  /** Restore `part` from the remote cache into the store; false (with a warning) when it cannot. */
  async restore(part: Part, store: Store): Promise<boolean> {
    if (this.disabled) return false;
    const key = this.actionKey(part.name);
    let base: string | undefined;
    try {
      const body = await this.http.getSmall('ac', key);
      if (!body) {
        this.warn(`[${part.name}] its action result left the remote cache; building it`);
        return false;
      }
      let env: Envelope;
      let result: ActionResult;
      try {
        env = JSON.parse(body.toString('utf8')) as Envelope;
        if (env.kiln !== ENVELOPE_FORMAT || typeof env.payload !== 'string') throw new Error(`not a kiln action result`);
      } catch (e) {
        throw new Error(`action result ac/${key.slice(0, 12)} is unreadable: ${(e as Error).message}`);
      }
      if (this.verifier) {
        const v = await this.verifier.verify(env.payload, env.signature);
        if (!v.ok) throw new Error(`action result ac/${key.slice(0, 12)} ignored: ${v.why} (remote-cache-trust is set)`);
      }
      try {
        result = JSON.parse(env.payload) as ActionResult;
      } catch (e) {
        throw new Error(`action result ac/${key.slice(0, 12)} is unreadable: ${(e as Error).message}`);
      }
      validateResult(result, key);
      // assembled like a build: ENTRY/out in the store's staging, then Store.commit (manifest
      // written inside, rename into the store), refused when the tree differs from the result
      const st = store.newStaging(part);
      base = st.base;
      await this.materialize(result, st.staging, join(base, 'blobs'));
      let log: string | undefined;
      if (result.log) {
        log = join(base, 'log');
        if (!(await this.http.getBlob(result.log.sha256, result.log.size, log))) {
          throw new Error(`blob cas/${result.log.sha256.slice(0, 12)} (log) is missing from the remote cache`);
        }
      }
      await store.commit(part, st, (m) => sameTree(m, result.tree, key));
      if (log) {
        mkdirSync(this.project.logsDir, { recursive: true });
        renameSync(log, join(this.project.logsDir, `${part.name}.log`));
      }
      this.restored.push(part.name);
      return true;
    } catch (e) {
      if (e instanceof CacheUnavailable) this.unavailable(e);
      else if (e instanceof DigestMismatch) {
        this.badBlobs.add(e.digest);
        this.warn(`[${part.name}] ${e.message}; building it locally`);
      } else this.warn(`[${part.name}] remote cache not used: ${(e as Error).message}; building it locally`);
      return false;
    } finally {
      if (base) await rmrf(base);
    }
  }

  /** Write the tree of `r` under `dest`, every file checked against its digest. */
  private async materialize(r: ActionResult, dest: string, blobs: string): Promise<void> {
    mkdirSync(blobs, { recursive: true });
    const missing = (d: string, what: string) => new Error(`blob cas/${d.slice(0, 12)} (${what}) is missing from the remote cache`);
    for (const e of r.tree) if (e.type === 'dir') mkdirSync(join(dest, e.path), { mode: 0o700 });
    // large files: each distinct blob once, copied where it appears more than once
    const large = r.tree.filter((e) => e.type === 'file' && e.pack === undefined && e.size! > 0);
    const uses = new Map<string, number>();
    for (const e of large) uses.set(e.sha256!, (uses.get(e.sha256!) ?? 0) + 1);
    await mapLimit([...uses.keys()], 8, async (d) => {
      const size = large.find((e) => e.sha256 === d)!.size!;
      if (!(await this.http.getBlob(d, size, join(blobs, d)))) throw missing(d, 'file');
    });
    for (const e of large) {
      const left = uses.get(e.sha256!)! - 1;
      uses.set(e.sha256!, left);
      if (left === 0) renameSync(join(blobs, e.sha256!), join(dest, e.path));
      else copyFileSync(join(blobs, e.sha256!), join(dest, e.path));
    }
    // packs: downloaded (verified), then split, each file verified again against its own digest
    await mapLimit(
      r.packs.map((p, i) => ({ p, i })),
      4,
      async ({ p, i }) => {
        const packFile = join(blobs, `pack-${i}`);
        if (!(await this.http.getBlob(p.sha256, p.size, packFile))) throw missing(p.sha256, 'pack');
        const fd = openSync(packFile, 'r');
        try {
          for (const e of r.tree) {
            if (e.type !== 'file' || e.pack !== i) continue;
            const buf = Buffer.alloc(e.size!);
            if (e.size! > 0 && readSync(fd, buf, 0, e.size!, e.offset!) !== e.size) throw new Error(`pack ${i} is short`);
            if (createHash('sha256').update(buf).digest('hex') !== e.sha256) throw new DigestMismatch(`${e.path} in pack cas/${p.sha256.slice(0, 12)} does not match its digest: not used`, p.sha256);
            const out = openSync(join(dest, e.path), 'wx', 0o600);
            try {
              writeSync(out, buf);
              fchmodSync(out, e.mode);
            } finally {
              closeSync(out);
            }
          }
        } finally {
          closeSync(fd);
        }
        rmSync(packFile, { force: true });
      },
    );
    for (const e of r.tree) {
      if (e.type === 'file' && e.pack === undefined && e.size === 0) {
        if (e.sha256 !== 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855') throw new Error(`${e.path}: an empty file with a non-empty digest`);
        writeFileSync(join(dest, e.path), '', { flag: 'wx' });
      }
      if (e.type === 'symlink') symlinkSync(e.target!, join(dest, e.path));
    }
    for (const e of r.tree) if (e.type === 'file' && e.pack === undefined) chmodSync(join(dest, e.path), e.mode);
    for (const e of [...r.tree].reverse()) if (e.type === 'dir') chmodSync(join(dest, e.path), e.mode);
  }

  /**
   * Upload a part's store entry (readwrite mode): blobs the server lacks, then the action result.
   * The entry is hashed against its manifest first; the tree uploaded is the manifest's, and an
   * entry that differs from it is not uploaded (`kiln verify` names the file).
   */
  async upload(part: Part, store: Store, logFile: string | undefined = join(this.project.logsDir, `${part.name}.log`)): Promise<void> {
    if (this.disabled || this.settings.mode !== 'readwrite') return;
    const key = this.actionKey(part.name);
    const dir = store.storePath(part);
    mkdirSync(join(this.project.kilnDir, 'tmp'), { recursive: true });
    const tmp = mkdtempSync(join(this.project.kilnDir, 'tmp', `upload-${part.name}-`));
    try {
      const diffs = await store.check(part, 'full');
      if (diffs.length) throw new Error(`its store entry differs from its manifest (${describe(diffs, 3)})`);
      const m = readManifest(join(store.entryPath(part), MANIFEST));
      if (!m) throw new Error('its store entry has no manifest');
      const tree: ResultEntry[] = manifestTree(m);
      const blobs = new Map<string, { size: number; file: string }>();
      const packs: Digest[] = [];
      let fd = -1;
      let h = createHash('sha256');
      let size = 0;
      const finish = () => {
        if (fd < 0) return;
        closeSync(fd);
        fd = -1;
        const d = h.digest('hex');
        blobs.set(d, { size, file: join(tmp, `pack-${packs.length}`) });
        packs.push({ sha256: d, size });
      };
      for (const e of tree) {
        if (e.type !== 'file' || e.size === 0) continue;
        if (e.size! > this.settings.packThreshold) {
          blobs.set(e.sha256!, { size: e.size!, file: join(dir, e.path) });
          continue;
        }
        if (fd >= 0 && size + e.size! > PACK_MAX) finish();
        if (fd < 0) {
          fd = openSync(join(tmp, `pack-${packs.length}`), 'wx');
          h = createHash('sha256');
          size = 0;
        }
        const buf = readFileSync(join(dir, e.path));
        if (buf.length !== e.size || createHash('sha256').update(buf).digest('hex') !== e.sha256) throw new Error(`${e.path} changed while it was uploaded`);
        writeSync(fd, buf);
        h.update(buf);
        e.pack = packs.length;
        e.offset = size;
        size += buf.length;
      }
      finish();
      let log: Digest | null = null;
      if (logFile && existsSync(logFile)) {
        const logCopy = join(tmp, 'log');
        copyFileSync(logFile, logCopy);
        const buf = readFileSync(logCopy);
        log = { sha256: createHash('sha256').update(buf).digest('hex'), size: buf.length };
        blobs.set(log.sha256, { size: log.size, file: logCopy });
      }
      await mapLimit([...blobs.entries()], 8, async ([d, b]) => {
        if (!this.badBlobs.has(d) && (await this.http.has('cas', d))) return;
        await this.http.put('cas', d, { file: b.file });
      });
      const result: ActionResult = { format: RESULT_FORMAT, action: key, part: part.name, kind: part.recipe.kind, tree, packs, log };
      const payload = JSON.stringify(result);
      const envelope: Envelope = { kiln: ENVELOPE_FORMAT, payload, signature: this.signer ? await this.signer.sign(payload) : null };
      await this.http.put('ac', key, Buffer.from(JSON.stringify(envelope)));
      this.uploaded.push(part.name);
    } catch (e) {
      if (e instanceof CacheUnavailable) this.unavailable(e);
      else if (e instanceof UnsupportedEntry) this.warn(`[${part.name}] not uploaded to the remote cache: ${e.message}`);
      else this.warn(`[${part.name}] not uploaded to the remote cache: ${(e as Error).message}`);
    } finally {
      await rmrf(tmp);
    }
  }

  summary(): string {
    const s = this.http.stats;
    const mb = (n: number) => `${(n / 1e6).toFixed(n < 1e5 ? 3 : 1)} MB`;
    return `remote cache: ${this.restored.length} restored, ${this.uploaded.length} uploaded, ${s.requests} requests, ${mb(s.bytesDown)} down, ${mb(s.bytesUp)} up${this.disabled ? ' (turned off after an error)' : ''}`;
  }

  async close(): Promise<void> {
    this.http.close();
    await this.verifier?.close();
    await this.signer?.close();
  }
}
