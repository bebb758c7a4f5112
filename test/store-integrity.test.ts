// Issue 11, findings 1, 2, 4 and 5: store entries carry manifests and are verified (poisoned store
// entries, shared parts, download cache and chroot cache are detected, reported with the file,
// quarantined and never reach a dependant); prune and clean delete through a trash directory
// (kill -9 mid-way leaves whole entries or none); a full disk is a clear failure of the part;
// shared parts commit across file systems. All through the real bin/kiln.js.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { kiln, kilnAsync, kilnP, parts, project } from './helpers/kiln.js';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** sha256 of every file below dir (relative path -> hash; symlinks by target). */
export function treeHashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const rec = (rel: string) => {
    for (const n of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(dir, r));
      if (st.isDirectory()) rec(r);
      else if (st.isSymbolicLink()) out[r] = 'link';
      else out[r] = sha(readFileSync(join(dir, r)));
    }
  };
  rec('');
  return out;
}

const storeEntries = (dir: string) => (existsSync(join(dir, 'out/.kiln/store')) ? readdirSync(join(dir, 'out/.kiln/store')) : []);
const quarantined = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => !n.endsWith('.why')) : []);

// a: many files and one read by its dependant; b: copies a's file (so poisoned bytes would show)
const cfg = (version: string, bVersion = 'b1', files = 200) => `[buildout]
parts = b
[a]
recipe = kiln:command
version = ${version}
command =
  seq 1 ${files * 10} | split -l 10 -a 4 - "$OUT/f"
  mkdir -p "$OUT/sub" && echo "$KILN_OPT_VERSION" > "$OUT/sub/data"
  ln -s sub/data "$OUT/link"
[b]
recipe = kiln:command
version = ${bVersion}
in = \${a:location}
command = cat "$KILN_OPT_IN/sub/data" "$KILN_OPT_IN/faaaa" > "$OUT/copy"; echo "$KILN_OPT_VERSION" >> "$OUT/copy"
`;

