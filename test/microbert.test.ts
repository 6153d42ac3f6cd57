import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { Rng } from '../src/engine/rng.js';
import {
  BiaffineParser,
  MASK_ID,
  MicroBert,
  ScalarMix,
  WordPieceTokenizer,
  attachmentScores,
  batchTensors,
  collectTagSets,
  layerCosines,
  makeBatch,
  mst,
  mstSingleRoot,
  paperVocabSize,
  prepareText,
  predict,
  prepareAll,
  pretrain,
  taskCycle,
  trainProbe,
  trainTokenizer,
  treeScore,
  wholeWordMask,
  type MicroBertConfig,
} from '../src/methods/microbert/index.js';
import * as transformerModule from '../src/models/transformer.js';
import { loadMicroBert, loadTreebank, loadVocab, saveMicroBert, saveVocab } from '../src/node/microbert-files.js';
import { writeSyntheticTreebank } from './helpers/treebank.js';
import { tempDir } from './helpers/tmp.js';

before(async () => {
  await initEngine({ backend: 'wasm' });
});

// The toy corpus of the Hugging Face tokenizer course: hug×10, pug×5, pun×12, bun×4, hugs×5.
const TOY = [...Array(10).fill('hug'), ...Array(5).fill('pug'), ...Array(12).fill('pun'), ...Array(4).fill('bun'), ...Array(5).fill('Hugs')];

test('wordpiece: merges and pieces on a toy corpus match the hand derivation', () => {
  // Alphabet (sorted): ##g ##n ##s ##u b h p. Pair counts, then merges by hand:
  //   (##u,##g)=20 → ##ug; (##u,##n)=16 → ##un; (h,##ug)=15 → hug; (p,##un)=12 → pun;
  //   (hug,##s)=5 and (p,##ug)=5 tie → "hugs" < "pug" → hugs; then pug (5); then bun (4).
  const full = WordPieceTokenizer.train(TOY, { vocabSize: 100 });
  assert.deepEqual(full.vocab, ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '##g', '##n', '##s', '##u', 'b', 'h', 'p', '##ug', '##un', 'hug', 'pun', 'hugs', 'pug', 'bun']);
  const small = WordPieceTokenizer.train(TOY, { vocabSize: 16 });
  assert.deepEqual(small.vocab.slice(12), ['##ug', '##un', 'hug', 'pun']);
  assert.deepEqual(small.tokenizeWord('HUGS'), ['hug', '##s']);
  assert.deepEqual(small.tokenizeWord('bun'), ['b', '##un']);
  assert.deepEqual(small.tokenizeWord('pug'), ['p', '##ug']);
  assert.deepEqual(small.tokenizeWord('mug'), ['[UNK]']);
  // NFD keeps the accent as a separate combining mark, which is not in this vocabulary.
  assert.deepEqual(small.tokenizeWord('hùg'), ['[UNK]']);
  // minFrequency stops merges below the threshold: bun (4) is not merged with minFrequency 5.
  assert.ok(!WordPieceTokenizer.train(TOY, { vocabSize: 100, minFrequency: 5 }).vocab.includes('bun'));
  const enc = small.encodeSentence(['hugs', 'pun', 'mug']);
  assert.deepEqual(enc.ids.map((i) => small.vocab[i]), ['[CLS]', 'hug', '##s', 'pun', '[UNK]', '[SEP]']);
  assert.deepEqual([enc.wordStart, enc.wordEnd], [[1, 3, 4], [3, 4, 5]]);
  // Too long for maxLen: every word keeps its first piece.
  assert.deepEqual(small.encodeSentence(['hugs', 'bun'], 4).ids.map((i) => small.vocab[i]), ['[CLS]', 'hug', 'b', '[SEP]']);
  const dir = tempDir('efftrain-wp-');
  saveVocab(small, join(dir, 'vocab.txt'));
  assert.deepEqual(loadVocab(join(dir, 'vocab.txt')).vocab, small.vocab);
  assert.throws(() => WordPieceTokenizer.fromText('[PAD]\n[UNK]\nx y\n', 'v.txt'), /v\.txt:3: vocabulary entry/);
  assert.equal(paperVocabSize(10000), 8000);
  assert.equal(paperVocabSize(465000), 14000);
});

