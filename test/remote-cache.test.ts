// The remote cache against a real server: Debian's nginx with WebDAV PUT (the Bazel HTTP cache
// protocol), on a free 127.0.0.1 port. A CI machine builds and uploads; "fresh machines" (another
// project directory, new out/, empty KILN_CACHE_DIR) restore from it, and we check that they
// build nothing and get the same bytes, and that altered, unsigned or wrongly signed entries,
// a server that goes away and refused credentials all end in a correct local build.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { kilnP, parts, project, type KilnResult } from './helpers/kiln.js';
import { startNginx, type Nginx } from './helpers/nginx.js';

const CFG = `[buildout]
parts = b

[a]
recipe = kiln:command
command = mkdir -p "$OUT/d/e" && echo hello > "$OUT/d/e/small.txt" &&
    head -c 200000 /dev/zero | tr '\\0' x > "$OUT/big.bin" &&
    printf '#!/bin/sh\\necho hi\\n' > "$OUT/run.sh" && chmod 755 "$OUT/run.sh" &&
    ln -s d/e/small.txt "$OUT/link" && : > "$OUT/empty" &&
    for i in $(seq 1 60); do echo "file $i" > "$OUT/d/f$i"; done

[b]
recipe = kiln:command
src = \${a:location}/d/e/small.txt
command = tr a-z A-Z < "$KILN_OPT_SRC" > "$OUT/b.txt" && cp "\${a:location}/big.bin" "$OUT/big-copy.bin"
`;

