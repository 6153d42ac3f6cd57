/**
 * `compete-smoe`: CompeteSMoE (Pham et al. 2024, arXiv 2402.02526; v2 arXiv 2505.13380) against the standard
 * sparse-MoE routers on a small character-level transformer (settings and results: docs/RESULTS.md).
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
    text: z.string().nullable().default(null).describe('A UTF-8 text file to model (default: the `corpus` source).'),
    data: z.string().nullable().default(null).describe('Same as `text` (so `efftrain run compete-smoe --data FILE` works).'),
    corpus: z.enum(['auto', 'moby-dick', 'bible-kjv']).default('auto').describe('Default text when no `text` is given: moby-dick (npm) or bible-kjv (apt); auto = the first installed.'),
    valFraction: z.number().gt(0).lt(1).default(0.1).describe('The held-out TEST tail (last part of the text): the reported `val_bpc` is measured here; no choice reads it. (Named `val` for compatibility.)'),
    tuneFraction: z.number().gt(0).lt(1).default(0.05).describe('The VALIDATION slice just before the test tail (never trained on): every hyperparameter choice uses it (`evalSplit=tune`).'),
    evalSplit: z.enum(['val', 'tune']).default('val').describe('Which held-out split the metrics use: `val` (the test tail, reported) or `tune` (the validation slice, for choosing hyperparameters).'),
    nLayers: z.number().int().positive().default(2).describe("Transformer blocks (every FFN is the method's FFN)."),
    dModel: z.number().int().positive().default(64).describe('Model width d.'),
    nHeads: z.number().int().positive().default(4).describe('Attention heads.'),
    contextLength: z.number().int().positive().default(64).describe('Tokens per training window.'),
    batchSize: z.number().int().positive().default(16).describe('Windows per step.'),
    experts: z.number().int().min(2).default(8).describe('Experts E per MoE layer.'),
    topK: z.number().int().positive().default(2).describe('Experts k per token.'),
    expertHidden: z.number().int().positive().default(64).describe('Hidden width h of each expert (dense-active uses k·h, dense-total E·h).'),
    capacityFactor: z.number().default(1.25).describe('Training capacity factor (≤ 0: dropless). Evaluation is always dropless.'),
    balanceCoef: z.number().min(0).default(0.01).describe('Switch load-balancing loss weight.'),
    zLossCoef: z.number().min(0).default(0.001).describe('Router z-loss weight.'),
    xmoeDim: z.number().int().positive().default(4).describe('XMoE: dimension of the low-dimensional routing space.'),
    xmoeTemperature: z.number().positive().default(0.3).describe('XMoE: temperature of the cosine router.'),
    competeProb: z.number().min(0).max(1).default(0.05).describe('CompeteSMoE: per-layer probability of a competition step (v2 default).'),
    competeWarmup: z.number().min(0).lt(1).default(0.05).describe('CompeteSMoE: fraction of steps before competition starts.'),
    maxCompetingLayers: z.number().int().positive().default(3).describe('CompeteSMoE: at most this many layers compete on one step.'),
    affinity: z.enum(['softplus', 'norm']).default('softplus').describe('CompeteSMoE competition score: softplus = mean softplus of the expert output (v2), norm = its L2 norm (v1).'),
    routerLossCoef: z.number().min(0).default(0.01).describe('CompeteSMoE: weight of the MSE between the router and the detached competition distribution.'),
    diversityCoef: z.number().min(0).default(0.01).describe("CompeteSMoE: weight of the winners' diversity term."),
    competeBalanceCoef: z.number().min(0).default(0.01).describe('CompeteSMoE: weight of the balance term on the competition affinities.'),
    steps: z.number().int().positive().default(1500).describe('Optimizer steps.'),
    lr: z.number().positive().default(3e-3).describe('Peak learning rate (AdamW), chosen on the tune split (docs/RESULTS.md).'),
    methodLr: z.record(z.string(), z.number().positive()).default({}).describe('Per-method learning rates (method → lr) overriding `lr`; chosen on the tune split (RESULTS.md).'),
    weightDecay: z.number().min(0).default(0.1).describe('AdamW decoupled weight decay.'),
    clipNorm: z.number().min(0).default(1).describe('Global gradient-norm clip (0 = none).'),
    warmupFraction: z.number().min(0).lt(1).default(0.05).describe('Linear warm-up as a fraction of steps.'),
    minLrFraction: z.number().min(0).max(1).default(0.1).describe('Cosine decays to this fraction of the peak LR.'),
    evalEvery: z.number().int().positive().default(100).describe('Evaluate every N steps.'),
    evalWindows: z.number().int().min(0).default(64).describe('Validation windows of intermediate evaluations (0 = all of the split).'),
    finalEvalWindows: z.number().int().min(0).default(0).describe('Validation windows of the final evaluation (0 = all).'),
    diagWindows: z.number().int().positive().default(16).describe('Held-out windows (× contextLength tokens) on which the routing diagnostics are computed.'),
    evalBatch: z.number().int().positive().default(64).describe('Windows per evaluation batch.'),
    saveModel: z.boolean().default(true).describe("Save the trained model (for `efftrain generate`) into the run's artifacts folder."),
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
