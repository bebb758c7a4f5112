// DKMS binary module packages from Debian's real acpi-call-dkms and from a small three-module
// source (test/fixtures/dkms/chain: C uses B's exported symbol, B uses A's), built for the bookworm
// kernel in a headers chroot: package layout, lintian and rpmlint, byte-identical rebuilds in a
// second project, install in a container without dkms/gcc/headers, loading under QEMU (insmod;
// modprobe after the package's own depmod), BUILD_EXCLUSIVE, comparison with Debian's own dkms
// 2.8.4 `mkbmdeb`, and a module that fails to compile.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { kilnP, project } from './helpers/kiln.js';

const sha256 = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

export const KVER = '6.1.0-56-amd64';
/** a kernel the chain fixture's BUILD_EXCLUSIVE_KERNEL="^6\." excludes (no headers needed: skipped) */
const OTHER_KVER = '5.10.0-30-amd64';
const env = { KILN_CACHE_DIR: join(process.env.HOME ?? '/root', '.cache', 'kiln') };
const fixtures = join(import.meta.dirname, 'fixtures', 'dkms');

export const DKMS_CFG = `
[security]
mirrors = deb http://deb.debian.org/debian-security bookworm-security main

# the build environment: headers of the target kernel, dkms, compiler
[kbuild]
recipe = kiln:chroot
variant = minbase
mirrors = \${security:mirrors}
packages = linux-headers-${KVER} dkms gcc make kmod
image = true

# a target system: the kernel, no dkms, no compiler, no headers
[ktarget]
recipe = kiln:chroot
variant = minbase
mirrors = \${security:mirrors}
packages = linux-image-${KVER} kmod
image = true

[acpi-call-src]
recipe = kiln:download
url = http://deb.debian.org/debian/pool/main/a/acpi-call/acpi-call-dkms_1.2.2-2.1_all.deb
sha256 = cc37a02230559935661d16cda513b66de79efe2eec26035382fb40158f06e7bc

[acpi-call]
recipe = kiln:dkms
source = \${acpi-call-src:location}/acpi-call-dkms_1.2.2-2.1_all.deb
kernels = ${KVER}
chroot = \${kbuild:location}
`;

const CHAIN_CFG = `
[chain]
recipe = kiln:dkms
source = ${join(fixtures, 'chain')}
kernels = ${KVER} ${OTHER_KVER}
chroot = \${kbuild:location}
`;
// a source with only COPYING (the GPL text): the copyright file comes from the options
const GPL_CFG = `
[gpl]
recipe = kiln:dkms
source = ${join(fixtures, 'gpl')}
kernels = ${KVER}
chroot = \${kbuild:location}
copyright = 2026 kiln test suite <kiln@example.org>
`;
const CHAIN_DEB = `kiln-chain-modules-${KVER}_1.0_amd64.deb`;
const CHAIN_RPM = `kmod-kiln-chain-${KVER.replace(/-/g, '_')}-1.0-1.x86_64.rpm`;

let dir: string;
let first: Awaited<ReturnType<typeof kilnP>>;
const part = (p: string) => realpathSync(join(dir, 'out/parts', p));
const image = (p: string) => readFileSync(join(part(p), 'image-tag'), 'utf8').trim();
const docker = (img: string, mounts: string[], script: string) =>
  spawnSync('docker', ['run', '--rm', '--network', 'none', '--label', 'kiln=1', ...mounts.flatMap((m) => ['-v', `${m}:${m}:ro`]), img, 'sh', '-ec', script], { encoding: 'utf8', timeout: 300_000 });

beforeAll(async () => {
  const p = project({ 'buildout.cfg': `[buildout]\nparts = acpi-call chain gpl ktarget\n${DKMS_CFG}${CHAIN_CFG}${GPL_CFG}` });
  dir = p.dir;
  first = await kilnP(p.dir, ['build', '--json'], env);
  if (first.code !== 0) throw new Error(first.stderr + first.stdout);
}, 1_200_000);

