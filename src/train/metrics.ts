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

/** Summary statistics moved to the stats module; re-exported for callers of `efftrain/train`. */
export { meanStd, auroc } from '../stats/index.js';
