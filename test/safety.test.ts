// A store you can trust (issue 11), the safety half: no path escapes, no orphans, no stray
// secrets, bad package values caught at load time, and the smaller cases (env-name collisions,
// E2BIG, truncated downloads, '%' in names, empty lock files, SIGHUP).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { run } from '../src/lib/exec.js';
import { generateTestKey, makeGnupgHome, reapGnupgHomes, removeGnupgHome, setGnupgRoot, Signer } from '../src/lib/gpg.js';
import { containedPath } from '../src/lib/paths.js';
import { kilnAsync, kilnP, project } from './helpers/kiln.js';

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
/** The line number (1-based) of the first line of `text` that contains `needle`. */
const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

/** Pids of processes whose environment has KILN_PART=<part> (the processes of one part). */
function partProcesses(part: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(`KILN_PART=${part}`)) out.push(Number(d));
    } catch {
      /* gone or not ours */
    }
  }
  return out;
}
/** Pids of gpg-agents serving `home`. */
function agentsOf(home: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (args[0]?.endsWith('gpg-agent') && args.includes(home)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}
/** argv of every running gpg process. */
function gpgProcesses(): string[][] {
  const out: string[][] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (/(^|\/)gpg$/.test(args[0] ?? '') || (args[0]?.endsWith('setpriv') && args.some((a) => /(^|\/)gpg$/.test(a)))) out.push(args);
    } catch {
      /* gone */
    }
  }
  return out;
}
/** Open `fifo` for writing `times` times (each time: an empty passphrase for one reader). */
function kilnFeeder(fifo: string, times: number): Promise<void> {
  const c = spawn('sh', ['-c', `i=0; while [ $i -lt ${times} ]; do : > "$1"; i=$((i+1)); done`, 'sh', fifo], { stdio: 'ignore' });
  return new Promise((r) => c.once('exit', () => r()));
}
const exitOf = (c: ReturnType<typeof kilnAsync>) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

