// kiln:gpg-key with seed-file: an Ed25519 OpenPGP key derived from a secret seed, identical in every
// build directory; GnuPG imports it, checks its self-signature, signs with it, and gpgv, apt's
// gpgv and rpm accept its signatures (the example distribution and storage stack use it).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { kiln, project } from './helpers/kiln.js';

const SEED = 'kiln test seed: 32 bytes or more of secret randomness\n';
const cfg = (extra = '') => `[buildout]\nparts = key\n[key]\nrecipe = kiln:gpg-key\nuid = kiln seeded test <seeded@example.invalid>\nalgorithm = ed25519\nseed-file = seed.bin\n${extra}`;

describe('kiln:gpg-key seed-file', () => {
  test('same seed, two directories: identical key files; gpg checks the self-signature, signs, gpgv verifies', () => {
    const dirs = [project({ 'seed.bin': SEED, 'buildout.cfg': cfg() }), project({ 'seed.bin': SEED, 'buildout.cfg': cfg() })];
    for (const p of dirs) {
      const r = kiln(p.dir, ['build']);
      expect(r.code, r.stderr).toBe(0);
    }
    const key = (p: (typeof dirs)[0], f: string) => readFileSync(join(p.dir, 'out/parts/key', f));
    for (const f of ['secret.asc', 'public.asc', 'public.gpg', 'RPM-GPG-KEY']) expect(key(dirs[0]!, f).equals(key(dirs[1]!, f)), f).toBe(true);
    expect(statSync(join(dirs[0]!.dir, 'out/parts/key/secret.asc')).mode & 0o077).toBe(0);
    // the secret never reaches the log
    const log = readFileSync(join(dirs[0]!.dir, 'out/logs/key.log'), 'utf8');
    expect(log).toMatch(/derived Ed25519 key [0-9A-F]{40}/);
    expect(log).not.toContain('PRIVATE KEY');

    const home = mkdtempSync(join(tmpdir(), 'kiln-gh-'));
    const gpg = (...a: string[]) => spawnSync('gpg', ['--homedir', home, '--batch', '--no-tty', ...a], { encoding: 'utf8' });
    try {
      expect(gpg('--import', join(dirs[0]!.dir, 'out/parts/key/secret.asc')).status).toBe(0);
      const sigs = gpg('--with-colons', '--check-sigs');
      expect(sigs.stdout).toMatch(/^pub:[^:]*:255:22:/m); // Ed25519 (EdDSA, algorithm 22)
      expect(sigs.stdout).toMatch(/^sig:!:/m); // the self-signature verifies
      expect(sigs.stdout).toMatch(/^uid:.*kiln seeded test <seeded@example\.invalid>/m);
      const msg = join(home, 'msg');
      writeFileSync(msg, 'hello\n');
      expect(gpg('--pinentry-mode', 'loopback', '--passphrase', '', '--detach-sign', '-o', `${msg}.sig`, msg).status).toBe(0);
      const v = spawnSync('gpgv', ['--keyring', join(dirs[1]!.dir, 'out/parts/key/public.gpg'), `${msg}.sig`, msg], { encoding: 'utf8' });
      expect(v.status, v.stderr).toBe(0);
    } finally {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'all']);
    }
  });

  test('another seed or uid gives another key; a changed seed file rebuilds the key', () => {
    const p = project({ 'seed.bin': SEED, 'buildout.cfg': cfg() });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    const a = readFileSync(join(p.dir, 'out/parts/key/public.gpg'));
    p.write({ 'seed.bin': SEED.replace('secret', 'Secret') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    const b = readFileSync(join(p.dir, 'out/parts/key/public.gpg'));
    expect(a.equals(b)).toBe(false);
    p.write({ 'buildout.cfg': cfg().replace('kiln seeded test', 'kiln other test') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    expect(readFileSync(join(p.dir, 'out/parts/key/public.gpg')).equals(b)).toBe(false);
  });

  test('bad inputs: a short seed, a missing seed, an RSA algorithm with a seed: exit 3 with file:line', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ 'seed.bin': 'short', 'buildout.cfg': cfg() }, /buildout\.cfg:\d+: \[key\] seed-file: .*has 5 bytes; at least 32/],
      [{ 'buildout.cfg': cfg() }, /buildout\.cfg:\d+: \[key\] seed-file: cannot read .*seed\.bin/],
      [{ 'seed.bin': SEED, 'buildout.cfg': cfg().replace('algorithm = ed25519', 'algorithm = rsa3072') }, /buildout\.cfg:\d+: \[key\] seed-file: a seeded key is an Ed25519 key/],
    ];
    for (const [files, re] of cases) {
      const p = project(files);
      const r = kiln(p.dir, ['build']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(re);
      expect(spawnSync('ls', [join(p.dir, 'out/parts')]).stdout.toString()).toBe('');
    }
  });
});

