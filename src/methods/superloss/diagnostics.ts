/**
 * SuperLoss σ* as a noisy-label detector (Castells et al., NeurIPS 2020, §4: σ* = exp(−W(½ max(−2/e, β))),
 * β = (ℓ − τ)/λ): AUROC of σ* at separating clean from noisy samples, per-group means and histograms.
 */
import { auroc } from '../../stats/index.js';
import { optimalConfidence } from './superloss.js';

/** The σ-diagnostics of one checkpoint (also returns σ for histograms). */
export interface SigmaDiagnostics {
  metrics: Record<string, number>;
  sigma: Float64Array;
}

export function subsetAuroc(scores: ArrayLike<number>, positive: Uint8Array, include: Uint8Array): number {
  const s: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < include.length; i++) {
    if (!include[i]) continue;
    s.push(scores[i]);
    y.push(positive[i]);
  }
  return auroc(s, y);
}

/** The sample groups of one training set: labels, the noise mask and the hard-clean mask(s). */
export interface DiagnosticGroups {
  noisyLabels: Int32Array;
  trueLabels: Int32Array;
  isNoisy: Uint8Array;
  /** Hard clean samples (the main definition; `sigma_auroc_hard`, `negloss_auroc_hard`). */
  isHard: Uint8Array;
  /** Further hard-clean masks by name; each adds `sigma_auroc_<name>` and `negloss_auroc_<name>` (vs noisy). */
  hardParts?: Record<string, Uint8Array>;
}

/**
 * σ* diagnostics for the training set: AUROC of σ* (and of −loss) at separating clean (positive) from noisy
 * samples, and hard-clean from noisy; mean σ per group; memorisation (noisy samples predicted as their noisy label).
 * σ* is decreasing in ℓ but clamps at e below ℓ = τ − 2λ/e, so `sigma_auroc` counts clamped clean/noisy pairs as
 * ties (½); `negloss_auroc` (AUROC of −ℓ) is the tie-free version.
 */
export function sigmaDiagnostics(loss: Float32Array, pred: Int32Array, d: DiagnosticGroups, tau: number, lambda: number): SigmaDiagnostics {
  const n = loss.length;
  const sigma = new Float64Array(n);
  const negLoss = new Float64Array(n);
  const clean = new Uint8Array(n);
  const hardOrNoisy = new Uint8Array(n);
  if (d.isHard.length !== n || d.isNoisy.length !== n) throw new Error(`sigmaDiagnostics: ${n} losses but masks of length ${d.isNoisy.length}/${d.isHard.length}`);
  let nNoisy = 0;
  let noisyFit = 0;
  let noisyTrue = 0;
  let cleanFit = 0;
  let noisyEasy = 0;
  let clampedNoisy = 0;
  const sums = { clean: 0, noisy: 0, hard: 0, nHard: 0 };
  for (let i = 0; i < n; i++) {
    sigma[i] = optimalConfidence(loss[i], tau, lambda);
    negLoss[i] = -loss[i];
    clean[i] = d.isNoisy[i] ? 0 : 1;
    hardOrNoisy[i] = d.isNoisy[i] || d.isHard[i] ? 1 : 0;
    if (d.isNoisy[i]) {
      nNoisy++;
      sums.noisy += sigma[i];
      if (pred[i] === d.noisyLabels[i]) noisyFit++;
      if (pred[i] === d.trueLabels[i]) noisyTrue++;
      if (sigma[i] > 1) noisyEasy++;
      if (sigma[i] === Math.E) clampedNoisy++;
    } else {
      sums.clean += sigma[i];
      if (pred[i] === d.noisyLabels[i]) cleanFit++;
      if (d.isHard[i]) {
        sums.hard += sigma[i];
        sums.nHard++;
      }
    }
  }
  const nClean = n - nNoisy;
  // Precision of the nNoisy highest-loss (= lowest-σ*, tie-free) samples at being noisy.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => loss[b] - loss[a]);
  let hits = 0;
  for (let k = 0; k < nNoisy; k++) hits += d.isNoisy[order[k]];
  const metrics: Record<string, number> = {
    sigma_auroc: auroc(sigma, clean),
    sigma_auroc_hard: subsetAuroc(sigma, clean, hardOrNoisy),
    negloss_auroc: auroc(negLoss, clean),
    negloss_auroc_hard: subsetAuroc(negLoss, clean, hardOrNoisy),
    noisy_fit: nNoisy ? noisyFit / nNoisy : NaN,
    noisy_true: nNoisy ? noisyTrue / nNoisy : NaN,
    clean_fit: nClean ? cleanFit / nClean : NaN,
    noisy_sigma_gt1: nNoisy ? noisyEasy / nNoisy : NaN,
    lowsigma_precision: nNoisy ? hits / nNoisy : NaN,
    noisy_sigma_clamped: nNoisy ? clampedNoisy / nNoisy : NaN,
    sigma_mean_clean: nClean ? sums.clean / nClean : NaN,
    sigma_mean_hard: sums.nHard ? sums.hard / sums.nHard : NaN,
    sigma_mean_noisy: nNoisy ? sums.noisy / nNoisy : NaN,
  };
  for (const [name, mask] of Object.entries(d.hardParts ?? {})) {
    const include = Uint8Array.from(mask, (h, i) => (d.isNoisy[i] || (h && !d.isNoisy[i]) ? 1 : 0));
    metrics[`sigma_auroc_${name}`] = subsetAuroc(sigma, clean, include);
    metrics[`negloss_auroc_${name}`] = subsetAuroc(negLoss, clean, include);
  }
  return { metrics, sigma };
}

/** Counts of σ in `bins` equal bins over [0, e] for the clean, hard-clean and noisy groups. */
export function sigmaHistogram(sigma: Float64Array, isNoisy: Uint8Array, isHard: Uint8Array, bins: number): { clean: number[]; hard: number[]; noisy: number[] } {
  const h = { clean: new Array<number>(bins).fill(0), hard: new Array<number>(bins).fill(0), noisy: new Array<number>(bins).fill(0) };
  const w = Math.E / bins;
  for (let i = 0; i < sigma.length; i++) {
    const b = Math.min(bins - 1, Math.max(0, Math.floor(sigma[i] / w)));
    if (isNoisy[i]) h.noisy[b]++;
    else {
      h.clean[b]++;
      if (isHard[i]) h.hard[b]++;
    }
  }
  return h;
}
