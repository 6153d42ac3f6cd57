/**
 * From CoNLL-U sentences to MicroBERT batches: wordpiece ids with a padding mask, a word-pooling matrix
 * (a word's vector is the mean of its wordpieces' states, as in MicroBERT's code; row 0 of each sentence takes the
 * [CLS] state and serves as the parser's ROOT), gold UPOS / heads / labels per word, and whole-word MLM
 * masking (RoBERTa-style dynamic masking, 15 %, 80/10/10; HF DataCollatorForWholeWordMask).
 */
import type { ConlluSentence } from '../../data/conllu.js';
import { Rng, type RngState } from '../../engine/rng.js';
import { MASK_ID, PAD_ID, SPECIAL_TOKENS, type EncodedSentence, type WordPieceTokenizer } from './wordpiece.js';

/** A sentence prepared for the model: wordpieces plus per-word gold annotation (indices; −1 = unknown). */
export interface PreparedSentence {
  enc: EncodedSentence;
  /** UPOS index per word (−1 when not annotated or not in the tag set). */
  upos: number[];
  /** Gold head per word, 0 = root (−1 when not annotated). */
  heads: number[];
  /** Label index per word (−1 when unknown). */
  labels: number[];
}

/** Label inventories (index = position). */
export interface TagSets {
  upos: string[];
  deprels: string[];
}

/** Tag sets of a treebank's training sentences (sorted for stable indices). */
export function collectTagSets(sents: ConlluSentence[]): TagSets {
  const u = new Set<string>();
  const d = new Set<string>();
  for (const s of sents)
    for (const w of s.words) {
      if (w.upos !== '_') u.add(w.upos);
      if (w.deprel !== '_') d.add(w.deprel);
    }
  return { upos: [...u].sort(), deprels: [...d].sort() };
}

export function prepareSentence(s: ConlluSentence, tok: WordPieceTokenizer, tags: TagSets, maxLen = 512): PreparedSentence {
  const ui = new Map(tags.upos.map((t, i) => [t, i]));
  const di = new Map(tags.deprels.map((t, i) => [t, i]));
  return {
    enc: tok.encodeSentence(s.words.map((w) => w.form), maxLen),
    upos: s.words.map((w) => ui.get(w.upos) ?? -1),
    heads: s.words.map((w) => (w.head === null ? -1 : w.head)),
    labels: s.words.map((w) => di.get(w.deprel) ?? -1),
  };
}

export interface Batch {
  B: number;
  /** Padded wordpiece length. */
  T: number;
  /** Padded word slots per sentence, slot 0 = ROOT ([CLS]). */
  W: number;
  ids: Int32Array; // [B·T]
  keyMask: Float32Array; // [B·T]
  pool: Float32Array; // [B, W, T]
  /** 1 for real words (slots 1..n). [B·W] */
  wordMask: Float32Array;
  /** 1 for slots that can be heads (ROOT + real words). [B·W] */
  headMask: Float32Array;
  upos: Int32Array; // [B·W], −1 → 0 with wordMask/uposMask 0
  uposMask: Float32Array; // [B·W]
  heads: Int32Array; // [B·W] (0 for non-words)
  labels: Int32Array; // [B·W]
  arcMask: Float32Array; // [B·W]: words with a gold head and label
  nWords: number[];
  /** MLM: flat indices into B·T of the masked pieces and their original ids (empty without masking). */
  mlmPos: Int32Array;
  mlmTargets: Int32Array;
}

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/** Whole-word masking plan for one sentence: which pieces to predict and what to feed in their place. */
export function wholeWordMask(enc: EncodedSentence, rng: Rng, vocabSize: number, prob = 0.15): { pos: number[]; input: number[] } {
  const nPieces = enc.ids.length - 2;
  const budget = Math.max(1, Math.round(nPieces * prob));
  const order = enc.wordStart.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const pos: number[] = [];
  for (const w of order) {
    const len = enc.wordEnd[w] - enc.wordStart[w];
    if (pos.length + len > budget) continue;
    for (let p = enc.wordStart[w]; p < enc.wordEnd[w]; p++) pos.push(p);
    if (pos.length >= budget) break;
  }
  pos.sort((a, b) => a - b);
  const input = enc.ids.slice();
  for (const p of pos) {
    const u = rng.next();
    if (u < 0.8) input[p] = MASK_ID;
    else if (u < 0.9) input[p] = SPECIAL_TOKENS.length + rng.int(vocabSize - SPECIAL_TOKENS.length);
  }
  return { pos, input };
}

/**
 * Packs sentences into one batch. With `maskRng` the pieces are whole-word masked for MLM (ids hold the
 * corrupted input, mlmPos/mlmTargets the predictions to make). Shapes are rounded up to multiples of 8 so
 * that only a few distinct shapes reach the backend.
 */
