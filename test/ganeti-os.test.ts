// kiln:ganeti-os: a Ganeti OS definition built from kiln chroot tarballs, checked against
// Ganeti's own code (Debian's ganeti 3.0 in a kiln chroot: backend._TryOSFromDisk, ValidateOS,
// InstanceOsAdd), and its scripts run with Ganeti's environment on raw image files: the created
// disk boots in QEMU (TCG) to the instance's hostname, export | import gives the same files,
// rename changes the hostname, bad environments write nothing. Two builds give the same bytes.
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { withVm, runningVms } from '../src/vm/qemu.js';
import { kilnP, project } from './helpers/kiln.js';
import { BOOT_HOOK, DEBIAN_BOOT_CHROOT } from './helpers/images.js';
import { makeContext } from './helpers/context.js';
import { recipe } from '../src/kinds/ganeti-os.js';

const OPTION_DEFAULTS = Object.fromEntries(Object.entries(recipe.options).flatMap(([k, v]) => (v.default !== undefined ? [[k, v.default]] : [])));

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
/** sha256 of a (large) file, streamed: the event loop stays free (vitest's RPC needs it) */
const shaP = (f: string) =>
  new Promise<string>((res, rej) => {
    const h = createHash('sha256');
    createReadStream(f).on('data', (c) => h.update(c)).on('error', rej).on('end', () => res(h.digest('hex')));
  });
const execFileP = promisify(execFile);
/** a command's status and output, without blocking the event loop */
const runP = (cmd: string, args: string[]) =>
  new Promise<{ status: number | null; stdout: string }>((res) => {
    execFile(cmd, args, { maxBuffer: 1 << 26 }, (e, stdout) => res({ status: e ? ((e as { code?: number }).code ?? 1) : 0, stdout: String(stdout) }));
  });

// The instance root file system: the same kiln:chroot part as test/disk-image.test.ts (bookworm
// minbase + systemd-sysv + udev, units a throw-away VM does not need masked), byte for byte the
// same options and hook, so both tests share one cached chroot.
// a customize hook: records the environment run-parts gave it, and the colour parameter
const COLOUR_HOOK = [
  '#!/bin/sh',
  'set -e',
  'for v in TARGET SUITE ARCH PARTITION_STYLE EXTRA_PKGS BLOCKDEV FSYSDEV INSTANCE_NAME VARIANT; do',
  '  eval "printf \'%s=%s\\n\' $v \\"\\${$v-UNSET}\\""',
  'done > "$TARGET/etc/kiln-hook-env"',
  'printf \'%s\\n\' "${OSP_COLOUR:-none}" > "$TARGET/etc/kiln-colour"',
  '',
].join('\n');

const GANETI_NODE = [
  '[ganeti-node]',
  'recipe = kiln:chroot',
  'suite = bookworm',
  'variant = minbase',
  'packages = ganeti-3.0 e2fsprogs fdisk dosfstools mtools syslinux syslinux-common dump mount zstd',
  '',
].join('\n');

export const CFG = [
  '[buildout]',
  'parts = os ganeti-node',
  '',
  ...DEBIAN_BOOT_CHROOT,
  '',
  GANETI_NODE,
  '[os]',
  'recipe = kiln:ganeti-os',
  'name = kiln-debian',
  'variants = default minimal',
  'variant-default = ${debian:location}/rootfs.tar',
  'kernel-default = debian',
  'append-default = quiet systemd.show_status=0',
  'variant-minimal = ${debian:location}/rootfs.tar',
  'partition-style-minimal = none',
  'extra-packages = systemd-sysv udev',
  'parameters =',
  "  colour the instance's colour: red, green or blue",
  '  ssh-key an SSH public key for root (optional)',
  'check-colour = red|green|blue',
  'customize = hooks/10-colour',
  '',
].join('\n');

let p: ReturnType<typeof project>;
let tmp: string;
let buildSeconds = 0;
const out = (part: string) => join(p.dir, 'out/parts', part);
const pkgs = (ext: string) => readdirSync(out('os')).filter((f) => f.endsWith(ext)).map((f) => join(out('os'), f));

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-ganeti-'));
  p = project({ 'buildout.cfg': CFG, 'boot-hook.sh': BOOT_HOOK, 'hooks/10-colour': COLOUR_HOOK });
  chmodSync(join(p.dir, 'hooks/10-colour'), 0o755);
  const t0 = Date.now();
  const r = await kilnP(p.dir, ['build'], { KILN_CACHE_DIR: CACHE });
  buildSeconds = (Date.now() - t0) / 1000;
  if (r.code !== 0) throw new Error(`kiln build failed:\n${r.stderr}\n${r.stdout}`);
  console.log(`ganeti-os: kiln build (chroots from the cache when present) ${buildSeconds.toFixed(1)} s; project ${p.dir}`);
}, 1_800_000);

