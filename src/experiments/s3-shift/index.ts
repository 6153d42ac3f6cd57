/**
 * `s3-shift`: S3 (Sign-Sparse-Shift) low-bit shift networks vs DeepShift-PS vs full precision on
 * Fashion-MNIST, with the weight-sign-freezing diagnostics and a multiplication-free export check.
 *
 * Paper: Li, Liu, Yu, Liu, Xu, Partovi Nia, "S³: Sign-Sparse-Shift Reparametrization for Effective
 * Training of Low-bit Shift Networks", NeurIPS 2021 (arXiv 2107.03453). Baseline: Elhoushi et al.,
 * "DeepShift", CVPR-W 2021. Method notes: shared/methods/s3-shift.md (§6 is the experiment plan).
 *
 * Model (method notes §6 model B, made cheap on wasm with stride-2 convs instead of max-pooling):
 *   input 28×28×1 → Conv3×3/2 (c0, FP) → BN → ReLU            (full-precision stem, as in the paper)
 *                 → Q3×3/2 (c1) → BN → ReLU → Q3×3/2 (c2) → BN → ReLU
 *                 → Flatten (or global average pooling) → Dense(10) (full-precision head, as in the paper)
 * where Q is a plain Conv2D for `fp`, or a `ShiftConv2D` with the method's parametrisation.
 *
 * Per epoch we log, over the Q layers' effective weights:
 * - `sign_flip`: fraction of weights (non-zero at both epoch ends) whose sign flipped since the previous
 *   epoch (epoch 1: since initialisation) — the "weight sign freezing" diagnostic of the S3 paper;
 * - `sign_flip_latent`: same over all weights using the latent sign (S3: S(W_sign); PS: sign of s̃);
 * - `sign_changed_since_init`: fraction of weights (non-zero at init and now) whose sign differs from init;
 * - `zero_frac`: fraction of exactly-zero weights.
 * For `fp` the same quantities are computed on the float kernels (a sign is + for w ≥ 0).
 * At the end every run exports its model with `exportShiftModel` (`model.efsh`, plus the tfjs model in
 * `model/`), runs the `ShiftInferenceEngine` over the evaluated test set and records `export_test_acc`
 * and `export_agreement` (argmax agreement with the tfjs model in inference mode). The final shift
 * histogram of the Q layers is logged as one `{kind: 'diagnostic', name: 'shift_hist'}` row of metrics.jsonl.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { z } from 'zod';
import { FASHION_MNIST_DIR, loadImageDataset, type ImageSplit } from '../../data/image-dataset.js';
import type { Rng } from '../../engine/rng.js';
import {
  ShiftConv2D,
  ShiftInferenceEngine,
  ShiftLayerBase,
  clampShiftLatents,
  exportShiftModel,
  s3RegularizationLoss,
  shiftHistogram,
  shiftRange,
  signFlipStats,
  zeroFraction,
  type DiscreteWeights,
  type S3ShiftEncoding,
  type ShiftBits,
  type ShiftParameterization,
} from '../../methods/s3/index.js';
import { barChart, lineChart } from '../../report/svg.js';
import { curveSeries, fmtStat } from '../../report/report.js';
import { glorot, heNormal } from '../../train/layers.js';
import { saveLayersModel } from '../../train/model-io.js';
import type { TrainHook } from '../../train/trainer.js';
import { writeFileAtomic } from '../../util/fs.js';
import { imageBatch, imageTrainShape, runRng, trainImageClassifier } from '../common/image-classification.js';
import type { Chart, Experiment, MetricRow, ReportSection } from '../types.js';

/** Default methods (the issue's arms) and every method name this experiment understands. */
const DEFAULT_METHODS = ['fp', 'deepshift-ps-3bit', 's3-3bit', 's3-4bit'];
const KNOWN_METHODS = ['fp', 'deepshift-ps-3bit', 'deepshift-ps-4bit', 's3-3bit', 's3-4bit', 's3-3bit-noreg', 's3-3bit-summed'];

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default([...DEFAULT_METHODS]),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3]),
    data: z.string().default(FASHION_MNIST_DIR),
    ...imageTrainShape,
    /** 6 epochs over all 60k images (≈2.8k Adam steps): fp/S3 are close to converged on this small CNN. */
    epochs: z.number().int().positive().default(6).describe('6 epochs over all 60k images (≈2.8k Adam steps): fp/S3 are close to converged on this small CNN.'),
    /** Adam 3e-3 (cosine): on this small CNN it trains fp and S3 faster than 1e-3 in a few epochs. */
    lr: z.number().positive().default(3e-3).describe('Adam 3e-3 (cosine): on this small CNN it trains fp and S3 faster than 1e-3 in a few epochs.'),
    /** Filters of [stem (FP), Q1, Q2]; every conv is 3×3 with stride 2. */
    channels: z.array(z.number().int().positive()).length(3).default([16, 32, 64]).describe('Filters of [stem (FP), Q1, Q2]; every conv is 3×3 with stride 2.'),
    /** Head: flatten → dense (default) or global average pooling → dense. */
    head: z.enum(['flatten', 'gap']).default('flatten').describe('Head: flatten → dense (default) or global average pooling → dense.'),
    /** α of the S3 dense-weight regulariser α·Σ max(−W_sparse, 0) (S3 Fig. 3; official default 1e-5). */
    sparseAlpha: z.number().min(0).default(1e-5).describe('α of the S3 dense-weight regulariser α·Σ max(−W_sparse, 0) (S3 Fig. 3; official default 1e-5).'),
    /** Multiplies the latent init scale of the shift layers (method notes §6 arm 7). */
    latentInitScale: z.number().positive().default(1).describe('Multiplies the latent init scale of the shift layers (method notes §6 arm 7).'),
    /** Export every trained model (model.efsh + model/) and evaluate it with the multiplication-free engine. */
    exportEval: z.boolean().default(true).describe('Export every trained model (model.efsh + model/) and evaluate it with the multiplication-free engine.'),
  })
  .strict();

