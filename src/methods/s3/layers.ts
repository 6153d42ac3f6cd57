/**
 * Shift layers for tfjs: `ShiftDense` and `ShiftConv2D`, parametrised either with S3
 * (sign-sparse-shift) or with DeepShift-PS.
 *
 * Paper: Li et al., "S³: Sign-Sparse-Shift Reparametrization for Effective Training of Low-bit
 * Shift Networks", NeurIPS 2021 (arXiv 2107.03453) — Sec. 3, Fig. 3; the official 3-bit layer
 * `S3-Training/s3conv2dshift.py`. Baseline: Elhoushi et al., "DeepShift", CVPR-W 2021, Sec. 3.2.
 *
 * What the layer does NOT do (as in S3): quantise activations, or hold BatchNorm. Put a
 * `tf.layers.batchNormalization` (full precision) after each shift layer as in the paper; the first
 * conv and the last dense layer of a network stay full precision in the paper.
 *
 * Training notes:
 * - S3 regulariser α·Σ max(−W_sparse, 0) (Fig. 3, α = 1e-5 by default) is registered with `addLoss`, so
 *   `model.fit` adds it automatically. Custom loops: add `s3RegularizationLoss(model)` (walks the
 *   layers; always works) or `model.calculateLosses()` (note: for a `tf.Sequential` this is empty until
 *   the model has been built by a first apply/predict/fit) — not both.
 * - Weight decay (1e-4 on all latents in the official recipe) is left to the optimiser/training loop.
 * - DeepShift-PS clamps p̃ in place every forward pass; here the forward clamps with an identity-gradient
 *   STE (so the value set is always right) and `clampLatents()` / `clampShiftLatents(model)` writes
 *   the clamped value back to the variable — call it after each optimiser step for a faithful emulation.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../engine/rng.js';
import {
  type DiscreteWeights,
  type S3ShiftEncoding,
  type ShiftBits,
  type ShiftParameterization,
  numShiftLatents,
  psDiscrete,
  psWeight,
  s3Discrete,
  s3Weight,
  shiftRange,
} from './param.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type LayerVariable = ReturnType<tf.layers.Layer['addWeight']>;
type Initializer = Parameters<tf.layers.Layer['addWeight']>[3];

/** Activations supported by shift layers (and by the multiplication-free engine). */
export type ShiftActivation = 'linear' | 'relu';

/** Options shared by `ShiftDense` and `ShiftConv2D`. */
export interface ShiftLayerCommonArgs extends LayerArgs {
  /** 's3' (default) or 'deepshift-ps'. */
  parameterization?: ShiftParameterization;
  /** Weight bit width: 3 (default; the paper's setting) or 4 (S3 4-bit is our extension). */
  bits?: ShiftBits;
  /** Seed of every latent initialiser (required: initialisation is always seeded). */
  seed: number;
  /** Add a full-precision bias (default false: S3 puts BatchNorm after every shift layer). */
  useBias?: boolean;
  /** 'linear' (default) or 'relu'. */
  activation?: ShiftActivation;
  /** α of the S3 dense-weight regulariser α·Σ max(−W_sparse, 0) (default 1e-5; ignored for PS). */
  sparseAlpha?: number;
  /**
   * Multiplies the latent initialisation scale (default 1): S3 latents ~ N(0, initScale²·2/n);
   * DeepShift-PS s̃ ~ U(−initScale, initScale) (p̃ init unchanged). For init-sensitivity studies.
   */
  initScale?: number;
  /**
   * S3 only: 'nested' (default; official code, 3-bit p = H(s1)·(H(s2)+1)) or 'summed' (ablation
   * p = Σ_k H(s_k), same range; not in the official code).
   */
  shiftEncoding?: S3ShiftEncoding;
}

export interface ShiftDenseArgs extends ShiftLayerCommonArgs {
  units: number;
}

export interface ShiftConv2DArgs extends ShiftLayerCommonArgs {
  filters: number;
  kernelSize: number | [number, number];
  strides?: number | [number, number];
  padding?: 'same' | 'valid';
}

