/**
 * MicroBERT's task heads (Gessler & Zeldes, MRL 2022; configs in lgessler/microbert):
 * - `MlmHead`: Linear(d, d) → GELU → LayerNorm → tied decoder (embedding matrixᵀ) + bias (BERT's MLM head);
 * - `TaggerHead`: one linear projection of the word vectors (the X / UPOS task);
 * - `ScalarMix`: the evaluation parser's learned mix of all encoder layers (Peters et al. 2018, Eq. 1);
 * - `BiaffineParser`: Dozat & Manning (ICLR 2017) without the BiLSTM — ELU MLPs, a biaffine arc scorer
 *   s(i←j) = h_i^dep·U·h_j^head + u·h_j^head (their Eq. 2–3) and a bilinear label scorer
 *   s_rel(i, j) = h_i^dep·U_rel·h_j^head + W[h_i^dep; h_j^head] + b (their Eq. 6). Loss = arc CE + label CE
 *   (labels scored at the gold head in training), averaged over words.
 * Heads hold plain tf.Variables with stable names (saved as safetensors).
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../engine/rng.js';
import { gelu, linear, makeVariable, normalTensor, type NamedVariable } from '../../models/ffn.js';
import { layerNorm } from '../../models/transformer.js';

const glorotStd = (fanIn: number, fanOut: number) => Math.sqrt(2 / (fanIn + fanOut));

/** Masked mean of per-row values: Σ v·m / max(1, Σ m). */
export function maskedMean(v: tf.Tensor1D, m: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sum(tf.mul(v, m)), tf.maximum(tf.sum(m), 1)) as tf.Scalar);
}

/** Per-row cross-entropy −log softmax(logits)[target] for logits [N, K], targets [N]. */
export function rowCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits, -1), tf.oneHot(targets, logits.shape[1]) as tf.Tensor2D), -1)) as tf.Tensor1D);
}

/** Identity in the forward pass, zero gradient (tf.js has no stop_gradient op). */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((...args: unknown[]) => {
    const xi = args[0] as tf.Tensor;
    return { value: tf.clone(xi), gradFunc: (dy: tf.Tensor) => [tf.zerosLike(dy)] };
  });
  return f(x) as T;
}

/** Dropout with a seed drawn from the run's Rng (deterministic); identity when rate is 0 or not training. */
export function seededDropout<T extends tf.Tensor>(x: T, rate: number, rng: Rng | null): T {
  if (!rng || rate <= 0) return x;
  return tf.dropout(x, rate, undefined, rng.int(2147483647)) as T;
}

export abstract class Head {
  abstract namedVariables(): NamedVariable[];
  variables(): tf.Variable[] {
    return this.namedVariables().map((n) => n.variable);
  }
  paramCount(): number {
    return this.variables().reduce((s, v) => s + v.size, 0);
  }
  dispose(): void {
    tf.dispose(this.variables());
  }
}

export class MlmHead extends Head {
  readonly w: tf.Variable;
  readonly b: tf.Variable;
  readonly lnG: tf.Variable;
  readonly lnB: tf.Variable;
  readonly outB: tf.Variable;

  constructor(d: number, vocabSize: number, rng: Rng) {
    super();
    this.w = makeVariable(() => normalTensor(rng, [d, d], 0.02));
    this.b = makeVariable(() => tf.zeros([d]));
    this.lnG = makeVariable(() => tf.ones([d]));
    this.lnB = makeVariable(() => tf.zeros([d]));
    this.outB = makeVariable(() => tf.zeros([vocabSize]));
  }

  namedVariables(): NamedVariable[] {
    return [
      { name: 'mlm/dense/kernel', variable: this.w },
      { name: 'mlm/dense/bias', variable: this.b },
      { name: 'mlm/ln/g', variable: this.lnG },
      { name: 'mlm/ln/b', variable: this.lnB },
      { name: 'mlm/out/bias', variable: this.outB },
    ];
  }

  /** Vocabulary logits [N, V] for hidden rows [N, d], decoding with the (tied) embedding `emb` [V, d]. */
  logits(h: tf.Tensor2D, emb: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const z = layerNorm(gelu(linear(h, this.w as tf.Tensor2D, this.b as tf.Tensor1D)), this.lnG, this.lnB, 1e-5);
      return tf.add(tf.matMul(z, emb, false, true), this.outB) as tf.Tensor2D;
    });
  }
}

export class TaggerHead extends Head {
  readonly w: tf.Variable;
  readonly b: tf.Variable;

  constructor(
    d: number,
    readonly nTags: number,
    rng: Rng,
    readonly prefix = 'tagger',
  ) {
    super();
    this.w = makeVariable(() => normalTensor(rng, [d, nTags], glorotStd(d, nTags)));
    this.b = makeVariable(() => tf.zeros([nTags]));
  }

