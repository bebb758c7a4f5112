// The example distribution in recipes/ builds (as `npm run example` does), into a temporary out/.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect, test } from 'vitest';
import { ajv, cyclonedxValidator, verifyProvenance } from './helpers/evidence.js';
import { kilnP } from './helpers/kiln.js';

const root = join(import.meta.dirname, '..');

test('recipes/distribution.cfg builds GNU hello from Debian upstream source, runs it, and packages it lint-clean', async () => {
  const out = mkdtempSync(join(tmpdir(), 'kiln-example-'));
  // the user's cache (downloads are keyed by content): a second test run downloads nothing
  const env = { KILN_CACHE_DIR: join(process.env.HOME ?? '/root', '.cache', 'kiln') };
  const r = await kilnP(root, ['build', '-c', 'recipes/distribution.cfg', '-o', out, '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  expect(readFileSync(join(out, 'parts/hello-smoke/greeting.txt'), 'utf8')).toBe('built by kiln\n');
  expect(execFileSync(join(out, 'parts/hello/bin/hello'), ['--version'], { encoding: 'utf8' })).toMatch(/GNU Hello\) 2\.10/);
  // the example packages are lint-clean: lintian and rpmlint report no errors
  const debs = ['hello-bin', 'hello-extras'].map((p) => join(out, 'parts', p, readdirSync(join(out, 'parts', p)).find((f) => f.endsWith('.deb'))!));
  const rpms = debs.map((d) => join(dirname(d), readdirSync(dirname(d)).find((f) => f.endsWith('.rpm'))!));
  const lint = spawnSync('lintian', ['--tag-display-limit', '0', ...debs], { encoding: 'utf8' });
  expect(lint.stdout.split('\n').filter((l) => l.startsWith('E:')), lint.stdout).toEqual([]);
  const home = mkdtempSync(join(tmpdir(), 'kiln-rpmlint-'));
  execFileSync('rpm', ['--import', join(out, 'parts/archive-key/public.asc')], { env: { ...process.env, HOME: home } });
  expect(execFileSync('rpm', ['-K', ...rpms], { encoding: 'utf8', env: { ...process.env, HOME: home } })).toMatch(/digests signatures OK\n.*digests signatures OK/);
  const rl = spawnSync('rpmlint', rpms, { encoding: 'utf8', env: { ...process.env, HOME: home } });
  expect(rl.stdout, rl.stdout).toMatch(/\b0 errors\b/);
  // release evidence (docs/evidence.md): manifest, SBOMs and signed provenance, valid
  const readJson = (f: string) => JSON.parse(readFileSync(join(out, f), 'utf8'));
  const m = readJson('manifest.json');
  const vm = ajv().compile(JSON.parse(readFileSync(join(root, 'schemas', 'manifest.schema.json'), 'utf8')));
  expect(vm(m), JSON.stringify(vm.errors)).toBe(true);
  expect([...new Set(m.artifacts.map((a: { type: string }) => a.type))]).toEqual(expect.arrayContaining(['deb', 'rpm', 'apt-repository', 'rpm-repository', 'chroot-tarball', 'test-result', 'signing-key']));
  const cdx = readJson('sbom/kiln.cdx.json');
  const vc = cyclonedxValidator();
  expect(vc(cdx), JSON.stringify(vc.errors)).toBe(true);
  const vs = ajv().compile(JSON.parse(readFileSync(join(root, 'schemas', 'spdx-2.3.schema.json'), 'utf8')));
  expect(vs(readJson('sbom/kiln.spdx.json')), JSON.stringify(vs.errors)).toBe(true);
  const hello = cdx.components.find((c: { purl?: string }) => c.purl === 'pkg:deb/kiln/kiln-hello@2.10-1?arch=amd64');
  expect(hello.pedigree.ancestors[0].externalReferences[0].url).toBe('http://deb.debian.org/debian/pool/main/h/hello/hello_2.10.orig.tar.gz');
  expect(hello.properties).toContainEqual({ name: 'kiln:build-chroot', value: 'chroot:buildenv' });
  expect(hello.components.map((c: { name: string }) => c.name)).toContain('/usr/bin/hello');
  const bookworm = cdx.components.find((c: { 'bom-ref': string }) => c['bom-ref'] === 'chroot:bookworm');
  expect(bookworm.components.find((c: { name: string }) => c.name === 'libc6').purl).toMatch(/^pkg:deb\/debian\/libc6@[^?]+\?arch=amd64&distro=bookworm$/);
  const pub = readFileSync(join(out, 'provenance', 'signing-key.asc'), 'utf8');
  for (const part of ['hello-bin', 'hello-extras', 'apt-repository', 'rpm-repository', 'bookworm']) expect(verifyProvenance(out, part, pub), part).toEqual({ ok: true, why: '' });
  const evidence = ['manifest.json', 'sbom/kiln.cdx.json', 'sbom/kiln.spdx.json', 'provenance/hello-bin.intoto.json'].map((f) => readFileSync(join(out, f)));

  const again = await kilnP(root, ['build', '-c', 'recipes/distribution.cfg', '-o', out, '--json'], env);
  expect(again.code).toBe(0);
  expect(again.events.filter((e) => e.type === 'part-start')).toEqual([]);
  // a no-op build: the same SBOMs and provenance; the manifest says the parts were cached
  expect(['manifest.json', 'sbom/kiln.cdx.json', 'sbom/kiln.spdx.json', 'provenance/hello-bin.intoto.json'].map((f, i) => readFileSync(join(out, f)).equals(evidence[i]!))).toEqual([false, true, true, true]);
  expect(new Set(readJson('manifest.json').parts.map((p: { status: string }) => p.status))).toEqual(new Set(['cached']));

  // kiln diff between this build and one with a new version of one package: exactly that package
  const old = mkdtempSync(join(tmpdir(), 'kiln-example-old-'));
  cpSync(join(out, 'manifest.json'), join(old, 'manifest.json'));
  cpSync(join(out, 'sbom'), join(old, 'sbom'), { recursive: true });
  const bumped = await kilnP(root, ['build', '-c', 'recipes/distribution.cfg', '-o', out, '--json', 'hello-extras:version=2.10-2'], env);
  expect(bumped.code, bumped.stderr).toBe(0);
  const diff = await kilnP(root, ['diff', old, out, '--json'], env);
  expect(diff.code, diff.stderr).toBe(0);
  const d = JSON.parse(diff.stdout);
  expect(d.packages).toEqual([
    { scope: 'built', name: 'kiln-hello-extras', format: 'deb', arch: 'all', old: '2.10-1', new: '2.10-2' },
    { scope: 'built', name: 'kiln-hello-extras', format: 'rpm', arch: 'noarch', old: '2.10-1', new: '2.10-2' },
  ]);
  expect(d.artifacts.filter((a: { part: string }) => a.part === 'hello-extras').map((a: { change: string }) => a.change).sort()).toEqual(['added', 'added', 'removed', 'removed']);
}, 900_000);
