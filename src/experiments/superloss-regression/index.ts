import * as tf from '@tensorflow/tfjs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { gatherRows, sequentialBatches, trainValSplit } from '../../data/batching.js';
import { columnStats, injectTargetOutliers, loadTabular, standardizeColumns, type TabularDataset } from '../../data/tabular.js';
import { UserError } from '../../errors.js';
import { l1PerSample, optimalConfidence, superLoss } from '../../methods/superloss/index.js';
import { fit } from '../../train/fit.js';
import { glorot, heNormal } from '../../train/layers.js';
import { auroc } from '../../train/metrics.js';
import { createOptimizer } from '../../train/optimizers.js';
import { createSchedule } from '../../train/schedules.js';
import { Trainer, trainableVariables } from '../../train/trainer.js';
import { runRng } from '../common/image-classification.js';
import type { Experiment, MetricRow, RunContext } from '../types.js';
import { median } from '../../stats/index.js';
import { fileCheckpointStore } from '../../node/checkpoint-file.js';
import { DEFAULT_OUTLIER_RATES, RegressionLoss, RegressionMethod, methodsFor, parseRegressionMethod, sameRateBaseline } from './methods.js';
import { report } from './report.js';
export * from './methods.js';

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default(methodsFor(DEFAULT_OUTLIER_RATES)),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    data: z.string().default('').describe('Data file (JSON records or CSV); \'\' = vega-datasets\' cars.json (needs `npm install vega-datasets`).'),
    target: z.string().default('Miles_per_Gallon').describe('Numeric column to predict; rows where it (or a used feature) is missing are dropped.'),
    exclude: z.array(z.string()).default(['Name']).describe('Columns never used as features. Other columns are used: numeric as is, ISO dates, text with few distinct values one-hot (text with many is dropped).'),
    testFraction: z.number().min(0.05).max(0.5).default(0.2).describe('Fraction of rows held out as the clean test set (seeded per seed).'),
    outlierBelow: z.number().min(0).default(0).describe('Outliers ~ U(min − below·R, max + above·R) of the clean training targets, R = max − min.'),
    outlierAbove: z.number().min(0).default(2).describe('Upper reach of the outlier draw, in ranges R above the clean maximum (see outlierBelow); with the defaults a third of the outliers fall inside the real range, two thirds above it.'),
    hidden: z.array(z.number().int().positive()).default([32]).describe('Hidden widths of the regression MLP (ReLU). 32 was chosen in an earlier session on test MAE, not on validation, and not re-chosen (docs/RESULTS.md).'),
    epochs: z.number().int().positive().default(100).describe('Passes over the training rows for every loss and candidate (fixed, not tuned); metrics are those of the last epoch.'),
    batchSize: z.number().int().positive().default(32).describe('Rows per optimizer step (at most the number of training rows).'),
    lrs: z.array(z.number().positive()).min(1).default([1e-3, 3e-3, 1e-2]).describe('Learning-rate candidates, tuned on the validation split for EVERY loss (with its own knob below).'),
    optimizer: z.enum(['adam', 'adamw', 'sgd', 'momentum', 'nesterov']).default('adam').describe('adam, adamw (decoupled weight decay 0.01), sgd, momentum or nesterov (SGD, μ = 0.9); no other weight decay here.'),
    schedule: z.enum(['constant', 'cosine', 'step', 'plateau']).default('cosine').describe('LR schedule from the candidate lr, no warm-up: constant; cosine (to 0 at the last step); step (× 0.1 every third of the steps); plateau (× 0.1 when train_loss has not improved for 2 epochs).'),
    smoothL1Betas: z.array(z.number().min(0)).min(1).default([0.5, 1, 2]).describe('Smooth-L1 β candidates of the `smoothl1` baseline (robust-standardised target units), tuned on validation with the LR.'),
    smoothL1Beta: z.number().min(0).default(1).describe('β of the smooth-L1 inside SuperLoss (fixed; SuperLoss\'s tuned knob is λ).'),
    lambdas: z.array(z.number().positive()).min(1).default([0.1, 0.25, 1, 4]).describe('SuperLoss λ candidates, tuned with the LR per (rate, seed) by the median absolute error on the corrupted validation split.'),
    valFraction: z.number().min(0.05).max(0.5).default(0.2).describe('Fraction of the (corrupted) training rows held out for the choices (LR, β, λ); every loss trains on the rest.'),
    emaMomentum: z.number().min(0).max(0.999).default(0.9).describe('SuperLoss EMA momentum for τ.'),
    evalEvery: z.number().int().positive().default(10).describe('Log test metrics every N epochs (and at the last epoch).'),
    keepCheckpoints: z.boolean().default(false).describe('Keep each candidate\'s training checkpoint after the run finishes (only --resume needs them; false deletes them).'),
  })
  .strict();

