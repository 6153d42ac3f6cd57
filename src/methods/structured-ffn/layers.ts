/**
 * Structured linear maps (Wei, Moalla, Pascanu & Gulcehre, NeurIPS 2024, arXiv 2406.16450 §2; official
 * code CLAIRE-Labo/StructuredFFN `src/modules/layer/`) as serializable tfjs layers.
 *
 * Layout is tfjs' y = x·W: a map with N inputs and M outputs has kernels stored input-major.
 * | class               | forward                       | kernels (this layout)                                      | weights          |
 * |---------------------|-------------------------------|------------------------------------------------------------|------------------|
 * | LowRankLinear(r)    | (x·V)·U                       | kernel_v [N, r], kernel_u [r, M]                           | r(N+M)           |
 * | BlockDenseLinear(r,b)| blockdiag(V_b)(x)·U          | blocks_v [b, N/b, r/b], kernel_u [r, M]                    | r(N/b + M)       |
 * | BlockShuffleLinear(b)| f⁻¹(U_b(f(V_b(x))))          | blocks_1 [b, N/b, q], blocks_2 [b, q, M/b], q = min(N,M)/b | min(N,M)(N+M)/b  |
 *
 * BlockShuffle's f is the stride-b channel shuffle (stage-2 block c reads stage-1 features c, c+b, c+2b, …)
 * and f⁻¹ writes stage-2 outputs interleaved (out index t·b + c), exactly as the official code
 * (`block_shuffle_bmm`, from Monarch). Block-diagonal stages are batched matmuls over [b, T, ·].
 *
 * Initialisation (`init: 'paper'`, the official defaults): LowRank draws a dense N(0, σ²) matrix and keeps
 * its balanced top-r SVD factors (V = Σ½Qᵀ, U = PΣ½); BlockDense/BlockShuffle draw N(0, σ²) blocks (and
 * BlockDense's dense U) and replace each by its orthogonal polar factor. `init: 'normal'` keeps plain N(0, σ²).
 *
 * Self-guided training: with `guide: true` the layer also owns a dense guide W [N, M], initialised to the
 * structured map's dense matrix (so W·x = S(x) at step 0), and `forward(x, {alpha, useGuide})` returns
 * α·W·x + (1−α)·S(x) when the guide is used, else exactly S(x) (the paper's stochastic skip; the caller
 * draws). Note: the official BlockShuffle initialises its guide as U_b·V_b *without* the shuffle, so its
 * W ≠ S at step 0; we use the true dense matrix of S, as the method describes.
 *
 * Pre-merge (no structured map has a nonlinearity inside, so each collapses to one dense matrix): `merge()` stores the dense matrix of S next to the factors; `forward` then uses it for
 * calls with at most `mergeThreshold` token rows and the factors above that.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../engine/rng.js';
import { linear } from '../../models/ffn.js';
import { balancedFactors, gaussian, polar } from './linalg.js';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type LayerVariable = ReturnType<tf.layers.Layer['addWeight']>;

export type StructuredInit = 'paper' | 'normal';
export type StructuredMap = 'lowrank' | 'blockdense' | 'blockshuffle';

export interface StructuredLinearArgs extends LayerArgs {
  units: number;
  useBias?: boolean;
  /** Adds the SGT dense guide W (initialised to the dense matrix of the structured map). */
  guide?: boolean;
  /** Seed of the initialisation (drawn with efftrain's Rng). */
  seed?: number;
  /** σ of the N(0, σ²) base init (paper: 0.02). */
  initStd?: number;
  init?: StructuredInit;
  /** After `merge()`: use the merged dense matrix for calls with at most this many token rows. */
  mergeThreshold?: number;
}

export interface ForwardOptions {
  /** SGT mixing weight α_t (0 = no guidance). */
  alpha?: number;
  /** Whether this forward uses the dense guide (the caller's draw u < α); default true when α > 0. */
  useGuide?: boolean;
}

