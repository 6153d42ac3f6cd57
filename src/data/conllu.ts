/**
 * CoNLL-U reader, writer and validator (Universal Dependencies format, https://universaldependencies.org/format.html).
 *
 * A sentence is a block of lines ended by a blank line: `#` comment lines, then one line per row with ten
 * tab-separated columns `ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC`. A row is
 * - a syntactic word (integer ID), the only rows that form the dependency tree;
 * - a multiword token (`2-3`): a surface token whose words follow it (only FORM and MISC are meaningful);
 * - an empty node (`5.1`): an enhanced-graph node, used only in DEPS.
 * Rows keep their order and every column's text, so `writeConllu(parseConllu(text))` gives `text` back for any
 * well-formed file (blank-line-terminated sentences, LF line ends).
 *
 * Validation (on by default) checks the shape of every line and, for each sentence whose heads are all given,
 * that the words form a tree: IDs 1..n in order, heads in 0..n, exactly one word with HEAD 0 (and DEPREL
 * `root`), no cycles, ranges well formed and placed before their first word, empty nodes `i.k` after word i.
 * Errors are `UserError`s naming the file and line. File reading lives in `efftrain/node` (`readConllu`).
 */
import { UserError } from '../errors.js';

/** The ten columns of a CoNLL-U row, as text (`_` = empty). */
export interface ConlluColumns {
  form: string;
  lemma: string;
  upos: string;
  xpos: string;
  feats: string;
  /** HEAD as text; for words see `ConlluWord.head`. */
  headText: string;
  deprel: string;
  deps: string;
  misc: string;
}

/** A syntactic word: integer ID, HEAD parsed (null when `_`). */
export interface ConlluWord extends ConlluColumns {
  kind: 'word';
  id: number;
  head: number | null;
  /** 1-based line number in the source (0 when built in memory). */
  line: number;
}

/** A multiword surface token covering words `start..end`. */
export interface ConlluMultiword extends ConlluColumns {
  kind: 'multiword';
  start: number;
  end: number;
  line: number;
}

/** An empty node `major.minor` (enhanced dependencies only). */
export interface ConlluEmptyNode extends ConlluColumns {
  kind: 'empty';
  major: number;
  minor: number;
  line: number;
}

export type ConlluRow = ConlluWord | ConlluMultiword | ConlluEmptyNode;

export interface ConlluSentence {
  /** Comment lines as written, `#` included (e.g. `# sent_id = 1`). */
  comments: string[];
  /** All rows in file order. */
  rows: ConlluRow[];
  /** The syntactic words only (the tree), in order; `words[i].id === i + 1` after validation. */
  words: ConlluWord[];
  /** Line of the sentence's first line. */
  line: number;
}

export interface ConlluDocument {
  /** Source name used in error messages. */
  file: string;
  sentences: ConlluSentence[];
}

export interface ConlluParseOptions {
  /** Name used in error messages (default `<input>`). */
  file?: string;
  /** Check tree well-formedness (default true). Line shape is always checked. */
  validate?: boolean;
  /** Every word must have a HEAD (no `_`); default false (unannotated input is allowed). */
  requireHeads?: boolean;
}

/** The `sent_id` comment's value, if any. */
export function sentenceId(s: ConlluSentence): string | null {
  for (const c of s.comments) {
    const m = /^#\s*sent_id\s*=\s*(.*)$/.exec(c);
    if (m) return m[1].trim();
  }
  return null;
}

const INT = /^(0|[1-9][0-9]*)$/;

/** Parses CoNLL-U text. Throws a `UserError` (`file:line: message`) on the first problem found. */
export function parseConllu(text: string, opts: ConlluParseOptions = {}): ConlluDocument {
  const file = opts.file ?? '<input>';
  const validate = opts.validate ?? true;
  const fail = (line: number, msg: string): never => {
    throw new UserError(`${file}:${line}: ${msg}`);
  };
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const sentences: ConlluSentence[] = [];
  let cur: ConlluSentence | null = null;
  const finish = () => {
    if (!cur) return;
    if (cur.rows.length === 0) fail(cur.line, 'sentence has comments but no word lines');
    if (validate) validateSentence(cur, file, opts.requireHeads ?? false);
    sentences.push(cur);
    cur = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const ln = i + 1;
    let l = lines[i];
    if (l.endsWith('\r')) l = l.slice(0, -1);
    if (l.trim() === '') {
      if (l !== '') fail(ln, 'whitespace-only line (a sentence break must be an empty line)');
      finish();
      continue;
    }
    if (!cur) cur = { comments: [], rows: [], words: [], line: ln };
    if (l.startsWith('#')) {
      if (cur.rows.length) fail(ln, 'comment line inside a sentence (comments must come before the first word line)');
      cur.comments.push(l);
      continue;
    }
    const f = l.split('\t');
    if (f.length !== 10) fail(ln, `expected 10 tab-separated columns, found ${f.length}`);
    f.forEach((v, k) => {
      if (v === '') fail(ln, `column ${k + 1} is empty (use _ for an empty value)`);
    });
    const cols: ConlluColumns = { form: f[1], lemma: f[2], upos: f[3], xpos: f[4], feats: f[5], headText: f[6], deprel: f[7], deps: f[8], misc: f[9] };
    const id = f[0];
    let m: RegExpExecArray | null;
    if (INT.test(id)) {
      const n = Number(id);
      if (n < 1) fail(ln, `word ID must be ≥ 1, got ${id}`);
      let head: number | null = null;
      if (f[6] !== '_') {
        if (!INT.test(f[6])) fail(ln, `HEAD must be a non-negative integer or _, got "${f[6]}"`);
        head = Number(f[6]);
      }
      const w: ConlluWord = { kind: 'word', id: n, head, line: ln, ...cols };
      cur.rows.push(w);
      cur.words.push(w);
    } else if ((m = /^([1-9][0-9]*)-([1-9][0-9]*)$/.exec(id))) {
      cur.rows.push({ kind: 'multiword', start: Number(m[1]), end: Number(m[2]), line: ln, ...cols });
    } else if ((m = /^(0|[1-9][0-9]*)\.([1-9][0-9]*)$/.exec(id))) {
      cur.rows.push({ kind: 'empty', major: Number(m[1]), minor: Number(m[2]), line: ln, ...cols });
    } else fail(ln, `malformed ID "${id}" (expected N, N-M or N.K)`);
  }
  finish();
  return { file, sentences };
}

