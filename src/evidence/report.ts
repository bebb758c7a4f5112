/**
 * out/report/index.html: one self-contained page (inline CSS and SVG, no script, no network)
 * for reading a build afterwards: failures first (error and log tail), summary, the part graph
 * coloured by status, a timeline, why parts were rebuilt, test results from JUnit, and the
 * artifact table (size, sha256, signature, lintian/rpmlint verdicts when `kiln report --lint` ran
 * them). Made from out/manifest.json and the last build's record (out/.kiln/evidence/last-run.json).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Project } from '../engine/project.js';
import { writeFileAtomic } from '../lib/fsutil.js';
import { fileName } from './index.js';
import type { Manifest } from './manifest.js';
import type { PartScan } from './scan.js';
import type { PartStatus, RunRecord } from './record.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export const STATUS_COLOURS: Record<PartStatus, string> = {
  failed: '#d9363e',
  skipped: '#e8a317',
  built: '#2e9e4f',
  restored: '#2f7fc1',
  cached: '#9aa5b1',
  'not-run': '#d5dbe1',
};

export function humanBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) (v /= 1024), i++;
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${u[i]}`;
}

export interface TestCaseResult {
  part: string;
  suite: string;
  name: string;
  seconds: number;
  failure?: string;
  output?: string;
}

const unxml = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
const attr = (tag: string, name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];

/** Test cases of JUnit XML files (testsuite/testcase, failure/error, system-out). */
export function parseJunit(xml: string, part: string): TestCaseResult[] {
  const out: TestCaseResult[] = [];
  const suite = unxml(attr(/<testsuite\b[^>]*>/.exec(xml)?.[0] ?? '', 'name') ?? part);
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const head = ` ${m[1]}`;
    const body = m[3] ?? '';
    const f = /<(failure|error)\b([^>]*?)(?:\/>|>([\s\S]*?)<\/\1>)/.exec(body);
    const so = /<system-out>([\s\S]*?)<\/system-out>/.exec(body);
    out.push({
      part,
      suite,
      name: unxml(attr(head, 'name') ?? '?'),
      seconds: Number(attr(head, 'time') ?? 0),
      failure: f ? unxml(f[3] ?? attr(f[2] ?? '', 'message') ?? 'failed') : undefined,
      output: so ? unxml(so[1]!) : undefined,
    });
  }
  return out;
}

export function collectTests(outDir: string): TestCaseResult[] {
  const dir = join(outDir, 'test-results');
  const out: TestCaseResult[] = [];
  if (!existsSync(dir)) return out;
  for (const part of readdirSync(dir).sort(cmp)) {
    const pd = join(dir, part);
    if (!statSync(pd).isDirectory()) continue;
    for (const f of readdirSync(pd).sort(cmp)) if (f.endsWith('.xml')) out.push(...parseJunit(readFileSync(join(pd, f), 'utf8'), part));
  }
  return out;
}

function tail(text: string, lines = 25): string {
  return text.replace(/\s+$/, '').split('\n').slice(-lines).join('\n');
}

function logTail(file: string | undefined, lines = 30): string {
  if (!file || !existsSync(file)) return '';
  const st = statSync(file);
  const buf = readFileSync(file);
  return tail(buf.subarray(Math.max(0, st.size - 64 * 1024)).toString('utf8'), lines);
}

