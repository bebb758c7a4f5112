// Signed apt and rpm repositories, checked with apt-get (sandboxed root dir), gpgv and createrepo_c's output.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { generateTestKey } from '../src/lib/gpg.js';
import { kiln, project } from './helpers/kiln.js';

let keyDir: string;
let key: string;
beforeAll(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'kiln-key-'));
  key = await generateTestKey(keyDir);
}, 120_000);

/** A .deb made by dpkg-deb itself (the native writer has its own tests). */
function makeDeb(dir: string, name: string, version: string): string {
  const root = join(dir, `${name}-root`);
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(join(root, 'usr/share/doc', name), { recursive: true });
  writeFileSync(join(root, 'usr/share/doc', name, 'README'), `${name}\n`);
  writeFileSync(join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: kiln <kiln@example.invalid>\nDescription: test package ${name}\n long description\n`);
  const out = join(dir, `${name}_${version}_all.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '-b', root, out], { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } });
  return out;
}

/** apt-get confined to a directory: its own sources, lists and state. */
function apt(root: string, args: string[]) {
  const o = (k: string, v: string) => ['-o', `${k}=${v}`];
  return spawnSync('apt-get', [
    ...o('Dir', root), ...o('Dir::State::status', join(root, 'var/lib/dpkg/status')),
    ...o('Dir::Etc::SourceList', join(root, 'etc/apt/sources.list')), ...o('Dir::Etc::SourceParts', join(root, 'etc/apt/sources.list.d')),
    ...o('Dir::Etc::Trusted', join(root, 'etc/apt/trusted.gpg')), ...o('Dir::Etc::TrustedParts', join(root, 'etc/apt/trusted.gpg.d')),
    ...o('Debug::NoLocking', '1'), ...o('APT::Sandbox::User', 'root'), ...args,
  ], { encoding: 'utf8', cwd: root });
}

function aptRoot(sources: string): string {
  const root = mkdtempSync(join(tmpdir(), 'kiln-apt-'));
  for (const d of ['etc/apt/sources.list.d', 'etc/apt/trusted.gpg.d', 'var/lib/apt/lists/partial', 'var/cache/apt/archives/partial', 'var/lib/dpkg']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'var/lib/dpkg/status'), '');
  writeFileSync(join(root, 'etc/apt/sources.list'), '');
  writeFileSync(join(root, 'etc/apt/sources.list.d/kiln.sources'), sources);
  return root;
}

