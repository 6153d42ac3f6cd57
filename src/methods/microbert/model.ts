/**
 * MicroBERT (Gessler & Zeldes, MRL 2022): a tiny bidirectional BERT encoder (default 3 layers, hidden 100,
 * 5 heads, feed-forward 400) with an MLM head on wordpieces and word-level heads (UPOS tagger, biaffine
 * parser) on word vectors = mean of each word's wordpiece states — of the last layer, or, with a `ScalarMix`
 * (the evaluation parser's, as in the paper), of a learned mix of every layer. The encoder is `TransformerLM` from
 * src/models/transformer.ts with bidirectional attention, a padding mask, gather embeddings and rotary
 * positions by default, or learned absolute ones (the paper used relative position keys).
 *
 * Saved layout (`saveMicroBert`/`loadMicroBert` in efftrain/node): `microbert.json` (config, tag sets), `vocab.txt`, `encoder/` (the
 * transformer's model.json + weights.safetensors) and `heads.safetensors` (whichever heads exist).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../engine/rng.js';
import { UserError } from '../../errors.js';
import type { NamedVariable } from '../../models/ffn.js';
import { TransformerLM, layerNorm, type ForwardContext, type TransformerConfig } from '../../models/transformer.js';
import { decodeSafetensors, encodeSafetensors } from '../../train/safetensors.js';
import { evalChunks, makeBatch, type Batch, type PreparedSentence, type TagSets } from './batch.js';
import { BiaffineParser, MlmHead, ScalarMix, TaggerHead, maskedMean, rowCrossEntropy, type Head } from './heads.js';
import { WordPieceTokenizer } from './wordpiece.js';

export interface MicroBertConfig {
  vocabSize: number;
  nLayers: number;
  dModel: number;
  nHeads: number;
  dFf: number;
  /** Longest wordpiece sequence ([CLS] and [SEP] included). */
  maxLen: number;
  arcDim: number;
  labelDim: number;
  parserDropout: number;
  /** Arc distance prior range of the parser (0 = none); see `BiaffineConfig.maxDistance`. */
  maxDistance?: number;
  /** Encoder positions: rotary (default) or a learned absolute table (BERT's own scheme). */
  positional?: 'rope' | 'learned';
}

/** The paper's µBERT sizes (the vocabulary comes from the tokenizer). */
export const PAPER_SIZES = { nLayers: 3, dModel: 100, nHeads: 5, dFf: 400 } as const;

/** Tensors of one batch on the backend. */
export interface BatchTensors {
  ids: tf.Tensor2D;
  keyMask: tf.Tensor2D;
  pool: tf.Tensor3D;
  headMask: tf.Tensor1D;
  upos: tf.Tensor1D;
  uposMask: tf.Tensor1D;
  heads: tf.Tensor1D;
  labels: tf.Tensor1D;
  arcMask: tf.Tensor1D;
  mlmPos: tf.Tensor1D;
  mlmTargets: tf.Tensor1D;
}

export function batchTensors(b: Batch): BatchTensors {
  return {
    ids: tf.tensor2d(b.ids, [b.B, b.T], 'int32'),
    keyMask: tf.tensor2d(b.keyMask, [b.B, b.T]),
    pool: tf.tensor3d(b.pool, [b.B, b.W, b.T]),
    headMask: tf.tensor1d(b.headMask),
    upos: tf.tensor1d(b.upos, 'int32'),
    uposMask: tf.tensor1d(b.uposMask),
    heads: tf.tensor1d(b.heads, 'int32'),
    labels: tf.tensor1d(b.labels, 'int32'),
    arcMask: tf.tensor1d(b.arcMask),
    mlmPos: tf.tensor1d(b.mlmPos, 'int32'),
    mlmTargets: tf.tensor1d(b.mlmTargets, 'int32'),
  };
}

/**
 * A batch's word vectors from per-sentence cached ones (padding rows zero): [B·W, d] for one layer, or
 * [nLayers, B·W, d] when each cache entry holds nLayers layers ([nLayers, n + 1, d] row-major).
 */