export type S3ShiftConfig = z.infer<typeof schema>;

/** What a method name means. */
export type S3MethodSpec =
  | { kind: 'fp' }
  | { kind: 'shift'; parameterization: ShiftParameterization; bits: ShiftBits; encoding: S3ShiftEncoding; regularize: boolean };

/** Parses `fp`, `deepshift-ps-<b>bit`, `s3-<b>bit[-noreg|-summed]`. */
export function parseS3Method(method: string): S3MethodSpec {
  if (method === 'fp') return { kind: 'fp' };
  const m = /^(s3|deepshift-ps)-([34])bit(?:-(noreg|summed))?$/.exec(method);
  if (!m || (m[1] === 'deepshift-ps' && m[3])) throw new Error(`s3-shift: unknown method ${method}`);
  return {
    kind: 'shift',
    parameterization: m[1] as ShiftParameterization,
    bits: Number(m[2]) as ShiftBits,
    encoding: m[3] === 'summed' ? 'summed' : 'nested',
    regularize: m[3] !== 'noreg',
  };
}

export interface ShiftCnnOptions {
  height: number;
  width: number;
  numClasses: number;
  /** [stem, Q1, Q2] filters. */
  channels: number[];
  head: 'flatten' | 'gap';
  method: S3MethodSpec;
  sparseAlpha?: number;
  latentInitScale?: number;
}

/**
 * The experiment's CNN (see the module comment): FP stem conv, two quantised 3×3 stride-2 convs
 * (`ShiftConv2D` for shift methods, `Conv2D` for fp), each followed by FP BatchNorm + ReLU, FP dense head.
 * Everything is exportable by `exportShiftModel` (BN after the FP stem folds into it).
 */
export function buildShiftCnn(o: ShiftCnnOptions, rng: Rng): tf.LayersModel {
  const x = tf.input({ shape: [o.height, o.width, 1] });
  let h = tf.layers.conv2d({ filters: o.channels[0], kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: heNormal(rng) }).apply(x) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ axis: -1 }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.activation({ activation: 'relu' }).apply(h) as tf.SymbolicTensor;
  for (const filters of o.channels.slice(1)) {
    const q =
      o.method.kind === 'fp'
        ? tf.layers.conv2d({ filters, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: heNormal(rng) })
        : new ShiftConv2D({
            filters,
            kernelSize: 3,
            strides: 2,
            padding: 'same',
            parameterization: o.method.parameterization,
            bits: o.method.bits,
            shiftEncoding: o.method.encoding,
            sparseAlpha: o.method.regularize ? (o.sparseAlpha ?? 1e-5) : 0,
            initScale: o.latentInitScale ?? 1,
            seed: rng.seed(),
          });
    h = q.apply(h) as tf.SymbolicTensor;
    h = tf.layers.batchNormalization({ axis: -1 }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.activation({ activation: 'relu' }).apply(h) as tf.SymbolicTensor;
  }
  h = (o.head === 'gap' ? tf.layers.globalAveragePooling2d({}) : tf.layers.flatten()).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: o.numClasses, kernelInitializer: glorot(rng) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: out, name: o.method.kind === 'fp' ? 'fp_cnn' : 'shift_cnn' });
}

