import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { Rng } from '../src/engine/rng.js';
import {
  BatchStream,
  BestWeights,
  MicroBert,
  batchTensors,
  collectTagSets,
  makeBatch,
  predict,
  prepareAll,
  prepareText,
  pretokenizeText,
  pretrain,
  trainProbe,
  trainTokenizer,
  warmupPlateau,
  type MicroBertConfig,
} from '../src/methods/microbert/index.js';
import { checkNoHeldOutText, findTreebankFiles, loadTreebank, readUnlabeledText } from '../src/node/microbert-files.js';
import type { CheckpointStore } from '../src/train/checkpoint.js';
import { writeSyntheticTreebank } from './helpers/treebank.js';
import { tempDir } from './helpers/tmp.js';

before(async () => {
  await initEngine({ backend: 'wasm' });
});

test('BatchStream: a stream restored from its state continues with the same batches', () => {
  const rng = new Rng(5);
  const a = new BatchStream(7, 3, rng);
  for (let i = 0; i < 4; i++) a.next();
  const state = JSON.parse(JSON.stringify(a.getState()));
  const rngState = rng.getState();
  const expected = [a.next(), a.next(), a.next(), a.next()];
  const rng2 = Rng.fromState(rngState);
  const b = new BatchStream(7, 3, rng2);
  b.setState(state);
  assert.deepEqual([b.next(), b.next(), b.next(), b.next()], expected);
  // Every index once per pass of 7.
  const c = new BatchStream(7, 7, new Rng(1));
  assert.deepEqual([...c.next()].sort(), [0, 1, 2, 3, 4, 5, 6]);
});

test('warmupPlateau: linear warm-up lr·s/w, then halving after `patience` evaluations without gain, floored', () => {
  const s = warmupPlateau(0.4, { warmupSteps: 4, patience: 2, minLr: 0.07 });
  assert.deepEqual([0, 1, 2, 3, 4, 10].map((t) => s.lr(t)), [0.1, 0.2, (0.4 * 3) / 4, 0.4, 0.4, 0.4]);
  s.observe(10, 2); // best 10
  s.observe(11, 3); // during warm-up: no count
  s.observe(11, 5); // bad 1
  assert.equal(s.lr(5), 0.4);
  s.observe(12, 6); // bad 2 → halve
  assert.equal(s.lr(6), 0.2);
  const saved = s.getState!();
  s.observe(13, 7);
  s.observe(13, 8); // → 0.1
  s.observe(13, 9);
  s.observe(13, 10); // → max(0.07, 0.05)
  assert.equal(s.lr(10), 0.07);
  s.setState!(saved);
  assert.equal(s.lr(6), 0.2);
  s.observe(9, 7); // a new best resets the count
  s.observe(9.5, 8);
  assert.equal(s.lr(8), 0.2);
});

test('BestWeights keeps the best-scoring copy and restores it; non-finite scores never count', () => {
  const v = tf.variable(tf.tensor1d([1, 2]));
  const bw = new BestWeights('t', [v], (a, b) => a > b);
  assert.equal(bw.offer(0.5, 1), true);
  v.assign(tf.tensor1d([3, 4]));
  assert.equal(bw.offer(0.4, 2), false);
  assert.equal(bw.offer(NaN, 3), false);
  v.assign(tf.tensor1d([5, 6]));
  bw.restore();
  assert.deepEqual(Array.from(v.dataSync()), [1, 2]);
  assert.deepEqual(bw.state, { score: 0.5, step: 1, info: {} });
  bw.dispose();
  v.dispose();
});

/** A checkpoint store that keeps every write, so a test can resume from any of them. */
function recordingStore(name: string, initial: Uint8Array | null = null) {
  const writes: { step: number; bytes: Uint8Array }[] = [];
  let bytes = initial;
  const store: CheckpointStore = {
    name,
    exists: () => bytes !== null,
    read: () => bytes!,
    write: (b) => {
      bytes = b;
      const head = Buffer.from(b.subarray(0, 4096)).toString('latin1');
      writes.push({ step: Number(/\\"step\\":(\d+)/.exec(head)![1]), bytes: b });
    },
  };
  return { store, writes };
}

