/**
 * kiln command line. `kiln help` lists commands; exit codes are in docs/cli.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build, plan } from './engine/build.js';
import { JsonReporter, PlainReporter, TtyReporter, type Reporter } from './engine/events.js';
import { loadProject, loadSectionConfig, planContext, type Project, type ProjectOptions } from './engine/project.js';
import { MANIFEST, emptyTrash, quarantine, readManifest, removeTree } from './lib/manifest.js';
import { Lock } from './lib/lock.js';
import { Store, checkEntry, readStateFile } from './engine/store.js';
import { ConfigError, ExitCode, KilnError, formatOrigin } from './lib/errors.js';
import { run } from './lib/exec.js';
import { rmrf } from './lib/fsutil.js';
import { reapGnupgHomes, setGnupgRoot } from './lib/gpg.js';
import { TOOL_PACKAGES, which } from './lib/tools.js';
import { configuredKey, writeEvidence, writeEvidenceIfChanged, lastRun } from './evidence/index.js';
import { buildManifest, type Manifest } from './evidence/manifest.js';
import { EvidenceRecorder } from './evidence/record.js';
// the remote cache and the farm (BullMQ, ioredis) load only when used: a plain build stays fast
import type { RemoteCache, RemoteCliOptions } from './remote/cache.js';
import type { DownloadMode } from './farm/coordinator.js';

const HELP = `kiln — release-engineering builds from buildout-style recipes

usage: kiln COMMAND [options] [part...] [section:option=value...]

commands:
  build [part...]   build the selected parts ([buildout] parts, or the ones named) and their dependencies
  plan [part...]    show what would be built and why (which option, input or dependency changed)
  graph             print the part graph (--format dot|mermaid|svg)
  show PART         resolved options of a section, each with the file:line it came from
  clean [part...]   remove outputs (all of out/, or the named parts' links and state)
  verify [part...]  hash every store entry (or the named parts') against its manifest; quarantine what differs
  worker            build parts for a farm: kiln worker --farm redis://HOST:PORT --remote-cache URL [--capabilities docker,qemu,root,kvm] [-j N]
  doctor            check host tools (with the Debian package for each missing one) and the Docker engine
  report            write out/report/index.html from the last build (manifest, timings, tests, reasons)
  diff OLD NEW      artifacts and package versions that changed between two out/manifest.json files
  help              this text

options:
  -c, --config FILE   recipe file (default: buildout.cfg, or kiln.cfg, in the current directory)
  -o, --out DIR       output directory (default: ./out)
      --cache DIR     persistent cache for downloads, chroots and shared parts (default: ~/.cache/kiln)
  -j, --jobs N        job slots shared by the parts built at once and their make -j, compressors
                      and digests (default: number of cores)
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
      --remote-cache URL        shared cache (Bazel HTTP protocol: URL/cas/, URL/ac/); also [buildout] remote-cache
      --remote-cache-mode M     read (default) or readwrite (upload what this machine builds)
      --remote-cache-sign-key F sign uploaded action results with this OpenPGP secret key (docs/farm.md)
      --farm redis://HOST:PORT  build: hand parts to farm workers (needs --remote-cache); worker: the farm to serve
      --download M              with --farm: which outputs come back into out/: targets (default), all, none
      --capabilities LIST       worker: docker,qemu,root,kvm (parts needing one go only to workers that have it)
      --work DIR                worker: working directory (default: ./kiln-worker)
  section:option=value  override an option (like buildout), highest priority

exit codes: 0 ok, 1 build failed (verify: an entry differed and was quarantined), 2 usage, 3 config error, 4 missing host tool, 5 locked, 130 interrupted`;

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
        'remote-cache': { type: 'string' },
        'remote-cache-mode': { type: 'string' },
        'remote-cache-sign-key': { type: 'string' },
        farm: { type: 'string' },
        download: { type: 'string' },
        capabilities: { type: 'string' },
        work: { type: 'string' },
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
    const remoteCli: RemoteCliOptions = { url: o['remote-cache'], mode: o['remote-cache-mode'], signKey: o['remote-cache-sign-key'] };
    if (remoteCli.mode !== undefined && remoteCli.mode !== 'read' && remoteCli.mode !== 'readwrite') {
      console.error(`kiln: --remote-cache-mode takes read or readwrite, got '${remoteCli.mode}'`);
      return ExitCode.USAGE;
    }
    const download = (o.download ?? 'targets') as DownloadMode;
    if (!['all', 'targets', 'none'].includes(download)) {
      console.error(`kiln: --download takes all, targets or none, got '${o.download}'`);
      return ExitCode.USAGE;
    }
    const farm = o.farm !== undefined ? { url: o.farm, download } : undefined;
    switch (cmd) {
      case 'build':
        return await cmdBuild(popts(), names, jobs, !!o['keep-going'], !!o.json, !o['no-wait'], { report: !!o.report, lint: !!o.lint, signingKey: o['evidence-key'] }, remoteCli, farm);
      case 'worker':
        return await cmdWorker(o.farm, o['remote-cache'], o.capabilities, o.jobs ? jobs : 1, o.work, o.cache, o['remote-cache-sign-key']);
      case 'plan':
        return await cmdPlan(popts(), names, !!o.json, remoteCli);
      case 'graph':
        return await cmdGraph(popts(), o.format ?? 'dot');
      case 'show':
        return await cmdShow(popts(), names, !!o.history, !!o.json);
      case 'clean':
        return await cmdClean(popts(), names);
      case 'verify':
        return await cmdVerify(popts(), names, !!o.json);
      case 'report':
        return await cmdReport(popts(), names, !!o.lint);
      case 'diff':
        return (await import('./evidence/diff.js')).diffCommand(names, !!o.json);
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

const warn = (m: string) => process.stderr.write(`kiln: warning: ${m}\n`);

async function openRemote(project: Awaited<ReturnType<typeof loadProject>>['project'], cli: RemoteCliOptions): Promise<RemoteCache | undefined> {
  if (!cli.url && !project.config.getOptional('buildout', 'remote-cache')?.trim()) return undefined;
  const { RemoteCache, remoteSettings } = await import('./remote/cache.js');
  const s = remoteSettings(project, cli);
  return s ? new RemoteCache(project, s, warn) : undefined;
}

/** The recipes kiln does not implement, grouped with the parts using them (one line each). */
function unknownRecipesText(unknown: Map<string, string[]>): string {
  const n = unknown.size;
  const lines = [...unknown].map(([spec, parts]) => `  ${spec}: ${parts.join(', ')}`);
  return `${n} recipe${n === 1 ? '' : 's'} not implemented by kiln (these parts are planned and shown, not built):\n${lines.join('\n')}`;
}

