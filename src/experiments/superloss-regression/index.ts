import * as tf from '@tensorflow/tfjs';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { gatherRows, sequentialBatches, trainValSplit } from '../../data/batching.js';
import { columnStats, injectTargetOutliers, loadTabular, standardizeColumns, type TabularDataset } from '../../data/tabular.js';
import { UserError } from '../../errors.js';
import { l1PerSample, optimalConfidence, superLoss } from '../../methods/superloss/index.js';
import { fmtStat } from '../../report/report.js';
import { barChart } from '../../report/svg.js';
import { fit } from '../../train/fit.js';
import { glorot, heNormal } from '../../train/layers.js';
import { auroc, meanStd } from '../../train/metrics.js';
import { createOptimizer } from '../../train/optimizers.js';
import { createSchedule } from '../../train/schedules.js';
import { Trainer, trainableVariables } from '../../train/trainer.js';
import { runRng } from '../common/image-classification.js';
import type { Experiment, MetricRow, ReportInput, ReportSection, RunContext } from '../types.js';
import { median } from '../../stats/index.js';
import { fileCheckpointStore } from '../../node/checkpoint-file.js';
import { DEFAULT_OUTLIER_RATES, REGRESSION_LOSSES, RegressionLoss, RegressionMethod, methodsFor, parseRegressionMethod, sameRateBaseline } from './methods.js';
import { report } from './report.js';
export * from './methods.js';

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default(methodsFor(DEFAULT_OUTLIER_RATES)),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    /** Data file (JSON records or CSV); '' = vega-datasets' cars.json (needs `npm install vega-datasets`). */
    data: z.string().default('').describe('Data file (JSON records or CSV); \'\' = vega-datasets\' cars.json (needs `npm install vega-datasets`).'),
    target: z.string().default('Miles_per_Gallon'),
    exclude: z.array(z.string()).default(['Name']),
    /** Fraction of rows held out as the clean test set (seeded per seed). */
    testFraction: z.number().min(0.05).max(0.5).default(0.2).describe('Fraction of rows held out as the clean test set (seeded per seed).'),
    /** Outliers ~ U(min − below·R, max + above·R) of the clean training targets, R = max − min. */
    outlierBelow: z.number().min(0).default(0).describe('Outliers ~ U(min − below·R, max + above·R) of the clean training targets, R = max − min.'),
    outlierAbove: z.number().min(0).default(2),
    hidden: z.array(z.number().int().positive()).default([32]),
    epochs: z.number().int().positive().default(100),
    batchSize: z.number().int().positive().default(32),
    lr: z.number().positive().default(3e-3),
    optimizer: z.enum(['adam', 'adamw', 'sgd', 'momentum', 'nesterov']).default('adam'),
    schedule: z.enum(['constant', 'cosine', 'step', 'plateau']).default('cosine'),
    /** Smooth-L1 transition β, in robust-standardised target units. */
    smoothL1Beta: z.number().min(0).default(1).describe('Smooth-L1 transition β, in robust-standardised target units.'),
    /** SuperLoss λ candidates, chosen per (rate, seed) by the median absolute error on the corrupted validation split. */
    lambdas: z.array(z.number().positive()).min(1).default([0.1, 0.25, 1, 4]).describe('SuperLoss λ candidates, chosen per (rate, seed) by the median absolute error on the corrupted validation split.'),
    /** Fraction of the (corrupted) training rows held out for λ selection; every loss trains on the rest. */
    valFraction: z.number().min(0.05).max(0.5).default(0.2).describe('Fraction of the (corrupted) training rows held out for λ selection; every loss trains on the rest.'),
    /** SuperLoss EMA momentum for τ. */
    emaMomentum: z.number().min(0).max(0.999).default(0.9).describe('SuperLoss EMA momentum for τ.'),
    /** Log test metrics every N epochs (and at the last epoch). */
    evalEvery: z.number().int().positive().default(10).describe('Log test metrics every N epochs (and at the last epoch).'),
    keepCheckpoints: z.boolean().default(false),
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

/** One run's data: fit rows (corrupted targets), a corrupted validation split for λ selection, the clean test set. */
interface RegData {
  d: number;
  nFit: number;
  xFit: Float32Array;
  /** Corrupted fit targets in robust-standardised units. */
  zFit: Float32Array;
  /** True (clean) targets of the fit rows, for `train_clean_mae`. */
  yFitClean: Float32Array;
  isClean: Uint8Array;
  nVal: number;
  xVal: Float32Array;
  /** Corrupted validation targets (target units). */
  yVal: Float32Array;
  nTest: number;
  xTest: Float32Array;
  yTest: Float32Array;
  center: number;
  scale: number;
  outlierRate: number;
  outlierRange: [number, number];
}