describe('finding 2: modified outputs are detected', () => {
  test('an edited file in the store entry: plan names it, build quarantines and rebuilds, the dependant gets clean bytes', () => {
    const p = project({ 'buildout.cfg': cfg('v1') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    const clean = treeHashes(join(p.dir, 'out/parts/a'));
    const [sig] = storeEntries(p.dir).filter((s) => readFileSync(join(p.dir, 'out/parts/a/sub/data'), 'utf8') && existsSync(join(p.dir, 'out/.kiln/store', s, 'out/sub/data')));
    const victim = join(p.dir, 'out/.kiln/store', sig!, 'out/sub/data');
    writeFileSync(victim, 'poisoned\n');
    const pl = kiln(p.dir, ['plan']);
    expect(pl.code).toBe(0);
    expect(pl.stdout).toMatch(/\* +a \(command\) build\n.*sub\/data: size changed \(3 -> 9 bytes\)/);
    p.write({ 'buildout.cfg': cfg('v1', 'b2') }); // the dependant rebuilds in the same run
    const r = kiln(p.dir, ['build', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(parts(r, 'part-start')).toEqual(['a', 'b']);
    const why = r.events.find((e) => e.type === 'part-start' && e.part === 'a')!.reason as string;
    expect(why).toMatch(/sub\/data: size changed \(3 -> 9 bytes\).*quarantined in .*out\/\.kiln\/quarantine\//);
    expect(treeHashes(join(p.dir, 'out/parts/a'))).toEqual(clean);
    expect(readFileSync(join(p.dir, 'out/parts/b/copy'), 'utf8')).toBe('v1\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\nb2\n');
    const q = quarantined(join(p.dir, 'out/.kiln/quarantine'));
    expect(q).toHaveLength(1);
    expect(readFileSync(join(p.dir, 'out/.kiln/quarantine', q[0]!, 'out/sub/data'), 'utf8')).toBe('poisoned\n');
    expect(kiln(p.dir, ['verify']).code).toBe(0);
  });

  test('a deleted declared output, a changed mode and an added file are detected; kiln verify reports each file and exits 1', () => {
    const p = project({ 'buildout.cfg': cfg('v1') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    const clean = treeHashes(join(p.dir, 'out/parts/a'));
    unlinkSync(join(p.dir, 'out/parts/a/faaab'));
    expect(kiln(p.dir, ['plan']).stdout).toMatch(/faaab: missing/);
    const v = kiln(p.dir, ['verify', 'a']);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/verify: a \([0-9a-f]{16}\): faaab: missing/);
    expect(v.stderr).toMatch(/quarantined in .*quarantine/);
    // quarantined: the next build rebuilds it
    const r = kiln(p.dir, ['build', '--json']);
    expect(r.code).toBe(0);
    expect(parts(r, 'part-start')).toEqual(['a']);
    expect(treeHashes(join(p.dir, 'out/parts/a'))).toEqual(clean);

    spawnSync('chmod', ['0777', join(p.dir, 'out/parts/a/faaac')]);
    writeFileSync(join(p.dir, 'out/parts/a/sub/extra'), 'x');
    const v2 = kiln(p.dir, ['verify']);
    expect(v2.code).toBe(1);
    expect(v2.stderr).toMatch(/faaac: mode changed \(644 -> 777\)/);
    expect(v2.stderr).toMatch(/sub\/extra: not in the manifest \(added\)/);
    expect(kiln(p.dir, ['build']).code).toBe(0);
    expect(treeHashes(join(p.dir, 'out/parts/a'))).toEqual(clean);
    const ok = kiln(p.dir, ['verify']);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/verify: \d+ entries, \d+ files, .* match their manifests/);
  });

  test('restoring a kept entry hashes it: a poisoned one is quarantined and rebuilt, never linked', () => {
    const p = project({ 'buildout.cfg': cfg('v1') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    const v1 = treeHashes(join(p.dir, 'out/parts/a'));
    const sigV1 = readFileSync(join(p.dir, 'out/parts/a/sub/data'), 'utf8') && (lstatSync(join(p.dir, 'out/parts/a')).isSymbolicLink() ? spawnSync('readlink', [join(p.dir, 'out/parts/a')], { encoding: 'utf8' }).stdout.trim() : '');
    p.write({ 'buildout.cfg': cfg('v2') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    // poison the kept v1 entry with the same size and the mtime restored (only a hash can see it)
    const victim = join(p.dir, 'out/parts', sigV1, 'faaad');
    const before = lstatSync(victim);
    const bytes = readFileSync(victim);
    bytes[0] = bytes[0]! ^ 1;
    writeFileSync(victim, bytes);
    spawnSync('touch', ['-d', `@${before.mtimeMs / 1000}`, victim]);
    p.write({ 'buildout.cfg': cfg('v1') });
    expect(kiln(p.dir, ['plan']).stdout).toMatch(/<> a \(command\) restore/);
    const r = kiln(p.dir, ['build', '--json']);
    expect(r.code).toBe(0);
    expect(parts(r, 'part-cached')).not.toContain('a');
    expect(r.events.find((e) => e.type === 'part-start' && e.part === 'a')!.reason).toMatch(/faaad: content differs \(sha256\)/);
    expect(treeHashes(join(p.dir, 'out/parts/a'))).toEqual(v1);
    expect(readFileSync(join(p.dir, 'out/parts/b/copy'), 'utf8')).toMatch(/^v1\n1\n/);
  });

  test('a shared part edited in the cache is detected (by the building project and by another one), quarantined there and rebuilt', () => {
    const shared = `[buildout]\nparts = user\n[s]\nrecipe = kiln:command\nshared = true\ncommand = echo good > "$OUT/data"; seq 1 50 > "$OUT/list"\n[user]\nrecipe = kiln:command\nv = VER\nin = \${s:location}\ncommand = cat "$KILN_OPT_IN/data" > "$OUT/copy"\n`;
    const p1 = project({ 'buildout.cfg': shared.replace('VER', '1') });
    const cache = join(p1.dir, 'shared-cache');
    expect(kiln(p1.dir, ['build', '--cache', cache]).code).toBe(0);
    const sharedRoot = join(cache, 'shared', 's');
    const [sig] = readdirSync(sharedRoot);
    const data = join(sharedRoot, sig!, 'out/data');
    writeFileSync(data, 'evil\n');
    // the project that built it: the cheap check sees the change
    const pl = kiln(p1.dir, ['plan', '--cache', cache]);
    expect(pl.stdout).toMatch(/\* +s \(command\) build\n.*data: content differs/);
    // another project reusing it hashes it first
    const p2 = project({ 'buildout.cfg': shared.replace('VER', '2') });
    const r = kiln(p2.dir, ['build', '--cache', cache, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(parts(r, 'part-start')).toEqual(['s', 'user']);
    expect(r.events.find((e) => e.type === 'part-start' && e.part === 's')!.reason).toMatch(/data: content differs.*quarantined in .*shared\/\.quarantine/);
    expect(readFileSync(join(p2.dir, 'out/parts/user/copy'), 'utf8')).toBe('good\n');
    expect(readFileSync(data, 'utf8')).toBe('good\n');
    expect(quarantined(join(cache, 'shared', '.quarantine'))).toHaveLength(1);
    // the first project now sees a sound entry again
    expect(kiln(p1.dir, ['build', '--cache', cache, '--json']).events.filter((e) => e.type === 'part-start')).toEqual([]);
  });
});

describe('finding 2: the download cache hashes what it hands out', () => {
  let server: Server;
  let hits = 0;
  const body = Buffer.from('the real upstream tarball\n'.repeat(100));
  afterAll(() => server?.close());

  test('an overwritten downloads/sha256/<sha> is quarantined and fetched again; offline it is an error, never handed out', async () => {
    server = createServer((req, res) => {
      hits++;
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const conf = (v: string) => `[buildout]\nparts = user\n[src]\nrecipe = kiln:download\nurl = http://127.0.0.1:${port}/up.tar\nsha256 = ${sha(body)}\n[user]\nrecipe = kiln:command\nv = ${v}\nin = \${src:location}\ncommand = sha256sum < "$KILN_OPT_IN/up.tar" > "$OUT/sum"\n`;
    const p1 = project({ 'buildout.cfg': conf('1') });
    const cache = join(p1.dir, 'dl-cache');
    expect((await kilnP(p1.dir, ['build', '--cache', cache])).code).toBe(0);
    expect(hits).toBe(1);
    const cached = join(cache, 'downloads/sha256', sha(body));
    writeFileSync(cached, 'poisoned bytes');
    // offline: the damaged file is not used
    const p2 = project({ 'buildout.cfg': conf('2') });
    const off = await kilnP(p2.dir, ['build', '--cache', cache, '--offline']);
    expect(off.code).toBe(1);
    expect(off.stderr).toMatch(/damaged .*quarantined/);
    expect(off.stderr).toMatch(/offline, and http:\/\/127\.0\.0\.1:\d+\/up\.tar is not in the download cache/);
    expect(existsSync(join(p2.dir, 'out/parts/src'))).toBe(false);
    writeFileSync(cached, 'poisoned again');
    const on = await kilnP(p2.dir, ['build', '--cache', cache]);
    expect(on.code, on.stderr).toBe(0);
    expect(hits).toBe(2);
    expect(readFileSync(join(p2.dir, 'out/parts/src/up.tar'))).toEqual(body);
    expect(readFileSync(join(p2.dir, 'out/parts/user/sum'), 'utf8')).toBe(`${sha(body)}  -\n`);
    expect(readFileSync(cached)).toEqual(body);
    expect(quarantined(join(cache, 'downloads/.quarantine'))).toHaveLength(2);
  });
});

describe('finding 1: crash-safe deletion', () => {
  /** Start `args`, kill -9 as soon as the trash directory holds something (or after the run). */
  async function killDuringDelete(dir: string, args: string[]): Promise<boolean> {
    const child = kilnAsync(dir, args);
    const trash = join(dir, 'out/.kiln/trash');
    let caught = false;
    const exited = new Promise((r) => child.once('exit', r));
    let done = false;
    void exited.then(() => (done = true));
    while (!done) {
      if (existsSync(trash) && readdirSync(trash).length > 0) {
        child.kill('SIGKILL');
        caught = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    await exited;
    return caught;
  }

  test('kill -9 during prune and during clean: no partial entry is ever restored; verify passes; the next build equals a clean one', async () => {
    const p = project({ 'buildout.cfg': cfg('v1', 'b1', 1500) });
    const ref = project({ 'buildout.cfg': cfg('v3', 'b1', 1500) });
    expect(kiln(ref.dir, ['build']).code).toBe(0);
    const want = { a: treeHashes(join(ref.dir, 'out/parts/a')), b: treeHashes(join(ref.dir, 'out/parts/b')) };
    expect(kiln(p.dir, ['build']).code).toBe(0);
    p.write({ 'buildout.cfg': cfg('v2', 'b1', 1500) });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    // v3: v1's entries are pruned (15,000 files): kill -9 while they are being deleted
    p.write({ 'buildout.cfg': cfg('v3', 'b1', 1500) });
    let caught = 0;
    caught += (await killDuringDelete(p.dir, ['build'])) ? 1 : 0;
    for (const sig of storeEntries(p.dir)) expect(existsSync(join(p.dir, 'out/.kiln/store', sig, 'manifest.json'))).toBe(true);
    const v = kiln(p.dir, ['verify']);
    expect(v.code, v.stderr).toBe(0);
    expect(kiln(p.dir, ['build']).code).toBe(0);
    // emptied at the start (a prune of this build may leave the empty directory behind)
    const trash = join(p.dir, 'out/.kiln/trash');
    expect(existsSync(trash) ? readdirSync(trash) : []).toEqual([]);
    expect({ a: treeHashes(join(p.dir, 'out/parts/a')), b: treeHashes(join(p.dir, 'out/parts/b')) }).toEqual(want);

    // kill -9 during `kiln clean`, then build: outputs equal the clean build
    caught += (await killDuringDelete(p.dir, ['clean'])) ? 1 : 0;
    expect(kiln(p.dir, ['verify']).code).toBe(0);
    const r = kiln(p.dir, ['build', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect({ a: treeHashes(join(p.dir, 'out/parts/a')), b: treeHashes(join(p.dir, 'out/parts/b')) }).toEqual(want);
    expect(caught).toBeGreaterThan(0);
  });

  test('a half-deleted entry (files gone, as an in-place rm -r leaves it) is never restored as complete', () => {
    const p = project({ 'buildout.cfg': cfg('v1') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    const clean = treeHashes(join(p.dir, 'out/parts/a'));
    const link = spawnSync('readlink', [join(p.dir, 'out/parts/a')], { encoding: 'utf8' }).stdout.trim();
    p.write({ 'buildout.cfg': cfg('v2') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    const entry = join(p.dir, 'out/parts', link);
    for (const n of readdirSync(entry).filter((n) => n.startsWith('f')).slice(0, 100)) unlinkSync(join(entry, n));
    // and one with its manifest gone too (rm -r got that far): incomplete by definition
    p.write({ 'buildout.cfg': cfg('v1') });
    const r = kiln(p.dir, ['build', '--json']);
    expect(r.code).toBe(0);
    expect(r.events.find((e) => e.type === 'part-start' && e.part === 'a')!.reason).toMatch(/faaaa: missing/);
    expect(treeHashes(join(p.dir, 'out/parts/a'))).toEqual(clean);
    p.write({ 'buildout.cfg': cfg('v2') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    const sigs = storeEntries(p.dir);
    const v1sig = link.split('/').slice(-2, -1)[0]!;
    expect(sigs).toContain(v1sig);
    unlinkSync(join(p.dir, 'out/.kiln/store', v1sig, 'manifest.json'));
    rmSync(join(p.dir, 'out/.kiln/store', v1sig, 'out/sub'), { recursive: true });
    p.write({ 'buildout.cfg': cfg('v1') });
    expect(kiln(p.dir, ['plan']).stdout).toMatch(/\* +a \(command\) build\n(.*\n)*.*incomplete store entry/);
    const r2 = kiln(p.dir, ['build', '--json']);
    expect(r2.code).toBe(0);
    expect(parts(r2, 'part-start')).toContain('a');
    expect(treeHashes(join(p.dir, 'out/parts/a'))).toEqual(clean);
  });
});

// --- tmpfs mounts (we are root in CI; skipped with a message when mounting is not allowed) ---
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
});
function tmpfs(sizeKiB: number): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.warn(`tmpfs mount not allowed here (${(r.stderr || r.error?.message || '').trim()}): disk-full and cross-device tests skipped`);
    return undefined;
  }
  mounts.push(dir);
  return dir;
}
const canMount = (() => {
  const d = tmpfs(64);
  return d !== undefined;
})();

describe('finding 4: a full disk', () => {
  test.skipIf(!canMount)('a part that fills the disk, then prints: clear error, nothing committed or linked, no lock, staging gone, exit 1', () => {
    const fs = tmpfs(4096)!;
    const p = project({
      'buildout.cfg': `[buildout]\nparts = big\n[big]\nrecipe = kiln:command\ncommand =\n  head -c 8M /dev/zero > "$OUT/big" || true\n  for i in $(seq 1 2000); do echo "line $i of output after the disk is full"; done\n  exit 0\n`,
    });
    const out = join(fs, 'out');
    const r = kiln(p.dir, ['build', '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    const failed = r.events.find((e) => e.type === 'part-failed')!;
    expect(failed.error).toMatch(/no space left on device while writing .*(big|\.log)/);
    expect(existsSync(join(out, '.kiln/lock'))).toBe(false);
    expect(readdirSync(join(out, '.kiln/tmp'))).toEqual([]);
    expect(existsSync(join(out, '.kiln/store')) ? readdirSync(join(out, '.kiln/store')) : []).toEqual([]);
    expect(existsSync(join(out, 'parts/big'))).toBe(false);
  });

  test.skipIf(!canMount)('the state file write hitting ENOSPC after the commit: the part is built and linked (not failed); the run fails only on its release evidence; the next build finds it up to date', () => {
    const fs = tmpfs(2048)!;
    const out = join(fs, 'out');
    const filler = join(fs, 'filler');
    // a long option makes the state file (which records resolved options) many pages long
    const pad = 'x'.repeat(60_000);
    const p = project({
      'buildout.cfg': `[buildout]\nparts = a\n[a]\nrecipe = kiln:command\npad = ${pad}\nfiller = ${filler}\ncommand =\n  echo ok > "$OUT/f"\n  avail=$(df --output=avail -B1 "$(dirname "$KILN_OPT_FILLER")" | tail -1)\n  fallocate -l $((avail - 12288)) "$KILN_OPT_FILLER"\n`,
    });
    const r = kiln(p.dir, ['build', '-o', out, '--json']);
    // the part is done and linked; the state write is a warning; the release evidence (written
    // after the build, docs/evidence.md) cannot be written on the full disk: that fails the run
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/warning: could not write .*state\.json \(no space left on device while writing/);
    expect(r.stderr).toMatch(/error: release evidence: .*(ENOSPC|no space left)/);
    expect(parts(r, 'part-done')).toEqual(['a']);
    expect(parts(r, 'part-failed')).toEqual([]);
    expect(readFileSync(join(out, 'parts/a/f'), 'utf8')).toBe('ok\n');
    expect(existsSync(join(out, '.kiln/lock'))).toBe(false);
    rmSync(filler);
    const again = kiln(p.dir, ['build', '-o', out, '--json']);
    expect(again.code).toBe(0);
    expect(parts(again, 'part-start')).toEqual([]);
  });
});

describe('finding 5: shared parts across file systems', () => {
  test.skipIf(!canMount)('--cache on another file system: the shared part is copied there, verified and reused', () => {
    const fs = tmpfs(65536)!;
    const cache = join(fs, 'cache');
    mkdirSync(cache);
    const conf = (v: string) => `[buildout]\nparts = user\n[s]\nrecipe = kiln:command\nshared = true\ncommand = seq 1 1000 | split -l 10 - "$OUT/x"; ln -s xaa "$OUT/first"; chmod 0755 "$OUT/xab"\n[user]\nrecipe = kiln:command\nv = ${v}\nin = \${s:location}\ncommand = cat "$KILN_OPT_IN/first" > "$OUT/copy"\n`;
    const p1 = project({ 'buildout.cfg': conf('1') });
    const r = kiln(p1.dir, ['build', '--cache', cache, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const root = join(cache, 'shared', 's');
    const [sig] = readdirSync(root);
    expect(lstatSync(join(root, sig!, 'out/first')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(root, sig!, 'out/xab')).mode & 0o777).toBe(0o755);
    expect(readdirSync(join(p1.dir, 'out/.kiln/tmp'))).toEqual([]);
    const p2 = project({ 'buildout.cfg': conf('2') });
    const r2 = kiln(p2.dir, ['build', '--cache', cache, '--json']);
    expect(r2.code).toBe(0);
    expect(parts(r2, 'part-start')).toEqual(['user']);
    expect(readFileSync(join(p2.dir, 'out/parts/user/copy'), 'utf8')).toBe('1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n');
    expect(kiln(p2.dir, ['verify', 's', '--cache', cache]).code).toBe(0);
  });
});

describe('chroot cache', () => {
  test('a damaged cached chroot tarball is quarantined with the file named, and never linked into the part', async () => {
    const { recipe } = await import('../src/kinds/chroot.js');
    const { buildManifest, writeManifest, CACHE_MANIFEST } = await import('../src/lib/manifest.js');
    const { makeContext } = await import('./helpers/context.js');
    const defaults = Object.fromEntries(Object.entries(recipe.options).flatMap(([k, s]) => (s.default !== undefined ? [[k, s.default]] : [])));
    const cacheDir = mkdtempSync(join(tmpdir(), 'kiln-chroot-cache-'));
    const ctx = makeContext('bookworm', { ...defaults }, { cacheDir });
    const { chrootKey } = await import('../src/kinds/chroot.js');
    // a cache entry as an earlier run left it (a small tarball stands in for the root file system)
    const key = chrootKey(ctx, ctx.sourceDateEpoch);
    const entry = join(cacheDir, 'chroots', key);
    mkdirSync(join(entry, 'etc'), { recursive: true });
    writeFileSync(join(entry, 'etc/debian_version'), '12.0\n');
    spawnSync('tar', ['-C', entry, '-cf', join(entry, 'rootfs.tar'), 'etc']);
    rmSync(join(entry, 'etc'), { recursive: true });
    writeFileSync(join(entry, 'manifest'), 'base-files 12.4 amd64\n');
    writeManifest(join(entry, CACHE_MANIFEST), await buildManifest(entry, [CACHE_MANIFEST]));
    // a sound entry is a hit: linked, no bootstrapper
    await recipe.install(ctx);
    expect(readFileSync(join(ctx.staging, 'manifest'), 'utf8')).toBe('base-files 12.4 amd64\n');
    // poisoned (same size): detected by hash, quarantined, a rebuild starts (interrupted here)
    const ctx2 = makeContext('bookworm2', { ...defaults }, { cacheDir });
    const tar = readFileSync(join(entry, 'rootfs.tar'));
    tar[600] = tar[600]! ^ 0xff;
    spawnSync('chmod', ['u+w', join(entry, 'rootfs.tar')]);
    writeFileSync(join(entry, 'rootfs.tar'), tar);
    // the rebuild would run mmdebstrap: stop it at its first command
    ctx2.run = () => Promise.reject(new Error('bootstrapper not run in this test'));
    await expect(recipe.install(ctx2)).rejects.toThrow(/bootstrapper not run/);
    const log = existsSync(ctx2.logFile) ? readFileSync(ctx2.logFile, 'utf8') : '';
    expect(log).toMatch(/cache entry .*differs from its manifest \(rootfs\.tar: content differs \(sha256\)\): quarantined in/);
    expect(existsSync(join(ctx2.staging, 'rootfs.tar'))).toBe(false);
    expect(quarantined(join(cacheDir, 'chroots/.quarantine'))).toHaveLength(1);
    rmSync(cacheDir, { recursive: true, force: true });
  });
});
