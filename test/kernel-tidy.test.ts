// kiln:kernel's tidyHeaders: the headers tree packaged as kernel-devel/linux-headers leaves out
// .gitignore and empty files, makes `#!/usr/bin/env X` absolute, fixes executable bits and the
// obsolete FSF address in license comments; checked with rpmlint (and lintian) on packages written
// by kiln's writers from a small tree that has each problem of the real kernel headers.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { tidyHeaders, walk } from '../src/kinds/kernel.js';
import { writePackages } from '../src/pkg/info.js';

const REL = '6.1.0-tidy1';
const GPL = ' * This program is free software; you can redistribute it and/or modify\n * it under the terms of the GNU General Public License as published by\n * the Free Software Foundation; either version 2 of the License.\n *\n * You should have received a copy of the GNU General Public License\n * along with this program; if not, write to the Free Software\n';

function tree(): string {
  const d = mkdtempSync(join(tmpdir(), 'kiln-tidy-'));
  const f = (rel: string, text: string, mode = 0o644) => {
    mkdirSync(dirname(join(d, rel)), { recursive: true });
    writeFileSync(join(d, rel), text);
    chmodSync(join(d, rel), mode);
  };
  f('Makefile', 'VERSION = 6\n');
  f('scripts/.gitignore', 'fixdep\n');
  f('include/config/PRINTK', '');
  f('include/config/auto.conf', 'CONFIG_PRINTK=y\n');
  f('scripts/checkstack.pl', '#!/usr/bin/env perl\nprint "x\\n";\n', 0o755);
  f('scripts/diffconfig', '#!/usr/bin/env python3\nprint("x")\n', 0o755);
  f('scripts/jobserver-exec', '#!/usr/bin/env bash -e\necho x\n', 0o755);
  f('scripts/atomic/fallbacks/inc', 'cat <<EOF\nstatic inline void inc(void) {}\nEOF\n', 0o755);
  f('scripts/nsdeps', '#!/bin/sh\necho x\n', 0o644);
  f('include/linux/old.h', `/*\n${GPL} * Foundation, Inc., 59 Temple Place - Suite 330,\n * Boston, MA 021110-1307, USA.\n */\n#define OLD 1\n`);
  f('include/linux/mass.h', `/*\n${GPL} * Foundation, Inc., 675 Mass Ave, Cambridge, MA 02139, USA.\n */\n#define MASS 1\n`);
  // a host tool (ELF) keeps its bytes and its executable bit
  mkdirSync(join(d, 'scripts/mod'), { recursive: true });
  cpSync('/usr/bin/true', join(d, 'scripts/mod/modpost'));
  return d;
}

async function rpmOf(root: string): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'kiln-tidy-pkg-'));
  const files = [{ path: `/usr/src/kernels/${REL}`, type: 'dir' as const, mode: 0o755 }, ...walk(root, `/usr/src/kernels/${REL}`)];
  const w = await writePackages({ name: 'kernel-devel', version: `${REL.replace(/-/g, '_')}-1`, arch: 'amd64', maintainer: 'kiln test <kiln@example.org>', license: 'GPL-2.0-only', homepage: 'https://www.kernel.org/', summary: 'Development files for the tidy test', description: 'Kernel headers and makefiles for the tidy test.', sourceDateEpoch: 1704067200, files, rpm: { group: 'Development/System', changelog: [{ time: 1704067200, author: 'kiln test <kiln@example.org> - 6.1.0_tidy1-1', text: '- tidy test' }] } }, ['rpm'], out);
  return w[0]!.file.startsWith('/') ? w[0]!.file : join(out, w[0]!.file);
}

const rpmlintErrors = (rpm: string) => {
  const r = spawnSync('rpmlint', [rpm], { encoding: 'utf8', timeout: 300_000 });
  return r.stdout.split('\n').filter((l) => /: E: /.test(l) && !/no-signature/.test(l)).map((l) => l.replace(/^\S+ E: /, ''));
};

describe('kiln:kernel headers tidy (rpmlint-clean kernel-devel)', () => {
  test('the untidied tree has the rpmlint errors of a kernel-devel; after tidyHeaders none, and the tree is right', async () => {
    const raw = tree();
    const before = rpmlintErrors(await rpmOf(raw)).map((e) => e.split(' ')[0]);
    for (const e of ['version-control-internal-file', 'zero-length', 'env-script-interpreter', 'script-without-shebang', 'non-executable-script', 'incorrect-fsf-address']) expect(before, before.join('\n')).toContain(e);

    const t = join(mkdtempSync(join(tmpdir(), 'kiln-tidy-copy-')), 't');
    cpSync(raw, t, { recursive: true });
    const rep = tidyHeaders(t);
    expect(rep.removed.sort()).toEqual(['include/config/PRINTK', 'scripts/.gitignore']);
    expect(rep.interpreters.sort()).toEqual(['scripts/checkstack.pl', 'scripts/diffconfig', 'scripts/jobserver-exec']);
    expect(rep.modes.sort()).toEqual(['scripts/atomic/fallbacks/inc', 'scripts/nsdeps']);
    expect(rep.fsfAddress.sort()).toEqual(['include/linux/mass.h', 'include/linux/old.h']);
    expect(rpmlintErrors(await rpmOf(t))).toEqual([]);

    expect(readFileSync(join(t, 'scripts/checkstack.pl'), 'utf8').split('\n')[0]).toBe('#!/usr/bin/perl');
    expect(readFileSync(join(t, 'scripts/diffconfig'), 'utf8').split('\n')[0]).toBe('#!/usr/bin/python3');
    expect(readFileSync(join(t, 'scripts/jobserver-exec'), 'utf8').split('\n')[0]).toBe('#!/bin/bash -e');
    expect(statSync(join(t, 'scripts/atomic/fallbacks/inc')).mode & 0o777).toBe(0o644);
    expect(statSync(join(t, 'scripts/nsdeps')).mode & 0o777).toBe(0o755);
    expect(statSync(join(t, 'scripts/mod/modpost')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(t, 'scripts/mod/modpost')).equals(readFileSync('/usr/bin/true'))).toBe(true);
    expect(existsSync(join(t, 'include/config/auto.conf'))).toBe(true);
    // the comment keeps its line count; the code is untouched
    const old = readFileSync(join(t, 'include/linux/old.h'), 'utf8');
    expect(old).toContain(' * Foundation, Inc., 51 Franklin Street, Fifth Floor,\n * Boston, MA 02110-1301, USA.\n */\n#define OLD 1\n');
    expect(old.split('\n').length).toBe(readFileSync(join(raw, 'include/linux/old.h'), 'utf8').split('\n').length);
    expect(readFileSync(join(t, 'include/linux/mass.h'), 'utf8')).toContain('Foundation, Inc., 51 Franklin Street, Fifth Floor, Boston, MA 02110-1301, USA.\n */\n#define MASS 1\n');
    // a second run changes nothing
    expect(Object.values(tidyHeaders(t)).flat()).toEqual([]);
  }, 600_000);
});
