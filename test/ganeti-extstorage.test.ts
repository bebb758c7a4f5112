// kiln:ganeti-extstorage: a Ganeti ExtStorage provider (the storage stack's file-backed `shoal`
// provider in recipes/storage-stack/ganeti/), checked against Ganeti 3.0's own code in a kiln
// chroot with Debian's ganeti: ExtStorageFromDisk and DiagnoseExtStorage accept it with its
// parameters, and ExtStorageDevice drives it through create -> attach (a loop block device of the
// right size) -> grow -> setinfo -> detach -> remove. Bad inputs stop at load time (exit 3,
// file:line, nothing built); lintian and rpmlint have no error; two builds give the same bytes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { kiln, kilnP, project } from './helpers/kiln.js';
import { inChrootTree, runAsync } from './helpers/proc.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const PROVIDER = join(import.meta.dirname, '..', 'recipes', 'storage-stack', 'ganeti');
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

// The Ganeti node: byte for byte the section of test/ganeti-os.test.ts, so both share one cached chroot.
const GANETI_NODE = [
  '[ganeti-node]',
  'recipe = kiln:chroot',
  'suite = bookworm',
  'variant = minbase',
  'packages = ganeti-3.0 e2fsprogs fdisk dosfstools mtools syslinux syslinux-common dump mount zstd',
  '',
].join('\n');

const PROVIDER_SECTION = (scripts = '${buildout:directory}/ganeti/scripts') =>
  [
    '[shoal-ganeti]',
    'recipe = kiln:ganeti-extstorage',
    'name = shoal',
    'package-name = shoal-ganeti',
    'version = 0.3.1',
    'maintainer = Shoal Developers <dev@shoal.example.org>',
    'summary = Ganeti ExtStorage provider for shoal volumes',
    `scripts = ${scripts}`,
    'extra-files = ${buildout:directory}/ganeti/common.sh',
    'parameters =',
    '  pool the shoal pool holding the volume (lower-case letters, digits, -)',
    'defaults =',
    '  SHOAL_DIR=/var/lib/shoal/volumes',
    'depends = mount',
    'rpm-requires =',
    '  util-linux',
    '  coreutils',
    '',
  ].join('\n');

const CFG = ['[buildout]', 'parts = shoal-ganeti ganeti-node', '', GANETI_NODE, PROVIDER_SECTION()].join('\n');

/** a project with the provider's files copied in (so tests can break them) */
function providerProject(cfg: string) {
  const p = project({ 'buildout.cfg': cfg });
  cpSync(PROVIDER, join(p.dir, 'ganeti'), { recursive: true });
  return p;
}