export type SuperLossRegressionConfig = z.infer<typeof schema>;
export type Cfg = SuperLossRegressionConfig;

const cache = new Map<string, TabularDataset>();
export function loadData(cfg: Cfg): TabularDataset {
  const key = JSON.stringify([cfg.data, cfg.target, cfg.exclude]);
  let ds = cache.get(key);
  if (!ds) {
    ds = loadTabular(cfg.data, { target: cfg.target, exclude: cfg.exclude });
    cache.set(key, ds);
  }
  return ds;
}

/**
 * Per-sample smooth-L1 for rank-1 predictions/targets, written with `tf.minimum` so that it is differentiable on
 * every backend: with d = |ŷ − y| and m = min(d, β), ℓ = 0.5·m²/β + (d − m) (= 0.5·d²/β for d < β, d − 0.5·β
 * otherwise; |d| for β = 0). Same values as the library's `smoothL1PerSample`, whose `tf.where(tf.less(…))`
 * form has no gradient in tfjs 4.22 ("gradient function not found for Less").
 */
export function smoothL1Rank1(pred: tf.Tensor1D, target: tf.Tensor1D, beta: number): tf.Tensor1D {
  return tf.tidy(() => {
    const d = tf.abs(tf.sub(pred, target));
    if (beta === 0) return d as tf.Tensor1D;
    const m = tf.minimum(d, beta);
    return tf.add(tf.div(tf.mul(tf.square(m), 0.5), beta), tf.sub(d, m)) as tf.Tensor1D;
  });
}

function buildRegressor(d: number, hidden: number[], rng: ReturnType<typeof runRng>): tf.LayersModel {
  const x = tf.input({ shape: [d] });
  let h = x;
  for (const units of hidden) h = tf.layers.dense({ units, activation: 'relu', kernelInitializer: heNormal(rng) }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 1, kernelInitializer: glorot(rng) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: out, name: 'regressor' });
}

/** Predictions (in standardised target units) for all rows of a row-major feature matrix, batched. */
function predictAll(model: tf.LayersModel, x: Float32Array, n: number, d: number): Float32Array {
  const out = new Float32Array(n);
  for (const idx of sequentialBatches(n, 1024)) {
    const p = tf.tidy(() => tf.reshape(model.apply(tf.tensor2d(gatherRows(x, d, idx), [idx.length, d]), { training: false }) as tf.Tensor, [-1]));
    out.set(p.dataSync() as Float32Array, idx[0]);
    p.dispose();
  }
  return out;
}

/**
 * Everything a candidate may see while it is trained and selected: fit rows (corrupted targets), the corrupted
 * validation split, and the TEST FEATURES (for per-epoch prediction curves). Test targets are not in here: they
 * live in {@link TestTargets} and are only read after selection, to score stored predictions.
 */
export interface SelectionData {
  d: number;
  nFit: number;
  xFit: Float32Array;
  /** Corrupted fit targets in robust-standardised units. */
  zFit: Float32Array;
  /** True (clean) targets of the fit rows, for the `train_clean_mae` diagnostic (training rows, never test rows). */
  yFitClean: Float32Array;
  isClean: Uint8Array;
  nVal: number;
  xVal: Float32Array;
  /** Corrupted validation targets (target units). */
  yVal: Float32Array;
  nTest: number;
  xTest: Float32Array;
  center: number;
  scale: number;
  outlierRate: number;
  outlierRange: [number, number];
}

