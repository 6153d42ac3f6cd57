import * as tf from '@tensorflow/tfjs';
import { defineWeighting } from './options.js';

/**
 * RLW — random loss weighting: at every step w = softmax(ε), ε ~ N(0, I), L = Σ_t w_t L_t (weights sum to 1,
 * as in LibMTL). Lin, Ye, Xu, Shi, Zhang, "Reasonable Effectiveness of Random Weighting: A Litmus Test for
 * Multi-Task Learning", TMLR 2022. No options (LibMTL's default is the normal distribution).
 */
export const rlw = defineWeighting({
  name: 'rlw',
  paper: 'Lin et al., "Reasonable Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022',
  defaults: {},
  supportsRep: false,
  create: (_o, numTasks) => {
    const w = {
      name: 'rlw',
      kind: 'loss' as const,
      lastWeights: new Array(numTasks).fill(1 / numTasks),
      combine: (losses: tf.Scalar[], ctx: { rng: { normal(): number } }) => {
        const e = losses.map(() => ctx.rng.normal());
        const m = Math.max(...e);
        const ex = e.map((v) => Math.exp(v - m));
        const z = ex.reduce((a, b) => a + b, 0);
        w.lastWeights = ex.map((v) => v / z);
        return tf.addN(losses.map((l, i) => tf.mul(l, w.lastWeights[i]))) as tf.Scalar;
      },
    };
    return w;
  },
});
