import { UserError } from '../../../errors.js';
import { symmetricEigen } from '../linalg.js';
import type { GradInput } from '../types.js';
import { defineWeighting } from './options.js';

/**
 * Aligned-MTL weights: eigendecompose M = GGᵀ = V Λ Vᵀ, keep the eigenvalues above the rank tolerance
 * (λ_max·T·ε_float32, as LibMTL), B = √λ_min · V Λ^{−1/2} Vᵀ and α = B·1. The update Σ α_t g_t is the
 * gradient of the condition-number-1 (aligned) system, scaled by the smallest singular value.
 */
export function alignedMtlWeights(M: number[][]): number[] {
  const T = M.length;
  const { values, vectors } = symmetricEigen(M);
  const lmax = Math.max(...values);
  const tol = lmax * T * 1.1920928955078125e-7;
  const keep = values.map((v, i) => i).filter((i) => values[i] > tol);
  if (!keep.length) return new Array(T).fill(0);
  const lmin = Math.min(...keep.map((i) => values[i]));
  const alpha = new Array(T).fill(0);
  for (let r = 0; r < T; r++)
    for (let c = 0; c < T; c++) {
      let b = 0;
      for (const k of keep) b += (vectors[r][k] * vectors[c][k]) / Math.sqrt(values[k]);
      alpha[c] += Math.sqrt(lmin) * b; // α = Bᵀ·1 = B·1 (B symmetric): column sums
    }
  return alpha;
}

/**
 * Aligned-MTL — align the task gradients into an orthogonal, equally-scaled system via the eigen-decomposition
 * of their Gram matrix (condition number 1), then sum. Senushkin, Patakin, Kuznetsov, Konushin,
 * "Independent Component Alignment for Multi-Task Learning", CVPR 2023. Option `aligned-mtl.space`
 * ∈ {param, rep} (LibMTL allows rep_grad).
 */
export const alignedMtl = defineWeighting({
  name: 'aligned-mtl',
  paper: 'Senushkin et al., "Independent Component Alignment for Multi-Task Learning", CVPR 2023',
  defaults: { space: 'param' },
  supportsRep: true,
  create: (o, numTasks) => {
    if (o.space !== 'param' && o.space !== 'rep') throw new UserError('config key "aligned-mtl.space" must be "param" or "rep"');
    const self = {
      name: 'aligned-mtl',
      kind: 'grad' as const,
      space: o.space as 'param' | 'rep',
      lastWeights: new Array(numTasks).fill(1),
      combine: (inp: GradInput) => {
        const weights = alignedMtlWeights(inp.gram);
        self.lastWeights = weights;
        return { weights };
      },
    };
    return self;
  },
});