describe('finding 3: no name from a config or a URL leaves its directory', () => {
  test('containedPath refuses .., absolute names, NUL and (for file names) slashes; keeps good names', () => {
    expect(containedPath('/base', 'a/b.txt', 'file')).toBe('/base/a/b.txt');
    expect(containedPath('/base', 'x%3a1.deb', 'file', undefined, { single: true })).toBe('/base/x%3a1.deb');
    for (const bad of ['../x', 'a/../../x', '/etc/passwd', 'a\0b', '..', '']) expect(() => containedPath('/base', bad, 'file')).toThrow(/file '.*' (contains|is an absolute|is empty)/);
    expect(() => containedPath('/base', 'a/b', 'file name', undefined, { single: true })).toThrow(/contains '\/'/);
  });

  test("kiln:download filename = ../../../../x: load-time error with file:line, nothing written", async () => {
    const p = project({ 'data.txt': 'd\n' });
    const cfg = `[buildout]\nparts = dl\n[dl]\nrecipe = kiln:download\nurl = data.txt\nfilename = ../../../../escaped-${Date.now()}\n`;
    p.write({ 'buildout.cfg': cfg });
    const r = await kilnP(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`buildout.cfg:${lineOf(cfg, 'filename')}: [dl] filename: file name '../../../../escaped-`);
    expect(r.stderr).toMatch(/contains '\.\.': it must stay inside/);
    expect(existsSync(join(p.dir, 'out/parts/dl'))).toBe(false);
  });

  describe('over HTTP (127.0.0.1)', () => {
    let server: Server;
    let port = 0;
    const hits: string[] = [];
    const big = Buffer.alloc(100_000, 7);
    beforeAll(async () => {
      server = createServer((req, res) => {
        hits.push(req.url!);
        if (req.url === '/truncated.bin') {
          // promise 100000 bytes, send 1000, then drop the connection
          res.writeHead(200, { 'content-length': String(big.length) });
          res.write(big.subarray(0, 1000), () => setTimeout(() => res.socket?.destroy(), 50));
        } else res.end('served\n');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    test('a URL whose last component decodes to ../ (..%2F) is refused before anything is fetched', async () => {
      const marker = `escaped-url-${Date.now()}`;
      const cfg = `[buildout]\nparts = dl\n[dl]\nrecipe = kiln:download\nurl = http://127.0.0.1:${port}/a/..%2F..%2F..%2F..%2F${marker}\n`;
      const p = project({ 'buildout.cfg': cfg });
      const r = await kilnP(p.dir, ['build']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(`buildout.cfg:${lineOf(cfg, 'url =')}: [dl] url: file name taken from the URL (after decoding) '../../../../${marker}' contains '..'`);
      expect(r.stderr).toMatch(/set 'filename'/);
      expect(hits.filter((h) => h.includes(marker))).toEqual([]);
      // with a filename the same URL is fine (the server answers; the name is the user's)
      p.write({ 'buildout.cfg': cfg + 'filename = ok.txt\n' });
      const ok = await kilnP(p.dir, ['build']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(readFileSync(join(p.dir, 'out/parts/dl/ok.txt'), 'utf8')).toBe('served\n');
      for (let up = p.dir, i = 0; i < 4; i++) expect(existsSync(join((up = join(up, '..')), marker))).toBe(false);
    });

    test('a truncated body names the URL and the byte counts (not just "terminated"), nothing cached', async () => {
      const url = `http://127.0.0.1:${port}/truncated.bin`;
      const p = project({ 'buildout.cfg': `[buildout]\nparts = dl\n[dl]\nrecipe = kiln:download\nurl = ${url}\nsha256 = ${sha256(big)}\n` });
      const r = await kilnP(p.dir, ['build']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`download of ${url} failed after 1000 of 100000 bytes: the connection ended early`);
      expect(existsSync(join(p.cache, 'downloads/sha256', sha256(big)))).toBe(false);
      expect(existsSync(join(p.dir, 'out/parts/dl'))).toBe(false);
    });

    test('an http URL is percent-decoded for the file name; a literal % stays', async () => {
      const p = project({ 'buildout.cfg': `[buildout]\nparts = a b\n[a]\nrecipe = kiln:download\nurl = http://127.0.0.1:${port}/x/hello%20world.txt\n[b]\nrecipe = kiln:download\nurl = http://127.0.0.1:${port}/x/100%.txt\n` });
      const r = await kilnP(p.dir, ['build']);
      expect(r.code, r.stderr).toBe(0);
      expect(readdirSync(join(p.dir, 'out/parts/a'))).toEqual(['hello world.txt']);
      expect(readdirSync(join(p.dir, 'out/parts/b'))).toEqual(['100%.txt']);
    });
  });

  test("local files keep their on-disk names: '%' (was: URI malformed) and a Debian pool name with %3a (was: decoded to ':')", async () => {
    const pool = 'kiln-hello_1%3a2.10-3_amd64.deb';
    const p = project({
      '100%.txt': 'percent\n',
      [pool]: 'deb bytes\n',
      'buildout.cfg': `[buildout]\nparts = pct pool\n[pct]\nrecipe = kiln:download\nurl = 100%.txt\n[pool]\nrecipe = kiln:download\nurl = ${pool}\nsha256 = ${sha256('deb bytes\n')}\n`,
    });
    const r = await kilnP(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/URI malformed/);
    expect(readdirSync(join(p.dir, 'out/parts/pct'))).toEqual(['100%.txt']);
    expect(readdirSync(join(p.dir, 'out/parts/pool'))).toEqual([pool]);
    expect(readFileSync(join(p.dir, 'out/parts/pool', pool), 'utf8')).toBe('deb bytes\n');
  });

  test("file:// URLs: %25 and %3a are decoded (the URL's file), a malformed escape is a clear error (was: URI malformed)", async () => {
    const p = project({ '100%.txt': 'percent\n', 'a:b.txt': 'colon\n' });
    p.write({ 'buildout.cfg': `[buildout]\nparts = a b\n[a]\nrecipe = kiln:download\nurl = file://${p.dir}/100%25.txt\n[b]\nrecipe = kiln:download\nurl = file://${p.dir}/a%3ab.txt\n` });
    const r = await kilnP(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(p.dir, 'out/parts/a'))).toEqual(['100%.txt']);
    expect(readdirSync(join(p.dir, 'out/parts/b'))).toEqual(['a:b.txt']);
    const cfg = `[buildout]\nparts = c\n[c]\nrecipe = kiln:download\nurl = file://${p.dir}/100%.txt\n`;
    p.write({ 'buildout.cfg': cfg });
    const bad = await kilnP(p.dir, ['build']);
    expect(bad.code, bad.stderr).toBe(3);
    expect(bad.stderr).toContain(`buildout.cfg:${lineOf(cfg, 'url =')}: [c] url: not a usable file:// URL: file://${p.dir}/100%.txt (URI malformed; a '%' in a file name is written %25`);
  });

  test('a part named ../../../escaped-part is a load-time error at its section line; no link or log outside out/', async () => {
    const name = `../../../escaped-part-${Date.now()}`;
    const cfg = `[buildout]\nparts = ${name}\n\n[${name}]\nrecipe = kiln:command\ncommand = echo hi > "$OUT/f"\n`;
    const p = project({ 'buildout.cfg': cfg });
    const r = await kilnP(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`buildout.cfg:${lineOf(cfg, `[${name}]`)}: [${name}]: part name '${name}' is not allowed`);
    const base = name.split('/').pop()!;
    for (const d of [p.dir, join(p.dir, '..'), join(p.dir, 'out'), join(p.dir, 'out/parts/..'), join(p.dir, 'out/logs/..')]) {
      expect(existsSync(join(d, base))).toBe(false);
      expect(existsSync(join(d, `${base}.log`))).toBe(false);
    }
    // names with the safe characters still work
    const q = project({ 'buildout.cfg': `[buildout]\nparts = ok_part-1.2+x\n[ok_part-1.2+x]\nrecipe = kiln:command\ncommand = echo hi > "$OUT/f"\n` });
    expect((await kilnP(q.dir, ['build'])).code).toBe(0);
  });

  const pkg = (extra: string) => `[buildout]\nparts = p\n[p]\nrecipe = kiln:package\nname = safe-test\nversion = 1.0-1\nsummary = s\nmaintainer = M <m@example.invalid>\nfiles = f.txt => /usr/share/safe-test/f.txt\n${extra}`;
  test.each([
    ['directories', 'directories =\n  /var/lib/safe-test\n  /var/lib/../../../escaped mode=0755\n', '/var/lib/../../../escaped mode=0755', /\[p\] directories: directory '\/var\/lib\/\.\.\/\.\.\/\.\.\/escaped' contains '\.\.'/],
    ['symlinks', 'symlinks =\n  /usr/bin/ok -> ../share/x\n  /usr/../../escaped -> x\n', '/usr/../../escaped -> x', /\[p\] symlinks: symlink '\/usr\/\.\.\/\.\.\/escaped' contains '\.\.'/],
    ['symlinks (relative path)', 'symlinks =\n  usr/bin/rel -> x\n', 'usr/bin/rel -> x', /\[p\] symlinks: symlink 'usr\/bin\/rel' must be an absolute path/],
    ['directories (owner injection)', 'directories =\n  /var/lib/x owner=root;touch\n', '/var/lib/x owner=root;touch', /\[p\] directories: bad owner 'root;touch'/],
  ])('kiln:package %s: the escape is reported on its own option and line', async (_n, extra, badLine, re) => {
    const cfg = pkg(extra);
    const p = project({ 'buildout.cfg': cfg, 'f.txt': 'f\n' });
    const r = await kilnP(p.dir, ['plan']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(re);
    expect(r.stderr).toContain(`buildout.cfg:${lineOf(cfg, badLine)}: `);
  });
});

describe('kiln:package values are checked at load time (exit 3, file:line), not at build time', () => {
  const pkg = (extra: string, files = 'f.txt => /usr/share/safe-test/f.txt') => `[buildout]\nparts = p\n[p]\nrecipe = kiln:package\nname = safe-test\nversion = 1.0-1\nsummary = s\nmaintainer = M <m@example.invalid>\nfiles = ${files}\n${extra}`;
  test.each([
    ['newline in maintainer', pkg('').replace('maintainer = M <m@example.invalid>', 'maintainer = M <m@example.invalid>\n  Depends: evil'), 'maintainer =', /\[p\] maintainer: must be a single line/],
    ['newline in homepage', pkg('homepage = https://example.invalid/\n  Depends: evil\n'), 'homepage', /\[p\] homepage: must be a single line/],
    ['newline in section', pkg('section = utils\n  Depends: evil\n'), 'section', /\[p\] section: must be a single line/],
    ['bad section', pkg('section = utils;rm\n'), 'section', /\[p\] section: invalid Debian section 'utils;rm'/],
    ['multi-line summary', pkg('').replace('summary = s', 'summary = s\n  more'), 'summary', /\[p\] summary: must be a single line.*put the long text in 'description'/],
    ['malformed depends', pkg('depends = libc6 (>= 2.36, foo\n'), 'depends', /\[p\] depends: invalid relation "libc6 \(>= 2\.36".*Debian syntax/],
    ['bad operator in depends', pkg('depends = libc6 (=> 2.36)\n'), 'depends', /\[p\] depends: invalid relation "libc6 \(=> 2\.36\)"/],
    ['bad deb-triggers', pkg('deb-triggers =\n  interest /usr/lib/x\n  frobnicate y\n'), 'frobnicate y', /\[p\] deb-triggers: expected '<interest\|.*> <trigger-name>' per line, got 'frobnicate y'/],
    ['owner=root;touch in files', pkg('', 'f.txt => /usr/share/safe-test/f.txt owner=root;touch'), 'files', /\[p\] files: bad owner 'root;touch'/],
    ['group with a newline-free shell word', pkg('', 'f.txt => /usr/share/safe-test/f.txt group=$(id)'), 'files', /\[p\] files: bad group '\$\(id\)'/],
    ['rpm License with a newline', pkg('license = MIT\n  Evil: header\n'), 'license', /\[p\] license: must be a single line/],
    ['rpm Vendor with a newline', pkg('vendor = ACME\n  Evil: header\n'), 'vendor', /\[p\] vendor: must be a single line/],
    ['maintainer without an address', pkg('').replace('maintainer = M <m@example.invalid>', 'maintainer = just a name'), 'maintainer', /\[p\] maintainer: expected 'Full Name <email@address>'/],
    ['script and script file both given', pkg('postinstall = true\npostinstall-file = post.sh\n'), 'postinstall-file', /\[p\] postinstall-file: give 'postinstall' \(the script itself\) or 'postinstall-file'/],
    ['script file missing', pkg('postinstall-file = missing.sh\n'), 'postinstall-file', /\[p\] postinstall-file: script file not found: .*missing\.sh/],
    ['script file without #!', pkg('postinstall-file = f.txt\n'), 'postinstall-file', /\[p\] postinstall-file: .*f\.txt must start with an interpreter line/],
  ])('%s', async (_n, cfg, needle, re) => {
    const p = project({ 'buildout.cfg': cfg, 'f.txt': 'f\n', 'post.sh': '#!/bin/sh\necho from-file\n' });
    const r = await kilnP(p.dir, ['plan']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(re);
    expect(r.stderr).toContain(`buildout.cfg:${lineOf(cfg, needle)}: `);
  });

  test('rpm: a Debian relation rpm cannot express is a load-time error naming the rpm-* option', async () => {
    const cfg = pkg('depends = foo (>= 1.0) [amd64] <!nocheck>\n');
    const p = project({ 'buildout.cfg': cfg, 'f.txt': 'f\n' });
    const r = await kilnP(p.dir, ['plan']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/\[p\] depends: cannot translate dependency 'foo \(>= 1\.0\) \[amd64\] <!nocheck>' for rpm/);
    // deb only: the same relation is fine
    p.write({ 'buildout.cfg': cfg + 'formats = deb\n' });
    expect((await kilnP(p.dir, ['plan'])).code).toBe(0);
  });

  test('maintainer scripts: a one-line value is the script even when a file of that name exists; NAME-file reads a file', async () => {
    const cfg = pkg('formats = deb\npostinstall = true\npostremove-file = post.sh\n');
    const p = project({ 'buildout.cfg': cfg, 'f.txt': 'f\n', true: '#!/bin/sh\necho this file must not become the script\n', 'post.sh': '#!/bin/sh\necho from-file\n' });
    const r = await kilnP(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    const deb = join(p.dir, 'out/parts/p', readdirSync(join(p.dir, 'out/parts/p')).find((n) => n.endsWith('.deb'))!);
    expect(execFileSync('dpkg-deb', ['-I', deb, 'postinst'], { encoding: 'utf8' })).toBe('#!/bin/sh\nset -e\ntrue\n');
    expect(execFileSync('dpkg-deb', ['-I', deb, 'postrm'], { encoding: 'utf8' })).toBe('#!/bin/sh\necho from-file\n');
    // the script file is an input: changing it rebuilds the package
    p.write({ 'post.sh': '#!/bin/sh\necho changed\n' });
    expect((await kilnP(p.dir, ['build'])).code).toBe(0);
    expect(execFileSync('dpkg-deb', ['-I', deb, 'postrm'], { encoding: 'utf8' })).toBe('#!/bin/sh\necho changed\n');
  });
});

describe('kiln:command options and the environment', () => {
  test('foo-bar, foo.bar and FOO_BAR on one KILN_OPT_ variable: an error naming both options', async () => {
    const cfg = `[buildout]\nparts = c\n[c]\nrecipe = kiln:command\ncommand = echo "$KILN_OPT_FOO_BAR" > "$OUT/v"\nfoo-bar = 1\nfoo.bar = 2\n`;
    const p = project({ 'buildout.cfg': cfg });
    const r = await kilnP(p.dir, ['plan']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toContain(`buildout.cfg:${lineOf(cfg, 'foo.bar')}: [c] foo.bar: options 'foo-bar' and 'foo.bar' both reach the script as $KILN_OPT_FOO_BAR`);
  });

  test('a 5 MB option value: a load-time error naming the option and its size (was: spawn E2BIG)', async () => {
    const big = 'x'.repeat(5 * 1024 * 1024);
    const cfg = `[buildout]\nparts = c\n[c]\nrecipe = kiln:command\ncommand = echo "$\${#KILN_OPT_PAYLOAD}" > "$OUT/v"\npayload = ${big}\n`;
    const p = project({ 'buildout.cfg': cfg });
    const r = await kilnP(p.dir, ['build']);
    expect(r.code, r.stderr.slice(0, 500)).toBe(3);
    expect(r.stderr).toContain(`buildout.cfg:${lineOf(cfg, 'payload')}: [c] payload: value is ${big.length} bytes: too big for the environment variable $KILN_OPT_PAYLOAD`);
    expect(r.stderr).not.toMatch(/E2BIG/);
  });

  test('run(): E2BIG names the variable and its size', async () => {
    const err = await run(['true'], { env: { KILN_HUGE_VALUE: 'y'.repeat(300_000) } }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/cannot run true: argument list and environment too long .*the largest is environment variable KILN_HUGE_VALUE, 300016 bytes/);
  });
});

describe('finding 6: no orphans, no stray secrets', () => {
  const longCfg = (part: string) => `[buildout]\nparts = ${part}\n[${part}]\nrecipe = kiln:command\ncommand =\n  sleep 600 &\n  bash -c 'sleep 600; echo never' &\n  echo started > "$OUT/started"\n  touch "$WORK/../started"\n  wait\n`;
  const started = (dir: string) => {
    const tmp = join(dir, 'out/.kiln/tmp');
    return existsSync(tmp) && readdirSync(tmp).some((d) => existsSync(join(tmp, d, 'started')));
  };

  test('kill -9 of kiln during a long part: no process of the part is left', async () => {
    const part = `long_${process.pid}_${Date.now()}`;
    const p = project({ 'buildout.cfg': longCfg(part) });
    const child = kilnAsync(p.dir, ['build']);
    await until('the part to start', () => started(p.dir));
    await until('the part processes', () => partProcesses(part).length >= 3);
    child.kill('SIGKILL');
    await exitOf(child);
    await until('the part processes to die', () => partProcesses(part).length === 0, 20_000);
    // the next build starts cleanly (stale lock taken over) and runs the part again
    const again = kilnAsync(p.dir, ['build']);
    await until('the part to start again', () => started(p.dir) && partProcesses(part).length >= 3);
    again.kill('SIGKILL');
    await exitOf(again);
    await until('the part processes to die', () => partProcesses(part).length === 0, 20_000);
  });

  test('SIGHUP stops a build like SIGTERM: exit 129, the part killed, the lock released', async () => {
    const part = `hup_${process.pid}_${Date.now()}`;
    const p = project({ 'buildout.cfg': longCfg(part) });
    const child = kilnAsync(p.dir, ['build']);
    let stderr = '';
    child.stderr!.on('data', (b) => (stderr += b));
    await until('the part to start', () => started(p.dir) && partProcesses(part).length >= 3);
    child.kill('SIGHUP');
    expect(await exitOf(child), stderr).toBe(129);
    expect(stderr).toMatch(/SIGHUP: stopping running parts/);
    expect(partProcesses(part)).toEqual([]);
    expect(existsSync(join(p.dir, 'out/.kiln/lock'))).toBe(false);
    expect(existsSync(join(p.dir, 'out/parts', part))).toBe(false);
  });

  test('kill -9 during kiln:gpg-key: the GnuPG home was under out/.kiln/tmp (0700), never $TMPDIR; it and its agent are gone', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'kiln-tmpdir-'));
    const cfg = `[buildout]\nparts = key\n[key]\nrecipe = kiln:gpg-key\nuid = Safety Test <safety@example.invalid>\nalgorithm = rsa4096\n`;
    const p = project({ 'buildout.cfg': cfg });
    const kilnTmp = join(p.dir, 'out/.kiln/tmp');
    const homes = () => (existsSync(kilnTmp) ? readdirSync(kilnTmp).filter((n) => /^gpg-\d+-/.test(n)).map((n) => join(kilnTmp, n)) : []);
    const child = kilnAsync(p.dir, ['build'], { TMPDIR: tmp });
    await until('the GnuPG home', () => homes().length === 1);
    const home = homes()[0]!;
    expect(statSync(home).mode & 0o777).toBe(0o700);
    await until('gpg to run in it', () => readdirSync(home).length > 0);
    child.kill('SIGKILL');
    await exitOf(child);
    // the watchdog stops the agent and removes the home (with any secret key in it)
    await until('the home to be removed', () => !existsSync(home), 30_000);
    await until('its agent to stop', () => agentsOf(home).length === 0, 30_000);
    expect(readdirSync(tmp)).toEqual([]);
    // and the next build makes the key
    const r = await kilnP(p.dir, ['build'], { TMPDIR: tmp });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(p.dir, 'out/parts/key/secret.asc'), 'utf8')).toMatch(/BEGIN PGP PRIVATE KEY BLOCK/);
    expect(homes()).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]);
  }, 180_000);

  test('kill -9 during package signing (gpg blocked on its passphrase FIFO, key imported): no secret key or agent left', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'kiln-tmpdir-'));
    const p = project({ 'f.txt': 'f\n' });
    const key = await generateTestKey(p.dir);
    const fifo = join(p.dir, 'pass.fifo');
    execFileSync('mkfifo', [fifo]);
    const cfg = `[buildout]\nparts = p\n[p]\nrecipe = kiln:package\nname = sign-test\nversion = 1.0-1\nsummary = s\nmaintainer = M <m@example.invalid>\nformats = deb\nsign = deb\nsigning-key = ${key}\nsigning-key-passphrase-file = pass.fifo\nfiles = f.txt => /usr/share/sign-test/f.txt\n`;
    p.write({ 'buildout.cfg': cfg });
    // two readers get an (empty) passphrase: kiln hashing its inputs, then gpg --import; the
    // signing gpg then waits on the FIFO with the secret key imported: kiln is killed right there
    const feeder = kilnFeeder(fifo, 2);
    const kilnTmp = join(p.dir, 'out/.kiln/tmp');
    const child = kilnAsync(p.dir, ['build'], { TMPDIR: tmp });
    let home = '';
    await until('gpg --detach-sign waiting for its passphrase', () => {
      // (other gpg processes on this machine are not ours: only those with a home in this out/)
      const signing = gpgProcesses().find((a) => a.includes('--detach-sign') && (a[a.indexOf('--homedir') + 1] ?? '').startsWith(kilnTmp + '/'));
      if (!signing) return false;
      home = signing[signing.indexOf('--homedir') + 1]!;
      return true;
    });
    expect(home.startsWith(kilnTmp + '/gpg-'), home).toBe(true);
    expect(readdirSync(join(home, 'private-keys-v1.d')).length).toBeGreaterThan(0);
    child.kill('SIGKILL');
    await exitOf(child);
    await feeder;
    await until('the home to be removed', () => !existsSync(home), 30_000);
    await until('no gpg or agent of it', () => agentsOf(home).length === 0 && !gpgProcesses().some((a) => a.includes(home)), 30_000);
    expect(readdirSync(tmp)).toEqual([]);
    // the next build (a plain passphrase file now) signs and leaves no home behind
    execFileSync('rm', [fifo]);
    writeFileSync(fifo, '');
    const r = await kilnP(p.dir, ['build'], { TMPDIR: tmp });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(kilnTmp) ? readdirSync(kilnTmp).filter((n) => n.startsWith('gpg-')) : []).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]);
  }, 180_000);

  test('a leftover GnuPG home with a running agent (kiln and its watchdog both killed) is reaped at the next start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-reap-'));
    const kilnTmp = join(dir, 'out/.kiln/tmp');
    mkdirSync(kilnTmp, { recursive: true });
    // a home as a killed kiln (pid 2^22 - 1: not running) leaves it, with a live agent and a secret key
    const home = join(kilnTmp, 'gpg-4194303-AbC123');
    mkdirSync(home, { mode: 0o700 });
    const key = await generateTestKey(dir);
    execFileSync('gpg', ['--homedir', home, '--batch', '--import', key], { stdio: 'ignore' });
    execFileSync('gpg-connect-agent', ['--homedir', home, '/bye'], { stdio: 'ignore' });
    await until('the agent', () => agentsOf(home).length > 0, 20_000);
    // a home of a live process is left alone
    const live = join(kilnTmp, `gpg-${process.pid}-XyZ789`);
    mkdirSync(live, { mode: 0o700 });
    const reaped = reapGnupgHomes(kilnTmp);
    expect(reaped).toContain(home);
    expect(reaped).not.toContain(live);
    expect(existsSync(home)).toBe(false);
    expect(existsSync(live)).toBe(true);
    await until('the agent to stop', () => agentsOf(home).length === 0, 20_000);
    // the CLI reaps at the start of a build
    mkdirSync(home, { mode: 0o700 });
    writeFileSync(join(dir, 'buildout.cfg'), `[buildout]\nparts = c\n[c]\nrecipe = kiln:command\ncommand = echo > "$OUT/x"\n`);
    const r = await kilnP(dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(home)).toBe(false);
    // `kiln clean` (whole and per part) stops the agent of a leftover home before removing it
    for (const args of [['clean'], ['clean', 'c']]) {
      mkdirSync(kilnTmp, { recursive: true });
      mkdirSync(home, { mode: 0o700 });
      execFileSync('gpg-connect-agent', ['--homedir', home, '/bye'], { stdio: 'ignore' });
      await until('the agent', () => agentsOf(home).length > 0, 20_000);
      const c = await kilnP(dir, args);
      expect(c.code, c.stderr).toBe(0);
      expect(existsSync(home)).toBe(false);
      await until(`the agent to stop after kiln ${args.join(' ')}`, () => agentsOf(home).length === 0, 20_000);
    }
  }, 120_000);

  test('Signer homes live under the GnuPG root with mode 0700 and are removed with their agent on close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-signer-'));
    const key = await generateTestKey(dir);
    const root = join(dir, 'out/.kiln/tmp');
    setGnupgRoot(root);
    try {
      const s = await Signer.open({ keyFile: key }, 1704067200);
      expect(s.homedir.startsWith(root + '/gpg-')).toBe(true);
      expect(statSync(s.homedir).mode & 0o777).toBe(0o700);
      writeFileSync(join(dir, 'm'), 'message\n');
      await s.detachSign(join(dir, 'm'), join(dir, 'm.asc'));
      await until('its agent', () => agentsOf(s.homedir).length > 0, 20_000);
      await s.close();
      expect(existsSync(s.homedir)).toBe(false);
      await until('its agent to stop', () => agentsOf(s.homedir).length === 0, 20_000);
      expect(spawnSync('gpg', ['--homedir', dir, '--batch', '--import', key], { stdio: 'ignore' }).status).toBe(0);
      expect(spawnSync('gpg', ['--homedir', dir, '--batch', '--verify', join(dir, 'm.asc'), join(dir, 'm')], { stdio: 'ignore' }).status).toBe(0);
      spawnSync('gpgconf', ['--homedir', dir, '--kill', 'all']);
    } finally {
      setGnupgRoot(undefined);
    }
  }, 120_000);

  test('a home that goes to $TMPDIR (GnuPG root too long for agent sockets) leaves a marker in the root; the reaper follows markers and does not list $TMPDIR', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-marker-'));
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const root = join(dir, 'r'.repeat(80), 'out/.kiln/tmp'); // longer than a socket path allows
    const oldTmp = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    setGnupgRoot(root);
    try {
      // a live home: in $TMPDIR, with its marker; removed with the marker on close
      const home = makeGnupgHome();
      expect(home.startsWith(join(tmp, `kiln-gpg-${process.pid}-`))).toBe(true);
      const marker = join(root, `tmpdir-${basename(home)}`);
      expect(readlinkSync(marker)).toBe(home);
      expect(reapGnupgHomes(root)).toEqual([]); // its process (this one) is alive
      await removeGnupgHome(home);
      expect(existsSync(home) || existsSync(marker)).toBe(false);
      // a killed run's home (pid 2^22 - 1: not running) with its marker: reaped through the marker
      const dead = join(tmp, 'kiln-gpg-4194303-AbC123');
      mkdirSync(dead, { mode: 0o700 });
      symlinkSync(dead, join(root, 'tmpdir-kiln-gpg-4194303-AbC123'));
      // a marker pointing at something that is not a kiln home: never followed
      const other = join(dir, 'precious');
      mkdirSync(other);
      symlinkSync(other, join(root, 'tmpdir-kiln-gpg-4194303-XyZ789'));
      // a home without a marker in $TMPDIR (library use): the CLI's reaper does not list $TMPDIR
      const unmarked = join(tmp, 'kiln-gpg-4194303-QqQ111');
      mkdirSync(unmarked, { mode: 0o700 });
      expect(reapGnupgHomes(root)).toEqual([dead]);
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(join(root, 'tmpdir-kiln-gpg-4194303-AbC123'))).toBe(false);
      expect(existsSync(other)).toBe(true);
      expect(existsSync(unmarked)).toBe(true);
      // without a root (library use) $TMPDIR's kiln homes are reaped
      setGnupgRoot(undefined);
      expect(reapGnupgHomes()).toEqual([unmarked]);
    } finally {
      setGnupgRoot(undefined);
      if (oldTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = oldTmp;
    }
  });
});

