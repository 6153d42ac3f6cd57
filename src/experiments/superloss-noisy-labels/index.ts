import * as tf from '@tensorflow/tfjs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { gatherLabels, sequentialBatches, trainValSplit } from '../../data/batching.js';
import { FASHION_MNIST_DIR, loadImageDataset, subsetSplit, type ImageSplit } from '../../data/image-dataset.js';
import { injectLabelNoise, pairPartners } from '../../data/label-noise.js';
import { UserError } from '../../errors.js';
import { crossEntropyPerSample, superLoss } from '../../methods/superloss/index.js';
import { buildMlp } from '../../models/classifiers.js';
import { fit } from '../../train/fit.js';
import { evaluateClassifier } from '../../train/metrics.js';
import { createOptimizer } from '../../train/optimizers.js';
import { constant } from '../../train/schedules.js';
import { Trainer, trainableVariables } from '../../train/trainer.js';
import { IMAGE_DATA_DESCRIPTION, imageBatch, imageTrainShape, runRng, trainImageClassifier } from '../common/image-classification.js';
import type { Experiment, MetricRow, RunContext } from '../types.js';
import { quantile } from '../../stats/index.js';
import { report } from './report.js';
import { DEFAULT_LAMBDAS, DEFAULT_NOISES, QUICK_NOISES, NoisyLabelLoss, NoisyLabelMethod, methodsFor, parseNoisyLabelMethod, sameNoiseBaseline } from './methods.js';
import { sigmaDiagnostics, sigmaHistogram } from '../../methods/superloss/index.js';
export { sigmaDiagnostics } from '../../methods/superloss/index.js';
export * from './methods.js';

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default(methodsFor(DEFAULT_NOISES)),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3]),
    data: z.string().default(FASHION_MNIST_DIR).describe(IMAGE_DATA_DESCRIPTION),
    ...imageTrainShape,
    epochs: z.number().int().positive().default(30).describe('Passes over the training pool, for every arm and λ candidate (fixed in advance, not tuned; docs/RESULTS.md).'),
    trainLimit: z.number().int().min(0).default(4000).describe('The first N training images form the (noisy) training pool; 0 = all. Small pools are memorised sooner.'),
    mlpHidden: z.array(z.number().int().positive()).default([512, 256]).describe('MLP hidden widths; no dropout or weight decay, so plain CE can memorise the noisy labels.'),
    valFraction: z.number().min(0.01).max(0.5).default(0.1).describe('Fraction of the (noisy) pool held out as validation split for λ selection (labels stay noisy).'),
    lambdas: z.array(z.number().positive()).min(1).default([...DEFAULT_LAMBDAS]).describe('SuperLoss λ candidates; the one with the best final-epoch noisy-validation accuracy is reported. One value = no selection.'),
    tau: z.union([z.literal('log'), z.number()]).default('log').describe('SuperLoss τ: `log` = log C (the paper\'s choice for classification) or a fixed number.'),
    ceSigmaLambda: z.number().positive().optional().describe('λ used to turn CE\'s per-sample losses into σ* for its σ-AUROC curves (τ as above); default the first of `lambdas`.'),
    refEpochs: z.number().int().positive().default(3).describe('Epochs of the clean-label reference model (2-fold cross-fitted) that defines "hard clean" samples.'),
    hardQuantile: z.number().min(0).max(1).default(0.9).describe('Clean samples at or above this quantile of the reference loss (among clean samples) count as hard (spec: top 10%).'),
    hardClasses: z.array(z.number().int().min(0)).default([0, 2, 4, 6]).describe('Confusable classes whose clean samples also count as hard (default: Fashion-MNIST T-shirt/top, Pullover, Coat, Shirt).'),
    confusablePairs: z.array(z.tuple([z.number().int().min(0), z.number().int().min(0)])).min(1).default([[0, 6], [2, 4]]).describe('Class pairs flipped by `conf-<rate>` noise (default: Fashion-MNIST T-shirt/top ↔ Shirt, Pullover ↔ Coat).'),
    scoreBatch: z.number().int().positive().default(1000).describe('Batch size of the per-epoch σ pass over the training set (eval mode).'),
    histBins: z.number().int().min(5).max(200).default(27).describe('Bins of the σ histograms (over [0, e]).'),
    keepCheckpoints: z.boolean().default(false).describe('Keep the per-candidate training checkpoints after a run finishes (they are only needed for --resume).'),
  })
  .strict();

