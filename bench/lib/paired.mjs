// Paired timing for the benchmarks: run the cases of one comparison alternately (kiln, reference,
// kiln, reference, ...) so that drift in the machine's load hits both sides alike, and report
// medians of wall time and of CPU time (user + sys of the process and its waited-for children).
// The machines are shared: single runs vary by tens of percent, paired medians much less.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICK = 100; // USER_HZ: /proc/<pid>/stat counts children's CPU in 1/100 s

/** user+sys seconds of all children this process has waited for so far (Linux /proc). */
export function childrenCpu() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after the comm: state is f[0]; cutime is field 16 -> f[13], cstime field 17 -> f[14]
  return (Number(f[13]) + Number(f[14])) / TICK;
}

/**
 * Run one command (argv array, or a string for bash -c) and return { wall, cpu } seconds.
 * Throws with the tail of stderr when it fails.
 */
export function timeRun(cmd, { cwd, env, prepare } = {}) {
  if (prepare) prepare();
  const argv = typeof cmd === 'string' ? ['bash', '-c', cmd] : cmd;
  const c0 = childrenCpu();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { cwd, env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 256 << 20 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = childrenCpu() - c0;
  if (r.status !== 0) throw new Error(`${argv.join(' ').slice(0, 300)} failed (${r.status ?? r.signal}): ${(r.stderr ?? '').slice(-2000)}`);
  return { wall, cpu };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Alternate the sides `pairs` times: sides = [{ name, run: () => {wall,cpu} }, ...].
 * Returns, per side, the runs and the medians, and per non-first side the median of the per-pair
 * ratios first/side (wall and cpu).
 */
export function paired(pairs, sides, log = () => {}) {
  const runs = sides.map(() => []);
  for (let i = 0; i < pairs; i++) {
    sides.forEach((s, k) => {
      const r = s.run(i);
      runs[k].push(r);
      log(`  pair ${i + 1}/${pairs} ${s.name}: ${r.wall.toFixed(3)} s wall, ${r.cpu.toFixed(2)} s cpu`);
    });
  }
  return sides.map((s, k) => ({
    name: s.name,
    runs: runs[k],
    wall: median(runs[k].map((r) => r.wall)),
    cpu: median(runs[k].map((r) => r.cpu)),
    // ratio of side 0 to this side, pair by pair (drift cancels), then the median
    ratioWall: k === 0 ? 1 : median(runs[0].map((r, i) => r.wall / runs[k][i].wall)),
    ratioCpu: k === 0 ? 1 : median(runs[0].map((r, i) => r.cpu / runs[k][i].cpu)),
  }));
}

export const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