/** The clean test targets (target units), in the row order of `SelectionData.xTest`. */
export interface TestTargets {
  yTest: Float32Array;
}

/** Test rows and training-pool rows of one seed (a seeded permutation of all rows; the first ⌈testFraction·n⌉ are test). */
export function splitRows(n: number, testFraction: number, seed: number, experiment = 'superloss-regression'): { testRows: Int32Array; poolRows: Int32Array } {
  const perm = runRng(seed, `${experiment}/split`).permutation(n);
  const nTest = Math.max(1, Math.round(n * testFraction));
  return { testRows: perm.slice(0, nTest), poolRows: perm.slice(nTest) };
}

function prepare(ctx: RunContext<Cfg>, m: RegressionMethod): { sel: SelectionData; test: TestTargets } {
  const cfg = ctx.config;
  const ds = loadData(cfg);
  const { d } = ds;
  // Split and outliers depend on (seed, rate) only: every loss and every candidate sees the same data.
  const { testRows, poolRows } = splitRows(ds.n, cfg.testFraction, ctx.seed, ctx.experiment);
  const yPoolClean = Float32Array.from(poolRows, (i) => ds.y[i]);
  const out = injectTargetOutliers(yPoolClean, m.rate, runRng(ctx.seed, `${ctx.experiment}/outliers/${m.rate}`), { below: cfg.outlierBelow, above: cfg.outlierAbove });
  // The validation split is carved from the corrupted training pool (it holds outliers at the same rate).
  const { train: fitIdx, val: valIdx } = trainValSplit(poolRows.length, cfg.valFraction, runRng(ctx.seed, `${ctx.experiment}/val`));
  const fitRows = Int32Array.from(fitIdx, (k) => poolRows[k]);
  const valRows = Int32Array.from(valIdx, (k) => poolRows[k]);
  const stats = columnStats(ds.x, d, fitRows);
  const yFit = Float32Array.from(fitIdx, (k) => out.y[k]);
  // Robust target standardisation from the corrupted fit targets: median and 1.4826·MAD.
  const center = median(yFit);
  const mad = median(Array.from(yFit, (v) => Math.abs(v - center)));
  const scale = mad > 1e-9 ? 1.4826 * mad : 1;
  return {
    sel: {
      d,
      nFit: fitRows.length,
      xFit: standardizeColumns(ds.x, d, fitRows, stats),
      zFit: Float32Array.from(yFit, (v) => (v - center) / scale),
      yFitClean: Float32Array.from(fitIdx, (k) => yPoolClean[k]),
      isClean: Uint8Array.from(fitIdx, (k) => 1 - out.outlier[k]),
      nVal: valRows.length,
      xVal: standardizeColumns(ds.x, d, valRows, stats),
      yVal: Float32Array.from(valIdx, (k) => out.y[k]),
      nTest: testRows.length,
      xTest: standardizeColumns(ds.x, d, testRows, stats),
      center,
      scale,
      outlierRate: out.actualRate,
      outlierRange: out.range,
    },
    test: { yTest: Float32Array.from(testRows, (i) => ds.y[i]) },
  };
}

/** One point of a loss's tuning grid: the LR for every loss, plus β (smooth-L1) or λ (SuperLoss). */
export interface RegKnobs {
  lr: number;
  beta: number | null;
  lambda: number | null;
}

/** The tuning grid of one loss: L1 → LRs; smooth-L1 → LRs × βs; SuperLoss → LRs × λs (inner β fixed). */
export function tuningGrid(cfg: Pick<Cfg, 'lrs' | 'smoothL1Betas' | 'lambdas'>, loss: RegressionLoss): RegKnobs[] {
  if (loss === 'l1') return cfg.lrs.map((lr) => ({ lr, beta: null, lambda: null }));
  if (loss === 'smoothl1') return cfg.lrs.flatMap((lr) => cfg.smoothL1Betas.map((beta) => ({ lr, beta, lambda: null })));
  return cfg.lrs.flatMap((lr) => cfg.lambdas.map((lambda) => ({ lr, beta: null, lambda })));
}

/**
 * The selection rule: lowest median absolute error against the corrupted validation targets (robust to < 50%
 * outliers, so it needs no clean data); the first candidate wins ties. Takes validation scores only.
 */
