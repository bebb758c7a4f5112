// Shared by the remote-cache benchmarks: Debian's nginx as a WebDAV (Bazel HTTP) cache on a free
// 127.0.0.1 port in a temporary prefix, and a timed run of the compiled kiln CLI.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const KILN = join(import.meta.dirname, '..', 'bin', 'kiln.js');

const freePort = () =>
  new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });

export async function nginx() {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-nginx-'));
  const data = join(dir, 'data');
  mkdirSync(data);
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `${process.getuid() === 0 ? 'user root;' : ''}
worker_processes 2;
error_log ${dir}/error.log;
events { worker_connections 512; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / { root ${data}; dav_methods PUT; create_full_put_path on; dav_access user:rw group:r all:r; }
  }
}
`,
  );
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid;`], { stdio: 'ignore' });
  await waitForPort(port, 'nginx');
  return {
    url: `http://127.0.0.1:${port}/`,
    dir,
    data,
    /** requests nginx logged so far */
    requests: () => readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter(Boolean).length,
    stop: () => new Promise((r) => (child.on('exit', r), child.kill('SIGTERM'))),
  };
}

/** A project directory with its own cache (a stand-in for a machine). */
export function machine(cfg) {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-m-'));
  writeFileSync(join(dir, 'buildout.cfg'), cfg);
  return dir;
}

/** Run kiln in `dir`; returns seconds, the parts it built and the remote-cache summary line. */
export function kiln(dir, args) {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [KILN, ...args, '--json'], { cwd: dir, env: { ...process.env, KILN_CACHE_DIR: join(dir, '.cache'), CI: '1' }, encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  if (r.status !== 0) throw new Error(`kiln ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-3000)}`);
  const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const summary = /remote cache: .*/.exec(r.stderr)?.[0];
  const warnings = r.stderr.split('\n').filter((l) => l.includes('warning'));
  if (warnings.length) console.error(warnings.join('\n'));
  return { seconds, built: events.filter((e) => e.type === 'part-start').length, summary };
}

/** "… N requests, X MB down, Y MB up" → numbers */
export function parseSummary(s) {
  const m = /(\d+) requests, ([\d.]+) MB down, ([\d.]+) MB up/.exec(s ?? '');
  return m ? { requests: Number(m[1]), mbDown: Number(m[2]), mbUp: Number(m[3]) } : undefined;
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Wait until something listens on 127.0.0.1:PORT (10 s at most). */
export async function waitForPort(port, what) {
  for (let i = 0; ; i++) {
    const ok = await new Promise((r) => {
      const c = connect(port, '127.0.0.1');
      c.on('connect', () => (c.destroy(), r(true)));
      c.on('error', () => r(false));
    });
    if (ok) return;
    if (i > 100) throw new Error(`${what} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
