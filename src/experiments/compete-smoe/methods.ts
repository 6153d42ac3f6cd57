/** The compete-smoe experiment's methods: method name → FFN spec (router and competition settings) and learning rate. */
import type { FfnSpec } from '../../models/ffn.js';
import type { TransformerConfig } from '../../models/transformer.js';
import type { MoeFfnSpec } from '../../methods/compete-smoe/index.js';
import type { CompeteSmoeConfig as Cfg } from './index.js';

export const COMPETE_SMOE_METHODS = ['dense-active', 'dense-total', 'smoe', 'xmoe', 'smoe-dropout', 'compete', 'compete-p0.2', 'compete-always'] as const;

/** The peak learning rate of a method: `methodLr[method]`, else `lr`. */
export function lrOf(cfg: Pick<Cfg, 'lr' | 'methodLr'>, method: string): number {
  return cfg.methodLr[method] ?? cfg.lr;
}

/** The FFN spec and d_ff of a method. */
export function ffnFor(method: string, cfg: Cfg): { ffn: FfnSpec; dFf: number } | null {
  const moe = (router: MoeFfnSpec['router']): { ffn: MoeFfnSpec; dFf: number } => ({
    ffn: { kind: 'moe', experts: cfg.experts, topK: cfg.topK, expertHidden: cfg.expertHidden, capacityFactor: cfg.capacityFactor, balanceCoef: cfg.balanceCoef, zLossCoef: cfg.zLossCoef, router },
    dFf: cfg.expertHidden,
  });
  const compete = (prob: number, warmup: number) =>
    moe({
      type: 'compete',
      prob,
      warmup,
      maxLayersPerStep: cfg.maxCompetingLayers,
      affinity: cfg.affinity,
      routerLossCoef: cfg.routerLossCoef,
      diversityCoef: cfg.diversityCoef,
      balanceCoef: cfg.competeBalanceCoef,
    });
  switch (method) {
    case 'dense-active':
      return { ffn: { kind: 'dense' }, dFf: cfg.topK * cfg.expertHidden };
    case 'dense-total':
      return { ffn: { kind: 'dense' }, dFf: cfg.experts * cfg.expertHidden };
    case 'smoe':
      return moe({ type: 'topk' });
    case 'xmoe':
      return moe({ type: 'xmoe', dim: cfg.xmoeDim, temperature: cfg.xmoeTemperature });
    case 'smoe-dropout':
      return moe({ type: 'smoe-dropout' });
    case 'compete':
      return compete(cfg.competeProb, cfg.competeWarmup);
    case 'compete-p0.2':
      return compete(0.2, cfg.competeWarmup);
    case 'compete-always':
      return compete(1, 0);
  }
  const m = /^compete-p(0?\.\d+|1)$/.exec(method);
  return m ? compete(Number(m[1]), cfg.competeWarmup) : null;
}

export function modelConfigFor(cfg: Cfg, vocabSize: number, f: { ffn: FfnSpec; dFf: number }): TransformerConfig {
  return { vocabSize, contextLength: cfg.contextLength, dModel: cfg.dModel, nHeads: cfg.nHeads, nLayers: cfg.nLayers, dFf: f.dFf, ffn: f.ffn, firstLayerDense: false };
}
