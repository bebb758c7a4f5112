/**
 * A client for the Bazel HTTP remote-cache protocol (bazel-remote, BuildBuddy, nginx WebDAV):
 *
 *   HEAD/GET/PUT  BASE/cas/<sha256>   content blobs, named by the sha256 of their bytes
 *   HEAD/GET/PUT  BASE/ac/<sha256>    action results, named by the action key
 *
 * Downloads stream to a temporary file while hashing and are renamed into place only when the
 * bytes match their name: nothing is buffered whole, nothing unverified is ever used.
 * Auth: a bearer token ($KILN_REMOTE_CACHE_TOKEN), basic auth ($KILN_REMOTE_CACHE_USER and
 * $KILN_REMOTE_CACHE_PASSWORD, or user:password in the URL, or a ~/.netrc / $NETRC entry for the
 * host). HTTPS with an extra CA file. Credentials never appear in messages.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rootCertificates } from 'node:tls';
import { tmpSibling } from '../lib/fsutil.js';

/** A failure of the cache service (network, timeout, 5xx, refused auth): degrade to local builds. */
export class CacheUnavailable extends Error {
  override name = 'CacheUnavailable';
}
/** Bytes from the cache that do not match their digest (or size): not used, and re-uploaded. */
export class DigestMismatch extends Error {
  override name = 'DigestMismatch';
  constructor(
    message: string,
    readonly digest: string,
  ) {
    super(message);
  }
}

export interface HttpCacheOptions {
  url: string;
  /** PEM file with extra trusted CA certificates (HTTPS) */
  caFile?: string;
  /** per request: connect and idle timeout (ms) */
  timeoutMs?: number;
  /** parallel connections */
  maxSockets?: number;
  env?: NodeJS.ProcessEnv;
}

export interface CacheStats {
  requests: number;
  bytesDown: number;
  bytesUp: number;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** The netrc entry for `host` (machine HOST / default), as basic-auth credentials. */
export function netrcCredentials(host: string, file: string): { login: string; password: string } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const tok = text.replace(/#.*$/gm, '').split(/\s+/).filter(Boolean);
  let cur: { machine: string; login?: string; password?: string } | undefined;
  let found: typeof cur;
  let dflt: typeof cur;
  for (let i = 0; i < tok.length; i++) {
    const t = tok[i];
    if (t === 'machine' || t === 'default') {
      cur = { machine: t === 'default' ? '' : (tok[++i] ?? '') };
      if (t === 'default') dflt = cur;
      else if (cur.machine === host && !found) found = cur;
    } else if (t === 'macdef') {
      break; // macros run to a blank line; nothing after them is needed here
    } else if (cur && (t === 'login' || t === 'password' || t === 'account')) {
      const v = tok[++i];
      if (t === 'login') cur.login = v;
      if (t === 'password') cur.password = v;
    }
  }
  const e = found ?? dflt;
  return e && e.login !== undefined ? { login: e.login, password: e.password ?? '' } : undefined;
}

export class HttpCache {
  readonly base: URL;
  /** the URL without credentials, for messages */
  readonly display: string;
  private auth: string | undefined;
  private agent: http.Agent;
  private mod: typeof http | typeof https;
  private timeoutMs: number;
  stats: CacheStats = { requests: 0, bytesDown: 0, bytesUp: 0 };

  constructor(opts: HttpCacheOptions) {
    const env = opts.env ?? process.env;
    const u = new URL(opts.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`remote cache URL must be http:// or https://, got ${u.protocol}//`);
    const user = decodeURIComponent(u.username);
    const pass = decodeURIComponent(u.password);
    u.username = '';
    u.password = '';
    if (!u.pathname.endsWith('/')) u.pathname += '/';
    this.base = u;
    this.display = u.toString();
    if (env.KILN_REMOTE_CACHE_TOKEN) this.auth = `Bearer ${env.KILN_REMOTE_CACHE_TOKEN}`;
    else if (env.KILN_REMOTE_CACHE_USER) this.auth = basic(env.KILN_REMOTE_CACHE_USER, env.KILN_REMOTE_CACHE_PASSWORD ?? '');
    else if (user) this.auth = basic(user, pass);
    else {
      const n = netrcCredentials(u.hostname, env.NETRC || join(env.HOME || homedir(), '.netrc'));
      if (n) this.auth = basic(n.login, n.password);
    }
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.mod = u.protocol === 'https:' ? https : http;
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets ?? 8 };
    this.agent =
      u.protocol === 'https:'
        ? new https.Agent({ ...agentOpts, ...(opts.caFile ? { ca: [...rootCertificates, readFileSync(opts.caFile, 'utf8')] } : {}) })
        : new http.Agent(agentOpts);
  }

  private url(kind: 'cas' | 'ac', digest: string): URL {
    if (!HEX64.test(digest)) throw new Error(`not a sha256 digest: ${digest}`);
    return new URL(`${kind}/${digest}`, this.base);
  }

