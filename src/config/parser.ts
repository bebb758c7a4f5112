/**
 * The file format, exactly as zc.buildout 2.13.2's `configparser.parse` reads it.
 *
 * - `#` / `;` in column 0 start a comment line; there are no inline comments in
 *   values (only after a section header's closing `]`).
 * - `name = value`, `name += value`, `name -= value` (kept as option names `name +`
 *   / `name -`, resolved later like zc.buildout does), `<= a b` (macros), `=> a b`
 *   (part dependencies).
 * - A line starting with whitespace continues the current option. If the option's
 *   first line had a value, continuation lines are stripped and blank ones dropped
 *   ("non-block mode"); otherwise they are only right-stripped and blank lines are kept,
 *   then the whole value is dedented and its leading blank lines removed.
 * - Duplicate sections in one file are merged, duplicate options: the last one wins.
 * - `[name: expression]` headers: the section (and its options) is ignored when the
 *   Python expression is false.
 */
import { ConfigLanguageError } from './errors.js';
import { dedent, isPySpace, PY_WS, pyRstrip, pyStrip } from './pyutil.js';

/** A conditional section header `[name: expression]` of a file. */
export interface ConditionalHeader {
  /** 1-based line */
  line: number;
  sectname: string;
  /** as written between ':' and ']' */
  expression: string;
  /** what is evaluated: `\x23` / `\x3b` replaced by `#` / `;` */
  expr: string;
}

/** The value of a header's condition, or the ConfigLanguageError its evaluation raises. */
export type ConditionOutcome = boolean | ConfigLanguageError;

export interface ParsedOption {
  value: string;
  /** 1-based line of the option's first line */
  line: number;
}

export interface ParsedSection {
  /** 1-based line of the first header of this section in the file */
  line: number;
  options: Map<string, ParsedOption>;
}

export type ParsedFile = Map<string, ParsedSection>;

const SECTION_HEADER = new RegExp(
  `^(\\[)[${PY_WS}]*([^${PY_WS}#[\\]:;{}]+)[${PY_WS}]*(:([^#;]*))?[${PY_WS}]*(\\][${PY_WS}]*([#;][^\\n]*)?)$`,
);
const OPTION_START = new RegExp(`^([^${PY_WS}{}[\\]=:]+[${PY_WS}]*[-+]?)=([^\\n]*)$`);
const LEADING_BLANK_LINES = new RegExp(`^(?:[${PY_WS}]*\\n)+`);

function pyRepr(s: string): string {
  // close enough to Python's repr() for error messages
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  return (
    q +
    s
      .replace(/\\/g, '\\\\')
      .replace(/\n/g, '\\n')
      .replace(/\t/g, '\\t')
      .replace(/\r/g, '\\r')
      .replace(new RegExp(q, 'g'), '\\' + q) +
    q
  );
}

/**
 * The conditional headers of a file, in order (every line starting with `[` is a header or a
 * syntax error: such a line is never a continuation nor a comment).
 */
export function scanConditionalHeaders(text: string): ConditionalHeader[] {
  const out: ConditionalHeader[] = [];
  if (!text.includes(':')) return out;
  text = text.replace(/\r\n?/g, '\n');
  let lineno = 0;
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const body = nl < 0 ? text.slice(pos) : text.slice(pos, nl);
    pos = nl < 0 ? text.length : nl + 1;
    lineno++;
    if (body[0] !== '[') continue;
    const header = SECTION_HEADER.exec(body);
    if (header && header[4]) {
      out.push({ line: lineno, sectname: header[2], expression: header[4], expr: header[4].replace(/\\x23/g, '#').replace(/\\x3b/g, ';') });
    }
  }
  return out;
}

/**
 * Parse one file. `condition` gives the outcome of each conditional header (by line), computed
 * before parsing (conditions may need Python: src/config/pyfallback.ts); an error outcome is
 * raised when the parser reaches that header, where zc.buildout's parser raises it.
 * `file` is used in error origins (absolute path or URL).
 */
export function parseConfig(text: string, file: string, condition: (h: ConditionalHeader) => ConditionOutcome): ParsedFile {
  // Python's text mode: universal newlines
  text = text.replace(/\r\n?/g, '\n');
  const sections: ParsedFile = new Map();
  let sectionCondition = true;
  let cursect: ParsedSection | undefined;
  let blockmode = false;
  let optname: string | undefined;
  const bad: Array<[number, string]> = [];

  let pos = 0;
  let lineno = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    let line = nl < 0 ? text.slice(pos) : text.slice(pos, nl + 1);
    pos = nl < 0 ? text.length : nl + 1;
    lineno++;

    if (line[0] === '#' || line[0] === ';') continue;

    if (isPySpace(line[0]) && cursect !== undefined && optname !== undefined) {
      if (!sectionCondition) continue;
      if (blockmode) line = pyRstrip(line);
      else {
        line = pyStrip(line);
        if (!line) continue;
      }
      const o = cursect.options.get(optname)!;
      o.value = `${o.value}\n${line}`;
      continue;
    }
    const body = line.endsWith('\n') ? line.slice(0, -1) : line;
    const header = SECTION_HEADER.exec(body);
    if (header) {
      sectionCondition = true;
      const sectname = header[2];
      const expression = header[4];
      if (expression) {
        const expr = expression.replace(/\\x23/g, '#').replace(/\\x3b/g, ';');
        const outcome = condition({ line: lineno, sectname, expression, expr });
        if (outcome instanceof ConfigLanguageError) throw outcome;
        sectionCondition = outcome;
        if (!sectionCondition) continue;
      }
      cursect = sections.get(sectname);
      if (!cursect) {
        cursect = { line: lineno, options: new Map() };
        sections.set(sectname, cursect);
      }
      optname = undefined;
      continue;
    }
    if (cursect === undefined) {
      if (!pyStrip(line)) continue;
      const why = sectionCondition ? '' : ' (the section header above it has a false condition, so it is ignored)';
      throw new ConfigLanguageError(
        'syntax',
        `file contains no section headers: ${pyRepr(body)} appears before any [section]${why}`,
        { origin: { file, line: lineno } },
      );
    }
    let optLine = body;
    if (optLine.startsWith('=>')) optLine = '<part-dependencies> = ' + optLine.slice(2);
    const mo = OPTION_START.exec(optLine);
    if (mo) {
      if (!sectionCondition) continue;
      optname = pyRstrip(mo[1]);
      const optval = pyStrip(mo[2]);
      const existing = cursect.options.get(optname);
      if (existing) {
        existing.value = optval;
        existing.line = lineno;
      } else cursect.options.set(optname, { value: optval, line: lineno });
      blockmode = !optval;
    } else if (!(optname !== undefined || pyStrip(line))) {
      continue;
    } else {
      bad.push([lineno, body]);
    }
  }

  if (bad.length) {
    const [first, firstLine] = bad[0];
    const more = bad.length > 1 ? ` (and ${bad.length - 1} more: ${bad.slice(1).map(([n]) => `line ${n}`).join(', ')})` : '';
    throw new ConfigLanguageError(
      'syntax',
      `parsing error: ${pyRepr(firstLine)} is neither a [section] header, an option (name = value) nor an indented continuation line${more}`,
      { origin: { file, line: first } },
    );
  }

  for (const sect of sections.values()) {
    for (const o of sect.options.values()) {
      if (isPySpace(o.value[0])) o.value = dedent(pyRstrip(o.value)).replace(LEADING_BLANK_LINES, '');
    }
  }
  return sections;
}
