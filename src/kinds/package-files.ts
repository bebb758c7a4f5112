/** Expanding file lists in options: paths and globs (*, ?, [..], **) resolved like path options. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PartOptions } from '../kind.js';

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
        if (glob[i + 1] === '/') i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const j = glob.indexOf(']', i + 1);
      if (j < 0) re += '\\[';
      else {
        re += '[' + glob.slice(i + 1, j).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']';
        i = j;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function walkFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(join(dir, rel)).sort();
  } catch {
    return out;
  }
  for (const n of names) {
    const r = rel ? `${rel}/${n}` : n;
    const st = statSync(join(dir, r));
    if (st.isDirectory()) out.push(...walkFiles(dir, r));
    else out.push(r);
  }
  return out;
}

/** Files named by an option (one path or glob per line), sorted and unique; a pattern that matches nothing is an error. */
export function expandGlobs(o: PartOptions, option: string, extensions?: string[]): string[] {
  const out = new Set<string>();
  for (const p of o.paths(option)) {
    const star = p.search(/[*?[]/);
    if (star < 0) {
      try {
        if (!statSync(p).isFile()) throw new Error();
      } catch {
        throw o.error(option, `file not found: ${p}`);
      }
      out.add(p);
      continue;
    }
    const base = p.slice(0, p.lastIndexOf('/', star));
    const re = globToRegExp(p.slice(base.length + 1));
    const matches = walkFiles(base).filter((f) => re.test(f)).map((f) => join(base, f));
    const wanted = extensions ? matches.filter((f) => extensions.some((e) => f.endsWith(e))) : matches;
    if (wanted.length === 0) throw o.error(option, `no file matches ${p}`);
    for (const m of wanted) out.add(m);
  }
  return [...out].sort();
}

/** `url`: an absolute http(s), ftp or file URL on one line (it is written into client config files). */
export function checkRepoUrl(o: PartOptions): void {
  const u = o.get('url')?.trim();
  if (u !== undefined && u !== '' && !/^(https?|ftp|file):\/\/[^\s"'<>\\]+$/.test(u)) throw o.error('url', `not an absolute http(s), ftp or file URL: '${u}'`);
}