describe('bad inputs stop at load time: exit 3, file:line, nothing built', () => {
  const CASES: Array<[string, (dir: string) => void, string, RegExp]> = [
    ['a missing required script', (d) => rmSync(join(d, 'ganeti/scripts/grow')), PROVIDER_SECTION(), /buildout\.cfg:\d+: \[shoal-ganeti\] scripts: the required ExtStorage script 'grow' is missing/],
    ['a script that is not executable', (d) => chmodSync(join(d, 'ganeti/scripts/attach'), 0o644), PROVIDER_SECTION(), /buildout\.cfg:\d+: \[shoal-ganeti\] scripts: script 'attach': not executable/],
    [
      'a parameter a script reads but that is not documented',
      (d) => writeFileSync(join(d, 'ganeti/scripts/setinfo'), '#!/bin/sh\n. "${0%/*}/common.sh"\necho "$EXTP_REPLICAS" > "$VOL.info"\n', { mode: 0o755 }),
      PROVIDER_SECTION(),
      /buildout\.cfg:\d+: \[shoal-ganeti\] parameters: setinfo reads EXTP_REPLICAS, but parameter 'replicas' is not documented/,
    ],
    ['a parameter documented but read by no script', () => undefined, PROVIDER_SECTION().replace('parameters =\n', 'parameters =\n  replicas how many copies\n'), /parameters: parameter 'replicas' is documented, but no script reads EXTP_REPLICAS/],
    ['a parameter without its description', () => undefined, PROVIDER_SECTION().replace(/  pool the shoal.*\n/, '  pool\n'), /parameters: parameter 'pool' has no description/],
    ['a stray file among the scripts', (d) => writeFileSync(join(d, 'ganeti/scripts/helper.sh'), 'true\n'), PROVIDER_SECTION(), /scripts: .*helper\.sh: not an ExtStorage script name/],
    ['an unknown option', () => undefined, PROVIDER_SECTION() + 'snapshots = yes\n', /buildout\.cfg:\d+: \[shoal-ganeti\].*snapshots/],
    ['a search path directory a package may not own', () => undefined, PROVIDER_SECTION() + 'install-dir = /srv/ganeti/extstorage\n', /install-dir: expected one of Ganeti's ExtStorage search path directories/],
    ['a malformed dependency', () => undefined, PROVIDER_SECTION().replace('depends = mount', 'depends = mount (>= )'), /depends: not a package relation: 'mount \(>= \)'/],
  ];
  for (const [what, breakIt, section, message] of CASES) {
    test(what, () => {
      const p = providerProject(['[buildout]', 'parts = shoal-ganeti', '', section].join('\n'));
      try {
        breakIt(p.dir);
        const r = kiln(p.dir, ['build']);
        expect(r.code, r.stderr).toBe(3);
        expect(r.stderr).toMatch(message);
        expect(existsSync(join(p.dir, 'out/parts/shoal-ganeti'))).toBe(false);
      } finally {
        rmSync(p.dir, { recursive: true, force: true });
      }
    });
  }
});

let p: ReturnType<typeof project>;
let tmp: string;
let node: string;
const out = (part: string) => join(p.dir, 'out/parts', part);
const pkgs = (ext: string) => readdirSync(out('shoal-ganeti')).filter((f) => f.endsWith(ext)).map((f) => join(out('shoal-ganeti'), f));
const ES = '/usr/share/ganeti/extstorage/shoal';

const inNode = (argv: string[]) => inChrootTree(node, argv);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-extstorage-'));
  p = providerProject(CFG);
  const t0 = Date.now();
  const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE });
  if (r.code !== 0) throw new Error(`kiln build failed:\n${r.stderr}\n${r.stdout}`);
  console.log(`ganeti-extstorage: kiln build (ganeti-node chroot from the cache when present) ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  node = join(tmp, 'node');
  mkdirSync(node);
  execFileSync('tar', ['-xpf', join(out('ganeti-node'), 'rootfs.tar'), '--numeric-owner', '-C', node]);
  copyFileSync(pkgs('.deb')[0]!, join(node, 'tmp/shoal-ganeti.deb'));
  const d = await inNode(['dpkg', '-i', '/tmp/shoal-ganeti.deb']);
  if (d.status !== 0) throw new Error(`dpkg -i in the ganeti node failed:\n${d.stdout}\n${d.stderr}`);
  mkdirSync(join(node, 'var/log/ganeti/extstorage'), { recursive: true });
}, 1_800_000);

afterAll(() => {
  if (!process.env.KILN_KEEP) {
    if (node) execFileSync('sh', ['-c', 'for d in $(losetup -n -O NAME -j "$1" 2>/dev/null); do losetup -d "$d"; done; true', 'sh', join(node, 'var/lib/shoal/volumes/p1/vol1')]);
    rmSync(tmp, { recursive: true, force: true });
    rmSync(p.dir, { recursive: true, force: true });
  }
});

describe('packages', () => {
  test('the .deb: files, modes, conffile, relations; installed by dpkg; lintian has no error', async () => {
    const deb = pkgs('.deb')[0]!;
    expect(deb).toMatch(/shoal-ganeti_0\.3\.1_all\.deb$/);
    const info = execFileSync('dpkg-deb', ['-f', deb], { encoding: 'utf8' });
    expect(info).toMatch(/^Depends: mount$/m);
    expect(info).toMatch(/^Recommends: ganeti-3\.0 \| ganeti$/m);
    const list = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' });
    for (const s of ['create', 'attach', 'detach', 'remove', 'grow', 'setinfo', 'verify']) expect(list).toMatch(new RegExp(`^-rwxr-xr-x root/root .* \\.${ES}/${s}$`, 'm'));
    expect(list).toMatch(new RegExp(`^-rw-r--r-- root/root .* \\.${ES}/parameters\\.list$`, 'm'));
    expect(list).toMatch(new RegExp(`^-rw-r--r-- root/root .* \\.${ES}/common\\.sh$`, 'm'));
    expect(readFileSync(join(node, ES, 'parameters.list'), 'utf8')).toBe('pool the shoal pool holding the volume (lower-case letters, digits, -)\n');
    expect(readFileSync(join(node, 'etc/default/shoal-ganeti'), 'utf8')).toMatch(/^SHOAL_DIR='\/var\/lib\/shoal\/volumes'$/m);
    const conffiles = execFileSync('sh', ['-c', 'dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles', 'sh', deb], { encoding: 'utf8' });
    expect(conffiles).toBe('/etc/default/shoal-ganeti\n');
    const st = await inNode(['dpkg-query', '-W', '-f', '${Status}', 'shoal-ganeti']);
    expect(st.stdout).toBe('install ok installed');
    const lint = await runAsync('lintian', ['--tag-display-limit', '0', deb]);
    console.log(`lintian: ${lint.stdout.trim() || 'clean'}`);
    expect(lint.stdout).not.toMatch(/^E: /m);
  });

  test('the .rpm: rpm -K, files and modes, requires; rpmlint has no error', async () => {
    const rpm = pkgs('.rpm')[0]!;
    const q = (args: string[]) => execFileSync('rpm', ['-qp', '--dbpath', join(tmp, 'rpmdb'), ...args, rpm], { encoding: 'utf8' });
    expect(q(['--queryformat', '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}'])).toBe('shoal-ganeti 0.3.1-1 noarch');
    const files = q(['--queryformat', '[%{FILEMODES:perms} %{FILENAMES}\n]']);
    for (const s of ['create', 'attach', 'detach', 'remove', 'grow', 'setinfo', 'verify']) expect(files).toContain(`-rwxr-xr-x ${ES}/${s}\n`);
    expect(files).toContain(`-rw-r--r-- ${ES}/parameters.list\n`);
    expect(q(['-c'])).toBe('/etc/default/shoal-ganeti\n');
    const req = q(['--requires']);
    for (const r of ['util-linux', 'coreutils', '/bin/sh']) expect(req).toMatch(new RegExp(`^${r.replace(/\//g, '\\/')}$`, 'm'));
    const k = await runAsync('rpm', ['-Kv', '--dbpath', join(tmp, 'rpmdb'), '--nosignature', rpm]);
    expect(k.status, k.stdout).toBe(0);
    const lint = await runAsync('rpmlint', [rpm]);
    console.log(`rpmlint: ${lint.stdout.split('\n').filter((l) => / [EW]: /.test(l)).join('; ') || 'clean'}`);
    expect(lint.stdout.split('\n').filter((l) => / E: /.test(l) && !/ E: no-signature/.test(l))).toEqual([]);
  });

  test('a second build in another directory gives identical .deb and .rpm bytes', async () => {
    const p2 = providerProject(['[buildout]', 'parts = shoal-ganeti', '', PROVIDER_SECTION()].join('\n'));
    try {
      const r = await kilnP(p2.dir, ['build']);
      expect(r.code, r.stderr).toBe(0);
      for (const f of [...pkgs('.deb'), ...pkgs('.rpm')]) expect(sha(join(p2.dir, 'out/parts/shoal-ganeti', f.split('/').at(-1)!))).toBe(sha(f));
    } finally {
      rmSync(p2.dir, { recursive: true, force: true });
    }
  });
});

