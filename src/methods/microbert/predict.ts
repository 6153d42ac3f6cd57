/**
 * Inference for MicroBERT's word-level heads: UPOS tags and dependency trees decoded with Chu-Liu/Edmonds
 * under the single-root constraint (every prediction is a tree), then labels scored at the predicted heads;
 * plus attachment scores with punctuation excluded by POS, as AllenNLP's `AttachmentScores` does in the
 * MicroBERT evaluation (tags `` `` '' : , . PU PUNCT SYM ``).
 */
import * as tf from '@tensorflow/tfjs';
import { evalChunks, makeBatch, type PreparedSentence } from './batch.js';
import { batchTensors, cachedWordTensor, type MicroBert } from './model.js';
import { mstSingleRoot } from './mst.js';

/** POS tags whose words are not scored (AllenNLP's punctuation list; UD uses PUNCT and SYM). */
export const PUNCT_TAGS: ReadonlySet<string> = new Set(['``', "''", ':', ',', '.', 'PU', 'PUNCT', 'SYM']);

export interface SentencePrediction {
  /** Head per word (0 = root). */
  heads: number[];
  /** Label index per word. */
  labels: number[];
  /** UPOS index per word (−1 without a tagger). */
  upos: number[];
}

/**
 * Predicts trees (and tags) for prepared sentences, batch by batch in length order. With `cache`
 * (from `model.cacheWordVectors`) the encoder is not run.
 */
export function predict(model: MicroBert, sents: PreparedSentence[], batchSize = 32, cache?: Float32Array[]): SentencePrediction[] {
  const parser = model.parser;
  const out: SentencePrediction[] = new Array(sents.length);
  for (const chunk of evalChunks(sents.length, (i) => sents[i].enc.ids.length, batchSize)) {
    const batch = makeBatch(chunk.map((i) => sents[i]));
    const { B, W } = batch;
    const t = batchTensors(batch);
    try {
      const words = cache ? tf.tidy(() => model.wordsFromCache(cachedWordTensor(cache, chunk, W, model.cfg.dModel, model.cachedLayers()))) : model.wordVectors(t, false);
      let uposArg: Int32Array | null = null;
      if (model.tagger) {
        const a = tf.tidy(() => tf.argMax(model.tagger!.logits(words), -1));
        uposArg = a.dataSync() as Int32Array;
        a.dispose();
      }
      let heads: number[][] = chunk.map((i) => new Array(sents[i].heads.length).fill(0));
      let labels: number[][] = heads.map((h) => h.map(() => 0));
      if (parser) {
        const { arc, relDep, relHead } = tf.tidy(() => parser.arcScores({ words, B, W, headMask: t.headMask }, null));
        const lp = tf.tidy(() => tf.logSoftmax(arc, -1));
        const scores = lp.dataSync() as Float32Array;
        lp.dispose();
        arc.dispose();
        heads = chunk.map((_, b) => {
          const n = batch.nWords[b];
          const m: Float32Array[] = [];
          for (let dep = 0; dep <= n; dep++) m.push(scores.subarray((b * W + dep) * W, (b * W + dep) * W + n + 1));
          return mstSingleRoot(m).slice(1);
        });
        const hflat = new Int32Array(B * W);
        heads.forEach((hs, b) => hs.forEach((h, i) => (hflat[b * W + i + 1] = h)));
        const la = tf.tidy(() => tf.argMax(parser.labelLogits(relDep, relHead, tf.tensor1d(hflat, 'int32'), B, W), -1));
        const lab = la.dataSync() as Int32Array;
        la.dispose();
        relDep.dispose();
        relHead.dispose();
        labels = heads.map((hs, b) => hs.map((_, i) => lab[b * W + i + 1]));
      }
      words.dispose();
      chunk.forEach((si, b) => {
        const n = batch.nWords[b];
        const upos = Array.from({ length: n }, (_, i) => (uposArg ? uposArg[b * W + i + 1] : -1));
        out[si] = { heads: heads[b], labels: labels[b], upos };
      });
    } finally {
      tf.dispose(Object.values(t));
    }
  }
  return out;
}

export interface AttachmentScores {
  uas: number;
  las: number;
  /** Words scored (punctuation excluded). */
  scored: number;
  /** UPOS accuracy over all words (NaN without predicted tags). */
  uposAcc: number;
}

/**
 * UAS/LAS (fractions) over words whose gold UPOS is not in `PUNCT_TAGS`; LAS compares the full DEPREL
 * (subtypes included). `gold` and `pred` are index-aligned per sentence and word.
 */
export function attachmentScores(gold: { heads: number[]; labels: number[]; uposTags: string[]; upos: number[] }[], pred: SentencePrediction[]): AttachmentScores {
  let n = 0;
  let u = 0;
  let l = 0;
  let tagN = 0;
  let tagOk = 0;
  gold.forEach((g, s) => {
    const p = pred[s];
    g.heads.forEach((h, i) => {
      if (p.upos[i] >= 0) {
        tagN++;
        if (p.upos[i] === g.upos[i]) tagOk++;
      }
      if (PUNCT_TAGS.has(g.uposTags[i])) return;
      n++;
      if (p.heads[i] === h) {
        u++;
        if (p.labels[i] === g.labels[i]) l++;
      }
    });
  });
  return { uas: n ? u / n : NaN, las: n ? l / n : NaN, scored: n, uposAcc: tagN ? tagOk / tagN : NaN };
}
