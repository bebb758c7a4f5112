/**
 * Typo suggestions for names the user wrote (parts, sections, options): "did you mean" hints and
 * the near misses that make an unknown option a typo rather than a variable. No I/O.
 */

/** " (did you mean 'x'?)" for the closest candidate, when it is close enough; else ''. */
export function didYouMean(name: string, candidates: string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? ` (did you mean '${best}'?)` : '';
}

/** The candidates within edit distance 2 of `name` (1 for names of up to 4 characters), not equal to it. */
// memo per candidate set (the engine passes one Set object per kind), then per name
const nearMissMemo = new WeakMap<Set<string>, Map<string, string[]>>();
export function nearMisses(name: string, candidates: Set<string>): string[] {
  let memo = nearMissMemo.get(candidates);
  if (!memo) nearMissMemo.set(candidates, (memo = new Map()));
  let hit = memo.get(name);
  if (hit === undefined) {
    hit = [...candidates].filter((c) => Math.abs(c.length - name.length) <= 2 && c !== name && editDistance(name, c) <= (name.length <= 4 ? 1 : 2));
    memo.set(name, hit);
  }
  return hit;
}

export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}
