// Debian and RPM version comparison against the real tools, on edge cases and on thousands of
// pairs of versions taken from Debian's bookworm Packages index.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { compareDebVersions, compareRpmEVR, compareRpmVersions, validateDebPackageName, validateDebVersion, validateRpmVersion } from '../src/pkg/version.js';

const PACKAGES = '/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4';

function realVersions(): string[] {
  if (!existsSync(PACKAGES)) throw new Error(`${PACKAGES} is missing: run apt-get update (scripts/setup.sh does)`);
  const text = execFileSync('/usr/lib/apt/apt-helper', ['cat-file', PACKAGES], { maxBuffer: 1 << 30, encoding: 'utf8' });
  return [...text.matchAll(/^Version: (.+)$/gm)].map((m) => m[1]!);
}

/** Deterministic sample: neighbours in index order (often the same source) plus pseudo-random pairs. */
function samplePairs(vs: string[], n: number): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let seed = 7;
  const rnd = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  for (let k = 0; k < n / 2; k++) {
    const i = Math.floor(rnd() * (vs.length - 1));
    pairs.push([vs[i]!, vs[i + 1]!]);
  }
  for (let k = 0; k < n / 2; k++) pairs.push([vs[Math.floor(rnd() * vs.length)]!, vs[Math.floor(rnd() * vs.length)]!]);
  return pairs;
}

/** dpkg's answer for many pairs in one shell process: -1, 0 or 1 per pair. */
function dpkgCompare(pairs: Array<[string, string]>): number[] {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-ver-'));
  writeFileSync(join(dir, 'pairs'), pairs.map(([a, b]) => `${a} ${b}`).join('\n') + '\n');
  const script = 'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done < "$1"';
  const out = execFileSync('sh', ['-c', script, 'sh', join(dir, 'pairs')], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return out.trim().split('\n').map(Number);
}

/** rpm's rpm.vercmp for many pairs via its embedded Lua. */
function rpmCompare(pairs: Array<[string, string]>): number[] {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-rpmver-'));
  const f = join(dir, 'pairs');
  writeFileSync(f, pairs.map(([a, b]) => `${a} ${b}`).join('\n') + '\n');
  const lua = `%{lua: for line in io.lines("${f}") do local a, b = line:match("^(%S+) (%S+)$"); print(rpm.vercmp(a, b) .. "\\n") end}`;
  const r = spawnSync('rpm', ['--eval', lua], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return r.stdout.trim().split('\n').map((x) => Math.sign(Number(x)));
}

describe('Debian versions', () => {
  test('edge cases agree with dpkg', () => {
    const chain = ['1.0~~', '1.0~~a', '1.0~', '1.0', '1.0a', '1.0+'];
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i + 1 < chain.length; i++) pairs.push([chain[i]!, chain[i + 1]!]);
    pairs.push(['01', '1'], ['1.0', '1.00'], ['1:0.1', '2.0'], ['1.18446744073709551616', '1.18446744073709551615'], ['2.0-1', '2.0-1.1'], ['2.0-1~bpo1', '2.0-1'], ['0:1.0', '1.0'], ['1.0-0', '1.0'], ['9007199254740993', '9007199254740992']);
    const ours = pairs.map(([a, b]) => compareDebVersions(a, b));
    expect(ours).toEqual(dpkgCompare(pairs));
    expect(ours.slice(0, 5)).toEqual([-1, -1, -1, -1, -1]);
  });
  test('3000 pairs from the bookworm Packages index agree with dpkg --compare-versions', () => {
    const pairs = samplePairs(realVersions(), 3000);
    const ours = pairs.map(([a, b]) => compareDebVersions(a, b));
    const theirs = dpkgCompare(pairs);
    const bad = pairs.filter((_, i) => ours[i] !== theirs[i]);
    expect(bad).toEqual([]);
    expect(new Set(theirs)).toEqual(new Set([-1, 0, 1]));
  }, 120_000);
  test('validation', () => {
    expect(validateDebVersion('1.0-1')).toBeUndefined();
    expect(validateDebVersion('2:1.0~rc1+dfsg-1.1')).toBeUndefined();
    expect(validateDebVersion('a1.0')).toMatch(/must start with a digit/);
    expect(validateDebVersion('1.0-')).toMatch(/empty revision/);
    expect(validateDebVersion('x:1.0')).toMatch(/epoch/);
    expect(validateDebVersion('1.0_1')).toMatch(/contains characters/);
    expect(validateDebPackageName('hello')).toBeUndefined();
    expect(validateDebPackageName('Hello')).toMatch(/lower case/);
    expect(validateDebPackageName('h')).toMatch(/too short/);
  });
});

describe('RPM versions', () => {
  test('edge cases agree with rpm', () => {
    const pairs: Array<[string, string]> = [
      ['1.0', '1.0^git1'], ['1.0^git1', '1.0.1'], ['1.0a', '1.0'], ['1.0', '1.a'], ['1.0', '1_0'], ['0001', '1'], ['1.0~rc1', '1.0'],
      ['1.0~rc1', '1.0~rc2'], ['a', 'B'], ['1.0^', '1.0'], ['1.0^a', '1.0^b'], ['1~', '1'], ['2.0.1', '2.0.1a'], ['5.5p1', '5.5p10'], ['10b2', '10a1'], ['1.0', '1.0'],
    ];
    const ours = pairs.map(([a, b]) => compareRpmVersions(a, b));
    expect(ours).toEqual(rpmCompare(pairs));
  });
  test('3000 pairs of real version strings agree with rpm.vercmp', () => {
    // Debian versions with the epoch and characters rpm forbids removed are plausible rpm versions
    const vs = realVersions().map((v) => v.replace(/^\d+:/, '').replace(/[^A-Za-z0-9._+~^]/g, '.'));
    const pairs = samplePairs(vs, 3000);
    const ours = pairs.map(([a, b]) => compareRpmVersions(a, b));
    const theirs = rpmCompare(pairs);
    expect(theirs).toHaveLength(pairs.length);
    expect(pairs.filter((_, i) => ours[i] !== theirs[i])).toEqual([]);
  });
  test('EVR and validation', () => {
    expect(compareRpmEVR('1:1.0-1', '2.0-1')).toBe(1);
    expect(compareRpmEVR('1.0-2', '1.0-10')).toBe(-1);
    expect(validateRpmVersion('1.0-1')).toMatch(/no '-'/);
    expect(validateRpmVersion('1.0~rc1')).toBeUndefined();
  });
});
