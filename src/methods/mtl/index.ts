/**
 * Multi-task learning for tfjs: a hard-parameter-sharing model, a small weighting contract with LibMTL's
 * methods registered by name, the Rep-MTL regulariser (composable with any weighting), the training loop,
 * and the metrics (Δm, power-law α, paired t-test).
 */
export * from './types.js';
export * from './model.js';
export * from './rep-mtl.js';
export * from './step.js';
export * from './train.js';
export * from './metrics.js';
export * from './diagnostics.js';
export * from './linalg.js';
export { registerWeighting, getWeightingFactory, createWeighting, listWeightings } from './weightings/registry.js';
export { pcgradWeights } from './weightings/pcgrad.js';
export { mgdaWeights, mgdaNormalizers } from './weightings/mgda.js';
export { cagradWeights } from './weightings/cagrad.js';
export { imtlgWeights } from './weightings/imtl.js';
export { nashWeights, nashWeightsNormalized } from './weightings/nash-mtl.js';
export { alignedMtlWeights } from './weightings/aligned-mtl.js';
export { gradnormLossGrad } from './weightings/gradnorm.js';
export { dwaWeights } from './weightings/dwa.js';
