/**
 * kiln:command (alias plone.recipe.command): run a step with declared inputs and outputs.
 *
 *   argv     one argument per line, run directly (no shell)
 *   command  the user's own bash script (bash -euo pipefail); values reach it as environment
 *            variables: OUT (write outputs here), LOCATION (final path), WORK, SOURCE_DATE_EPOCH,
 *            and KILN_OPT_<NAME> for every option of the part
 *   inputs   files/directories whose content is part of the signature
 *   (other)  any other option is a variable for the script ($KILN_OPT_<NAME>); near misses of the
 *            options above (e.g. `comand`) are still reported as unknown
 *   outputs  paths below OUT that must exist afterwards
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { CLEAN_ROOM_OPTIONS, type OptionSpec, type PlanContext, type Recipe } from '../kind.js';

const OPTIONS = {
  ...CLEAN_ROOM_OPTIONS,
  command: { type: 'string', multiline: true, description: 'bash script (your own code); options reach it as $KILN_OPT_<NAME>' },
  argv: { type: 'lines', description: 'a command, one argument per line, run without a shell' },
  'update-command': { type: 'string', multiline: true, description: 'plone.recipe.command compatibility (ignored: kiln rebuilds when inputs change)' },
  'stop-on-error': { type: 'string', description: 'plone.recipe.command compatibility (always true)' },
  inputs: { type: 'paths', description: 'files or directories (one per line) whose content is part of the signature' },
  outputs: { type: 'lines', pattern: /^(?!\/)(?!(.*\/)?\.\.(\/|$)).+$/, expected: 'a path relative to $OUT that stays inside it', description: 'paths (relative to $OUT) that must exist after the run' },
  environment: { type: 'env', description: 'KEY=VALUE lines' },
  cwd: { type: 'path', description: 'working directory (default: a scratch directory)' },
} as const satisfies Record<string, OptionSpec>;

/** The variable an option reaches the script as: foo-bar, foo.bar and FOO_BAR are all KILN_OPT_FOO_BAR. */
export function optionEnvName(option: string): string {
  let v = ENV_NAMES.get(option);
  if (v === undefined) ENV_NAMES.set(option, (v = `KILN_OPT_${option.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`));
  return v;
}
const ENV_NAMES = new Map<string, string>(); // option names repeat across parts (a 500-part graph: a handful)

/** Linux refuses one environment string longer than this (MAX_ARG_STRLEN). */
const MAX_VAR = 32 * 4096;

/** Whether any option value of the part names `word` (the script may then use that variable). */
const mentions = (ctx: PlanContext, word: string) => Object.values(ctx.options.all()).some((v) => v.includes(word));

export const recipe: Recipe = {
  kind: 'command',
  version: '1',
  description: 'run a command or a bash script with declared inputs and outputs',
  options: OPTIONS,
  cleanRoom: true,
  // the command gets $KILN_JOBS (its share of -j): only a command that uses it gets more than one slot
  innerJobs: (ctx) => mentions(ctx, 'KILN_JOBS'),
  // any other option is a variable of the script, exported as $KILN_OPT_<NAME>
  optionPatterns: [/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/],
  validate(ctx) {
    const o = ctx.options;
    const { command, argv } = o.typed(OPTIONS);
    if (!command?.trim() && !argv.length) throw o.error('command', "one of 'command' or 'argv' is required");
    if (command?.trim() && argv.length) throw o.error('argv', "give 'command' or 'argv', not both");
    // every option becomes an environment variable: two options on one variable would hide one
    const byVar = new Map<string, string>();
    for (const [k, v] of Object.entries(o.all()).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const name = optionEnvName(k);
      const prev = byVar.get(name);
      if (prev !== undefined) throw o.error(k, `options '${prev}' and '${k}' both reach the script as $${name}; rename one of them`);
      byVar.set(name, k);
      const size = Buffer.byteLength(name) + 1 + Buffer.byteLength(v);
      if (size > MAX_VAR) throw o.error(k, `value is ${Buffer.byteLength(v)} bytes: too big for the environment variable $${name} (Linux takes at most ${MAX_VAR} bytes per variable); put it in a file and pass the file's path`);
    }
  },
  inputs(ctx) {
    return ctx.options.typed(OPTIONS).inputs;
  },
  tools(ctx) {
    const { argv } = ctx.options.typed(OPTIONS);
    return argv.length ? [argv[0]!] : ['bash'];
  },
  // the command gets $LOCATION: when it uses it, assume the output may record it
  locationInOutput: (ctx) => mentions(ctx, 'LOCATION'),
  async install(ctx) {
    const o = ctx.options;
    const v = o.typed(OPTIONS);
    const env: Record<string, string> = {
      ...v.environment,
      OUT: ctx.staging,
      LOCATION: ctx.location,
      WORK: ctx.work,
      KILN_PART: ctx.part,
      KILN_JOBS: String(ctx.jobs), // this part's share of the -j budget (make -j"$KILN_JOBS")
      SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch),
    };
    for (const [k, v] of Object.entries(o.all())) env[optionEnvName(k)] = v;
    const cwd = v.cwd ?? ctx.work;
    if (v.argv.length) await ctx.run(v.argv, { cwd, env });
    else await ctx.run(['bash', '-euo', 'pipefail', '-c', v.command!], { cwd, env });
    const missing = v.outputs.filter((p) => !existsSync(join(ctx.staging, p)));
    if (missing.length) {
      const spaced = missing.some((m) => /\s/.test(m)) ? ' (outputs takes one path per line)' : '';
      throw new KilnError(`[${ctx.part}] declared outputs missing after the command: ${missing.map((m) => `'${m}'`).join(', ')} (write them under $OUT)${spaced}`);
    }
  },
};
export default recipe;