export function selectByValidation(valMedAE: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < valMedAE.length; i++) if (valMedAE[i] < valMedAE[best] || !Number.isFinite(valMedAE[best])) best = i;
  return best;
}

interface RegCandidate {
  knobs: RegKnobs;
  /** Epoch rows without test metrics (added after selection from `testPreds`). */
  rows: MetricRow[];
  /** Test-set predictions (target units) at every logged epoch. */
  testPreds: Map<number, Float32Array>;
  final: Record<string, number>;
  /** Median |ŷ − y| on the corrupted validation targets at the last epoch (the selection criterion). */
  valMedAE: number;
}

const tagOf = (loss: RegressionLoss, k: RegKnobs) => `${loss}-lr${k.lr}${k.beta !== null ? `-beta${k.beta}` : ''}${k.lambda !== null ? `-lambda${k.lambda}` : ''}`;

/** Trains one regressor (one loss, one grid point) on `data`; it sees test features, never test targets. */
function trainOne(ctx: RunContext<Cfg>, data: SelectionData, loss: RegressionLoss, knobs: RegKnobs): RegCandidate {
  const cfg = ctx.config;
  const { d, nFit, center, scale } = data;
  const tag = tagOf(loss, knobs);
  const rng = runRng(ctx.seed, ctx.experiment);
  const model = buildRegressor(d, cfg.hidden, rng);
  const batchSize = Math.min(cfg.batchSize, nFit);
  const steps = Math.max(1, Math.floor(nFit / batchSize)) * cfg.epochs;
  const ckptPath = join(ctx.artifactsDir, tag, 'checkpoint.safetensors');
  const trainer = new Trainer({
    params: trainableVariables(model),
    optimizer: createOptimizer(cfg.optimizer),
    schedule: createSchedule(cfg.schedule, knobs.lr, steps),
    lastCheckpoint: () => ckptPath,
  });
  const beta = loss === 'smoothl1' ? (knobs.beta as number) : cfg.smoothL1Beta;
  const sl = loss === 'superloss' ? superLoss({ lambda: knobs.lambda ?? 1, tau: 'ema', emaMomentum: cfg.emaMomentum }) : null;
  const perSample = (pred: tf.Tensor1D, y: tf.Tensor1D) => (loss === 'l1' ? l1PerSample(pred, y) : smoothL1Rank1(pred, y, beta));
  const hasOutliers = data.isClean.some((c) => c === 0);
  const rows: MetricRow[] = [];
  const testPreds = new Map<number, Float32Array>();
  let valMedAE = NaN;

  const evaluate = (epoch: number): Record<string, number> => {
    const last = epoch === cfg.epochs;
    if (epoch % cfg.evalEvery !== 0 && !last) return {};
    testPreds.set(epoch, Float32Array.from(predictAll(model, data.xTest, data.nTest, d), (p) => p * scale + center));
    const pVal = predictAll(model, data.xVal, data.nVal, d);
    const valAE = Array.from(pVal, (p, i) => Math.abs(p * scale + center - data.yVal[i]));
    const pFit = predictAll(model, data.xFit, nFit, d);
    let cleanAe = 0;
    let nClean = 0;
    const negLoss = new Float64Array(nFit);
    const sigma = new Float64Array(nFit);
    for (let i = 0; i < nFit; i++) {
      if (data.isClean[i]) {
        cleanAe += Math.abs(pFit[i] * scale + center - data.yFitClean[i]);
        nClean++;
      }
      // Per-sample training loss against the corrupted target (standardised units), eval mode.
      const a = Math.abs(pFit[i] - data.zFit[i]);
      const l = loss === 'l1' || beta === 0 ? a : a < beta ? (0.5 * a * a) / beta : a - 0.5 * beta;
      negLoss[i] = -l;
      if (sl && sl.tau !== null) sigma[i] = optimalConfidence(l, sl.tau, sl.lambda);
    }
    const row: Record<string, number> = {
      train_clean_mae: nClean ? cleanAe / nClean : NaN,
      val_medae: median(valAE),
      negloss_auroc: hasOutliers ? auroc(negLoss, data.isClean) : NaN,
    };
    if (sl && sl.tau !== null) {
      row.sigma_auroc = hasOutliers ? auroc(sigma, data.isClean) : NaN;
      row.tau = sl.tau;
    }
    return row;
  };

  const { history } = fit({
    trainer,
    numTrain: nFit,
    batchSize,
    epochs: cfg.epochs,
    rng,
    lossFn: (idx) => {
      const x = tf.tensor2d(gatherRows(data.xFit, d, idx), [idx.length, d]);
      const y = tf.tensor1d(Float32Array.from(idx, (i) => data.zFit[i]));
      const pred = tf.reshape(model.apply(x, { training: true }) as tf.Tensor, [-1]) as tf.Tensor1D;
      const l = perSample(pred, y);
      return sl ? sl.compute(l, { update: true }).loss : (tf.mean(l) as tf.Scalar);
    },
    evaluate,
    onEpoch: (row) => {
      if (typeof row.val_medae !== 'number') return;
      rows.push(row);
      valMedAE = row.val_medae;
      ctx.progress({ epoch: row.epoch, epochs: cfg.epochs, loss: row.train_loss, message: `${tag} val_medae ${row.val_medae.toFixed(3)}` });
    },
    checkpoint: { store: fileCheckpointStore(ckptPath), resume: ctx.resume },
    extraState: sl ? { get: () => ({ superloss: sl.getState() }), set: (s) => sl.setState(s.superloss as ReturnType<typeof sl.getState>) } : undefined,
  });
  model.dispose();
  trainer.optimizer.dispose();
  if (!cfg.keepCheckpoints) rmSync(join(ctx.artifactsDir, tag), { recursive: true, force: true });
  const last = history[history.length - 1] ?? {};
  const final: Record<string, number> = { train_clean_mae: last.train_clean_mae ?? NaN, val_medae: last.val_medae ?? NaN };
  if (hasOutliers) final.negloss_auroc = last.negloss_auroc ?? NaN;
  if (sl) {
    if (hasOutliers) final.sigma_auroc = last.sigma_auroc ?? NaN;
    final.tau = last.tau ?? NaN;
  }
  return { knobs, rows, testPreds, final, valMedAE };
}