export function makeBatch(sents: PreparedSentence[], opts: { maskRng?: Rng; vocabSize?: number; maskProb?: number } = {}): Batch {
  const B = sents.length;
  const T = roundUp(Math.max(...sents.map((s) => s.enc.ids.length)), 8);
  const W = roundUp(Math.max(...sents.map((s) => s.heads.length)) + 1, 8);
  const ids = new Int32Array(B * T).fill(PAD_ID);
  const keyMask = new Float32Array(B * T);
  const pool = new Float32Array(B * W * T);
  const wordMask = new Float32Array(B * W);
  const headMask = new Float32Array(B * W);
  const upos = new Int32Array(B * W);
  const uposMask = new Float32Array(B * W);
  const heads = new Int32Array(B * W);
  const labels = new Int32Array(B * W);
  const arcMask = new Float32Array(B * W);
  const mlmPos: number[] = [];
  const mlmTargets: number[] = [];
  sents.forEach((s, b) => {
    let input = s.enc.ids;
    if (opts.maskRng) {
      const m = wholeWordMask(s.enc, opts.maskRng, opts.vocabSize ?? 0, opts.maskProb ?? 0.15);
      input = m.input;
      for (const p of m.pos) {
        mlmPos.push(b * T + p);
        mlmTargets.push(s.enc.ids[p]);
      }
    }
    input.forEach((id, t) => {
      ids[b * T + t] = id;
      keyMask[b * T + t] = 1;
    });
    pool[(b * W + 0) * T + 0] = 1; // ROOT = [CLS]
    headMask[b * W] = 1;
    const n = s.heads.length;
    for (let i = 0; i < n; i++) {
      const slot = b * W + i + 1;
      const a = s.enc.wordStart[i];
      const e = s.enc.wordEnd[i];
      for (let t = a; t < e; t++) pool[slot * T + t] = 1 / (e - a);
      wordMask[slot] = 1;
      headMask[slot] = 1;
      if (s.upos[i] >= 0) {
        upos[slot] = s.upos[i];
        uposMask[slot] = 1;
      }
      if (s.heads[i] >= 0 && s.labels[i] >= 0) {
        heads[slot] = s.heads[i];
        labels[slot] = s.labels[i];
        arcMask[slot] = 1;
      }
    }
  });
  return {
    B,
    T,
    W,
    ids,
    keyMask,
    pool,
    wordMask,
    headMask,
    upos,
    uposMask,
    heads,
    labels,
    arcMask,
    nWords: sents.map((s) => s.heads.length),
    mlmPos: Int32Array.from(mlmPos),
    mlmTargets: Int32Array.from(mlmTargets),
  };
}

/** Sentences in length-sorted chunks of `batchSize` (evaluation: less padding; order is restored by index). */
export function evalChunks(n: number, lengthOf: (i: number) => number, batchSize: number): number[][] {
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => lengthOf(a) - lengthOf(b) || a - b);
  const out: number[][] = [];
  for (let i = 0; i < idx.length; i += batchSize) out.push(idx.slice(i, i + batchSize));
  return out;
}

/** Where a `BatchStream` stands: the RNG state its current order was shuffled from, and the position in it. */
export interface BatchStreamState {
  shuffledFrom: RngState | null;
  at: number;
}

/**
 * An endless shuffled stream of index batches (a dataset that runs out restarts, reshuffled). Its state is
 * small (the order is re-drawn from the saved RNG state), so checkpoints can carry it.
 */
export class BatchStream {
  private order: number[] = [];
  private at = 0;
  private shuffledFrom: RngState | null = null;

  constructor(
    private readonly n: number,
    private readonly batchSize: number,
    private readonly rng: Rng,
  ) {
    if (n < 1) throw new Error('BatchStream over an empty dataset');
  }

  next(): number[] {
    const out: number[] = [];
    while (out.length < Math.min(this.batchSize, this.n)) {
      if (this.at >= this.order.length) {
        this.shuffledFrom = this.rng.getState();
        this.order = this.shuffle(this.rng);
        this.at = 0;
      }
      out.push(this.order[this.at++]);
    }
    return out;
  }

  getState(): BatchStreamState {
    return { shuffledFrom: this.shuffledFrom, at: this.at };
  }

  /** Restores a state from `getState` (the shared RNG itself is restored by its owner). */
  setState(s: BatchStreamState): void {
    this.shuffledFrom = s.shuffledFrom;
    this.order = s.shuffledFrom ? this.shuffle(Rng.fromState(s.shuffledFrom)) : [];
    this.at = s.at;
  }

  /** Fisher–Yates permutation of 0..n−1. */
  private shuffle(rng: Rng): number[] {
    const order = Array.from({ length: this.n }, (_, i) => i);
    for (let i = this.n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order;
  }
}
