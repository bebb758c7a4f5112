// Issue 11 chaos test: a 30-part graph (slow parts, parts writing thousands of files, shared
// parts; about 30,000 files in all), kill -9 of the real bin/kiln.js at random moments of build,
// prune, clean and uninstall. After each kill, `kiln verify` passes or names what it quarantined,
// the next build exits 0, and every output equals a clean build's (sha256 of every file).
// Seeded: KILN_CHAOS_SEED=N reproduces a run; KILN_CHAOS_ROUNDS=N changes the number of kills.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { kilnAsync, kilnP, project } from './helpers/kiln.js';

const SEED = Number(process.env.KILN_CHAOS_SEED ?? 20261203);
const ROUNDS = Number(process.env.KILN_CHAOS_ROUNDS ?? 50);

/** mulberry32: a small seeded generator, so a failing sequence of kills reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Variant = 'A' | 'B' | 'C' | 'U';

/** 30 parts: 2 shared parts of 12,000 files, one part of 4,000 files (rebuilt on every variant change), 4 slow parts, 23 small ones. */
function config(v: Variant): string {
  const s: string[] = [];
  const all: string[] = [];
  const part = (name: string, body: string) => {
    all.push(name);
    s.push(`[${name}]\nrecipe = kiln:command\n${body}`);
  };
  s.push(`[knobs]\nvariant = ${v === 'U' ? 'A' : v}\n`);
  for (const i of [0, 1]) part(`s${i}`, `shared = true\nn = ${i}\ncommand = seq 1 12000 | sed "s/^/$KILN_OPT_N /" | split -l 1 -a 4 - "$OUT/f"\n`);
  part('m0', `v = \${knobs:variant}\ncommand =\n  mkdir "$OUT/d"\n  seq 1 4000 | sed "s/^/$KILN_OPT_V /" | split -l 1 -a 4 - "$OUT/d/g"\n  ln -s d/gaaaa "$OUT/first"\n`);
  for (const i of [0, 1, 2, 3]) {
    part(`slow${i}`, `${i < 2 ? 'v = ${knobs:variant}\n' : ''}n = ${i}\ncommand = sleep 0.4; echo "slow $KILN_OPT_N $\${KILN_OPT_V:-}" > "$OUT/slow"\n`);
  }
  const sum = 'command = { for d in $KILN_OPT_IN; do (cd "$d" && find . -type f -o -type l | LC_ALL=C sort | xargs cat); done; echo "$KILN_OPT_ME $${KILN_OPT_V:-}"; } | sha256sum > "$OUT/sum"\n';
  for (let i = 0; i < 22; i++) {
    const ins =
      i === 0 ? ['${s0:location}'] : i === 1 ? ['${c0:location}', '${s1:location}', '${m0:location}'] : i % 5 === 0 ? [`\${c${i - 1}:location}`, `\${slow${i % 4}:location}`] : [`\${c${i - 1}:location}`];
    part(`c${i}`, `me = c${i}\n${i % 5 === 0 ? 'v = ${knobs:variant}\n' : ''}in = ${ins.join(' ')}\n${sum}`);
  }
  part('top', `in = \${c21:location} \${slow2:location} \${slow3:location}\nme = top\n${sum}`);
  expect(all).toHaveLength(30);
  const parts = v === 'U' ? 'c3 slow2 m0' : 'top c1';
  return `[buildout]\nparts = ${parts}\n\n${s.join('\n')}`;
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** sha256 of every file of every part's output (shared parts found through their location). */
function outputs(dir: string, cache = join(dir, '.cache'), sharedVerified = false): Record<string, string> {
  const out: Record<string, string> = {};
  const rec = (root: string, rel: string, label: string) => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(root, r));
      if (st.isDirectory()) rec(root, r, label);
      else out[`${label}/${r}`] = st.isSymbolicLink() ? 'link' : sha(readFileSync(join(root, r)));
    }
  };
  const partsDir = join(dir, 'out/parts');
  for (const n of readdirSync(partsDir).sort()) rec(join(partsDir, n), '', n);
  for (const n of ['s0', 's1']) {
    const root = join(cache, 'shared', n);
    const sigs = readdirSync(root).filter((x) => !x.startsWith('.'));
    expect(sigs).toHaveLength(1);
    if (!sharedVerified) rec(join(root, sigs[0]!, 'out'), '', n);
    else {
      // `kiln verify` hashed this entry against its manifest in this round: compare the manifest
      const m = JSON.parse(readFileSync(join(root, sigs[0]!, 'manifest.json'), 'utf8')) as { entries: Array<{ p: string; t: string; h?: string }> };
      for (const e of m.entries) if (e.t === 'f' || e.t === 'l') out[`${n}/${e.p}`] = e.t === 'l' ? 'link' : e.h!;
    }
  }
  return out;
}

