/**
 * Action keys and action results (docs/farm.md has the format).
 *
 * The action key of a part is the sha256 of its signature parts with every machine-specific
 * path replaced by a placeholder (the project directory, out/, the cache directory, each part's
 * location) and each dependency's signature replaced by the dependency's action key. Two
 * machines with the same config, inputs and recipes therefore ask for the same key, wherever
 * they keep the project.
 *
 * The body stored at ac/<key> is an envelope:
 *   { "kiln": "action-result/1", "payload": "<JSON text>", "signature": "<armored OpenPGP detached signature of payload>" | null }
 * and payload is the JSON of ActionResult below.
 */
import { relocateSignature, sha256 } from '../lib/hash.js';
import { planContext, type Part, type Project } from '../engine/project.js';
import type { TreeEntry } from './tree.js';

export const ENVELOPE_FORMAT = 'action-result/1';
export const RESULT_FORMAT = 'kiln-action-result/1';

export interface Digest {
  sha256: string;
  size: number;
}

export interface ResultEntry extends TreeEntry {
  /** small files: index of the pack holding their bytes, and their offset in it */
  pack?: number;
  offset?: number;
}

export interface ActionResult {
  format: typeof RESULT_FORMAT;
  /** the action key this result answers (a result copied to another key is refused) */
  action: string;
  part: string;
  kind: string;
  /** the output tree: depth-first, names sorted; files larger than the pack threshold are blobs cas/<sha256> */
  tree: ResultEntry[];
  /** packs: concatenations of small files' bytes, in tree order */
  packs: Digest[];
  /** the build log */
  log: Digest | null;
}

export interface Envelope {
  kiln: typeof ENVELOPE_FORMAT;
  payload: string;
  signature: string | null;
}

/** True when the part's output embeds its own location (Recipe.locationInOutput). */
export function locationBound(project: Project, part: Part): boolean {
  return !!part.recipe.locationInOutput?.(planContext(project, part));
}

/**
 * Action keys of every part of the project (by part name). A part whose output embeds its own
 * location keys on that concrete path: it is shared only with machines that keep it there.
 */
export function actionKeys(project: Project): Map<string, string> {
  const repl: Array<[string, string]> = [];
  for (const p of project.parts.values()) repl.push([p.location, `@@location:${p.name}@@`]);
  repl.push([project.outDir, '@@out@@'], [project.cacheDir, '@@cache@@'], [project.projectDir, '@@project@@']);
  repl.sort((a, b) => b[0].length - a[0].length);
  const norm = (s: string) => {
    for (const [from, to] of repl) if (from && s.includes(from)) s = s.split(from).join(to);
    return s;
  };
  const keys = new Map<string, string>();
  for (const name of project.order) {
    const part = project.parts.get(name);
    if (!part) continue;
    const sp = part.sigParts;
    const { options, inputs, deps } = relocateSignature(sp, norm, (d, sig) => keys.get(d) ?? `unknown:${sig}`);
    const doc = {
      v: 1,
      recipe: sp.recipe,
      version: sp.version,
      shared: part.shared,
      options,
      inputs,
      deps,
      sourceDateEpoch: sp.sourceDateEpoch,
      ...(locationBound(project, part) ? { location: part.location } : {}),
    };
    keys.set(name, sha256(`kiln-action/1\n${JSON.stringify(doc)}`));
  }
  return keys;
}

const HEX64 = /^[0-9a-f]{64}$/;

function badPath(p: unknown): boolean {
  if (typeof p !== 'string' || p === '' || p.includes('\0') || p.startsWith('/')) return true;
  return p.split('/').some((c) => c === '' || c === '.' || c === '..');
}

function isDigest(d: unknown): d is Digest {
  const x = d as Digest;
  return !!x && typeof x === 'object' && typeof x.sha256 === 'string' && HEX64.test(x.sha256) && Number.isSafeInteger(x.size) && x.size >= 0;
}

/** Check an action result's shape and paths; throws a message naming the first problem. */
export function validateResult(r: ActionResult, key: string): void {
  const fail = (m: string): never => {
    throw new Error(`action result ${key.slice(0, 12)}: ${m}`);
  };
  if (!r || r.format !== RESULT_FORMAT) fail(`unknown format ${JSON.stringify(r?.format)}`);
  if (r.action !== key) fail(`it answers action ${String(r.action).slice(0, 12)}, not this one`);
  if (!Array.isArray(r.tree) || !Array.isArray(r.packs)) fail('no tree');
  if (r.log !== null && !isDigest(r.log)) fail('bad log digest');
  for (const p of r.packs) if (!isDigest(p)) fail('bad pack digest');
  const dirs = new Set<string>(['']);
  const seen = new Set<string>();
  const packEnd = r.packs.map(() => 0);
  for (const e of r.tree) {
    if (badPath(e.path)) fail(`bad path ${JSON.stringify(e.path)}`);
    if (seen.has(e.path)) fail(`${e.path} listed twice`);
    seen.add(e.path);
    const parent = e.path.includes('/') ? e.path.slice(0, e.path.lastIndexOf('/')) : '';
    if (!dirs.has(parent)) fail(`${e.path}: its parent is not a directory listed before it`);
    if (!Number.isInteger(e.mode) || e.mode < 0 || e.mode > 0o7777) fail(`${e.path}: bad mode`);
    if (e.type === 'dir') dirs.add(e.path);
    else if (e.type === 'symlink') {
      if (typeof e.target !== 'string' || e.target === '' || e.target.includes('\0')) fail(`${e.path}: bad symlink target`);
    } else if (e.type === 'file') {
      if (!isDigest({ sha256: e.sha256!, size: e.size! })) fail(`${e.path}: bad digest`);
      if (e.pack !== undefined) {
        if (!Number.isInteger(e.pack) || e.pack < 0 || e.pack >= r.packs.length) fail(`${e.path}: bad pack index`);
        if (e.offset !== packEnd[e.pack!]) fail(`${e.path}: bad pack offset`);
        packEnd[e.pack!] += e.size!;
      }
    } else fail(`${(e as TreeEntry).path}: unknown type ${JSON.stringify((e as TreeEntry).type)}`);
  }
  r.packs.forEach((p, i) => {
    if (p.size !== packEnd[i]) fail(`pack ${i}: size ${p.size} is not the sum of its files (${packEnd[i]})`);
  });
}
