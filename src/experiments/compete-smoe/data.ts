/**
 * The compete-smoe experiment's data: a character-level corpus cut into train | tune | val, contiguous in that
 * order (hyperparameters are chosen on `tune`, numbers reported on `val`), seeded training windows, and bits
 * per character over evaluation windows.
 */
import * as tf from '@tensorflow/tfjs';
import { CharTokenizer, loadTextCorpus, randomWindows, type TokenBatch } from '../../data/text-corpus.js';
import { Rng } from '../../engine/rng.js';
import { UserError } from '../../errors.js';
import type { TransformerLM } from '../../models/transformer.js';
import { hashString } from '../common/image-classification.js';
import type { CompeteSmoeConfig as Cfg } from './index.js';

export interface CompeteSmoeData {
  tok: CharTokenizer;
  train: Int32Array;
  tune: Int32Array;
  val: Int32Array;
  name: string;
}

// Corpus cache per worker thread (a worker runs several (method, seed) pairs).
const corpusCache = new Map<string, CompeteSmoeData>();

/** train | tune | val, contiguous, from the configured text. */
export function loadData(cfg: Cfg): CompeteSmoeData {
  const textPath = cfg.text ?? cfg.data;
  const key = `${textPath ?? cfg.corpus}|${cfg.valFraction}|${cfg.tuneFraction}`;
  let d = corpusCache.get(key);
  if (!d) {
    if (cfg.valFraction + cfg.tuneFraction >= 0.9) throw new UserError(`config keys "valFraction" + "tuneFraction" must leave ≥ 10% for training`);
    const corpus = loadTextCorpus({ text: textPath, source: cfg.corpus });
    const tok = CharTokenizer.fromText(corpus.text);
    const ids = tok.encode(corpus.text);
    const nVal = Math.round(ids.length * cfg.valFraction);
    const nTune = Math.round(ids.length * cfg.tuneFraction);
    const nTrain = ids.length - nVal - nTune;
    const need = cfg.contextLength + 2;
    if (nVal < need || nTune < need || nTrain < need) throw new UserError(`${textPath ?? corpus.name}: text too short (${ids.length} symbols) for train/tune/val splits of windows of ${need}`);
    d = { tok, train: ids.subarray(0, nTrain), tune: ids.subarray(nTrain, nTrain + nTune), val: ids.subarray(nTrain + nTune), name: corpus.name };
    corpusCache.set(key, d);
  }
  return d;
}

/** The batch of step k, seeded by (seed, k) only: every method with the same seed sees the same batches. */
export function batchAt(train: Int32Array, cfg: Cfg, seed: number, k: number): TokenBatch {
  const rng = new Rng((hashString(`compete-smoe/data/${seed}`) ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0);
  return randomWindows(train, cfg.batchSize, cfg.contextLength, rng);
}

/** Mean loss in bits per character over `batches` (evaluation forward, no aux losses). */
export function evalBpc(model: TransformerLM, batches: TokenBatch[]): number {
  let sum = 0;
  let n = 0;
  for (const b of batches) {
    const l = tf.tidy(() => model.loss(tf.tensor2d(b.x, [b.batch, b.T], 'int32'), tf.tensor2d(b.y, [b.batch, b.T], 'int32'), { training: false, rng: null }, false));
    sum += l.dataSync()[0] * b.batch * b.T;
    n += b.batch * b.T;
    l.dispose();
  }
  return sum / n / Math.LN2;
}
