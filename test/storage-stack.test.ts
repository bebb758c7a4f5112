// The storage-stack profile (recipes/storage-stack/) end to end: one source tree built in a clean
// chroot and split into packages for Debian and RPM distributions, a DKMS module, the Ganeti
// ExtStorage provider, signed apt and rpm repositories; then its install guide followed
// literally: in a fresh container from a kiln chroot (the apt line and key the repository
// publishes, apt-get install shoal shoal-ganeti: exactly the expected packages; the tool and the
// Python module work; purge leaves no file behind), and with dnf --installroot from the rpm
// repository (install, rpm -V, remove). The binary module package's module loads in the booted
// Debian kernel under QEMU. lintian/rpmlint without errors; two builds give identical bytes.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeRpm } from '../src/pkg/rpm.js';
import { kilnP } from './helpers/kiln.js';
import { runAsync } from './helpers/proc.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const PROFILE = join(import.meta.dirname, '..', 'recipes', 'storage-stack', 'buildout.cfg');
const KVER = '6.1.0-56-amd64';
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const run = runAsync;

let tmp: string;
let a: string; // first build (with the QEMU load part)
let b: string; // second build, another directory
const parts = (dir: string) => join(dir, 'out', 'parts');
/** every .deb and .rpm of a build, by path under out/parts */
const packages = (dir: string) =>
  readdirSync(parts(dir))
    .flatMap((p) => (existsSync(join(parts(dir), p)) ? readdirSync(join(parts(dir), p)).filter((f) => /\.(deb|rpm)$/.test(f)).map((f) => `${p}/${f}`) : []))
    .sort();

