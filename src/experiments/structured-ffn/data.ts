/**
 * The structured-ffn experiment's data: a character-level corpus cut into three contiguous parts — train, then a
 * validation part for every choice (LR, steps, curves), then a test tail used only for the final report.
 */
import * as tf from '@tensorflow/tfjs';
import { CharTokenizer, loadTextCorpus, randomWindows, type TokenBatch } from '../../data/text-corpus.js';
import { Rng } from '../../engine/rng.js';
import { UserError } from '../../errors.js';
import type { FfnContext } from '../../models/ffn.js';
import type { TransformerLM } from '../../models/transformer.js';
import { hashString } from '../common/image-classification.js';
import type { StructuredFfnConfig } from './index.js';

export interface SffnData {
  tok: CharTokenizer;
  train: Int32Array;
  val: Int32Array;
  /** The test tail (null when testFraction = 0: the final numbers are then on the validation part). */
  test: Int32Array | null;
  name: string;
}

/**
 * Contiguous split of `ids`: train | val | test, with round(n·valFraction) and round(n·testFraction) symbols for the
 * last two (test last, so the test tail does not move when valFraction changes).
 */
export function splitTrainValTest(ids: Int32Array, valFraction: number, testFraction: number): { train: Int32Array; val: Int32Array; test: Int32Array | null } {
  if (!(valFraction > 0 && testFraction >= 0 && valFraction + testFraction < 1)) {
    throw new UserError(`config keys "valFraction" (${valFraction}) and "testFraction" (${testFraction}): need valFraction > 0, testFraction ≥ 0 and a sum below 1`);
  }
  const nTest = testFraction > 0 ? Math.max(2, Math.round(ids.length * testFraction)) : 0;
  const nVal = Math.max(2, Math.round(ids.length * valFraction));
  const nTrain = ids.length - nVal - nTest;
  if (nTrain < 2) throw new UserError(`text too short to split (${ids.length} symbols)`);
  return { train: ids.subarray(0, nTrain), val: ids.subarray(nTrain, nTrain + nVal), test: nTest ? ids.subarray(nTrain + nVal) : null };
}

// Corpus cache per worker thread (a worker runs several (method, seed) pairs).
const corpusCache = new Map<string, SffnData>();

export function loadData(cfg: StructuredFfnConfig): SffnData {
  const textPath = cfg.text ?? cfg.data;
  const key = `${textPath ?? cfg.corpus}|${cfg.valFraction}|${cfg.testFraction}`;
  let d = corpusCache.get(key);
  if (!d) {
    const corpus = loadTextCorpus({ text: textPath, source: cfg.corpus });
    const tok = CharTokenizer.fromText(corpus.text);
    const ids = tok.encode(corpus.text);
    d = { tok, ...splitTrainValTest(ids, cfg.valFraction, cfg.testFraction), name: corpus.name };
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
