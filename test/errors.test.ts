// Bad inputs: each gives one clear error naming file:line, part and option, and a non-zero exit.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { kiln, project } from './helpers/kiln.js';

const errorLines = (s: string) => s.split('\n').filter((l) => l.startsWith('kiln: error:'));

describe('bad inputs', () => {
  test('syntax error', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = a\n[a\nrecipe = kiln:command\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(3);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/buildout\.cfg:3/);
  });

  test('unknown section in a reference', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = a\n\n[a]\nrecipe = kiln:command\ncommand = echo \${nowhere:x}\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/buildout\.cfg:6/);
    expect(r.stderr).toMatch(/\[a\] command/);
    expect(r.stderr).toMatch(/nowhere/);
  });

  test('unknown part in [buildout] parts', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = a mising\n[a]\nrecipe = kiln:command\ncommand = true\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/buildout\.cfg:2: \[buildout\] parts: .*'mising'/);
  });

  test('dependency cycle, with its path and the file:line of each edge', () => {
    const p = project({
      'buildout.cfg': `[buildout]\nparts = a\n[a]\nrecipe = kiln:command\ncommand = echo \${b:location}\n[b]\nrecipe = kiln:command\ncommand = echo \${c:location}\n[c]\nrecipe = kiln:command\ncommand = echo \${a:location}\n`,
    });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cycle.*a -> b -> c -> a/);
    expect(r.stderr).toMatch(/a -> b\s+\(.*buildout\.cfg:5/);
    expect(r.stderr).toMatch(/b -> c\s+\(.*buildout\.cfg:8/);
    expect(r.stderr).toMatch(/c -> a\s+\(.*buildout\.cfg:11/);
  });

  test('substitution cycle', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = a\n[a]\nrecipe = kiln:command\nx = \${:y}\ny = \${:x}\ncommand = echo \${:x}\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/a:x/);
    expect(r.stderr).toMatch(/a:y/);
  });

  test('unknown recipe', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = a\n\n[a]\nrecipe = kiln:frobnicate\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/buildout\.cfg:5: \[a\] recipe: unknown recipe 'kiln:frobnicate'/);
    expect(r.stderr).toMatch(/kiln:cmmi/);
  });

  test('unknown option, with a suggestion', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = a\n\n[a]\nrecipe = kiln:download\nurl = x.tar.gz\nsha265 = 00\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/buildout\.cfg:7: \[a\] sha265: unknown option 'sha265' for recipe kiln:download \(did you mean 'sha256'\?\)/);
  });

  test('near misses: a typo of a declared option even under a catch-all pattern; an explicit pattern that does not take the declared name is meant', () => {
    // kiln:command takes free-form options (a catch-all pattern), but 'commnad' is a typo of 'command'
    const t = project({ 'buildout.cfg': `[buildout]\nparts = a\n\n[a]\nrecipe = kiln:command\ncommnad = true\n` });
    const rt = kiln(t.dir, ['plan']);
    expect(rt.code).toBe(3);
    expect(rt.stderr).toMatch(/buildout\.cfg:6: \[a\] commnad: unknown option 'commnad' for recipe kiln:command \(did you mean 'command'\?\)/);
    // kiln:container-test declares 'tests' and 'expect-exit'; test-os and expect-exit-a are within
    // edit distance 2 of them but match its test-NAME / expect-exit-NAME patterns, which do not
    // take the declared names: accepted
    const ok = project({ 'buildout.cfg': `[buildout]\nparts = c\n\n[c]\nrecipe = kiln:container-test\nimage = debian:bookworm\ntest-os = true\ntest-a = false\nexpect-exit-a = 1\n` });
    const ro = kiln(ok.dir, ['plan']);
    expect(ro.stderr).not.toMatch(/unknown option/);
    expect(ro.code).toBe(0);
    // ...while a near miss outside the patterns is still a typo
    const bad = project({ 'buildout.cfg': `[buildout]\nparts = c\n\n[c]\nrecipe = kiln:container-test\nimage = debian:bookworm\ntets = true\n` });
    const rb = kiln(bad.dir, ['plan']);
    expect(rb.code).toBe(3);
    expect(rb.stderr).toMatch(/buildout\.cfg:7: \[c\] tets: unknown option 'tets' for recipe kiln:container-test \(did you mean 'test(s)?'\?\)/);
  });

  test('missing required option', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = a\n\n[a]\nrecipe = kiln:download\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/buildout\.cfg:4: \[a\] url: missing required option 'url'/);
  });

  test('checksum mismatch: the part fails naming the option; nothing is cached or installed', () => {
    const p = project({
      'data.txt': 'hello\n',
      'buildout.cfg': `[buildout]\nparts = a\n\n[a]\nrecipe = kiln:download\nurl = data.txt\nsha256 = ${'0'.repeat(64)}\n`,
    });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/buildout\.cfg:7: \[a\] sha256: sha256 checksum mismatch for .*data\.txt: expected 0{64}, got 5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03/);
    expect(r.stderr.match(/checksum mismatch/g)).toHaveLength(1);
  });

  test('missing host tool names the Debian package, before anything is built', () => {
    const p = project({
      'buildout.cfg': `[buildout]\nparts = a b\n[a]\nrecipe = kiln:command\ncommand = true\n[b]\nrecipe = kiln:cmmi\npath = src\n`,
      'src/configure': '#!/bin/sh\n',
    });
    // a PATH where bash exists but make does not
    const bin = join(p.dir, 'bin');
    p.write({ 'bin/.keep': '' });
    for (const t of ['bash', 'tar', 'sh']) writeFileSync(join(bin, t), `#!/bin/sh\nexec /usr/bin/${t} "$@"\n`, { mode: 0o755 });
    const r = kiln(p.dir, ['build', '--json'], { PATH: bin });
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/\[b\] required host tool 'make' is not installed \(Debian package: make/);
    expect(r.events.filter((e) => e.type === 'part-start')).toEqual([]);
  });

  test('bad command-line usage', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts =\n` });
    expect(kiln(p.dir, ['frob']).code).toBe(2);
    expect(kiln(p.dir, ['build', '-j', 'x']).code).toBe(2);
    expect(kiln(p.dir, ['build', 'nosuchpart']).code).toBe(3);
  });
});

describe('doctor', () => {
  test('reports each missing tool with its Debian package, and the tools a config needs', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = b\n[b]\nrecipe = kiln:cmmi\npath = src\n` });
    const bin = join(p.dir, 'bin');
    p.write({ 'bin/.keep': '' });
    writeFileSync(join(bin, 'tar'), '#!/bin/sh\nexec /usr/bin/tar "$@"\n', { mode: 0o755 });
    const r = kiln(p.dir, ['doctor', '--json'], { PATH: bin });
    expect(r.code).toBe(4);
    const out = JSON.parse(r.stdout);
    expect(out.tools.find((t: { cmd: string }) => t.cmd === 'xorriso')).toMatchObject({ path: null, pkg: 'xorriso' });
    expect(out.tools.find((t: { cmd: string }) => t.cmd === 'tar').path).toBe(join(bin, 'tar'));
    expect(out.missingNeeded.map((m: { cmd: string }) => m.cmd).sort()).toEqual(['bash', 'make']);
    const ok = kiln(p.dir, ['doctor']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/all \d+ tools needed by buildout\.cfg are present/);
  });
});