describe('kiln:apt-repo', () => {
  test('signed repository: apt-get update and download work; a tampered Packages or Release is rejected', () => {
    const p = project({});
    makeDeb(p.dir, 'alpha', '1.0-1');
    makeDeb(p.dir, 'beta', '2.0-1');
    p.write({ 'buildout.cfg': `[buildout]\nparts = repo\n[repo]\nrecipe = kiln:apt-repo\npackages = *.deb\nsigning-key = ${key}\ncodename = kiln-test\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    const repo = join(p.dir, 'out/parts/repo');
    for (const f of ['dists/kiln-test/InRelease', 'dists/kiln-test/Release.gpg', 'dists/kiln-test/main/binary-amd64/Packages.xz', 'pool/main/a/alpha/alpha_1.0-1_all.deb', 'archive-keyring.gpg']) {
      expect(existsSync(join(repo, f)), f).toBe(true);
    }
    // signatures verify with gpgv against the exported key
    expect(spawnSync('gpgv', ['--keyring', join(repo, 'archive-keyring.gpg'), join(repo, 'dists/kiln-test/Release.gpg'), join(repo, 'dists/kiln-test/Release')]).status).toBe(0);
    expect(spawnSync('gpgv', ['--keyring', join(repo, 'archive-keyring.gpg'), join(repo, 'dists/kiln-test/InRelease')]).status).toBe(0);

    const sources = readFileSync(join(repo, 'kiln.sources'), 'utf8');
    expect(sources).toMatch(/Signed-By: .*archive-keyring\.gpg/);
    const root = aptRoot(sources);
    const up = apt(root, ['update']);
    expect(up.status, up.stdout + up.stderr).toBe(0);
    const dl = apt(root, ['download', 'beta']);
    expect(dl.status, dl.stderr).toBe(0);
    expect(existsSync(join(root, 'beta_2.0-1_all.deb'))).toBe(true);

    // tampered Packages indexes (all compressions): hash mismatch
    const bad = join(p.dir, 'tampered');
    cpSync(repo, bad, { recursive: true, dereference: true });
    const idx = join(bad, 'dists/kiln-test/main/binary-amd64');
    appendFileSync(join(idx, 'Packages'), '\nPackage: evil\nVersion: 6.6.6\nArchitecture: all\nFilename: pool/evil.deb\n');
    execFileSync('sh', ['-c', 'gzip -9nc Packages > Packages.gz && xz -9c Packages > Packages.xz'], { cwd: idx });
    const root2 = aptRoot(sources.replace(repo, bad).replace(join(repo, 'archive-keyring.gpg'), join(bad, 'archive-keyring.gpg')));
    const up2 = apt(root2, ['update']);
    expect(up2.status).toBe(100);
    expect(up2.stdout + up2.stderr).toMatch(/Hash Sum mismatch|File has unexpected size/);

    // tampered Release: the signature no longer verifies
    const bad2 = join(p.dir, 'tampered2');
    cpSync(repo, bad2, { recursive: true, dereference: true });
    const inRel = join(bad2, 'dists/kiln-test/InRelease');
    writeFileSync(inRel, readFileSync(inRel, 'utf8').replace('Suite: stable', 'Suite: stab1e'));
    const root3 = aptRoot(sources.replace(repo, bad2).replace(join(repo, 'archive-keyring.gpg'), join(bad2, 'archive-keyring.gpg')));
    const up3 = apt(root3, ['update']);
    expect(up3.status).toBe(100);
    expect(up3.stdout + up3.stderr).toMatch(/BADSIG|not signed|signatures were invalid|NO_PUBKEY|invalid/i);
  });

  test('reproducible: the same packages and key give identical repository files', () => {
    const a = project({});
    const b = project({});
    for (const p of [a, b]) {
      makeDeb(p.dir, 'alpha', '1.0-1');
      p.write({ 'buildout.cfg': `[buildout]\nparts = repo\n[repo]\nrecipe = kiln:apt-repo\npackages = *.deb\nsigning-key = ${key}\nby-hash = true\n` });
      expect(kiln(p.dir, ['build']).code).toBe(0);
    }
    for (const f of ['dists/bookworm/Release', 'dists/bookworm/InRelease', 'dists/bookworm/Release.gpg', 'dists/bookworm/main/binary-amd64/Packages.xz', 'dists/bookworm/main/binary-amd64/Packages.gz']) {
      expect(readFileSync(join(a.dir, 'out/parts/repo', f)).equals(readFileSync(join(b.dir, 'out/parts/repo', f))), f).toBe(true);
    }
    expect(readFileSync(join(a.dir, 'out/parts/repo/dists/bookworm/Release'), 'utf8')).toMatch(/Acquire-By-Hash: yes/);
  });

  test('url: kiln.sources and kiln.repo are location-independent (the key inline) and apt-get accepts the inline key', () => {
    const served = mkdtempSync(join(tmpdir(), 'kiln-served-'));
    const sources: string[] = [];
    for (const p of [project({}), project({})]) {
      makeDeb(p.dir, 'alpha', '1.0-1');
      p.write({
        'buildout.cfg': `[buildout]\nparts = repo\n[repo]\nrecipe = kiln:apt-repo\npackages = *.deb\nsigning-key = ${key}\nurl = file://${served}\n`,
      });
      const r = kiln(p.dir, ['build']);
      expect(r.code, r.stderr).toBe(0);
      sources.push(readFileSync(join(p.dir, 'out/parts/repo/kiln.sources'), 'utf8'));
      cpSync(join(p.dir, 'out/parts/repo'), served, { recursive: true, dereference: true });
    }
    expect(sources[0]).toBe(sources[1]);
    expect(sources[0]).toMatch(new RegExp(`^URIs: file://${served}$`, 'm'));
    expect(sources[0]).toMatch(/^Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n \.\n/m);
    const root = aptRoot(sources[0]!);
    const up = apt(root, ['update']);
    expect(up.status, up.stdout + up.stderr).toBe(0);
    expect(apt(root, ['download', 'alpha']).status).toBe(0);
    // a URL with spaces or quotes would break the client files: a config error at load time
    for (const [url, re] of [['http://x/ y', /url: expected one URL or path/], ['repo/dir', /url: not an absolute http\(s\), ftp or file URL/], ["file:///srv/a'b", /url: not an absolute/]] as const) {
      const bad = project({ 'buildout.cfg': `[buildout]\nparts = repo\n[repo]\nrecipe = kiln:apt-repo\npackages = *.deb\nurl = ${url}\n` });
      const rb = kiln(bad.dir, ['build']);
      expect(rb.code, url).toBe(3);
      expect(rb.stderr).toMatch(/buildout\.cfg:\d+: \[repo\] /);
      expect(rb.stderr).toMatch(re);
    }
  });

  test('a pattern matching nothing is an error naming the option', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = repo\n[repo]\nrecipe = kiln:apt-repo\npackages = nothing/*.deb\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/buildout\.cfg:\d+: \[repo\] packages: no file matches .*nothing\/\*\.deb/);
  });
});
