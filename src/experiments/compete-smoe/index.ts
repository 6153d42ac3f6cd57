/**
 * `compete-smoe`: CompeteSMoE (Pham et al. 2024, arXiv 2402.02526; v2 arXiv 2505.13380) against the standard
 * sparse-MoE routers on a small character-level transformer (spec shared/methods/compete-smoe.md §12).
 *
 * Every block's FFN is replaced (Switch-style). Methods:
 * - `dense-active` / `dense-total`: dense FFN with d_ff = k·h (the active weights) / E·h (the total weights);
 * - `smoe` (softmax top-k + Switch balance + z-loss), `xmoe` (low-dim cosine router), `smoe-dropout` (frozen
 *   random router);
 * - `compete` (v2 schedule: warm-up, per-layer Bernoulli p, ≤ maxLayersPerStep layers a step), `compete-p0.2`
 *   (p = 0.2), `compete-always` (every step, no warm-up: an upper bound, dense training cost).
 *
 * Metrics: `val_bpc` with the router alone (the inference path), `val_bpc_compete` (routing by competition,
 * a diagnostic), the routing diagnostics of src/methods/compete-smoe/diagnostics.ts on fixed held-out tokens,
 * `step_ms` (mean over steps), and FLOP-accounted training cost (`train_flops`, via ctx.stats).
 *
 * Splits: train | tune | val, contiguous in that order. Hyperparameters are chosen with `evalSplit=tune`; the
 * reported numbers use `val`.
 *
 * Folder: `methods.ts` (method → FFN spec), `data.ts` (splits, batches, bits/char), `train.ts` (one run through
 * `fit`, with the method folder's `MoeTraining` hook; checkpoints for `--resume`), `report.ts` (sections).
 */
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { moeSpecProblem, type MoeFfnSpec } from '../../methods/compete-smoe/index.js';
import type { Experiment } from '../types.js';
import { loadData } from './data.js';
import { COMPETE_SMOE_METHODS, ffnFor } from './methods.js';
import { competeSmoeReport, pairedVsSmoe, quickTargets } from './report.js';
import { runCompeteSmoe } from './train.js';

export { COMPETE_SMOE_METHODS, ffnFor, lrOf, modelConfigFor } from './methods.js';
export { evalBpc } from './data.js';
export { pairedVsSmoe, perSeedDiffs, quickTargets } from './report.js';

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default([...COMPETE_SMOE_METHODS]),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3, 4, 5]),
    /** A UTF-8 text file to model (default: the `corpus` source). */
    text: z.string().nullable().default(null),
    /** Same as `text` (so `efftrain run compete-smoe --data FILE` works). */
    data: z.string().nullable().default(null),
    corpus: z.enum(['auto', 'moby-dick', 'bible-kjv']).default('auto'),
    /** Contiguous held-out tail: the reported split. */
    valFraction: z.number().gt(0).lt(1).default(0.1),
    /** Contiguous slice just before the tail, for hyperparameter choices (never trained on). */
    tuneFraction: z.number().gt(0).lt(1).default(0.05),
    /** Which held-out split the metrics use: `val` (reported) or `tune` (for choosing hyperparameters). */
    evalSplit: z.enum(['val', 'tune']).default('val'),
    nLayers: z.number().int().positive().default(2),
    dModel: z.number().int().positive().default(64),
    nHeads: z.number().int().positive().default(4),
    contextLength: z.number().int().positive().default(64),
    batchSize: z.number().int().positive().default(16),
    experts: z.number().int().min(2).default(8),
    topK: z.number().int().positive().default(2),
    /** Hidden width h of each expert (dense-active uses k·h, dense-total E·h). */
    expertHidden: z.number().int().positive().default(64),
    /** Training capacity factor (≤ 0: dropless). Evaluation is always dropless. */
    capacityFactor: z.number().default(1.25),
    balanceCoef: z.number().min(0).default(0.01),
    zLossCoef: z.number().min(0).default(0.001),
    /** XMoE projection dimension and temperature. */
    xmoeDim: z.number().int().positive().default(4),
    xmoeTemperature: z.number().positive().default(0.3),
    /** CompeteSMoE (v2 defaults, spec §12 (E)). */
    competeProb: z.number().min(0).max(1).default(0.05),
    competeWarmup: z.number().min(0).lt(1).default(0.05),
    maxCompetingLayers: z.number().int().positive().default(3),
    affinity: z.enum(['softplus', 'norm']).default('softplus'),
    routerLossCoef: z.number().min(0).default(0.01),
    diversityCoef: z.number().min(0).default(0.01),
    competeBalanceCoef: z.number().min(0).default(0.01),
    steps: z.number().int().positive().default(1500),
    lr: z.number().positive().default(3e-3),
    /** Per-method learning rates (method → lr) overriding `lr`; chosen on the tune split (RESULTS.md). */
    methodLr: z.record(z.string(), z.number().positive()).default({}),
    weightDecay: z.number().min(0).default(0.1),
    clipNorm: z.number().min(0).default(1),
    warmupFraction: z.number().min(0).lt(1).default(0.05),
    minLrFraction: z.number().min(0).max(1).default(0.1),
    evalEvery: z.number().int().positive().default(100),
    /** Validation windows of intermediate evaluations (0 = all of the split). */
    evalWindows: z.number().int().min(0).default(64),
    /** Validation windows of the final evaluation (0 = all). */
    finalEvalWindows: z.number().int().min(0).default(0),
    /** Held-out windows (× contextLength tokens) on which the routing diagnostics are computed. */
    diagWindows: z.number().int().positive().default(16),
    evalBatch: z.number().int().positive().default(64),
    saveModel: z.boolean().default(true),
    /** Checkpoint every N steps for --resume (0 = never). */
    checkpointEverySteps: z.number().int().min(0).default(100).describe('Checkpoint every N steps for --resume (0 = never); a resumed run gives the same metrics as an uninterrupted one.'),
  })
  .strict();

