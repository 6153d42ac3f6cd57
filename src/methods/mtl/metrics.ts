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
 * layer). `minTail` (default 5) is our choice: it keeps tiny tails (2–4 points) from winning by noise.
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

/** The paired t-test and Student's t distribution live in the shared stats module. */
export { pairedTTest, studentTCdf, studentTQuantile } from '../../stats/index.js';