function unsupportedText(parts: Project['parts'] extends Map<string, infer P> ? P[] : never): string {
  return `${parts.length} part${parts.length === 1 ? '' : 's'} of SlapOS recipes kiln maps use options kiln does not support (planned and shown, not built):\n${parts
    .map((p) => `  ${p.name}: ${p.unsupported!.message}`)
    .join('\n')}`;
}

function noteUnknownRecipes(project: Project): void {
  if (project.unknownRecipes.size) console.error(`kiln: ${unknownRecipesText(project.unknownRecipes)}`);
  const unsupported = project.unsupportedIn(project.order);
  if (unsupported.length) console.error(`kiln: ${unsupportedText(unsupported)}`);
}

async function cmdBuild(
  popts: ProjectOptions,
  targets: string[],
  jobs: number,
  keepGoing: boolean,
  json: boolean,
  wait: boolean,
  evidence: { report: boolean; lint?: boolean; signingKey?: string } = { report: false },
  remoteCli: RemoteCliOptions = {},
  farmOpt?: { url: string; download: DownloadMode },
): Promise<number> {
  const { project, statCacheUsed } = await loadProject(popts, readStatCache(popts));
  // before anything is built: a part to build whose recipe kiln does not implement is a config error
  const closure = project.closure(targets.length ? targets : undefined);
  const unknown = project.unknownIn(closure);
  const unsupported = project.unsupportedIn(closure);
  if (unknown.size || unsupported.length) {
    // one part with an unsupported option: its own error, as before (file:line, part, option)
    if (!unknown.size && unsupported.length === 1) throw unsupported[0]!.unsupported!;
    const why = [unknown.size ? unknownRecipesText(unknown) : '', unsupported.length ? unsupportedText(unsupported) : ''].filter(Boolean);
    throw new KilnError(`cannot build: ${why.join('\n')}`, ExitCode.CONFIG);
  }
  // temporary GnuPG homes (signing, kiln:gpg-key) go under out/.kiln/tmp; those a killed run
  // left behind are removed (their agents stopped) now
  setGnupgRoot(join(project.kilnDir, 'tmp'));
  reapGnupgHomes();
  // the farm's coordinator uploads the project snapshot and parts only it has: readwrite
  const remote = await openRemote(project, farmOpt ? { ...remoteCli, mode: 'readwrite' } : remoteCli);
  if (farmOpt && !remote) throw new KilnError('--farm needs a remote cache (--remote-cache URL or [buildout] remote-cache): outputs travel through it', ExitCode.USAGE);
  const farmMod = farmOpt ? { ...(await import('./farm/coordinator.js')), ...(await import('./farm/common.js')) } : undefined;
  const farm = farmOpt && farmMod ? new farmMod.FarmCoordinator(project, remote!, farmMod.parseRedisUrl(farmOpt.url), { overrides: popts.overrides ?? [], download: farmOpt.download, targets: targets.length ? targets : undefined }) : undefined;
  const ac = new AbortController();
  let interrupts = 0;
  let hangup = false;
  // SIGHUP (terminal closed, ssh session gone) is handled as SIGTERM: running parts are stopped,
  // the lock released; the exit code is 129 (128 + SIGHUP) instead of 130
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts++;
    if (sig === 'SIGHUP') hangup = true;
    if (interrupts > 1) process.exit(hangup ? ExitCode.HANGUP : ExitCode.INTERRUPTED);
    process.stderr.write(`\nkiln: ${sig}: stopping running parts (again to quit at once)\n`);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
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
      remote,
      farm,
    });
    recorder.run.exitCode = res.exitCode;
    if (remote) process.stderr.write(`kiln: ${remote.summary()}\n`);
    // release evidence (docs/evidence.md): manifest, SBOMs, provenance; the report on request
    const lock = new Lock(join(project.kilnDir, 'lock'));
    await lock.acquire(wait);
    try {
      const names = project.closure(targets.length ? targets : undefined);
      if (evidence.report) {
        const mr = await writeEvidence(project, names, recorder.run, { signingKey: evidence.signingKey });
        // report and lint modules load only when asked for (a plain build does not pay for them)
        const { lintArtifacts } = await import('./evidence/lint.js');
        const { writeReport } = await import('./evidence/report.js');
        if (evidence.lint) await lintArtifacts(project, mr.manifest);
        process.stderr.write(`kiln: report: ${writeReport(project, recorder.run, (p) => mr.scans.get(p))}\n`);
      } else await writeEvidenceIfChanged(project, names, recorder.run, { signingKey: evidence.signingKey });
    } catch (e) {
      if (e instanceof KilnError && res.exitCode === ExitCode.OK) throw e;
      process.stderr.write(`kiln: error: release evidence: ${(e as Error).message}\n`);
      return res.exitCode === ExitCode.OK ? ExitCode.BUILD_FAILED : hangup && res.exitCode === ExitCode.INTERRUPTED ? ExitCode.HANGUP : res.exitCode;
    } finally {
      lock.release();
    }
    return hangup && res.exitCode === ExitCode.INTERRUPTED ? ExitCode.HANGUP : res.exitCode;
  } catch (e) {
    if (hangup && e instanceof KilnError && e.exitCode === ExitCode.INTERRUPTED) e.exitCode = ExitCode.HANGUP;
    throw e;
  } finally {
    await farm?.close();
    await remote?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
}

