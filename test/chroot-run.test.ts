// runInChroot / installBuildDeps against a real bookworm minbase chroot (from the shared cache):
// the Docker engine and the unshare fallback, network off by default, mounts, user, workdir,
// abort, and no container or process left behind.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { recipe } from '../src/kinds/chroot.js';
import { installBuildDeps, resolveChroot, runInChroot, type ChrootEngine } from '../src/sandbox/chroot-run.js';
import { engineAvailable, kilnContainers } from '../src/sandbox/docker.js';
import { which } from '../src/lib/tools.js';
import { makeContext } from './helpers/context.js';

const CACHE = process.env.KILN_CACHE_DIR ?? join(process.env.HOME ?? '/root', '.cache', 'kiln');
const defaults = Object.fromEntries(Object.entries(recipe.options).flatMap(([k, s]) => (s.default !== undefined ? [[k, s.default]] : [])));
const PART = `chroot-run-${process.pid}`;

let chroot = '';
beforeAll(async () => {
  // the bookworm minbase chroot part (a cache hit after the first build of the suite)
  const ctx = makeContext('bookworm', { ...defaults }, { cacheDir: CACHE });
  await recipe.install(ctx);
  chroot = ctx.staging;
}, 300_000);

const docker = await engineAvailable();
if (!docker.ok) console.warn(`Docker engine unavailable, docker engine tests skipped: ${docker.why}`);
const canUnshare = process.getuid?.() === 0 && !!which('unshare');
if (!canUnshare) console.warn('unshare fallback tests skipped: they need root and util-linux unshare');

const engines: Array<[ChrootEngine, boolean]> = [
  ['docker', docker.ok],
  ['unshare', canUnshare],
];

describe.each(engines)('runInChroot, engine %s', (engine, available) => {
  test.skipIf(!available)('runs in the chroot: no network, mounts read-only and read-write, workdir, env, user', async () => {
    const host = mkdtempSync(join(tmpdir(), 'kiln-chroot-run-'));
    const input = mkdtempSync(join(tmpdir(), 'kiln-chroot-in-'));
    writeFileSync(join(input, 'data.txt'), 'from the host\n');
    const script = [
      'cat /etc/debian_version',
      'echo "net: $(ls /sys/class/net | tr "\\n" " ")"',
      'echo "ifaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" " ")"',
      'echo "pwd: $(pwd)"',
      'echo "var: $KILN_VALUE"',
      'cat /in/data.txt',
      'if touch /in/new 2>/dev/null; then echo "in: writable"; else echo "in: read-only"; fi',
      'echo written > /out/result',
    ].join('\n');
    const r = await runInChroot({
      chroot,
      engine,
      argv: ['sh', '-c', script],
      mounts: [
        { host: input, guest: '/in', readonly: true },
        { host, guest: '/out' },
      ],
      workdir: '/out',
      env: { KILN_VALUE: 'a value with $(spaces) and ;' },
      part: PART,
    });
    expect(r.stdout).toMatch(/^12\.\d+\n/);
    expect(r.stdout).toMatch(/^ifaces: lo $/m);
    expect(r.stdout).toMatch(/^pwd: \/out$/m);
    expect(r.stdout).toContain('var: a value with $(spaces) and ;\n');
    expect(r.stdout).toContain('from the host\n');
    expect(r.stdout).toMatch(/^in: read-only$/m);
    expect(readFileSync(join(host, 'result'), 'utf8')).toBe('written\n');

    const u = await runInChroot({ chroot, engine, argv: ['id', '-u'], user: 'nobody', part: PART });
    expect(u.stdout.trim()).toBe('65534');
  }, 300_000);

  test.skipIf(!available)('network = true: a real interface besides lo', async () => {
    const r = await runInChroot({ chroot, engine, network: true, argv: ['sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'], part: PART });
    expect(r.stdout.split('\n').filter((l) => l && l !== 'lo').length).toBeGreaterThan(0);
  }, 300_000);

  test.skipIf(!available)('a failing command: exit code and output tail in the error', async () => {
    const err = await runInChroot({ chroot, engine, argv: ['sh', '-c', 'echo something broke >&2; exit 3'], part: PART }).catch((e: Error) => e);
    expect(String(err)).toMatch(/exit code 3/);
    expect(String(err)).toMatch(/something broke/);
  }, 300_000);

  test.skipIf(!available)('abort kills the command and leaves nothing running', async () => {
    const ac = new AbortController();
    const marker = String(424242 + process.pid);
    let seen!: () => void;
    const started = new Promise<void>((r) => (seen = r));
    const p = runInChroot({
      chroot,
      engine,
      argv: ['sh', '-c', `echo started; exec sleep ${marker}`],
      part: PART,
      signal: ac.signal,
      log: (s) => {
        if (s.includes('started')) seen();
      },
    });
    await started;
    ac.abort();
    await expect(p).rejects.toThrow();
    if (engine === 'docker') expect(await kilnContainers(PART)).toEqual([]);
    // the pid namespace dies with its init: poll until the kernel has reaped it
    let left = '';
    for (let i = 0; i < 100; i++) {
      left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`sleep ${marker}`)).join('\n');
      if (!left) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toBe('');
  }, 300_000);

  test.skipIf(!available)('installBuildDeps: apt-get with network once, then the package is there without network', async () => {
    const ref = await installBuildDeps({ chroot, engine, packages: ['hello'], part: PART, cacheDir: CACHE });
    const r = await runInChroot({ ref, engine, argv: ['hello'], part: PART });
    expect(r.stdout).toBe('Hello, world!\n');
    // the base chroot is untouched
    const base = await runInChroot({ chroot, engine, argv: ['sh', '-c', 'command -v hello || echo none'], part: PART });
    expect(base.stdout.trim()).toBe('none');
  }, 600_000);
});

describe('chroot references', () => {
  test('a directory that is not a chroot output is an error naming it', () => {
    const d = mkdtempSync(join(tmpdir(), 'kiln-not-chroot-'));
    expect(() => resolveChroot(d, 'cmmi-part')).toThrow(/\[cmmi-part\] .* is not the output of a kiln:chroot part/);
  });
  test('a chroot output resolves to its tarball and key', () => {
    const ref = resolveChroot(chroot);
    expect(ref.tarball).toBe(join(chroot, 'rootfs.tar'));
    expect(ref.key).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('missing host tools', () => {
  test('no docker client: the error names the Debian package docker.io', async () => {
    vi.resetModules(); // a docker.ts that has not yet seen an engine
    const { ensureEngine } = await import('../src/sandbox/docker.js');
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(ensureEngine()).rejects.toThrow(/required host tool 'docker' is not installed \(Debian package: docker\.io/);
    } finally {
      process.env.PATH = path;
    }
  });
  test.skipIf(!canUnshare)('unshare engine without unshare: the error names util-linux', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(runInChroot({ chroot, engine: 'unshare', argv: ['true'], part: 'x' })).rejects.toThrow(/\[x\] required host tool 'unshare' is not installed \(Debian package: util-linux/);
    } finally {
      process.env.PATH = path;
    }
  });
});

afterAll(async () => {
  if (docker.ok) expect(await kilnContainers(PART)).toEqual([]);
});