describe('kiln:dkms with Debian acpi-call-dkms', () => {
  test('binary module .deb, kmod .rpm and source dkms .deb, with dkms mkbmdeb naming and fields', () => {
    const files = readdirSync(part('acpi-call')).sort();
    expect(files).toEqual(['acpi-call-dkms_1.2.2_all.deb', `acpi-call-modules-${KVER}_1.2.2_amd64.deb`, 'dkms-build.json', `kmod-acpi-call-${KVER.replace(/-/g, '_')}-1.2.2-1.x86_64.rpm`]);
    const deb = join(part('acpi-call'), `acpi-call-modules-${KVER}_1.2.2_amd64.deb`);
    const f = (name: string) => execFileSync('dpkg-deb', ['--field', deb, name], { encoding: 'utf8' }).trim();
    expect([f('Package'), f('Source'), f('Version'), f('Depends'), f('Provides')]).toEqual([`acpi-call-modules-${KVER}`, 'acpi-call-dkms-bin', '1.2.2', `linux-image-${KVER}`, 'acpi-call-modules']);
    expect(execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' })).toContain(`./lib/modules/${KVER}/updates/dkms/acpi_call.ko`);
    expect(execFileSync('dpkg-deb', ['--info', deb], { encoding: 'utf8' })).toMatch(/postinst[\s\S]*postrm/);
    const rpm = join(part('acpi-call'), files.find((x) => x.endsWith('.rpm'))!);
    expect(execFileSync('rpm', ['-K', '--nosignature', rpm], { encoding: 'utf8' })).toMatch(/digests OK/);
    expect(execFileSync('rpm', ['-qpl', rpm], { encoding: 'utf8' })).toContain(`/lib/modules/${KVER}/extra/acpi-call/acpi_call.ko`);
  });

  test('installs in a clean container without dkms, gcc or headers; modinfo shows the vermagic; depmod ran', () => {
    const d = part('acpi-call');
    const r = docker(image('ktarget'), [d], `
      ! command -v dkms && ! command -v gcc && ! test -e /usr/src/linux-headers-${KVER}
      dpkg -i ${d}/acpi-call-modules-${KVER}_1.2.2_amd64.deb
      modinfo -F vermagic /lib/modules/${KVER}/updates/dkms/acpi_call.ko
      grep '^updates/dkms/acpi_call.ko:' /lib/modules/${KVER}/modules.dep`);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${KVER.replace(/\./g, '\\.')} SMP preempt mod_unload modversions`, 'm'));
  });

  test('the modules load: one QEMU boot of the bookworm kernel; insmod acpi_call; the chain .deb unpacked, its postinst depmod, then modprobe kiln_chain_c loads A, B, C in dependency order; the rebuild in a second project is byte-identical', async () => {
    const p = project({
      'buildout.cfg': `[buildout]\nparts = load\n${DKMS_CFG}${CHAIN_CFG}
# the .ko as the binary package ships it
[ko]
recipe = kiln:command
deb = \${acpi-call:location}/acpi-call-modules-${KVER}_1.2.2_amd64.deb
command = dpkg-deb -x "$KILN_OPT_DEB" "$OUT"

[load]
recipe = kiln:qemu-test
kernel = debian
kernel-version = ${KVER}
files =
  \${ko:location}/lib/modules/${KVER}/updates/dkms/acpi_call.ko /acpi_call.ko
  \${chain:location}/${CHAIN_DEB} /chain.deb
init =
  set -e
  insmod /acpi_call.ko
  grep '^acpi_call ' /proc/modules
  echo ACPI-CALL-LOADED
  # install the binary module package as dpkg would: files, then its postinst (depmod when
  # /boot/System.map-KVER exists; the running kernel's symbols serve as that map)
  mkdir -p /boot
  cat /proc/kallsyms > /boot/System.map-$(uname -r)
  dpkg-deb -x /chain.deb /
  dpkg-deb -e /chain.deb /tmp/chain-control
  ! test -e /lib/modules/$(uname -r)/modules.dep
  sh /tmp/chain-control/postinst configure
  cat /lib/modules/$(uname -r)/modules.dep
  modprobe kiln_chain_c
  grep '^kiln_chain_' /proc/modules
  echo KILN-CHAIN-LOADED
expect =
  ACPI-CALL-LOADED
  KILN-CHAIN-LOADED
timeout = 240
`,
    });
    const t0 = Date.now();
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code, r.stderr).toBe(0);
    console.log(`two module builds + QEMU boot, insmod and modprobe: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const log = readFileSync(join(p.dir, 'out/parts/load/serial.log'), 'utf8');
    expect(log).toMatch(/^acpi_call \d+ 0 - Live/m);
    expect(log).toContain('ACPI-CALL-LOADED');
    // depmod (the package's postinst) recorded the dependencies; modprobe loaded them first
    expect(log).toMatch(/^updates\/dkms\/kiln_chain_c\.ko: updates\/dkms\/kiln_chain_b\.ko updates\/dkms\/kiln_chain_a\.ko\s*$/m);
    expect(log).toMatch(/^kiln_chain_a \d+ 1 kiln_chain_b, Live/m);
    expect(log).toMatch(/^kiln_chain_b \d+ 1 kiln_chain_c, Live/m);
    expect(log).toMatch(/^kiln_chain_c \d+ 0 - Live/m);
    expect(log).toContain('KILN-CHAIN-LOADED');
    expect(readFileSync(join(p.dir, 'out/test-results/load/qemu.xml'), 'utf8')).toMatch(/failures="0"/);
    // the same parts built again in another project (another out/, other temporary build
    // directories): every package is byte-identical
    const again = (x: string) => realpathSync(join(p.dir, 'out/parts', x));
    for (const x of ['acpi-call', 'chain']) {
      const pkgs = readdirSync(part(x)).filter((f) => /\.(deb|rpm)$/.test(f)).sort();
      expect(pkgs.length, x).toBe(3);
      expect(readdirSync(again(x)).filter((f) => /\.(deb|rpm)$/.test(f)).sort()).toEqual(pkgs);
      for (const f of pkgs) expect(sha256(join(again(x), f)), `${x}/${f}`).toBe(sha256(join(part(x), f)));
    }
  }, 900_000);

  test('a module that fails to compile: the compiler error first, with the part name; the docker command only in the log; no package', async () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = broken\n${DKMS_CFG}\n[broken]\nrecipe = kiln:dkms\nsource = ${join(fixtures, 'broken')}\nkernels = ${KVER}\nchroot = \${kbuild:location}\n` });
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\[broken\] module kiln-broken\/0\.1 failed to build for kernel 6\.1\.0-56-amd64:\n\s*\S*kiln_broken\.c:\d+:\d+: error: 'undeclared_symbol_here' undeclared/);
    expect(r.stderr).not.toContain('docker run');
    expect(r.stderr).not.toContain('tail: cannot open');
    const partLog = readFileSync(join(p.dir, 'out/logs/broken.log'), 'utf8');
    expect(partLog).toContain('# kiln: dkms make.log for kernel 6.1.0-56-amd64');
    // the positional parameters: ... arch, the part's share of -j, kernels; dkms runs make with that share
    const jobs = /^# kiln: command in the chroot: bash -c BUILD .*"kiln-broken" "0\.1" "x86_64" "(\d+)" "6\.1\.0-56-amd64"/m.exec(partLog)?.[1];
    expect(jobs, partLog).toBeDefined();
    expect(partLog).toContain(`make -j${jobs} KERNELRELEASE=6.1.0-56-amd64`);
    expect(partLog).toMatch(/kiln_broken\.c:\d+:\d+: error/);
    expect(spawnSync('ls', [join(p.dir, 'out/parts/broken')]).status).not.toBe(0);
  }, 600_000);
});

describe('kiln:dkms with a three-module source (test/fixtures/dkms/chain) and BUILD_EXCLUSIVE', () => {
  test('packages for the 6.1 kernel only: the excluded kernel is skipped with a note and a part-notice event; all three modules in each package; the rpm owns its module directory', () => {
    expect(readdirSync(part('chain')).sort()).toEqual([CHAIN_DEB, 'dkms-build.json', 'kiln-chain-dkms_1.0_all.deb', CHAIN_RPM].sort());
    const reason = `BUILD_EXCLUSIVE_KERNEL="^6\\." does not match kernel ${OTHER_KVER}`;
    expect(first.events).toContainEqual(expect.objectContaining({ type: 'part-notice', part: 'chain', message: `kernel ${OTHER_KVER} skipped (no package for it): ${reason}` }));
    expect(readFileSync(join(dir, 'out/logs/chain.log'), 'utf8')).toContain(`skipped (no package for it): ${reason}`);
    expect(JSON.parse(readFileSync(join(part('chain'), 'dkms-build.json'), 'utf8'))).toMatchObject({ kernels: [KVER], skipped: [{ kernel: OTHER_KVER, reason }] });
    const deb = execFileSync('dpkg-deb', ['--contents', join(part('chain'), CHAIN_DEB)], { encoding: 'utf8' });
    for (const m of ['a', 'b', 'c']) expect(deb).toContain(`./lib/modules/${KVER}/updates/dkms/kiln_chain_${m}.ko`);
    // the copyright is the module source's own
    const cp = spawnSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "./usr/share/doc/kiln-chain-modules-$2/copyright"', 'sh', join(part('chain'), CHAIN_DEB), KVER], { encoding: 'utf8' });
    expect(cp.stdout).toBe(readFileSync(join(fixtures, 'chain', 'copyright'), 'utf8'));
    const rpm = execFileSync('rpm', ['-qp', '--qf', '[%{FILEMODES:perms} %{FILENAMES}\n]', join(part('chain'), CHAIN_RPM)], { encoding: 'utf8' });
    expect(rpm).toMatch(new RegExp(`^drwxr-xr-x /lib/modules/${KVER}/extra/kiln-chain$`, 'm'));
    for (const m of ['a', 'b', 'c']) expect(rpm).toContain(`-rw-r--r-- /lib/modules/${KVER}/extra/kiln-chain/kiln_chain_${m}.ko`);
    // no path of the host's temporary build directory in any module (the byte-identical rebuild
    // is checked with the QEMU test's second project)
    const ko = execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - --wildcards "./lib/modules/*.ko"', 'sh', join(part('chain'), CHAIN_DEB)]);
    expect(ko.length).toBeGreaterThan(10_000);
    expect(ko.includes('.kiln/tmp')).toBe(false);
  });

  test('lintian: no error on the binary module and source .debs; rpmlint: no error but no-signature on the kmod .rpm', () => {
    for (const x of ['acpi-call', 'chain', 'gpl']) {
      const debs = readdirSync(part(x)).filter((f) => f.endsWith('.deb')).map((f) => join(part(x), f));
      const l = spawnSync('lintian', ['--no-cfg', ...debs], { encoding: 'utf8', timeout: 300_000 });
      expect(l.status, l.stdout + l.stderr).not.toBeNull();
      const tags = l.stdout.split('\n').filter(Boolean);
      expect(tags.filter((t) => t.startsWith('E:')), `${x}: ${l.stdout}`).toEqual([]);
      for (const d of debs) {
        const pkg = execFileSync('dpkg-deb', ['--field', d, 'Package'], { encoding: 'utf8' }).trim();
        const contents = execFileSync('dpkg-deb', ['--contents', d], { encoding: 'utf8' });
        expect(contents).toContain(` ./usr/share/doc/${pkg}/copyright\n`);
        expect(contents).toMatch(new RegExp(` \\./usr/share/doc/${pkg}/changelog(\\.Debian)?\\.gz\\n`));
      }
      const rpm = join(part(x), readdirSync(part(x)).find((f) => f.endsWith('.rpm'))!);
      const rl = spawnSync('rpmlint', [rpm], { encoding: 'utf8', timeout: 300_000 });
      const errors = rl.stdout.split('\n').filter((t) => /: E: /.test(t));
      expect(errors.map((e) => e.replace(/^.*: E: (\S+).*$/, '$1')), `${x}: ${rl.stdout}`).toEqual(['no-signature']);
      expect(execFileSync('rpm', ['-qp', '--qf', '%{GROUP}|%{CHANGELOGNAME}', rpm], { encoding: 'utf8' })).toMatch(/^System Environment\/Kernel\|.+ - /);
      const desc = execFileSync('rpm', ['-qp', '--qf', '%{DESCRIPTION}', rpm], { encoding: 'utf8' });
      for (const line of desc.split('\n')) expect(line.length).toBeLessThan(80);
    }
  });

  test('a source with only COPYING (GPL-2): a DEP-5 copyright from the copyright and license options that refers to common-licenses; changelog.Debian.gz for a Debian revision', () => {
    const deb = join(part('gpl'), `kiln-gpl-modules-${KVER}_0.3-1_amd64.deb`);
    const doc = `./usr/share/doc/kiln-gpl-modules-${KVER}`;
    const text = spawnSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "$2"', 'sh', deb, `${doc}/copyright`], { encoding: 'utf8' }).stdout;
    expect(text).toMatch(/^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/\n/);
    expect(text).toContain('\nCopyright: 2026 kiln test suite <kiln@example.org>\nLicense: GPL-2.0-only\n');
    expect(text).toContain('/usr/share/common-licenses/GPL-2.');
    expect(text).not.toContain('TERMS AND CONDITIONS');
    const log = spawnSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "$2" | gzip -dc', 'sh', deb, `${doc}/changelog.Debian.gz`], { encoding: 'utf8' }).stdout;
    expect(log).toMatch(/^kiln-gpl-dkms-bin \(0\.3-1\) unstable; urgency=medium\n/);
    expect(log).toMatch(/\n -- Dynamic Kernel Modules Support Team <pkg-dkms-maint@lists\.alioth\.debian\.org>  \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\n$/);
  });

  test('every kernel excluded (BUILD_EXCLUSIVE_CONFIG): exit 1 with the reason, no stray tail error, no package', async () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = excl\n${DKMS_CFG}\n[excl]\nrecipe = kiln:dkms\nsource = ${join(fixtures, 'excluded')}\nkernels = ${KVER}\nchroot = \${kbuild:location}\n` });
    const r = await kilnP(p.dir, ['build', '--json'], env);
    expect(r.code).toBe(1);
    const failed = r.events.find((e) => e.type === 'part-failed') as { error: string } | undefined;
    expect(failed?.error).toContain(`[excl] module kiln-excluded/0.1: every kernel is excluded by dkms.conf's BUILD_EXCLUSIVE, nothing to package:\n  ${KVER}: BUILD_EXCLUSIVE_CONFIG: CONFIG_KILN_TEST_NEVER_SET is not set (y or m) in the .config of kernel ${KVER}`);
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'part-notice', part: 'excl' }));
    expect(r.stdout + r.stderr + readFileSync(join(p.dir, 'out/logs/excl.log'), 'utf8')).not.toContain('tail: cannot open');
    // without --json: the same notice as a plain line
    const plain = await kilnP(p.dir, ['build'], env);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(new RegExp(`^kiln: note {5}excl: kernel ${KVER.replace(/\./g, '\\.')} skipped \\(no package for it\\): BUILD_EXCLUSIVE_CONFIG: CONFIG_KILN_TEST_NEVER_SET is not set`, 'm'));
    expect(spawnSync('ls', [join(p.dir, 'out/parts/excl')]).status).not.toBe(0);
  }, 600_000);
});