  namedVariables(): NamedVariable[] {
    return [
      { name: `${this.prefix}/kernel`, variable: this.w },
      { name: `${this.prefix}/bias`, variable: this.b },
    ];
  }

  logits(words: tf.Tensor2D): tf.Tensor2D {
    return linear(words, this.w as tf.Tensor2D, this.b as tf.Tensor1D);
  }
}

/**
 * Scalar mix of layers (ELMo, Peters et al. NAACL 2018, Eq. 1; AllenNLP `ScalarMix`, which the MicroBERT
 * parser reads its encoder through): γ · Σ_l softmax(s)_l · h_l, with s = 0 (a uniform mix) and γ = 1 at
 * the start.
 */
export class ScalarMix extends Head {
  readonly s: tf.Variable;
  readonly gamma: tf.Variable;

  constructor(readonly nLayers: number) {
    super();
    this.s = makeVariable(() => tf.zeros([nLayers]));
    this.gamma = makeVariable(() => tf.ones([1]));
  }

  namedVariables(): NamedVariable[] {
    return [
      { name: 'mix/weights', variable: this.s },
      { name: 'mix/gamma', variable: this.gamma },
    ];
  }

  /** The mix [N, d] of `layers` [nLayers, N, d]. */
  apply(layers: tf.Tensor3D): tf.Tensor2D {
    return tf.tidy(() => {
      const w = tf.reshape(tf.mul(tf.softmax(this.s), this.gamma), [this.nLayers, 1, 1]);
      return tf.sum(tf.mul(layers, w), 0) as tf.Tensor2D;
    });
  }
}

export interface BiaffineConfig {
  /** Input (word vector) size. */
  d: number;
  arcDim: number;
  labelDim: number;
  nLabels: number;
  /** Dropout on the word vectors and MLP outputs in training (AllenNLP: 0.3). */
  dropout: number;
  /**
   * Learned arc prior per signed head−dependent distance clipped to ±maxDistance, plus one for ROOT
   * (0 = off). The encoder has no absolute positions (rotary attention), and the paper's probe gets word order
   * from its BiLSTM; this prior is the cheap stand-in (McDonald et al. 2005 use distance features likewise).
   */
  maxDistance?: number;
}

/** Inputs for the parser: word vectors [B·W, d] (slot 0 of each sentence = ROOT) and the batch's masks. */
export interface ParserInput {
  words: tf.Tensor2D;
  B: number;
  W: number;
  /** [B·W] 1 where a slot can be a head (ROOT and real words). */
  headMask: tf.Tensor1D;
}

export class BiaffineParser extends Head {
  readonly cfg: BiaffineConfig;
  private readonly vars: NamedVariable[] = [];
  private readonly v: Record<string, tf.Variable> = {};
  private diagMasks = new Map<number, tf.Tensor2D>();
  private distIndex = new Map<number, tf.Tensor2D>();

  /** [W, W] index into arc/dist: clip(j − i, ±K) + K for word heads j, 2K + 1 for ROOT (j = 0). */
  private distIdx(W: number): tf.Tensor2D {
    let m = this.distIndex.get(W);
    if (!m) {
      const K = this.cfg.maxDistance as number;
      const v = new Int32Array(W * W);
      for (let i = 0; i < W; i++) for (let j = 0; j < W; j++) v[i * W + j] = j === 0 ? 2 * K + 1 : Math.max(-K, Math.min(K, j - i)) + K;
      m = tf.keep(tf.tensor2d(v, [W, W], 'int32'));
      this.distIndex.set(W, m);
    }
    return m;
  }

  constructor(cfg: BiaffineConfig, rng: Rng) {
    super();
    this.cfg = cfg;
    const { d, arcDim: a, labelDim: r, nLabels: L } = cfg;
    const add = (name: string, shape: number[], std: number) => {
      const variable = makeVariable(() => (std === 0 ? tf.zeros(shape) : normalTensor(rng, shape, std)));
      this.v[name] = variable;
      this.vars.push({ name: `parser/${name}`, variable });
    };
    add('arc_dep/kernel', [d, a], glorotStd(d, a));
    add('arc_dep/bias', [a], 0);
    add('arc_head/kernel', [d, a], glorotStd(d, a));
    add('arc_head/bias', [a], 0);
    add('rel_dep/kernel', [d, r], glorotStd(d, r));
    add('rel_dep/bias', [r], 0);
    add('rel_head/kernel', [d, r], glorotStd(d, r));
    add('rel_head/bias', [r], 0);
    // Dozat & Manning initialise U (and U_rel) to zero; the MLPs and the head prior still learn from the start.
    add('arc/U', [a, a], 0);
    add('arc/u', [a, 1], 0);
    if ((cfg.maxDistance ?? 0) > 0) add('arc/dist', [2 * (cfg.maxDistance as number) + 2], 0);
    add('rel/U', [r, L * r], 0);
    add('rel/W', [2 * r, L], glorotStd(2 * r, L));
    add('rel/b', [L], 0);
  }