type LayerVar = ReturnType<tf.layers.Layer['addWeight']>;
interface BnFields {
  gamma: LayerVar | null;
  beta: LayerVar | null;
  movingMean: LayerVar;
  movingVariance: LayerVar;
  epsilon: number;
  momentum: number;
}

/**
 * BatchNormalization in training mode written with broadcasting ops — same maths as tfjs-layers'
 * `normalizeBatchInTraining` + moving-average update (biased batch variance, moving ← moving −
 * (moving − batch)·(1 − momentum)). tfjs' fused BN gradient tiles the per-channel statistics to the
 * full activation shape, which is slow on wasm (≈60% of a training step of this CNN); here autodiff
 * reduces with Sum instead. Inference still goes through the layer itself (and the export reads its
 * variables), so nothing else changes.
 */
function batchNormTraining(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  const bn = layer as unknown as BnFields;
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  for (const [v, batch] of [
    [bn.movingMean, mean],
    [bn.movingVariance, variance],
  ] as const) {
    tf.tidy(() => {
      const orig = v.read();
      v.write(tf.sub(orig, tf.mul(tf.sub(orig, batch), 1 - bn.momentum)));
    });
  }
  let scale = tf.rsqrt(tf.add(variance, bn.epsilon));
  if (bn.gamma) scale = tf.mul(scale, bn.gamma.read());
  let y = tf.mul(tf.sub(x, mean), scale);
  if (bn.beta) y = tf.add(y, bn.beta.read());
  return y;
}

/**
 * Training/inference forward of a chain model (like `buildShiftCnn`'s): in training mode BatchNorm layers
 * run through `batchNormTraining`, every other layer through `layer.apply`; inference uses `model.apply`.
 */
export function chainForward(model: tf.LayersModel): (x: tf.Tensor4D, training: boolean) => tf.Tensor2D {
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  return (x, training) => {
    if (!training) return model.apply(x, { training: false }) as tf.Tensor2D;
    let h: tf.Tensor = x;
    for (const l of layers) h = l.getClassName() === 'BatchNormalization' ? batchNormTraining(l, h) : (l.apply(h, { training: true }) as tf.Tensor);
    return h as tf.Tensor2D;
  };
}

/** The moving mean/variance variables of every BatchNormalization layer, in layer order. */
function bnStatVars(model: tf.LayersModel): tf.Variable[] {
  return model.layers
    .filter((l) => l.getClassName() === 'BatchNormalization')
    .flatMap((l) => {
      const bn = l as unknown as BnFields;
      return [bn.movingMean.read() as tf.Variable, bn.movingVariance.read() as tf.Variable];
    });
}

/** The quantised ("Q") layers of a `buildShiftCnn` model: every conv after the stem. */
export function quantizedLayers(model: tf.LayersModel): tf.layers.Layer[] {
  const convs = model.layers.filter((l) => l instanceof ShiftLayerBase || l.getClassName() === 'Conv2D');
  return convs.slice(1);
}

/**
 * Discrete snapshot of the Q layers: shift layers via `discreteWeights()`; float kernels as
 * sign = +1 for w ≥ 0 else −1, zero = (w == 0), shift 0.
 */