afterAll(() => {
  if (!process.env.KILN_KEEP) {
    rmSync(tmp, { recursive: true, force: true });
    rmSync(p.dir, { recursive: true, force: true });
  }
});


// --- a Ganeti node: the ganeti-node chroot tree with the .deb installed by dpkg ---------------------
let node: string;
const OS = '/usr/share/ganeti/os/kiln-debian';
/** Run argv inside the node tree (private mount namespace with /dev and /proc), env as given. */
function inNode(argv: string[], env: Record<string, string> = {}, input?: Buffer | string): Promise<{ status: number | null; stdout: Buffer; stderr: Buffer }> {
  const script = 'R=$1; shift; mount --rbind /dev "$R/dev" && mount -t proc proc "$R/proc" && exec chroot "$R" "$@"';
  return new Promise((res, rej) => {
    const c = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', node, ...argv], { env: { PATH: '/sbin:/bin:/usr/sbin:/usr/bin', ...env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    c.stdout.on('data', (b: Buffer) => out.push(b));
    c.stderr.on('data', (b: Buffer) => err.push(b));
    c.on('error', rej);
    c.on('close', (status) => res({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }));
    c.stdin.on('error', () => undefined);
    c.stdin.end(input ?? '');
  });
}
/** Ganeti's environment for an OS script (backend.OSEnvironment's variables, API 20) */
const ganetiEnv = (disk: string, extra: Record<string, string> = {}) => ({
  OS_API_VERSION: '20', OS_NAME: 'kiln-debian', OS_VARIANT: 'default', INSTANCE_NAME: 'inst1.example.org', HYPERVISOR: 'kvm',
  DEBUG_LEVEL: '0', DISK_COUNT: '1', DISK_0_PATH: disk, DISK_0_ACCESS: 'rw', NIC_COUNT: '0', OSP_COLOUR: 'green', ...extra,
});
const script = (name: string, env: Record<string, string>, input?: Buffer) => inNode(['sh', '-c', `cd ${OS} && exec ./${name}`], env, input);
const disk = (name: string, size = 1 << 30) => {
  const f = join(node, 'srv/disks', name);
  mkdirSync(join(node, 'srv/disks'), { recursive: true });
  writeFileSync(f, '');
  execFileSync('truncate', ['-s', String(size), f]);
  return { host: f, inNode: `/srv/disks/${name}` };
};
/** the root file system's byte offset: the last Linux partition (sfdisk -J), or 0 */
function rootOffset(img: string): number {
  const r = spawnSync('sfdisk', ['-J', img], { encoding: 'utf8' });
  if (r.status !== 0) return 0;
  const parts = JSON.parse(r.stdout).partitiontable.partitions as Array<{ start: number; type: string }>;
  return parts.filter((x) => x.type === '83').at(-1)!.start * 512;
}
const debugfsCat = (img: string, path: string) => execFileSync('debugfs', ['-R', `cat ${path}`, `${img}?offset=${rootOffset(img)}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

beforeAll(async () => {
  node = join(tmp, 'node');
  mkdirSync(node);
  execFileSync('tar', ['-xpf', join(out('ganeti-node'), 'rootfs.tar'), '--numeric-owner', '-C', node]);
  copyFileSync(pkgs('.deb')[0]!, join(node, 'tmp/os.deb'));
  const r = await inNode(['dpkg', '-i', '/tmp/os.deb']);
  if (r.status !== 0) throw new Error(`dpkg -i in the ganeti node failed:\n${r.stdout}\n${r.stderr}`);
  // InstanceOsAdd's file-based disk must be below an allowed file storage path
  mkdirSync(join(node, 'srv/ganeti/file-storage/ganeti-inst1'), { recursive: true });
  mkdirSync(join(node, 'var/log/ganeti/os'), { recursive: true });
  writeFileSync(join(node, 'etc/ganeti/file-storage-paths'), '/srv/ganeti/file-storage\n');
}, 600_000);

describe('packages', () => {
  test('the .deb: dpkg installed it with its dependencies; contents, conffiles, Depends; lintian has no error', async () => {
    const deb = pkgs('.deb')[0]!;
    const info = execFileSync('dpkg-deb', ['-f', deb], { encoding: 'utf8' });
    expect(info).toMatch(/^Package: ganeti-instance-kiln-debian$/m);
    expect(info).toMatch(/^Architecture: amd64$/m);
    expect(info).toMatch(/^Depends: .*ganeti-3\.0.*dosfstools.*dump.*e2fsprogs.*fdisk.*mount.*mtools.*syslinux.*zstd/m);
    const list = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' });
    for (const f of ['create', 'import', 'export', 'rename', 'verify', 'ganeti_api_version', 'parameters.list', 'common.sh']) expect(list).toContain(`${OS}/${f}`);
    expect(list).toMatch(/variants\.list -> \/etc\/ganeti\/instance-kiln-debian\/variants\.list/);
    expect(list).toContain('./usr/lib/ganeti-instance-kiln-debian/variants/default/vmlinuz');
    // one shared root file system for both variants
    expect(list.split('\n').filter((l) => l.startsWith('-') && /\/rootfs\/[0-9a-f]{16}\.tar\.zst$/.test(l))).toHaveLength(1);
    const conffiles = execFileSync('sh', ['-c', 'dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles', 'sh', deb], { encoding: 'utf8' });
    expect(conffiles.split('\n').filter(Boolean).sort()).toEqual([
      '/etc/default/ganeti-instance-kiln-debian', '/etc/ganeti/instance-kiln-debian/hooks/10-colour',
      '/etc/ganeti/instance-kiln-debian/variants.list', '/etc/ganeti/instance-kiln-debian/variants/default.conf', '/etc/ganeti/instance-kiln-debian/variants/minimal.conf',
    ]);
    const st = await inNode(['dpkg-query', '-W', '-f', '${Status}', 'ganeti-instance-kiln-debian']);
    expect(st.stdout.toString()).toBe('install ok installed');
    const defaults = readFileSync(join(node, 'etc/default/ganeti-instance-kiln-debian'), 'utf8');
    for (const k of ['MIRROR', 'PROXY', 'SUITE', 'ARCH', 'EXTRAPKGS', 'CUSTOMIZE_DIR', 'GENERATE_CACHE', 'CLEAN_CACHE', 'PARTITION_STYLE']) expect(defaults).toMatch(new RegExp(`^${k}=`, 'm'));
    const lint = await runP('lintian', ['--tag-display-limit', '0', deb]);
    console.log(`lintian: ${lint.stdout.trim() || 'clean'}`);
    expect(lint.stdout).not.toMatch(/^E: /m);
  });

  test('the .rpm: rpm reads it; requires, files, config files', async () => {
    const rpm = pkgs('.rpm')[0]!;
    const q = (fmt: string[]) => execFileSync('rpm', ['-qp', '--dbpath', join(tmp, 'rpmdb'), ...fmt, rpm], { encoding: 'utf8' });
    expect(q(['--queryformat', '%{NAME} %{ARCH}'])).toBe('ganeti-instance-kiln-debian x86_64');
    const req = q(['--requires']);
    for (const r of ['ganeti', 'dump', 'e2fsprogs', 'util-linux', 'syslinux', 'mtools', 'dosfstools', 'zstd', 'tar', '/usr/bin/run-parts']) expect(req).toMatch(new RegExp(`^${r.replace(/\//g, '\\/')}$`, 'm'));
    expect(q(['-l'])).toContain(`${OS}/create`);
    expect(q(['-c']).split('\n').filter(Boolean).sort()).toEqual(['/etc/default/ganeti-instance-kiln-debian', '/etc/ganeti/instance-kiln-debian/variants.list', '/etc/ganeti/instance-kiln-debian/variants/default.conf', '/etc/ganeti/instance-kiln-debian/variants/minimal.conf']);
    const v = spawnSync('rpm', ['-Kv', '--dbpath', join(tmp, 'rpmdb'), '--nosignature', rpm], { encoding: 'utf8' });
    expect(v.status, v.stdout + v.stderr).toBe(0);
    const lint = await runP('rpmlint', [rpm]);
    console.log(`rpmlint: ${lint.stdout.split('\n').filter((l) => / [EW]: /.test(l)).join('; ')}`);
  });

  test('a second build (another project, same options) gives identical .deb and .rpm bytes', async () => {
    const p2 = project({ 'buildout.cfg': CFG.replace('parts = os ganeti-node', 'parts = os'), 'boot-hook.sh': BOOT_HOOK, 'hooks/10-colour': COLOUR_HOOK });
    try {
      chmodSync(join(p2.dir, 'hooks/10-colour'), 0o755);
      const t0 = Date.now();
      const r = await kilnP(p2.dir, ['build'], { KILN_CACHE_DIR: CACHE });
      expect(r.code, r.stderr).toBe(0);
      console.log(`ganeti-os rebuild (chroot cached): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      for (const f of [...pkgs('.deb'), ...pkgs('.rpm')]) {
        const other = join(p2.dir, 'out/parts/os', f.split('/').at(-1)!);
        expect(sha(other)).toBe(sha(f));
      }
    } finally {
      rmSync(p2.dir, { recursive: true, force: true });
    }
  }, 900_000);
});

describe("Ganeti's own code (ganeti 3.0 backend) on the installed definition", () => {
  let res: Record<string, unknown>;
  test('_TryOSFromDisk accepts it with every variant and parameter; ValidateOS runs verify; InstanceOsAdd runs create on a file disk', async () => {
    writeFileSync(join(node, 'tmp/oracle.py'), ORACLE);
    execFileSync('truncate', ['-s', '1G', join(node, 'srv/ganeti/file-storage/ganeti-inst1/disk0')]);
    const t0 = Date.now();
    const r = await inNode(['/usr/bin/python3', '/tmp/oracle.py', '/srv/ganeti/file-storage/ganeti-inst1/disk0']);
    console.log(`Ganeti oracle (incl. InstanceOsAdd -> create): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(r.status, r.stderr.toString()).toBe(0);
    res = JSON.parse(r.stdout.toString().trim().split('\n').at(-1)!);
    expect(res.ok, String(res.error)).toBe(true);
    expect(res.api).toEqual([20]);
    expect(res.variants).toEqual(['default', 'minimal']);
    expect(res.parameters).toEqual([['colour', "the instance's colour: red, green or blue"], ['ssh-key', 'an SSH public key for root (optional)']]);
    expect(res.good).toBe('ok');
    expect(res.bad).toMatch(/OS validation script failed.*verify: invalid value 'purple' for OS parameter 'colour'/s);
    expect(res.unknown).toMatch(/not supported by the OS kiln-debian: shape/);
    expect(res.badvariant).toMatch(/does not support variant 'nope'/);
    expect(res.add, String(res.add)).toBe('ok');
  }, 600_000);

  test('the disk InstanceOsAdd made boots in QEMU (TCG, BIOS, syslinux) to the getty of the instance name', async () => {
    expect(res?.add).toBe('ok');
    const img = join(node, 'srv/ganeti/file-storage/ganeti-inst1/disk0');
    expect(debugfsCat(img, '/etc/hostname')).toBe('ganeti-inst1\n');
    expect(debugfsCat(img, '/etc/kiln-colour')).toBe('blue\n');
    const t0 = Date.now();
    const seconds = await withVm({ disks: [{ file: img, snapshot: true }], serialLog: join(tmp, 'boot.log'), timeoutMs: 420_000, name: 'ganeti-os' }, async (vm) => {
      await vm.waitFor(/ganeti-inst1 login:/);
      return (Date.now() - t0) / 1000;
    });
    console.log(`ganeti-os: TCG boot of the created instance to "ganeti-inst1 login:" in ${seconds.toFixed(1)} s`);
    expect(runningVms()).toBe(0);
  }, 480_000);
});

describe('the scripts with Ganeti\'s environment on raw image files', () => {
  let d0: { host: string; inNode: string };
  let d0Sha: string | undefined;
  test('create (msdos + kernel) writes the layout, fstab by UUID, hostname, hook environment', async () => {
    d0 = disk('d0.img');
    const t0 = Date.now();
    const r = await script('create', ganetiEnv(d0.inNode));
    console.log(`create: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(r.status, r.stderr.toString()).toBe(0);
    const parts = JSON.parse(execFileSync('sfdisk', ['-J', d0.host], { encoding: 'utf8' })).partitiontable.partitions;
    expect(parts.map((x: { type: string }) => x.type)).toEqual(['e', '83']);
    const uuid = execFileSync('dumpe2fs', ['-h', `${d0.host}?offset=${rootOffset(d0.host)}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).match(/UUID:\s+(\S+)/)![1];
    expect(debugfsCat(d0.host, '/etc/fstab')).toContain(`UUID=${uuid}\t/\text4`);
    expect(debugfsCat(d0.host, '/etc/hostname')).toBe('inst1.example.org\n');
    expect(debugfsCat(d0.host, '/etc/hosts')).toMatch(/^127\.0\.1\.1\tinst1\.example\.org inst1$/m);
    const hookEnv = debugfsCat(d0.host, '/etc/kiln-hook-env');
    for (const kv of ['SUITE=bookworm', 'ARCH=amd64', 'PARTITION_STYLE=msdos', 'EXTRA_PKGS=systemd-sysv udev', `BLOCKDEV=${d0.inNode}`, `FSYSDEV=${d0.inNode}`, 'VARIANT=default']) expect(hookEnv).toContain(kv + '\n');
    expect(hookEnv).toMatch(/^TARGET=\/var\/tmp\//m);
    expect(debugfsCat(d0.host, '/etc/kiln-colour')).toBe('green\n');
    // the boot partition: syslinux, the kernel, the initrd and a config naming the root UUID
    const cfg = execFileSync('mtype', ['-i', `${d0.host}@@1048576`, '::syslinux.cfg'], { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    expect(cfg).toContain(`root=UUID=${uuid} ro console=tty0 console=ttyS0,115200 quiet systemd.show_status=0`);
  }, 300_000);

  test('variant minimal (partition style none): the file system is the whole disk', async () => {
    const d = disk('whole.img', 768 << 20);
    const r = await script('create', ganetiEnv(d.inNode, { OS_VARIANT: 'minimal', INSTANCE_NAME: 'plain' }));
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(spawnSync('sfdisk', ['-d', d.host]).status).not.toBe(0);
    expect(execFileSync('debugfs', ['-R', 'cat /etc/hostname', d.host], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).toBe('plain\n');
    rmSync(d.host);
  }, 300_000);

  test('create and export on a real block device (a loop device over a file; no partition devices needed)', async () => {
    const d = disk('blk.img', 1 << 30);
    const loop = execFileSync('losetup', ['-f', '--show', d.host], { encoding: 'utf8' }).trim();
    try {
      const r = await script('create', ganetiEnv(loop, { INSTANCE_NAME: 'blockdev-inst' }));
      expect(r.status, r.stderr.toString()).toBe(0);
      const ex = await script('export', ganetiEnv(loop, { EXPORT_DEVICE: loop, EXPORT_INDEX: '0' }));
      expect(ex.status, ex.stderr.toString()).toBe(0);
      expect(ex.stdout.length).toBeGreaterThan(50 << 20);
    } finally {
      execFileSync('losetup', ['-d', loop]);
    }
    expect(JSON.parse(execFileSync('sfdisk', ['-J', d.host], { encoding: 'utf8' })).partitiontable.partitions.map((x: { type: string }) => x.type)).toEqual(['e', '83']);
    expect(debugfsCat(d.host, '/etc/hostname')).toBe('blockdev-inst\n');
    expect(execFileSync('mtype', ['-i', `${d.host}@@1048576`, '::syslinux.cfg'], { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } })).toContain('root=UUID=');
    rmSync(d.host);
  }, 300_000);

  test('export | import onto a second disk gives the same files (debugfs rdump of both)', async () => {
    const t0 = Date.now();
    const ex = await script('export', ganetiEnv(d0.inNode, { EXPORT_DEVICE: d0.inNode, EXPORT_INDEX: '0' }));
    expect(ex.status, ex.stderr.toString()).toBe(0);
    const stream = ex.stdout as Buffer;
    expect(stream.length).toBeGreaterThan(50 << 20);
    const d1 = disk('d1.img');
    const im = await script('import', ganetiEnv(d1.inNode, { IMPORT_DEVICE: d1.inNode, IMPORT_INDEX: '0' }), stream);
    expect(im.status, im.stderr.toString()).toBe(0);
    console.log(`export ${(stream.length / 2 ** 20).toFixed(0)} MiB dump + import: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const trees: Map<string, string>[] = [];
    for (const [i, img] of [d0.host, d1.host].entries()) {
      const dir = join(tmp, `rdump${i}`);
      mkdirSync(dir);
      await execFileP('debugfs', ['-R', `rdump / ${dir}`, `${img}?offset=${rootOffset(img)}`], { maxBuffer: 1 << 26 });
      trees.push(await listing(dir));
    }
    const [a, b] = trees as [Map<string, string>, Map<string, string>];
    expect(a.size).toBeGreaterThan(5000);
    const differ = [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k));
    // only fstab differs: the new file system has a new UUID
    expect(differ).toEqual(['etc/fstab']);
    const uuid1 = execFileSync('dumpe2fs', ['-h', `${d1.host}?offset=${rootOffset(d1.host)}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).match(/UUID:\s+(\S+)/)![1];
    expect(debugfsCat(d1.host, '/etc/fstab')).toContain(`UUID=${uuid1}\t/`);
    rmSync(d1.host);
  }, 600_000);

  test('rename changes /etc/hostname and /etc/hosts; a wrong OLD_INSTANCE_NAME is refused', async () => {
    const r = await script('rename', ganetiEnv(d0.inNode, { OLD_INSTANCE_NAME: 'inst1.example.org', INSTANCE_NAME: 'web2.example.org' }));
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(debugfsCat(d0.host, '/etc/hostname')).toBe('web2.example.org\n');
    expect(debugfsCat(d0.host, '/etc/hosts')).toMatch(/^127\.0\.1\.1\tweb2\.example\.org web2$/m);
    const bad = await script('rename', ganetiEnv(d0.inNode, { OLD_INSTANCE_NAME: 'other', INSTANCE_NAME: 'web3' }));
    expect(bad.status).toBe(1);
    expect(bad.stderr.toString()).toMatch(/rename: cannot rename from other to web3: the instance's hostname is 'web2.example.org'/);
  }, 120_000);

  test('verify: good and bad parameters', async () => {
    expect((await script('verify', ganetiEnv(d0.inNode, { OSP_COLOUR: 'red' }))).status).toBe(0);
    const bad = await script('verify', ganetiEnv(d0.inNode, { OSP_COLOUR: 'Red' }));
    expect(bad.status).toBe(1);
    expect(bad.stderr.toString()).toContain("verify: invalid value 'Red' for OS parameter 'colour' (must match: red|green|blue)");
  });

  test.each([
    ['no DISK_0_PATH', { DISK_0_PATH: '' }, /create: DISK_0_PATH is not set/],
    ['unknown variant', { OS_VARIANT: 'nope' }, /create: unknown variant 'nope' \(known: default minimal\)/],
    ['bad parameter value', { OSP_COLOUR: 'purple' }, /create: invalid value 'purple' for OS parameter 'colour'/],
    ['unknown parameter', { OSP_SHAPE: 'round' }, /create: unknown OS parameter 'shape'/],
    ['bad instance name', { INSTANCE_NAME: 'no_underscores' }, /create: INSTANCE_NAME 'no_underscores' is not a valid host name/],
    ['no OS_API_VERSION', { OS_API_VERSION: '' }, /create: OS_API_VERSION is not set/],
    ['disk too small', { DISK_0_PATH: '/srv/disks/small.img' }, /create: disk \/srv\/disks\/small\.img is too small/],
  ])('%s: exit 1, a message on stderr, the disk unchanged', async (_what, env, msg) => {
    const small = disk('small.img', 64 << 20);
    d0Sha ??= await shaP(d0.host);
    const beforeSmall = await shaP(small.host);
    const r = await script('create', ganetiEnv(d0.inNode, env as Record<string, string>));
    expect(r.status).toBe(1);
    expect(r.stderr.toString()).toMatch(msg);
    expect(await shaP(d0.host)).toBe(d0Sha);
    expect(await shaP(small.host)).toBe(beforeSmall);
  }, 120_000);
});

/** relative path -> type, mode, owner, content hash or link target, of an extracted tree */
async function listing(dir: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  const walk = (rel: string) => {
    for (const n of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(dir, r));
      const head = `${st.mode.toString(8)} ${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) m.set(r, `${head} -> ${readlinkSync(join(dir, r))}`);
      else if (st.isDirectory()) {
        m.set(r, `${head} dir`);
        walk(r);
      } else m.set(r, `${head} ${st.size} ${join(dir, r)}`);
    }
  };
  walk('');
  // contents hashed streamed, so the event loop stays free
  for (const [k, v] of m) {
    const f = / (\/.*)$/.exec(v);
    if (f && !v.includes(' -> ') && !v.endsWith(' dir')) m.set(k, v.replace(f[1]!, await shaP(f[1]!)));
  }
  return m;
}

const ORACLE = String.raw`
import sys, json
sys.path.insert(0, "/usr/share/ganeti/3.0")
from ganeti import backend, objects, constants, serializer
res = {}
ok, os_ = backend._TryOSFromDisk("kiln-debian")
res["ok"] = ok
if not ok:
    res["error"] = os_
else:
    res["variants"] = os_.supported_variants
    res["parameters"] = [list(p) for p in os_.supported_parameters]
    res["api"] = os_.api_versions
def validate(name, params):
    try:
        backend.ValidateOS(True, name, ["parameters"], params, False)
        return "ok"
    except Exception as e:
        return "fail: %s" % e
res["good"] = validate("kiln-debian+default", {"colour": "red"})
res["bad"] = validate("kiln-debian+default", {"colour": "purple"})
res["unknown"] = validate("kiln-debian+minimal", {"shape": "round"})
res["badvariant"] = validate("kiln-debian+nope", {})
disk = objects.Disk(dev_type=constants.DT_FILE, logical_id=(constants.FD_LOOP, sys.argv[1]), size=1024, mode="rw", uuid="d0", params={}, children=[])
inst = objects.Instance(name="ganeti-inst1", os="kiln-debian+default", osparams={"colour": "blue"}, osparams_private=serializer.PrivateDict(),
                        hypervisor="kvm", disks_info=[disk], nics=[], uuid="u1", ctime=0, mtime=0, primary_node="node1", hvparams={}, beparams={})
inst.secondary_nodes = []
try:
    backend.InstanceOsAdd(inst, False, 0)
    res["add"] = "ok"
except Exception as e:
    res["add"] = "fail: %s: %s" % (type(e).__name__, e)
print(json.dumps(res))
`;

describe('option errors name the option', () => {
  const base = { name: 'x', variants: 'a', 'variant-a': '/nonexistent/rootfs.tar' };
  test.each([
    [{ 'kernel-b': 'debian' }, /kernel-b.*'b' is not in variants \(a\)/],
    [{ 'kernel-a': 'debian', 'partition-style-a': 'none' }, /partition-style-a.*needs partition-style = msdos/],
    [{ 'kernel-a': 'vmlinuz' }, /kernel-a.*expected none, rootfs, debian or debian:RELEASE/],
    [{ parameters: 'Bad_Name something' }, /parameters.*not a valid parameter name: 'Bad_Name'/],
    [{ parameters: 'colour' }, /parameters.*has no description/],
    [{ parameters: 'colour c', 'check-colour': '(red' }, /check-colour.*not a valid extended regular expression/],
    [{ 'check-size': 'x' }, /check-size.*'size' is not in parameters/],
    [{ name: 'a+b' }, /name: expected a valid OS name \(lower-case letters, digits, '_', '\.', '-'\), got 'a\+b'/],
    [{ 'variant-a': '/x/rootfs.img' }, /variant-a.*expected a tarball/],
    [{ 'append-a': 'quiet $(reboot)' }, /append-a: expected a kernel command line without quotes, backslashes or \$, got 'quiet \$\(reboot\)'/],
    // a KEY-VARIANT option is checked with KEY's table entry, at its own line
    [{ 'suite-a': 'bookworm;true' }, /suite-a: expected a valid suite, got 'bookworm;true'/],
    [{ 'extra-packages-a': 'curl,-rf' }, /extra-packages-a: expected a package name, got 'curl,-rf'/],
    [{ 'partition-style-a': 'gpt' }, /partition-style-a: unknown partition style 'gpt' \(msdos, none\)/],
    [{ formats: 'deb tgz' }, /formats.*unknown format 'tgz'/],
  ])('%o', (opts, msg) => {
    const ctx = makeContext('gos', { ...OPTION_DEFAULTS, ...base, ...opts } as Record<string, string>);
    expect(() => recipe.validate!(ctx)).toThrow(msg);
  });
});
