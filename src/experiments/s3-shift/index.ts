/**
 * `s3-shift`: S3 (Sign-Sparse-Shift) low-bit shift networks vs DeepShift-PS vs full precision on
 * Fashion-MNIST, with the weight-sign-freezing diagnostics and a multiplication-free export check.
 *
 * Paper: Li, Liu, Yu, Liu, Xu, Partovi Nia, "S³: Sign-Sparse-Shift Reparametrization for Effective
 * Training of Low-bit Shift Networks", NeurIPS 2021 (arXiv 2107.03453). Baseline: Elhoushi et al.,
 * "DeepShift", CVPR-W 2021. Model: `buildShiftCnn` (src/methods/s3/shift-cnn.ts); method names and recipes:
 * arms.ts; training: train.ts; report: report.ts.
 *
 * Splits: the last `valSize` training images are the validation split (per-epoch `val_acc`, and every choice
 * of lr / recipe); the model trains on the first min(trainLimit, 60000 − valSize); the test split is read once,
 * after training, for `test_acc` and the export check (`finalTest: false` skips it, for selection runs).
 *
 * Per epoch we log, over the quantised layers' effective weights: `sign_flip` (fraction of weights non-zero at
 * both epoch ends whose sign flipped since the previous epoch), `sign_flip_latent`, `sign_changed_since_init`,
 * `zero_frac`. At the end: how far the latents moved from their initial values (`latentMovement`: |Δ|
 * quantiles per latent, net threshold crossings, distance to a sign reversal at init, Σ lr), logged as
 * `{kind: 'diagnostic', name: 'latent_movement'}`, and the final shift histogram (`name: 'shift_hist'`).
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { z } from 'zod';
import { FASHION_MNIST_DIR, loadImageDataset } from '../../data/image-dataset.js';
import {
  ShiftInferenceEngine,
  batchNormStatVariables,
  buildShiftCnn,
  enginePredictions,
  exportShiftModel,
  float32InferenceBytes,
  latentMovement,
  latentSnapshot,
  quantizedLayers,
  shiftHistogram,
  shiftRange,
  signFlipStats,
  snapshotQuantized,
  tfjsPredictions,
  zeroFraction,
} from '../../methods/s3/index.js';
import { pairedTTest } from '../../stats/index.js';
import { evaluateClassifier } from '../../train/metrics.js';
import { saveLayersModel } from '../../train/model-io.js';
import { writeFileAtomic } from '../../util/fs.js';
import { IMAGE_DATA_DESCRIPTION, imageBatch, imageTrainShape, runRng } from '../common/image-classification.js';
import type { Experiment } from '../types.js';
import { isS3Method, parseS3Arm } from './arms.js';
import { s3Report } from './report.js';
import { trainS3, trainValSplit } from './train.js';

// Compatibility re-exports: these moved to src/methods/s3 (shift-cnn.ts, batchnorm-training.ts).
export { buildShiftCnn, chainForward, enginePredictions, float32InferenceBytes, quantizedLayers, snapshotQuantized, tfjsPredictions } from '../../methods/s3/index.js';
export type { ShiftCnnOptions } from '../../methods/s3/index.js';
export { parseS3Arm, parseS3Method, type S3Arm, type S3MethodSpec } from './arms.js';

/** Default methods and the fixed list `efftrain list` shows (any name matching the patterns is accepted). */
const DEFAULT_METHODS = ['fp', 'deepshift-ps-3bit', 'deepshift-ps-3bit-lrx10', 's3-3bit', 's3-4bit'];
const LISTED_METHODS = ['fp', 'deepshift-ps-3bit', 'deepshift-ps-3bit-radam', 'deepshift-ps-3bit-lrx10', 'deepshift-ps-3bit-sgd', 'deepshift-ps-4bit', 's3-3bit', 's3-3bit-sgd', 's3-4bit', 's3-3bit-noreg', 's3-3bit-summed', 'fp-sgd'];

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default([...DEFAULT_METHODS]),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3]),
    data: z.string().default(FASHION_MNIST_DIR).describe(IMAGE_DATA_DESCRIPTION),
    ...imageTrainShape,
    optimizer: z.enum(['adam', 'adamw', 'sgd', 'momentum', 'nesterov', 'radam']).default('adam').describe('Optimizer of the default recipe (methods with -radam / -sgd override it).'),
    epochs: z.number().int().positive().default(6).describe('Epoch budget (6 over 54k images ≈ 2.5k steps); a compute budget fixed in advance, not tuned.'),
    lr: z.number().positive().default(3e-3).describe('Peak lr of the default (Adam, cosine) recipe for methods without an lrByMethod entry.'),
    weightDecay: z.number().min(0).default(0).describe('Weight decay of the `optimizer` in the default and -radam recipes (0 = none; adam ignores it, adamw decoupled, the others L2 on the gradient); the -sgd recipe uses sgdWeightDecay.'),
    lrByMethod: z.record(z.string(), z.number().positive()).default({}).describe('Per-method peak lr overrides, by full method name or base name (e.g. {"deepshift-ps-3bit": 0.01}); chosen on validation.'),
    valSize: z.number().int().positive().default(6000).describe('The last valSize training images form the validation split (choices); the model trains on the rest.'),
    finalTest: z.boolean().default(true).describe('Evaluate the test split once after training (false for selection runs: test images are then never read).'),
    latentWeightDecay: z.number().min(0).default(0).describe('L2 decay of the shift-layer latents added to their gradients (S3 official: 1e-4); default recipe and -radam.'),
    sgdLr: z.number().positive().default(0.1).describe('Peak lr of the -sgd recipe (S3 main.py / DeepShift cifar10.py: 0.1).'),
    sgdWeightDecay: z.number().min(0).default(1e-4).describe('L2 decay on every parameter in the -sgd recipe (S3 / DeepShift official: 1e-4).'),
    channels: z.array(z.number().int().positive()).length(3).default([16, 32, 64]).describe('Filters of [stem (FP), Q1, Q2]; every conv is 3×3 with stride 2.'),
    head: z.enum(['flatten', 'gap']).default('flatten').describe('Head: flatten → dense (default) or global average pooling → dense.'),
    sparseAlpha: z.number().min(0).default(1e-5).describe('α of the S3 dense-weight regulariser α·Σ max(−W_sparse, 0) (S3 Fig. 3; official default 1e-5).'),
    latentInitScale: z.number().positive().default(1).describe('Multiplies the latent init scale of the shift layers (init-sensitivity runs).'),
    exportEval: z.boolean().default(true).describe('Export every trained model (model.efsh + model/) and evaluate it with the multiplication-free engine (needs finalTest).'),
  })
  .strict();

