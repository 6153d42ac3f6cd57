/**
 * WordPiece tokenizer (Schuster & Nakajima 2012; BERT, Devlin et al. 2019) trained on the words of a corpus,
 * uncased with Unicode NFD as in MicroBERT (Gessler & Zeldes 2022; their code in lgessler/microbert: NFD then
 * lowercase, accents kept). Input words are already tokenized (CoNLL-U FORMs), so there is no further pre-tokenization;
 * plain text (MLM-only text) is cut into FORM-like words first by `pretokenizeText`.
 *
 * Training follows the usual WordPiece trainer (a BPE trainer with a `##` continuation prefix):
 * 1. every word type is split into characters, all but the first written `##c`; the alphabet seeds the vocabulary;
 * 2. repeatedly the most frequent adjacent symbol pair (weighted by word count; ties broken by the merged
 *    string, then by the pair, in code-unit order) is merged — `a + b` with b's `##` dropped — and the new
 *    symbol is added, until the vocabulary reaches `vocabSize` or no pair occurs `minFrequency` times.
 * Encoding is greedy longest-match-first per word; a word with an unmatchable part becomes one `[UNK]`.
 */
import { UserError } from '../../errors.js';

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const PAD_ID = 0;
export const UNK_ID = 1;
export const CLS_ID = 2;
export const SEP_ID = 3;
export const MASK_ID = 4;

/** NFD then lowercase (the MicroBERT tokenizer's normaliser). */
export function normalizeWord(w: string): string {
  return w.normalize('NFD').toLowerCase();
}

/**
 * Plain text → FORM-like words, as UD tokenization and BERT's basic tokenizer do: split on whitespace, and every
 * punctuation or symbol character (Unicode P/S) becomes a word of its own (`"waaw, dëgg."` → `waaw` `,` `dëgg` `.`).
 * Combining marks stay with their letters; case and normalization are left to the tokenizer (`normalizeWord`).
 */
export function pretokenizeText(text: string): string[] {
  return text.match(/[\p{P}\p{S}]|[^\s\p{P}\p{S}]+/gu) ?? [];
}

export interface WordPieceTrainOptions {
  /** Target vocabulary size, special tokens included. */
  vocabSize: number;
  /** A pair must occur at least this often to be merged (default 2). */
  minFrequency?: number;
}

/** One sentence encoded: wordpiece ids with [CLS] … [SEP], and each word's piece span [start, end). */
export interface EncodedSentence {
  ids: number[];
  /** Piece index (into `ids`) of each word's first piece. */
  wordStart: number[];
  /** One past each word's last piece. */
  wordEnd: number[];
}

export class WordPieceTokenizer {
  readonly vocab: string[];
  private readonly index: Map<string, number>;
  readonly maxWordChars = 100;

  constructor(vocab: string[]) {
    SPECIAL_TOKENS.forEach((t, i) => {
      if (vocab[i] !== t) throw new UserError(`wordpiece vocabulary must start with ${SPECIAL_TOKENS.join(' ')} (entry ${i} is "${vocab[i]}")`);
    });
    this.vocab = vocab;
    this.index = new Map(vocab.map((t, i) => [t, i]));
    if (this.index.size !== vocab.length) throw new UserError('wordpiece vocabulary has duplicate entries');
  }

  get size(): number {
    return this.vocab.length;
  }

  id(token: string): number | undefined {
    return this.index.get(token);
  }

