/**
 * `structured-ffn`: structured feed-forward layers and self-guided training (Wei et al., NeurIPS 2024,
 * arXiv 2406.16450) on a small character-level transformer.
 *
 * Methods: `dense`, `<map>-<share>` with map ∈ {lowrank, blockdense, blockshuffle} and share the FFN
 * parameter percentage (e.g. lowrank-32 = rank 16 at d=64, f=256), optional `-sgt` (self-guided training,
 * ρ = sgtRatio, cosine α, stochastic skip) and `-sameflops` (train until the dense model's training FLOPs:
 * longer on fresh data without SGT; with SGT the paper's "fixedflop" mode: T(1+ρ) steps with the first ρT
 * batches replayed and ρ from the same-FLOPs equation in src/methods/structured-ffn/sgt.ts). Block 0's FFN
 * stays dense in every arm.
 *
 * Metric: validation bits per character on a contiguous held-out tail (`val_bpc`), plus FFN parameters,
 * train-step time, loss spikes, throughput and training FLOPs.
 */
import { z } from 'zod';
import { UserError } from '../../errors.js';
import { structureProblem, type StructuredFfnSpec } from '../../methods/structured-ffn/ffn.js';
import { lineChart } from '../../report/svg.js';
import type { Experiment, ReportSection } from '../types.js';
import { loadData } from './data.js';
import { ffnSpecFor, parseMethod } from './methods.js';
import { curve, predictionChecks, shareTable, type Check } from './report.js';
import { runStructuredFfn } from './train.js';
export * from './methods.js';
export { evalBpc } from './data.js';

/** The reported bits-per-character metric: on the test tail, or on the validation part without a test split. */
export function primaryMetric(cfg: Pick<StructuredFfnConfig, 'testFraction'>): 'test_bpc' | 'val_bpc' {
  return cfg.testFraction > 0 ? 'test_bpc' : 'val_bpc';
}

