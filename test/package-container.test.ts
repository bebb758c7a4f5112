// Issue 3 in a clean bookworm container: apt-get update && apt-get install from the signed repository
// kiln made (and a tampered index rejected), and dpkg install / upgrade / remove / purge with
// the maintainer scripts running for real.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { generateTestKey } from '../src/lib/gpg.js';
import { kilnP, project } from './helpers/kiln.js';

const env = { KILN_CACHE_DIR: join(process.env.HOME ?? '/root', '.cache', 'kiln') };

const cfg = (version: string, key: string) => `[buildout]
parts = bookworm repo

[bookworm]
recipe = kiln:chroot
suite = bookworm
variant = minbase
image = true

[tool]
recipe = kiln:command
version = ${version}
command =
  printf '#!/bin/sh\\necho "tool %s"\\n' "$KILN_OPT_VERSION" > "$OUT/tool"
  printf 'setting = default\\n' > "$OUT/tool.conf"

[pkg]
recipe = kiln:package
formats = deb
name = kiln-tool
version = \${tool:version}-1
summary = Test tool
maintainer = Kiln Tests <tests@example.invalid>
files =
  \${tool:location}/tool => /usr/bin/kiln-tool mode=0755
  \${tool:location}/tool.conf => /etc/kiln-tool.conf
preinstall = echo "preinst $*" >> /var/log/kiln-tool.log
postinstall = echo "postinst $*" >> /var/log/kiln-tool.log
preremove = echo "prerm $*" >> /var/log/kiln-tool.log
postremove = echo "postrm $*" >> /var/log/kiln-tool.log

[repo]
recipe = kiln:apt-repo
packages = \${pkg:location}/*.deb
signing-key = ${key}
`;

let p1: ReturnType<typeof project>;
let p2: ReturnType<typeof project>;
let image: string;
beforeAll(async () => {
  const key = await generateTestKey(mkdtempSync(join(tmpdir(), 'kiln-key-')));
  p1 = project({ 'buildout.cfg': cfg('1.0', key) });
  p2 = project({ 'buildout.cfg': cfg('2.0', key) });
  for (const p of [p1, p2]) {
    const r = await kilnP(p.dir, ['build'], env);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  image = readFileSync(join(p1.dir, 'out/parts/bookworm/image-tag'), 'utf8').trim();
}, 300_000);

/** sh -c script in a throw-away container from the bookworm chroot, with host dirs mounted at the same paths. */
function inContainer(script: string, mounts: string[]) {
  const args = ['run', '--rm', '--network', 'none', '--label', 'kiln=1'];
  for (const m of mounts) args.push('-v', `${m}:${m}:ro`);
  return spawnSync('docker', [...args, image, 'sh', '-ec', script], { encoding: 'utf8', timeout: 300_000 });
}

const repoOf = (p: ReturnType<typeof project>) => execFileSync('readlink', ['-f', join(p.dir, 'out/parts/repo')], { encoding: 'utf8' }).trim();

describe('in a clean bookworm container', () => {
  test('apt-get update && apt-get install from the signed repository; a tampered Packages is rejected', async () => {
    const repo = repoOf(p1);
    // the sources entry names the repository's location; mount the store entry there
    const sources = readFileSync(join(repo, 'kiln.sources'), 'utf8');
    const loc = /^URIs: file:\/\/(.*)$/m.exec(sources)![1]!;
    const setup = `rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; cp ${loc}/kiln.sources /etc/apt/sources.list.d/kiln.sources`;
    const mounts = (dir: string) => ['-v', `${dir}:${loc}:ro`];
    const run = (dir: string, script: string) =>
      spawnSync('docker', ['run', '--rm', '--network', 'none', '--label', 'kiln=1', ...mounts(dir), image, 'sh', '-ec', script], { encoding: 'utf8', timeout: 300_000 });
    const ok = run(repo, `${setup}; apt-get update; apt-get install -y kiln-tool; kiln-tool`);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/tool 1\.0/);
    const bad = mkdtempSync(join(tmpdir(), 'kiln-tampered-'));
    cpSync(repo, bad, { recursive: true, dereference: true });
    chmodSync(bad, 0o755); // apt reads the keyring as the _apt user
    const idx = join(bad, 'dists/bookworm/main/binary-amd64');
    appendFileSync(join(idx, 'Packages'), '\nPackage: evil\nVersion: 6.6.6\nArchitecture: all\nFilename: pool/evil.deb\nSize: 1\n');
    execFileSync('sh', ['-c', 'gzip -9nc Packages > Packages.gz && xz -9c Packages > Packages.xz'], { cwd: idx });
    const r = run(bad, `${setup}; apt-get update`);
    expect(r.status).toBe(100);
    expect(r.stdout + r.stderr).toMatch(/Hash Sum mismatch|File has unexpected size/);
  }, 300_000);

  test('dpkg installs, upgrades keeping a modified conffile, removes and purges, running the scripts', async () => {
    const deb = (p: ReturnType<typeof project>) => {
      const d = execFileSync('readlink', ['-f', join(p.dir, 'out/parts/pkg')], { encoding: 'utf8' }).trim();
      return join(d, readdirSync(d).find((f) => f.endsWith('.deb'))!);
    };
    const [v1, v2] = [deb(p1), deb(p2)];
    const r = inContainer(
      [
        `dpkg -i ${v1}`,
        'kiln-tool',
        'echo "setting = mine" > /etc/kiln-tool.conf',
        `dpkg --force-confold -i ${v2}`,
        'kiln-tool',
        'cat /etc/kiln-tool.conf',
        'dpkg -r kiln-tool',
        'test ! -e /usr/bin/kiln-tool && test -e /etc/kiln-tool.conf && echo removed-kept-conffile',
        'dpkg -P kiln-tool',
        'test ! -e /etc/kiln-tool.conf && echo purged',
        'cat /var/log/kiln-tool.log',
      ].join('\n'),
      [v1, v2].map((f) => join(f, '..')),
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/tool 1\.0\n[\s\S]*tool 2\.0\nsetting = mine\n[\s\S]*removed-kept-conffile\n[\s\S]*purged\n/);
    expect(r.stdout).toMatch(/preinst install\s*\npostinst configure\s*\nprerm upgrade 2\.0-1\npreinst upgrade 1\.0-1 2\.0-1\npostrm upgrade 2\.0-1\npostinst configure 1\.0-1\nprerm remove\npostrm remove\npostrm purge\n/);
  }, 300_000);
});
