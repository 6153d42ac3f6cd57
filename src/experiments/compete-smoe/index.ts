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
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { z } from 'zod';
import { CharTokenizer, evalWindows, loadTextCorpus, randomWindows, type TokenBatch } from '../../data/text-corpus.js';
import { Rng } from '../../engine/rng.js';
import { UserError } from '../../errors.js';
import type { FfnContext, FfnSpec } from '../../models/ffn.js';
import { TransformerLM, type TransformerConfig } from '../../models/transformer.js';
import { attachCompetitionSchedule, moeDiagnostics, moeLayers, moeSpecProblem, withEvalPolicy, type MoeFfnSpec } from '../../methods/compete-smoe/index.js';
import { pairedTTest } from '../../stats/index.js';
import { saveTransformer } from '../../node/transformer-files.js';
import { meanStd } from '../../train/metrics.js';
import { AdamW } from '../../train/optimizers.js';
import { warmupCosine } from '../../train/schedules.js';
import { Trainer } from '../../train/trainer.js';
import { lineChart, type Series } from '../../report/svg.js';
import { hashString } from '../common/image-classification.js';
import type { Experiment, MetricRow, ReportSection, RunRecord } from '../types.js';

export const COMPETE_SMOE_METHODS = ['dense-active', 'dense-total', 'smoe', 'xmoe', 'smoe-dropout', 'compete', 'compete-p0.2', 'compete-always'] as const;

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
  })
  .strict();

export type CompeteSmoeConfig = z.infer<typeof schema>;

type Cfg = CompeteSmoeConfig;

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

const corpusCache = new Map<string, { tok: CharTokenizer; train: Int32Array; tune: Int32Array; val: Int32Array; name: string }>();

/** train | tune | val, contiguous, from the configured text. */
function loadData(cfg: Cfg) {
  const textPath = cfg.text ?? cfg.data;
  const key = `${textPath ?? cfg.corpus}|${cfg.valFraction}|${cfg.tuneFraction}`;
  let d = corpusCache.get(key);
  if (!d) {
    if (cfg.valFraction + cfg.tuneFraction >= 0.9) throw new UserError(`config keys "valFraction" + "tuneFraction" must leave ≥ 10% for training`);
    const corpus = loadTextCorpus({ text: textPath, source: cfg.corpus });
    const tok = CharTokenizer.fromText(corpus.text);
    const ids = tok.encode(corpus.text);
    const nVal = Math.round(ids.length * cfg.valFraction);
    const nTune = Math.round(ids.length * cfg.tuneFraction);
    const nTrain = ids.length - nVal - nTune;
    const need = cfg.contextLength + 2;
    if (nVal < need || nTune < need || nTrain < need) throw new UserError(`${textPath ?? corpus.name}: text too short (${ids.length} symbols) for train/tune/val splits of windows of ${need}`);
    d = { tok, train: ids.subarray(0, nTrain), tune: ids.subarray(nTrain, nTrain + nTune), val: ids.subarray(nTrain + nTune), name: corpus.name };
    corpusCache.set(key, d);
  }
  return d;
}

