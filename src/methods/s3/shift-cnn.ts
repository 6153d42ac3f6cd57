/**
 * The small shift CNN of the s3-shift experiment (conv 1→16 FP, 16→32 and 32→64 shift, dense 64→10 FP), and helpers to inspect, size and
 * evaluate it: quantised-layer snapshots, float32 size, tfjs vs multiplication-free-engine predictions.
 *
 * Paper: Li et al., "S³: Sign-Sparse-Shift Reparametrization …", NeurIPS 2021 (arXiv 2107.03453), Sec. 4 —
 * quantise every conv but the stem; stem, BatchNorm and the classifier stay full precision. Baseline
 * parametrisation: DeepShift-PS (Elhoushi et al., CVPR-W 2021, Sec. 3.2).
 *
 *   input H×W×1 → Conv3×3/2 (c0, FP) → BN → ReLU
 *               → Q3×3/2 (c1) → BN → ReLU → Q3×3/2 (c2) → BN → ReLU
 *               → Flatten (or global average pooling) → Dense(classes) (FP)
 * Q is a plain Conv2D for full precision, or a `ShiftConv2D` with the given parametrisation.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../engine/rng.js';
import { glorot, heNormal } from '../../train/layers.js';
import { ShiftConv2D, ShiftLayerBase } from './layers.js';
import type { DiscreteWeights, S3ShiftEncoding, ShiftBits, ShiftParameterization } from './param.js';
import type { ShiftInferenceEngine } from './shift-inference.js';

/** What the quantised layers of the CNN are: full-precision convs, or shift convs of one parametrisation. */
export type ShiftCnnQuant =
  | { kind: 'fp' }
  | { kind: 'shift'; parameterization: ShiftParameterization; bits: ShiftBits; encoding: S3ShiftEncoding; regularize: boolean };

export interface ShiftCnnOptions {
  height: number;
  width: number;
  numClasses: number;
  /** [stem, Q1, Q2] filters. */
  channels: number[];
  head: 'flatten' | 'gap';
  method: ShiftCnnQuant;
  /** α of the S3 dense-weight regulariser (S3 Fig. 3; default 1e-5; 0 when `method.regularize` is false). */
  sparseAlpha?: number;
  /** Multiplies the latent init scale of the shift layers (init-sensitivity runs). */
  latentInitScale?: number;
}

/**
 * Builds the CNN described in the module comment (S3 paper Sec. 4 layout: FP stem and head, quantised
 * middle convs each followed by FP BatchNorm + ReLU). All initialisers are seeded from `rng`. Everything is
 * exportable by `exportShiftModel` (the BN after the FP stem folds into it).
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

/** The quantised ("Q") layers of a `buildShiftCnn` model: every conv after the stem. */
export function quantizedLayers(model: tf.LayersModel): tf.layers.Layer[] {
  const convs = model.layers.filter((l) => l instanceof ShiftLayerBase || l.getClassName() === 'Conv2D');
  return convs.slice(1);
}

/**
 * Discrete snapshot of one layer (S3 Sec. 3: w = sign·[non-zero]·2^p): shift layers via `discreteWeights()`;
 * float kernels as sign = +1 for w ≥ 0 else −1, zero = (w == 0), shift 0 — so the sign-flip diagnostics
 * apply to a full-precision net too.
 */
export function discreteSnapshot(layer: tf.layers.Layer): DiscreteWeights {
  if (layer instanceof ShiftLayerBase) return layer.discreteWeights();
  const k = layer.getWeights()[0];
  const v = k.dataSync();
  const n = v.length;
  const d: DiscreteWeights = { sign: new Int8Array(n), zero: new Uint8Array(n), shift: new Int8Array(n), shape: k.shape.slice() };
  for (let i = 0; i < n; i++) {
    d.sign[i] = v[i] >= 0 ? 1 : -1;
    d.zero[i] = v[i] === 0 ? 1 : 0;
  }
  return d;
}

/** Discrete snapshot of the Q layers of a `buildShiftCnn` model (see `discreteSnapshot`). */
export function snapshotQuantized(model: tf.LayersModel): DiscreteWeights[] {
  return quantizedLayers(model).map(discreteSnapshot);
}

/** Size in bytes of the model as a float32 inference model: effective shift kernels count as float32 weights. */
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

/** Single-channel images stored row after row (e.g. an `ImageSplit` of `loadImageDataset`). */
export interface ImageRows {
  images: Float32Array;
  height: number;
  width: number;
}

/** Argmax predictions of the tfjs model (inference mode) on the first n images. */
export function tfjsPredictions(model: tf.LayersModel, split: ImageRows, n: number, batch = 500): Int32Array {
  const px = split.height * split.width;
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const p = tf.tidy(() => {
      const x = tf.tensor4d(split.images.subarray(s * px, (s + m) * px), [m, split.height, split.width, 1]);
      return tf.argMax(model.apply(x, { training: false }) as tf.Tensor2D, 1);
    });
    out.set(p.dataSync() as Int32Array, s);
    p.dispose();
  }
  return out;
}

/** Multiplication-free engine predictions on the first n images, in chunks (calls `onChunk(done)` between chunks). */
export function enginePredictions(engine: ShiftInferenceEngine, split: ImageRows, n: number, onChunk?: (done: number) => void, chunk = 1000): Int32Array {
  const px = split.height * split.width;
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += chunk) {
    const m = Math.min(chunk, n - s);
    out.set(engine.predict(split.images.subarray(s * px, (s + m) * px), m), s);
    onChunk?.(s + m);
  }
  return out;
}