/** Clean-test MAE and RMSE of stored predictions (target units). */
export function scoreTest(pred: Float32Array, test: TestTargets): { test_mae: number; test_rmse: number } {
  let ae = 0;
  let se = 0;
  for (let i = 0; i < pred.length; i++) {
    const e = pred[i] - test.yTest[i];
    ae += Math.abs(e);
    se += e * e;
  }
  return { test_mae: ae / pred.length, test_rmse: Math.sqrt(se / pred.length) };
}

async function run(ctx: RunContext<Cfg>): Promise<{ metrics: Record<string, number> }> {
  const cfg = ctx.config;
  const m = parseRegressionMethod(ctx.method);
  const { sel, test } = prepare(ctx, m);
  // Training and selection see `sel` only; the test targets are read below, after the choice is made.
  const cands = tuningGrid(cfg, m.loss).map((k) => trainOne(ctx, sel, m.loss, k));
  const chosen = cands[selectByValidation(cands.map((c) => c.valMedAE))];
  const lastTest = (c: RegCandidate) => scoreTest(c.testPreds.get(cfg.epochs) as Float32Array, test);
  for (const row of chosen.rows) ctx.log({ ...row, ...scoreTest(chosen.testPreds.get(row.epoch as number) as Float32Array, test) });
  for (const c of cands) {
    ctx.log({ kind: 'selection', select_lr: c.knobs.lr, select_beta: c.knobs.beta, select_lambda: c.knobs.lambda, select_val_medae: c.valMedAE, select_test_mae: lastTest(c).test_mae, chosen: c === chosen });
  }
  const metrics: Record<string, number> = { ...lastTest(chosen), ...chosen.final, lr: chosen.knobs.lr, n_candidates: cands.length };
  if (chosen.knobs.beta !== null) metrics.beta = chosen.knobs.beta;
  if (chosen.knobs.lambda !== null) metrics.lambda = chosen.knobs.lambda;
  Object.assign(metrics, {
    outlier_rate: sel.outlierRate,
    outlier_lo: sel.outlierRange[0],
    outlier_hi: sel.outlierRange[1],
    n_fit: sel.nFit,
    n_val: sel.nVal,
    n_test: sel.nTest,
    tensors_after: tf.memory().numTensors,
  });
  return { metrics };
}