function pair(v: number | number[] | undefined, dflt: number): [number, number] {
  if (v == null) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  if (v.length !== 2) throw new Error(`expected a number or a pair, got [${v.join(', ')}]`);
  return [v[0], v[1]];
}

/**
 * Common machinery of the shift layers (S3 paper Sec. 3 / Fig. 3; DeepShift Sec. 3.2): latent
 * variables, STE forward, discrete snapshot, regulariser.
 */
export abstract class ShiftLayerBase extends tf.layers.Layer {
  readonly parameterization: ShiftParameterization;
  readonly bits: ShiftBits;
  readonly seed: number;
  readonly useBias: boolean;
  readonly activation: ShiftActivation;
  readonly sparseAlpha: number;
  readonly initScale: number;
  readonly shiftEncoding: S3ShiftEncoding;
  /** Latent variables: s3 → [sign, sparse, shift([N, ...k])]; PS → [shift p̃, sign s̃]. */
  protected latents: LayerVariable[] = [];
  protected bias: LayerVariable | null = null;
  protected kernelShape: number[] | null = null;

  constructor(args: ShiftLayerCommonArgs) {
    super(args);
    this.parameterization = args.parameterization ?? 's3';
    if (this.parameterization !== 's3' && this.parameterization !== 'deepshift-ps') {
      throw new Error(`parameterization must be 's3' or 'deepshift-ps', got ${String(this.parameterization)}`);
    }
    this.bits = args.bits ?? 3;
    numShiftLatents(this.bits); // validates
    if (!Number.isFinite(args.seed)) throw new Error(`shift layers need a finite numeric seed, got ${String(args.seed)}`);
    this.seed = args.seed;
    this.useBias = args.useBias ?? false;
    this.activation = args.activation ?? 'linear';
    if (this.activation !== 'linear' && this.activation !== 'relu') {
      throw new Error(`shift layers support activation 'linear' or 'relu', got ${String(this.activation)}`);
    }
    this.sparseAlpha = args.sparseAlpha ?? 1e-5;
    this.initScale = args.initScale ?? 1;
    this.shiftEncoding = args.shiftEncoding ?? 'nested';
    if (this.shiftEncoding !== 'nested' && this.shiftEncoding !== 'summed') {
      throw new Error(`shiftEncoding must be 'nested' or 'summed', got ${String(this.shiftEncoding)}`);
    }
    if (!(this.sparseAlpha >= 0)) throw new Error(`sparseAlpha must be >= 0, got ${this.sparseAlpha}`);
    if (!(this.initScale > 0)) throw new Error(`initScale must be > 0, got ${this.initScale}`);
  }

  /** Allowed exponent range [pMin, pMax] (see `shiftRange`). */
  get range(): { pMin: number; pMax: number } {
    return shiftRange(this.parameterization, this.bits);
  }

  /** Kaiming fan-out n used by the S3 initialisation N(0, 2/n) (S3 official code). */
  protected abstract fanOut(kernelShape: number[]): number;
  /** DeepShift-PS p̃ initial range (DeepShift `modules.py`: linear → whole range, conv → U(−10, −1)). */
  protected abstract psShiftInitRange(): [number, number];

