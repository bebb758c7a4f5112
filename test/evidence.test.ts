// Release evidence (docs/evidence.md): manifest, SBOMs, signed provenance, the HTML report in a
// real browser, kiln diff. Small configs (kiln:command + kiln:package + a key), a few seconds each.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { inflateSync } from 'node:zlib';
import { beforeAll, describe, expect, test } from 'vitest';
import { ajv, cyclonedxValidator, verifyProvenance } from './helpers/evidence.js';
import { kiln, project } from './helpers/kiln.js';

const root = join(import.meta.dirname, '..');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const readJson = (f: string) => JSON.parse(readFileSync(f, 'utf8'));

function files(dir: string): string[] {
  const out: string[] = [];
  const rec = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) rec(p);
      else out.push(relative(dir, p));
    }
  };
  if (existsSync(dir)) rec(dir);
  return out;
}

const tool = `
[tool]
recipe = kiln:command
command =
  mkdir -p "$OUT/bin"
  printf '#!/bin/sh\\necho hi\\n' > "$OUT/bin/hi"
  chmod 755 "$OUT/bin/hi"
outputs = bin/hi
`;

const pkg = (part: string, name: string, version: string, extra = '') => `
[${part}]
recipe = kiln:package
name = ${name}
version = ${version}
architecture = all
summary = test package ${name}
description = a test package
maintainer = kiln tests <tests@example.invalid>
license = MIT
files = \${tool:location}/bin/hi => /usr/bin/hi-${name}
${extra}`;

/** Two packages (deb + rpm, one depending on the other) signed with a fixed key that also signs the provenance. */
const config = (bVersion: string) => `[buildout]
parts = pkg-a pkg-b
evidence-signing-key = keys/secret.asc

[key]
location = \${buildout:directory}/keys
${tool}${pkg('pkg-a', 'kiln-a', '1.0-1', 'formats = deb rpm\ndepends = kiln-b\nrpm-requires = kiln-b\nsigning-key = ${key:location}/secret.asc\n')}${pkg('pkg-b', 'kiln-b', bVersion, 'formats = deb\n')}`;