/** All head assignments of n words (heads in 0..n) that form a tree; with `singleRoot`, exactly one root child. */
function bruteBest(scores: number[][], singleRoot: boolean): number {
  const n = scores.length - 1;
  let best = -Infinity;
  const heads = new Array(n + 1).fill(0);
  const rec = (d: number) => {
    if (d > n) {
      if (singleRoot && heads.slice(1).filter((h) => h === 0).length !== 1) return;
      for (let i = 1; i <= n; i++) {
        let h = heads[i];
        let k = 0;
        while (h !== 0 && k <= n) {
          h = heads[h];
          k++;
        }
        if (h !== 0) return;
      }
      best = Math.max(best, treeScore(scores, heads));
      return;
    }
    for (let h = 0; h <= n; h++) {
      if (h === d) continue;
      heads[d] = h;
      rec(d + 1);
    }
  };
  rec(1);
  return best;
}

test('mst: Chu-Liu/Edmonds matches brute force on random graphs (free and single-root)', () => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 150; trial++) {
    const n = 1 + (trial % 6);
    const scores = Array.from({ length: n + 1 }, () => Array.from({ length: n + 1 }, () => rng.normal() * 3));
    const free = mst(scores);
    const one = mstSingleRoot(scores);
    assert.ok(Math.abs(treeScore(scores, free) - bruteBest(scores, false)) < 1e-9, `free tree not optimal, n=${n}`);
    assert.ok(Math.abs(treeScore(scores, one) - bruteBest(scores, true)) < 1e-9, `single-root tree not optimal, n=${n}`);
    assert.equal(one.slice(1).filter((h) => h === 0).length, 1);
  }
});

test('biaffine parser: arc and label scores equal a hand computation', () => {
  const rng = new Rng(2);
  const cfg = { d: 3, arcDim: 2, labelDim: 2, nLabels: 2, dropout: 0, maxDistance: 1 };
  const p = new BiaffineParser(cfg, rng);
  const byName = new Map(p.namedVariables().map((v) => [v.name.replace('parser/', ''), v.variable]));
  const vals: Record<string, number[][]> = {};
  for (const [name, v] of byName) {
    const data = Array.from({ length: v.size }, () => Math.round(rng.normal() * 10) / 10);
    v.assign(tf.tensor(data, v.shape));
    const cols = v.shape.length === 2 ? v.shape[1] : v.shape[0];
    vals[name] = Array.from({ length: v.size / cols }, (_, r) => data.slice(r * cols, (r + 1) * cols));
  }
  const B = 1;
  const W = 3;
  const x = [
    [0.5, -1, 0.2],
    [1, 0.3, -0.4],
    [-0.7, 0.8, 0.1],
  ];
  const elu = (z: number) => (z > 0 ? z : Math.exp(z) - 1);
  const mlp = (row: number[], n: string) => vals[`${n}/kernel`][0].map((_, j) => elu(row.reduce((s, xi, i) => s + xi * vals[`${n}/kernel`][i][j], 0) + vals[`${n}/bias`][0][j]));
  const dep = x.map((r) => mlp(r, 'arc_dep'));
  const head = x.map((r) => mlp(r, 'arc_head'));
  const U = vals['arc/U'];
  const u = vals['arc/u'];
  const words = tf.tensor2d(x);
  const headMask = tf.tensor1d([1, 1, 1]);
  const { arc, relDep, relHead } = p.arcScores({ words, B, W, headMask }, null);
  const got = arc.arraySync()[0];
  for (let i = 0; i < W; i++)
    for (let j = 0; j < W; j++) {
      if (i === j) {
        assert.ok(got[i][j] < -1e8);
        continue;
      }
      let s = 0;
      for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) s += dep[i][a] * U[a][b] * head[j][b];
      s += head[j][0] * u[0][0] + head[j][1] * u[1][0];
      s += vals['arc/dist'][0][j === 0 ? 3 : Math.max(-1, Math.min(1, j - i)) + 1]; // distance prior, ROOT last
      assert.ok(Math.abs(got[i][j] - s) < 1e-5, `arc (${i},${j}): ${got[i][j]} vs ${s}`);
    }
  // Labels at heads [0, 2, 0] (slot 0 is ROOT; its row is unused).
  const heads = [0, 2, 0];
  const lab = p.labelLogits(relDep, relHead, tf.tensor1d(heads, 'int32'), B, W).arraySync();
  const rd = x.map((r) => mlp(r, 'rel_dep'));
  const rh = x.map((r) => mlp(r, 'rel_head'));
  const Urel = vals['rel/U']; // [r, L·r]: U_l[a][b] = Urel[a][l·r + b]
  for (let i = 0; i < W; i++)
    for (let l = 0; l < 2; l++) {
      const hh = rh[heads[i]];
      let s = vals['rel/b'][0][l];
      for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) s += rd[i][a] * Urel[a][l * 2 + b] * hh[b];
      const cat = [...rd[i], ...hh];
      cat.forEach((c, k) => (s += c * vals['rel/W'][k][l]));
      assert.ok(Math.abs(lab[i][l] - s) < 1e-5, `label (${i},${l}): ${lab[i][l]} vs ${s}`);
    }
  // Masked heads get −1e9.
  const masked = p.arcScores({ words, B, W, headMask: tf.tensor1d([1, 1, 0]) }, null).arc.arraySync()[0];
  assert.ok(masked[1][2] < -1e8 && Math.abs(masked[1][0] - got[1][0]) < 1e-6);
  p.dispose();
});

