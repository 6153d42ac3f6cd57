/**
 * `structured-ffn`: structured feed-forward layers and self-guided training (Wei et al., NeurIPS 2024;
 * spec shared/methods/structured-ffn.md §10) on a small character-level transformer.
 *
 * Methods: `dense`, `<map>-<share>` with map ∈ {lowrank, blockdense, blockshuffle} and share the FFN
 * parameter percentage (e.g. lowrank-32 = rank 16 at d=64, f=256), optional `-sgt` (self-guided training,
 * ρ = sgtRatio, cosine α, stochastic skip) and `-sameflops` (train until the dense model's training FLOPs:
 * longer on fresh data without SGT; with SGT the paper's "fixedflop" mode: T(1+ρ) steps with the first ρT
 * batches replayed and ρ from spec §4). Block 0's FFN stays dense in every arm.
 *
 * Metric: validation bits per character on a contiguous held-out tail (`val_bpc`), plus FFN parameters,
 * train-step time, loss spikes, throughput and training FLOPs.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { z } from 'zod';
import { CharTokenizer, evalWindows, loadTextCorpus, randomWindows, splitTrainVal, type TokenBatch } from '../../data/text-corpus.js';
import { Rng } from '../../engine/rng.js';
import { UserError } from '../../errors.js';
import type { FfnContext, FfnSpec } from '../../models/ffn.js';
import { TransformerLM, type TransformerConfig } from '../../models/transformer.js';
import { StructuredFfn, structureForShare, structureProblem, type StructuredFfnSpec } from '../../methods/structured-ffn/ffn.js';
import type { StructuredMap } from '../../methods/structured-ffn/layers.js';
import { sameFlopsRho, sgtAlpha } from '../../methods/structured-ffn/sgt.js';
import { loadCheckpointFrom, resumeGuard, type CheckpointStore } from '../../train/checkpoint.js';
import { fileCheckpointStore, saveCheckpoint } from '../../node/checkpoint-file.js';
import { saveTransformer } from '../../node/transformer-files.js';
import { meanStd } from '../../train/metrics.js';
import { AdamW, type Optimizer } from '../../train/optimizers.js';
import { warmupCosine, type Schedule } from '../../train/schedules.js';
import { decodeSafetensors } from '../../train/safetensors.js';
import { Trainer } from '../../train/trainer.js';
import { lineChart, type Series } from '../../report/svg.js';
import { hashString } from '../common/image-classification.js';
import type { Experiment, MetricRow, ReportSection } from '../types.js';
import { readFileSync } from 'node:fs';
import { median } from '../../stats/index.js';
import { curve, predictionChecks, shareTable } from './report.js';
import { ffnSpecFor, modelConfigFor, parseMethod, stepPlanFor } from './methods.js';
export * from './methods.js';

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
    /** A UTF-8 text file to model (default: the `corpus` source). */
    text: z.string().nullable().default(null).describe('A UTF-8 text file to model (default: the `corpus` source).'),
    /** Same as `text` (so `efftrain run structured-ffn --data FILE` works). */
    data: z.string().nullable().default(null).describe('Same as `text` (so `efftrain run structured-ffn --data FILE` works).'),
    corpus: z.enum(['auto', 'moby-dick', 'bible-kjv']).default('auto'),
    /** Contiguous held-out tail of the text. */
    valFraction: z.number().gt(0).lt(1).default(0.1).describe('Contiguous held-out tail of the text.'),
    nLayers: z.number().int().positive().default(2),
    dModel: z.number().int().positive().default(64),
    nHeads: z.number().int().positive().default(4),
    dFf: z.number().int().positive().default(256),
    contextLength: z.number().int().positive().default(64),
    batchSize: z.number().int().positive().default(16),
    /** Optimizer steps T of the equal-steps arms. */
    steps: z.number().int().positive().default(1000).describe('Optimizer steps T of the equal-steps arms.'),
    /** Peak LR. The spec\'s recipe says 2e-3; a seed-1 sweep {2e-3, 6e-3, 1.2e-2} (docs/RESULTS.md) gave every arm ≈0.14 bpc less at 6e-3, so that is the default. */
    lr: z.number().positive().default(6e-3).describe('Peak LR. The spec\'s recipe says 2e-3; a seed-1 sweep {2e-3, 6e-3, 1.2e-2} (docs/RESULTS.md) gave every arm ≈0.14 bpc less at 6e-3, so that is the default.'),
    weightDecay: z.number().min(0).default(0.1),
    clipNorm: z.number().min(0).default(1),
    warmupFraction: z.number().min(0).lt(1).default(0.05),
    /** Cosine decays to this fraction of the peak LR. */
    minLrFraction: z.number().min(0).max(1).default(0.1).describe('Cosine decays to this fraction of the peak LR.'),
    /** SGT guidance length ρ as a fraction of T (ablation / fixedstep mode). */
    sgtRatio: z.number().min(0).max(1).default(0.5).describe('SGT guidance length ρ as a fraction of T (ablation / fixedstep mode).'),
    guideDecay: z.enum(['cosine', 'linear']).default('cosine'),
    /** SGT\'s stochastic FLOP saving (the paper\'s reduce_flop, on in all its runs): each map uses its guide with probability α, else exactly S(x). false = the deterministic mixture α·W·x + (1−α)·S(x) on every step. */
    sgtStochasticSkip: z.boolean().default(true).describe('SGT\'s stochastic FLOP saving (the paper\'s reduce_flop, on in all its runs): each map uses its guide with probability α, else exactly S(x). false = the deterministic mixture α·W·x + (1−α)·S(x) on every step.'),
    /** Structured init: the paper's (svd / orthogonal) or plain N(0, 0.02²). */
    init: z.enum(['paper', 'normal']).default('paper').describe('Structured init: the paper\'s (svd / orthogonal) or plain N(0, 0.02²).'),
    /** Block count of BlockDense arms. */
    blockDenseBlocks: z.number().int().positive().default(2).describe('Block count of BlockDense arms.'),
    evalEvery: z.number().int().positive().default(100),
    /** Validation windows for intermediate evaluations (0 = the whole tail). */
    evalWindows: z.number().int().min(0).default(256).describe('Validation windows for intermediate evaluations (0 = the whole tail).'),
    /** Validation windows for the final (and step-T) evaluation (0 = the whole tail). */
    finalEvalWindows: z.number().int().min(0).default(0).describe('Validation windows for the final (and step-T) evaluation (0 = the whole tail).'),
    evalBatch: z.number().int().positive().default(64),
    /** A loss spike: a step loss more than this many nats above the running mean (EMA 0.9). */
    spikeThreshold: z.number().positive().default(0.3).describe('A loss spike: a step loss more than this many nats above the running mean (EMA 0.9).'),
    /** Save the trained model (for `efftrain generate`) into the run's artifacts folder. */
    saveModel: z.boolean().default(true).describe('Save the trained model (for `efftrain generate`) into the run\'s artifacts folder.'),
    /** Also checkpoint every N steps for --resume (0 = never). */
    checkpointEverySteps: z.number().int().min(0).default(0).describe('Also checkpoint every N steps for --resume (0 = never).'),
  })
  .strict();