export function snapshotQuantized(model: tf.LayersModel): DiscreteWeights[] {
  return quantizedLayers(model).map((l) => {
    if (l instanceof ShiftLayerBase) return l.discreteWeights();
    const k = l.getWeights()[0];
    const v = k.dataSync();
    const n = v.length;
    const d: DiscreteWeights = { sign: new Int8Array(n), zero: new Uint8Array(n), shift: new Int8Array(n), shape: k.shape.slice() };
    for (let i = 0; i < n; i++) {
      d.sign[i] = v[i] >= 0 ? 1 : -1;
      d.zero[i] = v[i] === 0 ? 1 : 0;
    }
    return d;
  });
}

/** Size of the model as a float32 inference model: effective shift kernels count as float32 weights. */
export function float32InferenceBytes(model: tf.LayersModel): number {
  let n = 0;
  for (const l of model.layers) {
    if (l instanceof ShiftLayerBase) {
      const k = l.discreteWeights();
      n += k.zero.length + (l.useBias ? (k.shape[k.shape.length - 1] ?? 0) : 0);
    } else for (const w of l.getWeights()) n += w.size;
  }
  return 4 * n;
}

/** Argmax predictions of the tfjs model (inference mode) on the first n images of a split. */
export function tfjsPredictions(model: tf.LayersModel, split: ImageSplit, n: number, batch = 500): Int32Array {
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += batch) {
    const idx = Int32Array.from({ length: Math.min(batch, n - s) }, (_, i) => s + i);
    const p = tf.tidy(() => tf.argMax(model.apply(imageBatch(split, idx), { training: false }) as tf.Tensor2D, 1));
    out.set(p.dataSync() as Int32Array, s);
    p.dispose();
  }
  return out;
}

/** Engine predictions on the first n images, in chunks (calls `onChunk(done)` between chunks). */
export function enginePredictions(engine: ShiftInferenceEngine, split: ImageSplit, n: number, onChunk?: (done: number) => void, chunk = 1000): Int32Array {
  const px = split.height * split.width;
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += chunk) {
    const m = Math.min(chunk, n - s);
    out.set(engine.predict(split.images.subarray(s * px, (s + m) * px), m), s);
    onChunk?.(s + m);
  }
  return out;
}

function hookFor(model: tf.LayersModel, spec: S3MethodSpec): TrainHook[] {
  if (spec.kind === 'fp') return [];
  return [
    {
      name: 's3-shift',
      // S3 dense-weight regulariser α·Σ max(−W_sparse, 0) (S3 Fig. 3); zero for DeepShift-PS / -noreg.
      extraLoss: () => (spec.parameterization === 's3' && spec.regularize ? s3RegularizationLoss(model) : null),
      // DeepShift-PS in-place exponent clamp after each optimiser step (DeepShift `modules.py`).
      afterStep: () => {
        if (spec.parameterization === 'deepshift-ps') clampShiftLatents(model);
      },
    },
  ];
}

/** Magnitude labels of a histogram, from the exponent range (S3: 1,2,4 …; PS: 1/4,1/2,1 …). */
function magnitudeLabel(p: number): string {
  return p >= 0 ? `±${2 ** p}` : `±1/${2 ** -p}`;
}

