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

/** An SPDX package: what sources, chroots, their packages and built packages all say, in one key order. */
function spdxPackage(p: { id: string; name: string; version?: string; fileName?: string; url?: string; sha256?: string; homepage?: string; license?: string; summary?: string; purl?: string; purpose: string; comment?: string }): Json {
  const some = <K extends string>(key: K, value: unknown) => (value !== undefined ? { [key]: value } : {});
  return {
    SPDXID: p.id,
    name: p.name,
    ...some('versionInfo', p.version),
    ...some('packageFileName', p.fileName),
    downloadLocation: p.url ?? 'NOASSERTION',
    filesAnalyzed: false,
    ...some('checksums', p.sha256 !== undefined ? [{ algorithm: 'SHA256', checksumValue: p.sha256 }] : undefined),
    ...some('homepage', p.homepage),
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: p.license ?? 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    ...some('summary', p.summary),
    ...some('externalRefs', p.purl !== undefined ? [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }] : undefined),
    primaryPackagePurpose: p.purpose,
    ...some('comment', p.comment),
  };
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
    packages.push(
      spdxPackage({
        id,
        name: s.name,
        version: s.version || undefined,
        url: /^[a-z][a-z0-9+.-]*:\/\//i.test(s.url) ? s.url : undefined,
        sha256: s.sha256 || undefined,
        purpose: 'SOURCE',
        comment: `kiln part ${s.part}`,
      }),
    );
  }
  for (const c of inv.chroots) {
    const id = spdxId('Chroot', c.part, c.ref);
    idOf.set(c.ref, id);
    describes.push(id);
    packages.push(spdxPackage({ id, name: c.part, version: c.suite, fileName: c.artifact, sha256: c.sha256, purpose: 'OPERATING_SYSTEM' }));
    for (const p of c.packages) {
      const pid = spdxId('Deb', p.name, p.ref);
      idOf.set(p.ref, pid);
      packages.push(spdxPackage({ id: pid, name: p.name, version: p.version, purl: p.purl, purpose: 'INSTALL' }));
      rels.push([id, 'CONTAINS', pid]);
    }
    for (const p of c.packages) for (const d of p.dependsOn) rels.push([idOf.get(p.ref)!, 'DEPENDS_ON', idOf.get(d)!]);
  }
  for (const b of inv.packages) {
    const i = b.info;
    const id = spdxId(i.format === 'deb' ? 'Deb' : 'Rpm', i.name, b.ref);
    idOf.set(b.ref, id);
    describes.push(id);
    packages.push(
      spdxPackage({
        id,
        name: i.name,
        version: i.version,
        fileName: b.artifacts[0],
        sha256: b.sha256,
        homepage: i.homepage && /^https?:\/\//.test(i.homepage) ? i.homepage : undefined,
        license: i.license,
        summary: i.summary || undefined,
        purl: b.purl,
        purpose: 'INSTALL',
        comment: `kiln part ${b.part}; artifacts: ${b.artifacts.join(' ')}`,
      }),
    );
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
