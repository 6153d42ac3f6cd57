import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../../errors.js';
import { defineWeighting } from './options.js';

/**
 * FAMO — fast adaptive multitask optimization. Objective Σ_t z_t log(L_t − m_t + ε) / c with z = softmax(w),
 * c = Σ_t z_t / (L_t − m_t + ε) (detached), so the update follows Σ_t (z_t / c) ∇L_t / (L_t − m_t + ε).
 * After the model step the task losses are recomputed on the same batch and the logits w take one Adam step
 * (L2 weight decay γ) along ∂softmax(w)/∂w · δ, δ_t = log(L_t^{before} − m_t + ε) − log(L_t^{after} − m_t + ε)
 * (this is how LibMTL's FAMO updates w: it ascends the log-loss decrease, with m_t = 0).
 * Liu, Liu, Stone, Liu, "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023.
 * Options `famo.wLr` (0.025), `famo.gamma` (weight decay 1e-3), `famo.eps` (1e-8).
 */
export const famo = defineWeighting({
  name: 'famo',
  paper: 'Liu, Liu, Stone, Liu, "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023',
  defaults: { wLr: 0.025, gamma: 1e-3, eps: 1e-8 },
  supportsRep: false,
  create: (o, numTasks) => {
    if (!(o.wLr > 0)) throw new UserError('config key "famo.wLr" must be > 0');
    let w = new Array(numTasks).fill(0);
    let m = new Array(numTasks).fill(0);
    let v = new Array(numTasks).fill(0);
    let t = 0;
    const minLoss = new Array(numTasks).fill(0);
    const softmax = (x: number[]) => {
      const mx = Math.max(...x);
      const e = x.map((a) => Math.exp(a - mx));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((a) => a / s);
    };
    const self = {
      name: 'famo',
      kind: 'loss' as const,
      needsLossesAfterStep: true,
      lastWeights: new Array(numTasks).fill(1 / numTasks),
      combine: (losses: tf.Scalar[]) => {
        const z = softmax(w);
        const Lv = Array.from(tf.stack(losses).dataSync());
        const D = Lv.map((l, i) => l - minLoss[i] + o.eps);
        const c = z.reduce((s, zi, i) => s + zi / D[i], 0);
        self.lastWeights = z.map((zi, i) => zi / (c * D[i]));
        return tf.addN(losses.map((l, i) => tf.mul(tf.log(tf.add(tf.sub(l, minLoss[i]), o.eps)), z[i] / c))) as tf.Scalar;
      },
      afterStep: ({ losses, lossesAfter }: { losses: number[]; lossesAfter?: number[] }) => {
        if (!lossesAfter) return;
        const delta = losses.map((l, i) => Math.log(l - minLoss[i] + o.eps) - Math.log(lossesAfter[i] - minLoss[i] + o.eps));
        const z = softmax(w);
        // d = J_softmax(w)ᵀ δ = z ⊙ (δ − zᵀδ)
        const zd = z.reduce((s, zi, i) => s + zi * delta[i], 0);
        const g = z.map((zi, i) => zi * (delta[i] - zd) + o.gamma * w[i]);
        t++;
        const b1 = 0.9;
        const b2 = 0.999;
        m = m.map((mi, i) => b1 * mi + (1 - b1) * g[i]);
        v = v.map((vi, i) => b2 * vi + (1 - b2) * g[i] * g[i]);
        w = w.map((wi, i) => wi - (o.wLr * (m[i] / (1 - b1 ** t))) / (Math.sqrt(v[i] / (1 - b2 ** t)) + 1e-8));
      },
      getState: () => ({ w, m, v, t }),
      setState: (s: Record<string, unknown>) => {
        ({ w, m, v, t } = s as { w: number[]; m: number[]; v: number[]; t: number });
      },
    };
    return self;
  },
});