export const STRUCTURED_FFN_METHODS = [
  'dense',
  'lowrank-63',
  'lowrank-32',
  'blockdense-32',
  'blockshuffle-32',
  'lowrank-32-sgt',
  'lowrank-32-sameflops',
  'lowrank-32-sgt-sameflops',
] as const;

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default([...STRUCTURED_FFN_METHODS]),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3]),
    text: z.string().nullable().default(null).describe('A UTF-8 text file to model (default: the `corpus` source).'),
    data: z.string().nullable().default(null).describe('Same as `text` (so `efftrain run structured-ffn --data FILE` works).'),
    corpus: z.enum(['auto', 'moby-dick', 'bible-kjv']).default('auto').describe('Default text when no `text` is given: moby-dick (npm) or bible-kjv (apt); auto = the first installed.'),
    valFraction: z.number().gt(0).lt(1).default(0.1).describe('Validation part: the contiguous text just before the test tail. Curves, val_bpc and every choice (LR, steps) use it.'),
    testFraction: z.number().min(0).lt(1).default(0.1).describe('Test tail: the last part of the text, evaluated only at the end (test_bpc, the reported number). 0 = no test split (final numbers on the validation part).'),
    nLayers: z.number().int().positive().default(2).describe('Transformer blocks; block 0 keeps a dense FFN, every later block uses the method\'s FFN.'),
    dModel: z.number().int().positive().default(64).describe('Model width d (must be divisible by nHeads).'),
    nHeads: z.number().int().positive().default(4).describe('Attention heads.'),
    dFf: z.number().int().positive().default(256).describe('FFN hidden width: the dense FFN is d → dFf → d; a structured arm (lowrank-32, …) replaces both maps by its structure with that percentage of their parameters.'),
    contextLength: z.number().int().positive().default(64).describe('Characters per training / evaluation window.'),
    batchSize: z.number().int().positive().default(16).describe('Windows per optimizer step.'),
    steps: z.number().int().positive().default(1000).describe('Optimizer steps T of the equal-steps arms.'),
    lr: z.number().positive().default(1.2e-2).describe('Peak LR, chosen on the validation split (docs/RESULTS.md): a seed-1 quick sweep over {2e-3 (our first small-CPU setting), 6e-3, 1.2e-2} gave the lowest mean val_bpc of dense, lowrank-32 and lowrank-32-sgt at 1.2e-2 (the grid\'s top; larger was not tried).'),
    weightDecay: z.number().min(0).default(0.1).describe('AdamW decoupled weight decay (on weights of rank ≥ 2; 0 = none).'),
    clipNorm: z.number().min(0).default(1).describe('Global gradient-norm clip (0 = none); SGT guides skipped on a step are left out of it.'),
    warmupFraction: z.number().min(0).lt(1).default(0.05).describe('Linear LR warm-up as a fraction of the arm\'s total steps.'),
    minLrFraction: z.number().min(0).max(1).default(0.1).describe('Cosine decays to this fraction of the peak LR.'),
    sgtRatio: z.number().min(0).max(1).default(0.5).describe('SGT guidance length ρ as a fraction of T (ablation / fixedstep mode).'),
    guideDecay: z.enum(['cosine', 'linear']).default('cosine').describe('SGT: how the guide weight α falls from 1 to 0 over the guidance steps t_g (cosine or linear).'),
    sgtStochasticSkip: z.boolean().default(true).describe('SGT\'s stochastic FLOP saving (the paper\'s reduce_flop, on in all its runs): each map uses its guide with probability α, else exactly S(x). false = the deterministic mixture α·W·x + (1−α)·S(x) on every step.'),
    init: z.enum(['paper', 'normal']).default('paper').describe('Structured init: the paper\'s (svd / orthogonal) or plain N(0, 0.02²).'),
    blockDenseBlocks: z.number().int().positive().default(2).describe('Block count of BlockDense arms.'),
    evalEvery: z.number().int().positive().default(100).describe('Evaluate val_bpc every N steps on evalWindows windows; the final evaluations (after the last step, and at step T of the same-FLOPs arms) use finalEvalWindows.'),
    evalWindows: z.number().int().min(0).default(256).describe('Validation windows for intermediate evaluations (0 = the whole tail).'),
    finalEvalWindows: z.number().int().min(0).default(0).describe('Validation windows for the final (and step-T) evaluation (0 = the whole tail).'),
    evalBatch: z.number().int().positive().default(64).describe('Windows per evaluation batch.'),
    spikeThreshold: z.number().positive().default(0.3).describe('A loss spike: a step loss more than this many nats above the running mean (EMA 0.9).'),
    saveModel: z.boolean().default(true).describe('Save the trained model (for `efftrain generate`) into the run\'s artifacts folder.'),
    checkpointEverySteps: z.number().int().min(0).default(0).describe('Also checkpoint every N steps for --resume (0 = never).'),
  })
  .strict();

export type StructuredFfnConfig = z.infer<typeof schema>;