  /** Wordpieces of one word (greedy longest-match-first; `[UNK]` if some part matches nothing). */
  tokenizeWord(word: string): string[] {
    const w = normalizeWord(word);
    const chars = Array.from(w);
    if (chars.length === 0) return ['[UNK]'];
    if (chars.length > this.maxWordChars) return ['[UNK]'];
    const out: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | null = null;
      while (end > start) {
        const sub = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        if (this.index.has(sub)) {
          found = sub;
          break;
        }
        end--;
      }
      if (found === null) return ['[UNK]'];
      out.push(found);
      start = end;
    }
    return out;
  }

  /** Piece ids of one word. */
  encodeWord(word: string): number[] {
    return this.tokenizeWord(word).map((p) => this.index.get(p) as number);
  }

  /**
   * Encodes a sentence of words as `[CLS] pieces… [SEP]` with each word's piece span. If the pieces exceed
   * `maxLen` (with [CLS] and [SEP]), every word keeps only its first piece; if that still does not fit, throws.
   */
  encodeSentence(words: string[], maxLen = 512): EncodedSentence {
    let pieces = words.map((w) => this.encodeWord(w));
    let total = pieces.reduce((s, p) => s + p.length, 0) + 2;
    if (total > maxLen) {
      pieces = pieces.map((p) => p.slice(0, 1));
      total = words.length + 2;
      if (total > maxLen) throw new UserError(`sentence of ${words.length} words does not fit ${maxLen} wordpieces`);
    }
    const ids = [CLS_ID];
    const wordStart: number[] = [];
    const wordEnd: number[] = [];
    for (const p of pieces) {
      wordStart.push(ids.length);
      ids.push(...p);
      wordEnd.push(ids.length);
    }
    ids.push(SEP_ID);
    return { ids, wordStart, wordEnd };
  }

  /** The vocabulary as `vocab.txt` text (one token per line, id = line number − 1, BERT's format). */
  toText(): string {
    return this.vocab.join('\n') + '\n';
  }

  /** Parses `vocab.txt` text; `name` labels errors (a file path). */
  static fromText(text: string, name = 'vocab.txt'): WordPieceTokenizer {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    lines.forEach((l, i) => {
      if (l === '' || /\s/.test(l)) throw new UserError(`${name}:${i + 1}: vocabulary entry is empty or contains whitespace`);
    });
    try {
      return new WordPieceTokenizer(lines);
    } catch (e) {
      throw new UserError(`${name}: ${(e as Error).message}`);
    }
  }

  /** Trains a vocabulary on `words` (a flat list of word tokens; repeats count). See the module comment. */
  static train(words: Iterable<string>, opts: WordPieceTrainOptions): WordPieceTokenizer {
    const minFreq = opts.minFrequency ?? 2;
    if (!Number.isInteger(opts.vocabSize) || opts.vocabSize <= SPECIAL_TOKENS.length) throw new UserError(`wordpiece vocabSize must be an integer > ${SPECIAL_TOKENS.length}, got ${opts.vocabSize}`);
    const counts = new Map<string, number>();
    for (const w of words) {
      const n = normalizeWord(w);
      if (n.length === 0 || Array.from(n).length > 100) continue;
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    const types = [...counts.keys()].sort();
    const syms: string[][] = types.map((t) => Array.from(t).map((c, i) => (i ? '##' + c : c)));
    const freq = types.map((t) => counts.get(t) as number);
    const alphabet = [...new Set(syms.flat())].sort();
    const vocab: string[] = [...SPECIAL_TOKENS, ...alphabet];
    const have = new Set(vocab);
    // Pair statistics: count and the words where the pair occurs.
    const SEP = '\u0000';
    const pairCount = new Map<string, number>();
    const pairWords = new Map<string, Set<number>>();
    const addPairs = (wi: number, sign: number) => {
      const s = syms[wi];
      for (let i = 0; i + 1 < s.length; i++) {
        const k = s[i] + SEP + s[i + 1];
        pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freq[wi]);
        if (sign > 0) {
          let set = pairWords.get(k);
          if (!set) pairWords.set(k, (set = new Set()));
          set.add(wi);
        }
      }
    };
    syms.forEach((_, wi) => addPairs(wi, 1));
    const merged = (a: string, b: string) => a + (b.startsWith('##') ? b.slice(2) : b);
    while (vocab.length < opts.vocabSize) {
      let best: string | null = null;
      let bestC = 0;
      let bestM = '';
      for (const [k, c] of pairCount) {
        if (c < minFreq || c < bestC) continue;
        const [a, b] = k.split(SEP);
        const m = merged(a, b);
        if (c > bestC || m < bestM || (m === bestM && best !== null && k < best)) {
          best = k;
          bestC = c;
          bestM = m;
        }
      }
      if (best === null) break;
      const [a, b] = best.split(SEP);
      for (const wi of [...(pairWords.get(best) ?? [])]) {
        const s = syms[wi];
        addPairs(wi, -1);
        const next: string[] = [];
        for (let i = 0; i < s.length; i++) {
          if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
            next.push(bestM);
            i++;
          } else next.push(s[i]);
        }
        syms[wi] = next;
        addPairs(wi, 1);
      }
      pairCount.delete(best);
      pairWords.delete(best);
      if (!have.has(bestM)) {
        have.add(bestM);
        vocab.push(bestM);
      }
    }
    return new WordPieceTokenizer(vocab);
  }
}
