/**
 * Multi-task metrics: Δm against single-task baselines (Rep-MTL eqs. 11–12 / LibMTL's count_improvement in
 * percent), the heavy-tailed power-law exponent α of layer weight spectra (Martin & Mahoney's HT-SR, fitted as
 * WeightWatcher does), and a paired t-test over seeds.
 */
import * as tf from '@tensorflow/tfjs';
import { symmetricEigen } from './linalg.js';

/** One metric of one task with its direction. */
export interface DeltaMetric {
  task: string;
  key: string;
  higherIsBetter: boolean;
}

/**
 * Δm in percent against a baseline (STL). `task` mode (Δp_task, the default and the paper's headline):
 * 100·(1/T) Σ_t (1/n_t) Σ_k (−1)^{σ_tk} (M_m − M_b)/M_b; `metric` mode (Δp_metric): the plain mean over all
 * N metrics. σ = 1 for lower-is-better metrics. Values are read from `method[key]` / `baseline[key]`.
 */
export function deltaM(method: Record<string, number>, baseline: Record<string, number>, metrics: DeltaMetric[], mode: 'task' | 'metric' = 'task'): number {
  const rel = (m: DeltaMetric) => ((m.higherIsBetter ? 1 : -1) * (method[m.key] - baseline[m.key])) / baseline[m.key];
  if (mode === 'metric') return (100 * metrics.reduce((s, m) => s + rel(m), 0)) / metrics.length;
  const tasks = [...new Set(metrics.map((m) => m.task))];
  const per = tasks.map((t) => {
    const ms = metrics.filter((m) => m.task === t);
    return ms.reduce((s, m) => s + rel(m), 0) / ms.length;
  });
  return (100 * per.reduce((a, b) => a + b, 0)) / tasks.length;
}

/** Result of a power-law tail fit. */
export interface PowerLawFit {
  /** Fitted exponent of ρ(λ) ∝ λ^{−α}; NaN when there are too few eigenvalues. */
  alpha: number;
  xmin: number;
  /** Kolmogorov–Smirnov distance at the chosen xmin. */
  D: number;
  /** Eigenvalues in the tail (λ ≥ xmin). */
  nTail: number;
  numEvals: number;
}

/**
 * Fits ρ(λ) ∝ λ^{−α} to the tail of an eigenvalue sample as WeightWatcher does: for each candidate λmin
 * (every eigenvalue leaving at least `minTail` in the tail) the maximum-likelihood
 * α = 1 + n / Σ_{λ_i ≥ λmin} ln(λ_i/λmin), and λmin minimising the KS distance between the empirical tail CDF
 * and 1 − (λ/λmin)^{1−α}. Fewer than `minEvals` (10) positive eigenvalues → α = NaN (WeightWatcher skips the
 * layer). `minTail` (default 5) is [OURS]: it keeps tiny tails (2–4 points) from winning by noise.
 */
export function fitPowerLaw(evals: ArrayLike<number>, opts: { minEvals?: number; minTail?: number } = {}): PowerLawFit {
  const minEvals = opts.minEvals ?? 10;
  const minTail = Math.max(2, opts.minTail ?? 5);
  const x = Array.from(evals).filter((v) => v > 0 && Number.isFinite(v)).sort((a, b) => a - b);
  const N = x.length;
  const none: PowerLawFit = { alpha: NaN, xmin: NaN, D: NaN, nTail: 0, numEvals: N };
  if (N < minEvals) return none;
  // Suffix sums of ln λ for O(1) MLE per candidate.
  const logs = x.map(Math.log);
  const suffix = new Array(N + 1).fill(0);
  for (let i = N - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + logs[i];
  let best = none;
  for (let j = 0; j <= N - minTail; j++) {
    if (j > 0 && x[j] === x[j - 1]) continue;
    const n = N - j;
    const xmin = x[j];
    const s = suffix[j] - n * Math.log(xmin);
    if (!(s > 0)) continue;
    const alpha = 1 + n / s;
    let D = 0;
    for (let i = 0; i < n; i++) {
      const P = 1 - Math.pow(x[j + i] / xmin, 1 - alpha);
      D = Math.max(D, Math.abs((i + 1) / n - P), Math.abs(i / n - P));
    }
    if (!(D >= best.D) || Number.isNaN(best.D)) best = { alpha, xmin, D, nTail: n, numEvals: N };
  }
  return best;
}

/** Eigenvalues of MᵀM (= squared singular values) of a dense m×n matrix (row-major), via the smaller Gram matrix. */
export function gramEigenvalues(m: Float32Array | number[], rows: number, cols: number): number[] {
  const k = Math.min(rows, cols);
  const G: number[][] = Array.from({ length: k }, () => new Array(k).fill(0));
  if (cols <= rows) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      for (let i = 0; i < cols; i++) {
        const a = m[o + i];
        if (a === 0) continue;
        for (let j = i; j < cols; j++) G[i][j] += a * m[o + j];
      }
    }
  } else {
    for (let i = 0; i < rows; i++)
      for (let j = i; j < rows; j++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += m[i * cols + c] * m[j * cols + c];
        G[i][j] = s;
      }
  }
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) G[i][j] = G[j][i];
  return symmetricEigen(G).values.map((v) => Math.max(v, 0));
}

