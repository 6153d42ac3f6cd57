/**
 * Glue from a UD treebank to MicroBERT inputs and back (file reading: `loadTreebank` in efftrain/node): train the tokenizer,
 * prepare sentences, and write predicted trees into CoNLL-U sentences (`efftrain parse`).
 */
import type { ConlluSentence, ConlluWord } from '../../data/conllu.js';
import { prepareSentence, type PreparedSentence, type TagSets } from './batch.js';
import type { MicroBert } from './model.js';
import { predict } from './predict.js';
import { WordPieceTokenizer } from './wordpiece.js';

export interface Treebank {
  dir: string;
  train: ConlluSentence[];
  dev: ConlluSentence[];
  test: ConlluSentence[];
}

/** MicroBERT's vocabulary-size rule (method notes §3): 8000 + max(0, ⌊(types − 15000)·6000/450000⌋). */
export function paperVocabSize(wordTypes: number): number {
  return 8000 + Math.max(0, Math.floor(((wordTypes - 15000) * 6000) / 450000));
}

/** Trains a WordPiece vocabulary on the FORMs of `sents`. */
export function trainTokenizer(sents: ConlluSentence[], vocabSize: number, minFrequency = 2): WordPieceTokenizer {
  return WordPieceTokenizer.train(
    sents.flatMap((s) => s.words.map((w) => w.form)),
    { vocabSize, minFrequency },
  );
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