describe("compared with Debian's dkms mkbmdeb (dkms 2.8.4 from bullseye)", () => {
  test('same package name, version and control fields (Maintainer, Description included) and the same module files', async () => {
    const p = project({
      'buildout.cfg': `[buildout]\nparts = acpi-call kref dkms284\n${DKMS_CFG}
[kref]
recipe = kiln:chroot
variant = minbase
mirrors = \${security:mirrors}
packages = linux-headers-${KVER} dkms gcc make kmod dpkg-dev fakeroot debhelper
image = true

[dkms284]
recipe = kiln:download
url = http://deb.debian.org/debian/pool/main/d/dkms/dkms_2.8.4-3_all.deb
sha256 = 34f45872c4c164e838092ddfb098b800d9fd38c25aaf7a262481d6c8b87dffdf
`,
    });
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code, r.stderr).toBe(0);
    const loc = (x: string) => realpathSync(join(p.dir, 'out/parts', x));
    const refOut = join(p.dir, 'ref');
    execFileSync('mkdir', ['-p', refOut]);
    const ref = spawnSync('docker', [
      'run', '--rm', '--network', 'none', '--label', 'kiln=1',
      '-v', `${loc('dkms284')}:/dkms:ro`, '-v', `${loc('acpi-call-src')}:/src:ro`, '-v', `${refOut}:/out`,
      readFileSync(join(loc('kref'), 'image-tag'), 'utf8').trim(), 'sh', '-ec',
      `dpkg -i --force-all /dkms/dkms_2.8.4-3_all.deb >/dev/null 2>&1 || true
       dkms --version
       dpkg-deb -x /src/acpi-call-dkms_1.2.2-2.1_all.deb /
       dkms add -m acpi-call -v 1.2.2
       dkms build -m acpi-call -v 1.2.2 -k ${KVER}
       dkms mkbmdeb -m acpi-call -v 1.2.2 -k ${KVER}
       cp /var/lib/dkms/acpi-call/1.2.2/bmdeb/*.deb /out/`,
    ], { encoding: 'utf8', timeout: 600_000 });
    expect(ref.status, ref.stdout + ref.stderr).toBe(0);
    expect(ref.stdout).toMatch(/dkms-?:?\s*2\.8/);
    const theirs = join(refOut, readdirSync(refOut).find((f) => f.endsWith('.deb'))!);
    const ours = join(loc('acpi-call'), `acpi-call-modules-${KVER}_1.2.2_amd64.deb`);
    expect(theirs.split('/').pop()).toBe(ours.split('/').pop());
    const field = (deb: string, f: string) => execFileSync('dpkg-deb', ['--field', deb, f], { encoding: 'utf8' }).trim();
    for (const f of ['Package', 'Version', 'Architecture', 'Source', 'Maintainer', 'Depends', 'Provides', 'Section', 'Priority', 'Description']) expect(field(ours, f), f).toBe(field(theirs, f));
    const files = (deb: string) =>
      execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' })
        .split('\n')
        .map((l) => l.split(/\s+/).slice(5).join(' '))
        .filter((n) => n && !n.endsWith('/') && !n.startsWith('./usr/share/doc/'))
        .sort();
    expect(files(ours)).toEqual(files(theirs));
    // both build in /var/lib/dkms/acpi-call/1.2.2/build: the module is byte for byte dkms's own
    const ko = (deb: string) => execFileSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - "./lib/modules/$2/updates/dkms/acpi_call.ko"', 'sh', deb, KVER]);
    const koOurs = ko(ours);
    expect(koOurs.length).toBeGreaterThan(10_000);
    expect(createHash('sha256').update(koOurs).digest('hex')).toBe(createHash('sha256').update(ko(theirs)).digest('hex'));
  }, 1_200_000);
});

describe('kiln:dkms option checks (at load time, before any build)', () => {
  test('a bad license, copyright or maintainer is a config error (exit 3) naming file:line, part and option', async () => {
    for (const [opt, value, msg] of [
      ['license', 'GPL 2 or later!', 'expected an SPDX license expression'],
      ['copyright', ' ', 'one line of copyright holders'],
      ['maintainer', 'nobody', "expected 'Name <email>'"],
    ] as const) {
      const p = project({ 'buildout.cfg': `[buildout]\nparts = m\n\n[m]\nrecipe = kiln:dkms\nsource = ${join(fixtures, 'chain')}\nkernels = ${KVER}\nchroot = /nonexistent\n${opt} = ${value}\n` });
      const r = await kilnP(p.dir, ['build'], env);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain(msg);
      expect(r.stderr).toMatch(/buildout\.cfg:\d+/);
      expect(r.stderr).toContain(`[m]`);
      expect(r.stderr).toContain(opt);
    }
  });
});
