import * as tf from '@tensorflow/tfjs';
import { defineWeighting } from './options.js';

/**
 * GLS — geometric loss strategy: L = (Π_t L_t)^{1/T}, computed as exp(mean_t log L_t).
 * Chennupati, Sistu, Yogamani, Rawashdeh, "MultiNet++", CVPR Workshops 2019. No options.
 */
export const gls = defineWeighting({
  name: 'gls',
  paper: 'Chennupati et al., "MultiNet++: Multi-Stream Feature Aggregation and Geometric Loss Strategy", CVPRW 2019',
  defaults: {},
  supportsRep: false,
  create: (_o, numTasks) => {
    const w = {
      name: 'gls',
      kind: 'loss' as const,
      lastWeights: new Array(numTasks).fill(1 / numTasks),
      combine: (losses: tf.Scalar[]) => {
        const logs = losses.map((l) => tf.log(l));
        const g = tf.exp(tf.div(tf.addN(logs), losses.length)) as tf.Scalar;
        // Effective weight of L_t in the gradient: g / (T·L_t).
        const gv = g.dataSync()[0];
        const lv = tf.stack(losses).dataSync();
        w.lastWeights = Array.from(lv, (l) => gv / (losses.length * l));
        return g;
      },
    };
    return w;
  },
});