export type CompeteSmoeConfig = z.infer<typeof schema>;

type Cfg = CompeteSmoeConfig;

export const competeSmoe: Experiment<Cfg> = {
  name: 'compete-smoe',
  description: 'CompeteSMoE vs SMoE, XMoE, SMoE-Dropout and dense FFNs on a character-level transformer (val bits/char with the router; collapse and routing diagnostics)',
  schema: schema as z.ZodType<Cfg>,
  // lr 3e-3: the best of {3e-3, 6e-3, 1.2e-2} on the tune split at 600 steps for both smoe and compete (RESULTS.md).
  quick: { methods: ['smoe', 'compete'], seeds: [1, 2, 3, 4], steps: 600, lr: 3e-3, evalEvery: 100, evalWindows: 32, finalEvalWindows: 256 },
  knownMethods: (cfg) => [...new Set([...COMPETE_SMOE_METHODS, ...cfg.methods.filter((m) => ffnFor(m, cfg) !== null)])],
  validate(cfg) {
    if (cfg.dModel % cfg.nHeads !== 0) throw new UserError(`config key "dModel": ${cfg.dModel} is not divisible by nHeads ${cfg.nHeads}`);
    if (cfg.topK > cfg.experts) throw new UserError(`config key "topK": ${cfg.topK} exceeds experts ${cfg.experts}`);
    for (const m of cfg.methods) {
      const f = ffnFor(m, cfg);
      if (!f) throw new UserError(`unknown method "${m}"`);
      if (f.ffn.kind === 'moe') {
        const p = moeSpecProblem(f.ffn as MoeFfnSpec);
        if (p) throw new UserError(`method ${m}: ${p}`);
      }
    }
    for (const m of Object.keys(cfg.methodLr)) if (!ffnFor(m, cfg)) throw new UserError(`config key "methodLr": unknown method "${m}"`);
    loadData(cfg);
  },
  run: runCompeteSmoe,
  metrics: {
    primary: 'val_bpc',
    higherIsBetter: false,
    baseline: 'smoe',
    diagnostics: ['val_bpc_compete', 'router_agreement', 'load_cv', 'expert_similarity', 'router_entropy', 'routing_fluctuation', 'compete_fraction', 'drop_rate', 'scheduled_competitions', 'step_ms', 'step_ms_median', 'train_flops', 'ffn_weights', 'active_ffn_macs', 'params', 'train_seconds', 'tensors_after'],
  },
  derive({ config, runs }) {
    return { values: { paired_vs_smoe: pairedVsSmoe(config.methods, [...runs]), quick_targets: quickTargets([...runs]) } };
  },
  report: competeSmoeReport,
};
