import type { Rng } from '../../engine/rng.js';

/**
 * Error emphasis, Yaeger, Lyon & Webb, NIPS 9 (1996): after the forward pass a *correctly classified* positive
 * pattern is back-propagated only with probability `correctTrainProb` (0.1 → 1.0 over training); misclassified
 * positives and negatives (label < 0) are always trained on. Returns a 0/1 mask per sample.
 */
export function errorEmphasisMask(predicted: ArrayLike<number>, labels: ArrayLike<number>, correctTrainProb: number, rng: Rng): Float32Array {
  if (!(correctTrainProb >= 0 && correctTrainProb <= 1)) throw new Error(`correct-train probability must be in [0,1], got ${correctTrainProb}`);
  const m = new Float32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const correct = labels[i] >= 0 && predicted[i] === labels[i];
    // Draw for every sample so that the stream does not depend on which samples were correct.
    const u = rng.next();
    m[i] = !correct || u < correctTrainProb ? 1 : 0;
  }
  return m;
}

/** Index of the largest value in each row of a row-major B×C array. */
export function argmaxRows(y: ArrayLike<number>, C: number): Int32Array {
  const B = Math.floor(y.length / C);
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let best = 0;
    for (let k = 1; k < C; k++) if (y[b * C + k] > y[b * C + best]) best = k;
    out[b] = best;
  }
  return out;
}