export type SuperLossNoisyLabelsConfig = z.infer<typeof schema>;
export type Cfg = SuperLossNoisyLabelsConfig;

export const ceSigmaLambda = (cfg: Cfg) => cfg.ceSigmaLambda ?? cfg.lambdas[0];

/** The per-run data: a noisy training split, a noisy validation split, and the clean test set. */
interface RunData {
  train: ImageSplit;
  /** Labels the model is trained on (noisy). `train.labels` holds the true labels. */
  noisyTrain: Int32Array;
  isNoisy: Uint8Array;
  val: ImageSplit;
  noisyVal: Int32Array;
  test: ImageSplit;
  numClasses: number;
  actualRate: number;
}

/** Per-sample CE (against `labels`) and argmax prediction of `model` in eval mode, batched, inside tf.tidy. */
function scoreSamples(model: tf.LayersModel, split: ImageSplit, labels: Int32Array, batch: number): { loss: Float32Array; pred: Int32Array } {
  const loss = new Float32Array(split.n);
  const pred = new Int32Array(split.n);
  for (const idx of sequentialBatches(split.n, batch)) {
    const [l, p] = tf.tidy(() => {
      const logits = model.apply(imageBatch(split, idx), { training: false }) as tf.Tensor2D;
      const y = tf.tensor1d(gatherLabels(labels, idx), 'int32');
      return [crossEntropyPerSample(logits, y), tf.argMax(logits, 1)];
    });
    loss.set(l.dataSync() as Float32Array, idx[0]);
    pred.set(p.dataSync() as Int32Array, idx[0]);
    l.dispose();
    p.dispose();
  }
  return { loss, pred };
}

/** The hard-clean masks of one run (all restricted to clean samples). */
export interface HardClean {
  /** The hard-clean group: `hardLoss` OR `hardClass`. */
  isHard: Uint8Array;
  /** Clean samples whose cross-fitted reference loss is in the top (1 − hardQuantile) of the clean samples' losses. */
  hardLoss: Uint8Array;
  /** Clean samples of the confusable classes (`hardClasses`). */
  hardClass: Uint8Array;
}

/**
 * The "hard clean" group (for the NeurIPS 2020 reviewers' question: can σ* tell hard clean samples from noisy ones?): clean samples whose loss under a reference model trained on the
 * clean labels is in the top (1 − q) of the clean samples' reference losses, plus the clean samples of the confusable
 * classes. Pure function of the reference losses, so it is testable without training.
 */
export function hardCleanGroups(refLoss: ArrayLike<number>, trueLabels: Int32Array, isNoisy: Uint8Array, hardQuantile: number, hardClasses: readonly number[]): HardClean {
  const n = trueLabels.length;
  const cleanLosses: number[] = [];
  for (let i = 0; i < n; i++) if (!isNoisy[i]) cleanLosses.push(refLoss[i]);
  const thr = cleanLosses.length ? quantile(cleanLosses, hardQuantile) : Infinity;
  const classes = new Set(hardClasses);
  const hardLoss = new Uint8Array(n);
  const hardClass = new Uint8Array(n);
  const isHard = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (isNoisy[i]) continue;
    hardLoss[i] = refLoss[i] >= thr ? 1 : 0;
    hardClass[i] = classes.has(trueLabels[i]) ? 1 : 0;
    isHard[i] = hardLoss[i] | hardClass[i];
  }
  return { isHard, hardLoss, hardClass };
}

/**
 * Trains the clean-label reference MLP with 2-fold cross-fitting (each half of the training split is scored by a
 * model trained on the other half, so a sample's difficulty is never measured by a model that saw it), `refEpochs`
 * epochs, Adam, constant lr, and returns the hard-clean groups built from its per-sample losses on the true labels.
 */
