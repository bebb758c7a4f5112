/**
 * Section-header conditions kiln does not evaluate natively (src/config/expr.ts) are evaluated
 * by the system's Python, as zc.buildout does: `eval('[' + expression + ']', globals)[0]` with
 * the namespace of zc.buildout 2.13's `_default_globals()` (one namespace per file, as
 * buildout's parser builds one per file). One Python process serves all the fallback
 * expressions of a load; it is started at the first one and ends with the load.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

/** The interpreter: $KILN_PYTHON, else Debian's /usr/bin/python3 (the one zc.buildout runs with). */
export function defaultPython(): string {
  return process.env.KILN_PYTHON || '/usr/bin/python3';
}

export type PyResult = { ok: true; value: boolean; repr: string } | { ok: false; type: string; message: string };

/** zc.buildout 2.13.2's _default_globals(), repeated here so zc.buildout need not be installed (nor imported: it pulls in setuptools). */
const PY_SOURCE = String.raw`
import json, os, sys

def _default_globals():
    import sys
    import os
    import platform
    import re
    globals_defs = {'sys': sys, 'os': os, 'platform': platform, 're': re,}
    major_python_versions = tuple(map(str, platform.python_version_tuple()))
    globals_defs.update({'python2': major_python_versions[0] == '2',
                         'python3': major_python_versions[0] == '3'})
    minor_python_versions = ('24', '25', '26', '27',
                             '30', '31', '32', '33', '34', '35', '36')
    for v in minor_python_versions:
        globals_defs['python' + v] = ''.join(major_python_versions[:2]) == v
    sys_version = sys.version.lower()
    pypy = 'pypy' in sys_version
    jython = 'java' in sys_version
    ironpython ='iron' in sys_version
    cpython = not any((pypy, jython, ironpython,))
    globals_defs.update({'cpython': cpython,
                         'pypy': pypy,
                         'jython': jython,
                         'ironpython': ironpython})
    sys_platform = str(sys.platform).lower()
    globals_defs.update({'linux': 'linux' in sys_platform,
                         'windows': 'win32' in sys_platform,
                         'cygwin': 'cygwin' in sys_platform,
                         'solaris': 'sunos' in sys_platform,
                         'macosx': 'darwin' in sys_platform,
                         'posix': 'posix' in os.name.lower()})
    import struct
    void_ptr_size = struct.calcsize('P') * 8
    globals_defs.update({'bits32': void_ptr_size == 32,
                         'bits64': void_ptr_size == 64,
                         'little_endian': sys.byteorder == 'little',
                         'big_endian': sys.byteorder == 'big'})
    return globals_defs

out = os.fdopen(os.dup(1), 'w')
sys.stdout = sys.stderr
contexts = {}
for line in sys.stdin:
    req = json.loads(line)
    ctx = contexts.get(req['ctx'])
    if ctx is None:
        ctx = contexts[req['ctx']] = _default_globals()
        ctx.update(req.get('extra') or {})
    res = []
    for expr in req['exprs']:
        try:
            v = eval('[' + expr + ']', ctx)[0]
            res.append({'ok': True, 'value': bool(v), 'repr': repr(v)[:200]})
        except BaseException as e:
            res.append({'ok': False, 'type': type(e).__name__, 'message': str(e)})
    out.write(json.dumps(res) + '\n')
    out.flush()
`;

export class PythonConditions {
  private proc?: ChildProcessWithoutNullStreams;
  private buf = '';
  private waiting: Array<{ resolve: (r: PyResult[]) => void; reject: (e: Error) => void }> = [];
  private failed?: Error;
  /** number of expressions evaluated by Python during this load */
  count = 0;

  constructor(
    readonly python: string,
    /** JSON values merged over the namespace (LoadOptions.conditionGlobals' plain values) */
    private extra: Record<string, unknown> = {},
  ) {}

  /** Is the interpreter there (an executable file)? */
  available(): boolean {
    try {
      accessSync(this.python, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }

  private start(): ChildProcessWithoutNullStreams {
    const p = spawn(this.python, ['-c', PY_SOURCE], { stdio: ['pipe', 'pipe', 'pipe'] });
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiting.shift();
        try {
          w?.resolve(JSON.parse(line) as PyResult[]);
        } catch (e) {
          w?.reject(e as Error);
        }
      }
    });
    let stderr = '';
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d: string) => {
      if (stderr.length < 4000) stderr += d;
    });
    const fail = (e: Error) => {
      this.failed = e;
      for (const w of this.waiting.splice(0)) w.reject(e);
    };
    p.on('error', (e) => fail(new Error(`cannot run ${this.python}: ${e.message}`)));
    p.on('exit', (code, sig) => {
      if (this.waiting.length) fail(new Error(`${this.python} exited (${sig ?? code}) while evaluating conditions: ${stderr.trim()}`));
    });
    p.stdin.on('error', () => {});
    return p;
  }

  /** Evaluate the expressions of one file, in order, in that file's namespace. */
  evaluate(file: string, exprs: string[]): Promise<PyResult[]> {
    if (this.failed) return Promise.reject(this.failed);
    if (!this.proc) this.proc = this.start();
    this.count += exprs.length;
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.proc!.stdin.write(JSON.stringify({ ctx: file, exprs, extra: this.extra }) + '\n');
    });
  }

  close(): void {
    if (this.proc) {
      this.proc.stdin.end();
      this.proc = undefined;
    }
  }
}
