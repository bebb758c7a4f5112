// kill -9 in the middle of a build, concurrent builds on one out/ directory.
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { kilnAsync, kilnP, parts, project, type KilnResult } from './helpers/kiln.js';

const cfg = (version: string) => `[buildout]
parts = final
[slow]
recipe = kiln:command
version = ${version}
command =
  for i in $(seq 1 20); do echo "$KILN_OPT_VERSION $i" > "$OUT/f$i"; sleep 0.15; done
  echo "$KILN_OPT_VERSION" > "$OUT/complete"
[final]
recipe = kiln:command
in = \${slow:location}
command = cat "$KILN_OPT_IN"/f* > "$OUT/all"
`;

/** Every view of out/parts/slow is either absent or a complete output of one version. */
function checkConsistent(dir: string, seen: Set<string>): void {
  const loc = join(dir, 'out/parts/slow');
  let names: string[];
  try {
    names = readdirSync(loc);
  } catch {
    return; // absent (or the link is being swapped: a rename, never a partial directory)
  }
  const version = readFileSync(join(loc, 'complete'), 'utf8').trim();
  seen.add(version);
  expect(names.sort()).toEqual(['complete', ...Array.from({ length: 20 }, (_, i) => `f${i + 1}`)].sort());
  for (let i = 1; i <= 20; i++) expect(readFileSync(join(loc, `f${i}`), 'utf8')).toBe(`${version} ${i}\n`);
}

const tree = (d: string) => readdirSync(d).sort().map((n) => `${n}:${readFileSync(join(d, n), 'utf8')}`);

describe('interruption', () => {
  test('kill -9 during a build: no partial output is ever visible, and the rebuild equals an uninterrupted build', async () => {
    const p = project({ 'buildout.cfg': cfg('v1') });
    expect((await kilnP(p.dir, ['build'])).code).toBe(0);
    p.write({ 'buildout.cfg': cfg('v2') });
    const child = kilnAsync(p.dir, ['build']);
    const seen = new Set<string>();
    // wait until the slow part is half-way through writing its staging output
    const logFile = join(p.dir, 'out/logs/slow.log');
    const deadline = Date.now() + 60_000;
    for (;;) {
      checkConsistent(p.dir, seen);
      const tmp = join(p.dir, 'out/.kiln/tmp');
      const staged = existsSync(tmp)
        ? readdirSync(tmp).flatMap((d) => (existsSync(join(tmp, d, 'entry/out')) ? readdirSync(join(tmp, d, 'entry/out')) : []))
        : [];
      if (existsSync(logFile) && staged.length >= 8) break;
      if (Date.now() > deadline) throw new Error('build did not start');
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    checkConsistent(p.dir, seen);
    expect(readFileSync(join(p.dir, 'out/parts/slow/complete'), 'utf8')).toBe('v1\n');
    // the part's shell dies with kiln (no orphan); had it survived, it would write only into its own staging dir
    await new Promise((r) => setTimeout(r, 1200));
    checkConsistent(p.dir, seen);
    expect(readFileSync(join(p.dir, 'out/parts/slow/complete'), 'utf8')).toBe('v1\n');
    // the stale lock of the killed process does not block the rebuild
    const r = await kilnP(p.dir, ['build', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(parts(r, 'part-done')).toEqual(['final', 'slow']);
    checkConsistent(p.dir, seen);
    expect([...seen].sort()).toEqual(['v1', 'v2']);
    // identical to a build that was never interrupted
    const q = project({ 'buildout.cfg': cfg('v2') });
    expect((await kilnP(q.dir, ['build'])).code).toBe(0);
    expect(tree(join(p.dir, 'out/parts/slow'))).toEqual(tree(join(q.dir, 'out/parts/slow')));
    expect(readFileSync(join(p.dir, 'out/parts/final/all'), 'utf8')).toBe(readFileSync(join(q.dir, 'out/parts/final/all'), 'utf8'));
    // nothing left behind in the staging area after the successful rebuild
    expect(readdirSync(join(p.dir, 'out/.kiln/tmp'))).toEqual([]);
  });
});

describe('locking', () => {
  test('a second build on the same out/ waits for the first, then finds everything built', async () => {
    // the first build's slow part holds until the test opens a gate (no race with the start-up
    // of the other kiln processes on a loaded host); the gate is not part of the signature
    const gate = join(tmpdir(), `kiln-gate-${process.pid}-${Date.now()}`);
    const p = project({ 'buildout.cfg': cfg('v1').replace('command =\n', `command =\n  while [ ! -e '${gate}' ]; do sleep 0.05; done\n`) });
    const first = kilnAsync(p.dir, ['build']);
    try {
      const logFile = join(p.dir, 'out/logs/slow.log');
      while (!existsSync(logFile)) await new Promise((r) => setTimeout(r, 10));
      const noWait = await kilnP(p.dir, ['build', '--no-wait']);
      expect(noWait.code).toBe(5);
      expect(noWait.stderr).toMatch(/another kiln build \(pid \d+\)/);
      // the second build: open the gate once it has reported that it waits for the lock
      const c = kilnAsync(p.dir, ['build', '--json']);
      let stdout = '';
      const second = await new Promise<KilnResult>((resolve) => {
        c.stdout!.on('data', (b) => {
          stdout += b;
          if (stdout.includes('"type":"waiting-for-lock"')) writeFileSync(gate, '');
        });
        c.on('close', (code) => resolve({ code, stdout, stderr: '', events: stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) }));
      });
      const code = await new Promise((r) => (first.exitCode !== null ? r(first.exitCode) : first.once('exit', r)));
      expect(code).toBe(0);
      expect(second.code).toBe(0);
      expect(second.events.some((e) => e.type === 'waiting-for-lock')).toBe(true);
      expect(parts(second, 'part-start')).toEqual([]);
    } finally {
      writeFileSync(gate, '');
      rmSync(gate, { force: true });
    }
  });
});