export const structuredFfn: Experiment<StructuredFfnConfig> = {
  name: 'structured-ffn',
  description: 'Structured FFN layers (LowRank, BlockDense, BlockShuffle) and self-guided training on a character-level transformer (validation bits per character)',
  schema: schema as z.ZodType<StructuredFfnConfig>,
  quick: {
    methods: ['dense', 'lowrank-32', 'lowrank-32-sgt'],
    steps: 800,
    evalEvery: 100,
    evalWindows: 64,
    finalEvalWindows: 512,
  },
  knownMethods: (cfg) => [...new Set([...STRUCTURED_FFN_METHODS, ...cfg.methods.filter((m) => parseMethod(m) !== null)])],
  validate(cfg) {
    if (cfg.dModel % cfg.nHeads !== 0) throw new UserError(`config key "dModel": ${cfg.dModel} is not divisible by nHeads ${cfg.nHeads}`);
    for (const m of cfg.methods) {
      const plan = parseMethod(m);
      if (!plan) throw new UserError(`unknown method "${m}"`);
      const spec = ffnSpecFor(plan, cfg);
      if (spec.kind === 'structured') {
        const problem = structureProblem(spec as StructuredFfnSpec, cfg.dModel, cfg.dFf);
        if (problem) throw new UserError(`method ${m} at dModel=${cfg.dModel}, dFf=${cfg.dFf}: ${problem}`);
      }
    }
    loadData(cfg);
  },
  run: runStructuredFfn,
  metrics: (cfg) => ({
    primary: primaryMetric(cfg),
    higherIsBetter: false,
    baseline: 'dense',
    diagnostics: [...(cfg.testFraction > 0 ? ['val_bpc'] : []), 'ffn_params', 'step_ms', 'loss_spikes', 'tokens_per_s', 'train_flops', 'steps', 'params', 'train_seconds', 'tensors_after'],
  }),
  methodPatterns: ['dense', '<lowrank|blockdense|blockshuffle>-<share %>[-sgt][-sameflops]'],
  derive({ config, runs }) {
    return { values: { predictions: predictionChecks(config.methods, [...runs], primaryMetric(config)), shares: shareTable(config) } };
  },
  report({ results, rows, config }) {
    const sections: ReportSection[] = [];
    const charts = [
      {
        file: 'charts/val_bpc-vs-step.svg',
        title: 'val_bpc vs steps',
        svg: lineChart({ title: 'validation bits/char vs optimizer steps (mean ± std)', xLabel: 'step', yLabel: 'val_bpc', series: curve(rows, results.methods, 'step') }),
      },
      {
        file: 'charts/val_bpc-vs-flops.svg',
        title: 'val_bpc vs training FLOPs',
        svg: lineChart({ title: 'validation bits/char vs training FLOPs (mean ± std)', xLabel: 'training FLOPs', yLabel: 'val_bpc', series: curve(rows, results.methods, 'train_flops') }),
      },
    ];
    const primary = primaryMetric(config);
    const checks = (results.derived?.predictions as Check[] | undefined) ?? predictionChecks(config.methods, results.runs, primary);
    const md: string[] = ['## Structured FFN: setup and the paper’s predictions\n'];
    md.push(
      `Model: ${config.nLayers}-layer pre-LN causal transformer, d=${config.dModel}, ${config.nHeads} heads, d_ff=${config.dFf}, context ${config.contextLength}, ` +
        `batch ${config.batchSize} (${config.batchSize * config.contextLength} tokens/step), AdamW lr ${config.lr} wd ${config.weightDecay}, clip ${config.clipNorm}, ` +
        `${Math.round(config.warmupFraction * 100)}% warmup then cosine to ${config.minLrFraction}× peak, T=${config.steps} steps. Block 0's FFN is dense in every arm. ` +
        `Text split (contiguous): train | validation ${config.valFraction} | test ${config.testFraction}. ` +
        `Curves and val_bpc are on the validation part (intermediate evaluations ${config.evalWindows || 'all'} windows, final ${config.finalEvalWindows || 'all'}); ` +
        (config.testFraction > 0 ? `the test tail is read once, at the end (test_bpc, ${config.finalEvalWindows || 'all'} windows): choices of LR and steps belong on val_bpc, never on test_bpc.\n` : 'there is no test split (testFraction = 0): the final numbers are on the validation part.\n'),
    );
    md.push('| method | structure | FFN weights | share of dense FFN (all blocks) |\n|---|---|---:|---:|');
    for (const s of shareTable(config)) md.push(`| ${s.method} | ${s.structure} | ${s.ffnWeights} | ${(100 * s.share).toFixed(1)}% |`);
    md.push(`\nEach check pairs the two methods by seed on ${primary} (or the metric named) and takes the 95% t-based confidence interval of the mean difference (df = seeds − 1): "agrees" / "disagrees" when it excludes 0, "within noise" when it contains 0.\n`);
    md.push('| paper predicts | observed | verdict |\n|---|---|---|');
    for (const c of checks) md.push(`| ${c.prediction} | ${c.observed} | ${c.verdict} |`);
    md.push(
      '\n`step_ms` / `tokens_per_s` are medians of this run\'s own steps: with several workers (and anything else on the ' +
        'machine) sharing the cores they measure contention as much as the layers. For the speed of the layers use ' +
        '`efftrain bench structured-ffn`, which times the variants interleaved in one process.\n',
    );
    md.push('\n![val_bpc vs steps](charts/val_bpc-vs-step.svg)\n\n![val_bpc vs FLOPs](charts/val_bpc-vs-flops.svg)\n');
    sections.push({ markdown: md.join('\n'), charts });
    return sections;
  },
};

