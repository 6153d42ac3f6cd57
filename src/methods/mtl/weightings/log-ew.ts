import * as tf from '@tensorflow/tfjs';
import { defineWeighting } from './options.js';

/**
 * Log-loss EW — equal weighting of log losses: L = Σ_t log(L_t + ε), so ∂L/∂θ = Σ_t ∇L_t / (L_t + ε) and every
 * task's gradient is divided by its own loss (loss-scale balancing). The transform is DB-MTL's (Lin et al.,
 * "Dual-Balancing for Multi-Task Learning", 2023, §3.1); Rep-MTL (Wang et al., ICCV 2025, eq. 10) reports all its
 * results on top of EW on log losses. Option `log-ew.eps` (1e-8, as DB-MTL).
 */
export const logEw = defineWeighting({
  name: 'log-ew',
  paper: 'EW on log losses: Lin et al., "Dual-Balancing for Multi-Task Learning", 2023 (§3.1); the base of Rep-MTL (Wang et al., ICCV 2025)',
  defaults: { eps: 1e-8 },
  supportsRep: false,
  create: (o, numTasks) => ({
    name: 'log-ew',
    kind: 'loss',
    lastWeights: new Array(numTasks).fill(1),
    combine: (losses) => tf.addN(losses.map((l) => tf.log(tf.add(l, o.eps)))) as tf.Scalar,
  }),
});