/** Applies b independent [nIn → nOut] blocks: x [T, b·nIn] → [b, T, nOut]. */
function blockStage(x: tf.Tensor2D, w: tf.Tensor3D): tf.Tensor3D {
  const [b, nIn] = w.shape;
  const T = x.shape[0];
  const xb = tf.transpose(tf.reshape(x, [T, b, nIn]), [1, 0, 2]) as tf.Tensor3D;
  return tf.matMul(xb, w);
}

function f32(a: Float64Array): Float32Array {
  return Float32Array.from(a);
}

/** Base class: bias, guide, merge, config and the weight bookkeeping shared by the three maps. */
export abstract class StructuredLinear extends tf.layers.Layer {
  readonly units: number;
  readonly useBias: boolean;
  guide: boolean;
  readonly seed: number;
  readonly initStd: number;
  readonly init: StructuredInit;
  mergeThreshold: number;
  /** α used by `call()` (the tf.layers path): a deterministic mixture when the layer has a guide. */
  guideAlpha = 0;
  /** Number of input features (known after build). */
  inFeatures = 0;
  protected kernels: { name: string; v: LayerVariable }[] = [];
  protected biasW: LayerVariable | null = null;
  protected guideW: LayerVariable | null = null;
  private mergedKernel: tf.Tensor2D | null = null;

  constructor(args: StructuredLinearArgs) {
    super(args);
    if (!Number.isInteger(args.units) || args.units < 1) throw new Error(`${this.getClassName()}: units must be a positive integer, got ${args.units}`);
    this.units = args.units;
    this.useBias = args.useBias ?? true;
    this.guide = args.guide ?? false;
    this.seed = args.seed ?? 1;
    this.initStd = args.initStd ?? 0.02;
    this.init = args.init ?? 'paper';
    this.mergeThreshold = args.mergeThreshold ?? 0;
  }

  /** Throws when N (inputs) and M (outputs) do not fit the structure. */
  protected abstract validateDims(n: number, m: number): void;
  /** Kernel names, shapes and initial values for N inputs. */
  protected abstract initKernels(n: number, rng: Rng): { name: string; shape: number[]; values: Float32Array }[];
  /** S(x) without bias for x [T, N]. */
  abstract structured(x: tf.Tensor2D): tf.Tensor2D;