test('whole-word masking: 15 % of pieces, whole words only, 80/10/10 replacement', () => {
  const rng = new Rng(9);
  let pieces = 0;
  let masked = 0;
  let asMask = 0;
  let kept = 0;
  for (let s = 0; s < 400; s++) {
    const nw = 5 + rng.int(25);
    const ids = [2];
    const wordStart: number[] = [];
    const wordEnd: number[] = [];
    for (let w = 0; w < nw; w++) {
      wordStart.push(ids.length);
      const len = 1 + (rng.next() < 0.3 ? 1 : 0) + (rng.next() < 0.1 ? 1 : 0);
      for (let k = 0; k < len; k++) ids.push(10 + rng.int(90));
      wordEnd.push(ids.length);
    }
    ids.push(3);
    const enc = { ids, wordStart, wordEnd };
    const m = wholeWordMask(enc, rng, 100);
    const set = new Set(m.pos);
    for (let w = 0; w < nw; w++) {
      const inW = Array.from({ length: wordEnd[w] - wordStart[w] }, (_, k) => set.has(wordStart[w] + k));
      assert.ok(inW.every((b) => b === inW[0]), 'a word is masked only as a whole');
    }
    assert.ok(!set.has(0) && !set.has(ids.length - 1), 'special tokens never masked');
    pieces += ids.length - 2;
    masked += m.pos.length;
    for (const p of m.pos) {
      if (m.input[p] === MASK_ID) asMask++;
      else if (m.input[p] === ids[p]) kept++;
    }
  }
  const rate = masked / pieces;
  assert.ok(rate > 0.13 && rate < 0.16, `mask rate ${rate}`);
  assert.ok(Math.abs(asMask / masked - 0.8) < 0.03, `[MASK] share ${asMask / masked}`);
  // "kept" includes random replacements that happen to draw the original id (≈1/95 of the 10 %).
  assert.ok(Math.abs(kept / masked - 0.1) < 0.03, `kept share ${kept / masked}`);
});

