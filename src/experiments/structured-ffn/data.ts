/** The structured-ffn experiment's data: a character-level corpus split into train and a contiguous held-out tail. */
import * as tf from '@tensorflow/tfjs';
import { CharTokenizer, loadTextCorpus, randomWindows, splitTrainVal, type TokenBatch } from '../../data/text-corpus.js';
import { Rng } from '../../engine/rng.js';
import type { FfnContext } from '../../models/ffn.js';
import type { TransformerLM } from '../../models/transformer.js';
import { hashString } from '../common/image-classification.js';
import type { StructuredFfnConfig } from './index.js';

export interface SffnData {
  tok: CharTokenizer;
  train: Int32Array;
  val: Int32Array;
  name: string;
}

// Corpus cache per worker thread (a worker runs several (method, seed) pairs).
const corpusCache = new Map<string, SffnData>();

export function loadData(cfg: StructuredFfnConfig): SffnData {
  const textPath = cfg.text ?? cfg.data;
  const key = `${textPath ?? cfg.corpus}|${cfg.valFraction}`;
  let d = corpusCache.get(key);
  if (!d) {
    const corpus = loadTextCorpus({ text: textPath, source: cfg.corpus });
    const tok = CharTokenizer.fromText(corpus.text);
    const ids = tok.encode(corpus.text);
    const { train, val } = splitTrainVal(ids, cfg.valFraction);
    d = { tok, train, val, name: corpus.name };
    corpusCache.set(key, d);
  }
  return d;
}

/** The batch of data step k: seeded by (seed, k) only, so every method with the same seed sees the same batches. */
export function batchAt(train: Int32Array, cfg: StructuredFfnConfig, seed: number, k: number): TokenBatch {
  const rng = new Rng((hashString(`structured-ffn/data/${seed}`) ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0);
  return randomWindows(train, cfg.batchSize, cfg.contextLength, rng);
}

/** Mean loss over `batches` in bits per character. */
export function evalBpc(model: TransformerLM, batches: TokenBatch[], ctx: FfnContext = { training: false, rng: null }): number {
  let sum = 0;
  let n = 0;
  for (const b of batches) {
    const l = tf.tidy(() => {
      const x = tf.tensor2d(b.x, [b.batch, b.T], 'int32');
      const y = tf.tensor2d(b.y, [b.batch, b.T], 'int32');
      return model.loss(x, y, ctx, false);
    });
    sum += l.dataSync()[0] * b.batch * b.T;
    n += b.batch * b.T;
    l.dispose();
  }
  return sum / n / Math.LN2;
}
