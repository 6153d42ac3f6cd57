import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConllu, writeConllu } from '../src/data/conllu.js';
import { findTreebankFiles, readConllu } from '../src/node/microbert-files.js';
import { writeSyntheticTreebank } from './helpers/treebank.js';

const WOLOF = '/work/shared/data/ud/UD_Wolof-WTB';

// A hand-written sentence pair: a multiword token (2-3), an empty node (4.1), comments, every column used.
const HAND = [
  '# newdoc id = hand',
  '# sent_id = h1',
  '# text = Vámonos al mar.',
  '1\tVamos\tir\tVERB\tV\tMood=Imp|Number=Plur|Person=1\t0\troot\t0:root\t_',
  '2-3\tal\t_\t_\t_\t_\t_\t_\t_\t_',
  '2\ta\ta\tADP\tP\t_\t4\tcase\t4:case\t_',
  '3\tel\tel\tDET\tD\tDefinite=Def\t4\tdet\t4:det\t_',
  '4\tmar\tmar\tNOUN\tN\tNumber=Sing\t1\tobl\t1:obl:a|4.1:nsubj\tSpaceAfter=No',
  '4.1\tir\tir\tVERB\tV\t_\t_\t_\t1:conj\t_',
  '5\t.\t.\tPUNCT\tF\t_\t1\tpunct\t1:punct\t_',
  '',
  '# sent_id = h2',
  '1\tSí\tsí\tINTJ\t_\t_\t0\troot\t0:root\t_',
  '',
  '',
].join('\n');

test('conllu: hand-written file with a multiword token and an empty node parses into all ten columns and round-trips', () => {
  const doc = parseConllu(HAND, { file: 'hand.conllu' });
  assert.equal(doc.sentences.length, 2);
  const s = doc.sentences[0];
  assert.deepEqual(s.comments, ['# newdoc id = hand', '# sent_id = h1', '# text = Vámonos al mar.']);
  assert.equal(s.words.length, 5);
  assert.deepEqual(s.rows.map((r) => r.kind), ['word', 'multiword', 'word', 'word', 'word', 'empty', 'word']);
  const mwt = s.rows[1];
  assert.ok(mwt.kind === 'multiword' && mwt.start === 2 && mwt.end === 3 && mwt.form === 'al');
  const empty = s.rows[5];
  assert.ok(empty.kind === 'empty' && empty.major === 4 && empty.minor === 1 && empty.deps === '1:conj');
  const mar = s.words[3];
  assert.deepEqual(
    [mar.id, mar.form, mar.lemma, mar.upos, mar.xpos, mar.feats, mar.head, mar.deprel, mar.deps, mar.misc],
    [4, 'mar', 'mar', 'NOUN', 'N', 'Number=Sing', 1, 'obl', '1:obl:a|4.1:nsubj', 'SpaceAfter=No'],
  );
  assert.equal(s.words[0].head, 0);
  assert.equal(s.line, 1);
  assert.equal(mar.line, 8);
  // The trailing extra blank line is not content: the writer emits one blank line per sentence.
  assert.equal(writeConllu(doc), HAND);
});

function expectError(text: string, re: RegExp) {
  assert.throws(() => parseConllu(text, { file: 'bad.conllu' }), (e: Error) => {
    assert.equal(e.name, 'UserError');
    assert.match(e.message, re);
    return true;
  });
}