function hardCleanMask(ctx: RunContext<Cfg>, data: RunData): HardClean & { refAcc: number } {
  const cfg = ctx.config;
  const { train } = data;
  const rng = runRng(ctx.seed, `${ctx.experiment}/reference`);
  const perm = rng.permutation(train.n);
  const half = Math.floor(train.n / 2);
  const folds = [perm.slice(0, half), perm.slice(half)];
  const refLoss = new Float32Array(train.n);
  let correct = 0;
  const shape = { height: train.height, width: train.width, channels: 1 };
  for (let f = 0; f < 2; f++) {
    const fitRows = folds[f];
    const scoreRows = folds[1 - f];
    const model = buildMlp(shape, data.numClasses, cfg.mlpHidden, rng);
    const trainer = new Trainer({ params: trainableVariables(model), optimizer: createOptimizer('adam'), schedule: constant(cfg.lr) });
    fit({
      trainer,
      numTrain: fitRows.length,
      batchSize: Math.min(cfg.batchSize, fitRows.length),
      epochs: cfg.refEpochs,
      rng,
      lossFn: (b) => {
        const rows = Int32Array.from(b, (i) => fitRows[i]);
        const logits = model.apply(imageBatch(train, rows), { training: true }) as tf.Tensor2D;
        return tf.mean(crossEntropyPerSample(logits, tf.tensor1d(gatherLabels(train.labels, rows), 'int32'))) as tf.Scalar;
      },
      onStep: (s) => {
        if (s.batchInEpoch === s.batchesPerEpoch) ctx.progress({ epoch: s.epoch + 1, epochs: cfg.refEpochs, loss: s.loss, message: `clean-label reference model, fold ${f + 1}/2` });
      },
    });
    const sub = subsetSplit(train, scoreRows);
    const { loss, pred } = scoreSamples(model, sub, sub.labels, cfg.scoreBatch);
    for (let k = 0; k < scoreRows.length; k++) {
      refLoss[scoreRows[k]] = loss[k];
      if (pred[k] === sub.labels[k]) correct++;
    }
    model.dispose();
    trainer.optimizer.dispose();
  }
  return { ...hardCleanGroups(refLoss, train.labels, data.isNoisy, cfg.hardQuantile, cfg.hardClasses), refAcc: train.n ? correct / train.n : NaN };
}

interface CandidateResult {
  lambda: number | null;
  rows: MetricRow[];
  hists: MetricRow[];
  final: Record<string, number>;
  valAcc: number;
  testAcc: number;
  params: number;
}

/**
 * Trains one model (CE, or SuperLoss with one λ) on the noisy training split for `epochs` epochs, with per-epoch
 * test accuracy, noisy-validation accuracy and σ-diagnostics over the whole training split (eval mode).
 * Rows are buffered (only the selected candidate's curves go to metrics.jsonl).
 */
