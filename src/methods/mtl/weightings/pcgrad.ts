import type { Rng } from '../../../engine/rng.js';
import { defineWeighting } from './options.js';

/**
 * PCGrad weights in coefficient space. Every projected gradient stays a combination of the original task
 * gradients, pc_i = Σ_k C[i][k] g_k, so the whole algorithm runs on the Gram matrix K = GGᵀ:
 * for each task i, in a random order of j: if pc_i·g_j < 0, pc_i ← pc_i − (pc_i·g_j)/(‖g_j‖² + ε) g_j.
 * Returns w with Σ_i pc_i = Σ_k w_k g_k.
 */
export function pcgradWeights(K: number[][], rng: Rng | null, eps = 1e-8): number[] {
  const T = K.length;
  const C = K.map((_, i) => K.map((__, k) => (i === k ? 1 : 0)));
  for (let i = 0; i < T; i++) {
    const order = Array.from({ length: T }, (_, j) => j);
    if (rng) rng.shuffleInPlace(order);
    for (const j of order) {
      let gij = 0;
      for (let k = 0; k < T; k++) gij += C[i][k] * K[k][j];
      if (gij < 0) C[i][j] -= gij / (K[j][j] + eps);
    }
  }
  return K.map((_, k) => C.reduce((s, row) => s + row[k], 0));
}

/**
 * PCGrad — gradient surgery: project each task gradient off the normal plane of every task gradient it
 * conflicts with (negative inner product), in random order, and sum. Heads get their own loss gradients.
 * Yu, Kumar, Gupta, Levine, Hausman, Finn, "Gradient Surgery for Multi-Task Learning", NeurIPS 2020.
 * No options (LibMTL has none). Shared parameters only (LibMTL forbids rep_grad).
 */
export const pcgrad = defineWeighting({
  name: 'pcgrad',
  paper: 'Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020',
  defaults: {},
  supportsRep: false,
  create: (_o, numTasks) => {
    const self = {
      name: 'pcgrad',
      kind: 'grad' as const,
      space: 'param' as const,
      lastWeights: new Array(numTasks).fill(1),
      combine: (inp: { gram: number[][] }, ctx: { rng: Rng }) => {
        const weights = pcgradWeights(inp.gram, ctx.rng);
        self.lastWeights = weights;
        return { weights };
      },
    };
    return self;
  },
});