/**
 * `superloss-regression`: SuperLoss (Castells et al., NeurIPS 2020) for regression with corrupted targets.
 *
 * - Data: a real tabular regression set from a registry package — vega-datasets' `cars.json` (Auto MPG; predict
 *   `Miles_per_Gallon` from cylinders, displacement, horsepower, weight, acceleration, year, origin one-hot), rows
 *   with missing values dropped, features standardised with training statistics. `--data FILE` takes any JSON-records
 *   or CSV file (`--set target=COLUMN`); without the package the loader says to `npm install vega-datasets`.
 * - Corruption: a fraction `rate` of the TRAINING targets is replaced by outliers ~ U(min − below·R, max + above·R)
 *   of the clean training targets (default U(min, max + 2R): one-sided, a third inside the real range). The test set
 *   (a seeded 20% split) stays clean.
 * - Methods `<loss>@out-<rate>`: `l1`, `smoothl1` and `superloss` = SuperLoss(smooth-L1 with β = `smoothL1Beta`,
 *   τ = EMA of the batch-mean loss). Default rates 0.2 and 0.4.
 * - Tuning, per (rate, seed), on a validation split carved from the corrupted pool (median absolute error against
 *   its corrupted targets): the LR for every loss, plus smooth-L1's β and SuperLoss's λ. Candidates see the test
 *   features but not the test targets (those are only used to score stored predictions after the choice).
 * - Metric: clean-test MAE (`test_mae`, target units), mean ± std over seeds; also RMSE, the MAE of the fit to the
 *   clean training targets, and AUROC of σ* / −loss at flagging the outliers.
 * - Quick preset: 3 seeds and a smaller grid.
 */
export const superlossRegression: Experiment<Cfg> = {
  name: 'superloss-regression',
  description: 'SuperLoss(smooth-L1) vs L1 and smooth-L1 on Auto-MPG (vega-datasets cars.json) with outlier-corrupted training targets (clean-test MAE)',
  schema: schema as z.ZodType<Cfg>,
  quick: { seeds: [1, 2, 3], lambdas: [0.25, 1], lrs: [3e-3, 1e-2], smoothL1Betas: [0.5, 1] },
  knownMethods: (cfg) => {
    const known = new Set(methodsFor(DEFAULT_OUTLIER_RATES));
    for (const m of cfg.methods) {
      try {
        parseRegressionMethod(m);
        known.add(m);
      } catch {
        // unknown names are reported by the runner with this list
      }
    }
    return [...known];
  },
  validate: (cfg) => {
    for (const m of cfg.methods) parseRegressionMethod(m);
    const ds = loadData(cfg);
    if (Math.round(ds.n * (1 - cfg.testFraction)) < 20) throw new UserError(`${ds.source}: too few rows (${ds.n}) for a train/test split`);
  },
  run,
  metrics: (cfg) => ({ primary: 'test_mae', higherIsBetter: false, baseline: sameRateBaseline(cfg.methods), diagnostics: ['tau', 'lambda', 'lr', 'beta', 'n_candidates', 'outlier_rate', 'outlier_lo', 'outlier_hi', 'n_fit', 'n_val', 'n_test', 'tensors_after'] }),
  methodPatterns: ['<l1|smoothl1|superloss>@out-<rate>'],
  derive: ({ rows }) => {
    const chosen: Record<string, Record<string, RegKnobs>> = {};
    for (const r of rows) {
      if (r.chosen !== true || typeof r.select_lr !== 'number') continue;
      (chosen[r.method] ??= {})[String(r.seed)] = { lr: r.select_lr, beta: (r.select_beta as number | null) ?? null, lambda: (r.select_lambda as number | null) ?? null };
    }
    return { values: { chosen } };
  },
  report,
};
