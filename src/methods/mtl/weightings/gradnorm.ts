import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../../errors.js';
import type { GradInput, WeightingContext } from '../types.js';
import { defineWeighting } from './options.js';

/**
 * GradNorm loss-scale gradient. With w = T·softmax(ℓ), n_t = ‖g_t‖, G_t = w_t n_t, Ḡ = mean G,
 * r_t = (L_t/L_t(0)) / mean(L/L(0)), target c_t = Ḡ r_t^α (held constant), the GradNorm loss is
 * Σ_t |G_t − c_t|; its gradient w.r.t. ℓ is J_w(ℓ)ᵀ (sign(G_t − c_t) n_t) with J_w = T(diag(p) − ppᵀ).
 */
export function gradnormLossGrad(ell: number[], norms: number[], losses: number[], initLosses: number[], alpha: number): { grad: number[]; weights: number[]; loss: number } {
  const T = ell.length;
  const m = Math.max(...ell);
  const e = ell.map((v) => Math.exp(v - m));
  const z = e.reduce((s, v) => s + v, 0);
  const p = e.map((v) => v / z);
  const w = p.map((v) => T * v);
  const G = w.map((wi, i) => wi * norms[i]);
  const Gbar = G.reduce((s, v) => s + v, 0) / T;
  const L = losses.map((l, i) => l / initLosses[i]);
  const Lbar = L.reduce((s, v) => s + v, 0) / T;
  const c = L.map((li) => Gbar * Math.pow(li / Lbar, alpha));
  const dw = G.map((Gi, i) => Math.sign(Gi - c[i]) * norms[i]);
  const pd = p.reduce((s, pi, i) => s + pi * dw[i], 0);
  const grad = p.map((pi, i) => T * pi * (dw[i] - pd));
  return { grad, weights: w, loss: G.reduce((s, Gi, i) => s + Math.abs(Gi - c[i]), 0) };
}

/**
 * GradNorm — learn loss weights w = T·softmax(ℓ) so that each task's weighted gradient norm ‖w_t g_t‖ tracks
 * the mean norm times (relative inverse training rate)^α. ℓ is learned by the main optimizer on the GradNorm
 * loss; the shared update is Σ w_t g_t (w detached); EW during the first epoch (the initial losses L_t(0)
 * are epoch-0 means, as in LibMTL). Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient Normalization
 * for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018. Option `gradnorm.alpha` (1.5),
 * `gradnorm.space` ∈ {param, rep}.
 */
export const gradnorm = defineWeighting({
  name: 'gradnorm',
  paper: 'Chen et al., "GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018',
  defaults: { alpha: 1.5, space: 'param' },
  supportsRep: true,
  create: (o, numTasks) => {
    if (o.space !== 'param' && o.space !== 'rep') throw new UserError('config key "gradnorm.space" must be "param" or "rep"');
    const ell = tf.tidy(() => tf.variable(tf.ones([numTasks]), true, undefined, 'float32'));
    const self = {
      name: 'gradnorm',
      kind: 'grad' as const,
      space: o.space as 'param' | 'rep',
      variables: [ell],
      lastWeights: new Array(numTasks).fill(1),
      combine: (inp: GradInput, ctx: WeightingContext) => {
        if (ctx.epoch < 1 || !ctx.epochLosses.length) {
          self.lastWeights = new Array(numTasks).fill(1);
          return { weights: self.lastWeights, variableGrads: [tf.zeros([numTasks])] };
        }
        const norms = inp.gram.map((r, i) => Math.sqrt(Math.max(r[i], 0)));
        const r = gradnormLossGrad(Array.from(ell.dataSync()), norms, inp.losses, ctx.epochLosses[0], o.alpha);
        self.lastWeights = r.weights;
        return { weights: r.weights, variableGrads: [tf.tensor1d(r.grad)] };
      },
      dispose: () => ell.dispose(),
    };
    return self;
  },
});
