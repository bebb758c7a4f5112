// The engine end to end, through the real CLI: graph order, caching, rebuild of what changed
// (and only that), uninstall, restore from the store, parallelism, failures, lock, shared parts.
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { kiln, parts, project } from './helpers/kiln.js';

const chain = (extra = '', greeting = 'hello') => ({
  'buildout.cfg': `[buildout]
parts = c
${extra}
[a]
recipe = kiln:command
greeting = ${greeting}
command = echo "$KILN_OPT_GREETING" > "$OUT/a.txt"

[b]
recipe = kiln:command
src = \${a:location}/a.txt
command = tr a-z A-Z < "$KILN_OPT_SRC" > "$OUT/b.txt"

[c]
recipe = kiln:command
src = \${b:location}/b.txt
command = cat "$KILN_OPT_SRC" "$KILN_OPT_SRC" > "$OUT/c.txt"
outputs = c.txt

[other]
recipe = kiln:command
command = date +%s%N > "$OUT/other.txt"
`,
});

describe('build, cache, rebuild', () => {
  test('builds dependencies first, then everything is cached', () => {
    const p = project(chain());
    const r1 = kiln(p.dir, ['build', '--json']);
    expect(r1.code, r1.stderr).toBe(0);
    const started = r1.events.filter((e) => e.type === 'part-start').map((e) => e.part);
    expect(started).toEqual(['a', 'b', 'c']);
    expect(readFileSync(join(p.dir, 'out/parts/c/c.txt'), 'utf8')).toBe('HELLO\nHELLO\n');
    expect(lstatSync(join(p.dir, 'out/parts/c')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(p.dir, 'out/logs/c.log'))).toBe(true);
    expect(parts(r1, 'part-done')).toEqual(['a', 'b', 'c']);
    const r2 = kiln(p.dir, ['build', '--json']);
    expect(r2.code).toBe(0);
    expect(parts(r2, 'part-start')).toEqual([]);
    expect(parts(r2, 'part-cached')).toEqual(['a', 'b', 'c']);
  });

  test('a changed option rebuilds that part and what depends on it, nothing else', () => {
    const p = project(chain('', 'hello'));
    p.write({ 'buildout.cfg': chain('', 'hello')['buildout.cfg'].replace('parts = c', 'parts = c other') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    const otherBefore = readFileSync(join(p.dir, 'out/parts/other/other.txt'), 'utf8');
    p.write({ 'buildout.cfg': chain('', 'bonjour')['buildout.cfg'].replace('parts = c', 'parts = c other') });
    const plan = kiln(p.dir, ['plan']);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/option 'greeting' changed: "hello" -> "bonjour"/);
    expect(plan.stdout).toMatch(/dependency 'a' is rebuilt/);
    const r = kiln(p.dir, ['build', '--json']);
    expect(r.code).toBe(0);
    expect(parts(r, 'part-start')).toEqual(['a', 'b', 'c']);
    expect(parts(r, 'part-cached')).toEqual(['other']);
    expect(readFileSync(join(p.dir, 'out/parts/other/other.txt'), 'utf8')).toBe(otherBefore);
    expect(readFileSync(join(p.dir, 'out/parts/c/c.txt'), 'utf8')).toBe('BONJOUR\nBONJOUR\n');
  });

  test('reverting a change restores the previous output from the store without rebuilding', () => {
    const p = project(chain('', 'one'));
    expect(kiln(p.dir, ['build']).code).toBe(0);
    p.write(chain('', 'two'));
    expect(kiln(p.dir, ['build']).code).toBe(0);
    p.write(chain('', 'one'));
    const r = kiln(p.dir, ['build', '--json']);
    expect(r.code).toBe(0);
    expect(parts(r, 'part-start')).toEqual([]);
    expect(r.events.filter((e) => e.type === 'part-cached' && e.relinked).map((e) => e.part).sort()).toEqual(['a', 'b', 'c']);
    expect(readFileSync(join(p.dir, 'out/parts/c/c.txt'), 'utf8')).toBe('ONE\nONE\n');
  });

  test('parts removed from the config are uninstalled', () => {
    const p = project(chain());
    p.write({ 'buildout.cfg': chain()['buildout.cfg'].replace('parts = c', 'parts = c other') });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    expect(existsSync(join(p.dir, 'out/parts/other'))).toBe(true);
    p.write(chain());
    const r = kiln(p.dir, ['build', '--json']);
    expect(r.code).toBe(0);
    expect(parts(r, 'uninstall')).toEqual(['other']);
    expect(existsSync(join(p.dir, 'out/parts/other'))).toBe(false);
    expect(existsSync(join(p.dir, 'out/parts/c/c.txt'))).toBe(true);
  });

  test('building named parts builds them and their dependencies only', () => {
    const p = project(chain());
    const r = kiln(p.dir, ['build', 'b', '--json']);
    expect(r.code).toBe(0);
    expect(parts(r, 'part-done')).toEqual(['a', 'b']);
    expect(existsSync(join(p.dir, 'out/parts/c'))).toBe(false);
  });

  test('independent parts run in parallel with -j2', () => {
    const cfg = `[buildout]
parts = x y
[x]
recipe = kiln:command
command = date +%s.%N > "$OUT/start"; sleep 1; date +%s.%N > "$OUT/end"
[y]
recipe = kiln:command
command = date +%s.%N > "$OUT/start"; sleep 1; date +%s.%N > "$OUT/end"
`;
    const p = project({ 'buildout.cfg': cfg });
    expect(kiln(p.dir, ['build', '-j2']).code).toBe(0);
    const t = (part: string, f: string) => Number(readFileSync(join(p.dir, 'out/parts', part, f), 'utf8'));
    // the intervals overlap: each started before the other ended
    expect(t('x', 'start')).toBeLessThan(t('y', 'end'));
    expect(t('y', 'start')).toBeLessThan(t('x', 'end'));
    const p1 = project({ 'buildout.cfg': cfg });
    expect(kiln(p1.dir, ['build', '-j1']).code).toBe(0);
    const u = (part: string, f: string) => Number(readFileSync(join(p1.dir, 'out/parts', part, f), 'utf8'));
    expect(Math.min(u('x', 'end'), u('y', 'end'))).toBeLessThanOrEqual(Math.max(u('x', 'start'), u('y', 'start')));
  });
});

describe('failures', () => {
  const failing = `[buildout]
parts = bad after independent
[bad]
recipe = kiln:command
command =
  echo "compiling thing"
  echo "thing.c:3: error: expected ';'" >&2
  exit 3
[after]
recipe = kiln:command
in = \${bad:location}
command = true
[independent]
recipe = kiln:command
command = sleep 0.5; echo ok > "$OUT/ok"
`;
  test('a failing part shows the part, the command and its log tail; dependants are skipped', () => {
    const p = project({ 'buildout.cfg': failing });
    const r = kiln(p.dir, ['build', '-j1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED\s+bad \(command\)/);
    expect(r.stderr).toMatch(/exit code 3/);
    expect(r.stderr).toMatch(/thing\.c:3: error: expected ';'/);
    expect(r.stderr).toMatch(/log: .*out\/logs\/bad\.log/);
    expect(r.stderr).toMatch(/skipped\s+after: dependency 'bad' failed/);
    expect(existsSync(join(p.dir, 'out/parts/bad'))).toBe(false);
  });
  test('--keep-going builds the independent parts', () => {
    const p = project({ 'buildout.cfg': failing });
    const r = kiln(p.dir, ['build', '-j1', '--keep-going', '--json']);
    expect(r.code).toBe(1);
    expect(parts(r, 'part-done')).toEqual(['independent']);
    expect(parts(r, 'part-skipped')).toEqual(['after']);
  });
  test('--keep-going -j2: a failure while another part runs fails only itself; the other part and its dependant build', () => {
    const cfg = failing.replace('[buildout]\nparts = ', '[buildout]\nparts = needs-independent ') + `[needs-independent]
recipe = kiln:command
in = \${independent:location}
command = cp "$KILN_OPT_IN/ok" "$OUT/ok"
`;
    const p = project({ 'buildout.cfg': cfg });
    const r = kiln(p.dir, ['build', '-j2', '--keep-going', '--json']);
    expect(r.code).toBe(1);
    expect(parts(r, 'part-failed')).toEqual(['bad']);
    expect(parts(r, 'part-done')).toEqual(['independent', 'needs-independent']);
    expect(parts(r, 'part-skipped')).toEqual(['after']);
  });
  test('a failed rebuild keeps the previous good output', () => {
    const good = `[buildout]\nparts = p\n[p]\nrecipe = kiln:command\nv = 1\ncommand = echo good > "$OUT/f"; test "$KILN_OPT_V" = 1\n`;
    const p = project({ 'buildout.cfg': good });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    p.write({ 'buildout.cfg': good.replace('v = 1', 'v = 2') });
    expect(kiln(p.dir, ['build']).code).toBe(1);
    expect(readFileSync(join(p.dir, 'out/parts/p/f'), 'utf8')).toBe('good\n');
  });
});

describe('shared parts', () => {
  test('a shared = true part is built once and reused by another project', () => {
    const cfg = `[buildout]\nparts = s\n[s]\nrecipe = kiln:command\nshared = true\ncommand = date +%s%N > "$OUT/stamp"\n`;
    const p1 = project({ 'buildout.cfg': cfg });
    const p2 = project({ 'buildout.cfg': cfg });
    const cache = join(p1.dir, 'shared-cache');
    const r1 = kiln(p1.dir, ['build', '--json'], { KILN_CACHE_DIR: cache });
    expect(r1.code).toBe(0);
    expect(parts(r1, 'part-done')).toEqual(['s']);
    const r2 = kiln(p2.dir, ['build', '--json'], { KILN_CACHE_DIR: cache });
    expect(r2.code).toBe(0);
    expect(parts(r2, 'part-start')).toEqual([]);
    const show = kiln(p2.dir, ['show', 's', '--json'], { KILN_CACHE_DIR: cache });
    const loc = JSON.parse(show.stdout).options.location.value as string;
    expect(loc.startsWith(join(cache, 'shared', 's'))).toBe(true);
    expect(existsSync(join(loc, 'stamp'))).toBe(true);
  });
});

describe('inspection commands', () => {
  test('show gives resolved values with file:line', () => {
    const p = project({
      'base.cfg': `[a]\nrecipe = kiln:command\ncommand = echo \${:words}\nwords = one\n`,
      'buildout.cfg': `[buildout]\nextends = base.cfg\nparts = a\n\n[a]\nwords += two\n`,
    });
    const r = kiln(p.dir, ['show', 'a', '--history']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/words = one\n\s+two\n\s+# buildout\.cfg:6/);
    expect(r.stdout).toMatch(/recipe = kiln:command\n\s+# base\.cfg:2/);
  });
  test('graph in DOT and Mermaid', () => {
    const p = project(chain());
    const dot = kiln(p.dir, ['graph']);
    expect(dot.code).toBe(0);
    expect(dot.stdout).toMatch(/"a" -> "b";/);
    expect(dot.stdout).toMatch(/"b" -> "c";/);
    const mer = kiln(p.dir, ['graph', '--format', 'mermaid']);
    expect(mer.stdout).toMatch(/p_a --> p_b/);
    const svg = kiln(p.dir, ['graph', '--format', 'svg']);
    expect(svg.code).toBe(0);
    expect(svg.stdout).toMatch(/<svg/);
  });
});
