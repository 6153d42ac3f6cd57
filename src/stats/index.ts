/**
 * Descriptive and inferential statistics used by every report: mean/std/median/quantile, the paired t-test
 * (Student's t distribution from stdlib, not a hand-rolled special function) and AUROC. Browser-safe.
 */
import tCdfImpl from '@stdlib/stats-base-dists-t-cdf';
import tQuantileImpl from '@stdlib/stats-base-dists-t-quantile';

/** Arithmetic mean (NaN for an empty list). */
export function mean(xs: ArrayLike<number>): number {
  const n = xs.length;
  if (!n) return NaN;
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i];
  return s / n;
}

/** Mean and sample (n−1) standard deviation; std is 0 for n = 1. */
export function meanStd(xs: number[]): { mean: number; std: number; n: number } {
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const m = xs.reduce((a, b) => a + b, 0) / n;
  const v = n > 1 ? xs.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1) : 0;
  return { mean: m, std: Math.sqrt(v), n };
}

/** Sample (n−1) standard deviation; 0 for n = 1, NaN for n = 0. */
export function std(xs: number[]): number {
  return meanStd(xs).std;
}

/**
 * Quantile `q` ∈ [0, 1] with linear interpolation between order statistics (Hyndman & Fan type 7, the
 * default of R and NumPy). NaN for an empty list.
 */
export function quantile(xs: ArrayLike<number>, q: number): number {
  if (!xs.length) return NaN;
  const s = Array.from(xs).sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Median (the mean of the two middle values for an even count). NaN for an empty list. */
export function median(xs: ArrayLike<number>): number {
  if (!xs.length) return NaN;
  const s = Array.from(xs).sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Student's t cumulative distribution function with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  return tCdfImpl(t, df);
}

/** Student's t quantile (inverse CDF) with `df` degrees of freedom. */
export function studentTQuantile(p: number, df: number): number {
  return tQuantileImpl(p, df);
}

export interface PairedTTest {
  n: number;
  meanDiff: number;
  sdDiff: number;
  t: number;
  df: number;
  /** Two-sided p-value. */
  p: number;
  /** 95% confidence interval of the mean difference (t-based, df = n − 1). */
  ci95: [number, number];
}

/** Paired t-test of a − b (same seeds); pairs with a non-finite difference are dropped. */
export function pairedTTest(a: number[], b: number[]): PairedTTest {
  const d = a.map((x, i) => x - b[i]).filter(Number.isFinite);
  const n = d.length;
  const m = n ? d.reduce((s, v) => s + v, 0) / n : NaN;
  const sd = n > 1 ? Math.sqrt(d.reduce((s, v) => s + (v - m) ** 2, 0) / (n - 1)) : NaN;
  const df = n - 1;
  const se = sd / Math.sqrt(n);
  const t = se > 0 ? m / se : m === 0 ? 0 : Math.sign(m) * Infinity;
  const p = df >= 1 && Number.isFinite(t) ? 2 * (1 - studentTCdf(Math.abs(t), df)) : df >= 1 ? 0 : NaN;
  const q = df >= 1 ? studentTQuantile(0.975, df) : NaN;
  return { n, meanDiff: m, sdDiff: sd, t, df, p, ci95: [m - q * se, m + q * se] };
}

/**
 * Area under the ROC curve of `scores` for separating positives (labels 1) from negatives (0), via the
 * Mann–Whitney U statistic with ties counted half. NaN when either class is empty.
 */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let nPos = 0;
  let rankSumPos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++)
      if (labels[idx[k]]) {
        nPos++;
        rankSumPos += avgRank;
      }
    i = j + 1;
  }
  const nNeg = idx.length - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}