/** Layered drawing of the part graph: column = longest dependency chain below the part. */
export function graphSvg(m: Manifest, status: (p: string) => PartStatus): string {
  const depth = new Map<string, number>();
  const deps = new Map(m.parts.map((p) => [p.name, p.dependencies]));
  const d = (n: string, seen = new Set<string>()): number => {
    const have = depth.get(n);
    if (have !== undefined) return have;
    if (seen.has(n)) return 0;
    seen.add(n);
    const v = Math.max(-1, ...(deps.get(n) ?? []).filter((x) => deps.has(x)).map((x) => d(x, seen))) + 1;
    depth.set(n, v);
    return v;
  };
  const cols: string[][] = [];
  for (const p of m.parts) (cols[d(p.name)] ??= []).push(p.name);
  const W = 170;
  const H = 26;
  const GX = 50;
  const GY = 10;
  const pos = new Map<string, { x: number; y: number }>();
  cols.forEach((c, i) => c.forEach((n, j) => pos.set(n, { x: 10 + i * (W + GX), y: 10 + j * (H + GY) })));
  const width = 20 + cols.length * (W + GX) - GX;
  const height = 20 + Math.max(1, ...cols.map((c) => c.length)) * (H + GY) - GY;
  let s = `<svg xmlns="http://www.w3.org/2000/svg" id="graph" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="part graph">`;
  for (const [from, to] of m.graph.edges) {
    const a = pos.get(from);
    const b = pos.get(to);
    if (!a || !b) continue;
    const x1 = b.x + W;
    const y1 = b.y + H / 2;
    const x2 = a.x;
    const y2 = a.y + H / 2;
    s += `<path d="M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}" fill="none" stroke="#8895a3" stroke-width="1"/>`;
  }
  for (const p of m.parts) {
    const { x, y } = pos.get(p.name)!;
    const st = status(p.name);
    const label = p.name.length > 22 ? p.name.slice(0, 21) + '…' : p.name;
    s += `<g class="node" data-part="${esc(p.name)}" data-status="${st}"><title>${esc(`${p.name} (${p.kind}): ${st}`)}</title><rect x="${x}" y="${y}" width="${W}" height="${H}" rx="5" fill="${STATUS_COLOURS[st]}"/><text x="${x + 8}" y="${y + 17}" font-size="12" fill="${st === 'cached' || st === 'not-run' ? '#1c2733' : '#fff'}">${esc(label)}</text></g>`;
  }
  return s + '</svg>';
}

export interface ReportInput {
  manifest: Manifest;
  run?: RunRecord;
  tests: TestCaseResult[];
  /** per artifact path: signature state (signed package, provenance) */
  signatures: Map<string, string>;
  /** per artifact path: lint verdict, when lintian/rpmlint ran */
  lint: Map<string, { tool: string; verdict: string; detail: string; sha256?: string }>;
  /** absolute log paths by part */
  logs: Map<string, string>;
  /** href of a part's log, relative to the report */
  logHref: (part: string) => string;
}

