/**
 * Errors kiln reports to users. Every error that comes from bad input names
 * where it came from (file:line, part, option) so it can be fixed without guessing.
 */

/** Process exit codes (documented in docs/cli.md). */
export const ExitCode = {
  OK: 0,
  BUILD_FAILED: 1,
  USAGE: 2,
  CONFIG: 3,
  MISSING_TOOL: 4,
  LOCKED: 5,
  INTERRUPTED: 130,
  /** SIGHUP: stopped like an interruption (128 + 1) */
  HANGUP: 129,
} as const;

export interface Origin {
  file: string;
  line: number;
}

export function formatOrigin(o: Origin | undefined): string {
  if (!o) return '';
  return o.line > 0 ? `${o.file}:${o.line}` : o.file;
}

export class KilnError extends Error {
  exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.BUILD_FAILED) {
    super(message);
    this.name = 'KilnError';
    this.exitCode = exitCode;
  }
}

export interface ConfigErrorWhere {
  origin?: Origin;
  section?: string;
  option?: string;
}

/** Bad recipe input: syntax, unknown section, cycle, unknown recipe/option, bad value. */
export class ConfigError extends KilnError {
  origin?: Origin;
  section?: string;
  option?: string;
  /** the message without the location prefix */
  detail: string;
  constructor(detail: string, where: ConfigErrorWhere = {}) {
    const loc = formatOrigin(where.origin);
    const what =
      where.section !== undefined
        ? where.option !== undefined
          ? `[${where.section}] ${where.option}: `
          : `[${where.section}]: `
        : '';
    super(`${loc ? loc + ': ' : ''}${what}${detail}`, ExitCode.CONFIG);
    this.name = 'ConfigError';
    this.detail = detail;
    this.origin = where.origin;
    this.section = where.section;
    this.option = where.option;
  }
}

/** A host tool is missing; names the Debian package that provides it. */
export class MissingToolError extends KilnError {
  tool: string;
  pkg: string;
  constructor(tool: string, pkg: string, part?: string) {
    super(
      `${part ? `[${part}] ` : ''}required host tool '${tool}' is not installed (Debian package: ${pkg}; run: apt-get install ${pkg}, or bash scripts/setup.sh)`,
      ExitCode.MISSING_TOOL,
    );
    this.name = 'MissingToolError';
    this.tool = tool;
    this.pkg = pkg;
  }
}

/** A command run by a recipe failed; carries the tail of its output. */
export class CommandError extends KilnError {
  argv: string[];
  code: number | null;
  signal: string | null;
  tail: string;
  constructor(argv: string[], code: number | null, signal: string | null, tail: string, logFile?: string) {
    const cmd = argv.map(shellQuote).join(' ');
    const how = signal ? `killed by ${signal}` : `exit code ${code}`;
    super(
      `command failed (${how}): ${cmd}` +
        (tail ? `\n--- last lines of output ---\n${tail.replace(/\s+$/, '')}` : '') +
        (logFile ? `\n--- full log: ${logFile}` : ''),
    );
    this.name = 'CommandError';
    this.argv = argv;
    this.code = code;
    this.signal = signal;
    this.tail = tail;
  }
}

/** Quote one argument for display (never used to build commands that run). */
export function shellQuote(s: string): string {
  if (s === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