// Ganeti's own code drives the installed provider; sizes are read from the block device.
const ORACLE = `
import json, os, stat, subprocess, sys
sys.path.insert(0, "/usr/share/ganeti/3.0")
from ganeti import backend, errors
from ganeti.storage import extstorage

res = {}
ok, es = extstorage.ExtStorageFromDisk("shoal")
res["found"] = ok
res["path"] = es.path if ok else es
res["parameters"] = es.supported_parameters if ok else None
res["diagnose"] = [[n, p, s, d, params] for (n, p, s, d, params) in backend.DiagnoseExtStorage() if n == "shoal"]

def size(dev):
    return int(subprocess.check_output(["blockdev", "--getsize64", dev]).decode().strip())

uid = ("shoal", "vol1")
params = {"pool": "p1"}
dev = extstorage.ExtStorageDevice.Create(uid, [], 64, None, params, False, {}, name="disk0", uuid="uuid-0")
res["attached"] = dev.attached
res["dev_path"] = dev.dev_path
res["is_block"] = stat.S_ISBLK(os.stat(dev.dev_path).st_mode)
res["size_created"] = size(dev.dev_path)
dev.Grow(32, False, True, False)
res["size_grown"] = size(dev.dev_path)
res["file_size"] = os.stat("/var/lib/shoal/volumes/p1/vol1").st_size
dev.SetInfo("inst1.example.org disk/0")
res["info"] = open("/var/lib/shoal/volumes/p1/vol1.info").read()
path = dev.dev_path
dev.Shutdown()
res["loops_after_detach"] = subprocess.check_output(["losetup", "-n", "-O", "NAME", "-j", "/var/lib/shoal/volumes/p1/vol1"]).decode().split()
dev2 = extstorage.ExtStorageDevice(uid, [], 96, params, {}, name="disk0", uuid="uuid-0")
res["reattached"] = dev2.attached and size(dev2.dev_path) == 96 * 1048576
dev2.Remove()
res["exists_after_remove"] = os.path.exists("/var/lib/shoal/volumes/p1/vol1")
res["loops_after_remove"] = subprocess.check_output(["losetup", "-n", "-O", "NAME", "-j", "/var/lib/shoal/volumes/p1/vol1"]).decode().split()
try:
    extstorage._ExtStorageAction("verify", ("shoal", "vol2"), {"pool": "Bad/Pool"})
    res["verify_bad"] = "accepted"
except errors.BlockDeviceError as e:
    res["verify_bad"] = str(e)
extstorage._ExtStorageAction("verify", ("shoal", "vol2"), {"pool": "p2"})
res["verify_good"] = "ok"
try:
    extstorage.ExtStorageDevice(("shoal", "nope"), [], 8, params, {}, name="d", uuid="u")
    res["attach_missing"] = "attached"
except Exception as e:
    res["attach_missing"] = type(e).__name__ + ": " + str(e)
print(json.dumps(res))
`;