/** Tree and ID checks for one sentence (see the module comment). */
export function validateSentence(s: ConlluSentence, file: string, requireHeads = false): void {
  const fail = (line: number, msg: string): never => {
    throw new UserError(`${file}:${line}: ${msg}`);
  };
  const n = s.words.length;
  if (n === 0) fail(s.line, 'sentence has no syntactic words');
  let expect = 1;
  let rangeEnd = 0;
  let lastEmpty: [number, number] = [-1, 0];
  for (const r of s.rows) {
    if (r.kind === 'word') {
      if (r.id !== expect) fail(r.line, `word ID ${r.id} out of sequence (expected ${expect})`);
      expect++;
    } else if (r.kind === 'multiword') {
      if (r.start >= r.end) fail(r.line, `multiword range ${r.start}-${r.end} must have start < end`);
      if (r.start !== expect) fail(r.line, `multiword range ${r.start}-${r.end} must come right before word ${r.start} (next word is ${expect})`);
      if (r.start <= rangeEnd) fail(r.line, `multiword range ${r.start}-${r.end} overlaps the previous range`);
      if (r.end > n) fail(r.line, `multiword range ${r.start}-${r.end} goes past the last word ${n}`);
      rangeEnd = r.end;
    } else {
      if (r.major !== expect - 1) fail(r.line, `empty node ${r.major}.${r.minor} must follow word ${r.major} (previous word is ${expect - 1})`);
      const prevMinor = lastEmpty[0] === r.major ? lastEmpty[1] : 0;
      if (r.minor !== prevMinor + 1) fail(r.line, `empty node ${r.major}.${r.minor} out of sequence (expected ${r.major}.${prevMinor + 1})`);
      lastEmpty = [r.major, r.minor];
    }
  }
  const missing = s.words.filter((w) => w.head === null);
  if (missing.length) {
    if (requireHeads) fail(missing[0].line, `word ${missing[0].id} has no HEAD`);
    if (missing.length !== n) fail(missing[0].line, `word ${missing[0].id} has no HEAD while other words of the sentence have one`);
    return;
  }
  let roots = 0;
  for (const w of s.words) {
    const h = w.head as number;
    if (h > n) fail(w.line, `HEAD ${h} of word ${w.id} is out of range (sentence has ${n} words)`);
    if (h === w.id) fail(w.line, `word ${w.id} is its own head`);
    if (h === 0) {
      roots++;
      if (roots > 1) fail(w.line, `more than one root (word ${w.id} also has HEAD 0)`);
      if (w.deprel !== 'root') fail(w.line, `word ${w.id} has HEAD 0 but DEPREL "${w.deprel}" (must be root)`);
    } else if (w.deprel === 'root') fail(w.line, `word ${w.id} has DEPREL root but HEAD ${h} (must be 0)`);
  }
  if (roots === 0) fail(s.line, 'no root (no word has HEAD 0)');
  // Cycle check: follow heads from each word; more than n steps means a cycle.
  for (const w of s.words) {
    let h = w.head as number;
    let steps = 0;
    while (h !== 0) {
      if (++steps > n) fail(w.line, `cycle in the dependency tree through word ${w.id}`);
      h = s.words[h - 1].head as number;
    }
  }
}

function rowId(r: ConlluRow): string {
  if (r.kind === 'word') return String(r.id);
  if (r.kind === 'multiword') return `${r.start}-${r.end}`;
  return `${r.major}.${r.minor}`;
}

/** One row as a CoNLL-U line (a word's `head` wins over `headText`). */
export function formatRow(r: ConlluRow): string {
  const head = r.kind === 'word' ? (r.head === null ? '_' : String(r.head)) : r.headText;
  return [rowId(r), r.form, r.lemma, r.upos, r.xpos, r.feats, head, r.deprel, r.deps, r.misc].join('\t');
}

/** Serialises sentences as CoNLL-U (each sentence ends with a blank line). */
export function writeConllu(doc: ConlluDocument | ConlluSentence[]): string {
  const sents = Array.isArray(doc) ? doc : doc.sentences;
  const out: string[] = [];
  for (const s of sents) {
    for (const c of s.comments) out.push(c);
    for (const r of s.rows) out.push(formatRow(r));
    out.push('');
  }
  return out.length ? out.join('\n') + '\n' : '';
}
