/**
 * Kernel .config fragments: parse, merge the way scripts/kconfig/merge_config.sh -m does (later
 * fragments override earlier values, one line per option, `# CONFIG_X is not set` means n), and
 * find the requested options that the final .config (after olddefconfig) does not hold.
 */

/** option name -> value ('n' for `# CONFIG_X is not set`) in file order */
export type Kconfig = Map<string, string>;

const SET = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const UNSET = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;

export interface KconfigLine {
  name: string;
  value: string;
  line: number;
}

/** The option lines of a .config or fragment; other comments and blank lines are skipped; a line
 *  that is neither is returned in `bad` (a fragment with a typo must not be silently ignored). */
export function parseKconfig(text: string): { entries: KconfigLine[]; bad: Array<{ line: number; text: string }> } {
  const entries: KconfigLine[] = [];
  const bad: Array<{ line: number; text: string }> = [];
  text.split('\n').forEach((raw, i) => {
    const l = raw.trim();
    if (!l) return;
    let m = SET.exec(l);
    if (m) return void entries.push({ name: m[1]!, value: m[2]!, line: i + 1 });
    m = UNSET.exec(l);
    if (m) return void entries.push({ name: m[1]!, value: 'n', line: i + 1 });
    if (l.startsWith('#')) return;
    bad.push({ line: i + 1, text: l });
  });
  return { entries, bad };
}

export function toMap(entries: KconfigLine[]): Kconfig {
  const m: Kconfig = new Map();
  for (const e of entries) m.set(e.name, e.value);
  return m;
}

/** merge_config.sh -m: base, then each fragment overriding; returns the merged text and the
 *  overrides (for the log, as merge_config.sh prints "Value of CONFIG_X is redefined") */
export function mergeKconfig(base: string, fragments: Array<{ name: string; text: string }>): { text: string; overrides: string[]; requested: Map<string, { value: string; from: string; line: number }> } {
  const merged = toMap(parseKconfig(base).entries);
  const overrides: string[] = [];
  const requested = new Map<string, { value: string; from: string; line: number }>();
  for (const f of fragments) {
    for (const e of parseKconfig(f.text).entries) {
      const prev = merged.get(e.name);
      if (prev !== undefined && prev !== e.value) overrides.push(`${f.name}:${e.line}: ${e.name} redefined: ${prev} -> ${e.value}`);
      // merge_config.sh deletes the old line and appends the new one at the end
      merged.delete(e.name);
      merged.set(e.name, e.value);
      requested.set(e.name, { value: e.value, from: f.name, line: e.line });
    }
  }
  return { text: formatKconfig(merged), overrides, requested };
}

export function formatKconfig(m: Kconfig): string {
  let s = '';
  for (const [k, v] of m) s += v === 'n' ? `# ${k} is not set\n` : `${k}=${v}\n`;
  return s;
}

/** Requested options the final .config lacks or holds with another value (an absent option
 *  counts as n, as merge_config.sh's own check does). */
export function lostOptions(final: string, requested: Map<string, { value: string; from: string; line: number }>): Array<{ name: string; want: string; got: string; from: string; line: number }> {
  const f = toMap(parseKconfig(final).entries);
  const lost: Array<{ name: string; want: string; got: string; from: string; line: number }> = [];
  for (const [name, r] of requested) {
    const got = f.get(name) ?? 'n';
    if (got !== r.value) lost.push({ name, want: r.value, got: f.has(name) ? got : 'absent', from: r.from, line: r.line });
  }
  return lost;
}