test(
  `kill -9 at ${ROUNDS} random moments of build, prune, clean and uninstall (seed ${SEED})`,
  async () => {
    const t0 = Date.now();
    // reference: clean builds of each variant
    const want = {} as Record<Variant, Record<string, string>>;
    const refs = project({});
    const refCache = join(refs.dir, 'cache'); // the references share their shared parts
    for (const v of ['A', 'B', 'C', 'U'] as Variant[]) {
      const ref = project({ 'buildout.cfg': config(v) });
      const r = await kilnP(ref.dir, ['build', '--cache', refCache]);
      expect(r.code, r.stderr).toBe(0);
      want[v] = outputs(ref.dir, refCache);
    }
    expect(Object.keys(want.A).length).toBeGreaterThan(28_000);
    console.log(`chaos: references built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // the chaos project shares the references' cache: its shared parts are verified, not rebuilt
    const p = project({ 'buildout.cfg': config('A') });
    const cache = ['--cache', refCache];
    expect((await kilnP(p.dir, ['build', ...cache])).code).toBe(0);
    let current: Variant = 'A';
    const random = rng(SEED);
    const ops = ['build', 'prune', 'clean', 'uninstall'] as const;
    let quarantines = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const op = ops[Math.floor(random() * ops.length)]!;
      let args = ['build', ...cache];
      let next: Variant = current;
      if (op === 'build' || op === 'prune') next = (['A', 'B', 'C'] as Variant[]).filter((v) => v !== current)[Math.floor(random() * 2)]!;
      if (op === 'uninstall') next = current === 'U' ? 'A' : 'U';
      if (op === 'clean') args = ['clean', ...cache];
      const tRound = Date.now();
      p.write({ 'buildout.cfg': config(next) });
      const child = kilnAsync(p.dir, args);
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      let gone = false;
      void exited.then(() => (gone = true));
      // build: a random moment of the run; prune/clean/uninstall: a random moment once deleting began
      const delay = Math.floor(random() * (op === 'build' ? 2500 : 150));
      if (op !== 'build') {
        const trash = join(p.dir, 'out/.kiln/trash');
        const deadline = Date.now() + 60_000;
        // (the trash may vanish between the two calls: kiln removes it once it is empty)
        const deleting = () => {
          try {
            return readdirSync(trash).length > 0;
          } catch {
            return false;
          }
        };
        while (!gone && Date.now() < deadline && !deleting()) await new Promise((r) => setTimeout(r, 3));
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, delay))]);
      const killedRunning = !gone;
      child.kill('SIGKILL');
      await exited;
      const tKill = Date.now();
      const v = await kilnP(p.dir, ['verify', ...cache]);
      const tVerify = Date.now();
      if (v.code !== 0) {
        // verify names every damaged entry it quarantined
        expect(v.code, v.stderr).toBe(1);
        expect(v.stderr).toMatch(/quarantined in /);
        quarantines++;
      }
      const b = await kilnP(p.dir, ['build', ...cache]);
      const tBuild = Date.now();
      expect(b.code, `round ${round} (${op} -> ${next}, seed ${SEED}): ${b.stderr}`).toBe(0);
      current = next;
      const sharedRebuilt = b.stderr.includes('building s0') || b.stderr.includes('building s1');
      expect(outputs(p.dir, refCache, v.code === 0 && !sharedRebuilt), `round ${round} (${op} -> ${next}, killed ${killedRunning ? `after ${delay} ms` : 'after it exited'}, seed ${SEED})`).toEqual(want[current]);
      const ms = (a: number, b: number) => `${((b - a) / 1000).toFixed(1)} s`;
      console.log(`chaos round ${round}: ${op} -> ${next}, kill ${killedRunning ? `at +${delay} ms` : 'after exit'}, verify ${v.code} (${ms(tRound, tKill)} to the kill, verify ${ms(tKill, tVerify)}, build ${ms(tVerify, tBuild)}, compare ${ms(tBuild, Date.now())})`);
    }
    console.log(`chaos: ${ROUNDS} rounds in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${quarantines} verify runs quarantined something`);
  },
  1_800_000,
);
