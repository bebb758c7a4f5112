/**
 * The contract between kiln's buildout-compatible config language (src/config/)
 * and the engine. The engine only uses what is declared here.
 */
import type { Origin } from '../lib/errors.js';

export type { Origin };

/** How an option got its value, oldest first (for `kiln show`, like `buildout annotate`). */
export interface OptionHistoryEntry {
  /** '=' assignment, '+=' / '-=' modifiers, 'default' (kiln/buildout defaults), 'macro' (copied by <=), 'override' (command line) */
  op: '=' | '+=' | '-=' | 'default' | 'macro' | 'override';
  value: string;
  origin: Origin;
}

export interface LoadOptions {
  /** Defaults for the [buildout] section (lowest priority). zc.buildout's own defaults when omitted. */
  buildoutDefaults?: Record<string, string>;
  /**
   * With buildoutDefaults: zc.buildout's own defaults (executable, eggs-directory, python, ...,
   * `versions` and its pins) too, under buildoutDefaults (which win where both set an option).
   */
  withZcBuildoutDefaults?: boolean;
  /** command-line overrides `section:option=value`, highest priority */
  overrides?: Array<{ section: string; option: string; value: string }>;
  /**
   * variables for conditional section headers ([section:linux] etc.); host values when omitted.
   * Used by the native evaluator; their plain values (bool, number, string) also reach Python.
   */
  conditionGlobals?: Record<string, unknown>;
  /**
   * Python for the headers kiln does not evaluate natively: a path ($KILN_PYTHON or
   * /usr/bin/python3 when omitted), or null for none (such headers are then errors).
   */
  python?: string | null;
  /** where messages go (the conditions Python evaluated); stderr when omitted */
  log?: (message: string) => void;
}

export interface Config {
  /** The top-level file, absolute. */
  readonly file: string;
  /** All section names after extends, conditionals and macros, in first-definition order. */
  sectionNames(): string[];
  has(section: string): boolean;
  /** Option names of a section (after extends and `<=` macros), in definition order. */
  optionNames(section: string): string[];
  /** Raw (unsubstituted) value, or undefined. */
  raw(section: string, option: string): string | undefined;
  /**
   * Resolved value with all ${section:option} / ${:option} substitutions and $$ escapes applied.
   * Lazy and memoised. Throws ConfigError naming file:line, section and option for unknown
   * sections/options and substitution cycles (with the cycle's path).
   */
  get(section: string, option: string): string;
  /** Resolved value, or undefined when the option does not exist (errors inside the value still throw). */
  getOptional(section: string, option: string): string | undefined;
  /** All options of a section, resolved. */
  section(section: string): Record<string, string>;
  /** Where the option's final value was defined. */
  origin(section: string, option: string): Origin | undefined;
  /** Where the section header was (first definition). */
  sectionOrigin(section: string): Origin | undefined;
  history(section: string, option: string): OptionHistoryEntry[];
  /**
   * Sections referenced (directly) by the resolved options of `section`, with the origin of the
   * option that holds each reference. Resolves the whole section. `${:x}` self-references are excluded.
   */
  references(section: string): Map<string, Origin>;
  /** Set an option before resolution (engine defaults such as a part's `location`). */
  setDefault(section: string, option: string, value: string, origin: Origin): void;
}