/** For a failure message: where two evidence files differ (an envelope's payload is decoded first). */
function whatDiffers(a: string, b: string): string {
  const parse = (f: string): unknown => {
    try {
      const j = JSON.parse(readFileSync(f, 'utf8'));
      return j && typeof j.payload === 'string' ? { ...j, payload: JSON.parse(Buffer.from(j.payload, 'base64').toString()) } : j;
    } catch {
      return readFileSync(f, 'utf8');
    }
  };
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string): void => {
    if (out.length > 5) return;
    if (x && y && typeof x === 'object' && typeof y === 'object') {
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], `${path}/${k}`);
    } else if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${path}: ${JSON.stringify(x)?.slice(0, 120)} != ${JSON.stringify(y)?.slice(0, 120)}`);
  };
  walk(parse(a), parse(b), '');
  return out.join('; ') || 'same JSON, different bytes';
}

let keyFile: string;
const builds: Record<string, string> = {};

function buildProject(name: string, cfg: string, args: string[] = []): { dir: string; out: string; r: ReturnType<typeof kiln> } {
  const p = project({ 'buildout.cfg': cfg, 'keys/secret.asc': readFileSync(keyFile, 'utf8') });
  const r = kiln(p.dir, ['build', '-j', '2', ...args]);
  builds[name] = p.dir;
  return { dir: p.dir, out: join(p.dir, 'out'), r };
}

beforeAll(() => {
  const home = mkdtempSync(join(tmpdir(), 'kiln-ev-gpg-'));
  execFileSync('gpg', ['--homedir', home, '--batch', '--passphrase', '', '--quick-gen-key', 'kiln evidence test <ev@example.invalid>', 'ed25519', 'sign', 'never'], { stdio: 'ignore' });
  keyFile = join(home, 'secret.asc');
  execFileSync('gpg', ['--homedir', home, '--batch', '--armor', '--output', keyFile, '--export-secret-keys']);
  spawnSync('gpgconf', ['--homedir', home, '--kill', 'all']);
}, 60_000);

describe('release evidence', () => {
  let A: ReturnType<typeof buildProject>;
  let B: ReturnType<typeof buildProject>;
  let C: ReturnType<typeof buildProject>;
  beforeAll(() => {
    A = buildProject('a', config('2.0-1'));
    B = buildProject('b', config('2.0-1'));
    C = buildProject('c', config('2.1-1'));
    for (const x of [A, B, C]) expect(x.r.code, x.r.stderr).toBe(0);
  }, 120_000);

  test('two builds in different directories give byte-identical manifest, SBOMs and provenance, valid against their schemas', () => {
    const evidence = (out: string) => ['manifest.json', ...files(join(out, 'sbom')).map((f) => `sbom/${f}`), ...files(join(out, 'provenance')).map((f) => `provenance/${f}`)];
    const la = evidence(A.out);
    expect(la).toEqual(evidence(B.out));
    expect(la).toEqual(
      expect.arrayContaining(['manifest.json', 'sbom/kiln.cdx.json', 'sbom/kiln.spdx.json', 'sbom/parts/pkg-a.cdx.json', 'sbom/parts/pkg-b.spdx.json', 'provenance/pkg-a.intoto.json', 'provenance/tool.intoto.json', 'provenance/signing-key.asc']),
    );
    for (const f of la) expect(readFileSync(join(B.out, f)).equals(readFileSync(join(A.out, f))), `${f}: ${whatDiffers(join(A.out, f), join(B.out, f))}`).toBe(true);
    expect(A.dir).not.toBe(B.dir);

    // manifest: schema, and every artifact's hash and size are the file's
    const m = readJson(join(A.out, 'manifest.json'));
    const vm = ajv().compile(readJson(join(root, 'schemas', 'manifest.schema.json')));
    expect(vm(m), JSON.stringify(vm.errors)).toBe(true);
    expect(m.parts.map((p: { name: string; status: string }) => `${p.name}:${p.status}`)).toEqual(['pkg-a:built', 'pkg-b:built', 'tool:built']);
    expect(m.graph.edges).toEqual([['pkg-a', 'tool'], ['pkg-b', 'tool']]);
    expect(m.artifacts.map((a: { path: string; type: string }) => `${a.path} ${a.type}`)).toEqual([
      'parts/pkg-a/kiln-a-1.0-1.noarch.rpm rpm',
      'parts/pkg-a/kiln-a_1.0-1_all.deb deb',
      'parts/pkg-b/kiln-b_2.0-1_all.deb deb',
      'parts/tool/bin/hi file',
    ]);
    for (const a of m.artifacts) {
      const b = readFileSync(join(A.out, a.path));
      expect([sha256(b), b.length]).toEqual([a.sha256, a.size]);
    }
    expect(JSON.stringify(m)).not.toContain(A.dir);
    // a broken manifest fails the schema
    expect(vm({ ...m, artifacts: [{ ...m.artifacts[0], sha256: 'xyz' }] })).toBe(false);

    // CycloneDX 1.6 against the library's schema
    const vc = cyclonedxValidator();
    for (const f of la.filter((x) => x.endsWith('.cdx.json'))) {
      const doc = readJson(join(A.out, f));
      expect(vc(doc), `${f}: ${JSON.stringify(vc.errors)}`).toBe(true);
    }
    const cdx = readJson(join(A.out, 'sbom', 'kiln.cdx.json'));
    expect(vc({ ...cdx, specVersion: 1.6 })).toBe(false);
    expect(cdx.metadata.timestamp).toBe('2024-01-01T00:00:00Z');
    const comp = (purl: string) => cdx.components.find((c: { purl?: string }) => c.purl === purl);
    const a = comp('pkg:deb/kiln/kiln-a@1.0-1?arch=all');
    expect(a.licenses).toEqual([{ expression: 'MIT' }]);
    expect(a.hashes[0].content).toBe(sha256(readFileSync(join(A.out, 'parts/pkg-a/kiln-a_1.0-1_all.deb'))));
    const hiSha = sha256(readFileSync(join(A.out, 'parts/tool/bin/hi')));
    expect(a.components.find((c: { name: string }) => c.name === '/usr/bin/hi-kiln-a').hashes[0].content).toBe(hiSha);
    const rpm = comp('pkg:rpm/kiln/kiln-a@1.0-1?arch=noarch');
    expect(rpm.components.find((c: { name: string }) => c.name === '/usr/bin/hi-kiln-a').hashes[0].content).toBe(hiSha);
    const dep = (ref: string) => cdx.dependencies.find((d: { ref: string }) => d.ref === ref).dependsOn;
    expect(dep('pkg:deb/kiln/kiln-a@1.0-1?arch=all')).toEqual(['pkg:deb/kiln/kiln-b@2.0-1?arch=all']);
    expect(dep('pkg:rpm/kiln/kiln-a@1.0-1?arch=noarch')).toEqual([]); // kiln-b has no rpm here

    // SPDX 2.3 against the vendored official schema
    const vs = ajv().compile(readJson(join(root, 'schemas', 'spdx-2.3.schema.json')));
    for (const f of la.filter((x) => x.endsWith('.spdx.json'))) {
      const doc = readJson(join(A.out, f));
      expect(vs(doc), `${f}: ${JSON.stringify(vs.errors)}`).toBe(true);
    }
    const sp = readJson(join(A.out, 'sbom', 'kiln.spdx.json'));
    expect(vs({ ...sp, packages: [{ SPDXID: 'x', bogus: 1 }] })).toBe(false);
    const idOf = (purl: string) => sp.packages.find((p: { externalRefs?: Array<{ referenceLocator: string }> }) => p.externalRefs?.[0]?.referenceLocator === purl).SPDXID;
    const rel = (t: string) => sp.relationships.filter((r: { relationshipType: string }) => r.relationshipType === t).map((r: { spdxElementId: string; relatedSpdxElement: string }) => `${r.spdxElementId} ${r.relatedSpdxElement}`);
    expect(rel('DEPENDS_ON')).toEqual([`${idOf('pkg:deb/kiln/kiln-a@1.0-1?arch=all')} ${idOf('pkg:deb/kiln/kiln-b@2.0-1?arch=all')}`]);
    expect(rel('CONTAINS').filter((r: string) => r.startsWith(idOf('pkg:deb/kiln/kiln-a@1.0-1?arch=all'))).length).toBe(3);
    expect(sp.creationInfo.created).toBe('2024-01-01T00:00:00Z');
  });

  test('provenance: each DSSE envelope verifies (PAE + gpgv) and its subjects match; a tampered .deb or statement fails', () => {
    const pub = readFileSync(join(A.out, 'provenance', 'signing-key.asc'), 'utf8');
    for (const part of ['pkg-a', 'pkg-b', 'tool']) expect(verifyProvenance(A.out, part, pub)).toEqual({ ok: true, why: '' });
    const st = JSON.parse(Buffer.from(readJson(join(A.out, 'provenance', 'pkg-a.intoto.json')).payload, 'base64').toString());
    expect(st.predicate.buildDefinition.externalParameters.config.digest.sha256).toBe(sha256(readFileSync(join(A.dir, 'buildout.cfg'))));
    expect(st.predicate.buildDefinition.externalParameters.options.files).toBe('${buildout:out-directory}/parts/tool/bin/hi => /usr/bin/hi-kiln-a');
    expect(st.predicate.runDetails.byproducts).toEqual([{ name: 'log', uri: 'logs/pkg-a.log', mediaType: 'text/plain' }]);

    // tampered artifact: one byte of the .deb changed in a copy of out/
    const t1 = mkdtempSync(join(tmpdir(), 'kiln-ev-tamper-'));
    cpSync(A.out, t1, { recursive: true, verbatimSymlinks: true });
    const deb = join(t1, 'parts/pkg-a/kiln-a_1.0-1_all.deb');
    const bytes = readFileSync(deb);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(deb, bytes);
    expect(verifyProvenance(t1, 'pkg-a', pub)).toEqual({ ok: false, why: 'subject parts/pkg-a/kiln-a_1.0-1_all.deb does not match' });
    expect(verifyProvenance(t1, 'pkg-b', pub).ok).toBe(true);

    // tampered statement: the subject digest replaced by the tampered file's, signature kept
    const envFile = join(t1, 'provenance', 'pkg-a.intoto.json');
    const env = readJson(envFile);
    const forged = JSON.parse(Buffer.from(env.payload, 'base64').toString());
    forged.subject.find((s: { name: string }) => s.name.endsWith('.deb')).digest.sha256 = sha256(bytes);
    writeFileSync(envFile, JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(forged)).toString('base64') }));
    expect(verifyProvenance(t1, 'pkg-a', pub)).toEqual({ ok: false, why: 'bad signature' });
    // and another key does not verify the genuine envelope
    const other = readFileSync(join(root, 'test', 'fixtures', 'evidence', 'other-public.asc'), 'utf8');
    expect(verifyProvenance(A.out, 'pkg-b', other)).toEqual({ ok: false, why: 'bad signature' });
  });

  test('kiln diff lists exactly the package whose version changed, and the artifacts that changed', () => {
    const r = kiln(A.dir, ['diff', join(A.out, 'manifest.json'), C.out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.packages).toEqual([{ scope: 'built', name: 'kiln-b', format: 'deb', arch: 'all', old: '2.0-1', new: '2.1-1' }]);
    expect(d.artifacts.map((x: { change: string; path: string }) => `${x.change} ${x.path}`)).toEqual(['removed parts/pkg-b/kiln-b_2.0-1_all.deb', 'added parts/pkg-b/kiln-b_2.1-1_all.deb']);
    const same = kiln(A.dir, ['diff', A.out, B.out, '--json']);
    expect(JSON.parse(same.stdout)).toEqual({ artifacts: [], packages: [] });
    const text = kiln(A.dir, ['diff', A.out, C.out]);
    expect(text.stdout).toContain('kiln-b (deb, all): 2.0-1 -> 2.1-1');
    expect(kiln(A.dir, ['diff', A.out]).code).toBe(2);
    expect(kiln(A.dir, ['diff', join(A.dir, 'buildout.cfg'), C.out]).code).toBe(2);
  });

  test('a no-op build keeps the evidence bytes and marks parts cached', () => {
    const before = readFileSync(join(B.out, 'provenance', 'pkg-a.intoto.json'));
    const r = kiln(B.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(B.out, 'provenance', 'pkg-a.intoto.json')).equals(before)).toBe(true);
    expect(readJson(join(B.out, 'manifest.json')).parts.map((p: { status: string }) => p.status)).toEqual(['cached', 'cached', 'cached']);
  });

  test('unchanged evidence is not rewritten on a no-op build; an edited, removed or added evidence file is restored', () => {
    const manifest = join(B.out, 'manifest.json');
    const sbom = join(B.out, 'sbom', 'kiln.cdx.json');
    const good = { manifest: readFileSync(manifest), sbom: readFileSync(sbom) };
    const m0 = statSync(manifest).mtimeMs;
    expect(kiln(B.dir, ['build']).code).toBe(0);
    expect(statSync(manifest).mtimeMs).toBe(m0); // current: not recomputed
    writeFileSync(sbom, readFileSync(sbom, 'utf8').replace('kiln-a', 'kiln-x'));
    writeFileSync(join(B.out, 'provenance', 'extra.intoto.json'), '{}\n');
    rmSync(manifest);
    const r = kiln(B.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(manifest).equals(good.manifest)).toBe(true);
    expect(readFileSync(sbom).equals(good.sbom)).toBe(true);
    expect(existsSync(join(B.out, 'provenance', 'extra.intoto.json'))).toBe(false);
    // a changed signing key changes the provenance even though no part rebuilt
    const env0 = readFileSync(join(B.out, 'provenance', 'pkg-a.intoto.json'), 'utf8');
    const r2 = kiln(B.dir, ['build', '--evidence-key', 'none']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(readFileSync(join(B.out, 'provenance', 'pkg-a.intoto.json'), 'utf8')).not.toBe(env0);
  });
});

test('a missing evidence signing key is a config error naming file:line and option, before anything is built', () => {
  const p = project({ 'buildout.cfg': `[buildout]\nparts = tool\nevidence-signing-key = keys/missing.asc\n${tool}` });
  const r = kiln(p.dir, ['build']);
  expect(r.code).toBe(3);
  expect(r.stderr).toMatch(/buildout\.cfg:3\b.*\[buildout\] evidence-signing-key: file not found: .*keys\/missing\.asc/);
  expect(existsSync(join(p.dir, 'out', 'parts', 'tool'))).toBe(false);
  const r2 = kiln(p.dir, ['build', '--evidence-key', 'nowhere.asc', 'buildout:evidence-signing-key=none']);
  expect(r2.code).toBe(2);
  expect(r2.stderr).toContain('--evidence-key: file not found');
  // 'none': unsigned envelopes
  const r3 = kiln(p.dir, ['build', 'buildout:evidence-signing-key=none']);
  expect(r3.code, r3.stderr).toBe(0);
  expect(readJson(join(p.dir, 'out', 'provenance', 'tool.intoto.json')).signatures).toEqual([]);
  expect(existsSync(join(p.dir, 'out', 'provenance', 'signing-key.asc'))).toBe(false);
});

/** Distinct RGBA values of a PNG (8-bit RGB/RGBA, non-interlaced), decoded with node:zlib. */
function pngColours(file: string): { width: number; height: number; colours: number } {
  const b = readFileSync(file);
  expect(b.subarray(1, 4).toString()).toBe('PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let ctype = 0;
  const idat: Buffer[] = [];
  while (off < b.length) {
    const len = b.readUInt32BE(off);
    const type = b.subarray(off + 4, off + 8).toString();
    const data = b.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect(data[8]).toBe(8);
      ctype = data[9]!;
      expect(data[12]).toBe(0);
    } else if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const bpp = ctype === 6 ? 4 : ctype === 2 ? 3 : 0;
  expect(bpp).toBeGreaterThan(0);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const prev = Buffer.alloc(stride);
  const cur = Buffer.alloc(stride);
  const colours = new Set<number>();
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp]! : 0;
      const up = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      const p = a + up - c;
      const pa = Math.abs(p - a);
      const pb = Math.abs(p - up);
      const pc = Math.abs(p - c);
      const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? up : f === 3 ? (a + up) >> 1 : pa <= pb && pa <= pc ? a : pb <= pc ? up : c;
      cur[i] = (line[i]! + pred) & 0xff;
    }
    for (let x = 0; x < width; x++) colours.add(cur.readUIntBE(x * bpp, bpp));
    cur.copy(prev);
  }
  return { width, height, colours: colours.size };
}

function chromium(args: string[]): string {
  const profile = mkdtempSync(join(tmpdir(), 'kiln-ev-chromium-'));
  const r = spawnSync(
    'chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, ...args],
    { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 },
  );
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

test('a failed build still writes a report that shows the failure first; headless Chromium renders it (DOM counts, non-blank screenshot)', () => {
  // a generated kiln:gpg-key signs the provenance; one part fails after writing a JUnit report
  const cfg = `[buildout]
