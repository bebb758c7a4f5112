// The built-in recipes of the engine: download, cmmi, command, and project-local recipe modules.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { kiln, kilnP, parts, project } from './helpers/kiln.js';

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const md5 = (s: string | Buffer) => createHash('md5').update(s).digest('hex');

describe('kiln:download', () => {
  test('http download, verified, cached; --offline then uses the cache', async () => {
    const body = 'payload '.repeat(1000);
    let hits = 0;
    const server = createServer((req, res) => {
      hits++;
      if (req.url === '/files/data.bin') res.end(body);
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const cfg = (name: string) => `[buildout]\nparts = dl\n[dl]\nrecipe = kiln:download\nurl = http://127.0.0.1:${port}/files/data.bin\nsha256 = ${sha256(body)}\nfilename = ${name}\n`;
      const p = project({ 'buildout.cfg': cfg('a.bin') });
      const r1 = await kilnP(p.dir, ['build']);
      expect(r1.code, r1.stderr).toBe(0);
      expect(readFileSync(join(p.dir, 'out/parts/dl/a.bin'), 'utf8')).toBe(body);
      expect(hits).toBe(1);
      p.write({ 'buildout.cfg': cfg('b.bin') });
      const r2 = await kilnP(p.dir, ['build', '--offline']);
      expect(r2.code, r2.stderr).toBe(0);
      expect(readFileSync(join(p.dir, 'out/parts/dl/b.bin'), 'utf8')).toBe(body);
      expect(hits).toBe(1);
      // offline and not cached: a clear error
      p.write({ 'buildout.cfg': cfg('c.bin').replace('data.bin', 'other.bin').replace(sha256(body), sha256('x')) });
      const r3 = await kilnP(p.dir, ['build', '--offline']);
      expect(r3.code).toBe(1);
      expect(r3.stderr).toMatch(/offline, and http:\/\/127\.0\.0\.1:\d+\/files\/other\.bin is not in the download cache/);
    } finally {
      server.close();
    }
  });

  test('local path with md5sum (SlapOS style) and unpacking an archive', () => {
    const p = project({ 'src/a/hello.txt': 'hi\n', 'src/a/sub/x.txt': 'x\n' });
    execFileSync('tar', ['-czf', join(p.dir, 'a.tar.gz'), '-C', join(p.dir, 'src'), 'a']);
    const tgz = readFileSync(join(p.dir, 'a.tar.gz'));
    p.write({
      'buildout.cfg': `[buildout]\nparts = raw unpacked\n[raw]\nrecipe = slapos.recipe.build:download\nurl = a.tar.gz\nmd5sum = ${md5(tgz)}\nmode = 0600\n[unpacked]\nrecipe = kiln:download\nurl = a.tar.gz\nextract = true\n`,
    });
    const r = kiln(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(join(p.dir, 'out/parts/raw/a.tar.gz')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(p.dir, 'out/parts/unpacked/hello.txt'), 'utf8')).toBe('hi\n');
    expect(readFileSync(join(p.dir, 'out/parts/unpacked/sub/x.txt'), 'utf8')).toBe('x\n');
  });

  test('a changed local file (no checksum) rebuilds the part', () => {
    const p = project({ 'data.txt': 'one\n', 'buildout.cfg': `[buildout]\nparts = dl\n[dl]\nrecipe = kiln:download\nurl = data.txt\n` });
    expect(kiln(p.dir, ['build']).code).toBe(0);
    expect(parts(kiln(p.dir, ['build', '--json']), 'part-start')).toEqual([]);
    p.write({ 'data.txt': 'two, longer\n' });
    const plan = kiln(p.dir, ['plan']);
    expect(plan.stdout).toMatch(/input .*data\.txt changed/);
    expect(parts(kiln(p.dir, ['build', '--json']), 'part-done')).toEqual(['dl']);
    expect(readFileSync(join(p.dir, 'out/parts/dl/data.txt'), 'utf8')).toBe('two, longer\n');
  });
});

describe('kiln:cmmi', () => {
  const source = {
    'src/configure': `#!/bin/sh
# a tiny configure: records its arguments
prefix=/usr/local
for a in "$@"; do case "$a" in --prefix=*) prefix="\${a#--prefix=}";; esac; done
printf 'PREFIX=%s\\nARGS=%s\\n' "$prefix" "$*" > config.mk
`,
    'src/Makefile': `include config.mk
all: greet
greet: greet.in
\tsed "s|@MSG@|$$(cat msg)|" greet.in > greet
install: greet
\tmkdir -p $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share
\tinstall -m 0755 greet $(DESTDIR)$(PREFIX)/bin/greet
\techo "$(ARGS)" > $(DESTDIR)$(PREFIX)/share/configure-args
`,
    'src/greet.in': '#!/bin/sh\necho "@MSG@"\n',
    'src/msg': 'original\n',
    'fix.patch': `--- msg
+++ msg
@@ -1 +1 @@
-original
+patched
`,
  };
  test('configure / make / make install into the part, with patches, hooks and environment', () => {
    const p = project({
      ...source,
      'buildout.cfg': `[buildout]\nparts = greet\n[greet]\nrecipe = slapos.recipe.cmmi\npath = src\npatches = fix.patch\nconfigure-options = --enable-foo\n  --with-bar=\${:bar}\nbar = baz\nenvironment =\n  GREETING_ENV=from-env\npre-configure = chmod +x configure\npost-install = echo "$GREETING_ENV $location" > "$DESTDIR$location/share/hook"\n`,
    });
    const r = kiln(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    const loc = join(p.dir, 'out/parts/greet');
    expect(execFileSync(join(loc, 'bin/greet'), { encoding: 'utf8' })).toBe('patched\n');
    expect(readFileSync(join(loc, 'share/configure-args'), 'utf8')).toBe(`--prefix=${loc} --enable-foo --with-bar=baz\n`);
    expect(readFileSync(join(loc, 'share/hook'), 'utf8')).toBe(`from-env ${loc}\n`);
  });
  test('a compile error fails the part with the command and the tail of its output', () => {
    const p = project({ ...source, 'src/Makefile': 'all:\n\t@echo "greet.c:12: error: boom" >&2; exit 2\n', 'buildout.cfg': `[buildout]\nparts = greet\n[greet]\nrecipe = kiln:cmmi\npath = src\nconfigure-command = sh ./configure\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED\s+greet/);
    expect(r.stderr).toMatch(/command failed \(exit code 2\): make -j\d+/);
    expect(r.stderr).toMatch(/greet\.c:12: error: boom/);
    expect(existsSync(join(p.dir, 'out/parts/greet'))).toBe(false);
  });
});

describe('kiln:command and local recipe modules', () => {
  test('argv runs without a shell: values with shell syntax stay literal', () => {
    const evil = '$(touch pwned); `touch pwned2`; echo hi > pwned3';
    const p = project({ 'buildout.cfg': `[buildout]\nparts = c\n[c]\nrecipe = kiln:command\nvalue = ${evil}\nargv =\n  /usr/bin/printf\n  %s\n  \${:value}\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(p.dir, 'out/logs/c.log'), 'utf8')).toContain(evil);
    for (const f of ['pwned', 'pwned2', 'pwned3']) expect(existsSync(join(p.dir, 'out/.kiln/tmp', f))).toBe(false);
  });

  test('missing declared outputs fail the part', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = c\n[c]\nrecipe = kiln:command\ncommand = touch "$OUT/one"\noutputs =\n  one\n  two\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/declared outputs missing after the command: 'two' \(write them under \$OUT\)$/m);
  });

  test('two outputs on one line: the message quotes the path and says outputs takes one per line', () => {
    const p = project({ 'buildout.cfg': `[buildout]\nparts = c\n[c]\nrecipe = kiln:command\ncommand = touch "$OUT/one" "$OUT/two"\noutputs = one two\n` });
    const r = kiln(p.dir, ['build']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/declared outputs missing after the command: 'one two' \(write them under \$OUT\) \(outputs takes one path per line\)/);
  });

  test('a project-local TypeScript recipe module and a JavaScript one', () => {
    const p = project({
      'lib/greeting.ts': `import { writeFileSync } from 'node:fs';
interface Ctx { staging: string; options: { require(n: string): string } }
export const recipe = {
  kind: 'greeting', version: '1', description: 'writes a greeting',
  options: { name: { description: 'who', required: true } },
  async install(ctx: Ctx): Promise<void> { writeFileSync(ctx.staging + '/greeting', 'hello ' + ctx.options.require('name') + '\\n'); },
};
`,
      'lib/shout.mjs': `import { readFileSync, writeFileSync } from 'node:fs';
export default { kind: 'shout', version: '1', description: 'upper-cases a file', options: { from: { description: 'file', required: true } },
  async install(ctx) { writeFileSync(ctx.staging + '/shout', readFileSync(ctx.options.require('from'), 'utf8').toUpperCase()); } };
`,
      'buildout.cfg': `[buildout]\nparts = loud\n[hi]\nrecipe = ./lib/greeting.ts\nname = world\n[loud]\nrecipe = ./lib/shout.mjs\nfrom = \${hi:location}/greeting\n`,
    });
    const r = kiln(p.dir, ['build']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(p.dir, 'out/parts/loud/shout'), 'utf8')).toBe('HELLO WORLD\n');
    const bad = project({ 'buildout.cfg': `[buildout]\nparts = x\n[x]\nrecipe = ./nope.ts\n` });
    const rb = kiln(bad.dir, ['build']);
    expect(rb.code).toBe(3);
    expect(rb.stderr).toMatch(/buildout\.cfg:4: \[x\] recipe: recipe module not found/);
  });
});