  /** S(x) + b; maps whose last stage is a GEMM fold the bias into it (one pass less over the output). */
  protected structuredBias(x: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
    const s = this.structured(x);
    return b ? (tf.add(s, b) as tf.Tensor2D) : s;
  }
  /** Weights of the structured map for N inputs and M outputs (official code's count). */
  abstract weightCountFor(n: number, m: number): number;

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const n = shape[shape.length - 1];
    if (n == null) throw new Error(`${this.getClassName()} needs a known last input dimension`);
    this.validateDims(n, this.units);
    this.inFeatures = n;
    const rng = new Rng(this.seed);
    for (const k of this.initKernels(n, rng)) {
      const v = this.addWeight(k.name, k.shape, 'float32', tf.initializers.zeros());
      const t = tf.tensor(k.values, k.shape, 'float32');
      v.write(t);
      t.dispose();
      this.kernels.push({ name: k.name, v });
    }
    if (this.useBias) this.biasW = this.addWeight('bias', [this.units], 'float32', tf.initializers.zeros());
    if (this.guide) {
      this.guideW = this.addWeight('guide', [n, this.units], 'float32', tf.initializers.zeros());
      const d = this.denseMatrix();
      this.guideW.write(d);
      d.dispose();
    }
    this.inputSpec = [{ minNDim: 2, axes: { [-1]: n } }];
    this.built = true;
  }

  /** Builds the layer for `n` inputs if needed (for use outside a tf.layers model). */
  ensureBuilt(n: number): this {
    if (!this.built) this.build([null, n]);
    return this;
  }

  protected k(i: number): tf.Tensor {
    return this.kernels[i].v.read();
  }

  /** The dense [N, M] matrix of S: S applied to the identity (exact, no nonlinearity inside S). */
  denseMatrix(): tf.Tensor2D {
    return tf.tidy(() => this.structured(tf.eye(this.inFeatures) as tf.Tensor2D));
  }

  /** Pre-merge: store the dense matrix next to the factors (replacing an older one). */
  merge(threshold?: number): void {
    if (threshold !== undefined) this.mergeThreshold = threshold;
    this.mergedKernel?.dispose();
    this.mergedKernel = tf.keep(this.denseMatrix());
  }

  unmerge(): void {
    this.mergedKernel?.dispose();
    this.mergedKernel = null;
  }

  get merged(): tf.Tensor2D | null {
    return this.mergedKernel;
  }

  /** The path a call with `tokens` rows takes: `merged` (one GEMM) or `structured` (the factors). */
  pathFor(tokens: number, opts: ForwardOptions = {}): 'merged' | 'structured' {
    const guiding = this.guideW !== null && (opts.alpha ?? 0) > 0 && opts.useGuide !== false;
    return this.mergedKernel && !guiding && tokens <= this.mergeThreshold ? 'merged' : 'structured';
  }

  /** y = S(x) (or the SGT mixture, or the merged GEMM for small calls) + b, for x [T, N]. */
  forward(x: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    return tf.tidy(() => {
      const alpha = opts.alpha ?? 0;
      const b = this.biasW ? (this.biasW.read() as tf.Tensor1D) : null;
      if (this.pathFor(x.shape[0], opts) === 'merged') return linear(x, this.mergedKernel!, b ?? undefined);
      if (this.guideW && alpha > 0 && opts.useGuide !== false) {
        const s = this.structured(x);
        const g = linear(x, this.guideW.read() as tf.Tensor2D);
        const y = (alpha >= 1 ? g : tf.add(tf.mul(g, alpha), tf.mul(s, 1 - alpha))) as tf.Tensor2D;
        return b ? (tf.add(y, b) as tf.Tensor2D) : y;
      }
      return this.structuredBias(x, b);
    });
  }

  /** Removes the SGT guide (weights and config flag), e.g. once α has reached 0. */
  dropGuide(): void {
    if (!this.guideW) return;
    const g = this.guideW;
    this._trainableWeights = this._trainableWeights.filter((w) => w !== g);
    g.dispose();
    this.guideW = null;
    this.guide = false;
  }

  get guideVariable(): tf.Variable | null {
    return this.guideW ? (this.guideW.read() as tf.Variable) : null;
  }

  /** Trainable variables with short names: kernels, `bias`, `guide`. */
  namedVariables(): { name: string; variable: tf.Variable }[] {
    const out = this.kernels.map((k) => ({ name: k.name, variable: k.v.read() as tf.Variable }));
    if (this.biasW) out.push({ name: 'bias', variable: this.biasW.read() as tf.Variable });
    if (this.guideW) out.push({ name: 'guide', variable: this.guideW.read() as tf.Variable });
    return out;
  }

  /** Weights of the structured map (no bias, no guide). */
  weightCount(): number {
    return this.weightCountFor(this.inFeatures, this.units);
  }

  /** Frees weights and the merged copy (for layers used outside a tf.layers model). */
  release(): void {
    this.unmerge();
    for (const k of this.kernels) k.v.dispose();
    this.biasW?.dispose();
    this.guideW?.dispose();
    this.kernels = [];
    this.biasW = null;
    this.guideW = null;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...shape.slice(0, -1), this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const lead = x.shape.slice(0, -1);
      const y = this.forward(tf.reshape(x, [-1, this.inFeatures]) as tf.Tensor2D, { alpha: this.guideAlpha });
      return tf.reshape(y, [...lead, this.units]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      useBias: this.useBias,
      guide: this.guide,
      seed: this.seed,
      initStd: this.initStd,
      init: this.init,
      mergeThreshold: this.mergeThreshold,
    };
  }
}

export interface LowRankLinearArgs extends StructuredLinearArgs {
  rank: number;
}