// a release team's own key instead of the example's generated one: both builds sign with it
const wrapper = (key: string, extraParts = '', extra = '') => `[buildout]\nextends = ${PROFILE}\n${extraParts ? `parts += ${extraParts}\n` : ''}\n[shoal-keys]\nsigning-key = ${key}\n${extra}`;
const LOAD = `
# the .ko as the binary module package ships it
[shoal-ko]
recipe = kiln:command
deb = \${shoal-kmod:location}/shoal-modules-${KVER}_0.3.1_amd64.deb
command = dpkg-deb -x "$KILN_OPT_DEB" "$OUT"

[shoal-load]
recipe = kiln:qemu-test
kernel = debian
kernel-version = ${KVER}
files = \${shoal-ko:location}/lib/modules/${KVER}/updates/dkms/shoal.ko /shoal.ko
init =
  insmod /shoal.ko pool=ganeti-disks
  grep '^shoal ' /proc/modules
  dmesg | grep 'shoal: kernel module'
  echo SHOAL-LOADED
expect = SHOAL-LOADED
timeout = 180
`;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-storage-stack-'));
  const gnupg = join(tmp, 'gnupg');
  mkdirSync(gnupg, { mode: 0o700 });
  const genv = { ...process.env, GNUPGHOME: gnupg };
  execFileSync('gpg', ['--batch', '--quiet', '--passphrase', '', '--quick-gen-key', 'shoal archive <archive@shoal.example.org>', 'rsa3072', 'sign', 'never'], { env: genv, stdio: 'ignore' });
  const key = join(tmp, 'archive-secret.asc');
  writeFileSync(key, execFileSync('gpg', ['--batch', '--armor', '--export-secret-keys'], { env: genv }));
  execFileSync('gpgconf', ['--kill', 'all'], { env: genv });
  a = join(tmp, 'a');
  b = join(tmp, 'b');
  for (const [dir, extraParts, extra] of [[a, 'shoal-load', LOAD], [b, '', '']] as const) {
    mkdirSync(dir);
    writeFileSync(join(dir, 'buildout.cfg'), wrapper(key, extraParts, extra));
    const t0 = Date.now();
    const r = await kilnP(dir, ['build'], { KILN_CACHE_DIR: CACHE });
    if (r.code !== 0) throw new Error(`kiln build in ${dir} failed:\n${r.stderr}\n${r.stdout}`);
    console.log(`storage-stack: kiln build in ${dir} (chroots from the cache when present): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}, 1_800_000);

afterAll(() => {
  if (!process.env.KILN_KEEP && tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the packages', () => {
  test('one source, the expected packages in both families', () => {
    expect(packages(a).map((p) => p.split('/')[1])).toEqual([
      'libshoal-dev_0.3.1-1_amd64.deb',
      'libshoal-devel-0.3.1-1.x86_64.rpm',
      'libshoal0-0.3.1-1.x86_64.rpm',
      'libshoal0_0.3.1-1_amd64.deb',
      'python3-shoal-0.3.1-1.x86_64.rpm',
      'python3-shoal_0.3.1-1_amd64.deb',
      'shoal-0.3.1-1.x86_64.rpm',
      'shoal_0.3.1-1_amd64.deb',
      'shoal-blkinfo-0.3.1-1.x86_64.rpm',
      'shoal-blkinfo_0.3.1-1_amd64.deb',
      'shoal-file-0.3.1-1.x86_64.rpm',
      'shoal-file_0.3.1-1_amd64.deb',
      'shoal-ganeti-0.3.1-1.noarch.rpm',
      'shoal-ganeti_0.3.1_all.deb',
      `kmod-shoal-${KVER.replace(/-/g, '_')}-0.3.1-1.x86_64.rpm`,
      'shoal-dkms_0.3.1_all.deb',
      `shoal-modules-${KVER}_0.3.1_amd64.deb`,
      'shoal-tools-0.3.1-1.x86_64.rpm',
      'shoal-tools_0.3.1-1_amd64.deb',
    ]);
    const dpkgF = (p: string, f: string) => execFileSync('dpkg-deb', ['--field', join(parts(a), p), f], { encoding: 'utf8' }).trim();
    expect(dpkgF('shoal-bin/shoal_0.3.1-1_amd64.deb', 'Depends')).toBe('libshoal0 (= 0.3.1-1), python3-shoal (= 0.3.1-1), shoal-tools (= 0.3.1-1), libc6 (>= 2.34)');
    expect(execFileSync('sh', ['-c', 'dpkg-deb --ctrl-tarfile "$1" | tar -xO ./shlibs', 'sh', join(parts(a), 'libshoal0/libshoal0_0.3.1-1_amd64.deb')], { encoding: 'utf8' })).toBe('libshoal 0 libshoal0 (>= 0.3.1)\n');
    // the RPM family's layout
    const rpmFiles = execFileSync('rpm', ['-qpl', join(parts(a), 'libshoal0-rpm/libshoal0-0.3.1-1.x86_64.rpm'), join(parts(a), 'python3-shoal-rpm/python3-shoal-0.3.1-1.x86_64.rpm')], { encoding: 'utf8' });
    expect(rpmFiles).toContain('/usr/lib64/libshoal.so.0.3.1\n');
    expect(rpmFiles).toMatch(/^\/usr\/lib64\/python3\.11\/site-packages\/shoal\/_shoal\.cpython-311-x86_64-linux-gnu\.so$/m);
  });

  test('lintian: no error on any .deb; rpmlint: no error on the rpms (signatures checked with the archive key)', async () => {
    const debs = packages(a).filter((p) => p.endsWith('.deb')).map((p) => join(parts(a), p));
    const lint = await run('lintian', ['--tag-display-limit', '0', ...debs]);
    console.log(`lintian:\n${lint.stdout}`);
    expect(lint.stdout.split('\n').filter((l) => l.startsWith('E:'))).toEqual([]);
    const home = join(tmp, 'rpmlint-home');
    mkdirSync(home, { recursive: true });
    execFileSync('rpm', ['--import', join(parts(a), 'rpm-repository/RPM-GPG-KEY-shoal')], { env: { ...process.env, HOME: home } });
    const rpms = packages(a).filter((p) => p.endsWith('.rpm')).map((p) => join(parts(a), p));
    const rl = await run('rpmlint', rpms, { HOME: home });
    console.log(`rpmlint:\n${rl.stdout.split('\n').filter((l) => / [EW]: |checked/.test(l)).join('\n')}`);
    expect(rl.stdout.split('\n').filter((l) => / E: /.test(l))).toEqual([]);
  });

  test('a second build in another directory gives identical packages and repository indexes', () => {
    expect(packages(b)).toEqual(packages(a));
    const indexes = ['apt-repository/dists/bookworm/Release', 'apt-repository/dists/bookworm/main/binary-amd64/Packages', 'rpm-repository/repodata/repomd.xml'];
    const differ = [...packages(a), ...indexes].filter((p) => sha(join(parts(a), p)) !== sha(join(parts(b), p)));
    expect(differ).toEqual([]);
  });
});

describe('the install guide', () => {
  test('apt: the published source line and key, apt-get install shoal shoal-ganeti, exactly the stack; it works; purge leaves nothing', async () => {
    const repo = join(parts(a), 'apt-repository');
    const image = readFileSync(join(parts(a), 'shoal-runtime/image-tag'), 'utf8').trim();
    // the guide's steps, on a machine whose only package source is the project's repository
    const script = `
      rm -f /etc/apt/sources.list; rm -rf /etc/apt/sources.list.d/*
      cp ${repo}/kiln.sources /etc/apt/sources.list.d/shoal.sources
      apt-get update -q > /tmp/update.log
      snapshot() { find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /run -o -path /var/lib/apt -o -path /var/cache -o -path /var/lib/dpkg -o -path /var/log \\) -prune -o -print | sort; }
      dpkg-query -W -f '\${Package}\\n' | sort > /tmp/pkgs-before
      snapshot > /tmp/files-before
      apt-get install -y -q shoal shoal-ganeti > /tmp/install.log
      dpkg-query -W -f '\${Package}\\n' | sort > /tmp/pkgs-after
      echo "== installed"; comm -13 /tmp/pkgs-before /tmp/pkgs-after
      echo "== tool"; shoal put guide answer 42; shoal get guide answer; shoal-inspect guide 2>/dev/null
      echo "== python"; python3 -c 'import shoal, shoal.admin; print(shoal.get("guide", "answer"), shoal.version(), shoal.admin.volume_dir())'
      echo "== provider"; ls /usr/share/ganeti/extstorage/shoal | tr '\\n' ' '; echo
      echo "== optional"; apt-get install -y -q shoal-file > /tmp/install-file.log; shoal-file save guide /tmp/guide.saved; shoal drop guide; shoal-file load guide /tmp/guide.saved; shoal get guide answer
      shoal drop guide
      apt-get purge -y -q shoal shoal-ganeti python3-shoal shoal-tools libshoal0 shoal-file > /tmp/purge.log
      dpkg-query -W -f '\${Package}\\n' | sort > /tmp/pkgs-purged
      echo "== left"; comm -13 /tmp/pkgs-before /tmp/pkgs-purged; snapshot > /tmp/files-after; diff /tmp/files-before /tmp/files-after || true
      echo "== end"`;
    const r = await run('docker', ['run', '--rm', '--network', 'none', '--label', 'kiln=1', '--mount', `type=bind,source=${realpathSync(repo)},target=${repo},readonly`, image, 'sh', '-ec', script]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    // the lines the script printed under '== NAME', up to the next '== ' line
    const lines = r.stdout.split('\n');
    const section = (name: string) => {
      const from = lines.indexOf(`== ${name}`) + 1;
      expect(from, `no section ${name} in:\n${r.stdout}`).toBeGreaterThan(0);
      const to = lines.findIndex((l, i) => i >= from && l.startsWith('== '));
      return lines.slice(from, to).join('\n');
    };
    expect(section('installed').split('\n')).toEqual(['libshoal0', 'python3-shoal', 'shoal', 'shoal-ganeti', 'shoal-tools']);
    expect(section('tool')).toBe('42\nanswer\t42');
    expect(section('python')).toBe('42 0.3.1 /var/lib/shoal/volumes');
    expect(section('optional')).toBe('42');
    expect(section('provider')).toBe('attach common.sh create detach grow parameters.list remove setinfo verify ');
    expect(section('left')).toBe('');
  }, 600_000);

  test('rpm: dnf --installroot from the signed rpm repository installs shoal and shoal-ganeti, rpm -V passes, dnf remove leaves nothing', async () => {
    // No RPM distribution's repository is reachable here: a stand-in base package provides what
    // the stack needs from the distribution (glibc, Python's ABI, util-linux, coreutils) and a
    // static /bin/sh and /sbin/ldconfig, so rpm runs the scriptlets in the new root.
    const base = join(tmp, 'base-repo');
    mkdirSync(base, { recursive: true });
    await writeRpm(
      {
        name: 'shoal-test-base',
        version: '1.0',
        release: '1',
        arch: 'x86_64',
        summary: 'Stand-in for the base of an RPM distribution',
        description: 'What the shoal stack requires from the distribution, for a test root.',
        license: 'MIT',
        provides: ['glibc = 2.36', 'python(abi) = 3.11', 'util-linux = 2.38', 'coreutils = 9.1'],
        files: [
          { path: '/bin/sh', type: 'file', source: '/bin/busybox', mode: 0o755 },
          { path: '/sbin/ldconfig', type: 'file', source: '/sbin/ldconfig', mode: 0o755 },
        ],
        sourceDateEpoch: 1700000000,
        compression: 'gzip',
      },
      join(base, 'shoal-test-base-1.0-1.x86_64.rpm'),
    );
    execFileSync('createrepo_c', ['-q', base]);
    const repos = join(tmp, 'yum.repos.d');
    mkdirSync(repos, { recursive: true });
    copyFileSync(join(parts(a), 'rpm-repository/shoal.repo'), join(repos, 'shoal.repo'));
    writeFileSync(join(repos, 'base.repo'), `[base]\nname=base\nbaseurl=file://${base}\nenabled=1\ngpgcheck=0\n`);
    const root = join(tmp, 'rpmroot');
    const dnf = (...args: string[]) =>
      run('dnf', ['-y', '-q', `--installroot=${root}`, '--releasever=1', `--setopt=reposdir=${repos}`, `--setopt=cachedir=${join(tmp, 'dnf-cache')}`, '--setopt=install_weak_deps=False', ...args]);
    const inst = await dnf('install', 'shoal', 'shoal-ganeti');
    expect(inst.status, inst.stdout + inst.stderr).toBe(0);
    const qa = () => execFileSync('rpm', ['--root', root, '-qa', '--qf', '%{NAME}\n'], { encoding: 'utf8' }).split('\n').filter((n) => n && !n.startsWith('gpg-pubkey')).sort();
    expect(qa()).toEqual(['libshoal0', 'python3-shoal', 'shoal', 'shoal-ganeti', 'shoal-test-base', 'shoal-tools']);
    // every file as packaged (digest, size, mode, owner, link target)
    const v = await run('rpm', ['--root', root, '-V', 'libshoal0', 'python3-shoal', 'shoal', 'shoal-ganeti', 'shoal-tools']);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toBe('');
    expect(existsSync(join(root, 'usr/lib64/libshoal.so.0'))).toBe(true);
    expect(existsSync(join(root, 'usr/share/ganeti/extstorage/shoal/attach'))).toBe(true);
    // the package signatures were checked against the repository's key (gpgcheck = 1)
    expect(readFileSync(join(repos, 'shoal.repo'), 'utf8')).toMatch(/^gpgcheck=1$/m);
    // the stand-in base stays (dnf would otherwise remove it as an unneeded dependency)
    const rm = await dnf('--setopt=clean_requirements_on_remove=False', 'remove', 'shoal', 'shoal-ganeti', 'python3-shoal', 'shoal-tools', 'libshoal0');
    expect(rm.status, rm.stdout + rm.stderr).toBe(0);
    expect(qa()).toEqual(['shoal-test-base']);
    const left = spawnSync('sh', ['-c', 'cd "$1" && find usr etc -path usr/lib/sysimage -prune -o \\( -name "*shoal*" -print \\)', 'sh', root], { encoding: 'utf8' });
    expect(left.stdout).toBe('');
  }, 600_000);
});

describe('the kernel module', () => {
  test('the binary module package\'s module loads in the booted Debian kernel (QEMU)', () => {
    const log = readFileSync(join(parts(a), 'shoal-load/serial.log'), 'utf8');
    expect(log).toMatch(/^shoal \d+ 0 - Live/m);
    expect(log).toMatch(/shoal: kernel module 0\.3\.1 loaded \(pool ganeti-disks\)/);
    expect(log).toContain('SHOAL-LOADED');
    expect(readFileSync(join(a, 'out/test-results/shoal-load/qemu.xml'), 'utf8')).toMatch(/failures="0"/);
  });
});
