/**
 * A small pre-LayerNorm causal decoder (GPT-2 / nanoGPT style) built from plain tf.Variables and functions,
 * for character-level language modelling on the wasm backend.
 *
 *   x = onehot(ids)·E                        (+ P[0:T] with positional = 'learned')
 *   for each block:  x = x + Attn(LN1(x));  x = x + FFN(LN2(x))      (RoPE on q, k by default)
 *   logits = LN_f(x)·Eᵀ                       (tied embeddings)
 *
 * Speed notes (tfjs 4.22 wasm with src/engine/wasm-patches.ts):
 * - Every projection runs on token rows [B·T, d] as one 2-D matmul (XNNPACK).
 * - Attention folds batch and heads into one batch axis: q, k, v are [B·H, T, hd]; QKᵀ and P·V are
 *   batched matmuls, which the patches run as one XNNPACK product per batch entry.
 * - The embedding lookup is onehot(ids)·E (a [B·T, V]×[V, d] matmul) and its gradient a transposed matmul,
 *   cheaper than gather + UnsortedSegmentSum at a ~100-symbol vocabulary.
 *
 * The FFN of each block is pluggable (`Ffn` in ./ffn.ts): dense, structured (src/methods/structured-ffn),
 * or any kind registered with `registerFfn`. Block 0 keeps a dense FFN by default, as in the structured-FFN
 * paper. Models save as `model.json` (config + caller's metadata) + `weights.safetensors`.
 */
import * as tf from '@tensorflow/tfjs';
import { fusedLayerNorm, fusedSoftmaxCrossEntropy } from '../engine/fused.js';
import { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';
import { decodeSafetensors, encodeSafetensors } from '../train/safetensors.js';
import { createFfn, linear, makeVariable, normalTensor, type Ffn, type FfnContext, type FfnSpec, type NamedVariable } from './ffn.js';

export interface TransformerConfig {
  vocabSize: number;
  /** Maximum sequence length (positional table size). */
  contextLength: number;
  dModel: number;
  nHeads: number;
  nLayers: number;
  dFf: number;
  /** FFN of the blocks (all of them, except block 0 when `firstLayerDense`). */
  ffn: FfnSpec;
  /** Keep block 0's FFN dense (the paper's `first_layer: true`). Default true. */
  firstLayerDense?: boolean;
  /** Std of the N(0, σ²) weight init (paper: 0.02). */
  initStd?: number;
  /** LayerNorm epsilon. */
  lnEps?: number;
  /**
   * Position information: `rope` (rotary embeddings on queries and keys, base 10000, as in the paper's
   * models; default) or `learned` (an absolute position table added to the token embeddings, GPT-2).
   */
  positional?: 'rope' | 'learned';
  /** Causal self-attention (a decoder; default true) or bidirectional (an encoder such as BERT). */
  causal?: boolean;
  /**
   * Token embedding lookup: `onehot` (onehot(ids)·E, fastest on wasm at ~100 symbols; default) or `gather`
   * (tf.gather, whose gradient is a scatter-add: cheaper at vocabularies of thousands).
   */
  embedding?: 'onehot' | 'gather';
  /**
   * How attention batches its heads: `per-head` (q, k, v as [B·H, T, hd]; default) or `packed` (one batch
   * entry per sequence: queries expanded block-diagonally to [B, H·T, d], so QKᵀ and P·V are B products
   * instead of B·H at H× the multiply-adds — faster on wasm for short sequences, where the per-entry
   * overhead of batched matmul dominates).
   */
  attention?: 'per-head' | 'packed';
}

interface Block {
  ln1g: tf.Variable;
  ln1b: tf.Variable;
  wqkv: tf.Variable;
  bqkv: tf.Variable;
  wo: tf.Variable;
  bo: tf.Variable;
  ln2g: tf.Variable;
  ln2b: tf.Variable;
  ffn: Ffn;
}

/** What a forward needs besides the token ids; `training` false gives a deterministic pass. */
export type ForwardContext = FfnContext;

export const EVAL_CONTEXT: ForwardContext = { training: false, rng: null };

/** Per-position layer normalisation over the last axis. */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D {
  return tf.tidy(() => {
    // One kernel each way on wasm+blas; elsewhere exactly these ops.
    const fused = fusedLayerNorm(x, g, b, eps);
    if (fused) return fused;
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), g), b) as tf.Tensor2D;
  });
}

