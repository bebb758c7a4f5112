/**
 * Debian's nginx as a Bazel-style HTTP cache (WebDAV PUT) on a free 127.0.0.1 port, in its own
 * temporary prefix. `stop()` ends it (by its pid); `start()` again reuses the same port and data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitPort(port: number, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1');
      c.on('connect', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nginx did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Nginx {
  url: string;
  port: number;
  /** where nginx stores what is PUT: DATA/cas/<sha256>, DATA/ac/<sha256> */
  data: string;
  dir: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface NginxOptions {
  /** the exact Authorization header required (401 otherwise) */
  authorization?: string;
  /** serve HTTPS with this certificate and key (PEM files) */
  tls?: { cert: string; key: string };
  /** answer every request with this status (a broken cache) */
  status?: number;
}

export async function startNginx(opts: NginxOptions = {}): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-nginx-'));
  const data = join(dir, 'data');
  mkdirSync(data);
  const port = await freePort();
  const auth = [
    opts.authorization ? `if ($http_authorization != "${opts.authorization}") { return 401; }` : '',
    opts.status ? `return ${opts.status};` : '',
  ].join('\n      ');
  const tls = opts.tls ? ` ssl;\n    ssl_certificate ${opts.tls.cert};\n    ssl_certificate_key ${opts.tls.key};` : ';';
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port}${tls}
    client_max_body_size 0;
    location / {
      ${auth}
      root ${data};
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }
  }
}
`,
  );
  let child: ChildProcess | undefined;
  const n: Nginx = {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/`,
    port,
    data,
    dir,
    async start() {
      child = spawn('nginx', ['-p', dir, '-c', conf, '-g', `daemon off; pid ${dir}/nginx.pid;`], { stdio: 'ignore' });
      await waitPort(port);
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((r) => {
        c.on('exit', () => r());
        c.kill('SIGTERM');
      });
    },
  };
  await n.start();
  return n;
}
