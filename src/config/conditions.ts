/**
 * Conditional section headers `[name: expression]`, evaluated as zc.buildout does
 * (`eval('[' + expression + ']', _default_globals())[0]`): natively for the subset real profiles
 * use (src/config/expr.ts), by the system's Python for anything else (src/config/pyfallback.ts),
 * or a ConfigError naming the header and the construct when no Python is there.
 */
import { ConfigLanguageError } from './errors.js';
import { evalCondition, ExprError, PyRaise, truthy } from './expr.js';
import { type ConditionOutcome, scanConditionalHeaders } from './parser.js';
import { PythonConditions } from './pyfallback.js';

export interface ConditionStats {
  /** headers evaluated natively */
  native: number;
  /** headers evaluated by Python, and the distinct expressions among them */
  fallback: number;
  fallbackExpressions: Set<string>;
}

export class Conditions {
  readonly stats: ConditionStats = { native: 0, fallback: 0, fallbackExpressions: new Set() };
  private python: PythonConditions | undefined;

  constructor(
    private globals: () => Record<string, unknown>,
    /** interpreter for the fallback; null: none (an unsupported construct is an error) */
    private pythonPath: string | null,
    private log: (message: string) => void,
    private extra: Record<string, unknown> = {},
  ) {}

  /** The outcome of every conditional header of one file, by line. */
  async evaluateFile(text: string, file: string): Promise<Map<number, ConditionOutcome>> {
    const out = new Map<number, ConditionOutcome>();
    const headers = scanConditionalHeaders(text);
    if (!headers.length) return out;
    const g = this.globals();
    const pending: Array<{ h: (typeof headers)[number]; why: string }> = [];
    const err = (h: (typeof headers)[number], detail: string) =>
      new ConfigLanguageError('condition', `cannot evaluate the condition of section header [${h.sectname}:${h.expression}]: ${detail}`, {
        origin: { file, line: h.line },
        section: h.sectname,
      });
    for (const h of headers) {
      try {
        out.set(h.line, truthy(evalCondition(h.expr, g)));
        this.stats.native++;
      } catch (e) {
        if (!(e instanceof ExprError)) throw e;
        const py = this.interpreter();
        if (py) pending.push({ h, why: e.message });
        else if (e instanceof PyRaise) out.set(h.line, err(h, e.message));
        else
          out.set(
            h.line,
            err(
              h,
              `${e.message} is outside the subset kiln evaluates natively, and ` +
                (this.pythonPath === null
                  ? 'evaluation by Python is turned off'
                  : `there is no Python interpreter at ${this.pythonPath} to evaluate it as zc.buildout does (set KILN_PYTHON)`),
            ),
          );
      }
    }
    if (pending.length) {
      const py = this.python!;
      let results;
      try {
        results = await py.evaluate(
          file,
          pending.map((p) => p.h.expr),
        );
      } catch (e) {
        throw err(pending[0]!.h, (e as Error).message);
      }
      pending.forEach(({ h, why }, i) => {
        const r = results[i]!;
        this.stats.fallback++;
        this.stats.fallbackExpressions.add(h.expr);
        if (r.ok) {
          out.set(h.line, r.value);
          this.log(`${file}:${h.line}: [${h.sectname}:${h.expression}] evaluated by ${py.python} (${why} is not evaluated natively): ${r.repr}`);
        } else out.set(h.line, err(h, `${r.type}: ${r.message} (evaluated by ${py.python})`));
      });
    }
    return out;
  }

  private interpreter(): PythonConditions | undefined {
    if (this.pythonPath === null) return undefined;
    if (!this.python) {
      const p = new PythonConditions(this.pythonPath, this.extra);
      if (!p.available()) return undefined;
      this.python = p;
    }
    return this.python;
  }

  close(): void {
    this.python?.close();
  }
}