export class TransformerLM {
  readonly cfg: Required<TransformerConfig>;
  readonly tokEmb: tf.Variable;
  /** Absolute position table (positional = 'learned'), else null. */
  readonly posEmb: tf.Variable | null;
  readonly blocks: Block[] = [];
  readonly lnfG: tf.Variable;
  readonly lnfB: tf.Variable;
  private readonly masks = new Map<number, tf.Tensor2D>();
  private headColumns: tf.Tensor3D | null = null;
  private readonly ropeTables = new Map<number, { cosQ: tf.Tensor2D; sinQ: tf.Tensor2D; cosK: tf.Tensor2D; sinK: tf.Tensor2D; rot: tf.Tensor2D }>();

  constructor(config: TransformerConfig, seed: number) {
    const cfg: Required<TransformerConfig> = { firstLayerDense: true, initStd: 0.02, lnEps: 1e-5, positional: 'rope', causal: true, embedding: 'onehot', attention: 'per-head', ...config };
    if (cfg.dModel % cfg.nHeads !== 0) throw new UserError(`dModel ${cfg.dModel} is not divisible by nHeads ${cfg.nHeads}`);
    for (const k of ['vocabSize', 'contextLength', 'dModel', 'nHeads', 'nLayers', 'dFf'] as const) {
      if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw new UserError(`transformer ${k} must be a positive integer, got ${cfg[k]}`);
    }
    this.cfg = cfg;
    const { vocabSize: V, contextLength: C, dModel: d, initStd: std } = cfg;
    // Independent streams: shared parts (embeddings, attention) depend only on the seed, so runs of different
    // FFN kinds with the same seed start from the same non-FFN weights.
    const rng = new Rng(seed);
    const ffnSeeds = Array.from({ length: cfg.nLayers }, () => rng.nextUint32());
    const v = makeVariable;
    this.tokEmb = v(() => normalTensor(rng, [V, d], std));
    // The position table is drawn in both modes so that the remaining weights do not depend on the choice.
    const pos = normalTensor(rng, [C, d], std);
    this.posEmb = cfg.positional === 'learned' ? v(() => pos.clone()) : null;
    pos.dispose();
    for (let l = 0; l < cfg.nLayers; l++) {
      this.blocks.push({
        ln1g: v(() => tf.ones([d])),
        ln1b: v(() => tf.zeros([d])),
        wqkv: v(() => normalTensor(rng, [d, 3 * d], std)),
        bqkv: v(() => tf.zeros([3 * d])),
        wo: v(() => normalTensor(rng, [d, d], std)),
        bo: v(() => tf.zeros([d])),
        ln2g: v(() => tf.ones([d])),
        ln2b: v(() => tf.zeros([d])),
        ffn: createFfn(this.ffnSpecFor(l), { dModel: d, dFf: cfg.dFf }, ffnSeeds[l], std),
      });
    }
    this.lnfG = v(() => tf.ones([d]));
    this.lnfB = v(() => tf.zeros([d]));
  }

  /** The FFN spec of block `l` (block 0 is dense when `firstLayerDense`). */
  ffnSpecFor(l: number): FfnSpec {
    return l === 0 && this.cfg.firstLayerDense ? { kind: 'dense' } : this.cfg.ffn;
  }

  /** All trainable variables with stable names (the safetensors keys). */
  namedVariables(): NamedVariable[] {
    const out: NamedVariable[] = [{ name: 'tok_emb', variable: this.tokEmb }];
    if (this.posEmb) out.push({ name: 'pos_emb', variable: this.posEmb });
    this.blocks.forEach((b, l) => {
      const p = `h${l}/`;
      out.push(
        { name: p + 'ln1/g', variable: b.ln1g },
        { name: p + 'ln1/b', variable: b.ln1b },
        { name: p + 'attn/qkv/kernel', variable: b.wqkv },
        { name: p + 'attn/qkv/bias', variable: b.bqkv },
        { name: p + 'attn/out/kernel', variable: b.wo },
        { name: p + 'attn/out/bias', variable: b.bo },
        { name: p + 'ln2/g', variable: b.ln2g },
        { name: p + 'ln2/b', variable: b.ln2b },
      );
      for (const fv of b.ffn.variables()) out.push({ name: `${p}ffn/${fv.name}`, variable: fv.variable });
    });
    out.push({ name: 'ln_f/g', variable: this.lnfG }, { name: 'ln_f/b', variable: this.lnfB });
    return out;
  }