test('task cycles follow the spec (MX 8:1, MXP 8:1:1)', () => {
  const count = (xs: string[], t: string) => xs.filter((x) => x === t).length;
  assert.deepEqual(taskCycle('m'), ['mlm']);
  const mx = taskCycle('mx');
  assert.deepEqual([count(mx, 'mlm'), count(mx, 'pos'), mx.length], [8, 1, 9]);
  const mxp = taskCycle('mxp');
  assert.deepEqual(mxp, ['mlm', 'mlm', 'mlm', 'mlm', 'pos', 'mlm', 'mlm', 'mlm', 'mlm', 'parse']);
  assert.deepEqual(taskCycle('none'), []);
});

const tinyCfg = (vocabSize: number): MicroBertConfig => ({ vocabSize, nLayers: 1, dModel: 16, nHeads: 2, dFf: 32, maxLen: 64, arcDim: 16, labelDim: 8, parserDropout: 0.1, maxDistance: 3 });

test('microbert on a synthetic treebank: training keeps tensor counts flat, the probe learns, save/load reproduces predictions', () => {
  const dir = writeSyntheticTreebank({ train: 60, dev: 16, test: 16 });
  const tb = loadTreebank(dir);
  const tok = trainTokenizer(tb.train, 60);
  const tags = collectTagSets(tb.train);
  const tr = prepareAll(tb.train, tok, tags, 64);
  const dv = prepareAll(tb.dev, tok, tags, 64);
  const model = new MicroBert(tinyCfg(tok.size), tok, tags, 1);
  const po = { variant: 'mxp' as const, batchSize: 8, lr: 3e-3, weightDecay: 0.01, warmupSteps: 2, evalEvery: 5, plateauPatience: 1, minLr: 1e-4, maskProb: 0.15, seed: 1 };
  const curve: number[] = [];
  pretrain(model, { unlabeled: tr, labeled: tr, valUnlabeled: dv }, { ...po, steps: 10 });
  const n0 = tf.memory().numTensors;
  const r = pretrain(model, { unlabeled: tr, labeled: tr, valUnlabeled: dv }, { ...po, steps: 20, onEval: (e) => curve.push(e.val_ppl) });
  assert.equal(tf.memory().numTensors, n0, 'pretraining leaks tensors');
  assert.equal(curve.length, 4);
  assert.equal(r.bestValPpl, Math.min(...curve));
  assert.ok(r.tokensPerSec > 0);
  const devGold = { sents: dv, uposTags: tb.dev.map((s) => s.words.map((w) => w.upos)) };
  const pr = { batchSize: 8, lr: 5e-3, encoderLrFactor: 0.5, weightDecay: 0, evalEvery: 20, clip: 5, seed: 1 };
  trainProbe(model, tr, devGold, { ...pr, steps: 4 });
  const n1 = tf.memory().numTensors;
  const best = trainProbe(model, tr, devGold, { ...pr, steps: 60 });
  assert.equal(tf.memory().numTensors, n1, 'probe training leaks tensors');
  // The synthetic language has a fixed word order: a trained probe attaches most words correctly.
  assert.ok(best.devUas > 0.6, `dev UAS ${best.devUas}`);
  assert.ok(best.devUposAcc > 0.6, `dev UPOS ${best.devUposAcc}`);
  const te = prepareAll(tb.test, tok, tags, 64);
  const gold = te.map((s, i) => ({ heads: s.heads, labels: s.labels, upos: s.upos, uposTags: tb.test[i].words.map((w) => w.upos) }));
  const out = tempDir('efftrain-mb-');
  saveMicroBert(model, out);
  const { model: loaded } = loadMicroBert(out);
  const a = predict(model, te);
  const b = predict(loaded, te);
  assert.deepEqual(b, a, 'a loaded model predicts exactly what the saved one did');
  const sc = attachmentScores(gold, a);
  assert.ok(sc.las <= sc.uas && sc.scored === te.reduce((s, x, i) => s + tb.test[i].words.filter((w) => w.upos !== 'PUNCT').length, 0));
  for (const p of a) assert.equal(p.heads.filter((h) => h === 0).length, 1, 'every prediction has exactly one root');
  // A frozen-encoder probe trains on cached word vectors; cached and live predictions agree.
  const frozen = trainProbe(model, tr, devGold, { ...pr, encoderLrFactor: 0, steps: 40 });
  const n2 = tf.memory().numTensors;
  trainProbe(model, tr, devGold, { ...pr, encoderLrFactor: 0, steps: 4 });
  assert.equal(tf.memory().numTensors, n2, 'frozen probe leaks tensors');
  assert.ok(frozen.devUas > 0.3, `frozen probe dev UAS ${frozen.devUas}`);
  const live = predict(model, te);
  const viaCache = predict(model, te, 32, model.cacheWordVectors(te));
  assert.deepEqual(viaCache.map((p) => p.heads), live.map((p) => p.heads));
  model.dispose();
  loaded.dispose();
});