parts = pkg-a broken after-broken

[key]
recipe = kiln:gpg-key
uid = kiln report test <report@example.invalid>
algorithm = ed25519
${tool}${pkg('pkg-a', 'kiln-a', '1.0-1', 'formats = deb rpm\nsigning-key = ${key:location}/secret.asc\n')}
[broken]
recipe = kiln:command
command =
  mkdir -p "$OUT/test-results"
  printf '<?xml version="1.0"?>\\n<testsuite name="smoke" tests="2" failures="1"><testcase name="starts" time="0.1"/><testcase name="answers" time="0.2"><failure message="no answer">expected 42, got nothing</failure></testcase></testsuite>\\n' > "$OUT/test-results/smoke.xml"
  echo "the service did not answer" >&2
  exit 3

[after-broken]
recipe = kiln:command
needs = \${broken:location}
command = true
`;
  const p = project({ 'buildout.cfg': cfg });
  const r = kiln(p.dir, ['build', '-k', '--report', '-j', '2']);
  expect(r.code, r.stderr).toBe(1);
  const out = join(p.dir, 'out');
  const html = join(out, 'report', 'index.html');
  expect(existsSync(html)).toBe(true);
  const m = readJson(join(out, 'manifest.json'));
  expect(m.parts.find((x: { name: string }) => x.name === 'broken').status).toBe('failed');
  expect(m.parts.find((x: { name: string }) => x.name === 'after-broken').status).toBe('skipped');
  // the provenance of pkg-a is signed by the kiln:gpg-key part's key
  const pub = readFileSync(join(out, 'provenance', 'signing-key.asc'), 'utf8');
  expect(execFileSync('gpg', ['--show-keys', '--with-colons', join(out, 'parts/key/public.asc')], { encoding: 'utf8' })).toContain(
    readJson(join(out, 'provenance', 'pkg-a.intoto.json')).signatures[0].keyid,
  );
  expect(verifyProvenance(out, 'pkg-a', pub)).toEqual({ ok: true, why: '' });

  const text = readFileSync(html, 'utf8');
  expect(text).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)|<link /);
  const dom = chromium(['--dump-dom', `file://${html}`]);
  const count = (re: RegExp) => (dom.match(re) ?? []).length;
  expect(count(/<tr class="part"/g)).toBe(m.parts.length);
  expect(count(/<tr class="artifact"/g)).toBe(m.artifacts.length);
  expect(count(/<g class="node"/g)).toBe(m.parts.length);
  expect(count(/<tr class="testcase" data-result="fail"/g)).toBe(1);
  expect(count(/<tr class="testcase" data-result="pass"/g)).toBe(1);
  // the failure comes first: the first section of the page, naming the part, its error and log tail
  const firstSection = /<section[^>]*>([\s\S]*?)<\/section>/.exec(dom)!;
  expect(firstSection[0]).toMatch(/^<section id="failures">/);
  expect(firstSection[1]).toContain('data-part="broken"');
  expect(firstSection[1]).toContain('the service did not answer');
  expect(firstSection[1]).toContain('expected 42, got nothing');
  expect(/<tr class="part" data-part="([^"]+)"/.exec(dom)![1]).toBe('broken');

  const shots = join(root, 'out', 'test-results');
  mkdirSync(shots, { recursive: true });
  const png = join(shots, 'evidence-report-failed.png');
  chromium([`--screenshot=${png}`, '--window-size=1280,1600', `file://${html}`]);
  const pc = pngColours(png);
  expect(pc.width).toBe(1280);
  expect(pc.colours).toBeGreaterThan(50);

  // kiln report --lint: lintian / rpmlint verdicts of the packages join the artifact table
  const rep = kiln(p.dir, ['report', '--lint']);
  expect(rep.code, rep.stderr).toBe(0);
  expect(rep.stdout.trim()).toBe(html);
  const lint = readJson(join(out, '.kiln', 'evidence', 'lint.json'));
  expect(Object.keys(lint)).toEqual(['parts/pkg-a/kiln-a-1.0-1.noarch.rpm', 'parts/pkg-a/kiln-a_1.0-1_all.deb']);
  expect(lint['parts/pkg-a/kiln-a_1.0-1_all.deb'].tool).toBe('lintian');
  expect(lint['parts/pkg-a/kiln-a-1.0-1.noarch.rpm'].tool).toBe('rpmlint');
  const dom2 = chromium(['--dump-dom', `file://${html}`]);
  expect(dom2).toMatch(/<td[^>]*>lintian: (pass|warnings|errors)<\/td>/);
  expect(dom2).toMatch(/<td[^>]*>rpmlint: (pass|warnings|errors)<\/td>/);
  // the failure is still first: the report comes from the last build's record
  expect(/<section[^>]*>/.exec(dom2)![0]).toBe('<section id="failures">');

  // why each part rebuilt: change the tool's command, rebuild pkg-a with a report
  p.write({ 'buildout.cfg': cfg.replace(`printf '#!/bin/sh\\necho hi\\n'`, `printf '#!/bin/sh\\necho hello\\n'`) });
  const r3 = kiln(p.dir, ['build', '--report', 'pkg-a']);
  expect(r3.code, r3.stderr).toBe(0);
  const dom3 = chromium(['--dump-dom', `file://${html}`]);
  const row = (part: string) => new RegExp(`<tr class="part" data-part="${part}" data-status="([a-z-]+)">(.*?)</tr>`).exec(dom3);
  expect(row('tool')![1]).toBe('built');
  expect(row('tool')![2]).toMatch(/option 'command' changed/);
  expect(row('pkg-a')![1]).toBe('built');
  expect(row('pkg-a')![2]).toMatch(/tool/); // rebuilt because its dependency changed
  expect(row('key')![1]).toBe('cached');
}, 180_000);

