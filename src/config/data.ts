/**
 * Annotated option values and zc.buildout's merge rules (`_update_section`, `_update`).
 * A Key is zc.buildout's SectionKey: a raw value plus where it came from.
 */
import type { Origin } from '../lib/errors.js';
import type { OptionHistoryEntry } from './types.js';
import { pyCmp } from './pyutil.js';

/** Where a value came from, as zc.buildout classifies sources. */
export type SourceKind = 'file' | 'default' | 'computed' | 'override' | 'implicit';

export interface Hist extends OptionHistoryEntry {
  kind: SourceKind;
}

export class Key {
  /** zc.buildout's notion of `source` (history[-1].source of its own, shorter history). */
  bSource: Hist | undefined;
  /** history is shared with the key this one was cloned from until it changes */
  private shared = false;
  constructor(
    public value: string,
    public history: Hist[],
  ) {
    this.bSource = history[history.length - 1];
  }

  pushHistory(h: Hist): void {
    if (this.shared) {
      this.history = this.history.slice();
      this.shared = false;
    }
    this.history.push(h);
  }

  static set(value: string, origin: Origin, kind: SourceKind, op: Hist['op'] = '='): Key {
    return new Key(value, [{ op, value, origin, kind }]);
  }

  clone(): Key {
    const k = new Key(this.value, this.history);
    k.bSource = this.bSource;
    k.shared = true;
    this.shared = true;
    return k;
  }

  /** Where the final value was defined: the last entry that is not a macro copy. */
  get origin(): Origin | undefined {
    for (let i = this.history.length - 1; i >= 0; i--) if (this.history[i].op !== 'macro') return this.history[i].origin;
    return this.history[this.history.length - 1]?.origin;
  }

  /** SectionKey.overrideValue */
  override(other: Key): void {
    if (other === this) return;
    this.value = other.value;
    const lastOp = other.history[other.history.length - 1]?.op;
    if (lastOp !== '+=' && lastOp !== '-=') this.bSource = other.bSource;
    if (other.history === this.history) return;
    if (this.history.length + other.history.length < 16) {
      for (const h of other.history) if (!this.history.includes(h)) this.pushHistory(h);
      return;
    }
    const mine = new Set(this.history);
    for (const h of other.history) if (!mine.has(h)) this.pushHistory(h);
  }

  /** SectionKey.addToValue */
  add(added: string, from: Key): void {
    this.value = `${this.value}\n${added}`;
    const src = from.bSource;
    const h: Hist = { op: '+=', value: added, origin: src?.origin ?? { file: '', line: 0 }, kind: src?.kind ?? 'file' };
    this.pushHistory(h);
    this.bSource = h;
  }

  /** SectionKey.removeFromValue */
  remove(removed: string, from: Key): void {
    const gone = new Set(removed.split('\n'));
    this.value = this.value
      .split('\n')
      .filter((v) => !gone.has(v))
      .join('\n');
    const src = from.bSource;
    const h: Hist = { op: '-=', value: removed, origin: src?.origin ?? { file: '', line: 0 }, kind: src?.kind ?? 'file' };
    this.pushHistory(h);
    this.bSource = h;
  }
}

export class SectionData {
  constructor(
    public keys: Map<string, Key> = new Map(),
    public origin?: Origin,
  ) {}
  clone(): SectionData {
    const m = new Map<string, Key>();
    for (const [k, v] of this.keys) m.set(k, v.clone());
    return new SectionData(m, this.origin);
  }
}

export type Data = Map<string, SectionData>;

function hasOpKeys(s: SectionData): boolean {
  for (const k of s.keys.keys()) {
    const c = k.charCodeAt(k.length - 1);
    if (c === 43 || c === 45) return true;
  }
  return false;
}

/** Python's `k.rstrip(' +')` */
function rstripSpacePlus(k: string): string {
  let e = k.length;
  while (e > 0 && (k.charCodeAt(e - 1) === 32 || k.charCodeAt(e - 1) === 43)) e--;
  return k.slice(0, e);
}

function sortKey(k: string): [string, string] {
  return [rstripSpacePlus(k), k.slice(-1)];
}

/**
 * zc.buildout's `_update_section(s1, s2)`: s1 updated in place with s2's values;
 * `name +` / `name -` keys of s2 add/remove lines to s2's own `name`, else s1's,
 * else to an implicit empty value. s2 is not modified.
 */
export function updateSection(s1: SectionData, s2in: SectionData): SectionData {
  if (!hasOpKeys(s2in)) {
    // nothing in s2 changes: override s1's keys with (copies of) s2's
    for (const [key, v2] of s2in.keys) {
      const v1 = s1.keys.get(key);
      if (v1) v1.override(v2);
      else s1.keys.set(key, v2.clone());
    }
    if (!s1.origin) s1.origin = s2in.origin;
    return s1;
  }
  const s2 = s2in.clone();
  // only the `name +` / `name -` keys do something in the loop: sort just those
  const items: Array<[[string, string], string, Key]> = [];
  for (const [k, v] of s2.keys) {
    const last = k.charCodeAt(k.length - 1);
    if (last === 43 || last === 45) items.push([sortKey(k), k, v]);
  }
  if (items.length > 1) items.sort(([ka], [kb]) => pyCmp(ka[0], kb[0]) || pyCmp(ka[1], kb[1]));
  for (const [, k, v] of items) {
    if (k.endsWith('+')) {
      const key = rstripSpacePlus(k);
      const sk = s2.keys.get(key) ?? s1.keys.get(key) ?? new Key('', []);
      sk.add(v.value, v);
      s2.keys.set(key, sk);
      s2.keys.delete(k);
    } else if (k.endsWith('-')) {
      const key = k.replace(/[ -]+$/, '');
      const sk = s2.keys.get(key) ?? s1.keys.get(key) ?? new Key('', []);
      sk.remove(v.value, v);
      s2.keys.set(key, sk);
      s2.keys.delete(k);
    }
  }
  for (const [key, v2] of s2.keys) {
    const v1 = s1.keys.get(key);
    if (v1) v1.override(v2);
    else s1.keys.set(key, v2);
  }
  if (!s1.origin) s1.origin = s2.origin;
  return s1;
}

/** zc.buildout's `_update(d1, d2)` */
export function updateData(d1: Data, d2: Data): Data {
  for (const [name, sect] of d2) {
    const s1 = d1.get(name);
    if (s1) updateSection(s1, sect);
    else d1.set(name, sect);
  }
  return d1;
}