  /**
   * Creates the latents — S3 init (official code): every latent ~ N(0, 2/n), n = kh·kw·C_out (Kaiming
   * normal, fan-out); DeepShift-PS init (DeepShift `modules.py`): s̃ ~ U(−1, 1), p̃ ~ U over the range
   * (dense) or U(−10, −1) (conv). All initialisers are seeded from `seed`.
   */
  protected buildLatents(kernelShape: number[], biasSize: number): void {
    this.kernelShape = kernelShape.slice();
    const rng = new Rng(this.seed);
    const normal = (std: number): Initializer => tf.initializers.randomNormal({ mean: 0, stddev: std, seed: rng.seed() });
    const uniform = (lo: number, hi: number): Initializer =>
      tf.initializers.randomUniform({ minval: lo, maxval: hi, seed: rng.seed() });
    if (this.parameterization === 's3') {
      const std = this.initScale * Math.sqrt(2 / this.fanOut(kernelShape));
      const n = numShiftLatents(this.bits);
      this.latents = [
        this.addWeight('sign', kernelShape, 'float32', normal(std)),
        this.addWeight('sparse', kernelShape, 'float32', normal(std)),
        this.addWeight('shift', [n, ...kernelShape], 'float32', normal(std)),
      ];
      if (this.sparseAlpha > 0) this.addLoss(() => this.regularizationLoss());
    } else {
      const [lo, hi] = this.psShiftInitRange();
      this.latents = [
        this.addWeight('shift', kernelShape, 'float32', uniform(lo, hi)),
        this.addWeight('sign', kernelShape, 'float32', uniform(-this.initScale, this.initScale)),
      ];
    }
    if (this.useBias) this.bias = this.addWeight('bias', [biasSize], 'float32', tf.initializers.zeros());
  }

  private requireBuilt(): LayerVariable[] {
    if (this.latents.length === 0) throw new Error(`layer ${this.name} is not built yet (call it on an input first)`);
    return this.latents;
  }

  /**
   * Effective weight tensor with the STE graph attached (S3 Fig. 3 / DeepShift-PS forward).
   * Values are exactly in {0, ±2^p}, p ∈ [pMin, pMax]. Caller owns the returned tensor.
   */
  effectiveKernel(): tf.Tensor {
    const v = this.requireBuilt();
    if (this.parameterization === 's3') return s3Weight(v[0].read(), v[1].read(), v[2].read(), this.shiftEncoding);
    return psWeight(v[0].read(), v[1].read(), this.range.pMin);
  }

  /** Effective weights as a flat Float32Array in kernel layout (S3 Sec. 3: W = S·H·2^p). */
  effectiveWeights(): Float32Array {
    const w = this.effectiveKernel();
    const out = w.dataSync() as Float32Array;
    w.dispose();
    return Float32Array.from(out);
  }

  /**
   * Discrete snapshot {sign, zero, shift} for export and diagnostics (S3 Sec. 3 / Fig. 3;
   * DeepShift Sec. 3.2). See `DiscreteWeights` for the meaning of sign/shift of zero weights.
   */
  discreteWeights(): DiscreteWeights {
    const v = this.requireBuilt();
    if (this.parameterization === 's3') return s3Discrete(v[0].read(), v[1].read(), v[2].read(), this.shiftEncoding);
    return psDiscrete(v[0].read(), v[1].read(), this.range.pMin);
  }

  /**
   * Copies of the latent tensors by role (S3 Fig. 3: `sign` W_sign, `sparse` W_sparse, `shift` the stacked
   * W_s,k of shape [N, ...kernel]; DeepShift-PS Sec. 3.2: `shift` p̃, `sign` s̃), flattened. For diagnostics.
   */
  latentValues(): Record<string, Float32Array> {
    const v = this.requireBuilt();
    const copy = (i: number) => Float32Array.from(v[i].read().dataSync() as Float32Array);
    return this.parameterization === 's3' ? { sign: copy(0), sparse: copy(1), shift: copy(2) } : { shift: copy(0), sign: copy(1) };
  }

  /** Full-precision bias values, or null when `useBias` is false. */
  biasValues(): Float32Array | null {
    return this.bias ? Float32Array.from(this.bias.read().dataSync() as Float32Array) : null;
  }

  /**
   * Unscaled S3 dense-weight regulariser R = Σ max(−W_sparse, 0) (S3 paper Fig. 3). Zero for PS.
   */
  sparseL1(): tf.Scalar {
    if (this.parameterization !== 's3') return tf.scalar(0);
    const sparse = this.requireBuilt()[1].read();
    return tf.tidy(() => tf.sum(tf.relu(tf.neg(sparse))) as tf.Scalar);
  }