test('attachment scores exclude punctuation and need both head and label for LAS', () => {
  const gold = [{ heads: [2, 0, 2], labels: [0, 1, 2], upos: [0, 1, 2], uposTags: ['DET', 'NOUN', 'PUNCT'] }];
  const sc = attachmentScores(gold, [{ heads: [2, 0, 1], labels: [3, 1, 2], upos: [0, 1, 1] }]);
  assert.deepEqual([sc.uas, sc.las, sc.scored], [1, 0.5, 2]);
  assert.ok(Math.abs(sc.uposAcc - 2 / 3) < 1e-12);
});

test('makeBatch pools each word as the mean of its pieces and slot 0 as [CLS]', () => {
  const tok = WordPieceTokenizer.train(TOY, { vocabSize: 16 });
  const enc = tok.encodeSentence(['hugs', 'pun']);
  const b = makeBatch([{ enc, upos: [0, 1], heads: [2, 0], labels: [0, 1] }]);
  const row = (w: number) => Array.from(b.pool.subarray(w * b.T, w * b.T + enc.ids.length));
  assert.deepEqual(row(0), [1, 0, 0, 0, 0]);
  assert.deepEqual(row(1), [0, 0.5, 0.5, 0, 0]);
  assert.deepEqual(row(2), [0, 0, 0, 1, 0]);
  assert.deepEqual(Array.from(b.headMask.subarray(0, 4)), [1, 1, 1, 0]);
  assert.deepEqual(Array.from(b.wordMask.subarray(0, 4)), [0, 1, 1, 0]);
});

test('bidirectional encoder: packed attention equals per-head, padding is invisible, later tokens change earlier states', () => {
  const { TransformerLM } = transformerModule;
  const base = { vocabSize: 20, contextLength: 16, dModel: 16, nHeads: 4, nLayers: 2, dFf: 32, ffn: { kind: 'dense' }, causal: false, embedding: 'gather' as const };
  const a = new TransformerLM({ ...base, attention: 'per-head' }, 3);
  const b = new TransformerLM({ ...base, attention: 'packed' }, 3);
  const ids = tf.tensor2d([[2, 5, 6, 7, 3, 0, 0, 0], [2, 9, 3, 0, 0, 0, 0, 0]], [2, 8], 'int32');
  const mask = tf.tensor2d([[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]]);
  const ha = a.hidden(ids, undefined, mask).arraySync();
  const hb = b.hidden(ids, undefined, mask).arraySync();
  ha.forEach((r, i) => r.forEach((v, j) => assert.ok(Math.abs(v - hb[i][j]) < 1e-5)));
  // Different padding ids: real positions unchanged.
  const ids2 = tf.tensor2d([[2, 5, 6, 7, 3, 11, 12, 13], [2, 9, 3, 4, 4, 4, 4, 4]], [2, 8], 'int32');
  const hp = b.hidden(ids2, undefined, mask).arraySync();
  for (const row of [0, 1, 2, 3, 4, 8, 9, 10]) ha[row].forEach((v, j) => assert.ok(Math.abs(v - hp[row][j]) < 1e-5));
  // A later token changes the state of position 1 (no causal mask).
  const ids3 = tf.tensor2d([[2, 5, 6, 8, 3, 0, 0, 0], [2, 9, 3, 0, 0, 0, 0, 0]], [2, 8], 'int32');
  const h3 = b.hidden(ids3, undefined, mask).arraySync();
  assert.ok(ha[1].some((v, j) => Math.abs(v - h3[1][j]) > 1e-4));
  a.dispose();
  b.dispose();
});

