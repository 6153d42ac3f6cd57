/**
 * The pluggable feed-forward block of the transformer (src/models/transformer.ts).
 *
 * An FFN maps token rows [tokens, d] to [tokens, d]. Every kind (dense here; structured in
 * src/methods/structured-ffn; mixture-of-experts later) implements `Ffn` and registers a factory under
 * its `kind`, so a saved model's JSON spec rebuilds the right module. The transformer only ever calls
 * `apply`, collects `variables()` for the optimizer, and asks `macsPerToken()` for FLOP accounting.
 *
 * Extension points for other kinds, all optional:
 * - `ctx.addAuxLoss` lets a module add a scalar to the training loss (e.g. a MoE load-balancing loss);
 * - `ctx.rng` is the run's seeded stream for stochastic routing/skipping (never Math.random);
 * - `ctx.stats` accumulates extra multiply-adds actually spent (e.g. SGT's dense guide, MoE routing);
 * - `ctx.guideAlpha` is self-guided training's mixing weight α_t (0 = off), which other kinds ignore.
 */
import * as tf from '@tensorflow/tfjs';
import { fusedGelu, fusedSumRows } from '../engine/fused.js';
import { Rng } from '../engine/rng.js';
import { Registry } from '../util/registry.js';

/** A JSON description of one FFN module: `kind` picks the registered factory, the rest is its own. */
export interface FfnSpec {
  kind: string;
  [key: string]: unknown;
}

export interface FfnContext {
  /** Training forward (stochastic parts active) or evaluation/inference. */
  training: boolean;
  /** Seeded randomness for stochastic modules; null in deterministic evaluation. */
  rng: Rng | null;
  /** Self-guided training's α_t for this step (0 or absent = no guidance). */
  guideAlpha?: number;
  /**
   * SGT's stochastic skip in training (default true): each guided map uses its guide with probability α_t.
   * false = the deterministic mixture on every step.
   */
  guideSkip?: boolean;
  /** Adds an auxiliary scalar to the loss (called inside the loss closure). */
  addAuxLoss?(loss: tf.Scalar): void;
  /**
   * Hidden dropout of a training forward (BERT's `hidden_dropout_prob`: on the embeddings and on each attention
   * and FFN output before the residual add), seeded from `rng`; 0/absent = none.
   */
  hiddenDropout?: number;
  /** Optimizer step of a training forward (0-based), for step-scheduled modules such as MoE competition. */
  step?: number;
  /** Extra multiply-adds per token actually spent beyond `macsPerToken()` (summed over calls). */
  stats?: { extraMacsPerToken: number };
}

export interface NamedVariable {
  /** Stable name within the module (e.g. `fc1/kernel_v`); the transformer prefixes the block. */
  name: string;
  variable: tf.Variable;
}

export interface Ffn {
  readonly kind: string;
  readonly dModel: number;
  readonly dFf: number;
  /** [tokens, dModel] → [tokens, dModel]. Call inside tf.tidy / variableGrads. */
  apply(x: tf.Tensor2D, ctx: FfnContext): tf.Tensor2D;
  /** Trainable variables (those the optimizer updates), in a stable order. */
  variables(): NamedVariable[];
  /** Weights of the linear maps (no biases, no SGT guide): the paper's "FFN parameters". */
  weightCount(): number;
  /** Forward multiply-adds per token of the main path (= weightCount for linear maps). */
  macsPerToken(): number;
  /** JSON spec that rebuilds this module through `createFfn` (weights are saved separately). */
  spec(): FfnSpec;
  dispose(): void;
}

export interface FfnDims {
  dModel: number;
  dFf: number;
}

export type FfnFactory = (spec: FfnSpec, dims: FfnDims, seed: number, initStd: number) => Ffn;

/** Every FFN kind by name; `createFfn` builds one from its JSON spec. */
export const ffnKinds = new Registry<FfnFactory>('FFN kind');

/** Registers an FFN kind (idempotent for the same factory; a different one under a taken name throws). */
export function registerFfn(kind: string, factory: FfnFactory): void {
  ffnKinds.register(kind, factory);
}

export function createFfn(spec: FfnSpec, dims: FfnDims, seed: number, initStd = 0.02): Ffn {
  return ffnKinds.get(spec.kind, 'import its module first')(spec, dims, seed, initStd);
}