export const s3Shift: Experiment<S3ShiftConfig> = {
  name: 's3-shift',
  description: 'S3 sign-sparse-shift vs DeepShift-PS vs FP CNN on Fashion-MNIST: accuracy, sign flips, sparsity, multiplication-free export',
  schema: schema as z.ZodType<S3ShiftConfig>,
  quick: { methods: ['fp', 'deepshift-ps-3bit', 's3-3bit'], epochs: 3, trainLimit: 12000 },
  knownMethods: () => [...KNOWN_METHODS],
  validate: (cfg) => {
    for (const m of cfg.methods) parseS3Method(m);
    loadImageDataset(cfg.data);
  },
  async run(ctx) {
    const cfg = ctx.config;
    const spec = parseS3Method(ctx.method);
    const ds = loadImageDataset(cfg.data);
    const rng = runRng(ctx.seed, `${ctx.experiment}/${ctx.method}`);
    const model = buildShiftCnn(
      { height: ds.train.height, width: ds.train.width, numClasses: ds.numClasses, channels: cfg.channels, head: cfg.head, method: spec, sparseAlpha: cfg.sparseAlpha, latentInitScale: cfg.latentInitScale },
      rng,
    );
    const init = snapshotQuantized(model);
    let prev = init;
    const r = trainImageClassifier({
      ctx,
      model,
      train: ds.train,
      test: ds.test,
      numClasses: ds.numClasses,
      rng,
      hooks: hookFor(model, spec),
      forward: chainForward(model),
      epochMetrics: () => {
        const now = snapshotQuantized(model);
        const flip = signFlipStats(prev, now);
        prev = now;
        return {
          sign_flip: flip.fraction,
          sign_flip_latent: flip.latentFraction,
          sign_changed_since_init: signFlipStats(init, now).fraction,
          zero_frac: zeroFraction(now),
        };
      },
      // Checkpoint extras: BatchNorm moving statistics (not trainable, so not in the trainer's state).
      // On --resume the trainable weights are restored before `set` runs, so the restored state is the
      // previous-epoch snapshot (exact for epoch-end checkpoints); the init snapshot is re-derived from
      // the seeded initialisers above, so it is exact too.
      extraState: {
        get: () => ({ bnStats: bnStatVars(model).map((v) => Array.from(v.dataSync())) }),
        set: (st) => {
          const saved = st.bnStats as number[][] | undefined;
          const vars = bnStatVars(model);
          if (saved && saved.length === vars.length) vars.forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(saved[i], v.shape))));
          prev = snapshotQuantized(model);
        },
      },
    });
    const history = r.history;
    const last = history[history.length - 1] as Record<string, number> | undefined;
    const finalSnap = snapshotQuantized(model);

    // Final shift histogram of the Q layers (pooled), one row of metrics.jsonl.
    if (spec.kind === 'shift') {
      const { pMin, pMax } = shiftRange(spec.parameterization, spec.bits);
      const hist = shiftHistogram(finalSnap, pMin, pMax);
      ctx.log({ kind: 'diagnostic', name: 'shift_hist', shifts: hist.shifts, counts: hist.counts, zeros: hist.zeros, total: hist.total });
    }

    // Every method reports the same keys in the same order (the report's per-run table takes its header
    // from the first run). For fp the exported model is all float, so the engine runs float64 loops.
    const metrics: Record<string, number> = { test_acc: r.testAcc, test_loss: r.testLoss };
    metrics.sign_flip_last = last?.sign_flip ?? NaN;
    metrics.sign_changed_since_init = last?.sign_changed_since_init ?? NaN;
    metrics.zero_frac = zeroFraction(finalSnap);
    metrics.params = model.countParams();
    const nTest = cfg.testLimit > 0 ? Math.min(cfg.testLimit, ds.test.n) : ds.test.n;
    let bytes: Uint8Array | null = null;
    let tfPred: Int32Array | null = null;
    if (cfg.exportEval) {
      bytes = exportShiftModel(model);
      writeFileAtomic(join(ctx.artifactsDir, 'model.efsh'), bytes);
      await saveLayersModel(model, join(ctx.artifactsDir, 'model'));
      metrics.export_bytes = bytes.length;
      metrics.float32_bytes = float32InferenceBytes(model);
      tfPred = tfjsPredictions(model, ds.test, nTest);
    }
    model.dispose();
    r.trainer.optimizer.dispose();
    metrics.tensors_after = tf.memory().numTensors;
    if (bytes && tfPred) {
      const t0 = performance.now();
      const engine = new ShiftInferenceEngine(bytes); // from the packed bytes: checks the file round trip too
      const enPred = enginePredictions(engine, ds.test, nTest, (done) => ctx.progress({ epoch: cfg.epochs, epochs: cfg.epochs, message: `export check ${done}/${nTest}` }));
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
    }
    return { metrics };
  },

  metrics: { primary: 'test_acc', higherIsBetter: true, baseline: 'fp', diagnostics: ['params', 'export_bytes', 'float32_bytes', 'tensors_after', 'export_images_per_sec', 'sign_flip_last', 'sign_changed_since_init', 'zero_frac'] },

  derive({ runs, config }) {
    const mean = (m: string, k: string): number => {
      const xs = runs.filter((r) => r.method === m).map((r) => r.metrics[k]).filter((x) => typeof x === 'number' && Number.isFinite(x));
      return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
    };
    const has = (m: string) => config.methods.includes(m);
    const targets: Record<string, unknown> = {};
    if (has('s3-3bit') && has('fp')) {
      const gap = mean('fp', 'test_acc') - mean('s3-3bit', 'test_acc');
      targets.fp_minus_s3_3bit_points = 100 * gap;
      targets.s3_3bit_within_1pt_of_fp = gap <= 0.01;
    }
    if (has('s3-3bit') && has('deepshift-ps-3bit')) {
      const d = mean('s3-3bit', 'test_acc') - mean('deepshift-ps-3bit', 'test_acc');
      targets.s3_3bit_minus_ps_3bit_points = 100 * d;
      targets.s3_3bit_not_below_ps_3bit = d >= 0;
    }
    const checked = runs.filter((r) => Number.isFinite(r.metrics.export_agreement));
    if (checked.length) {
      targets.export_agreement_min = Math.min(...checked.map((r) => r.metrics.export_agreement));
      targets.export_acc_equal_all = checked.every((r) => r.metrics.export_test_acc === r.metrics.test_acc);
    }
    return { values: { targets } };
  },

  report({ results, rows }): ReportSection[] {
    const methods = results.methods;
    const charts: Chart[] = [];
    const epochRows = rows.filter((r) => typeof r.epoch === 'number');
    if (epochRows.some((r) => typeof r.sign_flip === 'number' && r.sign_flip > 0)) {
      // Log-scale view of the flip rate (zeros are dropped there; the linear chart is charts/curve-sign_flip.svg).
      const series = curveSeries(epochRows, 'sign_flip', 'epoch', methods).map((sr) => ({ ...sr, y: sr.y.map((v) => (v > 0 ? v : NaN)), band: undefined }));
      charts.push({
        file: 'charts/s3-sign-flip-log.svg',
        title: 'sign-flip rate per epoch (log scale)',
        svg: lineChart({ title: 'sign-flip rate per epoch, log scale (exact zeros omitted)', xLabel: 'epoch', yLabel: 'fraction flipped', series, logY: true }),
      });
    }

    // Shift histograms of the final models, pooled over seeds, as fractions of all Q weights.
    const histLines: string[] = [];
    for (const m of methods) {
      const hs = rows.filter((r) => r.method === m && r.kind === 'diagnostic' && r.name === 'shift_hist') as unknown as (MetricRow & { shifts: number[]; counts: number[]; zeros: number; total: number })[];
      if (!hs.length) continue;
      const shifts = hs[0].shifts;
      const total = hs.reduce((a, h) => a + h.total, 0);
      const zeros = hs.reduce((a, h) => a + h.zeros, 0);
      const counts = shifts.map((_, i) => hs.reduce((a, h) => a + h.counts[i], 0));
      const labels = ['0', ...shifts.map(magnitudeLabel)];
      const values = [zeros / total, ...counts.map((c) => c / total)];
      const file = `charts/s3-shift-hist-${m.replace(/[^A-Za-z0-9._-]/g, '_')}.svg`;
      charts.push({ file, title: `final weight histogram ${m}`, svg: barChart({ title: `${m}: final |w| histogram (fraction of Q weights, ${hs.length} seed${hs.length > 1 ? 's' : ''})`, yLabel: 'fraction', labels, values }) });
      histLines.push(`| ${m} | ${labels.map((l, i) => `${l}: ${(100 * values[i]).toFixed(1)}%`).join(', ')} |`);
    }

    // Sign-flip story table: flip rate at the first and last epoch, per method.
    const stat = (m: string, k: string) => results.summary[m]?.[k];
    const curve = (k: string) => new Map(curveSeries(epochRows, k, 'epoch', methods).map((s) => [s.name, s]));
    const flips = curve('sign_flip');
    const zf = curve('zero_frac');
    const flipLines = methods.map((m) => {
      const s = flips.get(m);
      const z = zf.get(m);
      const first = s ? s.y[0] : NaN;
      const lastV = s ? s.y[s.y.length - 1] : NaN;
      const since = stat(m, 'sign_changed_since_init');
      return `| ${m} | ${(100 * first).toFixed(3)}% | ${(100 * lastV).toFixed(3)}% | ${since ? fmtStat(100 * since.mean, 100 * since.std, since.n) + '%' : 'n/a'} | ${z ? (100 * z.y[z.y.length - 1]).toFixed(1) + '%' : 'n/a'} |`;
    });
    const md: string[] = ['## S3 diagnostics\n'];
    md.push('Q layers = the two quantised 3×3 convs (stem conv and dense head stay full precision, as in the paper). `sign_flip` = fraction of weights, non-zero at both epoch ends, whose sign flipped since the previous epoch (epoch 1: since init); for `fp` the float kernels are used.\n');
    md.push('| method | sign flips epoch 1 | sign flips last epoch | sign changed since init (mean ± std) | zero fraction (final) |\n|---|---:|---:|---:|---:|');
    md.push(...flipLines);
    const lastFlip = (m: string) => {
      const sr = flips.get(m);
      return sr ? sr.y[sr.y.length - 1] : NaN;
    };
    const psM = methods.filter((m) => m.startsWith('deepshift-ps'));
    const s3M = methods.filter((m) => m.startsWith('s3-'));
    if (psM.length && s3M.length) {
      const psMax = Math.max(...psM.map(lastFlip));
      const s3Min = Math.min(...s3M.map(lastFlip));
      const frozen = psMax <= 0.1 * s3Min;
      md.push(
        `\nSign freezing (last epoch): DeepShift-PS flip rate ≤ ${(100 * psMax).toFixed(3)}%, S3 ≥ ${(100 * s3Min).toFixed(3)}%` +
          (methods.includes('fp') ? `, fp ${(100 * lastFlip('fp')).toFixed(3)}%` : '') +
          ` — ${frozen ? 'DeepShift-PS signs are (nearly) frozen while S3 keeps flipping, as the paper describes' : 'the paper\'s sign-freezing contrast is NOT clearly reproduced here (PS flip rate is not ≪ S3\'s)'}.\n`,
      );
    }
    md.push('\n![sign flips](charts/curve-sign_flip.svg)\n\n![sign changed since init](charts/curve-sign_changed_since_init.svg)\n\n![zero fraction](charts/curve-zero_frac.svg)\n');
    if (histLines.length) {
      md.push('### Final weight histograms (fraction of Q weights; exponent ranges differ by a global power of two that BatchNorm absorbs)\n');
      md.push('| method | histogram |\n|---|---|');
      md.push(...histLines);
      md.push('');
    }
    const t = (results.derived.targets ?? {}) as Record<string, number | boolean>;
    md.push('### Targets\n');
    if (typeof t.fp_minus_s3_3bit_points === 'number') md.push(`- s3-3bit within 1.0 point of fp: **${t.s3_3bit_within_1pt_of_fp ? 'yes' : 'no'}** (fp − s3-3bit = ${(t.fp_minus_s3_3bit_points as number).toFixed(2)} points)`);
    if (typeof t.s3_3bit_minus_ps_3bit_points === 'number') md.push(`- s3-3bit not below deepshift-ps-3bit: **${t.s3_3bit_not_below_ps_3bit ? 'yes' : 'no'}** (s3-3bit − deepshift-ps-3bit = ${(t.s3_3bit_minus_ps_3bit_points as number).toFixed(2)} points)`);
    if (typeof t.export_agreement_min === 'number') md.push(`- exported model (multiplication-free engine) vs tfjs argmax agreement, worst run: ${(100 * (t.export_agreement_min as number)).toFixed(2)}%; export accuracy equal to tfjs accuracy in every run: ${t.export_acc_equal_all ? 'yes' : 'no'}`);
    const exp = methods.filter((m) => stat(m, 'export_bytes'));
    if (exp.length) {
      md.push('\n| method | export bytes | float32 inference bytes | ratio | engine test acc | engine images/s (1 thread, incl. FP layers) |\n|---|---:|---:|---:|---:|---:|');
      for (const m of exp) {
        const b = stat(m, 'export_bytes')!.mean;
        const f = stat(m, 'float32_bytes')!.mean;
        const ips = stat(m, 'export_images_per_sec');
        const acc = stat(m, 'export_test_acc');
        md.push(`| ${m} | ${b.toFixed(0)} | ${f.toFixed(0)} | ${(f / b).toFixed(2)}× | ${acc ? fmtStat(acc.mean, acc.std, acc.n) : 'not run'} | ${ips ? ips.mean.toFixed(0) : 'not run'} |`);
      }
    }
    return [{ markdown: md.join('\n'), charts }];
  },
};