/**
 * The empirical spectral density sample of a layer: eigenvalues of WᵀW for a dense kernel [in, out]; for a
 * conv kernel [kh, kw, in, out] the kh·kw in×out slices' eigenvalues, pooled (as WeightWatcher does).
 */
export function layerEigenvalues(w: tf.Tensor): number[] {
  const v = w.dataSync() as Float32Array;
  if (w.rank === 2) return gramEigenvalues(v, w.shape[0], w.shape[1]!);
  if (w.rank === 4) {
    const [kh, kw, ci, co] = w.shape as [number, number, number, number];
    const out: number[] = [];
    for (let p = 0; p < kh * kw; p++) out.push(...gramEigenvalues(v.subarray(p * ci * co, (p + 1) * ci * co), ci, co));
    return out;
  }
  return [];
}

/** α of a layer's weight matrix (NaN when it has fewer than `minEvals` eigenvalues). */
export function layerAlpha(w: tf.Tensor, opts?: { minEvals?: number; minTail?: number }): PowerLawFit {
  return fitPowerLaw(layerEigenvalues(w), opts);
}

/** Mean of the finite values (NaN if none). */
export function finiteMean(xs: number[]): number {
  const f = xs.filter(Number.isFinite);
  return f.length ? f.reduce((a, b) => a + b, 0) / f.length : NaN;
}

function lgamma(z: number): number {
  // Lanczos approximation (g = 7, n = 9).
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (z < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * z))) - lgamma(1 - z);
  z -= 1;
  let x = c[0];
  for (let i = 1; i < 9; i++) x += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}

/** Regularized incomplete beta I_x(a, b) by its continued fraction (modified Lentz). */
export function betaIncReg(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - betaIncReg(1 - x, b, a);
  const lbeta = lgamma(a) + lgamma(b) - lgamma(a + b);
  const front = Math.exp(a * Math.log(x) + b * Math.log(1 - x) - lbeta) / a;
  const tiny = 1e-300;
  let f = 1;
  let C = 1;
  let Dd = 0;
  for (let i = 0; i <= 400; i++) {
    const m = Math.floor(i / 2);
    let num: number;
    if (i === 0) num = 1;
    else if (i % 2 === 0) num = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    else num = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    Dd = 1 + num * Dd;
    if (Math.abs(Dd) < tiny) Dd = tiny;
    Dd = 1 / Dd;
    C = 1 + num / C;
    if (Math.abs(C) < tiny) C = tiny;
    const cd = C * Dd;
    f *= cd;
    if (Math.abs(1 - cd) < 1e-15) break;
  }
  return front * (f - 1);
}

/** Student-t CDF with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const x = df / (df + t * t);
  const tail = 0.5 * betaIncReg(x, df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The t quantile (inverse CDF) by bisection. */
export function studentTQuantile(p: number, df: number): number {
  let lo = -1e3;
  let hi = 1e3;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Paired t-test of a − b (same seeds), with the 95% confidence interval of the mean difference. */
export function pairedTTest(a: number[], b: number[]): { n: number; meanDiff: number; sdDiff: number; t: number; df: number; p: number; ci95: [number, number] } {
  const d = a.map((x, i) => x - b[i]).filter(Number.isFinite);
  const n = d.length;
  const mean = n ? d.reduce((s, v) => s + v, 0) / n : NaN;
  const sd = n > 1 ? Math.sqrt(d.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : NaN;
  const df = n - 1;
  const se = sd / Math.sqrt(n);
  const t = se > 0 ? mean / se : mean === 0 ? 0 : Math.sign(mean) * Infinity;
  const p = df >= 1 && Number.isFinite(t) ? 2 * (1 - studentTCdf(Math.abs(t), df)) : df >= 1 ? 0 : NaN;
  const q = df >= 1 ? studentTQuantile(0.975, df) : NaN;
  return { n, meanDiff: mean, sdDiff: sd, t, df, p, ci95: [mean - q * se, mean + q * se] };
}
