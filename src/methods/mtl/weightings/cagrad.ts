import { UserError } from '../../../errors.js';
import { matVec, minimizeOnSimplex, quad, sum } from '../linalg.js';
import { defineWeighting } from './options.js';

/**
 * CAGrad weights. With K = GGᵀ, g0 = mean gradient, c = calpha·‖g0‖: minimise over the simplex
 * F(w) = wᵀK b + c·√(wᵀKw) with b = 1/T; then d = g0 + (c/‖g_w‖)·g_w, rescaled by 1/(1 + calpha²)
 * (rescale 1), 1/(1 + calpha) (rescale 2) or not at all (0). Returns d as weights over the task gradients.
 */
export function cagradWeights(K: number[][], calpha: number, rescale: number): { weights: number[]; w: number[] } {
  const T = K.length;
  const b = new Array(T).fill(1 / T);
  const g0norm = Math.sqrt(quad(K, b) + 1e-8);
  const c = calpha * g0norm + 1e-8;
  const Kb = matVec(K, b);
  const f = (w: number[]) => sum(w.map((x, i) => x * Kb[i])) + c * Math.sqrt(quad(K, w) + 1e-8);
  const grad = (w: number[]) => {
    const Kw = matVec(K, w);
    const s = Math.sqrt(quad(K, w) + 1e-8);
    return Kb.map((v, i) => v + (c * Kw[i]) / s);
  };
  const w = minimizeOnSimplex(f, grad, b, 1000);
  const gwNorm = Math.sqrt(Math.max(quad(K, w), 0));
  const lambda = c / (gwNorm + 1e-8);
  const scale = rescale === 1 ? 1 / (1 + calpha * calpha) : rescale === 2 ? 1 / (1 + calpha) : 1;
  return { weights: b.map((bi, i) => (bi + lambda * w[i]) * scale), w };
}

/**
 * CAGrad — conflict-averse gradient descent: maximise the worst local task improvement within a ball of
 * radius c = calpha·‖g0‖ around the average gradient g0 (solved in its dual on the simplex).
 * Liu, Liu, Jin, Stone, Liu, "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021.
 * Options `cagrad.calpha` (0.5), `cagrad.rescale` ∈ {0, 1, 2} (1). Shared parameters only.
 */
export const cagrad = defineWeighting({
  name: 'cagrad',
  paper: 'Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021',
  defaults: { calpha: 0.5, rescale: 1 },
  supportsRep: false,
  create: (o, numTasks) => {
    if (!(o.calpha >= 0)) throw new UserError('config key "cagrad.calpha" must be ≥ 0');
    if (![0, 1, 2].includes(o.rescale)) throw new UserError('config key "cagrad.rescale" must be 0, 1 or 2');
    const self = {
      name: 'cagrad',
      kind: 'grad' as const,
      space: 'param' as const,
      lastWeights: new Array(numTasks).fill(1 / numTasks),
      combine: (inp: { gram: number[][] }) => {
        const { weights } = cagradWeights(inp.gram, o.calpha, o.rescale);
        self.lastWeights = weights;
        return { weights };
      },
    };
    return self;
  },
});
