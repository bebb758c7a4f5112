/**
 * SPDX 2.3 JSON from the inventory: packages (built, upstream sources, chroots and their installed
 * packages), the files of built packages, and relationships CONTAINS, GENERATED_FROM, BUILD_TOOL_OF
 * (a build chroot) and DEPENDS_ON. Namespace and ids come from content; `created` is
 * SOURCE_DATE_EPOCH.
 */
import { contentUuid, isoTime, shortHash, type Inventory } from './model.js';

type Json = Record<string, unknown>;
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function spdxId(kind: string, name: string, ref: string): string {
  return `SPDXRef-${kind}-${name.replace(/[^A-Za-z0-9.-]+/g, '-').slice(0, 60)}-${shortHash(ref)}`;
}

export function spdx(inv: Inventory): Json {
  const packages: Json[] = [];
  const files: Json[] = [];
  const rels: Array<[string, string, string]> = [];
  const idOf = new Map<string, string>();
  const describes: string[] = [];
  for (const s of inv.sources) {
    const id = spdxId('Source', s.name, s.ref);
    idOf.set(s.ref, id);
    packages.push({
      SPDXID: id,
      name: s.name,
      ...(s.version ? { versionInfo: s.version } : {}),
      downloadLocation: /^[a-z][a-z0-9+.-]*:\/\//i.test(s.url) ? s.url : 'NOASSERTION',
      filesAnalyzed: false,
      ...(s.sha256 ? { checksums: [{ algorithm: 'SHA256', checksumValue: s.sha256 }] } : {}),
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      primaryPackagePurpose: 'SOURCE',
      comment: `kiln part ${s.part}`,
    });
  }
  for (const c of inv.chroots) {
    const id = spdxId('Chroot', c.part, c.ref);
    idOf.set(c.ref, id);
    describes.push(id);
    packages.push({
      SPDXID: id,
      name: c.part,
      versionInfo: c.suite,
      packageFileName: c.artifact,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: c.sha256 }],
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      primaryPackagePurpose: 'OPERATING_SYSTEM',
    });
    for (const p of c.packages) {
      const pid = spdxId('Deb', p.name, p.ref);
      idOf.set(p.ref, pid);
      packages.push({
        SPDXID: pid,
        name: p.name,
        versionInfo: p.version,
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        licenseConcluded: 'NOASSERTION',
        licenseDeclared: 'NOASSERTION',
        copyrightText: 'NOASSERTION',
        externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
        primaryPackagePurpose: 'INSTALL',
      });
      rels.push([id, 'CONTAINS', pid]);
    }
    for (const p of c.packages) for (const d of p.dependsOn) rels.push([idOf.get(p.ref)!, 'DEPENDS_ON', idOf.get(d)!]);
  }
  for (const b of inv.packages) {
    const i = b.info;
    const id = spdxId(i.format === 'deb' ? 'Deb' : 'Rpm', i.name, b.ref);
    idOf.set(b.ref, id);
    describes.push(id);
    packages.push({
      SPDXID: id,
      name: i.name,
      versionInfo: i.version,
      packageFileName: b.artifacts[0],
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: b.sha256 }],
      ...(i.homepage && /^https?:\/\//.test(i.homepage) ? { homepage: i.homepage } : {}),
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: i.license ?? 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      ...(i.summary ? { summary: i.summary } : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: b.purl }],
      primaryPackagePurpose: 'INSTALL',
      comment: `kiln part ${b.part}; artifacts: ${b.artifacts.join(' ')}`,
    });
    for (const f of i.files) {
      const fid = `SPDXRef-File-${shortHash(`${b.ref}:${f.path}`, 16)}`;
      files.push({ SPDXID: fid, fileName: `.${f.path}`, checksums: f.sha256 ? [{ algorithm: 'SHA256', checksumValue: f.sha256 }] : [], licenseConcluded: 'NOASSERTION', copyrightText: 'NOASSERTION' });
      rels.push([id, 'CONTAINS', fid]);
    }
    for (const s of b.sources) rels.push([id, 'GENERATED_FROM', idOf.get(s)!]);
    for (const c of b.buildChroots) rels.push([idOf.get(c)!, 'BUILD_TOOL_OF', id]);
  }
  for (const b of inv.packages) for (const d of b.dependsOn) rels.push([idOf.get(b.ref)!, 'DEPENDS_ON', idOf.get(d)!]);
  for (const d of describes) rels.push(['SPDXRef-DOCUMENT', 'DESCRIBES', d]);
  packages.sort((a, b) => cmp(a.SPDXID as string, b.SPDXID as string));
  files.sort((a, b) => cmp(a.SPDXID as string, b.SPDXID as string));
  const relationships = rels
    .filter(([a, , b]) => a && b)
    .sort((x, y) => cmp(x[0], y[0]) || cmp(x[1], y[1]) || cmp(x[2], y[2]))
    .map(([a, t, b]) => ({ spdxElementId: a, relationshipType: t, relatedSpdxElement: b }));
  const body: Json = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `kiln-${inv.name}`,
    documentNamespace: '',
    creationInfo: { created: isoTime(inv.sourceDateEpoch), creators: [`Tool: kiln-${inv.kilnVersion}`] },
    documentDescribes: [...describes].sort(cmp),
    packages,
    files,
    relationships,
  };
  body.documentNamespace = `https://spdx.kiln.invalid/${encodeURIComponent(inv.name)}-${contentUuid(JSON.stringify(body))}`;
  return body;
}
