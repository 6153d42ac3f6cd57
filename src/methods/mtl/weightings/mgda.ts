import { UserError } from '../../../errors.js';
import { minNormWeights } from '../linalg.js';
import type { GradInput } from '../types.js';
import { defineWeighting } from './options.js';

/** MGDA's gradient normalisers (Sener & Koltun 2018, §3.2; LibMTL `mgda_gn`). */
export function mgdaNormalizers(gram: number[][], losses: number[], mode: string): number[] {
  const norms = gram.map((r, i) => Math.sqrt(Math.max(r[i], 0)));
  switch (mode) {
    case 'none':
      return gram.map(() => 1);
    case 'l2':
      return norms;
    case 'loss':
      return losses;
    case 'loss+':
      return losses.map((l, i) => l * norms[i]);
    default:
      throw new UserError(`config key "mgda.gn": expected none, l2, loss or loss+, got "${mode}"`);
  }
}

/** MGDA weights: min-norm point of the convex hull of the (normalised) gradients, mapped back to raw gradients. */
export function mgdaWeights(inp: Pick<GradInput, 'gram' | 'losses'>, gn = 'none'): number[] {
  const n = mgdaNormalizers(inp.gram, inp.losses, gn).map((v) => v + 1e-12);
  const K = inp.gram.map((r, i) => r.map((v, j) => v / (n[i] * n[j])));
  const sol = minNormWeights(K, 250, 1e-5);
  return sol.map((s, i) => s / n[i]);
}

function make(name: 'mgda' | 'mgda-ub', space: 'param' | 'rep') {
  return defineWeighting({
    name,
    paper:
      'Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018' +
      (space === 'rep' ? ' (MGDA-UB: gradients w.r.t. the shared representation)' : ''),
    defaults: { gn: 'none' },
    supportsRep: true,
    create: (o, numTasks) => {
      mgdaNormalizers([[1]], [1], o.gn);
      const self = {
        name,
        kind: 'grad' as const,
        space,
        lastWeights: new Array(numTasks).fill(1 / numTasks),
        combine: (inp: GradInput) => {
          const weights = mgdaWeights(inp, o.gn);
          self.lastWeights = weights;
          return { weights };
        },
      };
      return self;
    },
  });
}

/**
 * MGDA — the multiple-gradient descent algorithm: the shared update is the minimum-norm element of the
 * convex hull of the task gradients (Frank–Wolfe, ≤ 250 iterations, closed form for T = 2); heads get their
 * own loss gradients. Option `mgda.gn` ∈ {none, l2, loss, loss+} (gradient normalisation; LibMTL default none).
 * Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018.
 */
export const mgda = make('mgda', 'param');
/** MGDA-UB: MGDA on gradients w.r.t. the shared representation Z (an upper bound; one encoder backward). */
export const mgdaUb = make('mgda-ub', 'rep');
