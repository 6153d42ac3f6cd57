import * as tf from '@tensorflow/tfjs';
import { defineWeighting } from './options.js';

/**
 * UW — uncertainty weighting: L = Σ_t L_t / (2 e^{s_t}) + s_t / 2 with learnable s_t (log-variance),
 * learned jointly with the model. Kendall, Gal, Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
 * Losses for Scene Geometry and Semantics", CVPR 2018. Option `uw.init` (LibMTL initialises s_t = −0.5).
 */
export const uw = defineWeighting({
  name: 'uw',
  paper: 'Kendall, Gal, Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses", CVPR 2018',
  defaults: { init: -0.5 },
  supportsRep: false,
  create: (o, numTasks) => {
    const s = tf.tidy(() => tf.variable(tf.fill([numTasks], o.init), true, undefined, 'float32'));
    const w = {
      name: 'uw',
      kind: 'loss' as const,
      variables: [s],
      lastWeights: new Array(numTasks).fill(1 / (2 * Math.exp(o.init))),
      combine: (losses: tf.Scalar[]) => {
        const L = tf.stack(losses);
        const total = tf.sum(tf.add(tf.div(L, tf.mul(2, tf.exp(s))), tf.div(s, 2))) as tf.Scalar;
        w.lastWeights = Array.from(s.dataSync(), (v) => 1 / (2 * Math.exp(v)));
        return total;
      },
      dispose: () => s.dispose(),
    };
    return w;
  },
});
