// One -j budget (docs/architecture.md): -j N is N job slots shared by the parts and their inner
// parallelism. Two kiln:cmmi parts, each running `make -j<share>` of sleeping targets that count
// the targets running at the same moment (across both parts), under -j 2: never more than 2.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { buildSquashfs } from '../src/kinds/recovery-iso.js';
import { run } from '../src/lib/exec.js';
import { makeContext } from './helpers/context.js';
import { kiln, project } from './helpers/kiln.js';

// each target: register itself in $(RUN), count what is registered (itself included), sleep, leave
const MAKEFILE = `T := t1 t2 t3 t4 t5 t6
all: $(T)
	@echo "$(PART) $(MAKEFLAGS)" >> $(FLAGS)
$(T):
\t@mkdir -p $(RUN) && touch $(RUN)/$(PART)-$@ && ls $(RUN) | wc -l >> $(COUNTS) && sleep 0.4 && rm -f $(RUN)/$(PART)-$@
install:
\tmkdir -p $(DESTDIR)$(prefix) && echo $(PART) > $(DESTDIR)$(prefix)/done
.PHONY: all install $(T)
`;

const cfg = (dir: string, names: string[]) => `[buildout]
parts = ${names.join(' ')}
${names
  .map(
    (n) => `
[${n}]
recipe = kiln:cmmi
path = \${buildout:directory}/src
configure-command = false
make-options = RUN=${dir}/running COUNTS=${dir}/counts FLAGS=${dir}/flags PART=${n}
`,
  )
  .join('')}`;

/** The -j each part's make ran with (from its MAKEFLAGS; none: 1). */
const makeJobs = (dir: string) =>
  Object.fromEntries(
    readFileSync(join(dir, 'flags'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.split(' ')[0], Number(/(?:^| )-j(\d+)/.exec(l)?.[1] ?? 1)]),
  );

const counts = (dir: string) =>
  readFileSync(join(dir, 'counts'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(Number);

describe('-j is one budget for parts and their make -j', () => {
  test('two parts under -j 2: make gets -j1 each, never more than 2 targets at once', () => {
    const p = project({ 'src/Makefile': MAKEFILE });
    p.write({ 'buildout.cfg': cfg(p.dir, ['a', 'b']) });
    const r = kiln(p.dir, ['build', '-j', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const c = counts(p.dir);
    expect(c).toHaveLength(12); // every target ran and counted
    expect(Math.max(...c)).toBeLessThanOrEqual(2);
    expect(makeJobs(p.dir)).toEqual({ a: 1, b: 1 });
  });

  test('one part alone under -j 2 gets both slots (make -j2); two parts under -j 4 get two each, at most 4 targets', () => {
    const p = project({ 'src/Makefile': MAKEFILE });
    p.write({ 'buildout.cfg': cfg(p.dir, ['solo']) });
    const r1 = kiln(p.dir, ['build', '-j', '2']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(makeJobs(p.dir)).toEqual({ solo: 2 });
    expect(Math.max(...counts(p.dir))).toBeLessThanOrEqual(2);

    const q = project({ 'src/Makefile': MAKEFILE });
    q.write({ 'buildout.cfg': cfg(q.dir, ['a', 'b']) });
    const r2 = kiln(q.dir, ['build', '-j', '4']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(makeJobs(q.dir)).toEqual({ a: 2, b: 2 });
    expect(Math.max(...counts(q.dir))).toBeLessThanOrEqual(4);
  });

  test('kiln:command sees its share as $KILN_JOBS', () => {
    const p = project({
      'buildout.cfg': `[buildout]
parts = x y
[x]
recipe = kiln:command
command = echo "$KILN_JOBS" > "$OUT/jobs"
[y]
recipe = kiln:command
command = echo "$KILN_JOBS" > "$OUT/jobs"
`,
    });
    expect(kiln(p.dir, ['build', '-j', '3']).code).toBe(0);
    // 3 slots, 2 ready parts: the first gets floor(3/2) = 1, the second what is left (2), never 3 + 3
    expect(readFileSync(join(p.dir, 'out/parts/x/jobs'), 'utf8').trim()).toBe('1');
    expect(readFileSync(join(p.dir, 'out/parts/y/jobs'), 'utf8').trim()).toBe('2');
  });

  test('recovery-iso: sqfstar runs with the part\'s share (-processors N), and the live system does not depend on it', async () => {
    // a wrapper first on PATH records sqfstar's arguments and runs the real one
    const images: Buffer[] = [];
    for (const jobs of [1, 3]) {
      const ctx = makeContext('rescue', {}, { jobs });
      const bin = join(ctx.root, 'bin');
      mkdirSync(bin);
      const real = execFileSync('sh', ['-c', 'command -v sqfstar'], { encoding: 'utf8' }).trim();
      writeFileSync(join(bin, 'sqfstar'), `#!/bin/sh\necho "$*" > ${join(bin, 'args')}\nexec ${real} "$@"\n`);
      chmodSync(join(bin, 'sqfstar'), 0o755);
      mkdirSync(join(ctx.root, 'tree/etc'), { recursive: true });
      writeFileSync(join(ctx.root, 'tree/etc/hostname'), 'rescue\n');
      execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '-cf', join(ctx.root, 'rootfs.tar'), '-C', join(ctx.root, 'tree'), '.']);
      const cacheDir = join(ctx.root, 'cache');
      const sq = await buildSquashfs({ ...ctx, cacheDir, run: (argv, o = {}) => ctx.run(argv, { ...o, env: { ...o.env, PATH: `${bin}:${process.env.PATH}` } }) }, join(ctx.root, 'rootfs.tar'));
      expect(readFileSync(join(bin, 'args'), 'utf8')).toMatch(new RegExp(`-processors ${jobs} `));
      images.push(readFileSync(sq.path));
    }
    expect(images[0]!.equals(images[1]!)).toBe(true);
  });
});