const tinyCfg = (vocabSize: number): MicroBertConfig => ({ vocabSize, nLayers: 1, dModel: 16, nHeads: 2, dFf: 32, maxLen: 64, arcDim: 16, labelDim: 8, parserDropout: 0.1, maxDistance: 3 });

test('pretraining and the probe resume exactly from a mid-phase checkpoint (and past a finished pretraining)', () => {
  const dir = writeSyntheticTreebank({ train: 40, dev: 10, test: 10 });
  const tb = loadTreebank(dir);
  const tok = trainTokenizer(tb.train, 60);
  const tags = collectTagSets(tb.train);
  const tr = prepareAll(tb.train, tok, tags, 64);
  const dv = prepareAll(tb.dev, tok, tags, 64);
  const devGold = { sents: dv, uposTags: tb.dev.map((s) => s.words.map((w) => w.upos)) };
  const po = { variant: 'mxp' as const, steps: 24, batchSize: 8, lr: 3e-3, weightDecay: 0.01, warmupSteps: 2, evalEvery: 4, plateauPatience: 1, minLr: 1e-4, maskProb: 0.15, dropout: 0.1, seed: 3 };
  const pr = { steps: 16, batchSize: 8, lr: 5e-3, encoderLrFactor: 0.5, weightDecay: 0, evalEvery: 4, clip: 5, seed: 3 };
  const run = (pre: CheckpointStore, probe: CheckpointStore, resume: boolean) => {
    const model = new MicroBert(tinyCfg(tok.size), tok, tags, 3);
    const rows: unknown[] = [];
    const p = pretrain(model, { unlabeled: tr, labeled: tr, valUnlabeled: dv }, { ...po, checkpoint: { store: pre, everySteps: 8, resume }, onEval: (r) => rows.push(r) });
    const q = trainProbe(model, tr, devGold, { ...pr, checkpoint: { store: probe, everySteps: 4, resume }, onEval: (r) => rows.push(r) });
    const out = { p: { ...p, tokensPerSec: 0 }, q, rows, pred: predict(model, dv), weights: model.encoder.variables().map((v) => Array.from(v.dataSync())) };
    model.dispose();
    return out;
  };
  const pre = recordingStore('pre');
  const probe = recordingStore('probe');
  const full = run(pre.store, probe.store, false);
  assert.deepEqual(pre.writes.map((w) => w.step), [8, 16, 24], 'every 8 steps and after the last');
  assert.deepEqual(probe.writes.map((w) => w.step), [4, 8, 12, 16]);
  const n0 = tf.memory().numTensors;
  // Killed mid-pretraining (step 16): both phases continue from there.
  const a = run(recordingStore('pre', pre.writes[1].bytes).store, recordingStore('probe').store, true);
  assert.deepEqual(a, full);
  // Killed mid-probe (step 8): pretraining is restored from its final checkpoint, the probe continues.
  const b = run(recordingStore('pre', pre.writes[2].bytes).store, recordingStore('probe', probe.writes[1].bytes).store, true);
  assert.deepEqual(b, full);
  assert.equal(tf.memory().numTensors, n0, 'resumed runs leak no tensors');
});

