/**
 * SuperLoss (Castells, Weinzaepfel, Revaud, NeurIPS 2020): confidence-aware, task-agnostic loss
 * wrapper with closed-form per-sample confidences, plus the Lambert W₀ it needs.
 */
export { lambertW0, lambertW0Tensor, LAMBERT_W_BRANCH_POINT } from './lambert-w.js';
export {
  SuperLoss,
  superLoss,
  optimalConfidence,
  optimalConfidenceTensor,
  superLossObjective,
  superLossValue,
  crossEntropyPerSample,
  l1PerSample,
  l2PerSample,
  smoothL1PerSample,
} from './superloss.js';
export type {
  SuperLossTau,
  SuperLossOptions,
  SuperLossState,
  SuperLossOutput,
  SuperLossComputeOptions,
} from './superloss.js';
export { sigmaDiagnostics, sigmaHistogram, type SigmaDiagnostics } from './diagnostics.js';