/**
 * GELU, tanh approximation (Hendrycks & Gimpel 2016; GPT-2), computed through the exact identity
 * ½x(1 + tanh u) = x·σ(2u), u = √(2/π)(x + 0.044715x³): on wasm `Sigmoid` is ~6x faster than `Tanh` and
 * x·x·x ~6x faster than `Pow`.
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  // y = x·σ(u), u = x·(c + k·x²) with c = 2√(2/π), k = 0.044715·c; hand-written gradient
  // dy/dx = σ + x·σ(1−σ)·(c + 3k·x²): 13 elementwise kernels instead of ~22 from autodiff, which matters
  // because each one is a full pass over the [tokens, d_ff] activation.
  // One kernel each way on wasm+blas (the same formula); elsewhere exactly the ops below.
  const fused = fusedGelu(x);
  if (fused) return fused;
  const c = 2 * Math.sqrt(2 / Math.PI);
  const k = 0.044715 * c;
  const f = tf.customGrad((...args: unknown[]) => {
    const xi = args[0] as tf.Tensor;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x2 = tf.mul(xi, xi);
    const s = tf.sigmoid(tf.mul(xi, tf.add(tf.mul(x2, k), c)));
    const y = tf.mul(xi, s);
    save([x2, s, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        // x·σ(1−σ) = y − y·σ with y = x·σ saved from the forward.
        const [x2s, ss, ys] = saved;
        const dudx = tf.add(tf.mul(x2s, 3 * k), c);
        return [tf.mul(dy, tf.add(ss, tf.mul(tf.sub(ys, tf.mul(ys, ss)), dudx)))];
      },
    };
  });
  return f(x) as T;
}

/**
 * y = x·W (+ b) with a hand-written gradient tuned for the wasm backend: the weight gradient xᵀ·dy transposes
 * whichever of x [T, N] and dy [T, M] is narrower (the stock gradient always transposes x, and wasm's
 * Transpose of a [1024, 1024] activation costs more than the matmul), and the bias gradient is the GEMM
 * 1ᵀ·dy instead of a column reduction. The forward adds the bias inside the (fused) matmul kernel.
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  const f = tf.customGrad((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [xi, wi, bi] = args.slice(0, -1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D | undefined];
    save([xi, wi]);
    const y = bi ? (tf.fused.matMul({ a: xi, b: wi, bias: bi }) as tf.Tensor2D) : tf.matMul(xi, wi);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
        const g = dy as tf.Tensor2D;
        const [T, N] = xs.shape;
        const M = g.shape[1];
        const dx = tf.matMul(g, ws, false, true);
        const dw = N <= M ? tf.matMul(xs, g, true, false) : tf.transpose(tf.matMul(g, xs, true, false));
        if (!bi) return [dx, dw];
        // A column sum in one pass on wasm+blas; elsewhere the GEMM 1ᵀ·dy.
        const db = fusedSumRows(g) ?? tf.reshape(tf.matMul(tf.ones([1, T]), g), [M]);
        return [dx, dw, db];
      },
    };
  });
  return (b ? f(x, w, b) : f(x, w)) as tf.Tensor2D;
}

/** A seeded N(0, std²) tensor (drawn in JS from the Rng so init never depends on tfjs' seeding). */
export function normalTensor(rng: Rng, shape: number[], std: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal() * std;
  return tf.tensor(v, shape, 'float32');
}

/** A trainable variable holding `init()` (the temporary initial tensor is freed). */
export function makeVariable(init: () => tf.Tensor): tf.Variable {
  const t = init();
  const v = tf.variable(t, true);
  t.dispose();
  return v;
}

/** Standard two-layer FFN: W2·gelu(W1·x + b1) + b2, weights N(0, initStd²), biases 0. */
export class DenseFfn implements Ffn {
  readonly kind = 'dense';
  readonly w1: tf.Variable;
  readonly b1: tf.Variable;
  readonly w2: tf.Variable;
  readonly b2: tf.Variable;

  constructor(
    readonly dModel: number,
    readonly dFf: number,
    rng: Rng,
    initStd: number,
  ) {
    this.w1 = makeVariable(() => normalTensor(rng, [dModel, dFf], initStd));
    this.b1 = makeVariable(() => tf.zeros([dFf]));
    this.w2 = makeVariable(() => normalTensor(rng, [dFf, dModel], initStd));
    this.b2 = makeVariable(() => tf.zeros([dModel]));
  }

  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const h = gelu(linear(x, this.w1 as tf.Tensor2D, this.b1 as tf.Tensor1D));
      return linear(h, this.w2 as tf.Tensor2D, this.b2 as tf.Tensor1D);
    });
  }

  variables(): NamedVariable[] {
    return [
      { name: 'fc1/kernel', variable: this.w1 },
      { name: 'fc1/bias', variable: this.b1 },
      { name: 'fc2/kernel', variable: this.w2 },
      { name: 'fc2/bias', variable: this.b2 },
    ];
  }

  weightCount(): number {
    return 2 * this.dModel * this.dFf;
  }

  macsPerToken(): number {
    return this.weightCount();
  }

  spec(): FfnSpec {
    return { kind: 'dense' };
  }

  dispose(): void {
    tf.dispose([this.w1, this.b1, this.w2, this.b2]);
  }
}

registerFfn('dense', (_spec, dims, seed, initStd) => new DenseFfn(dims.dModel, dims.dFf, new Rng(seed), initStd));
