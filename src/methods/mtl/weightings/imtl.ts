import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../../errors.js';
import { inverse } from '../linalg.js';
import type { GradInput } from '../types.js';
import { defineWeighting } from './options.js';

/**
 * IMTL-G closed form. With u_t = g_t/‖g_t‖, D = [g_1 − g_t]_{t≥2}, U = [u_1 − u_t]_{t≥2}:
 * α_{2..T} = g_1 Uᵀ (D Uᵀ)⁻¹, α_1 = 1 − Σ α_{2..T}. Then Σ α_t g_t has equal projections onto every u_t.
 * Everything is expressed through the Gram matrix K.
 */
export function imtlgWeights(K: number[][]): number[] {
  const T = K.length;
  if (T === 1) return [1];
  const n = K.map((r, i) => Math.sqrt(Math.max(r[i], 1e-30)));
  // inner products: g_i·u_j = K[i][j]/n_j, u_i·u_j = K[i][j]/(n_i n_j)
  const gu = (i: number, j: number) => K[i][j] / n[j];
  const Du = (a: number, b: number) => gu(0, 0) - gu(0, b) - gu(a, 0) + gu(a, b); // (g_1 − g_a)·(u_1 − u_b)
  const M: number[][] = [];
  for (let a = 1; a < T; a++) {
    const row: number[] = [];
    for (let b = 1; b < T; b++) row.push(Du(a, b));
    M.push(row);
  }
  const g1U = Array.from({ length: T - 1 }, (_, k) => gu(0, 0) - gu(0, k + 1));
  const Minv = inverse(M);
  const alpha = g1U.map((_, j) => g1U.reduce((s, v, i) => s + v * Minv[i][j], 0));
  return [1 - alpha.reduce((s, v) => s + v, 0), ...alpha];
}

/**
 * IMTL (hybrid) — impartial multi-task learning. IMTL-L: each loss becomes e^{s_t} L_t − s_t with learnable
 * s_t (init 0); IMTL-G: the shared update Σ α_t g_t (gradients of the scaled losses) with the closed-form α
 * that gives equal projections onto every unit task gradient. Heads get their own scaled-loss gradients.
 * Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, "Towards Impartial Multi-task Learning", ICLR 2021. Option `imtl.space` ∈ {param, rep} (gradients w.r.t. shared parameters or representation).
 */
export const imtl = defineWeighting({
  name: 'imtl',
  paper: 'Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021',
  defaults: { space: 'param' },
  supportsRep: true,
  create: (o, numTasks) => {
    if (o.space !== 'param' && o.space !== 'rep') throw new UserError('config key "imtl.space" must be "param" or "rep"');
    const s = tf.tidy(() => tf.variable(tf.zeros([numTasks]), true, undefined, 'float32'));
    const self = {
      name: 'imtl',
      kind: 'grad' as const,
      space: (o.space === 'rep' ? 'rep' : 'param') as 'param' | 'rep',
      variables: [s],
      lastWeights: new Array(numTasks).fill(1 / numTasks),
      transformLoss: (loss: tf.Scalar, t: number) => {
        const st = tf.gather(s, [t]).reshape([]) as tf.Scalar;
        return tf.sub(tf.mul(tf.exp(st), loss), st) as tf.Scalar;
      },
      combine: (inp: GradInput) => {
        const weights = imtlgWeights(inp.gram);
        self.lastWeights = weights;
        return { weights };
      },
      dispose: () => s.dispose(),
    };
    return self;
  },
});
