// Chroots (mmdebstrap), the content-keyed chroot cache, clean-room builds in a container from a
// chroot, and container tests: real mmdebstrap, Docker engine and testcontainers.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { kilnP, parts, project } from './helpers/kiln.js';

// chroots are cached by content in the user's cache, as a release engineer's runs would
const CACHE = join(process.env.HOME ?? '/root', '.cache', 'kiln');
const env = { KILN_CACHE_DIR: CACHE };
const minbase = `[bookworm]\nrecipe = kiln:chroot\nsuite = bookworm\nvariant = minbase\nimage = true\n`;

// the containers one kiln run left (named kiln-PID-...): other test files may run kiln's containers
// at the same time
const kilnContainers = (pid: number | undefined) =>
  execFileSync('docker', ['ps', '-a', '--filter', 'label=kiln=1', '--format', '{{.Names}}'], { encoding: 'utf8' })
    .split('\n')
    .filter((n) => n && pid !== undefined && n.startsWith(`kiln-${pid}-`));


describe('kiln:chroot', () => {
  test('a bookworm minbase chroot: tarball, manifest, image; a second build anywhere comes from the cache', async () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = bookworm\n${minbase}` });
    const t0 = Date.now();
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code, r.stderr).toBe(0);
    console.log(`chroot build (cold or cached): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const out = join(p.dir, 'out/parts/bookworm');
    expect(readFileSync(join(out, 'manifest'), 'utf8')).toMatch(/^base-files 12\.\S+ amd64$/m);
    const tag = readFileSync(join(out, 'image-tag'), 'utf8').trim();
    expect(execFileSync('docker', ['run', '--rm', '--network', 'none', tag, 'cat', '/etc/debian_version'], { encoding: 'utf8' })).toMatch(/^12\./);
    // another project, nothing built yet: the chroot comes from the cache, mmdebstrap does not run
    const q = project({ 'buildout.cfg': `[buildout]\nparts = bookworm\n${minbase}` });
    const t1 = Date.now();
    const r2 = await kilnP(q.dir, ['build'], env);
    expect(r2.code).toBe(0);
    console.log(`cached chroot build in a new project: ${((Date.now() - t1) / 1000).toFixed(2)} s`);
    const log = readFileSync(join(q.dir, 'out/logs/bookworm.log'), 'utf8');
    expect(log).toMatch(/chroot cache hit: .*\(mmdebstrap not run\)/);
    expect(log).not.toMatch(/chroot built by/);
    expect(readFileSync(join(q.dir, 'out/parts/bookworm/rootfs.tar')).equals(readFileSync(join(out, 'rootfs.tar')))).toBe(true);
  }, 300_000);

  // reproducibility (an uncached rebuild is bit-identical to the cached tarball): test/chroot-recipe.test.ts

  test('bad options: unknown format, missing hook file', async () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = c\n[c]\nrecipe = kiln:chroot\nformat = zip\n` });
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/buildout\.cfg:\d+: \[c\] format: unknown format 'zip'/);
    const q = project({ 'buildout.cfg': `[buildout]\nparts = c\n[c]\nrecipe = kiln:chroot\ncustomize = hooks/nothere.sh\n` });
    const r2 = await kilnP(q.dir, ['build'], env);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toMatch(/\[c\] customize: file not found: .*hooks\/nothere\.sh/);
  });
});

describe('clean-room builds and container tests', () => {
  test('a command in the chroot: no network, the dependency outputs visible read-only, its output kept', async () => {
    const p = project({
      'buildout.cfg': `[buildout]\nparts = probe\n${minbase}\n[input]\nrecipe = kiln:command\ncommand = echo from-input > "$OUT/in.txt"\n[probe]\nrecipe = kiln:command\nchroot = \${bookworm:location}\nsrc = \${input:location}/in.txt\ncommand =\n  cat /etc/debian_version > "$OUT/version"\n  ls /sys/class/net > "$OUT/net"\n  cat "$KILN_OPT_SRC" > "$OUT/copied"\n  if touch "$KILN_OPT_SRC" 2>/dev/null; then echo writable > "$OUT/ro"; else echo read-only > "$OUT/ro"; fi\n`,
    });
    const r = await kilnP(p.dir, ['build'], env);
    expect(r.code, r.stderr).toBe(0);
    const o = (f: string) => readFileSync(join(p.dir, 'out/parts/probe', f), 'utf8');
    expect(o('version')).toMatch(/^12\./);
    expect(o('net').split('\n').filter(Boolean)).toEqual(['lo']);
    expect(o('copied')).toBe('from-input\n');
    expect(o('ro')).toBe('read-only\n');
    expect(r.pid).toBeGreaterThan(0);
    expect(kilnContainers(r.pid)).toEqual([]);
  }, 300_000);

  test('a failing container test fails loudly with the output, writes JUnit, and leaves no container', async () => {
    const p = project({
      'buildout.cfg': `[buildout]\nparts = t\n${minbase}\n[t]\nrecipe = kiln:container-test\nimage = \${bookworm:location}\ntest-os = cat /etc/os-release\nexpect-os = ^ID=debian$\ntest-wrong = echo "the actual output"\nexpect-wrong = ^something else$\ntest-crash = sh -c 'echo dying >&2; exit 7'\n`,
    });
    const r = await kilnP(p.dir, ['build', '--json'], env);
    expect(r.code).toBe(1);
    expect(parts(r, 'part-failed')).toEqual(['t']);
    const error = String(r.events.find((e) => e.type === 'part-failed')!.error);
    expect(error).toMatch(/2 of 3 container tests failed/);
    expect(error).toMatch(/- wrong: output does not match \/\^something else\$\/: echo "the actual output"\n--- expected ---\na line matching \/\^something else\$\/\n--- output \(last lines\) ---\nthe actual output/);
    expect(error).toMatch(/- crash: exit code 7, expected 0: .*\n--- output \(last lines\) ---\n.*dying/);
    const xml = readFileSync(join(p.dir, 'out/test-results/t/t.xml'), 'utf8');
    expect(xml).toMatch(/<testsuite name="t" tests="3" failures="2"/);
    expect(xml).toMatch(/<testcase classname="t" name="os" time="[\d.]+">\n\s+<system-out>/);
    expect(r.pid).toBeGreaterThan(0);
    expect(kilnContainers(r.pid)).toEqual([]);
    expect(existsSync(join(p.dir, 'out/parts/t'))).toBe(false);
  }, 300_000);
});