test('scalar mix: γ·Σ softmax(s)_l·h_l by hand; the last mixed layer is the encoder output', () => {
  const mix = new ScalarMix(2);
  mix.s.assign(tf.tensor1d([0, Math.log(3)]));
  mix.gamma.assign(tf.tensor1d([2]));
  const out = mix.apply(tf.tensor3d([[[1, 2]], [[3, 4]]]));
  // weights 1/4, 3/4; 2·(0.25·[1,2] + 0.75·[3,4]) = [5, 7]
  out.dataSync().forEach((v, i) => assert.ok(Math.abs(v - [5, 7][i]) < 1e-5));
  mix.dispose();
  const tok = WordPieceTokenizer.train(TOY, { vocabSize: 16 });
  const model = new MicroBert({ ...tinyCfg(tok.size), nLayers: 2 }, tok, { upos: ['X'], deprels: ['dep'] }, 4);
  const prep = (ws: string[]) => ({ enc: tok.encodeSentence(ws), upos: ws.map(() => 0), heads: ws.map(() => 0), labels: ws.map(() => 0) });
  const t = batchTensors(makeBatch([prep(['hugs', 'pun', 'bun']), prep(['pug'])]));
  const last = model.wordVectors(t, false).arraySync();
  const layers = model.wordLayers(t, false).arraySync();
  assert.equal(layers.length, 3);
  layers[2].forEach((r, i) => r.forEach((v, j) => assert.ok(Math.abs(v - last[i][j]) < 1e-5)));
  tf.dispose(Object.values(t));
  model.dispose();
});

test('a probe reading the layer mix survives a collapsed top layer; a last-layer probe does not', () => {
  // Pretraining stuck at the unigram plateau pushes the top layer towards one vector for every word. Simulate the
  // extreme (final LayerNorm gain 0: every word's top vector is the same) on a frozen encoder: the mix still
  // reaches the embeddings and labels words; the last layer alone cannot tell words apart.
  const dir = writeSyntheticTreebank({ train: 60, dev: 16, test: 4 });
  const tb = loadTreebank(dir);
  const tok = trainTokenizer(tb.train, 60);
  const tags = collectTagSets(tb.train);
  const tr = prepareAll(tb.train, tok, tags, 64);
  const dv = prepareAll(tb.dev, tok, tags, 64);
  const model = new MicroBert(tinyCfg(tok.size), tok, tags, 2);
  model.encoder.lnfG.assign(tf.zeros([16]));
  model.encoder.lnfB.assign(tf.fill([16], 0.5));
  const cos = layerCosines(model, dv);
  assert.ok(Math.abs(cos[1] - 1) < 1e-5, `top layer collapsed: cos ${cos[1]}`);
  assert.ok(cos[0] < 0.5, `embedding layer distinct: cos ${cos[0]}`);
  const devGold = { sents: dv, uposTags: tb.dev.map((s) => s.words.map((w) => w.upos)) };
  const pr = { batchSize: 8, lr: 1e-2, encoderLrFactor: 0, weightDecay: 0, evalEvery: 40, clip: 5, seed: 1, steps: 80 };
  const lastOnly = trainProbe(model, tr, devGold, { ...pr, layerMix: false });
  const mixed = trainProbe(model, tr, devGold, { ...pr, layerMix: true });
  assert.ok(lastOnly.devUposAcc < 0.4, `last-layer UPOS ${lastOnly.devUposAcc}`);
  assert.ok(mixed.devUposAcc > 0.8, `mixed UPOS ${mixed.devUposAcc}`);
  assert.ok(mixed.devLas > lastOnly.devLas + 0.2, `LAS mixed ${mixed.devLas} vs last ${lastOnly.devLas}`);
  model.dispose();
});

