/**
 * `compete`: CompeteSMoE's router (Pham et al. 2024; Nguyen et al. 2025, official v2 code Fsoft-AIC/CompeteSMoE). A linear softmax router like `topk` for
 * routing and inference, plus competition settings: on the steps its layer competes, the MoE layer routes by
 * the experts' affinities and trains this router to match the detached competition target
 * (src/methods/compete-smoe/competition.ts).
 */
import { registerRouter } from './registry.js';
import { LinearRouter } from './topk.js';
import type { RouterDims, RouterSpec } from './types.js';
import { DEFAULT_COMPETITION, type AffinityKind, type CompetitionSettings } from '../competition.js';

export interface CompeteRouterSpec extends RouterSpec {
  type: 'compete';
  prob?: number;
  warmup?: number;
  maxLayersPerStep?: number;
  affinity?: AffinityKind;
  routerLossCoef?: number;
  diversityCoef?: number;
  balanceCoef?: number;
}

/** Validated competition settings from a spec (defaults: DEFAULT_COMPETITION). */
export function competitionSettings(spec: Partial<CompeteRouterSpec>): CompetitionSettings {
  const c: CompetitionSettings = { ...DEFAULT_COMPETITION };
  for (const k of Object.keys(DEFAULT_COMPETITION) as (keyof CompetitionSettings)[]) if (spec[k] !== undefined) (c as unknown as Record<string, unknown>)[k] = spec[k];
  const bad = (k: string, why: string) => new Error(`compete router: ${k} ${why}`);
  if (!(c.prob >= 0 && c.prob <= 1)) throw bad('prob', `must be in [0, 1], got ${c.prob}`);
  if (!(c.warmup >= 0 && c.warmup < 1)) throw bad('warmup', `must be in [0, 1), got ${c.warmup}`);
  if (!(Number.isInteger(c.maxLayersPerStep) && c.maxLayersPerStep >= 1)) throw bad('maxLayersPerStep', `must be a positive integer, got ${c.maxLayersPerStep}`);
  if (c.affinity !== 'softplus' && c.affinity !== 'norm') throw bad('affinity', `must be "softplus" or "norm", got ${String(c.affinity)}`);
  for (const k of ['routerLossCoef', 'diversityCoef', 'balanceCoef'] as const) if (!(c[k] >= 0)) throw bad(k, `must be ≥ 0, got ${c[k]}`);
  return c;
}

export class CompeteRouter extends LinearRouter {
  override readonly type = 'compete';
  override readonly competition: CompetitionSettings;

  constructor(spec: CompeteRouterSpec, dims: RouterDims, seed: number, initStd: number) {
    super(dims, seed, initStd);
    this.competition = competitionSettings(spec);
  }

  override spec(): CompeteRouterSpec {
    return { type: 'compete', ...this.competition };
  }
}

registerRouter('compete', (spec, dims, seed, initStd) => new CompeteRouter(spec as CompeteRouterSpec, dims, seed, initStd));
