import * as tf from '@tensorflow/tfjs';
import { sequentialBatches } from '../data/batching.js';

/**
 * Runs `forward` over `n` examples in batches and returns accuracy (fraction in [0,1]) and mean
 * cross-entropy against integer labels. `forward(idx)` must return logits [batch, classes].
 */
export function evaluateClassifier(n: number, batchSize: number, forward: (idx: Int32Array) => tf.Tensor2D, labels: Int32Array): { acc: number; loss: number; predictions: Int32Array } {
  let correct = 0;
  let lossSum = 0;
  const predictions = new Int32Array(n);
  let offset = 0;
  for (const idx of sequentialBatches(n, batchSize)) {
    const [pred, lossT] = tf.tidy(() => {
      const logits = forward(idx);
      const y = tf.tensor1d(Array.from(idx, (i) => labels[i]), 'int32');
      const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(y, logits.shape[1]), logits, undefined, undefined, tf.Reduction.SUM);
      return [tf.argMax(logits, 1), ce];
    });
    const p = pred.dataSync() as Int32Array;
    for (let i = 0; i < p.length; i++) {
      predictions[offset + i] = p[i];
      if (p[i] === labels[idx[i]]) correct++;
    }
    offset += p.length;
    lossSum += lossT.dataSync()[0];
    pred.dispose();
    lossT.dispose();
  }
  return { acc: n ? correct / n : NaN, loss: n ? lossSum / n : NaN, predictions };
}

/** Mean and (sample, n−1) standard deviation; std is 0 for n = 1. */
export function meanStd(xs: number[]): { mean: number; std: number; n: number } {
  const n = xs.length;
  if (n === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const v = n > 1 ? xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(v), n };
}

/**
 * Area under the ROC curve of `scores` for separating positives (labels 1) from negatives (0),
 * via the Mann–Whitney U statistic with ties counted half.
 */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let nPos = 0;
  let rankSumPos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (labels[idx[k]]) {
      nPos++;
      rankSumPos += avgRank;
    }
    i = j + 1;
  }
  const nNeg = idx.length - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}