  /** α·R, the S3 regulariser term added to the loss (S3 paper Fig. 3, α = `sparseAlpha`). */
  regularizationLoss(): tf.Scalar {
    return tf.tidy(() => tf.mul(this.sparseL1(), this.parameterization === 's3' ? this.sparseAlpha : 0) as tf.Scalar);
  }

  /**
   * DeepShift-PS in-place clamp p̃ ← clamp(p̃, pMin, 0) (DeepShift Sec. 3.2, `modules.py`). No-op for S3.
   */
  clampLatents(): void {
    if (this.parameterization !== 'deepshift-ps' || this.latents.length === 0) return;
    const v = this.latents[0].read() as tf.Variable;
    const clamped = tf.clipByValue(v, this.range.pMin, 0);
    v.assign(clamped);
    clamped.dispose();
  }

  /**
   * DeepShift-PS "converted FP init" (DeepShift Sec. 4, training from a pre-trained model):
   * p̃ = log2|w| (clamped to the range), s̃ = sign(w). Only for 'deepshift-ps'.
   */
  setLatentsFromFloat(w: Float32Array): void {
    if (this.parameterization !== 'deepshift-ps') {
      throw new Error('setLatentsFromFloat is only defined for deepshift-ps (S3 has no conversion rule in the paper)');
    }
    const v = this.requireBuilt();
    const n = v[0].shape.reduce((a, b) => (a ?? 1) * (b ?? 1), 1) ?? 0;
    if (w.length !== n) throw new Error(`setLatentsFromFloat: expected ${n} values, got ${w.length}`);
    const { pMin } = this.range;
    const p = new Float32Array(n);
    const s = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const a = Math.abs(w[i]);
      p[i] = a > 0 ? Math.min(0, Math.max(pMin, Math.log2(a))) : pMin;
      s[i] = Math.sign(w[i]);
    }
    const shape = v[0].shape as number[];
    const pt = tf.tensor(p, shape);
    const st = tf.tensor(s, shape);
    (v[0].read() as tf.Variable).assign(pt);
    (v[1].read() as tf.Variable).assign(st);
    tf.dispose([pt, st]);
  }

  protected abstract applyKernel(x: tf.Tensor, w: tf.Tensor): tf.Tensor;

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Record<string, unknown>): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const w = this.effectiveKernel();
      let y = this.applyKernel(x, w);
      if (this.bias) y = tf.add(y, this.bias.read());
      if (this.activation === 'relu') y = tf.relu(y);
      return y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      parameterization: this.parameterization,
      bits: this.bits,
      seed: this.seed,
      useBias: this.useBias,
      activation: this.activation,
      sparseAlpha: this.sparseAlpha,
      initScale: this.initScale,
      shiftEncoding: this.shiftEncoding,
    };
  }
}

/**
 * Fully connected shift layer (S3 paper Sec. 3 applied to a linear layer; DeepShift `LinearShift`).
 * Kernel layout [inFeatures, units]; y = x·W (+ b), W ∈ {0, ±2^p}. Exponent range: see `shiftRange`
 * (S3 3-bit p ∈ [0, 2]; S3 4-bit p ∈ [0, 6], our extension; PS 3-bit p ∈ [−2, 0]; PS 4-bit [−6, 0]).
 */
export class ShiftDense extends ShiftLayerBase {
  static className = 'ShiftDense';
  readonly units: number;

  constructor(args: ShiftDenseArgs) {
    super(args);
    if (!Number.isInteger(args.units) || args.units < 1) throw new Error(`ShiftDense units must be a positive integer, got ${args.units}`);
    this.units = args.units;
  }

  protected fanOut(): number {
    return this.units;
  }

