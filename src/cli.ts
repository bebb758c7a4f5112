/**
 * kiln command line. `kiln help` lists commands; exit codes are in docs/cli.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build, plan } from './engine/build.js';
import { JsonReporter, PlainReporter, TtyReporter, type Reporter } from './engine/events.js';
import { toDot, toMermaid } from './engine/graph.js';
import { loadProject, type ProjectOptions } from './engine/project.js';
import { Lock, Store } from './engine/store.js';
import { ExitCode, KilnError, formatOrigin } from './lib/errors.js';
import { run } from './lib/exec.js';
import { rmrf } from './lib/fsutil.js';
import { TOOL_PACKAGES, which } from './lib/tools.js';
import { probeKvm } from './vm/qemu.js';
import { diffCommand } from './evidence/diff.js';
import { configuredKey, writeEvidence, lastRun } from './evidence/index.js';
import { lintArtifacts } from './evidence/lint.js';
import { buildManifest, type Manifest } from './evidence/manifest.js';
import { EvidenceRecorder } from './evidence/record.js';
import { writeReport } from './evidence/report.js';

const HELP = `kiln — release-engineering builds from buildout-style recipes

usage: kiln COMMAND [options] [part...] [section:option=value...]

commands:
  build [part...]   build the selected parts ([buildout] parts, or the ones named) and their dependencies
  plan [part...]    show what would be built and why (which option, input or dependency changed)
  graph             print the part graph (--format dot|mermaid|svg)
  show PART         resolved options of a section, each with the file:line it came from
  clean [part...]   remove outputs (all of out/, or the named parts' links and state)
  doctor            check host tools (with the Debian package for each missing one) and the Docker engine
  report            write out/report/index.html from the last build (manifest, timings, tests, reasons)
  diff OLD NEW      artifacts and package versions that changed between two out/manifest.json files
  help              this text

options:
  -c, --config FILE   recipe file (default: buildout.cfg, or kiln.cfg, in the current directory)
  -o, --out DIR       output directory (default: ./out)
      --cache DIR     persistent cache for downloads, chroots and shared parts (default: ~/.cache/kiln)
  -j, --jobs N        parts built in parallel (default: number of cores)
  -k, --keep-going    after a failure, go on building parts that do not depend on it
      --offline       no network: downloads must be in the cache
      --json          machine-readable events, one JSON object per line on stdout
      --no-wait       fail (exit 5) instead of waiting when another build holds out/
      --format F      graph format: dot (default), mermaid, svg (needs Graphviz)
      --history       show: also how each value was assembled (extends, +=, -=, macros)
      --report        build: also write the HTML build report (out/report/index.html)
      --lint          report: run lintian / rpmlint on the .deb / .rpm artifacts, verdicts in the report
      --evidence-key F  OpenPGP secret key that signs the provenance envelopes (default: [buildout]
                      evidence-signing-key, else the kiln:gpg-key part's key; 'none': unsigned)
  section:option=value  override an option (like buildout), highest priority

exit codes: 0 ok, 1 build failed, 2 usage, 3 config error, 4 missing host tool, 5 locked, 130 interrupted`;

function defaultConfig(): string {
  for (const f of ['buildout.cfg', 'kiln.cfg']) if (existsSync(f)) return f;
  throw new KilnError('no recipe file: pass -c FILE (there is no buildout.cfg or kiln.cfg here)', ExitCode.USAGE);
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        out: { type: 'string', short: 'o' },
        cache: { type: 'string' },
        jobs: { type: 'string', short: 'j' },
        'keep-going': { type: 'boolean', short: 'k' },
        offline: { type: 'boolean' },
        json: { type: 'boolean' },
        'no-wait': { type: 'boolean' },
        format: { type: 'string' },
        history: { type: 'boolean' },
        report: { type: 'boolean' },
        lint: { type: 'boolean' },
        'evidence-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (e) {
    console.error(`kiln: ${(e as Error).message}\n\n${HELP}`);
    return ExitCode.USAGE;
  }
  const { values: o, positionals } = parsed;
  if (o.version) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  const [cmd = 'help', ...rest] = positionals;
  if (o.help || cmd === 'help') {
    console.log(HELP);
    return 0;
  }
  const overrides: NonNullable<ProjectOptions['overrides']> = [];
  const names: string[] = [];
  for (const a of rest) {
    const m = /^([^:=\s]+):([^=\s]+)=(.*)$/s.exec(a);
    if (m) overrides.push({ section: m[1]!, option: m[2]!, value: m[3]! });
    else names.push(a);
  }
  let jobs = availableParallelism();
  if (o.jobs !== undefined) {
    if (!/^[1-9]\d*$/.test(o.jobs)) {
      console.error(`kiln: -j takes a positive number, got '${o.jobs}'`);
      return ExitCode.USAGE;
    }
    jobs = Number(o.jobs);
  }
  try {
    const popts = (): ProjectOptions => ({
      configFile: o.config ?? defaultConfig(),
      outDir: o.out,
      cacheDir: o.cache,
      overrides,
      offline: o.offline,
    });
    switch (cmd) {
      case 'build':
        return await cmdBuild(popts(), names, jobs, !!o['keep-going'], !!o.json, !o['no-wait'], { report: !!o.report, lint: !!o.lint, signingKey: o['evidence-key'] });
      case 'plan':
        return await cmdPlan(popts(), names, !!o.json);
      case 'graph':
        return await cmdGraph(popts(), o.format ?? 'dot');
      case 'show':
        return await cmdShow(popts(), names, !!o.history, !!o.json);
      case 'clean':
        return await cmdClean(popts(), names);
      case 'report':
        return await cmdReport(popts(), names, !!o.lint);
      case 'diff':
        return diffCommand(names, !!o.json);
      case 'doctor':
        return await cmdDoctor(o.config ?? (existsSync('buildout.cfg') ? 'buildout.cfg' : undefined), o, overrides, !!o.json);
      default:
        console.error(`kiln: unknown command '${cmd}'\n\n${HELP}`);
        return ExitCode.USAGE;
    }
  } catch (e) {
    if (e instanceof KilnError) {
      if (o.json) console.log(JSON.stringify({ type: 'error', exitCode: e.exitCode, message: e.message }));
      console.error(`kiln: error: ${e.message}`);
      return e.exitCode;
    }
    throw e;
  }
}

function makeReporter(json: boolean): Reporter {
  if (json) return new JsonReporter();
  if (process.stderr.isTTY && !process.env.CI) return new TtyReporter();
  return new PlainReporter();
}

async function cmdBuild(
  popts: ProjectOptions,
  targets: string[],
  jobs: number,
  keepGoing: boolean,
  json: boolean,
  wait: boolean,
  evidence: { report: boolean; lint?: boolean; signingKey?: string } = { report: false },
): Promise<number> {
  const { project, statCacheUsed } = await loadProject(popts, readStatCache(popts));
  const ac = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (interrupts > 1) process.exit(ExitCode.INTERRUPTED);
    process.stderr.write(`\nkiln: ${sig}: stopping running parts (again to quit at once)\n`);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    configuredKey(project, { signingKey: evidence.signingKey }, true); // a missing key file fails before building
    const recorder = new EvidenceRecorder(makeReporter(json));
    const res = await build(project, statCacheUsed, {
      targets: targets.length ? targets : undefined,
      jobs,
      keepGoing,
      reporter: recorder,
      wait,
      signal: ac.signal,
    });
    recorder.run.exitCode = res.exitCode;
    // release evidence (docs/evidence.md): manifest, SBOMs, provenance; the report on request
    const lock = new Lock(join(project.kilnDir, 'lock'));
    await lock.acquire(wait);
    try {
      const names = project.closure(targets.length ? targets : undefined);
      const mr = await writeEvidence(project, names, recorder.run, { signingKey: evidence.signingKey });
      if (evidence.report && evidence.lint) await lintArtifacts(project, mr.manifest);
      if (evidence.report) process.stderr.write(`kiln: report: ${writeReport(project, recorder.run, (p) => mr.scans.get(p))}\n`);
    } catch (e) {
      if (e instanceof KilnError && res.exitCode === ExitCode.OK) throw e;
      process.stderr.write(`kiln: error: release evidence: ${(e as Error).message}\n`);
      return res.exitCode === ExitCode.OK ? ExitCode.BUILD_FAILED : res.exitCode;
    } finally {
      lock.release();
    }
    return res.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function cmdReport(popts: ProjectOptions, targets: string[], lint: boolean): Promise<number> {
  const { project } = await loadProject(popts, readStatCache(popts));
  const run = lastRun(project);
  const lock = new Lock(join(project.kilnDir, 'lock'));
  await lock.acquire(true);
  try {
    const names = project.closure(targets.length ? targets : undefined);
    const mr = existsSync(join(project.outDir, 'manifest.json')) ? await buildManifest(project, names, run) : await writeEvidence(project, names, run);
    if (lint) await lintArtifacts(project, JSON.parse(readFileSync(join(project.outDir, 'manifest.json'), 'utf8')) as Manifest);
    console.log(writeReport(project, run, (p) => mr.scans.get(p)));
  } finally {
    lock.release();
  }
  return 0;
}

// The stat cache lives in the state file; loading it first lets unchanged inputs skip hashing.
function readStatCache(popts: ProjectOptions): Record<string, { k: string; h: string }> {
  const out = resolve(popts.outDir ?? 'out');
  try {
    return (JSON.parse(readFileSync(join(out, '.kiln', 'state.json'), 'utf8')) as { statCache?: Record<string, { k: string; h: string }> }).statCache ?? {};
  } catch {
    return {};
  }
}

async function cmdPlan(popts: ProjectOptions, targets: string[], json: boolean): Promise<number> {
  const { project } = await loadProject(popts, readStatCache(popts));
  const entries = plan(project, targets.length ? targets : undefined);
  if (json) {
    console.log(JSON.stringify(entries, null, 1));
    return 0;
  }
  const mark = { 'up-to-date': '  ', restore: '<>', build: '* ' } as const;
  for (const e of entries) {
    console.log(`${mark[e.status]} ${e.part} (${e.kind}) ${e.status}`);
    for (const r of e.reasons) console.log(`     ${r}`);
  }
  const n = entries.filter((e) => e.status === 'build').length;
  console.log(`${n} of ${entries.length} parts to build`);
  return 0;
}

async function cmdGraph(popts: ProjectOptions, format: string): Promise<number> {
  const { project } = await loadProject(popts, readStatCache(popts));
  if (format === 'dot') process.stdout.write(toDot(project));
  else if (format === 'mermaid') process.stdout.write(toMermaid(project));
  else if (format === 'svg') {
    if (!which('dot')) throw new KilnError(`--format svg needs Graphviz's 'dot' (Debian package: graphviz)`, ExitCode.MISSING_TOOL);
    const r = await run(['dot', '-Tsvg'], { input: toDot(project) });
    process.stdout.write(r.stdout);
  } else {
    console.error(`kiln: unknown graph format '${format}' (dot, mermaid, svg)`);
    return ExitCode.USAGE;
  }
  return 0;
}

async function cmdShow(popts: ProjectOptions, names: string[], history: boolean, json: boolean): Promise<number> {
  if (names.length !== 1) {
    console.error('kiln: show takes one section name');
    return ExitCode.USAGE;
  }
  const { project } = await loadProject(popts, readStatCache(popts));
  const cfg = project.config;
  const name = names[0]!;
  if (!cfg.has(name)) throw new KilnError(`no section [${name}] (sections: ${cfg.sectionNames().join(', ')})`, ExitCode.CONFIG);
  const part = project.parts.get(name);
  const values = part ? part.options.all() : cfg.section(name);
  const cwd = process.cwd();
  const where = (f: string) => (f.startsWith('/') ? relative(cwd, f) : f);
  if (json) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(values)) {
      const og = cfg.origin(name, k);
      out[k] = { value: values[k], origin: og ? formatOrigin({ ...og, file: where(og.file) }) : undefined, history: history ? cfg.history(name, k) : undefined };
    }
    console.log(JSON.stringify({ section: name, part: !!part, signature: part?.signature, options: out }, null, 1));
    return 0;
  }
  console.log(`[${name}]${part ? `  # part, ${part.recipeSpec}, signature ${part.signature.slice(0, 16)}` : ''}`);
  for (const k of Object.keys(values).sort()) {
    const og = cfg.origin(name, k);
    const v = values[k]!;
    const shown = v.includes('\n') ? v.split('\n').join('\n    ') : v;
    console.log(`${k} = ${shown}`);
    console.log(`    # ${og ? formatOrigin({ ...og, file: where(og.file) }) : 'computed'}`);
    if (history) {
      for (const h of cfg.history(name, k)) {
        console.log(`    #   ${h.op.padEnd(8)} ${JSON.stringify(h.value).slice(0, 70)}  ${formatOrigin({ ...h.origin, file: where(h.origin.file) })}`);
      }
    }
  }
  return 0;
}

async function cmdClean(popts: ProjectOptions, names: string[]): Promise<number> {
  const outDir = resolve(popts.outDir ?? 'out');
  const lock = new Lock(join(outDir, '.kiln', 'lock'));
  if (names.length === 0) {
    await lock.acquire(true);
    try {
      for (const sub of ['parts', 'logs', 'test-results', 'manifest.json', 'sbom', 'provenance', 'report', '.kiln/evidence']) await rmrf(join(outDir, sub));
      await rmrf(join(outDir, '.kiln', 'store'));
      await rmrf(join(outDir, '.kiln', 'tmp'));
      await rmrf(join(outDir, '.kiln', 'state.json'));
    } finally {
      lock.release();
    }
    console.error(`kiln: cleaned ${outDir}`);
    return 0;
  }
  const { project } = await loadProject(popts);
  const store = new Store(project);
  await lock.acquire(true);
  try {
    const state = store.loadState();
    for (const n of names) {
      const part = project.parts.get(n);
      if (!part) throw new KilnError(`unknown part '${n}'`, ExitCode.CONFIG);
      store.unlinkLocation(part.location);
      delete state.parts[n];
    }
    store.saveState(state);
  } finally {
    lock.release();
  }
  return 0;
}

async function cmdDoctor(config: string | undefined, o: Record<string, unknown>, overrides: NonNullable<ProjectOptions['overrides']>, json: boolean): Promise<number> {
  const tools = Object.entries(TOOL_PACKAGES).map(([cmd, pkg]) => ({ cmd, pkg, path: which(cmd) }));
  let needed: Array<{ cmd: string; part: string }> = [];
  if (config) {
    const { project } = await loadProject({ configFile: config, outDir: o.out as string | undefined, cacheDir: o.cache as string | undefined, overrides });
    for (const part of project.parts.values()) {
      for (const cmd of part.recipe.tools?.({ part: part.name, options: part.options, projectDir: project.projectDir, cacheDir: project.cacheDir }) ?? []) {
        needed.push({ cmd, part: part.name });
      }
    }
  }
  let docker = 'not installed (Debian package: docker.io)';
  if (which('docker')) {
    const r = await run(['docker', 'info', '--format', '{{.ServerVersion}}'], { allowFailure: true, timeoutMs: 10_000 }).catch(() => undefined);
    docker = r && r.code === 0 ? `engine ${r.stdout.trim()} answers` : 'client installed, no engine answers (bash scripts/setup.sh starts dockerd)';
  }
  const kvm = !existsSync('/dev/kvm')
    ? 'absent (TCG)'
    : process.env.KILN_KVM !== '1'
      ? 'present, not used (TCG; set KILN_KVM=1 to use it where a probe proves it boots a kernel)'
      : probeKvm()
        ? 'KILN_KVM=1 and the probe booted a kernel: QEMU guests use KVM'
        : 'KILN_KVM=1 but the probe failed (a kernel did not reach its panic under KVM in 20 s): QEMU guests stay on TCG';
  const missingNeeded = needed.filter((n) => !which(n.cmd));
  if (json) {
    console.log(JSON.stringify({ tools, docker, kvm, needed, missingNeeded }, null, 1));
  } else {
    for (const t of tools) console.log(`${t.path ? 'ok     ' : 'MISSING'} ${t.cmd.padEnd(20)} ${t.path ?? `apt-get install ${t.pkg}`}`);
    console.log(`docker: ${docker}`);
    console.log(`kvm:    ${kvm}`);
    if (config) {
      if (missingNeeded.length === 0) console.log(`all ${needed.length} tools needed by ${config} are present`);
      for (const m of missingNeeded) console.log(`MISSING for part ${m.part}: ${m.cmd} (apt-get install ${TOOL_PACKAGES[m.cmd] ?? m.cmd})`);
    }
  }
  return missingNeeded.length ? ExitCode.MISSING_TOOL : 0;
}