function trainCandidate(ctx: RunContext<Cfg>, data: RunData, hard: HardClean, loss: NoisyLabelLoss, lambda: number): CandidateResult {
  const cfg = ctx.config;
  const tag = loss === 'ce' ? 'ce' : `lambda-${lambda}`;
  const rows: MetricRow[] = [];
  const hists: Record<string, MetricRow> = {};
  const sub: RunContext<Cfg> = {
    ...ctx,
    artifactsDir: join(ctx.artifactsDir, tag),
    log: (r) => rows.push(r),
    progress: (p) => ctx.progress({ ...p, message: `${loss === 'ce' ? '' : `λ=${lambda} `}${p.message ?? ''}`.trim() }),
  };
  const C = data.numClasses;
  const tau = cfg.tau === 'log' ? Math.log(C) : cfg.tau;
  const sigmaLambda = loss === 'ce' ? ceSigmaLambda(cfg) : lambda;
  // Same init and batch order for every candidate and for CE: the model RNG depends only on the seed.
  const rng = runRng(ctx.seed, ctx.experiment);
  const shape = { height: data.train.height, width: data.train.width, channels: 1 };
  const model = buildMlp(shape, C, cfg.mlpHidden, rng);
  const sl = loss === 'superloss' ? superLoss({ lambda, tau: cfg.tau === 'log' ? 'log' : cfg.tau, numClasses: C }) : null;
  const isHard = hard.isHard;
  const diagInput = { noisyLabels: data.noisyTrain, trueLabels: data.train.labels, isNoisy: data.isNoisy, isHard, hardParts: { hardloss: hard.hardLoss, hardclass: hard.hardClass } };
  const diagnose = (epoch: number): Record<string, number> => {
    const { loss: l, pred } = scoreSamples(model, data.train, data.noisyTrain, cfg.scoreBatch);
    const d = sigmaDiagnostics(l, pred, diagInput, tau, sigmaLambda);
    if (epoch === 1 || epoch === cfg.epochs) {
      const h = sigmaHistogram(d.sigma, data.isNoisy, isHard, cfg.histBins);
      hists[String(epoch)] = { hist_epoch: epoch, hist_lambda: sigmaLambda, hist_bins: cfg.histBins, ...h };
    }
    const val = evaluateClassifier(data.val.n, cfg.scoreBatch, (idx) => model.apply(imageBatch(data.val, idx), { training: false }) as tf.Tensor2D, data.noisyVal);
    return { val_acc: val.acc, val_loss: val.loss, ...d.metrics };
  };
  // Epoch 0: the untrained model (σ at initialisation), for the start of the curves.
  const test0 = evaluateClassifier(cfg.testLimit > 0 ? Math.min(cfg.testLimit, data.test.n) : data.test.n, 500, (idx) => model.apply(imageBatch(data.test, idx), { training: false }) as tf.Tensor2D, data.test.labels);
  rows.push({ epoch: 0, step: 0, test_acc: test0.acc, test_loss: test0.loss, ...diagnose(0) });
  const r = trainImageClassifier({
    ctx: sub,
    model,
    train: data.train,
    trainLabels: data.noisyTrain,
    test: data.test,
    numClasses: C,
    rng,
    loss: sl ? (logits, y) => sl.compute(crossEntropyPerSample(logits, y), { update: true }).loss : undefined,
    epochMetrics: diagnose,
    extraState: {
      get: () => ({ hists, superloss: sl?.getState() ?? null }),
      set: (s) => {
        Object.assign(hists, s.hists as Record<string, MetricRow>);
        if (sl && s.superloss) sl.setState(s.superloss as ReturnType<typeof sl.getState>);
      },
    },
  });
  const params = model.countParams();
  model.dispose();
  r.trainer.optimizer.dispose();
  const last = r.history[r.history.length - 1] ?? {};
  // Early stopping on the noisy validation split (a legitimate, test-free baseline): earliest best val_acc.
  let best = r.history[0];
  for (const h of r.history) if (h.val_acc > best.val_acc) best = h;
  const final: Record<string, number> = { test_acc: last.test_acc ?? NaN, test_acc_es: best?.test_acc ?? NaN, test_acc_best: Math.max(...r.history.map((h) => h.test_acc)) };
  const pick = ['val_acc', 'sigma_auroc', 'sigma_auroc_hard', 'negloss_auroc', 'negloss_auroc_hard', 'negloss_auroc_hardloss', 'negloss_auroc_hardclass', 'noisy_fit', 'lowsigma_precision', 'noisy_sigma_gt1', 'noisy_sigma_clamped'];
  for (const k of pick) if (typeof last[k] === 'number') final[k] = last[k];
  final.es_epoch = best?.epoch ?? NaN;
  if (!cfg.keepCheckpoints) rmSync(sub.artifactsDir, { recursive: true, force: true });
  return {
    lambda: loss === 'ce' ? null : lambda,
    rows,
    hists: Object.values(hists).sort((a, b) => (a.hist_epoch as number) - (b.hist_epoch as number)),
    final,
    valAcc: last.val_acc ?? NaN,
    testAcc: last.test_acc ?? NaN,
    params,
  };
}