describe('locking', () => {
  test('an empty lock file is being written, not stale: kiln waits and then sees the holder', async () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = c\n[c]\nrecipe = kiln:command\ncommand = echo > "$OUT/x"\n` });
    const lock = join(p.dir, 'out/.kiln/lock');
    mkdirSync(join(p.dir, 'out/.kiln'), { recursive: true });
    writeFileSync(lock, '');
    // a leftover GnuPG home of a dead kiln: the new kiln removes it right before it takes the lock,
    // which tells this test that kiln has reached the lock
    const marker = join(p.dir, 'out/.kiln/tmp/gpg-4194303-AbC123');
    mkdirSync(marker, { recursive: true });
    const proc = kilnAsync(p.dir, ['build', '--no-wait']);
    let stderr = '';
    proc.stderr!.on('data', (b) => (stderr += b));
    const exited = exitOf(proc);
    await until('kiln to reach the lock', () => !existsSync(marker));
    await sleep(1000);
    // still waiting for the pid, not taken over
    expect(proc.exitCode, stderr).toBe(null);
    expect(existsSync(join(p.dir, 'out/parts/c'))).toBe(false);
    // the other kiln (here: this test process, which is alive) finishes writing its pid
    writeFileSync(lock, `${process.pid}\n`);
    const r = { code: await exited, stderr };
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toContain(`another kiln build (pid ${process.pid})`);
    expect(existsSync(join(p.dir, 'out/parts/c'))).toBe(false);
    // an empty lock file that stayed empty for long is stale: taken over
    writeFileSync(lock, '');
    const old = (Date.now() - 60_000) / 1000;
    utimesSync(lock, old, old);
    const ok = await kilnP(p.dir, ['build', '--no-wait']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(existsSync(lock)).toBe(false);
  });
});