  variables(): tf.Variable[] {
    return this.namedVariables().map((n) => n.variable);
  }

  paramCount(): number {
    return this.variables().reduce((s, v) => s + v.size, 0);
  }

  /** Sum of `weightCount()` over the blocks' FFNs (linear-map weights, the paper's FFN parameters). */
  ffnWeightCount(): number {
    return this.blocks.reduce((s, b) => s + b.ffn.weightCount(), 0);
  }

  /**
   * Forward multiply-adds per token at sequence length T (default the context length): embeddings (one-hot
   * matmul), QKV/out projections, QKᵀ and P·V over the full T×T square, FFNs, and the tied output head.
   * Training FLOPs per token ≈ 6× this (forward 2×, backward 4×).
   */
  macsPerToken(T = this.cfg.contextLength): number {
    const { dModel: d, vocabSize: V } = this.cfg;
    let macs = 2 * V * d; // one-hot embedding + tied head
    for (const b of this.blocks) macs += 4 * d * d + 2 * T * d + b.ffn.macsPerToken();
    return macs;
  }

  private causalMask(T: number): tf.Tensor2D {
    let m = this.masks.get(T);
    if (!m) {
      const v = new Float32Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) v[i * T + j] = -1e9;
      m = tf.keep(tf.tensor2d(v, [T, T]));
      this.masks.set(T, m);
    }
    return m;
  }

  /** RoPE tables for length T (GPT-NeoX rotate-half pairing (i, i + hd/2), base 10000), cached. */
  private rope(T: number) {
    let r = this.ropeTables.get(T);
    if (!r) {
      const { dModel: d, nHeads: H } = this.cfg;
      const hd = d / H;
      const h2 = hd / 2;
      if (hd % 2 !== 0) throw new UserError(`rope needs an even head dimension, got ${hd}`);
      const cos = new Float32Array(T * d);
      const sin = new Float32Array(T * d);
      for (let t = 0; t < T; t++)
        for (let c = 0; c < d; c++) {
          const j = (c % hd) % h2;
          const ang = t * Math.pow(10000, (-2 * j) / hd);
          cos[t * d + c] = Math.cos(ang);
          sin[t * d + c] = Math.sin(ang);
        }
      const rot = new Float32Array(d * d);
      for (let h = 0; h < H; h++)
        for (let o = 0; o < hd; o++) {
          const base = h * hd;
          if (o < h2) rot[(base + o + h2) * d + base + o] = -1;
          else rot[(base + o - h2) * d + base + o] = 1;
        }
      const s = 1 / Math.sqrt(hd);
      const t2 = (a: Float32Array, k = 1) => tf.keep(tf.tensor2d(k === 1 ? a : a.map((v) => v * k), [T, d]));
      r = { cosQ: t2(cos, s), sinQ: t2(sin, s), cosK: t2(cos), sinK: t2(sin), rot: tf.keep(tf.tensor2d(rot, [d, d])) };
      this.ropeTables.set(T, r);
    }
    return r;
  }

  private attention(x: tf.Tensor2D, b: Block, B: number, T: number, keyBias: tf.Tensor | null): tf.Tensor2D {
    const { dModel: d, nHeads: H } = this.cfg;
    const hd = d / H;
    const qkv = linear(x, b.wqkv as tf.Tensor2D, b.bqkv as tf.Tensor1D);
    const [q0, k0, v0] = tf.split(qkv, 3, 1);
    const heads = (t: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]), [B * H, T, hd]) as tf.Tensor3D;
    let qs: tf.Tensor = q0;
    let ks: tf.Tensor = k0;
    if (this.cfg.positional === 'rope') {
      // Rotary embeddings in the [B, T, d] layout: x·cos + rotate_half(x)·sin, rotate_half as one GEMM with a
      // block-diagonal ±1 matrix; the 1/√hd query scale is folded into the query tables.
      const r = this.rope(T);
      const rot = (x: tf.Tensor, c: tf.Tensor2D, sn: tf.Tensor2D) =>
        tf.reshape(tf.add(tf.mul(tf.reshape(x, [B, T, d]), c), tf.mul(tf.reshape(tf.matMul(x as tf.Tensor2D, r.rot), [B, T, d]), sn)), [B * T, d]);
      qs = rot(q0, r.cosQ, r.sinQ);
      ks = rot(k0, r.cosK, r.sinK);
    } else qs = tf.mul(q0, 1 / Math.sqrt(hd));
    if (this.cfg.attention === 'packed') return linear(this.packedAttention(qs, ks, v0, B, T, keyBias), b.wo as tf.Tensor2D, b.bo as tf.Tensor1D);
    const q = heads(qs);
    const k = heads(ks);
    const v = heads(v0);
    let scores = tf.matMul(q, k, false, true);
    if (this.cfg.causal) scores = tf.add(scores, this.causalMask(T));
    if (keyBias) scores = tf.reshape(tf.add(tf.reshape(scores, [B, H, T, T]), keyBias), [B * H, T, T]) as tf.Tensor3D;
    const p = tf.softmax(scores, -1) as tf.Tensor3D;
    const o = tf.matMul(p, v); // [B·H, T, hd]
    const merged = tf.reshape(tf.transpose(tf.reshape(o, [B, H, T, hd]), [0, 2, 1, 3]), [B * T, d]) as tf.Tensor2D;
    return linear(merged, b.wo as tf.Tensor2D, b.bo as tf.Tensor1D);
  }

  /**
   * Multi-head attention with one batch entry per sequence: row (h, t) of Q̃ [B, H·T, d] is q_t with the
   * columns of the other heads zeroed, so Q̃·Kᵀ [B, H·T, T] holds every head's scores; after the softmax,
   * P·V [B, H·T, d] keeps head h's columns of row (h, t), which are summed over h.
   */
  private packedAttention(qs: tf.Tensor, ks: tf.Tensor, v0: tf.Tensor, B: number, T: number, keyBias: tf.Tensor | null): tf.Tensor2D {
    const { dModel: d, nHeads: H } = this.cfg;
    if (!this.headColumns) {
      const m = new Float32Array(H * d);
      for (let h = 0; h < H; h++) for (let c = h * (d / H); c < (h + 1) * (d / H); c++) m[h * d + c] = 1;
      this.headColumns = tf.keep(tf.tensor3d(m, [H, 1, d]));
    }
    const hc = this.headColumns;
    const q = tf.reshape(tf.mul(tf.reshape(qs, [B, 1, T, d]), hc), [B, H * T, d]) as tf.Tensor3D;
    let scores: tf.Tensor = tf.matMul(q, tf.reshape(ks, [B, T, d]) as tf.Tensor3D, false, true); // [B, H·T, T]
    if (this.cfg.causal || keyBias) {
      let s4 = tf.reshape(scores, [B, H, T, T]);
      if (this.cfg.causal) s4 = tf.add(s4, this.causalMask(T));
      if (keyBias) s4 = tf.add(s4, keyBias);
      scores = tf.reshape(s4, [B, H * T, T]);
    }
    const p = tf.softmax(scores, -1) as tf.Tensor3D;
    const o = tf.reshape(tf.matMul(p, tf.reshape(v0, [B, T, d]) as tf.Tensor3D), [B, H, T, d]);
    return tf.reshape(tf.sum(tf.mul(o, hc), 1), [B * T, d]) as tf.Tensor2D;
  }

  /**
   * Final hidden states [B·T, d] for token ids [B, T] (int32). `keyMask` [B, T] (1 = real token, 0 = padding)
   * stops every position from attending to padding keys.
   */
  hidden(ids: tf.Tensor2D, ctx: ForwardContext = EVAL_CONTEXT, keyMask?: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const xs = this.residualStreams(ids, ctx, keyMask);
      return layerNorm(xs[xs.length - 1], this.lnfG, this.lnfB, this.cfg.lnEps);
    });
  }

  /**
   * The residual stream [B·T, d] after the embeddings and after each block (nLayers + 1 tensors, before the
   * final LayerNorm; `hidden` is the last one normalised). For readers of every layer, such as a scalar mix.
   */
  residualStreams(ids: tf.Tensor2D, ctx: ForwardContext = EVAL_CONTEXT, keyMask?: tf.Tensor2D): tf.Tensor2D[] {
    const [B, T] = ids.shape;
    const { vocabSize: V, dModel: d, contextLength: C, lnEps: eps } = this.cfg;
    if (T > C) throw new Error(`sequence length ${T} exceeds the context length ${C}`);
    return tf.tidy(() => {
      const flat = tf.reshape(ids, [B * T]) as tf.Tensor1D;
      const tok = this.cfg.embedding === 'gather' ? (tf.gather(this.tokEmb, flat) as tf.Tensor2D) : tf.matMul(tf.oneHot(flat, V) as tf.Tensor2D, this.tokEmb as tf.Tensor2D);
      const keyBias = keyMask ? tf.reshape(tf.mul(tf.sub(1, tf.cast(keyMask, 'float32')), -1e9), [B, 1, 1, T]) : null;
      let x = tok as tf.Tensor2D;
      if (this.posEmb) {
        const pos = T === C ? this.posEmb : tf.slice(this.posEmb, [0, 0], [T, d]);
        x = tf.reshape(tf.add(tf.reshape(tok, [B, T, d]), pos), [B * T, d]) as tf.Tensor2D;
      }
      const rate = ctx.training && ctx.rng ? (ctx.hiddenDropout ?? 0) : 0;
      const rng = ctx.rng;
      const drop = (y: tf.Tensor2D): tf.Tensor2D => (rate > 0 && rng ? (tf.dropout(y, rate, undefined, rng.int(2147483647)) as tf.Tensor2D) : y);
      x = drop(x);
      const out = [x];
      for (const b of this.blocks) {
        x = tf.add(x, drop(this.attention(layerNorm(x, b.ln1g, b.ln1b, eps), b, B, T, keyBias))) as tf.Tensor2D;
        x = tf.add(x, drop(b.ffn.apply(layerNorm(x, b.ln2g, b.ln2b, eps), ctx))) as tf.Tensor2D;
        out.push(x);
      }
      return out;
    });
  }

  /** Next-token logits [B·T, V] for token ids [B, T]. */
  logits(ids: tf.Tensor2D, ctx: ForwardContext = EVAL_CONTEXT): tf.Tensor2D {
    return tf.tidy(() => tf.matMul(this.hidden(ids, ctx), this.tokEmb as tf.Tensor2D, false, true));
  }

  /** Mean next-token cross-entropy in nats (plus any auxiliary FFN losses when `withAux`). */
  loss(ids: tf.Tensor2D, targets: tf.Tensor2D, ctx: ForwardContext = EVAL_CONTEXT, withAux = true): tf.Scalar {
    return tf.tidy(() => {
      // Aux losses are created inside the blocks' own tidy scopes: keep them until they are summed.
      const aux: tf.Scalar[] = [];
      const c: ForwardContext = withAux ? { ...ctx, addAuxLoss: (l) => aux.push(tf.keep(l)) } : ctx;
      try {
        const logits = this.logits(ids, c);
        const n = logits.shape[0];
        const y = tf.oneHot(tf.reshape(targets, [n]) as tf.Tensor1D, this.cfg.vocabSize);
        // One kernel each way on wasm+blas; elsewhere exactly these ops.
        const ce = fusedSoftmaxCrossEntropy(y, logits) ?? (tf.neg(tf.div(tf.sum(tf.mul(y, tf.logSoftmax(logits, -1))), n)) as tf.Scalar);
        return aux.length ? (tf.add(ce, tf.addN(aux)) as tf.Scalar) : ce;
      } finally {
        tf.dispose(aux);
      }
    });
  }

  /**
   * The model as two files' contents: `model.json` (config, per-block FFN specs, `meta`) and
   * `weights.safetensors`. `saveTransformer` (efftrain/node) writes them to a directory.
   */
  toFiles(meta: Record<string, unknown> = {}): { json: string; weights: Uint8Array } {
    const tensors: Record<string, tf.Tensor> = {};
    for (const { name, variable } of this.namedVariables()) tensors[name] = variable;
    const ffns = this.blocks.map((b) => b.ffn.spec());
    return {
      json: JSON.stringify({ format: 'efftrain-transformer', version: 1, config: this.cfg, ffns, meta }, null, 2) + '\n',
      weights: encodeSafetensors(tensors, { format: 'efftrain-transformer' }),
    };
  }

  /**
   * Rebuilds a model from `toFiles` output (FFN kinds must be registered: import their modules first).
   * `names` label the two sources in errors (file paths when read from disk).
   */
  static fromFiles(jsonText: string, weights: Uint8Array, names = { json: 'model.json', weights: 'weights.safetensors' }): { model: TransformerLM; meta: Record<string, unknown> } {
    const jp = names.json;
    const wp = names.weights;
    let json: { format?: string; config: TransformerConfig; ffns?: FfnSpec[]; meta?: Record<string, unknown> };
    try {
      json = JSON.parse(jsonText);
    } catch (e) {
      throw new UserError(`${jp}: invalid JSON (${(e as Error).message})`);
    }
    if (json.format !== 'efftrain-transformer') throw new UserError(`${jp}: not an efftrain transformer model`);
    const model = new TransformerLM(json.config, 0);
    // Saved per-block specs win (e.g. a structured FFN saved after SGT no longer has a guide).
    if (json.ffns) {
      model.blocks.forEach((b, l) => {
        const want = json.ffns![l];
        if (JSON.stringify(want) !== JSON.stringify(b.ffn.spec())) {
          b.ffn.dispose();
          b.ffn = createFfn(want, { dModel: model.cfg.dModel, dFf: model.cfg.dFf }, 0, model.cfg.initStd);
        }
      });
    }
    const { tensors } = decodeSafetensors(weights, wp);
    try {
      for (const { name, variable } of model.namedVariables()) {
        const t = tensors[name];
        if (!t) throw new UserError(`${wp}: missing tensor ${name}`);
        if (t.shape.join('x') !== variable.shape.join('x')) throw new UserError(`${wp}: ${name} has shape [${t.shape}], the model expects [${variable.shape}]`);
        variable.assign(t);
      }
    } finally {
      tf.dispose(Object.values(tensors));
    }
    return { model, meta: json.meta ?? {} };
  }

  dispose(): void {
    const own = new Set(this.blocks.flatMap((b) => b.ffn.variables().map((v) => v.variable)));
    tf.dispose(this.variables().filter((v) => !own.has(v)));
    for (const b of this.blocks) b.ffn.dispose();
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
    this.headColumns?.dispose();
    this.headColumns = null;
    for (const r of this.ropeTables.values()) tf.dispose(Object.values(r));
    this.ropeTables.clear();
  }
}

