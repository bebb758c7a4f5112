// DKMS binary module packages from Debian's real acpi-call-dkms, built for the bookworm kernel in
// a headers chroot: package layout, install in a container without dkms/gcc/headers, comparison
// with Debian's own dkms 2.8.4 `mkbmdeb`, and a module that fails to compile.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { kilnP, project } from './helpers/kiln.js';

export const KVER = '6.1.0-56-amd64';
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

let dir: string;
const part = (p: string) => realpathSync(join(dir, 'out/parts', p));
const image = (p: string) => readFileSync(join(part(p), 'image-tag'), 'utf8').trim();
const docker = (img: string, mounts: string[], script: string) =>
  spawnSync('docker', ['run', '--rm', '--network', 'none', '--label', 'kiln=1', ...mounts.flatMap((m) => ['-v', `${m}:${m}:ro`]), img, 'sh', '-ec', script], { encoding: 'utf8', timeout: 300_000 });

beforeAll(async () => {
  const p = project({ 'buildout.cfg': `[buildout]\nparts = acpi-call ktarget\n${DKMS_CFG}` });
  dir = p.dir;
  const r = await kilnP(p.dir, ['build'], env);
  if (r.code !== 0) throw new Error(r.stderr);
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

  test('the module loads: the bookworm kernel boots under QEMU with an initrd holding the .ko; insmod succeeds and /proc/modules lists it', async () => {
    const p = project({
      'buildout.cfg': `[buildout]\nparts = load\n${DKMS_CFG}
# the .ko as the binary package ships it
[ko]
recipe = kiln:command
deb = \${acpi-call:location}/acpi-call-modules-${KVER}_1.2.2_amd64.deb
command = dpkg-deb -x "$KILN_OPT_DEB" "$OUT"

[load]
recipe = kiln:qemu-test
kernel = debian
kernel-version = ${KVER}
files = \${ko:location}/lib/modules/${KVER}/updates/dkms/acpi_call.ko /acpi_call.ko
init =
  insmod /acpi_call.ko
  grep '^acpi_call ' /proc/modules
  echo ACPI-CALL-LOADED
expect = ACPI-CALL-LOADED
timeout = 180
`,
    });
    const t0 = Date.now();
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code, r.stderr).toBe(0);
    console.log(`module build + QEMU boot and insmod: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const log = readFileSync(join(p.dir, 'out/parts/load/serial.log'), 'utf8');
    expect(log).toMatch(/^acpi_call \d+ 0 - Live/m);
    expect(log).toContain('ACPI-CALL-LOADED');
    expect(readFileSync(join(p.dir, 'out/test-results/load/qemu.xml'), 'utf8')).toMatch(/failures="0"/);
  }, 900_000);

  test('a module that fails to compile: the compiler error with the part name, and no package', async () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = broken\n${DKMS_CFG}\n[broken]\nrecipe = kiln:dkms\nsource = ${join(fixtures, 'broken')}\nkernels = ${KVER}\nchroot = \${kbuild:location}\n` });
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\[broken\] module kiln-broken\/0\.1 failed to build/);
    expect(r.stderr).toMatch(/kiln_broken\.c:\d+:\d+: error: 'undeclared_symbol_here' undeclared/);
    expect(spawnSync('ls', [join(p.dir, 'out/parts/broken')]).status).not.toBe(0);
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
  }, 1_200_000);
});
