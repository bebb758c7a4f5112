/**
 * CycloneDX 1.6 JSON from the inventory. Containment is nesting (a package's files, a chroot's
 * installed packages), built-from is `pedigree.ancestors` (the upstream sources) plus the build
 * chroots as `kiln:build-chroot` properties, depends-on is the `dependencies` graph. The serial
 * number is derived from the content and the timestamp is SOURCE_DATE_EPOCH: the same build gives
 * the same bytes.
 */
import { contentUuid, isoTime, type Inventory } from './model.js';

type Json = Record<string, unknown>;
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function cyclonedx(inv: Inventory): Json {
  const components: Json[] = [];
  const deps = new Map<string, string[]>();
  const sourceByRef = new Map(inv.sources.map((s) => [s.ref, s]));
  const srcComponent = (s: (typeof inv.sources)[number], withRef: boolean): Json => ({
    type: 'file',
    ...(withRef ? { 'bom-ref': s.ref } : {}),
    name: s.name,
    ...(s.version ? { version: s.version } : {}),
    ...(s.sha256 ? { hashes: [{ alg: 'SHA-256', content: s.sha256 }] } : {}),
    externalReferences: [{ type: 'distribution', url: s.url }],
    ...(withRef ? { properties: [{ name: 'kiln:part', value: s.part }] } : {}),
  });
  for (const s of inv.sources) components.push(srcComponent(s, true));
  for (const c of inv.chroots) {
    components.push({
      type: 'operating-system',
      'bom-ref': c.ref,
      name: c.part,
      version: c.suite,
      hashes: [{ alg: 'SHA-256', content: c.sha256 }],
      properties: [
        { name: 'kiln:artifact', value: c.artifact },
        { name: 'kiln:part', value: c.part },
      ],
      components: c.packages.map((p) => ({ type: 'library', 'bom-ref': p.ref, name: p.name, version: p.version, purl: p.purl, properties: [{ name: 'kiln:arch', value: p.arch }] })),
    });
    deps.set(c.ref, c.packages.map((p) => p.ref));
    for (const p of c.packages) deps.set(p.ref, p.dependsOn);
  }
  for (const b of inv.packages) {
    const i = b.info;
    const ancestors = b.sources.map((r) => sourceByRef.get(r)).filter((s) => s !== undefined).map((s) => srcComponent(s, false));
    components.push({
      type: 'library',
      'bom-ref': b.ref,
      name: i.name,
      version: i.version,
      ...(i.summary ? { description: i.summary } : {}),
      hashes: [{ alg: 'SHA-256', content: b.sha256 }],
      ...(i.license ? { licenses: [{ expression: i.license }] } : {}),
      purl: b.purl,
      ...(i.homepage && /^https?:\/\//.test(i.homepage) ? { externalReferences: [{ type: 'website', url: i.homepage }] } : {}),
      ...(ancestors.length ? { pedigree: { ancestors } } : {}),
      properties: [
        ...b.artifacts.map((a) => ({ name: 'kiln:artifact', value: a })),
        ...b.buildChroots.map((c) => ({ name: 'kiln:build-chroot', value: c })),
        { name: 'kiln:arch', value: i.arch },
        { name: 'kiln:format', value: i.format },
        { name: 'kiln:part', value: b.part },
      ],
      components: i.files.map((f) => ({ type: 'file', 'bom-ref': `${b.ref}:${f.path}`, name: f.path, ...(f.sha256 ? { hashes: [{ alg: 'SHA-256', content: f.sha256 }] } : {}) })),
    });
    deps.set(b.ref, b.dependsOn);
  }
  components.sort((a, b) => cmp(a['bom-ref'] as string, b['bom-ref'] as string));
  const root = `kiln-build:${inv.name}`;
  deps.set(root, components.map((c) => c['bom-ref'] as string));
  const body: Json = {
    $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: '',
    version: 1,
    metadata: {
      timestamp: isoTime(inv.sourceDateEpoch),
      tools: { components: [{ type: 'application', name: 'kiln', version: inv.kilnVersion }] },
      component: { type: 'application', 'bom-ref': root, name: inv.name },
      properties: [{ name: 'kiln:source-date-epoch', value: String(inv.sourceDateEpoch) }],
    },
    components,
    dependencies: [...deps.entries()].sort((a, b) => cmp(a[0], b[0])).map(([ref, on]) => ({ ref, dependsOn: [...on].sort(cmp) })),
  };
  body.serialNumber = `urn:uuid:${contentUuid(JSON.stringify(body))}`;
  return body;
}
