/**
 * kiln:container-test: install packages from other parts into a fresh container made from a
 * chroot (testcontainers' GenericContainer against the local Docker engine), run test commands,
 * check exit codes and output. One JUnit testcase per test in test-results/PART.xml (collected
 * into out/test-results/ by the engine, also when tests fail). The container carries the labels
 * kiln=1 and kiln.part=PART and is removed on success, failure and interrupt.
 *
 *   image = ${bookworm:location}                     (a kiln:chroot output, or an image tag)
 *   packages = ${hello-bin:location}/*.deb           (copied to /kiln/packages/)
 *   install = dpkg                                   (dpkg | apt | rpm | a shell command; default
 *                                                     dpkg for .deb files, rpm for .rpm files)
 *   test = hello                                     (one test, a shell script)
 *   expect-output = ^Hello, world!$                  (regular expression, multi-line mode)
 *   expect-exit = 0
 *   tests =                                          (one test per line, each must exit 0)
 *     test -x /usr/bin/hello
 *     dpkg -s hello
 *   test-conffile = test -f /etc/kiln-hello.conf     (named tests, with expect-NAME and
 *   expect-exit-conffile = 0                          expect-exit-NAME)
 *
 * Test commands are the user's own code and run with `sh -c`; the install keywords run argument
 * arrays (package file names are never pasted into a shell line).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { chrootImage } from '../sandbox/chroot-run.js';
import { ensureEngine, kilnLabels, trackContainer, untrackContainer } from '../sandbox/docker.js';
import { KilnError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { junitXml, type TestCase } from '../lib/junit.js';
import type { BuildContext, OptionSpec, PartOptions, Recipe } from '../kind.js';
import { expandGlobs } from './package-files.js';
import type { StartedTestContainer } from 'testcontainers';

const tail = (s: string, n = 20) => s.replace(/\s+$/, '').split('\n').slice(-n).join('\n');
const INSTALL_KEYWORDS = ['dpkg', 'apt', 'rpm'];

const OPTIONS = {
  image: { type: 'string', description: 'a kiln:chroot output (${bookworm:location}) or an image tag; tests: test (+ expect-output, expect-exit), tests (one per line), test-NAME (+ expect-NAME, expect-exit-NAME)', required: true },
  packages: { type: 'paths', description: 'package files or globs to copy in (to /kiln/packages/)' },
  install: { type: 'string', multiline: true, description: 'dpkg | apt | rpm (the package files) or a shell command; default dpkg -i / rpm -i of the packages' },
  environment: { type: 'env', description: 'KEY=VALUE lines set in the container' },
  network: { type: 'bool', description: 'network in the container', default: 'false' },
  timeout: { type: 'int', min: 1, description: 'seconds per command', default: '300' },
  test: { type: 'string', multiline: true, description: 'a shell command run in the container' },
  'expect-output': { type: 'string', description: "a regular expression the test's output must match" },
  'expect-exit': { type: 'int', min: 0, max: 255, description: "the test's exit code (default 0)" },
  tests: { type: 'lines', description: 'shell commands, one per line, each expected to exit 0' },
} as const satisfies Record<string, OptionSpec>;

interface TestSpec {
  name: string;
  /** the option that defined it (for error messages) */
  option: string;
  cmd: string;
  exit: number;
  output?: RegExp;
}

