/**
 * Representation diagnostics for a MicroBERT encoder. MLM pretraining that has not left the unigram plateau
 * (dev perplexity ≈ that of piece frequencies) drives the upper layers towards one context-free vector
 * (Ethayarajh 2019 measures this "anisotropy" as the mean cosine similarity between random words' vectors);
 * a probe that reads only such a layer loses word identity.
 */
import * as tf from '@tensorflow/tfjs';
import { batchTensors, type MicroBert } from './model.js';
import { evalChunks, makeBatch, type PreparedSentence } from './batch.js';

/**
 * Mean cosine similarity between the word vectors of two different words, per layer (0 = embeddings, then
 * each block; the layers of `MicroBert.wordLayers`), over all word pairs of `sents`:
 * (‖Σ_i v̂_i‖² − N) / (N(N − 1)) with v̂ the unit-length vectors. 0 for random directions, 1 when collapsed.
 */
export function layerCosines(model: MicroBert, sents: PreparedSentence[], batchSize = 32): number[] {
  const L = model.cfg.nLayers + 1;
  const d = model.cfg.dModel;
  const sum = Array.from({ length: L }, () => new Float64Array(d));
  let n = 0;
  for (const chunk of evalChunks(sents.length, (i) => sents[i].enc.ids.length, batchSize)) {
    const batch = makeBatch(chunk.map((i) => sents[i]));
    const t = batchTensors(batch);
    const unit = tf.tidy(() => {
      const x = model.wordLayers(t, false);
      return tf.div(x, tf.maximum(tf.norm(x, 'euclidean', -1, true), 1e-12));
    });
    const v = unit.dataSync() as Float32Array;
    unit.dispose();
    tf.dispose(Object.values(t));
    const BW = batch.B * batch.W;
    batch.nWords.forEach((nw, b) => {
      for (let l = 0; l < L; l++)
        for (let w = 1; w <= nw; w++) {
          const o = (l * BW + b * batch.W + w) * d;
          for (let j = 0; j < d; j++) sum[l][j] += v[o + j];
        }
      n += nw;
    });
  }
  if (n < 2) return sum.map(() => NaN);
  return sum.map((s) => (s.reduce((a, x) => a + x * x, 0) - n) / (n * (n - 1)));
}