/** Every entry under out/parts (links followed at the top), with type, mode and content hash. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const rec = (abs: string, rel: string) => {
    for (const n of readdirSync(abs).sort()) {
      const a = join(abs, n);
      const r = `${rel}/${n}`;
      const st = lstatSync(a);
      if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(a)}`;
      else if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o7777).toString(8)}`;
        rec(a, r);
      } else out[r] = `file ${(st.mode & 0o7777).toString(8)} ${createHash('sha256').update(readFileSync(a)).digest('hex')}`;
    }
  };
  for (const p of readdirSync(join(dir, 'out/parts')).sort()) rec(join(dir, 'out/parts', p) + '/', p);
  return out;
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const built = (r: KilnResult) => parts(r, 'part-start');
const remoteRestored = (r: KilnResult) =>
  r.events
    .filter((e) => e.type === 'part-cached' && e.remote)
    .map((e) => e.part as string)
    .sort();

describe('remote cache on nginx (WebDAV)', () => {
  let ng: Nginx;
  let ci: ReturnType<typeof project>;
  let reference: Record<string, string>;
  beforeAll(async () => {
    ng = await startNginx();
    ci = project({ 'buildout.cfg': CFG });
    const r = await kilnP(ci.dir, ['build', '--json', '--remote-cache', ng.url, '--remote-cache-mode', 'readwrite']);
    expect(r.code, r.stderr).toBe(0);
    expect(built(r)).toEqual(['a', 'b']);
    expect(r.stderr).toMatch(/remote cache: 0 restored, 2 uploaded/);
    reference = snapshot(ci.dir);
  });
  afterAll(async () => {
    await ng?.stop();
  });

  test('a fresh machine restores everything: 0 parts built, identical bytes, modes and links', async () => {
    const m = project({ 'buildout.cfg': CFG });
    const plan = await kilnP(m.dir, ['plan', '--remote-cache', ng.url]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/a \(command\) restore \(remote\)/);
    expect(plan.stdout).toMatch(/b \(command\) restore \(remote\)/);
    const r = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(built(r)).toEqual([]);
    expect(remoteRestored(r)).toEqual(['a', 'b']);
    expect(snapshot(m.dir)).toEqual(reference);
    expect(reference['a/run.sh']).toMatch(/^file 755 /);
    expect(reference['a/link']).toBe('link d/e/small.txt');
    expect(readFileSync(join(m.dir, 'out/logs/a.log'), 'utf8')).toMatch(/# kiln: a \(kiln:command\)/);
    // committed as store entries with their manifests: out/parts/a -> ../.kiln/store/SIG/out
    const target = readlinkSync(join(m.dir, 'out/parts/a'));
    expect(target).toMatch(/^\.\.\/\.kiln\/store\/[0-9a-f]+\/out$/);
    const entry = join(m.dir, 'out/parts', target, '..');
    const manifest = JSON.parse(readFileSync(join(entry, 'manifest.json'), 'utf8')) as { entries: Array<{ p: string; h?: string }> };
    expect(manifest.entries.find((e) => e.p === 'run.sh')!.h).toBe(reference['a/run.sh']!.split(' ')[2]);
    expect(readdirSync(join(m.dir, 'out/.kiln/tmp'))).toEqual([]);
    const v = await kilnP(m.dir, ['verify']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // the release evidence records them as restored
    const ev = JSON.parse(readFileSync(join(m.dir, 'out/manifest.json'), 'utf8')) as { parts: Array<{ name: string; status: string }> };
    expect(ev.parts.map((p) => `${p.name} ${p.status}`)).toEqual(['a restored', 'b restored']);
    // a second build is a no-op from the local store
    const r2 = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url]);
    expect(built(r2)).toEqual([]);
    expect(remoteRestored(r2)).toEqual([]);
  });

  test('small files travel packed: the 60 small files of a part are one blob, not 60', () => {
    const ac = readdirSync(join(ng.data, 'ac'));
    const payloads = ac.map((k) => JSON.parse(JSON.parse(readFileSync(join(ng.data, 'ac', k), 'utf8')).payload));
    const a = payloads.find((p) => p.part === 'a');
    expect(a.packs).toHaveLength(1);
    expect(a.tree.filter((e: { pack?: number }) => e.pack === 0).length).toBeGreaterThanOrEqual(62);
    const big = a.tree.find((e: { path: string }) => e.path === 'big.bin');
    expect(big.pack).toBeUndefined();
    expect(existsSync(join(ng.data, 'cas', big.sha256))).toBe(true);
  });

  test('an altered blob in the server storage is detected, not used, the part rebuilds (and readwrite repairs it)', async () => {
    const big = sha('x'.repeat(200000));
    const blob = join(ng.data, 'cas', big);
    expect(existsSync(blob)).toBe(true);
    writeFileSync(blob, 'y'.repeat(200000));
    const m = project({ 'buildout.cfg': CFG });
    const r = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url, '--remote-cache-mode', 'readwrite']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/does not match its digest/);
    expect(built(r)).toContain('a');
    expect(snapshot(m.dir)).toEqual(reference);
    expect(sha(readFileSync(blob))).toBe(big); // uploaded again over the bad copy
    const fresh = project({ 'buildout.cfg': CFG });
    const r2 = await kilnP(fresh.dir, ['build', '--json', '--remote-cache', ng.url]);
    expect(built(r2)).toEqual([]);
    expect(snapshot(fresh.dir)).toEqual(reference);
  });

  test('an altered pack is detected too', async () => {
    const ac = readdirSync(join(ng.data, 'ac'));
    const a = ac.map((k) => JSON.parse(JSON.parse(readFileSync(join(ng.data, 'ac', k), 'utf8')).payload)).find((p) => p.part === 'a');
    const pack = join(ng.data, 'cas', a.packs[0].sha256);
    const bytes = readFileSync(pack);
    bytes[0] ^= 1;
    writeFileSync(pack, bytes);
    const m = project({ 'buildout.cfg': CFG });
    const r = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/does not match its digest/);
    expect(built(r)).toEqual(['a']);
    expect(remoteRestored(r)).toEqual(['b']);
    expect(snapshot(m.dir)).toEqual(reference);
    bytes[0] ^= 1;
    writeFileSync(pack, bytes);
  });

  test('the server stopped mid-build: a warning, local builds, correct result', async () => {
    // `stop` runs first (-j1) and stops nginx; a and b were planned `restore (remote)`
    const cfg = CFG.replace('parts = b', 'parts = stop b') + `\n[stop]\nrecipe = kiln:command\ncommand = kill -TERM $(cat ${ng.dir}/nginx.pid) && sleep 1 && echo > "$OUT/stopped"\n`;
    const m = project({ 'buildout.cfg': cfg });
    try {
      const r = await kilnP(m.dir, ['build', '--json', '-j1', '--remote-cache', ng.url]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/remote cache http:\/\/127\.0\.0\.1:\d+\/ unavailable .*building locally/);
      expect(built(r)).toEqual(['a', 'b', 'stop']);
      const snap = snapshot(m.dir);
      delete snap['stop/stopped'];
      expect(snap).toEqual(reference);
    } finally {
      await ng.stop();
      await ng.start();
    }
  });

  test('an unreachable cache from the start: a warning and a normal local build', async () => {
    const m = project({ 'buildout.cfg': CFG });
    const r = await kilnP(m.dir, ['build', '--json', '--remote-cache', 'http://127.0.0.1:9/']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/unavailable/);
    expect(built(r)).toEqual(['a', 'b']);
    expect(snapshot(m.dir)).toEqual(reference);
  });

  test('an output that names its own location is only restored at that location', async () => {
    const cfg = '[buildout]\nparts = where\n\n[where]\nrecipe = kiln:command\ncommand = echo "$LOCATION" > "$OUT/where"\n';
    const one = project({ 'buildout.cfg': cfg });
    const r1 = await kilnP(one.dir, ['build', '--json', '--remote-cache', ng.url, '--remote-cache-mode', 'readwrite']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stderr).toMatch(/1 uploaded/);
    // another machine, another path: built there, naming its own location (not the first one's)
    const two = project({ 'buildout.cfg': cfg });
    const r2 = await kilnP(two.dir, ['build', '--json', '--remote-cache', ng.url]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(built(r2)).toEqual(['where']);
    expect(readFileSync(join(two.dir, 'out/parts/where/where'), 'utf8')).toBe(`${join(two.dir, 'out/parts/where')}\n`);
    // the same path (a fresh out/ where the first one was): restored
    rmSync(join(one.dir, 'out'), { recursive: true });
    const r3 = await kilnP(one.dir, ['build', '--json', '--remote-cache', ng.url]);
    expect(r3.code, r3.stderr).toBe(0);
    expect(remoteRestored(r3)).toEqual(['where']);
    expect(readFileSync(join(one.dir, 'out/parts/where/where'), 'utf8')).toBe(`${join(one.dir, 'out/parts/where')}\n`);
  });

  test('bad settings are config errors naming the option', async () => {
    const m = project({ 'buildout.cfg': CFG.replace('parts = b', 'parts = b\nremote-cache = http://127.0.0.1:1/\nremote-cache-mode = write') });
    const r = await kilnP(m.dir, ['build']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/buildout\.cfg:4.*remote-cache-mode must be 'read' or 'readwrite'/s);
    const u = await kilnP(m.dir, ['build', '--remote-cache-mode', 'sometimes']);
    expect(u.code).toBe(2);
  });
});

function gpg(home: string, args: string[], input?: string): string {
  return execFileSync('gpg', ['--homedir', home, '--batch', '--yes', ...args], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] });
}
function makeKey(name: string): { home: string; secret: string; pub: string; fpr: string } {
  const home = mkdtempSync(join(tmpdir(), 'kiln-gpg-'));
  gpg(home, ['--passphrase', '', '--quick-gen-key', `${name} <${name}@example.invalid>`, 'ed25519', 'sign', 'never']);
  const secret = join(home, 'secret.asc');
  const pub = join(home, 'public.asc');
  gpg(home, ['--armor', '--output', secret, '--export-secret-keys']);
  gpg(home, ['--armor', '--output', pub, '--export']);
  const fpr = gpg(home, ['--with-colons', '--list-keys']).split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
  return { home, secret, pub, fpr };
}

describe('signed action results (remote-cache-trust)', () => {
  let ng: Nginx;
  let ciKey: ReturnType<typeof makeKey>;
  let evil: ReturnType<typeof makeKey>;
  let reference: Record<string, string>;
  const trusting = (fpr: string, pub: string) => CFG.replace('parts = b', `parts = b\nremote-cache-trust = ${fpr}\nremote-cache-trusted-keys = ${pub}`);
  const acOf = (part: string) => {
    for (const k of readdirSync(join(ng.data, 'ac'))) {
      const env = JSON.parse(readFileSync(join(ng.data, 'ac', k), 'utf8'));
      if (JSON.parse(env.payload).part === part) return { file: join(ng.data, 'ac', k), env };
    }
    throw new Error(`no action result for ${part}`);
  };
  beforeAll(async () => {
    ng = await startNginx();
    ciKey = makeKey('ci');
    evil = makeKey('evil');
    const ci = project({ 'buildout.cfg': CFG });
    const r = await kilnP(ci.dir, ['build', '--json', '--remote-cache', ng.url, '--remote-cache-mode', 'readwrite', '--remote-cache-sign-key', ciKey.secret]);
    expect(r.code, r.stderr).toBe(0);
    reference = snapshot(ci.dir);
  });
  afterAll(async () => {
    await ng?.stop();
  });

  test('results signed by a trusted key are used', async () => {
    expect(acOf('a').env.signature).toMatch(/BEGIN PGP SIGNATURE/);
    const m = project({ 'buildout.cfg': trusting(ciKey.fpr, ciKey.pub) });
    const r = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(built(r)).toEqual([]);
    expect(snapshot(m.dir)).toEqual(reference);
  });

  test('a key that is not listed is not trusted, even when its public key is known', async () => {
    const m = project({ 'buildout.cfg': trusting(evil.fpr, `${evil.pub} ${ciKey.pub}`) });
    const r = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/which remote-cache-trust does not list/);
    expect(built(r)).toEqual(['a', 'b']);
  });

  test('unsigned, wrongly signed or altered results are ignored and the part is built', async () => {
    const { file, env } = acOf('a');
    const original = readFileSync(file);
    try {
      // unsigned
      writeFileSync(file, JSON.stringify({ ...env, signature: null }));
      let m = project({ 'buildout.cfg': trusting(ciKey.fpr, ciKey.pub) });
      let r = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/\[a\].*it is not signed/);
      expect(built(r)).toEqual(['a']);
      expect(remoteRestored(r)).toEqual(['b']);
      expect(snapshot(m.dir)).toEqual(reference);
      // signed by another key (whose public key the reader has, but does not trust)
      writeFileSync(join(evil.home, 'payload'), env.payload);
      gpg(evil.home, ['--armor', '--detach-sign', '--output', join(evil.home, 'payload.asc'), join(evil.home, 'payload')]);
      writeFileSync(file, JSON.stringify({ ...env, signature: readFileSync(join(evil.home, 'payload.asc'), 'utf8') }));
      m = project({ 'buildout.cfg': trusting(ciKey.fpr, `${ciKey.pub} ${evil.pub}`) });
      r = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/\[a\].*does not list/);
      expect(built(r)).toEqual(['a']);
      // CI's signature kept, payload altered (a file's mode)
      const altered = env.payload.replace('"path":"run.sh","type":"file","mode":493', '"path":"run.sh","type":"file","mode":511');
      expect(altered).not.toBe(env.payload);
      writeFileSync(file, JSON.stringify({ ...env, payload: altered }));
      m = project({ 'buildout.cfg': trusting(ciKey.fpr, ciKey.pub) });
      r = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/\[a\].*not a good signature/);
      expect(built(r)).toEqual(['a']);
      expect(snapshot(m.dir)).toEqual(reference);
    } finally {
      writeFileSync(file, original);
    }
  });

  test('a signed result copied to another action key is refused', async () => {
    const a = acOf('a');
    const b = acOf('b');
    const original = readFileSync(b.file);
    try {
      writeFileSync(b.file, JSON.stringify(a.env));
      const m = project({ 'buildout.cfg': trusting(ciKey.fpr, ciKey.pub) });
      const r = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/\[b\].*answers action .*not this one/);
      expect(built(r)).toEqual(['b']);
      expect(snapshot(m.dir)).toEqual(reference);
    } finally {
      writeFileSync(b.file, original);
    }
  });
});

describe('remote cache auth', () => {
  let ng: Nginx;
  beforeAll(async () => {
    ng = await startNginx({ authorization: 'Bearer s3cr3t-t0ken' });
  });
  afterAll(async () => {
    await ng?.stop();
  });

  test('a bearer token from the environment; without it: a warning and a local build', async () => {
    const ci = project({ 'buildout.cfg': CFG });
    const env = { KILN_REMOTE_CACHE_TOKEN: 's3cr3t-t0ken' };
    const r = await kilnP(ci.dir, ['build', '--json', '--remote-cache', ng.url, '--remote-cache-mode', 'readwrite'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/2 uploaded/);
    const m = project({ 'buildout.cfg': CFG });
    const r2 = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url], env);
    expect(built(r2)).toEqual([]);
    expect(snapshot(m.dir)).toEqual(snapshot(ci.dir));
    const n = project({ 'buildout.cfg': CFG });
    const r3 = await kilnP(n.dir, ['build', '--json', '--remote-cache', ng.url]);
    expect(r3.code, r3.stderr).toBe(0);
    expect(r3.stderr).toMatch(/HTTP 401 \(credentials refused\)/);
    expect(built(r3)).toEqual(['a', 'b']);
    const wrong = await kilnP(project({ 'buildout.cfg': CFG }).dir, ['build', '--json', '--remote-cache', ng.url], { KILN_REMOTE_CACHE_TOKEN: 'nope' });
    expect(wrong.stderr).toMatch(/401/);
    expect(wrong.stderr + wrong.stdout).not.toMatch(/nope|s3cr3t/);
  });
});

describe('remote cache: basic auth from netrc, HTTPS with a CA file, a failing server', () => {
  test('basic auth from $NETRC (and from the environment)', async () => {
    const ng = await startNginx({ authorization: `Basic ${Buffer.from('ci:pa55').toString('base64')}` });
    try {
      const ci = project({ 'buildout.cfg': CFG });
      const netrc = join(ci.dir, 'netrc');
      writeFileSync(netrc, `machine example.invalid login x password y\nmachine 127.0.0.1\n  login ci\n  password pa55\n`);
      const r = await kilnP(ci.dir, ['build', '--json', '--remote-cache', ng.url, '--remote-cache-mode', 'readwrite'], { NETRC: netrc });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/2 uploaded/);
      const m = project({ 'buildout.cfg': CFG });
      const r2 = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url], { KILN_REMOTE_CACHE_USER: 'ci', KILN_REMOTE_CACHE_PASSWORD: 'pa55' });
      expect(built(r2)).toEqual([]);
      expect(snapshot(m.dir)).toEqual(snapshot(ci.dir));
      const bad = project({ 'buildout.cfg': CFG });
      const r3 = await kilnP(bad.dir, ['build', '--json', '--remote-cache', ng.url], { KILN_REMOTE_CACHE_USER: 'ci', KILN_REMOTE_CACHE_PASSWORD: 'wrong' });
      expect(r3.code).toBe(0);
      expect(r3.stderr).toMatch(/401/);
      expect(built(r3)).toEqual(['a', 'b']);
    } finally {
      await ng.stop();
    }
  });

  test('HTTPS: a self-signed server is refused without remote-cache-ca-file and used with it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const ng = await startNginx({ tls: { cert, key } });
    try {
      expect(ng.url).toMatch(/^https:/);
      const withCa = CFG.replace('parts = b', `parts = b\nremote-cache-ca-file = ${cert}`);
      const ci = project({ 'buildout.cfg': withCa });
      const r = await kilnP(ci.dir, ['build', '--json', '--remote-cache', ng.url, '--remote-cache-mode', 'readwrite']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/2 uploaded/);
      const m = project({ 'buildout.cfg': withCa });
      const r2 = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url]);
      expect(built(r2)).toEqual([]);
      const n = project({ 'buildout.cfg': CFG });
      const r3 = await kilnP(n.dir, ['build', '--json', '--remote-cache', ng.url]);
      expect(r3.code).toBe(0);
      expect(r3.stderr).toMatch(/unavailable.*(self[- ]signed|certificate)/i);
      expect(built(r3)).toEqual(['a', 'b']);
    } finally {
      await ng.stop();
    }
  });

  test('a server answering 503: a warning and a local build', async () => {
    const ng = await startNginx({ status: 503 });
    try {
      const m = project({ 'buildout.cfg': CFG });
      const r = await kilnP(m.dir, ['build', '--json', '--remote-cache', ng.url, '--remote-cache-mode', 'readwrite']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/unavailable \(HEAD .*HTTP 503\)/);
      expect(built(r)).toEqual(['a', 'b']);
    } finally {
      await ng.stop();
    }
  });
});