async function cmdWorker(farm: string | undefined, remoteCache: string | undefined, caps: string | undefined, jobs: number, work: string | undefined, cache: string | undefined, signKey: string | undefined): Promise<number> {
  if (!farm || !remoteCache) {
    console.error('kiln: worker needs --farm redis://HOST:PORT and --remote-cache URL');
    return ExitCode.USAGE;
  }
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const { runWorker } = await import('./farm/worker.js');
  const { parseRedisUrl } = await import('./farm/common.js');
  try {
    return await runWorker({
      redis: parseRedisUrl(farm),
      remoteCache,
      capabilities: (caps ?? '').split(',').map((c) => c.trim()).filter(Boolean),
      jobs,
      workDir: resolve(work ?? 'kiln-worker'),
      cacheDir: cache ? resolve(cache) : undefined,
      signKey: signKey ? resolve(signKey) : undefined,
      log: (l) => process.stderr.write(`kiln worker: ${l}\n`),
      signal: ac.signal,
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
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
    const { lintArtifacts } = await import('./evidence/lint.js');
    const { writeReport } = await import('./evidence/report.js');
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
    // kept parsed: the build reads the same file again under its lock (src/engine/store.ts)
    return readStateFile(join(out, '.kiln', 'state.json'), true)?.statCache ?? {};
  } catch {
    return {};
  }
}

async function cmdPlan(popts: ProjectOptions, targets: string[], json: boolean, remoteCli: RemoteCliOptions): Promise<number> {
  const { project } = await loadProject(popts, readStatCache(popts));
  const entries = await plan(project, targets.length ? targets : undefined);
  noteUnknownRecipes(project);
  const remote = await openRemote(project, remoteCli);
  if (remote) {
    try {
      await remote.annotate(entries);
    } finally {
      await remote.close();
    }
  }
  if (json) {
    console.log(JSON.stringify(entries, null, 1));
    return 0;
  }
  const mark = { 'up-to-date': '  ', restore: '<>', build: '* ' } as const;
  const lines: string[] = []; // one write: a console.log per line cost 0.15 s for 5,000 parts
  for (const e of entries) {
    lines.push(`${mark[e.status]} ${e.part} (${e.kind}) ${e.status}${e.remote ? ' (remote)' : ''}`);
    for (const r of e.reasons) lines.push(`     ${r}`);
  }
  const n = entries.filter((e) => e.status === 'build').length;
  lines.push(`${n} of ${entries.length} parts to build`);
  console.log(lines.join('\n'));
  return 0;
}

async function cmdGraph(popts: ProjectOptions, format: string): Promise<number> {
  const { project } = await loadProject(popts, readStatCache(popts));
  noteUnknownRecipes(project);
  const { toDot, toMermaid } = await import('./engine/graph.js');
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
  const name = names[0]!;
  // An error elsewhere in the config does not stop showing this section (zc.buildout only fails
  // in the sections that use the broken one): without the whole project, the section is
  // shown from the config alone, with the same defaults.
  let project: Project | undefined;
  let cfg;
  try {
    project = (await loadProject(popts, readStatCache(popts))).project;
    cfg = project.config;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    cfg = await loadSectionConfig(popts);
    if (cfg.has(name)) console.error(`kiln: note: the project does not load as a whole (${e.message}); [${name}] is shown from the config alone`);
  }
  if (!cfg.has(name)) throw new KilnError(`no section [${name}] (sections: ${cfg.sectionNames().join(', ')})`, ExitCode.CONFIG);
  if (project) noteUnknownRecipes(project);
  const part = project?.parts.get(name);
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
  const trash = join(outDir, '.kiln', 'trash');
  // GnuPG homes killed runs left in out/.kiln/tmp: their agents are stopped, the homes removed
  reapGnupgHomes(join(outDir, '.kiln', 'tmp'));
  if (names.length === 0) {
    await lock.acquire(true);
    try {
      // each path is renamed into the trash, then deleted: a kill leaves it whole or gone
      await emptyTrash(trash);
      for (const sub of ['parts', 'logs', 'test-results', 'manifest.json', 'sbom', 'provenance', 'report']) await removeTree(join(outDir, sub), trash);
      for (const sub of ['state.json', 'store', 'tmp', 'quarantine', 'evidence']) await removeTree(join(outDir, '.kiln', sub), trash);
      await emptyTrash(trash);
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

/**
 * Hash every store entry (or the named parts' current entries, shared ones included) against its
 * manifest. Each differing file is reported; a damaged or incomplete entry is quarantined (the
 * next build rebuilds it). Exit 0 when everything matched, 1 when something was quarantined.
 */
async function cmdVerify(popts: ProjectOptions, names: string[], json: boolean): Promise<number> {
  const { project } = await loadProject(popts, readStatCache(popts));
  const store = new Store(project);
  const lock = new Lock(join(project.kilnDir, 'lock'));
  await lock.acquire(true);
  try {
    await store.emptyTrash();
    const state = store.loadState();
    const bySig = new Map<string, string>();
    for (const [n, ps] of Object.entries(state.parts)) for (const s of ps.kept) bySig.set(s, n);
    for (const part of project.parts.values()) bySig.set(part.signature, part.name);
    const targets: Array<{ label: string; entry: string; quarantineDir: string }> = [];
    for (const n of names) if (!project.parts.has(n)) throw new KilnError(`unknown part '${n}'`, ExitCode.CONFIG);
    const selected = names.length ? names.map((n) => project.parts.get(n)!) : [...project.parts.values()].filter((p) => p.shared);
    for (const part of selected) {
      if (store.entryExists(part)) targets.push({ label: `${part.name} (${part.signature.slice(0, 16)})`, entry: store.entryPath(part), quarantineDir: store.quarantineFor(part) });
    }
    if (!names.length) {
      for (const sig of store.entries()) targets.push({ label: `${bySig.get(sig) ?? 'unknown part'} (${sig.slice(0, 16)})`, entry: join(project.storeDir, sig), quarantineDir: store.quarantineDir });
    }
    const t0 = Date.now();
    let bad = 0;
    let files = 0;
    let bytes = 0;
    for (const t of targets) {
      const diffs = await checkEntry(t.entry, 'full', true);
      const m = readManifest(join(t.entry, MANIFEST));
      files += m?.files ?? 0;
      bytes += m?.bytes ?? 0;
      if (diffs.length === 0) {
        if (json) console.log(JSON.stringify({ type: 'verified', entry: t.entry, label: t.label }));
        continue;
      }
      bad++;
      const q = quarantine(t.entry, t.quarantineDir, basename(t.entry).length > 40 ? basename(t.entry) : `${basename(dirname(t.entry))}-${basename(t.entry)}`, diffs);
      if (json) console.log(JSON.stringify({ type: 'damaged', entry: t.entry, label: t.label, differences: diffs, quarantined: q }));
      for (const d of diffs) console.error(`kiln: verify: ${t.label}: ${d.path}: ${d.problem}`);
      console.error(`kiln: verify: ${t.label}: quarantined in ${q}; the next build rebuilds it`);
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(2);
    console.error(
      bad
        ? `kiln: verify: ${bad} of ${targets.length} entries differed from their manifests and were quarantined (${secs}s)`
        : `kiln: verify: ${targets.length} entries, ${files} files, ${(bytes / 1048576).toFixed(1)} MiB match their manifests (${secs}s)`,
    );
    return bad ? ExitCode.BUILD_FAILED : 0;
  } finally {
    lock.release();
  }
}

async function cmdDoctor(config: string | undefined, o: Record<string, unknown>, overrides: NonNullable<ProjectOptions['overrides']>, json: boolean): Promise<number> {
  const tools = Object.entries(TOOL_PACKAGES).map(([cmd, pkg]) => ({ cmd, pkg, path: which(cmd) }));
  let needed: Array<{ cmd: string; part: string }> = [];
  if (config) {
    const { project } = await loadProject({ configFile: config, outDir: o.out as string | undefined, cacheDir: o.cache as string | undefined, overrides });
    for (const part of project.parts.values()) {
      for (const cmd of part.recipe.tools?.(planContext(project, part)) ?? []) {
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
      : (await import('./vm/qemu.js')).probeKvm()
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