export function cachedWordTensor(cache: Float32Array[], idx: number[], W: number, d: number, nLayers = 1): tf.Tensor {
  const B = idx.length;
  const buf = new Float32Array(nLayers * B * W * d);
  idx.forEach((si, b) => {
    const rows = cache[si].length / (nLayers * d);
    for (let l = 0; l < nLayers; l++) buf.set(cache[si].subarray(l * rows * d, (l + 1) * rows * d), (l * B * W + b * W) * d);
  });
  return nLayers === 1 ? tf.tensor2d(buf, [B * W, d]) : tf.tensor3d(buf, [nLayers, B * W, d]);
}

export class MicroBert {
  readonly cfg: MicroBertConfig;
  readonly tags: TagSets;
  readonly tokenizer: WordPieceTokenizer;
  readonly encoder: TransformerLM;
  mlm: MlmHead | null = null;
  tagger: TaggerHead | null = null;
  parser: BiaffineParser | null = null;
  /** When set, the word-level heads read this mix of all layers instead of the last one. */
  mix: ScalarMix | null = null;
  /**
   * Hidden dropout of training forwards (the paper's code: 0.1 in pretraining), drawn from `rng`; null = none.
   * Set by `pretrain` for its duration.
   */
  dropout: { rate: number; rng: Rng } | null = null;

  constructor(cfg: MicroBertConfig, tokenizer: WordPieceTokenizer, tags: TagSets, seed: number) {
    if (cfg.vocabSize !== tokenizer.size) throw new UserError(`vocabSize ${cfg.vocabSize} differs from the tokenizer's ${tokenizer.size}`);
    this.cfg = cfg;
    this.tags = tags;
    this.tokenizer = tokenizer;
    this.encoder = new TransformerLM(MicroBert.encoderConfig(cfg), seed);
  }

  static encoderConfig(cfg: MicroBertConfig): TransformerConfig {
    return {
      vocabSize: cfg.vocabSize,
      contextLength: cfg.maxLen,
      dModel: cfg.dModel,
      nHeads: cfg.nHeads,
      nLayers: cfg.nLayers,
      dFf: cfg.dFf,
      ffn: { kind: 'dense' },
      causal: false,
      embedding: 'gather',
      positional: cfg.positional ?? 'rope',
      attention: 'packed',
    };
  }

  /**
   * Adds the heads a task needs (fresh, seeded). Replaces an existing head of the same kind; `mix: false`
   * removes the layer mix (word vectors from the last layer again).
   */
  addHeads(which: { mlm?: boolean; tagger?: boolean; parser?: boolean; mix?: boolean }, seed: number): void {
    const rng = new Rng(seed);
    const d = this.cfg.dModel;
    if (which.mlm) {
      this.mlm?.dispose();
      this.mlm = new MlmHead(d, this.cfg.vocabSize, rng);
    }
    if (which.tagger) {
      this.tagger?.dispose();
      this.tagger = new TaggerHead(d, Math.max(1, this.tags.upos.length), rng, 'upos');
    }
    if (which.parser) {
      this.parser?.dispose();
      this.parser = new BiaffineParser({ d, arcDim: this.cfg.arcDim, labelDim: this.cfg.labelDim, nLabels: Math.max(1, this.tags.deprels.length), dropout: this.cfg.parserDropout, maxDistance: this.cfg.maxDistance ?? 0 }, rng);
    }
    if (which.mix !== undefined) {
      this.mix?.dispose();
      this.mix = which.mix ? new ScalarMix(this.cfg.nLayers + 1) : null;
    }
  }

  heads(): Head[] {
    return [this.mlm, this.tagger, this.parser, this.mix].filter((h): h is NonNullable<typeof h> => h !== null);
  }

  encoderParamCount(): number {
    return this.encoder.paramCount();
  }

  private forwardContext(training: boolean): ForwardContext {
    return training && this.dropout ? { training, rng: this.dropout.rng, hiddenDropout: this.dropout.rate } : { training, rng: null };
  }

  /** Encoder states [B·T, d] (ids possibly masked). */
  states(ids: tf.Tensor2D, keyMask: tf.Tensor2D, training: boolean): tf.Tensor2D {
    return this.encoder.hidden(ids, this.forwardContext(training), keyMask);
  }