test('conllu: validation errors name the file and line', () => {
  const w = (id: string, head: string, rel = 'dep') => `${id}\tx\tx\tX\t_\t_\t${head}\t${rel}\t_\t_`;
  expectError(`${w('1', '0', 'root')}\n${w('2', '3')}\n\n`, /^bad\.conllu:2: HEAD 3 of word 2 is out of range/);
  expectError(`${w('1', '0', 'root')}\n${w('2', '0', 'root')}\n\n`, /^bad\.conllu:2: more than one root/);
  expectError(`# c\n${w('1', '2')}\n${w('2', '1')}\n\n`, /^bad\.conllu:1: no root/);
  expectError(`${w('1', '0', 'root')}\n${w('2', '3')}\n${w('3', '2')}\n\n`, /^bad\.conllu:2: cycle/);
  expectError(`${w('1', '0', 'root')}\n${w('3', '1')}\n\n`, /^bad\.conllu:2: word ID 3 out of sequence/);
  expectError(`1-1\tx\t_\t_\t_\t_\t_\t_\t_\t_\n${w('1', '0', 'root')}\n\n`, /^bad\.conllu:1: multiword range 1-1/);
  expectError(`${w('1', '0', 'root')}\n2-3\tx\t_\t_\t_\t_\t_\t_\t_\t_\n${w('2', '1')}\n\n`, /^bad\.conllu:2: multiword range 2-3 goes past/);
  expectError(`${w('1', '0', 'root')}\n1-2\tx\t_\t_\t_\t_\t_\t_\t_\t_\n${w('2', '1')}\n\n`, /^bad\.conllu:2: multiword range 1-2 must come right before word 1/);
  expectError(`${w('1', '0', 'root')}\n2.1\tx\t_\t_\t_\t_\t_\t_\t_\t_\n${w('2', '1')}\n\n`, /^bad\.conllu:2: empty node 2\.1 must follow word 2/);
  expectError(`${w('1', '0', 'root')}\n1\tx\tx\n\n`, /^bad\.conllu:2: expected 10 tab-separated columns, found 3/);
  expectError(`${w('1', 'a', 'root')}\n\n`, /^bad\.conllu:1: HEAD must be a non-negative integer/);
  expectError(`${w('1', '0', 'root')}\n${w('2', '1', 'root')}\n\n`, /^bad\.conllu:2: word 2 has DEPREL root but HEAD 1/);
  expectError(`${w('1', '0', 'nsubj')}\n\n`, /^bad\.conllu:1: word 1 has HEAD 0 but DEPREL "nsubj"/);
  expectError(`${w('1', '0', 'root')}\n# late\n\n`, /^bad\.conllu:2: comment line inside a sentence/);
  expectError(`${w('1', '0', 'root')}\n${w('2', '_')}\n\n`, /^bad\.conllu:2: word 2 has no HEAD while other words/);
  expectError(`x1\tx\tx\tX\t_\t_\t0\troot\t_\t_\n\n`, /^bad\.conllu:1: malformed ID "x1"/);
  // Unannotated input (all heads `_`) is allowed unless heads are required.
  const raw = `1\ta\t_\t_\t_\t_\t_\t_\t_\t_\n2\tb\t_\t_\t_\t_\t_\t_\t_\t_\n\n`;
  assert.equal(parseConllu(raw).sentences[0].words[1].head, null);
  assert.throws(() => parseConllu(raw, { file: 'r.conllu', requireHeads: true }), /^UserError: r\.conllu:1: word 1 has no HEAD/);
  assert.throws(() => readConllu('/nonexistent/x.conllu'), /\/nonexistent\/x\.conllu: not found/);
});

test('conllu: synthetic treebank (multiword tokens, empty nodes) is found, validates and round-trips', () => {
  const dir = writeSyntheticTreebank({ train: 40, dev: 10, test: 10 });
  const f = findTreebankFiles(dir, (d) => readdirSync(d));
  for (const p of [f.train, f.dev, f.test]) {
    const text = readFileSync(p, 'utf8');
    const doc = readConllu(p, { requireHeads: true });
    assert.ok(doc.sentences.some((s) => s.rows.some((r) => r.kind === 'multiword')));
    assert.ok(doc.sentences.some((s) => s.rows.some((r) => r.kind === 'empty')));
    assert.equal(writeConllu(doc), text);
  }
  assert.throws(() => findTreebankFiles(join(dir, 'missing'), (d) => readdirSync(d)), /treebank directory not found/);
});

test('conllu: the whole Wolof WTB treebank round-trips byte for byte', (t) => {
  if (!existsSync(WOLOF)) {
    t.skip(`${WOLOF} not present (the UD_Wolof-WTB treebank is not shipped with efftrain; clone https://github.com/UniversalDependencies/UD_Wolof-WTB there to run this test)`);
    return;
  }
  const f = findTreebankFiles(WOLOF, (d) => readdirSync(d));
  let sents = 0;
  let words = 0;
  let mwts = 0;
  for (const p of [f.train, f.dev, f.test]) {
    const text = readFileSync(p, 'utf8');
    const doc = parseConllu(text, { file: p, requireHeads: true });
    sents += doc.sentences.length;
    for (const s of doc.sentences) {
      words += s.words.length;
      mwts += s.rows.filter((r) => r.kind === 'multiword').length;
    }
    assert.equal(writeConllu(doc), text, `${p} does not round-trip`);
  }
  // UD_Wolof-WTB stats.xml: 2,107 sentences, 44,258 words.
  assert.equal(sents, 2107);
  assert.equal(words, 44258);
  assert.ok(mwts > 1000);
});