/** Builds the run's data: the first `trainLimit` training images, label noise, a seeded train/val split. */
function buildRunData(ctx: RunContext<Cfg>, m: NoisyLabelMethod): RunData {
  const cfg = ctx.config;
  const ds = loadImageDataset(cfg.data);
  const nPool = cfg.trainLimit > 0 ? Math.min(cfg.trainLimit, ds.train.n) : ds.train.n;
  const poolLabels = ds.train.labels.slice(0, nPool);
  // Noise and split depend on (seed, noise) only, so CE and SuperLoss see exactly the same noisy data.
  const noisy =
    m.kind === 'clean'
      ? { labels: poolLabels, noisy: new Uint8Array(nPool), actualRate: 0 }
      : injectLabelNoise(poolLabels, ds.numClasses, m.kind, m.rate, runRng(ctx.seed, `${ctx.experiment}/noise/${m.noise}`), { pairs: cfg.confusablePairs });
  const { train: trIdx, val: valIdx } = trainValSplit(nPool, cfg.valFraction, runRng(ctx.seed, `${ctx.experiment}/split`));
  const train = subsetSplit(ds.train, trIdx);
  const val = subsetSplit(ds.train, valIdx);
  let nNoisy = 0;
  const isNoisy = Uint8Array.from(trIdx, (i) => noisy.noisy[i]);
  for (const v of isNoisy) nNoisy += v;
  return {
    train,
    noisyTrain: gatherLabels(noisy.labels, trIdx),
    isNoisy,
    val,
    noisyVal: gatherLabels(noisy.labels, valIdx),
    test: ds.test,
    numClasses: ds.numClasses,
    actualRate: train.n ? nNoisy / train.n : 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Report

/**
 * `superloss-noisy-labels`: SuperLoss (Castells et al., NeurIPS 2020) vs plain cross-entropy on an image
 * classifier trained with corrupted labels, and a test of the reviewers' question whether the loss is a valid
 * difficulty measure.
 *
 * - Data: Fashion-MNIST (or any MNIST-format IDX directory via `--data DIR`). Training pool = the first
 *   `trainLimit` training images; labels corrupted with symmetric (`sym-r`), pair-flip c → c+1 (`pair-r`) or
 *   confusable-pair (`conf-r`: T-shirt ↔ Shirt, Pullover ↔ Coat by default) noise, seeded by (seed, noise) so CE and
 *   SuperLoss see identical noise. The clean test set is never used for choices.
 * - Methods: `<loss>@<noise>`, loss ∈ {ce, superloss}, noise ∈ {sym-r, pair-r, conf-r, clean}; default grid sym-0.2,
 *   sym-0.4, sym-0.6, pair-0.4, conf-0.4. Metric `test_acc` (final epoch), mean ± std over seeds.
 * - λ: chosen per (noise, seed) among `lambdas` by final-epoch accuracy on a validation split carved from the noisy
 *   pool (labels stay noisy); each candidate is trained for the full schedule, so the chosen candidate's run is the
 *   reported run. One λ in `lambdas` = no selection (the quick preset).
 * - Diagnostics after every epoch (and at init): per-sample loss and σ* for every training sample (eval mode,
 *   batched, tf.tidy); AUROC of −loss (`negloss_auroc`, tie-free) and of σ* (`sigma_auroc`, ties at the clamp) for
 *   clean vs noisy and hard clean vs noisy — hard clean: top 10% loss under a 2-fold cross-fitted
 *   clean-label reference model, or a confusable class (`hardClasses`) — memorisation of noisy labels, σ histograms
 *   at the first and last epoch. CE runs get σ* from their own losses with the same τ and λ = `ceSigmaLambda`.
 * - Report: chosen-λ table, a generated AUROC table (metric @ epoch), SuperLoss − CE paired t-CIs, the hard-clean
 *   gap with t-CIs, curves, σ histograms, and a generated statement whose every clause rests on a CI.
 * - Quick preset: sym-0.4, pair-0.4 and conf-0.4, 3 seeds, λ fixed to 0.1, pool = first 2000 training images, first
 *   5000 test images. The full preset uses the default pool and test set, adds sym-0.2 and sym-0.6, and selects λ.
 * - Defaults: pool = first 4000 training images (3600 train / 400 val), MLP 512-256 without regularisation, Adam 1e-3
 *   with cosine decay, batch 128, 30 epochs — enough for CE to memorise a large part of the noisy labels.
 */
export const superlossNoisyLabels: Experiment<Cfg> = {
  name: 'superloss-noisy-labels',
  description: 'SuperLoss vs cross-entropy under label noise on Fashion-MNIST, with σ as a noisy-label detector (test accuracy, σ-AUROC)',
  schema: schema as z.ZodType<Cfg>,
  quick: {
    methods: methodsFor(QUICK_NOISES),
    lambdas: [0.1],
    trainLimit: 2000,
    testLimit: 5000,
  },
  knownMethods: (cfg) => {
    const noises = new Set(DEFAULT_NOISES);
    for (const m of cfg.methods) {
      try {
        noises.add(parseNoisyLabelMethod(m).noise);
      } catch {
        // unknown names are reported by the runner with this list
      }
    }
    return methodsFor([...noises]);
  },
  validate: (cfg) => {
    const ds = loadImageDataset(cfg.data);
    for (const m of cfg.methods) parseNoisyLabelMethod(m);
    for (const c of cfg.hardClasses) if (c >= ds.numClasses) throw new UserError(`config key hardClasses: class ${c} does not exist in ${cfg.data} (${ds.numClasses} classes)`);
    try {
      pairPartners(cfg.confusablePairs, ds.numClasses);
    } catch (e) {
      throw new UserError(`config key confusablePairs: ${(e as Error).message} (${cfg.data})`);
    }
  },
  async run(ctx) {
    const cfg = ctx.config;
    const m = parseNoisyLabelMethod(ctx.method);
    const data = buildRunData(ctx, m);
    const hard = hardCleanMask(ctx, data);
    const { isHard, refAcc } = hard;
    const candidates = m.loss === 'ce' ? [NaN] : cfg.lambdas;
    const results: CandidateResult[] = [];
    for (const lambda of candidates) results.push(trainCandidate(ctx, data, hard, m.loss, lambda));
    // Select by final noisy-validation accuracy (first candidate wins ties).
    let chosen = results[0];
    for (const r of results) if (r.valAcc > chosen.valAcc) chosen = r;
    for (const row of chosen.rows) ctx.log(row);
    for (const h of chosen.hists) ctx.log({ kind: 'diagnostic', name: 'sigma_hist', ...h });
    if (m.loss === 'superloss') {
      for (const r of results) ctx.log({ kind: 'selection', select_lambda: r.lambda, select_val_acc: r.valAcc, select_test_acc: r.testAcc, chosen: r === chosen });
    }
    let nHard = 0;
    let nClean = 0;
    let nHardLoss = 0;
    let nHardClass = 0;
    for (let i = 0; i < data.train.n; i++) {
      nHard += isHard[i];
      nHardLoss += hard.hardLoss[i];
      nHardClass += hard.hardClass[i];
      nClean += 1 - data.isNoisy[i];
    }
    const metrics: Record<string, number> = { ...chosen.final };
    if (m.loss === 'superloss') metrics.lambda = chosen.lambda as number;
    metrics.sigma_lambda = m.loss === 'superloss' ? (chosen.lambda as number) : ceSigmaLambda(cfg);
    Object.assign(metrics, {
      noise_rate: data.actualRate,
      hard_clean_frac: nClean ? nHard / nClean : NaN,
      hardloss_frac: nClean ? nHardLoss / nClean : NaN,
      hardclass_frac: nClean ? nHardClass / nClean : NaN,
      ref_acc: refAcc,
      tensors_after: tf.memory().numTensors,
    });
    return { metrics };
  },
  metrics: (cfg) => ({ primary: 'test_acc', higherIsBetter: true, baseline: sameNoiseBaseline(cfg.methods), diagnostics: ['es_epoch', 'lambda', 'sigma_lambda', 'noise_rate', 'hard_clean_frac', 'hardloss_frac', 'hardclass_frac', 'ref_acc', 'tensors_after'] }),
  methodPatterns: ['<ce|superloss>@<clean|sym-<rate>|pair-<rate>|conf-<rate>>'],
  derive: ({ rows }) => {
    const chosen: Record<string, Record<string, number>> = {};
    for (const r of rows) {
      if (r.chosen === true && typeof r.select_lambda === 'number') (chosen[r.method] ??= {})[String(r.seed)] = r.select_lambda;
    }
    return { values: { chosenLambda: chosen } };
  },
  report,
};