export type StructuredFfnConfig = z.infer<typeof schema>;

const corpusCache = new Map<string, { tok: CharTokenizer; train: Int32Array; val: Int32Array; name: string }>();

function loadData(cfg: StructuredFfnConfig) {
  const textPath = cfg.text ?? cfg.data;
  const key = `${textPath ?? cfg.corpus}|${cfg.valFraction}`;
  let d = corpusCache.get(key);
  if (!d) {
    const corpus = loadTextCorpus({ text: textPath, source: cfg.corpus });
    const tok = CharTokenizer.fromText(corpus.text);
    const ids = tok.encode(corpus.text);
    const { train, val } = splitTrainVal(ids, cfg.valFraction);
    d = { tok, train, val, name: corpus.name };
    corpusCache.set(key, d);
  }
  return d;
}

/** The batch of data step k: seeded by (seed, k) only, so every method with the same seed sees the same batches. */
function batchAt(train: Int32Array, cfg: StructuredFfnConfig, seed: number, k: number): TokenBatch {
  const rng = new Rng((hashString(`structured-ffn/data/${seed}`) ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0);
  return randomWindows(train, cfg.batchSize, cfg.contextLength, rng);
}

/** Mean validation loss in bits per character over `batches`. */
export function evalBpc(model: TransformerLM, batches: TokenBatch[], ctx: FfnContext = { training: false, rng: null }): number {
  let sum = 0;
  let n = 0;
  for (const b of batches) {
    const l = tf.tidy(() => {
      const x = tf.tensor2d(b.x, [b.batch, b.T], 'int32');
      const y = tf.tensor2d(b.y, [b.batch, b.T], 'int32');
      return model.loss(x, y, ctx, false);
    });
    sum += l.dataSync()[0] * b.batch * b.T;
    n += b.batch * b.T;
    l.dispose();
  }
  return sum / n / Math.LN2;
}

/** Reads an efftrain checkpoint's metadata without loading its tensors. */
function checkpointMeta(store: CheckpointStore): { step: number; extra: Record<string, unknown> } {
  const { tensors, metadata } = resumeGuard(store, () => decodeSafetensors(store.read(), store.name));
  tf.dispose(Object.values(tensors));
  return JSON.parse(metadata.efftrain ?? '{}');
}

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
  async run(ctx) {
    const cfg = ctx.config;
    const plan = parseMethod(ctx.method);
    if (!plan) throw new UserError(`unknown method "${ctx.method}"`);
    const data = loadData(cfg);
    const ffn = ffnSpecFor(plan, cfg);
    const modelSeed = hashString(`structured-ffn/model/${ctx.seed}`);
    const model = new TransformerLM(modelConfigFor(cfg, data.tok.vocabSize, ffn), modelSeed);
    const T = cfg.contextLength;
    const tokensPerStep = cfg.batchSize * T;
    const structured = model.blocks.map((b) => b.ffn).filter((f): f is StructuredFfn => f instanceof StructuredFfn);
    const macsStruct = model.macsPerToken();
    const denseFfnMacs = 2 * cfg.dModel * cfg.dFf;
    const macsDense = macsStruct - model.blocks.reduce((s, b) => s + b.ffn.macsPerToken(), 0) + cfg.nLayers * denseFfnMacs;
    const macsGuide = structured.length * denseFfnMacs;
    const sp = stepPlanFor(plan, cfg.steps, cfg.sgtRatio, { dense: macsDense, struct: macsStruct, guide: macsGuide });

    // Parameters: guides last, so dropping them keeps the other optimizer slots' indices.
    const guideSet = new Set(structured.flatMap((f) => f.guideVariables()));
    const named = model.namedVariables();
    const baseParams = named.filter((n) => !guideSet.has(n.variable)).map((n) => n.variable);
    const guideParams = [...guideSet];
    const optimizer = new AdamW({ weightDecay: cfg.weightDecay });
    const schedule: Schedule = warmupCosine(cfg.lr, sp.total, { warmupSteps: Math.round(cfg.warmupFraction * sp.total), minLr: cfg.lr * cfg.minLrFraction });
    const ckptPath = join(ctx.artifactsDir, 'checkpoint.safetensors');
    // A guide skipped on a step has no gradient: `missingGrads: 'skip'` leaves it out of clipping and the update.
    const trainer = new Trainer({ params: [...baseParams, ...guideParams], optimizer, schedule, clipNorm: cfg.clipNorm, missingGrads: 'skip', lastCheckpoint: () => (cfg.checkpointEverySteps > 0 ? ckptPath : null) });
    let guidesDropped = guideParams.length === 0;
    const dropGuides = () => {
      if (guidesDropped) return;
      for (const f of structured) f.dropGuides();
      trainer.setParams(baseParams);
      guidesDropped = true;
    };

    const sgtRng = new Rng(hashString(`structured-ffn/sgt/${ctx.seed}`));
    const evalSub = evalWindows(data.val, T, cfg.evalBatch, cfg.evalWindows);
    const evalFull = evalWindows(data.val, T, cfg.evalBatch, cfg.finalEvalWindows);
    const history: MetricRow[] = [];
    let flops = 0;
    let lossSum = 0;
    let lossN = 0;
    let ema = NaN;
    let spikes = 0;
    let inSpike = false;
    const stepMs: number[] = [];
    let valAtT = NaN;
    const warmSteps = Math.round(cfg.warmupFraction * sp.total);

    const store = fileCheckpointStore(ckptPath);
    if (ctx.resume && cfg.checkpointEverySteps > 0 && store.exists()) {
      const meta = checkpointMeta(store);
      if (meta.step >= sp.tG) dropGuides();
      const m = loadCheckpointFrom(store, trainer);
      sgtRng.setState(m.rng);
      const ex = m.extra as { history: MetricRow[]; loop: { flops: number; lossSum: number; lossN: number; ema: number | null; spikes: number; valAtT: number | null; inSpike: boolean } };
      history.push(...ex.history);
      ({ flops, lossSum, lossN, spikes, inSpike } = ex.loop);
      // JSON stores NaN as null
      ema = ex.loop.ema ?? NaN;
      valAtT = ex.loop.valAtT ?? NaN;
      for (const row of history) ctx.log(row);
    }

    const fctx: FfnContext & { stats: { extraMacsPerToken: number } } = { training: true, rng: sgtRng, guideSkip: cfg.sgtStochasticSkip, guideAlpha: 0, stats: { extraMacsPerToken: 0 } };
    const evalCtx = (alpha: number): FfnContext => ({ training: false, rng: null, guideAlpha: alpha });
    const t0 = performance.now();
    while (trainer.step < sp.total) {
      const step = trainer.step;
      if (step >= sp.tG) dropGuides();
      const alpha = guidesDropped ? 0 : sgtAlpha(step, sp.tG, cfg.guideDecay);
      const dataStep = step >= sp.replayFrom ? step - sp.replayFrom : step;
      const batch = batchAt(data.train, cfg, ctx.seed, dataStep);
      fctx.guideAlpha = alpha;
      fctx.stats.extraMacsPerToken = 0;
      const ts = performance.now();
      const loss = trainer.trainStep(() => model.loss(tf.tensor2d(batch.x, [batch.batch, T], 'int32'), tf.tensor2d(batch.y, [batch.batch, T], 'int32'), fctx));
      stepMs.push(performance.now() - ts);
      flops += 6 * tokensPerStep * (macsStruct + fctx.stats.extraMacsPerToken);
      lossSum += loss;
      lossN++;
      if (step >= warmSteps + 10 && Number.isFinite(ema)) {
        if (loss > ema + cfg.spikeThreshold) {
          if (!inSpike) spikes++;
          inSpike = true;
        } else if (loss < ema + cfg.spikeThreshold / 2) inSpike = false;
      }
      ema = Number.isFinite(ema) ? 0.9 * ema + 0.1 * loss : loss;
      const done = trainer.step;
      const atT = done === cfg.steps && sp.total !== cfg.steps;
      if (done % cfg.evalEvery === 0 || done === sp.total || atT) {
        const a = done >= sp.tG ? 0 : sgtAlpha(done, sp.tG, cfg.guideDecay);
        const full = done === sp.total || atT;
        const bpc = evalBpc(model, full ? evalFull : evalSub, evalCtx(guidesDropped ? 0 : a));
        if (done === cfg.steps) valAtT = bpc;
        const row: MetricRow = {
          step: done,
          tokens: done * tokensPerStep,
          train_flops: flops,
          lr: schedule.lr(done - 1),
          alpha: a,
          train_loss: lossSum / lossN,
          val_bpc: bpc,
          eval_set: full ? 'final' : 'subset',
          step_ms: median(stepMs.slice(-cfg.evalEvery)),
        };
        lossSum = 0;
        lossN = 0;
        history.push(row);
        ctx.log(row);
        ctx.progress({ step: done, steps: sp.total, loss: Number(row.train_loss), message: `val_bpc ${bpc.toFixed(3)}` });
      } else if (done % 10 === 0) ctx.progress({ step: done, steps: sp.total, loss });
      if (cfg.checkpointEverySteps > 0 && done % cfg.checkpointEverySteps === 0 && done < sp.total) {
        saveCheckpoint(ckptPath, trainer, {
          epoch: 0,
          batchInEpoch: 0,
          rng: sgtRng.getState(),
          epochRng: sgtRng.getState(),
          extra: { history, loop: { flops, lossSum, lossN, ema, spikes, valAtT, inSpike } },
        });
      }
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    dropGuides();
    const last = history[history.length - 1];
    const valBpc = Number(last?.val_bpc ?? NaN);
    if (cfg.saveModel) {
      saveTransformer(model, join(ctx.artifactsDir, 'model'), { tokenizer: data.tok.toJSON(), corpus: data.name, method: ctx.method, seed: ctx.seed, val_bpc: valBpc, steps: sp.total });
    }
    const steadyMs = median(stepMs.slice(Math.min(3, stepMs.length - 1)));
    const metrics: Record<string, number> = {
      val_bpc: valBpc,
      ffn_params: model.ffnWeightCount(),
      step_ms: steadyMs,
      loss_spikes: spikes,
      val_bpc_at_T: Number.isFinite(valAtT) ? valAtT : valBpc,
      tokens_per_s: (tokensPerStep * 1000) / steadyMs,
      train_flops: flops,
      steps: sp.total,
      params: model.paramCount(),
      train_seconds: trainSeconds,
    };
    model.dispose();
    optimizer.dispose();
    metrics.tensors_after = tf.memory().numTensors;
    return { metrics };
  },
  metrics: { primary: 'val_bpc', higherIsBetter: false, baseline: 'dense', diagnostics: ['ffn_params', 'step_ms', 'loss_spikes', 'tokens_per_s', 'train_flops', 'steps', 'params', 'train_seconds', 'tensors_after'] },
  methodPatterns: ['dense', '<lowrank|blockdense|blockshuffle>-<share %>[-sgt][-sameflops]'],
  derive({ config, runs }) {
    return { values: { predictions: predictionChecks(config.methods, [...runs]), shares: shareTable(config) } };
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
    const checks = predictionChecks(config.methods, results.runs);
    const md: string[] = ['## Structured FFN: setup and the paper’s predictions\n'];
    md.push(
      `Model: ${config.nLayers}-layer pre-LN causal transformer, d=${config.dModel}, ${config.nHeads} heads, d_ff=${config.dFf}, context ${config.contextLength}, ` +
        `batch ${config.batchSize} (${config.batchSize * config.contextLength} tokens/step), AdamW lr ${config.lr} wd ${config.weightDecay}, clip ${config.clipNorm}, ` +
        `${Math.round(config.warmupFraction * 100)}% warmup then cosine to ${config.minLrFraction}× peak, T=${config.steps} steps. Block 0's FFN is dense in every arm. ` +
        `Intermediate evaluations use ${config.evalWindows || 'all'} validation windows; the final one ${config.finalEvalWindows || 'all'}.\n`,
    );
    md.push('| method | structure | FFN weights | share of dense FFN (all blocks) |\n|---|---|---:|---:|');
    for (const s of shareTable(config)) md.push(`| ${s.method} | ${s.structure} | ${s.ffnWeights} | ${(100 * s.share).toFixed(1)}% |`);
    md.push('\nEach check compares seed means; "within noise" means the difference is below the standard error of the difference (√(s₁²/n₁ + s₂²/n₂)).\n');
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