/** Every test of the part, in order: test, tests (lines), then test-NAME (sorted). */
export function testSpecs(o: PartOptions): TestSpec[] {
  const specs: TestSpec[] = [];
  const regex = (opt: string): RegExp | undefined => {
    const v = o.get(opt);
    if (v === undefined || v.trim() === '') return undefined;
    try {
      return new RegExp(v.trim(), 'm');
    } catch (e) {
      throw o.error(opt, `invalid regular expression: ${(e as Error).message}`);
    }
  };
  const exit = (opt: string): number => {
    const v = o.get(opt)?.trim();
    if (v === undefined || v === '') return 0;
    if (!/^\d+$/.test(v) || Number(v) > 255) throw o.error(opt, `expected an exit code (0-255), got '${v}'`);
    return Number(v);
  };
  // read like test-NAME and expect-NAME (options no table declares), so that it stands on its own
  const test = o.get('test')?.trim();
  if (test) specs.push({ name: 'test', option: 'test', cmd: test, exit: exit('expect-exit'), output: regex('expect-output') });
  else if (o.has('expect-output') || o.has('expect-exit')) throw o.error(o.has('expect-output') ? 'expect-output' : 'expect-exit', "applies to the 'test' option, which is not set");
  o.lines('tests').forEach((cmd, i) => specs.push({ name: `tests-${i + 1}`, option: 'tests', cmd, exit: 0 }));
  const all = o.all();
  for (const k of Object.keys(all).sort()) {
    if (k.startsWith('test-')) {
      const name = k.slice(5);
      if (!all[k]!.trim()) throw o.error(k, 'empty test command');
      specs.push({ name, option: k, cmd: all[k]!.trim(), exit: exit(`expect-exit-${name}`), output: regex(`expect-${name}`) });
    }
    const m = /^expect-(exit-)?(.+)$/.exec(k);
    if (m && !['output', 'exit'].includes(k.slice(7)) && !o.has(`test-${m[2]}`)) throw o.error(k, `there is no test-${m[2]} for this expectation`);
  }
  return specs;
}

/** The install step as an argument array (keywords) or a shell command, or nothing. */
function installArgv(o: PartOptions, targets: string[]): string[] | undefined {
  let how = o.typed(OPTIONS).install?.trim();
  if (!how) {
    if (!targets.length) return undefined;
    how = targets.every((t) => t.endsWith('.rpm')) ? 'rpm' : 'dpkg';
  }
  if (INSTALL_KEYWORDS.includes(how) && !targets.length) throw o.error('install', `'${how}' installs the files of the packages option, which names none`);
  if (how === 'dpkg') return ['dpkg', '-i', ...targets];
  if (how === 'apt') return ['apt-get', 'install', '-y', '--no-install-recommends', ...targets];
  if (how === 'rpm') return ['rpm', '-i', ...targets];
  return ['sh', '-c', how];
}

/** Testcontainers' reaper (Ryuk) needs its image, pulled from a registry: without it, kiln cleans up itself. */
async function configureReaper(log: (t: string) => void): Promise<void> {
  if (process.env.TESTCONTAINERS_RYUK_DISABLED !== undefined) return;
  const image = process.env.RYUK_CONTAINER_IMAGE ?? 'testcontainers/ryuk:0.14.0';
  const r = await run(['docker', 'image', 'inspect', '--format', '{{.Id}}', image], { allowFailure: true });
  if (r.code !== 0) {
    process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
    log(`# testcontainers reaper image ${image} is not available (no registry): reaper disabled, kiln removes the container itself\n`);
  }
}

