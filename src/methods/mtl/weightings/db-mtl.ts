import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../../errors.js';
import type { GradInput } from '../types.js';
import { defineWeighting } from './options.js';

/**
 * DB-MTL — dual-balancing: loss-scale balancing by training on log(L_t + ε), and gradient-magnitude balancing
 * by keeping an EMA ĝ_t ← g_t + (β/k^σ)(ĝ_t − g_t) of each task's gradient (k = step) and summing the
 * buffers rescaled to the largest norm: d = Σ_t (max_s ‖ĝ_s‖ / ‖ĝ_t‖) ĝ_t. Heads get their own log-loss
 * gradients. Lin, Ye, Zhang, Kwok, Zhang, "Dual-Balancing for Multi-Task Learning", arXiv 2308.12029 (2023).
 * Options `db-mtl.beta` (0.9), `db-mtl.betaSigma` (0), `db-mtl.eps` (1e-8). Shared parameters only.
 */
export const dbMtl = defineWeighting({
  name: 'db-mtl',
  paper: 'Lin et al., "Dual-Balancing for Multi-Task Learning", arXiv 2308.12029, 2023',
  defaults: { beta: 0.9, betaSigma: 0, eps: 1e-8 },
  supportsRep: false,
  create: (o, numTasks) => {
    if (!(o.beta >= 0 && o.beta < 1)) throw new UserError('config key "db-mtl.beta" must be in [0, 1)');
    let buffer: tf.Variable | null = null;
    let k = 0;
    const self = {
      name: 'db-mtl',
      kind: 'grad' as const,
      space: 'param' as const,
      lastWeights: new Array(numTasks).fill(1),
      get stateVariables(): tf.Variable[] {
        return buffer ? [buffer] : [];
      },
      transformLoss: (loss: tf.Scalar) => tf.log(tf.add(loss, o.eps)) as tf.Scalar,
      combine: (inp: GradInput) => {
        if (!buffer) buffer = tf.variable(tf.zerosLike(inp.grads), false, undefined, 'float32');
        k++;
        const b = o.beta / Math.pow(k, o.betaSigma);
        const next = tf.add(inp.grads, tf.mul(b, tf.sub(buffer, inp.grads)));
        buffer.assign(next);
        const norms = tf.norm(buffer, 'euclidean', 1);
        const alpha = tf.div(tf.max(norms), tf.add(norms, 1e-8));
        const direction = tf.squeeze(tf.matMul(tf.reshape(alpha, [1, -1]), buffer)) as tf.Tensor1D;
        self.lastWeights = Array.from(alpha.dataSync());
        return { direction };
      },
      getState: () => ({ k }),
      setState: (s: Record<string, unknown>) => {
        k = (s.k as number) ?? 0;
      },
      prepareState: ({ sharedSize }: { sharedSize: number }) => {
        if (!buffer) buffer = tf.tidy(() => tf.variable(tf.zeros([numTasks, sharedSize]), false, undefined, 'float32'));
      },
      dispose: () => buffer?.dispose(),
    };
    return self;
  },
});