  protected psShiftInitRange(): [number, number] {
    return [this.range.pMin, 0];
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const inDim = shape[shape.length - 1];
    if (inDim == null) throw new Error('ShiftDense needs a known last input dimension');
    this.buildLatents([inDim, this.units], this.units);
    this.inputSpec = [{ minNDim: 2, axes: { [-1]: inDim } }];
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...shape.slice(0, -1), this.units];
  }

  protected applyKernel(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    if (x.rank === 2) return tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D);
    const lead = x.shape.slice(0, -1);
    const y = tf.matMul(tf.reshape(x, [-1, x.shape[x.rank - 1]]) as tf.Tensor2D, w as tf.Tensor2D);
    return tf.reshape(y, [...lead, this.units]);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), units: this.units };
  }
}
tf.serialization.registerClass(ShiftDense);

/**
 * 2-D convolutional shift layer, NHWC (S3 paper Sec. 3, the official `S3Conv2dShift`; DeepShift
 * `Conv2dShift`). Kernel layout [kh, kw, cin, filters], dilation 1. Exponent range: see `shiftRange`.
 */
export class ShiftConv2D extends ShiftLayerBase {
  static className = 'ShiftConv2D';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'same' | 'valid';

  constructor(args: ShiftConv2DArgs) {
    super(args);
    if (!Number.isInteger(args.filters) || args.filters < 1) throw new Error(`ShiftConv2D filters must be a positive integer, got ${args.filters}`);
    this.filters = args.filters;
    this.kernelSize = pair(args.kernelSize, 1);
    this.strides = pair(args.strides, 1);
    this.padding = args.padding ?? 'valid';
    if (this.padding !== 'same' && this.padding !== 'valid') throw new Error(`ShiftConv2D padding must be 'same' or 'valid', got ${String(this.padding)}`);
  }

  protected fanOut(kernelShape: number[]): number {
    return kernelShape[0] * kernelShape[1] * kernelShape[3];
  }

  protected psShiftInitRange(): [number, number] {
    return [-10, -1];
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    if (shape.length !== 4) throw new Error(`ShiftConv2D expects rank-4 NHWC input, got shape [${shape.join(', ')}]`);
    const cin = shape[3];
    if (cin == null) throw new Error('ShiftConv2D needs a known channel dimension');
    this.buildLatents([this.kernelSize[0], this.kernelSize[1], cin, this.filters], this.filters);
    this.inputSpec = [{ ndim: 4, axes: { [-1]: cin } }];
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const out = (len: number | null, k: number, s: number): number | null => {
      if (len == null) return null;
      return this.padding === 'same' ? Math.ceil(len / s) : Math.ceil((len - k + 1) / s);
    };
    return [shape[0], out(shape[1], this.kernelSize[0], this.strides[0]), out(shape[2], this.kernelSize[1], this.strides[1]), this.filters];
  }

  protected applyKernel(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    return tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, this.strides, this.padding);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, strides: this.strides, padding: this.padding };
  }
}
tf.serialization.registerClass(ShiftConv2D);

/** All shift layers of a model, in layer order (S3 paper Sec. 3: the quantised layers). */
export function shiftLayersOf(model: tf.LayersModel): ShiftLayerBase[] {
  return model.layers.filter((l): l is ShiftLayerBase => l instanceof ShiftLayerBase);
}

/**
 * Σ over the model's S3 layers of α·Σ max(−W_sparse, 0) — the S3 dense-weight regulariser
 * (S3 paper Fig. 3). Use in custom loops that do not add `model.calculateLosses()`.
 */
export function s3RegularizationLoss(model: tf.LayersModel): tf.Scalar {
  return tf.tidy(() => {
    let total: tf.Scalar = tf.scalar(0);
    for (const l of shiftLayersOf(model)) total = tf.add(total, l.regularizationLoss());
    return total;
  });
}

/**
 * Applies the DeepShift-PS in-place exponent clamp to every PS layer of the model (DeepShift Sec. 3.2).
 * Call after each optimiser step. No-op for S3 layers.
 */
export function clampShiftLatents(model: tf.LayersModel): void {
  for (const l of shiftLayersOf(model)) l.clampLatents();
}