async function runTests(ctx: BuildContext, cases: TestCase[]): Promise<void> {
  const o = ctx.options;
  const v = o.typed(OPTIONS);
  const specs = testSpecs(o);
  await ensureEngine();
  await configureReaper(ctx.log);
  const { GenericContainer } = await import('testcontainers');
  const imageOpt = v.image;
  const image = imageOpt.startsWith('/') ? await chrootImage(imageOpt, { log: ctx.log, signal: ctx.signal, part: ctx.part }) : imageOpt;
  const files = v.packages.length ? expandGlobs(o, 'packages') : [];
  const targets = files.map((f) => `/kiln/packages/${basename(f)}`);
  const dup = targets.find((t, i) => targets.indexOf(t) !== i);
  if (dup) throw o.error('packages', `two package files are named ${basename(dup)}`);
  const install = installArgv(o, targets);
  const timeoutMs = v.timeout * 1000;
  const env = v.environment;

  let c = new GenericContainer(image)
    .withCommand(['sleep', 'infinity'])
    .withLabels(kilnLabels(ctx.part))
    .withEnvironment(env)
    .withCopyFilesToContainer(files.map((f, i) => ({ source: f, target: targets[i]! })));
  if (!v.network) c = c.withNetworkMode('none');
  ctx.log(`# starting a container from ${image}\n`);
  if (ctx.signal.aborted) throw new KilnError('interrupted');
  trackContainer(`starting:${ctx.part}`); // removed by its session label if kiln exits during start
  let started: StartedTestContainer;
  try {
    started = await c.start();
  } finally {
    untrackContainer(`starting:${ctx.part}`);
  }
  const id = started.getId();
  trackContainer(id);
  let stopping: Promise<unknown> | undefined;
  const stop = () => (stopping ??= started.stop({ remove: true, removeVolumes: true, timeout: 1000 }).catch(() => run(['docker', 'rm', '-f', id], { allowFailure: true }).catch(() => undefined)));
  ctx.signal.addEventListener('abort', stop, { once: true });
  try {
    if (ctx.signal.aborted) throw new KilnError('interrupted');
    const aborted = new Promise<null>((resolve) => ctx.signal.addEventListener('abort', () => resolve(null), { once: true }));
    const exec = async (argv: string[], shown: string) => {
      const t0 = Date.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        const r = await Promise.race([
          started.exec(argv, { env }),
          new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs))),
          aborted,
        ]);
        if (ctx.signal.aborted) throw new KilnError('interrupted');
        const seconds = (Date.now() - t0) / 1000;
        if (!r) {
          ctx.log(`$ ${shown}\n# timed out after ${timeoutMs / 1000} s\n`);
          return { exitCode: -1, output: '', seconds, timedOut: true };
        }
        ctx.log(`$ ${shown}\n${r.output}${r.output.endsWith('\n') || !r.output ? '' : '\n'}# exit ${r.exitCode}\n`);
        return { exitCode: r.exitCode, output: r.output, seconds, timedOut: false };
      } finally {
        clearTimeout(timer);
      }
    };
    if (install) {
      const shown = install[0] === 'sh' ? install[2]! : install.join(' ');
      const r = await exec(install, shown);
      const failure = r.timedOut ? `install timed out after ${timeoutMs / 1000} s: ${shown}` : r.exitCode !== 0 ? `install failed (exit code ${r.exitCode}): ${shown}\n--- output (last lines) ---\n${tail(r.output)}` : undefined;
      cases.push({ name: 'install', seconds: r.seconds, output: r.output, failure });
      if (failure) return;
    }
    for (const t of specs) {
      const r = await exec(['sh', '-c', t.cmd], t.cmd);
      let failure: string | undefined;
      if (r.timedOut) failure = `timed out after ${timeoutMs / 1000} s: ${t.cmd}`;
      else if (r.exitCode !== t.exit) failure = `exit code ${r.exitCode}, expected ${t.exit}: ${t.cmd}\n--- output (last lines) ---\n${tail(r.output)}`;
      else if (t.output && !t.output.test(r.output)) failure = `output does not match /${t.output.source}/: ${t.cmd}\n--- expected ---\na line matching /${t.output.source}/\n--- output (last lines) ---\n${tail(r.output)}`;
      cases.push({ name: t.name, seconds: r.seconds, output: r.output, failure });
    }
  } finally {
    ctx.signal.removeEventListener('abort', stop);
    await stop();
    untrackContainer(id);
  }
}

export const recipe: Recipe = {
  kind: 'container-test',
  version: '2',
  description: 'install packages in a container from a chroot and run tests (testcontainers, JUnit)',
  options: OPTIONS,
  // test-NAME, expect-NAME and expect-exit-NAME (the engine takes test-os next to 'tests': the
  // pattern does not match the declared name, so it is not a typo of it)
  optionPatterns: [/^test-[A-Za-z0-9_.-]+$/, /^expect-(?!(exit|output)$)(exit-)?[A-Za-z0-9_.-]+$/],
  validate(ctx) {
    const o = ctx.options;
    if (!testSpecs(o).length) throw o.error('image', 'no tests: add test, tests or test-NAME options');
    const v = o.typed(OPTIONS);
    const how = v.install?.trim();
    if (how && INSTALL_KEYWORDS.includes(how) && !v.packages.length) throw o.error('install', `'${how}' installs the files of the packages option, which is not set`);
  },
  tools: () => ['docker'],
  async install(ctx) {
    const cases: TestCase[] = [];
    try {
      await runTests(ctx, cases);
    } finally {
      mkdirSync(join(ctx.staging, 'test-results'), { recursive: true });
      writeFileSync(join(ctx.staging, 'test-results', `${ctx.part}.xml`), junitXml(ctx.part, cases));
    }
    const failed = cases.filter((x) => x.failure);
    if (failed.length) throw new KilnError(`[${ctx.part}] ${failed.length} of ${cases.length} container tests failed:\n${failed.map((f) => `- ${f.name}: ${f.failure}`).join('\n')}`);
  },
};
export default recipe;