/** The batch of step k, seeded by (seed, k) only: every method with the same seed sees the same batches. */
function batchAt(train: Int32Array, cfg: Cfg, seed: number, k: number): TokenBatch {
  const rng = new Rng((hashString(`compete-smoe/data/${seed}`) ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0);
  return randomWindows(train, cfg.batchSize, cfg.contextLength, rng);
}

/** Mean loss in bits per character over `batches` (evaluation forward, no aux losses). */
export function evalBpc(model: TransformerLM, batches: TokenBatch[]): number {
  let sum = 0;
  let n = 0;
  for (const b of batches) {
    const l = tf.tidy(() => model.loss(tf.tensor2d(b.x, [b.batch, b.T], 'int32'), tf.tensor2d(b.y, [b.batch, b.T], 'int32'), { training: false, rng: null }, false));
    sum += l.dataSync()[0] * b.batch * b.T;
    n += b.batch * b.T;
    l.dispose();
  }
  return sum / n / Math.LN2;
}

const DIAG_KEYS = ['router_agreement', 'load_cv', 'expert_similarity', 'router_entropy', 'routing_fluctuation'] as const;

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
  async run(ctx) {
    const cfg = ctx.config;
    const f = ffnFor(ctx.method, cfg);
    if (!f) throw new UserError(`unknown method "${ctx.method}"`);
    const data = loadData(cfg);
    const held = cfg.evalSplit === 'tune' ? data.tune : data.val;
    const model = new TransformerLM(modelConfigFor(cfg, data.tok.vocabSize, f), hashString(`compete-smoe/model/${ctx.seed}`));
    const ffns = model.blocks.map((b) => b.ffn);
    const layers = moeLayers(ffns);
    const schedule = attachCompetitionSchedule(ffns, cfg.steps, hashString(`compete-smoe/schedule/${ctx.seed}`));
    const T = cfg.contextLength;
    const tokensPerStep = cfg.batchSize * T;
    const macs = model.macsPerToken();
    const optimizer = new AdamW({ weightDecay: cfg.weightDecay });
    const lr = lrOf(cfg, ctx.method);
    const schedule_ = warmupCosine(lr, cfg.steps, { warmupSteps: Math.round(cfg.warmupFraction * cfg.steps), minLr: lr * cfg.minLrFraction });
    const trainer = new Trainer({ params: model.variables(), optimizer, schedule: schedule_, clipNorm: cfg.clipNorm });
    const evalSub = evalWindows(held, T, cfg.evalBatch, cfg.evalWindows);
    const evalFull = evalWindows(held, T, cfg.evalBatch, cfg.finalEvalWindows);
    const diagBatch = evalWindows(held, T, cfg.diagWindows, cfg.diagWindows)[0];
    const diagIds = tf.keep(tf.tensor2d(diagBatch.x, [diagBatch.batch, T], 'int32'));
    const rng = new Rng(hashString(`compete-smoe/rng/${ctx.seed}`));
    const fctx: FfnContext & { stats: { extraMacsPerToken: number } } = { training: true, rng, step: 0, stats: { extraMacsPerToken: 0 } };
    const history: MetricRow[] = [];
    const stepMs: number[] = [];
    let flops = 0;
    let lossSum = 0;
    let lossN = 0;
    let dropped = 0;
    let routedChoices = 0;
    let prevTop1: Int32Array[] | null = null;
    const fluct: number[] = [];
    let lastDiag: Record<string, number> = {};
    const t0 = performance.now();
    while (trainer.step < cfg.steps) {
      const step = trainer.step;
      const batch = batchAt(data.train, cfg, ctx.seed, step);
      fctx.step = step;
      fctx.stats.extraMacsPerToken = 0;
      const ts = performance.now();
      const loss = trainer.trainStep(() => model.loss(tf.tensor2d(batch.x, [batch.batch, T], 'int32'), tf.tensor2d(batch.y, [batch.batch, T], 'int32'), fctx));
      stepMs.push(performance.now() - ts);
      for (const l of layers) if (!l.last.competed) (dropped += l.last.dropped), (routedChoices += tokensPerStep * l.topK);
      flops += 6 * tokensPerStep * (macs + fctx.stats.extraMacsPerToken);
      lossSum += loss;
      lossN++;
      const done = trainer.step;
      if (done % cfg.evalEvery === 0 || done === cfg.steps) {
        const final = done === cfg.steps;
        const row: MetricRow = {
          step: done,
          tokens: done * tokensPerStep,
          train_flops: flops,
          lr: schedule_.lr(done - 1),
          train_loss: lossSum / lossN,
          val_bpc: evalBpc(model, final ? evalFull : evalSub),
          eval_set: final ? 'final' : 'subset',
          step_ms: mean(stepMs.slice(-cfg.evalEvery)),
        };
        if (layers.length) {
          const d = moeDiagnostics(layers, () => tf.dispose(model.logits(diagIds)), prevTop1);
          prevTop1 = d.top1;
          if (d.mean.routing_fluctuation !== undefined) fluct.push(d.mean.routing_fluctuation);
          Object.assign(row, d.mean);
          lastDiag = d.mean;
        }
        lossSum = 0;
        lossN = 0;
        history.push(row);
        ctx.log(row);
        ctx.progress({ step: done, steps: cfg.steps, loss: Number(row.train_loss), message: `val_bpc ${Number(row.val_bpc).toFixed(3)}` });
      } else if (done % 10 === 0) ctx.progress({ step: done, steps: cfg.steps, loss });
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    const valBpc = Number(history[history.length - 1].val_bpc);
    const metrics: Record<string, number> = {
      val_bpc: valBpc,
      step_ms: mean(stepMs.slice(Math.min(3, stepMs.length - 1))),
      step_ms_median: median(stepMs.slice(Math.min(3, stepMs.length - 1))),
      train_flops: flops,
      ffn_weights: model.ffnWeightCount(),
      active_ffn_macs: model.blocks.reduce((s, b) => s + b.ffn.macsPerToken(), 0),
      params: model.paramCount(),
      train_seconds: trainSeconds,
    };
    if (layers.length) {
      metrics.val_bpc_compete = withEvalPolicy(layers, 'compete', () => evalBpc(model, evalFull));
      for (const k of DIAG_KEYS) if (k !== 'routing_fluctuation') metrics[k] = lastDiag[k];
      metrics.routing_fluctuation = fluct.length ? mean(fluct) : NaN;
      metrics.compete_fraction = layers.reduce((s, l) => s + l.counts.competed, 0) / Math.max(1, layers.reduce((s, l) => s + l.counts.competed + l.counts.routed, 0));
      metrics.drop_rate = routedChoices ? dropped / routedChoices : 0;
      if (schedule) metrics.scheduled_competitions = schedule.count();
    }
    if (cfg.saveModel) saveTransformer(model, join(ctx.artifactsDir, 'model'), { tokenizer: data.tok.toJSON(), corpus: data.name, method: ctx.method, seed: ctx.seed, val_bpc: valBpc, steps: cfg.steps });
    diagIds.dispose();
    model.dispose();
    optimizer.dispose();
    metrics.tensors_after = tf.memory().numTensors;
    return { metrics };
  },
  metrics: {
    primary: 'val_bpc',
    higherIsBetter: false,
    baseline: 'smoe',
    diagnostics: ['val_bpc_compete', 'router_agreement', 'load_cv', 'expert_similarity', 'router_entropy', 'routing_fluctuation', 'compete_fraction', 'drop_rate', 'scheduled_competitions', 'step_ms', 'step_ms_median', 'train_flops', 'ffn_weights', 'active_ffn_macs', 'params', 'train_seconds', 'tensors_after'],
  },
  derive({ config, runs }) {
    return { values: { paired_vs_smoe: pairedVsSmoe(config.methods, [...runs]), quick_targets: quickTargets([...runs]) } };
  },
  report({ results, rows, config }) {
    const charts = (
      [
        ['val_bpc', 'validation bits/char (router inference)'],
        ['expert_similarity', 'mean pairwise cosine similarity of expert outputs'],
        ['router_agreement', 'router–competition top-k agreement'],
        ['load_cv', 'expert-load coefficient of variation'],
        ['routing_fluctuation', 'share of tokens whose top-1 expert changed since the last evaluation'],
      ] as const
    ).map(([key, title]) => ({ file: `charts/${key}-vs-step.svg`, title, svg: lineChart({ title: `${title} (mean ± std)`, xLabel: 'step', yLabel: key, series: curve(rows, results.methods, key) }) }));
    const md: string[] = ['## CompeteSMoE: setup, paired differences, targets\n'];
    md.push(
      `Model: ${config.nLayers}-layer pre-LN causal transformer, d=${config.dModel}, ${config.nHeads} heads, context ${config.contextLength}, batch ${config.batchSize}; ` +
        `every FFN is the method's (MoE: E=${config.experts} experts of hidden ${config.expertHidden}, top-${config.topK}, training capacity factor ${config.capacityFactor}, ` +
        `balance ${config.balanceCoef}, z-loss ${config.zLossCoef}). AdamW lr ${config.methods.map((m) => `${lrOf(config, m)} (${m})`).join(', ')}, wd ${config.weightDecay}, clip ${config.clipNorm}, ${config.steps} steps. ` +
        `CompeteSMoE: p=${config.competeProb}, warm-up ${config.competeWarmup}, ≤${config.maxCompetingLayers} layers/step, ${config.affinity} affinity, ` +
        `router/diversity/balance ${config.routerLossCoef}/${config.diversityCoef}/${config.competeBalanceCoef}. Metrics on the \`${config.evalSplit}\` split.\n`,
    );
    const paired = pairedVsSmoe(config.methods, results.runs);
    if (paired.length) {
      md.push('Paired differences against `smoe` (same seeds; method − smoe; 95% t-interval, df = n − 1):\n');
      md.push('| method | metric | n | mean diff | 95% CI | p |\n|---|---|---:|---:|---|---:|');
      for (const p of paired) md.push(`| ${p.method} | ${p.metric} | ${p.n} | ${fmt(p.meanDiff)} | [${fmt(p.ci95[0])}, ${fmt(p.ci95[1])}] | ${Number.isFinite(p.p) ? p.p.toFixed(3) : '-'} |`);
    }
    const perSeed = perSeedDiffs(config.methods, results.runs, 'val_bpc');
    if (perSeed.length) {
      md.push('\nPer-seed val_bpc differences, method − smoe:\n\n| method | seed: difference |\n|---|---|');
      for (const p of perSeed) md.push(`| ${p.method} | ${p.seeds.map((sd, i) => `${sd}: ${p.diffs[i] >= 0 ? '+' : ''}${p.diffs[i].toFixed(4)}`).join(', ')} |`);
    }
    const q = quickTargets(results.runs);
    if (q.length) {
      md.push('\nTargets (seed means; issue #12):\n\n| target | observed | met |\n|---|---|---|');
      for (const t of q) md.push(`| ${t.target} | ${t.observed} | ${t.met ? 'yes' : 'no'} |`);
      md.push(
        '\n`expert_similarity` is the mean pairwise cosine similarity of all E expert outputs on held-out tokens: lower means ' +
          'less similar experts, i.e. less representation collapse (the paper\'s mechanism). CompeteSMoE\'s diversity loss ' +
          'lowers the similarity of each token\'s two winners directly on competition steps, so a lower value for compete is partly by construction.',
      );
    }
    md.push(
      '\n`step_ms` is the mean wall time of this run\'s steps (competition steps included); with several workers sharing the ' +
        'cores it measures contention as well. `efftrain bench moe` times the MoE block per router in one process. ' +
        '`train_flops` counts the multiply-adds actually spent (×6 for forward+backward), including capacity padding and competition steps.\n',
    );
    md.push(charts.map((c) => `![${c.title}](${c.file})`).join('\n\n') + '\n');
    const sections: ReportSection[] = [{ markdown: md.join('\n'), charts }];
    return sections;
  },
};

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const fmt = (x: number) => (!Number.isFinite(x) ? '-' : Math.abs(x) >= 100 ? x.toExponential(3) : x.toFixed(4));

/** Mean ± std curves of `key` over steps. */
function curve(rows: (MetricRow & { method: string; seed: number })[], methods: string[], key: string): Series[] {
  const out: Series[] = [];
  for (const m of methods) {
    const by = new Map<number, number[]>();
    for (const r of rows) {
      if (r.method !== m || typeof r.step !== 'number' || typeof r[key] !== 'number' || !Number.isFinite(r[key] as number)) continue;
      by.set(r.step, [...(by.get(r.step) ?? []), r[key] as number]);
    }
    const pts = [...by.entries()].sort((a, b) => a[0] - b[0]);
    if (pts.length) out.push({ name: m, x: pts.map(([s]) => s), y: pts.map(([, v]) => meanStd(v).mean), band: pts.map(([, v]) => meanStd(v).std) });
  }
  return out;
}

/** Paired (by seed) differences method − smoe for the main metrics. */
export function pairedVsSmoe(methods: string[], runs: RunRecord[]) {
  const out: { method: string; metric: string; n: number; meanDiff: number; ci95: [number, number]; p: number }[] = [];
  const base = new Map(runs.filter((r) => r.method === 'smoe').map((r) => [r.seed, r.metrics]));
  if (!base.size) return out;
  for (const m of methods) {
    if (m === 'smoe') continue;
    const mine = runs.filter((r) => r.method === m && base.has(r.seed));
    for (const metric of ['val_bpc', 'expert_similarity', 'router_agreement', 'load_cv', 'step_ms', 'train_flops']) {
      const a = mine.map((r) => r.metrics[metric]);
      const b = mine.map((r) => base.get(r.seed)![metric]);
      if (!a.length || a.some((v) => !Number.isFinite(v)) || b.some((v) => !Number.isFinite(v))) continue;
      const t = pairedTTest(a, b);
      out.push({ method: m, metric, n: t.n, meanDiff: t.meanDiff, ci95: t.ci95, p: t.p });
    }
  }
  return out;
}

/** Per-seed differences method − smoe of `metric` on the seeds both have (seeds ascending). */
export function perSeedDiffs(methods: string[], runs: RunRecord[], metric: string) {
  const base = new Map(runs.filter((r) => r.method === 'smoe' && Number.isFinite(r.metrics[metric])).map((r) => [r.seed, r.metrics[metric]]));
  const out: { method: string; seeds: number[]; diffs: number[] }[] = [];
  for (const m of methods) {
    if (m === 'smoe') continue;
    const mine = runs.filter((r) => r.method === m && base.has(r.seed) && Number.isFinite(r.metrics[metric])).sort((a, b) => a.seed - b.seed);
    if (mine.length) out.push({ method: m, seeds: mine.map((r) => r.seed), diffs: mine.map((r) => r.metrics[metric] - base.get(r.seed)!) });
  }
  return out;
}

/** The issue's quick targets for `compete` against `smoe` (seed means). */
export function quickTargets(runs: RunRecord[]) {
  const m = (method: string, k: string) => meanStd(runs.filter((r) => r.method === method).map((r) => r.metrics[k]).filter(Number.isFinite)).mean;
  if (!runs.some((r) => r.method === 'smoe') || !runs.some((r) => r.method === 'compete')) return [];
  const [cb, sb] = [m('compete', 'val_bpc'), m('smoe', 'val_bpc')];
  const [cs, ss] = [m('compete', 'expert_similarity'), m('smoe', 'expert_similarity')];
  const [ct, st] = [m('compete', 'step_ms'), m('smoe', 'step_ms')];
  return [
    { target: 'compete val_bpc ≤ smoe + 0.01', observed: `${cb.toFixed(4)} vs ${sb.toFixed(4)} (Δ ${(cb - sb).toFixed(4)})`, met: cb <= sb + 0.01 },
    { target: 'compete expert_similarity < smoe', observed: `${cs.toFixed(4)} vs ${ss.toFixed(4)}`, met: cs < ss },
    { target: 'compete step_ms ≤ 1.3 × smoe', observed: `${ct.toFixed(1)} vs ${st.toFixed(1)} ms (${(ct / st).toFixed(2)}x)`, met: ct <= 1.3 * st },
  ];
}
