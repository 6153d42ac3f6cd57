import { pairedTTest, type PairedTTest } from '../../stats/index.js';

/**
 * Paired comparisons for generated verdicts: Student-t 95% confidence intervals of a mean paired difference
 * (same seeds), and the verdict they support. A difference counts as resolved only when its CI excludes 0.
 */

/** Values of `metric` per seed from `(seed, value)` pairs, aligned on the seeds both sides have. */
export function pairBySeed(a: Map<number, number>, b: Map<number, number>): PairedTTest {
  const seeds = [...a.keys()].filter((s) => b.has(s) && Number.isFinite(a.get(s)!) && Number.isFinite(b.get(s)!)).sort((x, y) => x - y);
  return pairedTTest(seeds.map((s) => a.get(s)!), seeds.map((s) => b.get(s)!));
}

/** One-sample t CI of the mean of `xs` minus `ref` (e.g. an AUROC against chance 0.5). */
export function againstConstant(xs: number[], ref: number): PairedTTest {
  const v = xs.filter(Number.isFinite);
  return pairedTTest(v, v.map(() => ref));
}

/** −1 / +1 when the 95% CI lies entirely below / above 0; 0 when it contains 0 or cannot be computed (n < 2). */
export function ciSign(t: PairedTTest): -1 | 0 | 1 {
  if (!(t.n >= 2) || !Number.isFinite(t.ci95[0]) || !Number.isFinite(t.ci95[1])) return 0;
  if (t.ci95[0] > 0) return 1;
  if (t.ci95[1] < 0) return -1;
  return 0;
}

/** `+0.0712 [+0.0601, +0.0823] (n=3)`, or `n<2` when no interval exists. */
export function ciCell(t: PairedTTest, digits = 4): string {
  const f = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(digits);
  if (!(t.n >= 2) || !Number.isFinite(t.ci95[0])) return t.n === 1 ? `${f(t.meanDiff)} (n=1, no CI)` : '–';
  return `${f(t.meanDiff)} [${f(t.ci95[0])}, ${f(t.ci95[1])}] (n=${t.n})`;
}