  namedVariables(): NamedVariable[] {
    return this.vars;
  }

  private diag(W: number): tf.Tensor2D {
    let m = this.diagMasks.get(W);
    if (!m) {
      m = tf.keep(tf.mul(tf.eye(W), -1e9) as tf.Tensor2D);
      this.diagMasks.set(W, m);
    }
    return m;
  }

  private mlp(x: tf.Tensor2D, name: string, rng: Rng | null): tf.Tensor2D {
    return seededDropout(tf.elu(linear(x, this.v[`${name}/kernel`] as tf.Tensor2D, this.v[`${name}/bias`] as tf.Tensor1D)), this.cfg.dropout, rng);
  }

  /**
   * Arc scores [B, W, W] (dependent × head, heads masked to −1e9 where invalid or on the diagonal) and the
   * label MLP states needed by `labelLogits`. `rng` non-null = training (dropout on).
   */
  arcScores(inp: ParserInput, rng: Rng | null): { arc: tf.Tensor3D; relDep: tf.Tensor2D; relHead: tf.Tensor2D } {
    const { B, W } = inp;
    const a = this.cfg.arcDim;
    const x = seededDropout(inp.words, this.cfg.dropout, rng);
    const dep = this.mlp(x, 'arc_dep', rng);
    const head = this.mlp(x, 'arc_head', rng);
    const du = tf.reshape(tf.matMul(dep, this.v['arc/U'] as tf.Tensor2D), [B, W, a]);
    const bil = tf.matMul(du, tf.reshape(head, [B, W, a]), false, true); // [B, W, W]
    const prior = tf.reshape(tf.matMul(head, this.v['arc/u'] as tf.Tensor2D), [B, 1, W]);
    const hm = tf.reshape(tf.mul(tf.sub(1, inp.headMask), -1e9), [B, 1, W]);
    let arc = tf.add(tf.add(tf.add(bil, prior), hm), this.diag(W)) as tf.Tensor3D;
    if (this.v['arc/dist']) arc = tf.add(arc, tf.reshape(tf.gather(this.v['arc/dist'], tf.reshape(this.distIdx(W), [W * W])), [1, W, W])) as tf.Tensor3D;
    return { arc, relDep: this.mlp(x, 'rel_dep', rng), relHead: this.mlp(x, 'rel_head', rng) };
  }

  /** Label logits [B·W, L] for each dependent slot given its head slot index within the sentence `heads` [B·W]. */
  labelLogits(relDep: tf.Tensor2D, relHead: tf.Tensor2D, heads: tf.Tensor1D, B: number, W: number): tf.Tensor2D {
    const { labelDim: r, nLabels: L } = this.cfg;
    const offs = tf.cast(tf.mul(tf.floorDiv(tf.range(0, B * W, 1, 'int32'), W), W), 'int32');
    const hh = tf.gather(relHead, tf.add(offs, tf.cast(heads, 'int32'))) as tf.Tensor2D; // [B·W, r]
    const N = B * W;
    const bil = tf.sum(tf.mul(tf.reshape(tf.matMul(relDep, this.v['rel/U'] as tf.Tensor2D), [N, L, r]), tf.reshape(hh, [N, 1, r])), -1);
    const lin = linear(tf.concat([relDep, hh], 1), this.v['rel/W'] as tf.Tensor2D, this.v['rel/b'] as tf.Tensor1D);
    return tf.add(bil, lin) as tf.Tensor2D;
  }

  /** Arc CE + label CE (gold heads), each averaged over words with `arcMask` [B·W]. */
  loss(inp: ParserInput, gold: { heads: tf.Tensor1D; labels: tf.Tensor1D; arcMask: tf.Tensor1D }, rng: Rng | null): tf.Scalar {
    return tf.tidy(() => {
      const { B, W } = inp;
      const { arc, relDep, relHead } = this.arcScores(inp, rng);
      const arcCe = rowCrossEntropy(tf.reshape(arc, [B * W, W]) as tf.Tensor2D, gold.heads);
      const lab = this.labelLogits(relDep, relHead, gold.heads, B, W);
      const labCe = rowCrossEntropy(lab, gold.labels);
      return tf.add(maskedMean(arcCe, gold.arcMask), maskedMean(labCe, gold.arcMask)) as tf.Scalar;
    });
  }

  override dispose(): void {
    super.dispose();
    for (const m of [...this.diagMasks.values(), ...this.distIndex.values()]) m.dispose();
    this.diagMasks.clear();
    this.distIndex.clear();
  }
}
