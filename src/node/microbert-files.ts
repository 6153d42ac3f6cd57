/**
 * Node-side files for CoNLL-U treebanks and MicroBERT models: read/validate `.conllu` files, find a UD
 * treebank's splits, save and load a MicroBERT model directory (`microbert.json`, `vocab.txt`, `encoder/`,
 * `heads.safetensors`).
 */
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { parseConllu, type ConlluDocument, type ConlluParseOptions } from '../data/conllu.js';
import { MicroBert } from '../methods/microbert/model.js';
import { overlapIndices, type Treebank } from '../methods/microbert/pipeline.js';
import { pretokenizeText, WordPieceTokenizer } from '../methods/microbert/wordpiece.js';
import { writeFileAtomic } from '../util/fs.js';
import { saveTransformer } from './transformer-files.js';

/** Reads and parses a .conllu file; a missing file is a `UserError`. */
export function readConllu(path: string, opts: Omit<ConlluParseOptions, 'file'> = {}): ConlluDocument {
  if (!existsSync(path)) throw new UserError(`${path}: not found`);
  return parseConllu(readFileSync(path, 'utf8'), { ...opts, file: path });
}

/** The train/dev/test files of a UD treebank directory (`*-ud-train.conllu` etc.). */
export interface TreebankFiles {
  train: string;
  dev: string;
  test: string;
}

/**
 * Finds `*train*.conllu`, `*dev*.conllu` and `*test*.conllu` in a UD treebank directory. Throws a
 * `UserError` saying what is missing and where to get treebanks.
 */
export function findTreebankFiles(dir: string, listDir: (d: string) => string[] = (d) => readdirSync(d)): TreebankFiles {
  if (!existsSync(dir)) {
    throw new UserError(
      `${dir}: treebank directory not found. Pass --treebank DIR with a Universal Dependencies treebank ` +
        `(train/dev/test .conllu files), e.g. a clone of https://github.com/UniversalDependencies/UD_Wolof-WTB`,
    );
  }
  const files = listDir(dir).filter((f) => f.endsWith('.conllu'));
  const pick = (split: string): string => {
    const hits = files.filter((f) => new RegExp(`(^|[-_.])${split}([-_.]|$)`).test(f.replace(/\.conllu$/, '')));
    if (hits.length !== 1) {
      throw new UserError(`${dir}: expected exactly one ${split} .conllu file, found ${hits.length ? hits.join(', ') : 'none'} (files: ${files.join(', ') || 'none'})`);
    }
    return `${dir.replace(/\/$/, '')}/${hits[0]}`;
  };
  return { train: pick('train'), dev: pick('dev'), test: pick('test') };
}

/** Reads and validates a UD treebank directory (every word of every split must have a head). */
export function loadTreebank(dir: string): Treebank {
  const f = findTreebankFiles(dir);
  const read = (p: string) => readConllu(p, { requireHeads: true }).sentences;
  return { dir, train: read(f.train), dev: read(f.dev), test: read(f.test) };
}

/**
 * Reads MLM-only text for MicroBERT pretraining (`--unlabeled`): plain UTF-8 (a BOM is skipped), **one sentence
 * per line** — a line of running text (a paragraph) also works, it is cut into chunks that fit the model later;
 * blank lines are skipped; each line becomes FORM-like words by `pretokenizeText`. A missing, unreadable, empty or
 * non-UTF-8 file, or one of `heldOut` (the treebank's dev/test files), is a UserError naming it (and, for bad
 * UTF-8, the line).
 */