export function renderReport(r: ReportInput): string {
  const m = r.manifest;
  const run = r.run;
  const statusOf = (n: string): PartStatus => run?.parts[n]?.status ?? m.parts.find((p) => p.name === n)?.status ?? 'not-run';
  const count = (s: PartStatus) => m.parts.filter((p) => statusOf(p.name) === s).length;
  const failed = m.parts.filter((p) => statusOf(p.name) === 'failed');
  const totalBytes = m.artifacts.reduce((t, a) => t + a.size, 0);
  const failingTests = r.tests.filter((t) => t.failure !== undefined);
  const ok = failed.length === 0 && count('skipped') === 0 && (run?.ok ?? true);
  const css = `
  body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1c2733;background:#f4f6f8}
  header{background:${ok ? '#1f6f43' : '#a4262c'};color:#fff;padding:14px 24px}
  header h1{margin:0;font-size:20px} header p{margin:4px 0 0;opacity:.9}
  main{padding:8px 24px 40px} section{background:#fff;border:1px solid #dde3e9;border-radius:8px;margin:16px 0;padding:12px 16px;overflow:auto}
  h2{font-size:16px;margin:4px 0 10px} table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #edf0f3;vertical-align:top}
  th{font-weight:600;background:#f7f9fb} td.num{text-align:right;font-variant-numeric:tabular-nums} code,.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
  .cards{display:flex;gap:12px;flex-wrap:wrap} .card{border-radius:8px;padding:8px 14px;min-width:92px;background:#f7f9fb;border:1px solid #e3e8ed}
  .card b{display:block;font-size:22px} .badge{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:12px}
  pre{background:#0f1720;color:#dfe7ef;padding:10px;border-radius:6px;overflow:auto;max-height:360px;font-size:12px;white-space:pre-wrap;word-break:break-word}
  #failures{border-color:#d9363e;border-width:2px} .bar{height:14px;border-radius:3px;position:absolute;top:3px}
  .lane{position:relative;height:20px;background:#f7f9fb;border-radius:3px} .legend span{margin-right:12px}
  .pass{color:#1f6f43;font-weight:600} .fail{color:#a4262c;font-weight:600}`;
  const badge = (s: PartStatus) => `<span class="badge" style="background:${STATUS_COLOURS[s]};color:${s === 'cached' || s === 'not-run' ? '#1c2733' : '#fff'}">${s}</span>`;
  let h = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>kiln build report: ${esc(m.config.file)}</title><style>${css}</style></head><body>`;
  h += `<header><h1>kiln build report — ${esc(m.config.file)} ${ok ? 'succeeded' : 'FAILED'}</h1><p>kiln ${esc(m.kiln.version)} · SOURCE_DATE_EPOCH ${m.sourceDateEpoch}${run ? ` · started ${esc(run.startedAt)} · -j${run.jobs}` : ''}</p></header><main>`;

  // failures first
  if (failed.length || failingTests.length) {
    h += `<section id="failures"><h2>Failures</h2>`;
    for (const p of failed) {
      const pr = run?.parts[p.name];
      h += `<div class="failure" data-part="${esc(p.name)}"><h3>${badge('failed')} ${esc(p.name)} <small>(${esc(p.kind)})</small></h3><pre>${esc(pr?.error ?? '')}</pre>`;
      const t = logTail(r.logs.get(p.name));
      if (t) h += `<p>Log tail (<a href="${esc(r.logHref(p.name))}">full log</a>):</p><pre>${esc(t)}</pre>`;
      h += `</div>`;
    }
    for (const t of failingTests) h += `<div class="failure test-failure" data-part="${esc(t.part)}"><h3><span class="fail">test failed</span> ${esc(t.part)}: ${esc(t.name)}</h3><pre>${esc(tail(t.failure ?? ''))}</pre>${t.output ? `<pre>${esc(tail(t.output))}</pre>` : ''}</div>`;
    h += `</section>`;
  }

  // summary
  h += `<section id="summary"><h2>Summary</h2><div class="cards">`;
  const card = (id: string, label: string, v: string | number) => `<div class="card" id="${id}"><b>${esc(String(v))}</b>${esc(label)}</div>`;
  h += card('n-parts', 'parts', m.parts.length) + card('n-built', 'built', count('built')) + card('n-restored', 'restored', count('restored')) + card('n-cached', 'cached', count('cached'));
  h += card('n-failed', 'failed', count('failed')) + card('n-skipped', 'skipped', count('skipped')) + card('n-artifacts', 'artifacts', m.artifacts.length) + card('bytes', 'produced', humanBytes(totalBytes));
  h += card('wall', 'wall time', run ? `${run.seconds.toFixed(1)} s` : '–') + card('n-tests', 'tests', `${r.tests.length - failingTests.length}/${r.tests.length} passed`);
  h += `</div></section>`;

  // graph
  h += `<section id="graph-section"><h2>Part graph</h2><p class="legend">${(Object.keys(STATUS_COLOURS) as PartStatus[]).map((s) => `<span>${badge(s)}</span>`).join('')}</p>${graphSvg(m, statusOf)}</section>`;

  // timeline
  // parts that did work in this build (cached and restored ones took no time)
  const ran = m.parts
    .map((p) => ({ p, pr: run?.parts[p.name] }))
    .filter((x) => x.pr && x.pr.startMs !== undefined && (x.pr.status === 'built' || x.pr.status === 'failed'))
    .sort((a, b) => a.pr!.startMs! - b.pr!.startMs! || cmp(a.p.name, b.p.name));
  const span = Math.max(1, run ? run.seconds * 1000 : 0, ...ran.map((x) => x.pr!.startMs! + (x.pr!.seconds ?? 0) * 1000));
  h += `<section id="timeline"><h2>Timeline</h2><table><tr><th style="width:220px">part</th><th>start · duration (of ${(span / 1000).toFixed(1)} s)</th><th style="width:90px">time</th></tr>`;
  for (const { p, pr } of ran) {
    const st = pr!.status;
    const left = (pr!.startMs! / span) * 100;
    const w = Math.max(0.3, (((pr!.seconds ?? 0) * 1000) / span) * 100);
    h += `<tr class="tl"><td>${esc(p.name)}</td><td><div class="lane"><div class="bar" style="left:${left.toFixed(2)}%;width:${Math.min(w, 100 - left).toFixed(2)}%;background:${STATUS_COLOURS[st]}" title="${esc(`${p.name}: ${st}`)}"></div></div></td><td class="num">${(pr!.seconds ?? 0).toFixed(2)} s</td></tr>`;
  }
  const idle = m.parts.length - ran.length;
  if (!run) h += `<tr><td colspan="3">no build recorded (run kiln build)</td></tr>`;
  else if (!ran.length) h += `<tr><td colspan="3">nothing was built in this run</td></tr>`;
  if (run && idle) h += `<tr><td colspan="3">${idle} part${idle === 1 ? '' : 's'} cached, restored or skipped (no work)</td></tr>`;
  h += `</table></section>`;

  // parts and reasons
  h += `<section id="parts-section"><h2>Parts and why they were built</h2><table id="parts"><tr><th>part</th><th>recipe</th><th>status</th><th>why / what happened</th><th>artifacts</th><th>log</th></tr>`;
  const order: PartStatus[] = ['failed', 'skipped', 'built', 'restored', 'cached', 'not-run'];
  const partsSorted = [...m.parts].sort((a, b) => order.indexOf(statusOf(a.name)) - order.indexOf(statusOf(b.name)) || cmp(a.name, b.name));
  for (const p of partsSorted) {
    const pr = run?.parts[p.name];
    const st = statusOf(p.name);
    const why = st === 'failed' ? `${pr?.reason ? `rebuilt: ${pr.reason}. ` : ''}failed: ${(pr?.error ?? '').split('\n')[0]}` : st === 'skipped' ? (pr?.because ?? '') : st === 'built' ? (pr?.reason ?? '') : st === 'restored' ? 'output for this signature was in the store' : st === 'cached' ? 'up to date' : '';
    const log = r.logs.get(p.name);
    h += `<tr class="part" data-part="${esc(p.name)}" data-status="${st}"><td>${esc(p.name)}</td><td><code>${esc(p.recipe)}</code></td><td>${badge(st)}</td><td>${esc(why)}</td><td class="num">${p.artifacts}</td><td>${log && existsSync(log) ? `<a href="${esc(r.logHref(p.name))}">log</a>` : ''}</td></tr>`;
  }
  h += `</table></section>`;

  // tests
  h += `<section id="tests"><h2>Tests (JUnit)</h2><table id="test-table"><tr><th>part</th><th>test</th><th>result</th><th>time</th></tr>`;
  for (const t of r.tests) h += `<tr class="testcase" data-result="${t.failure !== undefined ? 'fail' : 'pass'}"><td>${esc(t.part)}</td><td>${esc(t.name)}</td><td class="${t.failure !== undefined ? 'fail' : 'pass'}">${t.failure !== undefined ? 'FAIL' : 'pass'}</td><td class="num">${t.seconds.toFixed(2)} s</td></tr>`;
  if (!r.tests.length) h += `<tr><td colspan="4">no test results in out/test-results/</td></tr>`;
  h += `</table></section>`;

  // artifacts
  h += `<section id="artifacts-section"><h2>Artifacts</h2><table id="artifacts"><tr><th>artifact</th><th>part</th><th>type</th><th>size</th><th>sha256</th><th>signature</th><th>lint</th></tr>`;
  for (const a of m.artifacts) {
    const l = r.lint.get(a.path);
    const lint = l && (!l.sha256 || l.sha256 === a.sha256) ? l : undefined;
    h += `<tr class="artifact" data-type="${a.type}"><td><code>${esc(a.path)}</code></td><td>${esc(a.part)}</td><td>${esc(a.type)}</td><td class="num">${humanBytes(a.size)}</td><td class="hash" title="${a.sha256}">${a.sha256.slice(0, 16)}…</td><td>${esc(r.signatures.get(a.path) ?? '')}</td><td${lint ? ` class="${lint.verdict === 'pass' ? 'pass' : 'fail'}" title="${esc(lint.detail)}"` : ''}>${lint ? esc(`${lint.tool}: ${lint.verdict}`) : ''}</td></tr>`;
  }
  h += `</table></section>`;
  h += `<footer style="padding:0 24px 24px;color:#5b6b7b">Evidence: <a href="../manifest.json">manifest.json</a> · <a href="../sbom/kiln.cdx.json">CycloneDX SBOM</a> · <a href="../sbom/kiln.spdx.json">SPDX SBOM</a> · <a href="../provenance/">provenance</a></footer>`;
  return h + `</main></body></html>\n`;
}

/** Signature status of each artifact: package signatures (from the scans) and provenance envelopes. */
export function signatureStates(project: Project, m: Manifest, scans: (part: string) => PartScan | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const prov = new Map<string, string>();
  for (const p of m.parts) {
    const f = join(project.outDir, 'provenance', `${fileName(p.name)}.intoto.json`);
    if (!existsSync(f)) continue;
    try {
      const e = JSON.parse(readFileSync(f, 'utf8')) as { signatures?: unknown[] };
      prov.set(p.name, e.signatures?.length ? 'provenance signed' : 'provenance unsigned');
    } catch {
      /* unreadable */
    }
  }
  for (const a of m.artifacts) {
    const bits: string[] = [];
    const scan = scans(a.part);
    const rel = a.path.split('/').slice(2).join('/');
    const pkg = scan?.packages[rel];
    if (pkg) bits.push(pkg.signed ? `${pkg.format} signed` : `${pkg.format} unsigned`);
    if (a.mediaType === 'application/pgp-signature') bits.push('is a signature');
    if (prov.has(a.part) && !a.path.startsWith('test-results/')) bits.push(prov.get(a.part)!);
    out.set(a.path, bits.join(', '));
  }
  return out;
}

export function readLint(project: Project): Map<string, { tool: string; verdict: string; detail: string; sha256?: string }> {
  const f = join(project.kilnDir, 'evidence', 'lint.json');
  try {
    return new Map(Object.entries(JSON.parse(readFileSync(f, 'utf8')) as Record<string, { tool: string; verdict: string; detail: string; sha256?: string }>));
  } catch {
    return new Map();
  }
}

export function writeReport(project: Project, run: RunRecord | undefined, scans?: (part: string) => PartScan | undefined): string {
  const m = JSON.parse(readFileSync(join(project.outDir, 'manifest.json'), 'utf8')) as Manifest;
  const reportDir = join(project.outDir, 'report');
  const logs = new Map<string, string>();
  for (const p of m.parts) logs.set(p.name, run?.parts[p.name]?.log ?? join(project.logsDir, `${p.name}.log`));
  const html = renderReport({
    manifest: m,
    run,
    tests: collectTests(project.outDir),
    signatures: signatureStates(project, m, scans ?? (() => undefined)),
    lint: readLint(project),
    logs,
    logHref: (part) => relative(reportDir, logs.get(part)!).split('\\').join('/'),
  });
  const out = join(reportDir, 'index.html');
  writeFileAtomic(out, html);
  return out;
}