  /**
   * Word vectors [B·W, d] the word-level heads read: slot 0 of each sentence = [CLS] (ROOT), slot i = mean of
   * word i's pieces — of the last layer, or the layer mix of `wordLayers` when the model has one.
   */
  wordVectors(t: BatchTensors, training: boolean): tf.Tensor2D {
    if (this.mix) {
      const mix = this.mix;
      return tf.tidy(() => mix.apply(this.wordLayers(t, training)));
    }
    return tf.tidy(() => this.pool(t, this.states(t.ids, t.keyMask, training)));
  }

  /**
   * Word vectors of every layer [nLayers + 1, B·W, d]: the embeddings and each block's output, each
   * layer-normalised (the last by the encoder's final LayerNorm, so it equals `states`; the others without
   * parameters, since a pre-LN residual stream grows with depth).
   */
  wordLayers(t: BatchTensors, training: boolean): tf.Tensor3D {
    return tf.tidy(() => {
      const xs = this.encoder.residualStreams(t.ids, this.forwardContext(training), t.keyMask);
      const d = this.cfg.dModel;
      const eps = this.encoder.cfg.lnEps;
      const ones = tf.ones([d]);
      const zeros = tf.zeros([d]);
      const top = xs.length - 1;
      return tf.stack(xs.map((x, l) => this.pool(t, l === top ? layerNorm(x, this.encoder.lnfG, this.encoder.lnfB, eps) : layerNorm(x, ones, zeros, eps)))) as tf.Tensor3D;
    });
  }

  /** Mean-pools piece states [B·T, d] into word slots [B·W, d]. */
  private pool(t: BatchTensors, h: tf.Tensor2D): tf.Tensor2D {
    const [B, T] = t.ids.shape;
    const W = t.pool.shape[1];
    return tf.reshape(tf.matMul(t.pool, tf.reshape(h, [B, T, this.cfg.dModel])), [B * W, this.cfg.dModel]) as tf.Tensor2D;
  }

  /** Layers the word-vector cache holds per sentence: all of them when the heads read a mix, else the last. */
  cachedLayers(): number {
    return this.mix ? this.cfg.nLayers + 1 : 1;
  }

  /** Word vectors from a `cachedWordTensor` batch (applies the layer mix when there is one). */
  wordsFromCache(x: tf.Tensor): tf.Tensor2D {
    return this.mix ? this.mix.apply(x as tf.Tensor3D) : (x as tf.Tensor2D);
  }

  /**
   * Evaluation-mode word vectors of each sentence ([n+1, d] row-major, row 0 = ROOT; with a layer mix
   * [nLayers + 1, n + 1, d], mixed later by `wordsFromCache`), for probes on a frozen encoder: a sentence's
   * vectors do not depend on the rest of its batch (padding is masked).
   */
  cacheWordVectors(sents: PreparedSentence[], batchSize = 32): Float32Array[] {
    const d = this.cfg.dModel;
    const L = this.cachedLayers();
    const out: Float32Array[] = new Array(sents.length);
    for (const chunk of evalChunks(sents.length, (i) => sents[i].enc.ids.length, batchSize)) {
      const batch = makeBatch(chunk.map((i) => sents[i]));
      const t = batchTensors(batch);
      const w = this.mix ? this.wordLayers(t, false) : this.wordVectors(t, false);
      const v = w.dataSync() as Float32Array;
      w.dispose();
      tf.dispose(Object.values(t));
      const BW = batch.B * batch.W;
      chunk.forEach((si, b) => {
        const rows = batch.nWords[b] + 1;
        const e = new Float32Array(L * rows * d);
        for (let l = 0; l < L; l++) e.set(v.subarray((l * BW + b * batch.W) * d, (l * BW + b * batch.W + rows) * d), l * rows * d);
        out[si] = e;
      });
    }
    return out;
  }

  /** Mean MLM cross-entropy over the masked pieces (t.ids must be the masked input). */
  mlmLoss(t: BatchTensors, training: boolean): tf.Scalar {
    if (!this.mlm) throw new Error('model has no MLM head');
    const head = this.mlm;
    return tf.tidy(() => {
      const h = this.states(t.ids, t.keyMask, training);
      const rows = tf.gather(h, t.mlmPos) as tf.Tensor2D;
      return tf.mean(rowCrossEntropy(head.logits(rows, this.encoder.tokEmb as tf.Tensor2D), t.mlmTargets)) as tf.Scalar;
    });
  }

