/**
 * Glue from a UD treebank to MicroBERT inputs and back (file reading: `loadTreebank` in efftrain/node): train the tokenizer,
 * prepare sentences, and write predicted trees into CoNLL-U sentences (`efftrain parse`).
 */
import type { ConlluSentence, ConlluWord } from '../../data/conllu.js';
import { prepareSentence, type PreparedSentence, type TagSets } from './batch.js';
import type { MicroBert } from './model.js';
import { predict } from './predict.js';
import { normalizeWord, WordPieceTokenizer } from './wordpiece.js';

export interface Treebank {
  dir: string;
  train: ConlluSentence[];
  dev: ConlluSentence[];
  test: ConlluSentence[];
}

/** MicroBERT's vocabulary-size rule (authors' code, lgessler/microbert): 8000 + max(0, ⌊(types − 15000)·6000/450000⌋). */
export function paperVocabSize(wordTypes: number): number {
  return 8000 + Math.max(0, Math.floor(((wordTypes - 15000) * 6000) / 450000));
}

/**
 * Trains a WordPiece vocabulary on the FORMs of `sents` and, when given, the words of MLM-only text (the paper
 * trains it on all pretraining text).
 */
export function trainTokenizer(sents: ConlluSentence[], vocabSize: number, minFrequency = 2, textSentences: string[][] = []): WordPieceTokenizer {
  return WordPieceTokenizer.train(
    [...sents.flatMap((s) => s.words.map((w) => w.form)), ...textSentences.flat()],
    { vocabSize, minFrequency },
  );
}

/**
 * MLM-only sentences (words from `pretokenizeText`) as model inputs without annotation. A sentence longer than
 * `maxPieces` wordpieces ([CLS] and [SEP] included) is split into consecutive chunks that fit (MicroBERT splits
 * unlabeled sequences at 500 pieces); a single word longer than that keeps its first piece.
 */
export function prepareText(sentences: string[][], tok: WordPieceTokenizer, maxPieces: number): PreparedSentence[] {
  const out: PreparedSentence[] = [];
  const push = (words: string[]) => {
    const n = words.length;
    out.push({ enc: tok.encodeSentence(words, maxPieces), upos: new Array(n).fill(-1), heads: new Array(n).fill(-1), labels: new Array(n).fill(-1) });
  };
  for (const words of sentences) {
    let chunk: string[] = [];
    let pieces = 2;
    for (const w of words) {
      const k = Math.min(tok.encodeWord(w).length, maxPieces - 2);
      if (chunk.length && pieces + k > maxPieces) {
        push(chunk);
        chunk = [];
        pieces = 2;
      }
      chunk.push(w);
      pieces += k;
    }
    if (chunk.length) push(chunk);
  }
  return out;
}

/**
 * Indices of the `sentences` (MLM-only text) equal to a sentence of `held` (dev/test) word for word after the
 * tokenizer's normalization: text the pretraining would see that the evaluation scores.
 */
export function overlapIndices(sentences: string[][], held: ConlluSentence[]): number[] {
  const key = (ws: string[]) => ws.map(normalizeWord).join(' ');
  const heldKeys = new Set(held.map((s) => key(s.words.map((w) => w.form))));
  const out: number[] = [];
  sentences.forEach((ws, i) => {
    if (heldKeys.has(key(ws))) out.push(i);
  });
  return out;
}

export function prepareAll(sents: ConlluSentence[], tok: WordPieceTokenizer, tags: TagSets, maxLen: number): PreparedSentence[] {
  return sents.map((s) => prepareSentence(s, tok, tags, maxLen));
}

/**
 * Parses `sents` with the model's parser (and tagger): returns copies whose words carry the predicted HEAD and
 * DEPREL; UPOS is filled in only where the input has `_`. Multiword tokens, empty nodes and comments are kept.
 */
/** A predicted label for a non-root word (`root` there would break the tree's invariants). */
const nonRoot = (l: string | undefined) => (l === undefined || l === 'root' ? 'dep' : l);

export function parseSentences(model: MicroBert, sents: ConlluSentence[]): ConlluSentence[] {
  if (!model.parser) throw new Error('model has no parser head');
  const prepared = prepareAll(sents, model.tokenizer, model.tags, model.cfg.maxLen);
  const preds = predict(model, prepared);
  return sents.map((s, si) => {
    const p = preds[si];
    const words: ConlluWord[] = [];
    const rows = s.rows.map((r) => {
      if (r.kind !== 'word') return { ...r };
      const i = r.id - 1;
      const w: ConlluWord = {
        ...r,
        head: p.heads[i],
        headText: String(p.heads[i]),
        deprel: p.heads[i] === 0 ? 'root' : nonRoot(model.tags.deprels[p.labels[i]]),
        upos: r.upos === '_' && p.upos[i] >= 0 ? model.tags.upos[p.upos[i]] : r.upos,
      };
      words.push(w);
      return w;
    });
    return { ...s, rows, words };
  });
}