test('a chroot tarball: installed packages from its dpkg status, with their dependencies', async () => {
  const { inspectChroot } = await import('../dist/evidence/inspect.js');
  const d = mkdtempSync(join(tmpdir(), 'kiln-ev-chroot-'));
  mkdirSync(join(d, 'root/var/lib/dpkg'), { recursive: true });
  writeFileSync(
    join(d, 'root/var/lib/dpkg/status'),
    'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\nDepends: libgcc-s1\n\nPackage: libgcc-s1\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.2.0-14\n\nPackage: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n\nPackage: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\nPre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)\nDepends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)\n',
  );
  execFileSync('tar', ['-cf', join(d, 'rootfs.tar'), '-C', join(d, 'root'), '.']);
  expect(inspectChroot(join(d, 'rootfs.tar'))).toEqual([
    { name: 'bash', version: '5.2.15-2+b2', arch: 'amd64', depends: ['base-files', 'debianutils', 'libc6', 'libtinfo6'] },
    { name: 'libc6', version: '2.36-9+deb12u4', arch: 'amd64', depends: ['libgcc-s1'] },
    { name: 'libgcc-s1', version: '12.2.0-14', arch: 'amd64', depends: [] },
  ]);
  // without a dpkg status: the chroot recipe's manifest list
  mkdirSync(join(d, 'bare/etc'), { recursive: true });
  writeFileSync(join(d, 'bare/etc/hostname'), 'bare\n');
  execFileSync('tar', ['-cf', join(d, 'empty.tar'), '-C', join(d, 'bare'), '.']);
  writeFileSync(join(d, 'manifest'), 'zlib1g\t1:1.2.13.dfsg-1\tamd64\n');
  expect(inspectChroot(join(d, 'empty.tar'), join(d, 'manifest'))).toEqual([{ name: 'zlib1g', version: '1:1.2.13.dfsg-1', arch: 'amd64', depends: [] }]);
});