/** U(V x): rank-r factorisation (LowRank; weights r(N+M)). */
export class LowRankLinear extends StructuredLinear {
  static className = 'LowRankLinear';
  readonly rank: number;

  constructor(args: LowRankLinearArgs) {
    super(args);
    this.rank = args.rank;
  }

  protected validateDims(n: number, m: number): void {
    if (!Number.isInteger(this.rank) || this.rank < 1 || this.rank > Math.min(n, m)) {
      throw new Error(`LowRankLinear: rank must be an integer in [1, min(${n}, ${m})], got ${this.rank}`);
    }
  }

  protected initKernels(n: number, rng: Rng) {
    const m = this.units;
    const r = this.rank;
    if (this.init === 'paper') {
      const { left, right } = balancedFactors(gaussian(rng, n, m, this.initStd), n, m, r);
      return [
        { name: 'kernel_v', shape: [n, r], values: f32(left) },
        { name: 'kernel_u', shape: [r, m], values: f32(right) },
      ];
    }
    return [
      { name: 'kernel_v', shape: [n, r], values: f32(gaussian(rng, n, r, this.initStd)) },
      { name: 'kernel_u', shape: [r, m], values: f32(gaussian(rng, r, m, this.initStd)) },
    ];
  }

  structured(x: tf.Tensor2D): tf.Tensor2D {
    return this.structuredBias(x, null);
  }

  protected override structuredBias(x: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
    return tf.tidy(() => linear(linear(x, this.k(0) as tf.Tensor2D), this.k(1) as tf.Tensor2D, b ?? undefined));
  }

  weightCountFor(n: number, m: number): number {
    return this.rank * (n + m);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rank: this.rank };
  }
}
tf.serialization.registerClass(LowRankLinear);

export interface BlockDenseLinearArgs extends StructuredLinearArgs {
  rank: number;
  blocks: number;
}

/** U(V_b x): block-diagonal to rank r, then dense (BlockDense; weights r(N/b + M)). */
export class BlockDenseLinear extends StructuredLinear {
  static className = 'BlockDenseLinear';
  readonly rank: number;
  readonly blocks: number;

  constructor(args: BlockDenseLinearArgs) {
    super(args);
    this.rank = args.rank;
    this.blocks = args.blocks;
  }

  protected validateDims(n: number, m: number): void {
    const { rank: r, blocks: b } = this;
    if (!Number.isInteger(b) || b < 1) throw new Error(`BlockDenseLinear: blocks must be a positive integer, got ${b}`);
    if (!Number.isInteger(r) || r < 1) throw new Error(`BlockDenseLinear: rank must be a positive integer, got ${r}`);
    if (n % b !== 0 || r % b !== 0) throw new Error(`BlockDenseLinear: inputs ${n} and rank ${r} must be divisible by blocks ${b}`);
    void m;
  }

  protected initKernels(n: number, rng: Rng) {
    const { rank: r, blocks: b, units: m } = this;
    const bi = n / b;
    const bo = r / b;
    const blk = new Float32Array(b * bi * bo);
    for (let i = 0; i < b; i++) {
      let w = gaussian(rng, bi, bo, this.initStd);
      if (this.init === 'paper') w = polar(w, bi, bo);
      blk.set(f32(w), i * bi * bo);
    }
    let u = gaussian(rng, r, m, this.initStd);
    if (this.init === 'paper') u = polar(u, r, m);
    return [
      { name: 'blocks_v', shape: [b, bi, bo], values: blk },
      { name: 'kernel_u', shape: [r, m], values: f32(u) },
    ];
  }

  structured(x: tf.Tensor2D): tf.Tensor2D {
    return this.structuredBias(x, null);
  }

  protected override structuredBias(x: tf.Tensor2D, b: tf.Tensor1D | null): tf.Tensor2D {
    return tf.tidy(() => {
      const T = x.shape[0];
      const h = blockStage(x, this.k(0) as tf.Tensor3D); // [b, T, r/b]
      const hr = tf.reshape(tf.transpose(h, [1, 0, 2]), [T, this.rank]) as tf.Tensor2D;
      return linear(hr, this.k(1) as tf.Tensor2D, b ?? undefined);
    });
  }