test('learned absolute positions: the encoder gets a position table, and save/load keeps it', () => {
  const dir = writeSyntheticTreebank({ train: 20, dev: 4, test: 4 });
  const tb = loadTreebank(dir);
  const tok = trainTokenizer(tb.train, 60);
  const tags = collectTagSets(tb.train);
  const rope = new MicroBert(tinyCfg(tok.size), tok, tags, 3);
  const learned = new MicroBert({ ...tinyCfg(tok.size), positional: 'learned' }, tok, tags, 3);
  assert.equal(learned.encoderParamCount() - rope.encoderParamCount(), 64 * 16, 'a maxLen × dModel table');
  learned.addHeads({ parser: true, tagger: true, mix: true }, 1);
  const out = tempDir('efftrain-mbpos-');
  saveMicroBert(learned, out);
  const { model: loaded } = loadMicroBert(out);
  assert.equal(loaded.cfg.positional, 'learned');
  const te = prepareAll(tb.test, tok, tags, 64);
  const t = batchTensors(makeBatch(te));
  const a = learned.states(t.ids, t.keyMask, false);
  const b = loaded.states(t.ids, t.keyMask, false);
  const c = rope.states(t.ids, t.keyMask, false);
  assert.deepEqual(b.arraySync(), a.arraySync());
  assert.ok(tf.max(tf.abs(tf.sub(a, c))).dataSync()[0] > 1e-3, 'positions change the states');
  tf.dispose([a, b, c, ...Object.values(t)]);
  for (const m of [rope, learned, loaded]) m.dispose();
});

test('MLM uses bidirectional context: on a language whose word i+4 repeats word i, dev perplexity falls from the uniform 24 to below 4', () => {
  // 24 equally likely word types, so a model without context cannot beat perplexity ≈ 24; a masked word whose
  // partner is visible (before or after it) is predictable. This checks masking, attention and the tied MLM head together.
  const rng = new Rng(5);
  const types = Array.from({ length: 24 }, (_, i) => `w${String.fromCharCode(97 + i)}${String.fromCharCode(97 + i)}`);
  const sentence = () => {
    const half = Array.from({ length: 4 }, () => types[rng.int(types.length)]);
    return [...half, ...half];
  };
  const train = Array.from({ length: 400 }, sentence);
  const dev = Array.from({ length: 100 }, sentence);
  const tok = WordPieceTokenizer.train(train.flat(), { vocabSize: 200, minFrequency: 2 });
  assert.ok(types.every((w) => tok.encodeWord(w).length === 1), 'every type is one piece');
  const model = new MicroBert({ vocabSize: tok.size, nLayers: 2, dModel: 32, nHeads: 2, dFf: 64, maxLen: 64, arcDim: 16, labelDim: 8, parserDropout: 0.1 }, tok, { upos: ['X'], deprels: ['dep'] }, 1);
  const curve: number[] = [];
  const tr = prepareText(train, tok, 64);
  const r = pretrain(model, { unlabeled: tr, labeled: tr, valUnlabeled: prepareText(dev, tok, 64) }, {
    variant: 'm', steps: 400, batchSize: 16, lr: 3e-3, weightDecay: 0.01, warmupSteps: 20, evalEvery: 100, plateauPatience: 2, minLr: 1e-4, maskProb: 0.15, seed: 1,
    onEval: (e) => curve.push(e.val_ppl),
  });
  assert.equal(curve.length, 4);
  assert.ok(r.bestValPpl < 4, `best dev perplexity ${r.bestValPpl} (uniform ≈ 24)`);
  model.dispose();
});