export function readUnlabeledText(path: string, heldOut: string[] = []): UnlabeledText {
  if (!existsSync(path)) throw new UserError(`${path}: unlabeled text file not found (--unlabeled / config key unlabeled)`);
  const real = realpathSync(path);
  if (heldOut.some((h) => existsSync(h) && realpathSync(h) === real)) {
    throw new UserError(`${path}: is the treebank's dev or test split; MLM text must not contain evaluation text`);
  }
  if (!statSync(path).isFile()) throw new UserError(`${path}: not a file (--unlabeled takes plain text files)`);
  const bytes = readFileSync(path);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    let line = 1;
    for (let start = 0; start <= bytes.length; line++) {
      const nl = bytes.indexOf(0x0a, start);
      const end = nl < 0 ? bytes.length : nl;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start, end));
      } catch {
        break;
      }
      start = end + 1;
    }
    throw new UserError(`${path}:${line}: not valid UTF-8 (save the text as UTF-8)`);
  }
  const sentences: string[][] = [];
  const lines: number[] = [];
  text.split(/\r?\n/).forEach((l, i) => {
    const ws = pretokenizeText(l);
    if (!ws.length) return;
    sentences.push(ws);
    lines.push(i + 1);
  });
  if (!sentences.length) throw new UserError(`${path}: empty (no words to pretrain on)`);
  return { path, sentences, lines };
}

/** MLM-only text read by `readUnlabeledText`: its sentences (words) and the 1-based line of each. */
export interface UnlabeledText {
  path: string;
  sentences: string[][];
  lines: number[];
}

/**
 * Refuses MLM-only text that contains evaluation text: a line equal, word for word after normalization, to a
 * sentence of the dev or test split is a UserError naming the file and line.
 */
export function checkNoHeldOutText(texts: UnlabeledText[], tb: Treebank): void {
  for (const [split, sents] of [['dev', tb.dev], ['test', tb.test]] as const)
    for (const t of texts) {
      const hits = overlapIndices(t.sentences, sents);
      if (hits.length) {
        throw new UserError(`${t.path}:${t.lines[hits[0]]}: this line is a sentence of the treebank's ${split} split (${hits.length} such line(s) in the file); MLM text must not contain evaluation text — remove them`);
      }
    }
}

/** Writes a WordPiece vocabulary as `vocab.txt` (one token per line). */
export function saveVocab(tok: WordPieceTokenizer, path: string): void {
  writeFileAtomic(path, tok.toText());
}

export function loadVocab(path: string): WordPieceTokenizer {
  if (!existsSync(path)) throw new UserError(`${path}: vocabulary file not found`);
  return WordPieceTokenizer.fromText(readFileSync(path, 'utf8'), path);
}

/** Writes a MicroBERT model directory (see the module comment). */
export function saveMicroBert(model: MicroBert, dir: string, meta: Record<string, unknown> = {}): void {
  saveTransformer(model.encoder, join(dir, 'encoder'), { microbert: true });
  const f = model.headFiles(meta);
  writeFileAtomic(join(dir, 'heads.safetensors'), f.heads);
  saveVocab(model.tokenizer, join(dir, 'vocab.txt'));
  writeFileAtomic(join(dir, 'microbert.json'), f.json);
}

/** Loads a directory written by `saveMicroBert`. */
export function loadMicroBert(dir: string): { model: MicroBert; meta: Record<string, unknown> } {
  const jp = join(dir, 'microbert.json');
  if (!existsSync(jp)) throw new UserError(`${jp}: not found (expected a MicroBERT model directory written by efftrain)`);
  const need = (p: string) => {
    if (!existsSync(p)) throw new UserError(`${p}: not found`);
    return p;
  };
  const ej = need(join(dir, 'encoder', 'model.json'));
  const ew = need(join(dir, 'encoder', 'weights.safetensors'));
  const hp = need(join(dir, 'heads.safetensors'));
  return MicroBert.fromFiles(
    { json: readFileSync(jp, 'utf8'), vocab: loadVocab(join(dir, 'vocab.txt')), encoderJson: readFileSync(ej, 'utf8'), encoderWeights: readFileSync(ew), heads: readFileSync(hp) },
    { json: jp, encoderJson: ej, encoderWeights: ew, heads: hp },
  );
}