function prepare(ctx: RunContext<Cfg>, m: RegressionMethod): RegData {
  const cfg = ctx.config;
  const ds = loadData(cfg);
  const { d } = ds;
  // Split and outliers depend on (seed, rate) only: every loss (and every λ) sees the same data.
  const perm = runRng(ctx.seed, `${ctx.experiment}/split`).permutation(ds.n);
  const nTest = Math.max(1, Math.round(ds.n * cfg.testFraction));
  const testRows = perm.slice(0, nTest);
  const poolRows = perm.slice(nTest);
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
    d,
    nFit: fitRows.length,
    xFit: standardizeColumns(ds.x, d, fitRows, stats),
    zFit: Float32Array.from(yFit, (v) => (v - center) / scale),
    yFitClean: Float32Array.from(fitIdx, (k) => yPoolClean[k]),
    isClean: Uint8Array.from(fitIdx, (k) => 1 - out.outlier[k]),
    nVal: valRows.length,
    xVal: standardizeColumns(ds.x, d, valRows, stats),
    yVal: Float32Array.from(valIdx, (k) => out.y[k]),
    nTest,
    xTest: standardizeColumns(ds.x, d, testRows, stats),
    yTest: Float32Array.from(testRows, (i) => ds.y[i]),
    center,
    scale,
    outlierRate: out.actualRate,
    outlierRange: out.range,
  };
}

interface RegCandidate {
  lambda: number | null;
  rows: MetricRow[];
  final: Record<string, number>;
  /** Median |ŷ − y| on the corrupted validation targets (the λ-selection criterion). */
  valMedAE: number;
  testMae: number;
}

/** Trains one regressor (one loss, one λ for SuperLoss) and returns its buffered epoch rows and last metrics. */
function trainOne(ctx: RunContext<Cfg>, data: RegData, loss: RegressionLoss, lambda: number | null): RegCandidate {
  const cfg = ctx.config;
  const { d, nFit, center, scale } = data;
  const tag = lambda === null ? loss : `lambda-${lambda}`;
  const rng = runRng(ctx.seed, ctx.experiment);
  const model = buildRegressor(d, cfg.hidden, rng);
  const batchSize = Math.min(cfg.batchSize, nFit);
  const steps = Math.max(1, Math.floor(nFit / batchSize)) * cfg.epochs;
  const ckptPath = join(ctx.artifactsDir, tag, 'checkpoint.safetensors');
  const trainer = new Trainer({
    params: trainableVariables(model),
    optimizer: createOptimizer(cfg.optimizer),
    schedule: createSchedule(cfg.schedule, cfg.lr, steps),
    lastCheckpoint: () => ckptPath,
  });
  const sl = loss === 'superloss' ? superLoss({ lambda: lambda ?? 1, tau: 'ema', emaMomentum: cfg.emaMomentum }) : null;
  const perSample = (pred: tf.Tensor1D, y: tf.Tensor1D) => (loss === 'l1' ? l1PerSample(pred, y) : smoothL1Rank1(pred, y, cfg.smoothL1Beta));
  const hasOutliers = data.isClean.some((c) => c === 0);
  const rows: MetricRow[] = [];
  let valMedAE = NaN;

  const evaluate = (epoch: number): Record<string, number> => {
    const last = epoch === cfg.epochs;
    if (epoch % cfg.evalEvery !== 0 && !last) return {};
    const pTest = predictAll(model, data.xTest, data.nTest, d);
    let ae = 0;
    let se = 0;
    for (let i = 0; i < data.nTest; i++) {
      const e = pTest[i] * scale + center - data.yTest[i];
      ae += Math.abs(e);
      se += e * e;
    }
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
      const l = loss === 'l1' || cfg.smoothL1Beta === 0 ? a : a < cfg.smoothL1Beta ? (0.5 * a * a) / cfg.smoothL1Beta : a - 0.5 * cfg.smoothL1Beta;
      negLoss[i] = -l;
      if (sl && sl.tau !== null) sigma[i] = optimalConfidence(l, sl.tau, sl.lambda);
    }
    const row: Record<string, number> = {
      test_mae: ae / data.nTest,
      test_rmse: Math.sqrt(se / data.nTest),
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
      if (typeof row.test_mae !== 'number') return;
      rows.push(row);
      valMedAE = row.val_medae;
      ctx.progress({ epoch: row.epoch, epochs: cfg.epochs, loss: row.train_loss, message: `${lambda === null ? '' : `λ=${lambda} `}val_medae ${row.val_medae.toFixed(3)}` });
    },
    checkpoint: { store: fileCheckpointStore(ckptPath), resume: ctx.resume },
    extraState: sl ? { get: () => ({ superloss: sl.getState() }), set: (s) => sl.setState(s.superloss as ReturnType<typeof sl.getState>) } : undefined,
  });
  model.dispose();
  trainer.optimizer.dispose();
  if (!cfg.keepCheckpoints) rmSync(join(ctx.artifactsDir, tag), { recursive: true, force: true });
  const last = history[history.length - 1] ?? {};
  const final: Record<string, number> = {
    test_mae: last.test_mae ?? NaN,
    test_rmse: last.test_rmse ?? NaN,
    train_clean_mae: last.train_clean_mae ?? NaN,
    val_medae: last.val_medae ?? NaN,
  };
  if (hasOutliers) final.negloss_auroc = last.negloss_auroc ?? NaN;
  if (sl) {
    if (hasOutliers) final.sigma_auroc = last.sigma_auroc ?? NaN;
    final.tau = last.tau ?? NaN;
  }
  return { lambda, rows, final, valMedAE, testMae: final.test_mae };
}

