import { UserError } from '../../../errors.js';
import { matVec, solve } from '../linalg.js';
import { defineWeighting } from './options.js';

/**
 * Solves the Nash bargaining condition K α = 1/α (α > 0) for the Frobenius-normalised Gram K = GGᵀ/‖GGᵀ‖_F. It is
 * the stationarity condition of the strictly convex f(α) = ½ αᵀKα − Σ log α_t, minimised here by damped Newton
 * steps that keep α positive (exact to ~1e-10, where the official code runs ≤ 20 ECOS rounds of a sequential
 * convex approximation). The result is invariant to the gradients' scale: G → cG leaves it unchanged.
 */
export function nashWeightsNormalized(K0: number[][], maxIter = 100): number[] {
  const T = K0.length;
  const nf = Math.sqrt(K0.flat().reduce((s, v) => s + v * v, 0)) || 1;
  const K = K0.map((r) => r.map((v) => v / nf));
  let a = K.map((r, i) => 1 / Math.sqrt(Math.max(r[i], 1e-12) * T));
  const f = (x: number[]) => 0.5 * x.reduce((s, xi, i) => s + xi * matVec(K, x)[i], 0) - x.reduce((s, xi) => s + Math.log(xi), 0);
  for (let it = 0; it < maxIter; it++) {
    const Ka = matVec(K, a);
    const g = Ka.map((v, i) => v - 1 / a[i]);
    if (Math.max(...g.map((v, i) => Math.abs(v * a[i]))) < 1e-12) break;
    const H = K.map((r, i) => r.map((v, j) => v + (i === j ? 1 / (a[i] * a[i]) : 0)));
    // Tiny ridge keeps the Newton system solvable when K is singular and α is large.
    for (let i = 0; i < T; i++) H[i][i] += 1e-12;
    const step = solve(H, g);
    let t = 1;
    const f0 = f(a);
    const dec = g.reduce((s, gi, i) => s + gi * step[i], 0);
    let moved = false;
    for (let k = 0; k < 60 && !moved; k++) {
      const cand = a.map((ai, i) => ai - t * step[i]);
      if (cand.every((c) => c > 0) && f(cand) <= f0 - 1e-4 * t * dec) {
        a = cand;
        moved = true;
      } else t /= 2;
    }
    if (!moved) break;
  }
  return a;
}

/**
 * Nash-MTL's weights as the official code computes them: the Nash condition on the *unnormalised* Gram,
 * (GGᵀα)_t = 1/α_t. The official solver normalises GGᵀ by its Frobenius norm nf for conditioning but keeps nf in
 * its constraints (α_t·nf·(GGᵀ/nf · α)_t ≥ 1), so its α is the normalised solution divided by √nf — what this
 * returns. Then ‖Σ_t α_t g_t‖² = αᵀGGᵀα = Σ_t α_t·(1/α_t) = T for any gradient scale (the property the authors
 * state in AvivNavon/nash-mtl#7), and the recipe clips the shared update to `maxNorm`.
 */
export function nashWeights(K0: number[][], maxIter = 100): number[] {
  const nf = Math.sqrt(K0.flat().reduce((s, v) => s + v * v, 0)) || 1;
  return nashWeightsNormalized(K0, maxIter).map((a) => a / Math.sqrt(nf));
}

/**
 * Nash-MTL — the shared update is the Nash bargaining solution Σ α_t g_t with (GGᵀ α)_t = 1/α_t; the loss
 * Σ α_t L_t is then backpropagated (heads get α-weighted gradients) and the shared update is clipped to
 * norm `maxNorm` (heads are not clipped). Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik, Fetaya,
 * "Multi-Task Learning as a Bargaining Game", ICML 2022 (eq. 2, Claim 3.1; §3.2 for the solver). Options
 * `nash-mtl.updateWeightsEvery` (1), `nash-mtl.optimNiter` (Newton iterations, 100; the official ECOS loop uses 20),
 * `nash-mtl.maxNorm` (1), `nash-mtl.normalizedAlpha` (false: α as the official code; true: the ablation that keeps
 * the scale-free α of the normalised Gram, so ‖Σ α g‖ = √(T·‖GGᵀ‖) and heads see weights of order 1). Shared
 * parameters only.
 */
export const nashMtl = defineWeighting({
  name: 'nash-mtl',
  paper: 'Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022',
  defaults: { updateWeightsEvery: 1, optimNiter: 100, maxNorm: 1, normalizedAlpha: false },
  supportsRep: false,
  create: (o, numTasks) => {
    if (!(o.updateWeightsEvery >= 1) || !Number.isInteger(o.updateWeightsEvery)) throw new UserError('config key "nash-mtl.updateWeightsEvery" must be a positive integer');
    let alpha: number[] | null = null;
    const self = {
      name: 'nash-mtl',
      kind: 'grad' as const,
      space: 'param' as const,
      lastWeights: new Array(numTasks).fill(1),
      combine: (inp: { gram: number[][] }, ctx: { step: number }) => {
        if (!alpha || ctx.step % o.updateWeightsEvery === 0) alpha = (o.normalizedAlpha ? nashWeightsNormalized : nashWeights)(inp.gram, o.optimNiter);
        self.lastWeights = alpha;
        return { weights: alpha, taskWeights: alpha, maxNorm: o.maxNorm };
      },
      getState: () => ({ alpha }),
      setState: (s: Record<string, unknown>) => {
        alpha = (s.alpha as number[] | null) ?? null;
      },
    };
    return self;
  },
});