  weightCountFor(n: number, m: number): number {
    return this.rank * (n / this.blocks + m);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rank: this.rank, blocks: this.blocks };
  }
}
tf.serialization.registerClass(BlockDenseLinear);

export interface BlockShuffleLinearArgs extends StructuredLinearArgs {
  blocks: number;
}

/** f⁻¹(U_b f(V_b x)): two block-diagonal stages with a channel shuffle (BlockShuffle; Monarch-like). */
export class BlockShuffleLinear extends StructuredLinear {
  static className = 'BlockShuffleLinear';
  readonly blocks: number;

  constructor(args: BlockShuffleLinearArgs) {
    super(args);
    this.blocks = args.blocks;
  }

  protected validateDims(n: number, m: number): void {
    const b = this.blocks;
    if (!Number.isInteger(b) || b < 1) throw new Error(`BlockShuffleLinear: blocks must be a positive integer, got ${b}`);
    if (n % b !== 0 || m % b !== 0) throw new Error(`BlockShuffleLinear: inputs ${n} and outputs ${m} must be divisible by blocks ${b}`);
  }

  protected initKernels(n: number, rng: Rng) {
    const b = this.blocks;
    const m = this.units;
    const q = Math.min(n, m) / b;
    const stage = (nIn: number, nOut: number) => {
      const out = new Float32Array(b * nIn * nOut);
      for (let i = 0; i < b; i++) {
        let w = gaussian(rng, nIn, nOut, this.initStd);
        if (this.init === 'paper') w = polar(w, nIn, nOut);
        out.set(f32(w), i * nIn * nOut);
      }
      return out;
    };
    return [
      { name: 'blocks_1', shape: [b, n / b, q], values: stage(n / b, q) },
      { name: 'blocks_2', shape: [b, q, m / b], values: stage(q, m / b) },
    ];
  }

  structured(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const b = this.blocks;
      const T = x.shape[0];
      const w1 = this.k(0) as tf.Tensor3D;
      const q = w1.shape[2];
      const h1 = blockStage(x, w1); // [b, T, q], flat feature of (c1, t1) is c1·q + t1
      // Shuffle: stage-2 block c reads flat features c, c+b, c+2b, … → [b, T, q].
      const flat = tf.reshape(tf.transpose(h1, [1, 0, 2]), [T, q, b]);
      const h2in = tf.transpose(flat, [2, 0, 1]) as tf.Tensor3D;
      const h2 = tf.matMul(h2in, this.k(1) as tf.Tensor3D); // [b, T, M/b]
      // Inverse shuffle: output index t·b + c.
      return tf.reshape(tf.transpose(h2, [1, 2, 0]), [T, this.units]) as tf.Tensor2D;
    });
  }

  weightCountFor(n: number, m: number): number {
    return (Math.min(n, m) * (n + m)) / this.blocks;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), blocks: this.blocks };
  }
}
tf.serialization.registerClass(BlockShuffleLinear);

export interface StructuredMapSpec {
  map: StructuredMap;
  rank?: number;
  blocks?: number;
}

/** Creates the layer for a map spec (not yet built). */
export function createStructuredLinear(spec: StructuredMapSpec, args: StructuredLinearArgs): StructuredLinear {
  switch (spec.map) {
    case 'lowrank':
      return new LowRankLinear({ ...args, rank: spec.rank ?? NaN });
    case 'blockdense':
      return new BlockDenseLinear({ ...args, rank: spec.rank ?? NaN, blocks: spec.blocks ?? NaN });
    case 'blockshuffle':
      return new BlockShuffleLinear({ ...args, blocks: spec.blocks ?? NaN });
    default:
      throw new Error(`unknown structured map "${String(spec.map)}"`);
  }
}
