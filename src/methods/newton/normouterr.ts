import * as tf from '@tensorflow/tfjs';

/**
 * Normalized output error (NormOutErr), Yaeger, Lyon & Webb, "Effective Training of a Neural Network Character
 * Classifier for Word Recognition", NIPS 9 (1996), §"Normalized output error".
 *
 * The back-propagated error at every non-target output is scaled by A = 1 / (d·(N − 1)); the target output's error
 * is unchanged. d = 0 means "off" (A = 1, plain MSE back-propagation).
 */
export function normOutErrFactor(d: number, nOutputs: number): number {
  if (!(d >= 0) || !Number.isFinite(d)) throw new Error(`NormOutErr d must be a finite number >= 0, got ${d}`);
  if (!(nOutputs >= 2)) throw new Error(`NormOutErr needs at least 2 outputs, got ${nOutputs}`);
  return d === 0 ? 1 : 1 / (d * (nOutputs - 1));
}

/**
 * The output a net trained with NormOutErr factor A converges to for posterior p: the minimiser of
 * p(1−y)² + A(1−p)y², i.e. y = p / (A − A·p + p) (Yaeger et al. 1996, Fig. 2 curve).
 */
export function probabilityToOutput(p: number, A: number): number {
  return p / (A - A * p + p);
}

/** Inverse of {@link probabilityToOutput}: p = y·A / (y·A + 1 − y). A = 1 gives p = y. Clamped to [0, 1]. */
export function outputToProbability(y: number, A: number): number {
  const yc = y < 0 ? 0 : y > 1 ? 1 : y;
  const den = yc * A + 1 - yc;
  return den > 0 ? (yc * A) / den : 1;
}

/** {@link outputToProbability} over an array (new Float32Array). */
export function outputsToProbabilities(ys: ArrayLike<number>, A: number): Float32Array {
  const out = new Float32Array(ys.length);
  for (let i = 0; i < ys.length; i++) out[i] = outputToProbability(ys[i], A);
  return out;
}

export interface NormOutErrWeightOptions {
  /** NormOutErr factor A for non-target outputs of positive samples (1 = plain MSE). */
  A: number;
  /** Weight of every output of a negative sample (label −1, all-zero target): the negative-training factor. */
  negativeFactor?: number;
  /** Optional per-sample multiplier (e.g. 0 for a pattern skipped by error emphasis). */
  sampleScale?: ArrayLike<number>;
}

/**
 * Per-unit error weights and 0/1 targets for a batch (row-major B×C): positive sample with label c gets target 1
 * and weight 1 at unit c, target 0 and weight A elsewhere; a negative sample (label −1) gets all-zero targets and
 * weight `negativeFactor` everywhere (Yaeger et al. 1996, "Negative training").
 */
export function normOutErrTargets(labels: ArrayLike<number>, nClasses: number, o: NormOutErrWeightOptions): { targets: Float32Array; weights: Float32Array } {
  const B = labels.length;
  const targets = new Float32Array(B * nClasses);
  const weights = new Float32Array(B * nClasses);
  const neg = o.negativeFactor ?? 1;
  for (let b = 0; b < B; b++) {
    const s = o.sampleScale ? o.sampleScale[b] : 1;
    const c = labels[b];
    const row = b * nClasses;
    if (c < 0) {
      weights.fill(neg * s, row, row + nClasses);
      continue;
    }
    if (c >= nClasses) throw new Error(`normOutErrTargets: label ${c} out of range [0, ${nClasses})`);
    weights.fill(o.A * s, row, row + nClasses);
    weights[row + c] = s;
    targets[row + c] = 1;
  }
  return { targets, weights };
}

/**
 * Weighted squared error ½·Σ_{b,k} w_bk (y_bk − t_bk)² / B. With weights from {@link normOutErrTargets} its gradient
 * with respect to y_bk is w_bk (y_bk − t_bk) / B: the output error, scaled by A at non-target units (NormOutErr).
 */
export function normOutErrLoss(y: tf.Tensor2D, targets: tf.Tensor2D, weights: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.div(tf.mul(0.5, tf.sum(tf.mul(weights, tf.square(tf.sub(y, targets))))), y.shape[0]) as tf.Scalar);
}

export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean output y in the bin. */
  meanY: number;
  /** Fraction of the bin's (output, unit) pairs whose unit was the true class. */
  empiricalP: number;
}

/**
 * Reliability histogram (Yaeger et al. 1996, Fig. 2): every output value y of every positive sample goes into one of
 * `bins` equal-width bins of y; the bin's empirical p is the fraction of its entries that belong to the target unit.
 */
export function reliabilityBins(outputs: ArrayLike<number>, labels: ArrayLike<number>, nClasses: number, bins = 10): ReliabilityBin[] {
  const cnt = new Float64Array(bins);
  const hit = new Float64Array(bins);
  const sy = new Float64Array(bins);
  for (let b = 0; b < labels.length; b++) {
    const c = labels[b];
    if (c < 0) continue;
    for (let k = 0; k < nClasses; k++) {
      const y = outputs[b * nClasses + k];
      const i = Math.min(bins - 1, Math.max(0, Math.floor(y * bins)));
      cnt[i]++;
      sy[i] += y;
      if (k === c) hit[i]++;
    }
  }
  return Array.from({ length: bins }, (_, i) => ({ lo: i / bins, hi: (i + 1) / bins, count: cnt[i], meanY: cnt[i] ? sy[i] / cnt[i] : NaN, empiricalP: cnt[i] ? hit[i] / cnt[i] : NaN }));
}

/**
 * Expected calibration error of the probabilities p = map(y) (A = 1: raw outputs): Σ_bins (n_b/N)·|mean p − empirical
 * p|, with bins over p. Lower is better.
 */
export function calibrationError(outputs: ArrayLike<number>, labels: ArrayLike<number>, nClasses: number, A: number, bins = 10): number {
  const probs = outputsToProbabilities(outputs, A);
  const rb = reliabilityBins(probs, labels, nClasses, bins);
  let n = 0;
  let e = 0;
  for (const b of rb) {
    if (!b.count) continue;
    n += b.count;
    e += b.count * Math.abs(b.meanY - b.empiricalP);
  }
  return n ? e / n : NaN;
}