export type S3ShiftConfig = z.infer<typeof schema>;

/** A paired comparison a − b on the primary metric over the seeds both ran (t-based 95% CI). */
export interface S3Comparison {
  a: string;
  b: string;
  metric: string;
  n: number;
  meanDiff: number;
  ci95: [number, number];
  p: number;
}

/** The pairs the report compares: fp (and fp under the same recipe) vs every method, S3 vs DeepShift-PS, every variant vs its base. */
export function comparisonPairs(methods: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  const add = (a: string, b: string) => {
    if (a !== b && methods.includes(a) && methods.includes(b) && !pairs.some(([x, y]) => x === a && y === b)) pairs.push([a, b]);
  };
  for (const m of methods) {
    if (m === 'fp') continue;
    add('fp', m);
    const recipe = parseS3Arm(m).recipe;
    if (recipe !== 'default' && !m.startsWith('fp')) add(`fp-${recipe}`, m); // fp under the same recipe
  }
  for (const s of methods.filter((m) => m.startsWith('s3-'))) for (const p of methods.filter((m) => m.startsWith('deepshift-ps-'))) add(s, p);
  for (const m of methods) {
    const arm = parseS3Arm(m);
    if (arm.base !== m) add(m, arm.base);
  }
  return pairs;
}

export const s3Shift: Experiment<S3ShiftConfig> = {
  name: 's3-shift',
  description: 'S3 sign-sparse-shift vs DeepShift-PS vs FP CNN on Fashion-MNIST: accuracy, sign flips, latent movement, sparsity, multiplication-free export',
  schema: schema as z.ZodType<S3ShiftConfig>,
  // lrByMethod: each base method's best validation accuracy over lr ∈ {3e-3, 1e-2} (seed 1, test not read; docs/RESULTS.md).
  quick: {
    methods: ['fp', 'deepshift-ps-3bit', 'deepshift-ps-3bit-lrx10', 'deepshift-ps-3bit-radam', 's3-3bit'],
    epochs: 3,
    trainLimit: 6000,
    valSize: 3000,
    lrByMethod: { fp: 3e-3, 'deepshift-ps-3bit': 1e-2, 's3-3bit': 3e-3 },
  },
  methodPatterns: ['fp[-sgd|-radam]', 's3-<3|4>bit[-noreg|-summed][-radam|-sgd][-lrx<k>]', 'deepshift-ps-<3|4>bit[-radam|-sgd][-lrx<k>]'],
  knownMethods: (cfg) => [...new Set([...LISTED_METHODS, ...cfg.methods.filter(isS3Method)])],
  validate: (cfg) => {
    for (const m of cfg.methods) parseS3Arm(m);
    const ds = loadImageDataset(cfg.data);
    trainValSplit(ds.train, cfg);
  },
  async run(ctx) {
    const cfg = ctx.config;
    const arm = parseS3Arm(ctx.method);
    const spec = arm.quant;
    const ds = loadImageDataset(cfg.data);
    const { fitSplit, val } = trainValSplit(ds.train, cfg);
    const rng = runRng(ctx.seed, `${ctx.experiment}/${ctx.method}`);
    const model = buildShiftCnn(
      { height: ds.train.height, width: ds.train.width, numClasses: ds.numClasses, channels: cfg.channels, head: cfg.head, method: spec, sparseAlpha: cfg.sparseAlpha, latentInitScale: cfg.latentInitScale },
      rng,
    );
    // Both initial snapshots are re-derived from the seeded initialisers, so they are exact on --resume too.
    const init = snapshotQuantized(model);
    const initLatents = latentSnapshot(quantizedLayers(model));
    let prev = init;
    const r = trainS3({
      ctx,
      arm,
      model,
      fitSplit,
      val,
      numClasses: ds.numClasses,
      rng,
      epochMetrics: () => {
        const now = snapshotQuantized(model);
        const flip = signFlipStats(prev, now);
        prev = now;
        return { sign_flip: flip.fraction, sign_flip_latent: flip.latentFraction, sign_changed_since_init: signFlipStats(init, now).fraction, zero_frac: zeroFraction(now) };
      },
      // Checkpoint extras: BatchNorm moving statistics (not trainable, so not in the trainer's state). On
      // --resume the trainable weights are restored before `set` runs, so `prev` is the previous epoch's snapshot.
      extraState: {
        get: () => ({ bnStats: batchNormStatVariables(model).map((v) => Array.from(v.dataSync())) }),
        set: (st) => {
          const saved = st.bnStats as number[][] | undefined;
          const vars = batchNormStatVariables(model);
          if (saved && saved.length === vars.length) vars.forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(saved[i], v.shape))));
          prev = snapshotQuantized(model);
        },
      },
    });
    const last = r.history[r.history.length - 1] as Record<string, number> | undefined;
    const finalSnap = snapshotQuantized(model);
    const move = latentMovement(initLatents, latentSnapshot(quantizedLayers(model)));
    ctx.log({ kind: 'diagnostic', name: 'latent_movement', recipe: r.recipe, lr_sum: r.lrSum, lr_sum_latent: r.lrSumLatent, ...flatMovement(move) });
    if (spec.kind === 'shift') {
      const { pMin, pMax } = shiftRange(spec.parameterization, spec.bits);
      const hist = shiftHistogram(finalSnap, pMin, pMax);
      ctx.log({ kind: 'diagnostic', name: 'shift_hist', shifts: hist.shifts, counts: hist.counts, zeros: hist.zeros, total: hist.total });
    }

    const sign = move.roles.sign;
    const metrics: Record<string, number> = { val_acc: last?.val_acc ?? NaN, val_loss: last?.val_loss ?? NaN };
    metrics.sign_flip_last = last?.sign_flip ?? NaN;
    metrics.sign_changed_since_init = last?.sign_changed_since_init ?? NaN;
    metrics.zero_frac = zeroFraction(finalSnap);
    metrics.sign_latent_dabs_median = sign.absDeltaMedian;
    metrics.sign_latent_dabs_p99 = sign.absDeltaP99;
    metrics.sign_latent_flip_dist_median = move.signFlipDistanceMedian;
    metrics.sign_latent_crossed = sign.crossedFraction;
    metrics.sign_reversed = move.signReversed;
    metrics.lr_sum_latent = r.lrSumLatent;
    metrics.params = model.countParams();
    let bytes: Uint8Array | null = null;
    let tfPred: Int32Array | null = null;
    const nTest = cfg.testLimit > 0 ? Math.min(cfg.testLimit, ds.test.n) : ds.test.n;
    if (cfg.finalTest) {
      const forward = (idx: Int32Array) => model.apply(imageBatch(ds.test, idx), { training: false }) as tf.Tensor2D;
      const t = evaluateClassifier(nTest, 500, forward, ds.test.labels);
      metrics.test_acc = t.acc;
      metrics.test_loss = t.loss;
      if (cfg.exportEval) {
        bytes = exportShiftModel(model);
        writeFileAtomic(join(ctx.artifactsDir, 'model.efsh'), bytes);
        await saveLayersModel(model, join(ctx.artifactsDir, 'model'));
        metrics.export_bytes = bytes.length;
        metrics.float32_bytes = float32InferenceBytes(model);
        tfPred = tfjsPredictions(model, ds.test, nTest);
      }
    }
    model.dispose();
    r.trainer.optimizer.dispose();
    metrics.tensors_after = tf.memory().numTensors;
    if (bytes && tfPred) {
      const t0 = performance.now();
      const engine = new ShiftInferenceEngine(bytes); // from the packed bytes: checks the file round trip too
      const enPred = enginePredictions(engine, ds.test, nTest, (done) => ctx.progress({ epoch: cfg.epochs, epochs: cfg.epochs, message: `export check ${done}/${nTest} (${engine.backend} shift engine)` }));
      const engineSeconds = (performance.now() - t0) / 1000;
      let correct = 0;
      let agree = 0;
      for (let i = 0; i < nTest; i++) {
        if (enPred[i] === ds.test.labels[i]) correct++;
        if (enPred[i] === tfPred[i]) agree++;
      }
      metrics.export_test_acc = correct / nTest;
      metrics.export_agreement = agree / nTest;
      metrics.export_images_per_sec = nTest / engineSeconds;
      metrics.export_engine_native = engine.backend === 'native' ? 1 : 0; // which engine path export_images_per_sec timed
    }
    return { metrics };
  },

  metrics: (cfg) => ({
    primary: cfg.finalTest ? 'test_acc' : 'val_acc',
    higherIsBetter: true,
    baseline: cfg.methods.includes('fp') ? 'fp' : null,
    diagnostics: ['params', 'export_bytes', 'float32_bytes', 'tensors_after', 'export_images_per_sec', 'sign_flip_last', 'sign_changed_since_init', 'zero_frac', 'sign_latent_dabs_median', 'sign_latent_dabs_p99', 'sign_latent_flip_dist_median', 'sign_latent_crossed', 'sign_reversed', 'lr_sum_latent'],
  }),

  derive({ runs, config }) {
    const metric = config.finalTest ? 'test_acc' : 'val_acc';
    const bySeed = (m: string) => new Map(runs.filter((r) => r.method === m).map((r) => [r.seed, r.metrics[metric]]));
    const comparisons: S3Comparison[] = comparisonPairs(config.methods).map(([a, b]) => {
      const A = bySeed(a);
      const B = bySeed(b);
      const seeds = [...A.keys()].filter((s) => B.has(s));
      const t = pairedTTest(seeds.map((s) => A.get(s)!), seeds.map((s) => B.get(s)!));
      return { a, b, metric, n: t.n, meanDiff: t.meanDiff, ci95: t.ci95, p: t.p };
    });
    const targets: Record<string, unknown> = {};
    const find = (a: string, b: string) => comparisons.find((c) => c.a === a && c.b === b);
    const fpS3 = find('fp', 's3-3bit');
    if (fpS3) {
      targets.fp_minus_s3_3bit_points = 100 * fpS3.meanDiff;
      targets.fp_minus_s3_3bit_ci95_points = fpS3.ci95.map((x) => 100 * x);
      // Within 1 point only when the whole CI of fp − s3 lies below 1 point.
      targets.s3_3bit_within_1pt_of_fp = fpS3.n >= 2 ? (fpS3.ci95[1] <= 0.01 ? 'yes' : fpS3.ci95[0] > 0.01 ? 'no' : 'inconclusive') : 'inconclusive (one seed)';
    }
    const s3Ps = find('s3-3bit', 'deepshift-ps-3bit');
    if (s3Ps) {
      targets.s3_3bit_minus_ps_3bit_points = 100 * s3Ps.meanDiff;
      targets.s3_3bit_minus_ps_3bit_ci95_points = s3Ps.ci95.map((x) => 100 * x);
      targets.s3_3bit_vs_ps_3bit = s3Ps.n >= 2 ? (s3Ps.ci95[0] > 0 ? 'above' : s3Ps.ci95[1] < 0 ? 'below' : 'no difference resolved') : 'inconclusive (one seed)';
    }
    const checked = runs.filter((r) => Number.isFinite(r.metrics.export_agreement));
    if (checked.length) {
      targets.export_agreement_min = Math.min(...checked.map((r) => r.metrics.export_agreement));
      targets.export_acc_equal_all = checked.every((r) => r.metrics.export_test_acc === r.metrics.test_acc);
    }
    return { values: { comparisons, targets } };
  },

  report: (input) => s3Report(input),
};

/** The latent-movement record as flat numbers for a metrics.jsonl diagnostic row. */
function flatMovement(m: ReturnType<typeof latentMovement>): Record<string, number | string> {
  const out: Record<string, number | string> = { parameterization: m.parameterization, sign_flip_distance_median: m.signFlipDistanceMedian, latent_sign_changed: m.latentSignChanged, sign_reversed: m.signReversed };
  for (const [role, s] of Object.entries(m.roles)) {
    out[`${role}_n`] = s.n;
    out[`${role}_dabs_median`] = s.absDeltaMedian;
    out[`${role}_dabs_p90`] = s.absDeltaP90;
    out[`${role}_dabs_p99`] = s.absDeltaP99;
    out[`${role}_dabs_max`] = s.absDeltaMax;
    out[`${role}_start_abs_median`] = s.startAbsMedian;
    out[`${role}_crossed`] = s.crossedFraction;
  }
  return out;
}