  private request(method: string, url: URL, headers: Record<string, string | number> = {}, timeoutMs = this.timeoutMs): Promise<http.IncomingMessage & { req: http.ClientRequest }> {
    this.stats.requests++;
    return new Promise((resolve, reject) => {
      const req = this.mod.request(url, { method, agent: this.agent, headers: { ...(this.auth ? { authorization: this.auth } : {}), ...headers } });
      req.setTimeout(timeoutMs, () => req.destroy(new CacheUnavailable(`${method} ${this.display}: no answer in ${timeoutMs} ms`)));
      req.on('error', (e) => reject(e instanceof CacheUnavailable ? e : new CacheUnavailable(`${method} ${this.display}: ${e.message}`)));
      req.on('response', (res) => resolve(Object.assign(res, { req })));
      req.end();
    });
  }

  private fail(method: string, kind: string, status: number | undefined): never {
    throw new CacheUnavailable(`${method} ${this.display}${kind}/…: HTTP ${status}${status === 401 || status === 403 ? ' (credentials refused)' : ''}`);
  }

  /** True when the server has the entry (HEAD 200), false on 404. */
  async has(kind: 'cas' | 'ac', digest: string, timeoutMs?: number): Promise<boolean> {
    const res = await this.request('HEAD', this.url(kind, digest), {}, timeoutMs);
    res.resume();
    if (res.statusCode === 200) return true;
    if (res.statusCode === 404) return false;
    this.fail('HEAD', kind, res.statusCode);
  }

  /** A small entry (an action result), read whole up to `limit` bytes; undefined on 404. */
  async getSmall(kind: 'cas' | 'ac', digest: string, limit = 16 << 20): Promise<Buffer | undefined> {
    const res = await this.request('GET', this.url(kind, digest));
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    if (res.statusCode !== 200) {
      res.resume();
      this.fail('GET', kind, res.statusCode);
    }
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of res as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > limit) {
          res.destroy();
          throw new DigestMismatch(`${kind}/${digest} is larger than ${limit} bytes`, digest);
        }
        chunks.push(c);
      }
    } catch (e) {
      if (e instanceof DigestMismatch) throw e;
      throw new CacheUnavailable(`GET ${this.display}${kind}/…: ${(e as Error).message}`);
    }
    this.stats.bytesDown += n;
    return Buffer.concat(chunks);
  }

  /**
   * Download blob `digest` to `dest`: streamed to a temporary sibling while hashing, renamed
   * only when sha256 and size match. Returns false when the server does not have it.
   */
  async getBlob(digest: string, size: number, dest: string): Promise<boolean> {
    const res = await this.request('GET', this.url('cas', digest));
    if (res.statusCode === 404) {
      res.resume();
      return false;
    }
    if (res.statusCode !== 200) {
      res.resume();
      this.fail('GET', 'cas', res.statusCode);
    }
    const tmp = tmpSibling(dest);
    const h = createHash('sha256');
    let n = 0;
    const tap = new Transform({
      transform: (chunk: Buffer, _e, cb) => {
        n += chunk.length;
        if (n > size) return cb(new DigestMismatch(`cas/${digest}: more bytes than the ${size} expected`, digest));
        h.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(res, tap, createWriteStream(tmp, { mode: 0o600 }));
    } catch (e) {
      rmSync(tmp, { force: true });
      if (e instanceof DigestMismatch) throw e;
      if ((e as NodeJS.ErrnoException).code && !(e as NodeJS.ErrnoException).code!.startsWith('ERR_STREAM') && (e as NodeJS.ErrnoException).code !== 'ECONNRESET') throw e; // local disk error
      throw new CacheUnavailable(`GET ${this.display}cas/…: ${(e as Error).message}`);
    }
    this.stats.bytesDown += n;
    const got = h.digest('hex');
    if (got !== digest || n !== size) {
      rmSync(tmp, { force: true });
      throw new DigestMismatch(`cas/${digest} from ${this.display} does not match its digest (got sha256 ${got}, ${n} bytes): not used`, digest);
    }
    renameSync(tmp, dest);
    return true;
  }

  /** Upload `body` (a file path or bytes) as KIND/digest. */
  async put(kind: 'cas' | 'ac', digest: string, body: { file: string } | Buffer): Promise<void> {
    const size = Buffer.isBuffer(body) ? body.length : statSync(body.file).size;
    const url = this.url(kind, digest);
    this.stats.requests++;
    await new Promise<void>((resolve, reject) => {
      const req = this.mod.request(url, {
        method: 'PUT',
        agent: this.agent,
        headers: { ...(this.auth ? { authorization: this.auth } : {}), 'content-length': size, 'content-type': 'application/octet-stream' },
      });
      req.setTimeout(Math.max(this.timeoutMs, 60_000), () => req.destroy(new CacheUnavailable(`PUT ${this.display}${kind}/…: timed out`)));
      req.on('error', (e) => reject(e instanceof CacheUnavailable ? e : new CacheUnavailable(`PUT ${this.display}${kind}/…: ${e.message}`)));
      req.on('response', (res) => {
        res.resume();
        const s = res.statusCode ?? 0;
        if (s >= 200 && s < 300) resolve();
        else reject(new CacheUnavailable(`PUT ${this.display}${kind}/…: HTTP ${s}${s === 401 || s === 403 ? ' (credentials refused)' : ''}`));
      });
      if (Buffer.isBuffer(body)) req.end(body);
      else {
        const rs = createReadStream(body.file, { highWaterMark: 1 << 20 });
        rs.on('error', (e) => req.destroy(e));
        rs.pipe(req);
      }
    });
    this.stats.bytesUp += size;
  }

  close(): void {
    this.agent.destroy();
  }
}

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

