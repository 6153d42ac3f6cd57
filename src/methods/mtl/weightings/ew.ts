import * as tf from '@tensorflow/tfjs';
import { defineWeighting } from './options.js';

/**
 * EW — equal weighting: L = Σ_t L_t. The standard multi-task baseline (e.g. Lin et al., "Reasonable
 * Effectiveness of Random Weighting", TMLR 2022, and LibMTL's `EW`). No options.
 */
export const ew = defineWeighting({
  name: 'ew',
  paper: 'Equal weighting (LibMTL EW; baseline in Lin et al., TMLR 2022)',
  defaults: {},
  supportsRep: false,
  create: (_o, numTasks) => ({
    name: 'ew',
    kind: 'loss',
    lastWeights: new Array(numTasks).fill(1),
    combine: (losses) => tf.addN(losses) as tf.Scalar,
  }),
});