test('pretokenizeText splits whitespace and punctuation like UD FORMs; prepareText chunks long lines', () => {
  assert.deepEqual(pretokenizeText('  Waaw, dëgg la.  «Mbind» 2022!'), ['Waaw', ',', 'dëgg', 'la', '.', '«', 'Mbind', '»', '2022', '!']);
  assert.deepEqual(pretokenizeText(' \t '), []);
  const tok = trainTokenizer([], 40, 1, [['ab', 'cd', 'ab', 'cd']]);
  const words = Array.from({ length: 25 }, (_, i) => (i % 2 ? 'ab' : 'cd'));
  const chunks = prepareText([words, ['ab']], tok, 10);
  assert.deepEqual(chunks.map((c) => c.enc.ids.length), [10, 10, 10, 3, 3]);
  assert.equal(chunks.reduce((s, c) => s + c.heads.length, 0), 26);
  assert.ok(chunks.every((c) => c.heads.every((h) => h === -1) && c.upos.every((u) => u === -1)));
});

test('readUnlabeledText: one sentence per line; missing, empty, non-UTF-8 and held-out text are errors naming the file', () => {
  const d = tempDir('efftrain-unl-');
  const ok = join(d, 'ok.txt');
  writeFileSync(ok, '\ufeffJàng  na téere bi.\r\n\n  \nMu ngi fi\n');
  const t = readUnlabeledText(ok);
  assert.deepEqual(t.sentences, [['Jàng', 'na', 'téere', 'bi', '.'], ['Mu', 'ngi', 'fi']]);
  assert.deepEqual(t.lines, [1, 4]);
  assert.throws(() => readUnlabeledText(join(d, 'nope.txt')), /nope\.txt: unlabeled text file not found/);
  const empty = join(d, 'empty.txt');
  writeFileSync(empty, '\n \n');
  assert.throws(() => readUnlabeledText(empty), /empty\.txt: empty/);
  const bad = join(d, 'latin1.txt');
  writeFileSync(bad, Buffer.concat([Buffer.from('fine\nalso fine\n'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a])]));
  assert.throws(() => readUnlabeledText(bad), /latin1\.txt:3: not valid UTF-8/);
  assert.throws(() => readUnlabeledText(d), /not a file/);
  const tbDir = writeSyntheticTreebank({ train: 10, dev: 4, test: 4 });
  const files = findTreebankFiles(tbDir);
  assert.throws(() => readUnlabeledText(files.test, [files.dev, files.test]), /is the treebank's dev or test split/);
  const tb = loadTreebank(tbDir);
  const leak = join(d, 'leak.txt');
  writeFileSync(leak, `a fresh line\n${tb.dev[2].words.map((w) => w.form.toUpperCase()).join(' ')}\n`);
  assert.throws(() => checkNoHeldOutText([readUnlabeledText(leak)], tb), /leak\.txt:2: this line is a sentence of the treebank's dev split/);
  assert.doesNotThrow(() => checkNoHeldOutText([t], tb));
});

test('hidden dropout: active only in training forwards with a rate, seeded by the given Rng', () => {
  const dir = writeSyntheticTreebank({ train: 12, dev: 4, test: 4 });
  const tb = loadTreebank(dir);
  const tok = trainTokenizer(tb.train, 50);
  const tags = collectTagSets(tb.train);
  const t = batchTensors(makeBatch(prepareAll(tb.train.slice(0, 4), tok, tags, 64)));
  const model = new MicroBert(tinyCfg(tok.size), tok, tags, 1);
  const states = (training: boolean, dropout: { rate: number; rng: Rng } | null) => {
    model.dropout = dropout;
    const h = model.states(t.ids, t.keyMask, training);
    const v = Array.from(h.dataSync());
    h.dispose();
    return v;
  };
  const plain = states(false, null);
  assert.deepEqual(states(true, null), plain, 'no dropout: training and evaluation forwards agree');
  assert.deepEqual(states(false, { rate: 0.3, rng: new Rng(9) }), plain, 'evaluation ignores dropout');
  const a = states(true, { rate: 0.3, rng: new Rng(9) });
  assert.notDeepEqual(a, plain);
  assert.deepEqual(states(true, { rate: 0.3, rng: new Rng(9) }), a, 'same Rng state, same masks');
  model.dropout = null;
  model.dispose();
  tf.dispose(Object.values(t));
});
