/**
 * kiln:container-test: install packages from other parts into a fresh container made from a
 * chroot (testcontainers against the local Docker engine), run test commands, check exit codes
 * and output. One JUnit testcase per test in test-results/PART.xml (collected into
 * out/test-results/ by the engine, also when tests fail). The container is removed on success,
 * failure and interrupt.
 *
 *   image = ${bookworm:location}
 *   packages = ${hello-bin:location}/*.deb
 *   install = dpkg -i /kiln/packages/*.deb          (default for .deb; rpm -i for .rpm)
 *   test-runs = hello
 *   expect-runs = ^Hello, world!$
 *   test-conffile = test -f /etc/kiln-hello.conf
 *   expect-exit-conffile = 0
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { KilnError } from '../lib/errors.js';
import { junitXml, type TestCase } from '../lib/junit.js';
import { ensureEngine, LABEL } from '../lib/docker.js';
import { chrootImage } from '../engine/cleanroom.js';
import type { Recipe } from '../recipe.js';
import { expandGlobs } from './package-files.js';

const tail = (s: string, n = 20) => s.split('\n').slice(-n).join('\n');

export const recipe: Recipe = {
  kind: 'container-test',
  version: '1',
  description: 'install packages in a container from a chroot and run tests (testcontainers)',
  options: {
    image: { description: 'a kiln:chroot output (${bookworm:location}) or an image tag', required: true },
    packages: { description: 'package files or globs to copy in (to /kiln/packages/)' },
    install: { description: 'install command (sh -c), default dpkg -i / rpm -i of the packages' },
    network: { description: 'network in the container', default: 'false' },
    timeout: { description: 'seconds per command', default: '300' },
  },
  optionPatterns: [/^test-[A-Za-z0-9_.-]+$/, /^expect-(exit-)?[A-Za-z0-9_.-]+$/],
  validate(ctx) {
    const o = ctx.options;
    const tests = Object.keys(o.all()).filter((k) => k.startsWith('test-'));
    if (!tests.length) throw o.error('image', 'no tests: add test-NAME = command options');
    for (const k of Object.keys(o.all())) {
      const m = /^expect-(exit-)?(.+)$/.exec(k);
      if (m && !o.has(`test-${m[2]}`)) throw o.error(k, `there is no test-${m[2]} for this expectation`);
      if (m?.[1] && !/^\d+$/.test(o.get(k)!.trim())) throw o.error(k, 'expected an exit code');
      if (m && !m[1]) {
        try {
          new RegExp(o.get(k)!, 'm');
        } catch (e) {
          throw o.error(k, `invalid regular expression: ${(e as Error).message}`);
        }
      }
    }
    o.int('timeout', 300);
  },
  tools: () => ['docker'],
  async install(ctx) {
    const o = ctx.options;
    await ensureEngine();
    process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true'; // no registry here to pull the reaper from: kiln removes its containers itself
    const { GenericContainer } = await import('testcontainers');
    const imageOpt = o.require('image').trim();
    const image = imageOpt.startsWith('/') ? await chrootImage(imageOpt, { log: ctx.log, signal: ctx.signal, part: ctx.part }, { part: ctx.part }) : imageOpt;
    const files = o.get('packages')?.trim() ? expandGlobs(o, 'packages') : [];
    const timeoutMs = o.int('timeout', 300) * 1000;
    let c = new GenericContainer(image)
      .withCommand(['sleep', 'infinity'])
      .withLabels({ [LABEL]: '1', 'kiln.part': ctx.part })
      .withCopyFilesToContainer(files.map((f) => ({ source: f, target: `/kiln/packages/${basename(f)}` })));
    if (!o.bool('network', false)) c = c.withNetworkMode('none');
    ctx.log(`# starting a container from ${image}\n`);
    const started = await c.start();
    const stop = () => started.stop({ remove: true, removeVolumes: true }).catch(() => undefined);
    ctx.signal.addEventListener('abort', stop, { once: true });
    const cases: TestCase[] = [];
    const exec = async (cmd: string) => {
      const t0 = Date.now();
      const r = await Promise.race([
        started.exec(['sh', '-c', cmd]),
        new Promise<never>((_, rej) => setTimeout(() => rej(new KilnError(`timed out after ${timeoutMs / 1000}s: ${cmd}`)), timeoutMs).unref()),
      ]);
      ctx.log(`$ ${cmd}\n${r.output}# exit ${r.exitCode}\n`);
      return { ...r, seconds: (Date.now() - t0) / 1000 };
    };
    try {
      let install = o.get('install')?.trim();
      if (!install && files.length) {
        const debs = files.some((f) => f.endsWith('.deb'));
        install = debs ? 'dpkg -i /kiln/packages/*.deb' : 'rpm -i /kiln/packages/*.rpm';
      }
      if (install) {
        const r = await exec(install);
        cases.push({ name: 'install', seconds: r.seconds, output: r.output, failure: r.exitCode !== 0 ? `install failed (exit ${r.exitCode}): ${install}\n${tail(r.output)}` : undefined });
      }
      if (!cases.some((x) => x.failure)) {
        for (const key of Object.keys(o.all()).filter((k) => k.startsWith('test-')).sort()) {
          const name = key.slice(5);
          const cmd = o.get(key)!;
          const r = await exec(cmd);
          const wantExit = Number(o.get(`expect-exit-${name}`)?.trim() ?? '0');
          const re = o.get(`expect-${name}`);
          let failure: string | undefined;
          if (r.exitCode !== wantExit) failure = `exit code ${r.exitCode}, expected ${wantExit}: ${cmd}\n${tail(r.output)}`;
          else if (re !== undefined && !new RegExp(re, 'm').test(r.output)) failure = `output does not match /${re}/: ${cmd}\n--- output ---\n${tail(r.output)}`;
          cases.push({ name, seconds: r.seconds, output: r.output, failure });
        }
      }
    } finally {
      ctx.signal.removeEventListener('abort', stop);
      await stop();
      mkdirSync(join(ctx.staging, 'test-results'), { recursive: true });
      writeFileSync(join(ctx.staging, 'test-results', `${ctx.part}.xml`), junitXml(ctx.part, cases));
    }
    const failed = cases.filter((x) => x.failure);
    if (failed.length) throw new KilnError(`[${ctx.part}] ${failed.length} of ${cases.length} container tests failed:\n${failed.map((f) => `- ${f.name}: ${f.failure}`).join('\n')}`);
  },
};
export default recipe;