/**
 * Samples `n` tokens after `prompt` (ids) with temperature and top-k, seeded. Each step feeds the last
 * `contextLength` tokens (no KV cache: the model is small) and samples from the last position.
 */
export function sampleTokens(model: TransformerLM, prompt: number[], n: number, opts: { temperature?: number; topK?: number; seed?: number } = {}): number[] {
  const temperature = opts.temperature ?? 1;
  const topK = opts.topK ?? 0;
  const rng = new Rng(opts.seed ?? 1);
  const out = [...prompt];
  const C = model.cfg.contextLength;
  for (let i = 0; i < n; i++) {
    const ctxIds = out.slice(-C);
    const logits = tf.tidy(() => {
      const ids = tf.tensor2d(Int32Array.from(ctxIds), [1, ctxIds.length], 'int32');
      const l = model.logits(ids, EVAL_CONTEXT);
      return tf.slice(l, [ctxIds.length - 1, 0], [1, -1]);
    });
    const z = Float64Array.from(logits.dataSync());
    logits.dispose();
    out.push(sampleFromLogits(z, temperature, topK, rng));
  }
  return out.slice(prompt.length);
}

/** One draw from softmax(z / temperature) restricted to the top-k logits (k = 0: all); temperature 0 = argmax. */
export function sampleFromLogits(z: Float64Array, temperature: number, topK: number, rng: Rng): number {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
  if (temperature <= 0) return best;
  let allowed = Array.from(z.keys());
  if (topK > 0 && topK < z.length) {
    const order = Array.from(z.keys()).sort((a, b) => z[b] - z[a] || a - b);
    const keep = new Set(order.slice(0, topK));
    allowed = allowed.filter((i) => keep.has(i));
  }
  const p = new Float64Array(z.length);
  let sum = 0;
  for (const i of allowed) {
    p[i] = Math.exp((z[i] - z[best]) / temperature);
    sum += p[i];
  }
  let u = rng.next() * sum;
  for (const i of allowed) {
    u -= p[i];
    if (u <= 0) return i;
  }
  return allowed[allowed.length - 1];
}