describe("Ganeti's own code (ganeti 3.0) on the installed provider", () => {
  test('ExtStorageFromDisk and DiagnoseExtStorage accept it; ExtStorageDevice: create, attach, grow, setinfo, detach, remove', async () => {
    writeFileSync(join(node, 'tmp/es-oracle.py'), ORACLE);
    const r = await inNode(['/usr/bin/python3', '/tmp/es-oracle.py']);
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(res.found, String(res.path)).toBe(true);
    expect(res.path).toBe(ES);
    expect(res.parameters).toEqual([['pool', 'the shoal pool holding the volume (lower-case letters, digits, -)']]);
    expect(res.diagnose).toEqual([['shoal', ES, true, '', [['pool', 'the shoal pool holding the volume (lower-case letters, digits, -)']]]]);
    expect(res.attached).toBe(true);
    expect(res.dev_path).toMatch(/^\/dev\/loop\d+$/);
    expect(res.is_block).toBe(true);
    expect(res.size_created).toBe(64 * 1048576);
    expect(res.size_grown).toBe(96 * 1048576);
    expect(res.file_size).toBe(96 * 1048576);
    expect(res.info).toBe("inst1.example.org_disk_0\n");
    expect(res.loops_after_detach).toEqual([]);
    expect(res.reattached).toBe(true);
    expect(res.exists_after_remove).toBe(false);
    expect(res.loops_after_remove).toEqual([]);
    expect(res.verify_bad).toMatch(/verify script failed.*invalid pool 'Bad\/Pool'/s);
    expect(res.verify_good).toBe('ok');
    expect(res.attach_missing).not.toBe('attached');
  });
});
