import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../../errors.js';
import { defineWeighting } from './options.js';

/**
 * DWA — dynamic weight average: from the third epoch on, w = T·softmax(r / temp) with
 * r_t = L̄_t(e−1) / L̄_t(e−2) (epoch-mean training losses); w = 1 for the first two epochs.
 * Liu, Johns, Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019.
 * Option `dwa.temp` (LibMTL's `T`, default 2).
 */
export function dwaWeights(epochLosses: number[][], epoch: number, numTasks: number, temp: number): number[] {
  if (epoch < 2 || epochLosses.length < epoch) return new Array(numTasks).fill(1);
  const a = epochLosses[epoch - 1];
  const b = epochLosses[epoch - 2];
  const r = a.map((v, t) => v / b[t] / temp);
  const m = Math.max(...r);
  const ex = r.map((v) => Math.exp(v - m));
  const z = ex.reduce((s, v) => s + v, 0);
  return ex.map((v) => (numTasks * v) / z);
}

export const dwa = defineWeighting({
  name: 'dwa',
  paper: 'Liu, Johns, Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019',
  defaults: { temp: 2 },
  supportsRep: false,
  create: (o, numTasks) => {
    if (!(o.temp > 0)) throw new UserError('config key "dwa.temp" must be > 0');
    const w = {
      name: 'dwa',
      kind: 'loss' as const,
      lastWeights: new Array(numTasks).fill(1),
      combine: (losses: tf.Scalar[], ctx: { epoch: number; epochLosses: number[][] }) => {
        w.lastWeights = dwaWeights(ctx.epochLosses, ctx.epoch, numTasks, o.temp);
        return tf.addN(losses.map((l, i) => tf.mul(l, w.lastWeights[i]))) as tf.Scalar;
      },
    };
    return w;
  },
});