async function run(ctx: RunContext<Cfg>): Promise<{ metrics: Record<string, number> }> {
  const cfg = ctx.config;
  const m = parseRegressionMethod(ctx.method);
  const data = prepare(ctx, m);
  const cands = m.loss === 'superloss' ? cfg.lambdas.map((l) => trainOne(ctx, data, m.loss, l)) : [trainOne(ctx, data, m.loss, null)];
  // λ selection: lowest median absolute error on the corrupted validation targets (robust to < 50% outliers).
  let chosen = cands[0];
  for (const c of cands) if (c.valMedAE < chosen.valMedAE) chosen = c;
  for (const row of chosen.rows) ctx.log(row);
  if (m.loss === 'superloss') {
    for (const c of cands) ctx.log({ kind: 'selection', select_lambda: c.lambda, select_val_medae: c.valMedAE, select_test_mae: c.testMae, chosen: c === chosen });
  }
  const metrics: Record<string, number> = { ...chosen.final };
  if (chosen.lambda !== null) metrics.lambda = chosen.lambda;
  Object.assign(metrics, {
    outlier_rate: data.outlierRate,
    outlier_lo: data.outlierRange[0],
    outlier_hi: data.outlierRange[1],
    n_fit: data.nFit,
    n_val: data.nVal,
    n_test: data.nTest,
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
 * - Methods `<loss>@out-<rate>`: `l1`, `smoothl1` (β = 1 in robust-standardised units) and `superloss` =
 *   SuperLoss(smooth-L1, τ = EMA of the batch-mean loss, λ fixed). Default rates 0.2 and 0.4.
 * - Metric: clean-test MAE (`test_mae`, target units), mean ± std over seeds; also RMSE, the MAE of the fit to the
 *   clean training targets, and AUROC of σ* / −loss at flagging the outliers.
 * - Quick preset: 3 seeds, fewer epochs.
 */
export const superlossRegression: Experiment<Cfg> = {
  name: 'superloss-regression',
  description: 'SuperLoss(smooth-L1) vs L1 and smooth-L1 on Auto-MPG (vega-datasets cars.json) with outlier-corrupted training targets (clean-test MAE)',
  schema: schema as z.ZodType<Cfg>,
  quick: { seeds: [1, 2, 3], lambdas: [0.25, 1] },
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
  metrics: (cfg) => ({ primary: 'test_mae', higherIsBetter: false, baseline: sameRateBaseline(cfg.methods), diagnostics: ['tau', 'lambda', 'outlier_rate', 'outlier_lo', 'outlier_hi', 'n_fit', 'n_val', 'n_test', 'tensors_after'] }),
  methodPatterns: ['<l1|smoothl1|superloss>@out-<rate>'],
  derive: ({ rows }) => {
    const chosen: Record<string, Record<string, number>> = {};
    for (const r of rows) if (r.chosen === true && typeof r.select_lambda === 'number') (chosen[r.method] ??= {})[String(r.seed)] = r.select_lambda;
    return { values: { chosenLambda: chosen } };
  },
  report,
};
