import type { FfnSpec } from '../../models/ffn.js';
import { type TransformerConfig } from '../../models/transformer.js';
import { structureForShare, type StructuredFfnSpec } from '../../methods/structured-ffn/ffn.js';
import type { StructuredMap } from '../../methods/structured-ffn/layers.js';
import { sameFlopsRho } from '../../methods/structured-ffn/sgt.js';
import type { StructuredFfnConfig } from './index.js';

/** A parsed method name. */
export interface MethodPlan {
  name: string;
  map: StructuredMap | 'dense';
  /** FFN parameter share in percent (100 for dense). */
  share: number;
  sgt: boolean;
  sameFlops: boolean;
}

export const METHOD_RE = /^(lowrank|blockdense|blockshuffle)-(\d{1,2})(-sgt)?(-sameflops)?$/;

export function parseMethod(name: string): MethodPlan | null {
  if (name === 'dense') return { name, map: 'dense', share: 100, sgt: false, sameFlops: false };
  const m = METHOD_RE.exec(name);
  if (!m || Number(m[2]) < 1) return null;
  return { name, map: m[1] as StructuredMap, share: Number(m[2]), sgt: !!m[3], sameFlops: !!m[4] };
}

/** The FFN spec of a method at width d, hidden f. */
export function ffnSpecFor(plan: MethodPlan, cfg: Pick<StructuredFfnConfig, 'dModel' | 'dFf' | 'init' | 'blockDenseBlocks'>): FfnSpec {
  if (plan.map === 'dense') return { kind: 'dense' };
  const s = structureForShare(plan.map, plan.share / 100, cfg.dModel, cfg.dFf, cfg.blockDenseBlocks);
  const spec: StructuredFfnSpec = { kind: 'structured', ...s, guide: plan.sgt, init: cfg.init };
  return spec;
}

export function modelConfigFor(cfg: StructuredFfnConfig, vocabSize: number, ffn: FfnSpec): TransformerConfig {
  return { vocabSize, contextLength: cfg.contextLength, dModel: cfg.dModel, nHeads: cfg.nHeads, nLayers: cfg.nLayers, dFf: cfg.dFf, ffn, firstLayerDense: true };
}

/** Step budget of a method: total steps, guidance length t_g, and the step at which batches start replaying. */
export interface StepPlan {
  total: number;
  tG: number;
  /** Steps ≥ replayFrom reuse the batch of step − replayFrom (fixedflop SGT); Infinity = never. */
  replayFrom: number;
  rho: number;
}

/**
 * Budgets: plain arms T steps; SGT (fixedstep) T steps with t_g = sgtRatio·T;
 * same-FLOPs without SGT T·C_dense/C_struct fresh steps; same-FLOPs SGT T(1+ρ) steps, t_g = ρT, replaying
 * the first ρT batches, with ρ = (C_dense − C_struct)/(C_struct + ½C_guide) from per-token model MACs.
 */
export function stepPlanFor(plan: MethodPlan, T: number, sgtRatio: number, macs: { dense: number; struct: number; guide: number }): StepPlan {
  if (!plan.sameFlops) return { total: T, tG: plan.sgt ? Math.round(sgtRatio * T) : 0, replayFrom: Infinity, rho: plan.sgt ? sgtRatio : 0 };
  if (!plan.sgt) return { total: Math.round((T * macs.dense) / macs.struct), tG: 0, replayFrom: Infinity, rho: 0 };
  const rho = sameFlopsRho(macs.dense, macs.struct, macs.guide);
  const tG = Math.round(rho * T);
  return { total: T + tG, tG, replayFrom: T, rho };
}