  /** UPOS cross-entropy over annotated words, from word vectors. */
  taggerLoss(words: tf.Tensor2D, t: BatchTensors): tf.Scalar {
    if (!this.tagger) throw new Error('model has no tagger head');
    const head = this.tagger;
    return tf.tidy(() => maskedMean(rowCrossEntropy(head.logits(words), t.upos), t.uposMask));
  }

  parserLoss(words: tf.Tensor2D, t: BatchTensors, B: number, W: number, rng: Rng | null): tf.Scalar {
    if (!this.parser) throw new Error('model has no parser head');
    return this.parser.loss({ words, B, W, headMask: t.headMask }, { heads: t.heads, labels: t.labels, arcMask: t.arcMask }, rng);
  }

  /** `microbert.json` text (config, tag sets, which heads) and the heads' safetensors bytes. */
  headFiles(meta: Record<string, unknown> = {}): { json: string; heads: Uint8Array } {
    const tensors: Record<string, tf.Tensor> = {};
    for (const h of this.heads()) for (const { name, variable } of h.namedVariables()) tensors[name] = variable;
    const heads = { mlm: !!this.mlm, tagger: !!this.tagger, parser: !!this.parser, mix: !!this.mix };
    return {
      json: JSON.stringify({ format: 'efftrain-microbert', version: 1, config: this.cfg, tags: this.tags, heads, meta }, null, 2) + '\n',
      heads: encodeSafetensors(tensors, { format: 'efftrain-microbert-heads' }),
    };
  }

  /** Rebuilds a model from its files' contents (`saveMicroBert`/`loadMicroBert` in efftrain/node do the I/O). */
  static fromFiles(
    f: { json: string; vocab: WordPieceTokenizer; encoderJson: string; encoderWeights: Uint8Array; heads: Uint8Array },
    names = { json: 'microbert.json', encoderJson: 'encoder/model.json', encoderWeights: 'encoder/weights.safetensors', heads: 'heads.safetensors' },
  ): { model: MicroBert; meta: Record<string, unknown> } {
    const jp = names.json;
    let json: { format?: string; config: MicroBertConfig; tags: TagSets; heads: { mlm: boolean; tagger: boolean; parser: boolean; mix?: boolean }; meta?: Record<string, unknown> };
    try {
      json = JSON.parse(f.json);
    } catch (e) {
      throw new UserError(`${jp}: invalid JSON (${(e as Error).message})`);
    }
    if (json.format !== 'efftrain-microbert') throw new UserError(`${jp}: not a MicroBERT model (format ${json.format})`);
    const model = new MicroBert(json.config, f.vocab, json.tags, 0);
    const { model: enc } = TransformerLM.fromFiles(f.encoderJson, f.encoderWeights, { json: names.encoderJson, weights: names.encoderWeights });
    try {
      const src = enc.namedVariables();
      model.encoder.namedVariables().forEach(({ variable }, i) => variable.assign(src[i].variable));
    } finally {
      enc.dispose();
    }
    model.addHeads(json.heads, 0);
    const hp = names.heads;
    const { tensors } = decodeSafetensors(f.heads, hp);
    try {
      const vars: NamedVariable[] = model.heads().flatMap((h) => h.namedVariables());
      for (const { name, variable } of vars) {
        const t = tensors[name];
        if (!t) throw new UserError(`${hp}: missing tensor ${name}`);
        if (t.shape.join('x') !== variable.shape.join('x')) throw new UserError(`${hp}: ${name} has shape [${t.shape}], the model expects [${variable.shape}]`);
        variable.assign(t);
      }
    } finally {
      tf.dispose(Object.values(tensors));
    }
    return { model, meta: json.meta ?? {} };
  }

  /** Snapshot of the encoder's weights (kept tensors; dispose with tf.dispose). */
  snapshotEncoder(): tf.Tensor[] {
    return this.encoder.variables().map((v) => tf.keep(v.clone()));
  }

  restoreEncoder(snap: tf.Tensor[]): void {
    this.encoder.variables().forEach((v, i) => v.assign(snap[i]));
  }

  dispose(): void {
    this.encoder.dispose();
    for (const h of this.heads()) h.dispose();
  }
}
