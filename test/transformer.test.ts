import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { Rng } from '../src/engine/rng.js';
import { CharTokenizer, bibleKjvText, evalWindows, loadTextCorpus, mobyDickPath, randomWindows, splitTrainVal } from '../src/data/text-corpus.js';
import { TransformerLM, sampleFromLogits, type TransformerConfig } from '../src/models/transformer.js';
import { gelu, linear } from '../src/models/ffn.js';
import { StructuredFfn } from '../src/methods/structured-ffn/ffn.js';
import { AdamW } from '../src/train/optimizers.js';
import { Trainer } from '../src/train/trainer.js';
import { tempDir } from './helpers/tmp.js';
import { loadTransformer, saveTransformer } from '../src/node/transformer-files.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

before(async () => {
  await initEngine({ backend: 'wasm' });
});

const tiny = (ffn: TransformerConfig['ffn'] = { kind: 'dense' }): TransformerConfig => ({ vocabSize: 11, contextLength: 12, dModel: 16, nHeads: 2, nLayers: 2, dFf: 64, ffn });
const ids2d = (xs: number[], B: number, T: number) => tf.tensor2d(Int32Array.from(xs), [B, T], 'int32');

test('causal masking: changing future tokens leaves the logits of earlier positions unchanged', () => {
  for (const ffn of [{ kind: 'dense' }, { kind: 'structured', map: 'blockshuffle', blocks: 4 }]) {
    const m = new TransformerLM(tiny(ffn), 3);
    const rng = new Rng(4);
    const T = 12;
    const a = Array.from({ length: 2 * T }, () => rng.int(11));
    const cut = 5;
    const b = a.map((v, i) => (i % T > cut ? (v + 1 + rng.int(10)) % 11 : v));
    const la = m.logits(ids2d(a, 2, T)).arraySync();
    const lb = m.logits(ids2d(b, 2, T)).arraySync();
    let past = 0;
    let future = 0;
    for (let r = 0; r < 2 * T; r++)
      for (let v = 0; v < 11; v++) {
        const d = Math.abs(la[r][v] - lb[r][v]);
        if (r % T <= cut) past = Math.max(past, d);
        else future = Math.max(future, d);
      }
    assert.ok(past < 1e-5, `${ffn.kind}: past logits changed by ${past}`);
    assert.ok(future > 1e-4, `${ffn.kind}: future logits do depend on the changed tokens`);
    // Shorter sequences (generation) give the same logits as the prefix of a full window.
    const pre = m.logits(ids2d(a.slice(0, cut + 1), 1, cut + 1)).arraySync();
    for (let r = 0; r <= cut; r++) for (let v = 0; v < 11; v++) assert.ok(Math.abs(pre[r][v] - la[r][v]) < 1e-5);
    m.dispose();
  }
});

test('tokenizer round trip (Unicode code points), unknown symbols named', () => {
  const text = 'Call me Ishmael — “naïve” café\n\tend 🐋';
  const tok = CharTokenizer.fromText(text);
  assert.equal(tok.vocabSize, new Set(Array.from(text)).size);
  assert.equal(tok.decode(tok.encode(text)), text);
  const back = CharTokenizer.fromJSON(JSON.parse(JSON.stringify(tok.toJSON())));
  assert.deepEqual(Array.from(back.encode('café 🐋')), Array.from(tok.encode('café 🐋')));
  assert.throws(() => tok.encode('xyz!'), /not in the model's vocabulary/);
  for (let i = 1; i < tok.chars.length; i++) assert.ok(tok.chars[i - 1].codePointAt(0)! < tok.chars[i].codePointAt(0)!);
});

test('corpus: contiguous validation tail, windows, file loading and a clear error', () => {
  const ids = Int32Array.from({ length: 1000 }, (_, i) => i % 7);
  const { train, val } = splitTrainVal(ids, 0.1);
  assert.equal(val.length, 100);
  assert.equal(train.length, 900);
  assert.deepEqual(Array.from(train), Array.from(ids.subarray(0, 900)));
  assert.deepEqual(Array.from(val), Array.from(ids.subarray(900)));
  const seq = Int32Array.from({ length: 500 }, (_, i) => i);
  const w = randomWindows(seq, 4, 10, new Rng(1));
  for (let b = 0; b < 4; b++) for (let t = 0; t < 10; t++) assert.equal(w.y[b * 10 + t], w.x[b * 10 + t] + 1);
  const ev = evalWindows(seq, 10, 8);
  const n = ev.reduce((s, b) => s + b.batch, 0);
  assert.equal(n, 49);
  assert.equal(ev[0].x[0], 0);
  assert.equal(ev[0].x[10], 10, 'non-overlapping windows');
  assert.equal(evalWindows(seq, 10, 8, 5).reduce((s, b) => s + b.batch, 0), 5);
  const dir = tempDir('efftrain-corpus-');
  const f = join(dir, 'a.txt');
  writeFileSync(f, 'line one\r\nline two\r\n');
  assert.deepEqual(loadTextCorpus({ text: f }), { name: f, text: 'line one\nline two\n' });
  assert.throws(() => loadTextCorpus({ text: join(dir, 'missing.txt') }), /not found/);
  if (bibleKjvText() === null) assert.throws(() => loadTextCorpus({ source: 'bible-kjv' }), /apt-get install bible-kjv.*npm install --save-exact @stdlib\/datasets-moby-dick@0\.2\.3|npm install --save-exact @stdlib\/datasets-moby-dick@0\.2\.3.*apt-get install bible-kjv/);
  if (mobyDickPath()) {
    const c = loadTextCorpus();
    assert.equal(c.name, 'moby-dick');
    assert.ok(c.text.length > 1_000_000);
  }
});

test('fast GELU and the custom-gradient linear match the reference ops', () => {
  const x = tf.tensor2d([[-3, -1, -0.1, 0, 0.5, 2, 4, 9]]);
  const ref = tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI))), 1)));
  const ours = gelu(x);
  assert.ok(tf.max(tf.abs(tf.sub(ref, ours))).dataSync()[0] < 1e-5);
  const refFn = (v: tf.Tensor) => tf.sum(tf.mul(tf.mul(tf.mul(v, 0.5), tf.add(tf.tanh(tf.mul(tf.add(v, tf.mul(tf.pow(v, 3), 0.044715)), Math.sqrt(2 / Math.PI))), 1)), tf.range(1, 9)));
  const gRef = tf.grad(refFn)(x);
  const gOurs = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(gelu(v), tf.range(1, 9))))(x);
  assert.ok(tf.max(tf.abs(tf.sub(gRef, gOurs))).dataSync()[0] < 1e-4, 'GELU gradient matches autodiff of the reference');
  const rng = new Rng(2);
  const r = (s: number[]) => tf.tensor(Float32Array.from({ length: s[0] * (s[1] ?? 1) }, () => rng.normal()), s);
  for (const [n, m] of [
    [3, 7],
    [9, 4],
  ]) {
    const xx = r([5, n]) as tf.Tensor2D;
    const w = r([n, m]) as tf.Tensor2D;
    const b = r([m]) as tf.Tensor1D;
    const g = r([5, m]);
    const f1 = (a: tf.Tensor2D, ww: tf.Tensor2D, bb: tf.Tensor1D) => tf.sum(tf.mul(linear(a, ww, bb), g));
    const f2 = (a: tf.Tensor2D, ww: tf.Tensor2D, bb: tf.Tensor1D) => tf.sum(tf.mul(tf.add(tf.matMul(a, ww), bb), g));
    const g1 = tf.grads(f1 as never)([xx, w, b]);
    const g2 = tf.grads(f2 as never)([xx, w, b]);
    for (let i = 0; i < 3; i++) assert.ok(tf.max(tf.abs(tf.sub(g1[i], g2[i]))).dataSync()[0] < 1e-4, `grad ${i} (${n}x${m})`);
  }
});

test('training steps keep the tensor count flat (dense and SGT-guided structured), and learn', () => {
  for (const ffn of [{ kind: 'dense' }, { kind: 'structured', map: 'lowrank', rank: 4, guide: true }]) {
    const m = new TransformerLM(tiny(ffn), 1);
    const trainer = new Trainer({ params: m.variables(), optimizer: new AdamW({ weightDecay: 0.1 }), schedule: { lr: () => 1e-2 }, clipNorm: 1 });
    const rng = new Rng(1);
    // A learnable sequence: t → t+1 mod 11.
    const seqs = (B: number) => {
      const x: number[] = [];
      for (let b = 0; b < B; b++) {
        const o = rng.int(11);
        for (let t = 0; t < 12; t++) x.push((o + t) % 11);
      }
      return x;
    };
    const ctx = { training: true, rng: new Rng(2), guideAlpha: 0.6 };
    const step = () => {
      const x = seqs(4);
      const y = x.map((v) => (v + 1) % 11);
      return trainer.trainStep(() => m.loss(ids2d(x, 4, 12), ids2d(y, 4, 12), ctx));
    };
    const first = step();
    step();
    const n0 = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 25; i++) last = step();
    assert.equal(tf.memory().numTensors, n0, `${ffn.kind}: tensor count flat over steps`);
    assert.ok(last < first * 0.7, `${ffn.kind} learns: ${first} → ${last}`);
    m.dispose();
    trainer.optimizer.dispose();
  }
});

test('save/load round trip, pre-merged decoding, and the generate verb on a tiny saved model', () => {
  const dir = tempDir('efftrain-gen-');
  const text = 'abcab cabca\n';
  const tok = CharTokenizer.fromText(text);
  const cfg: TransformerConfig = { ...tiny({ kind: 'structured', map: 'lowrank', rank: 4, guide: true }), vocabSize: tok.vocabSize };
  const m = new TransformerLM(cfg, 5);
  for (const b of m.blocks) if (b.ffn instanceof StructuredFfn) b.ffn.dropGuides();
  const modelDir = join(dir, 'model');
  saveTransformer(m, modelDir, { tokenizer: tok.toJSON(), method: 'lowrank-test', seed: 5, val_bpc: 1.5 });
  const { model: l, meta } = loadTransformer(modelDir);
  assert.equal(meta.method, 'lowrank-test');
  const ids = ids2d([1, 2, 3, 0, 4, 1, 2, 3], 1, 8);
  const a = m.logits(ids);
  const b = l.logits(ids);
  assert.ok(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] < 1e-6, 'loaded model gives the same logits');
  for (const blk of l.blocks) if (blk.ffn instanceof StructuredFfn) blk.ffn.merge(64);
  const c = l.logits(ids);
  assert.ok(tf.max(tf.abs(tf.sub(a, c))).dataSync()[0] < 1e-5, 'pre-merged FFNs give the same logits');
  tf.dispose([ids, a, b, c]);
  m.dispose();
  l.dispose();
  const gen = (extra: string[]) => spawnSync(process.execPath, [CLI, 'generate', modelDir, '--prompt', 'ab', '--tokens', '20', ...extra], { encoding: 'utf8' });
  const r1 = gen(['--seed', '3', '--top-k', '3']);
  assert.equal(r1.status, 0, r1.stderr);
  const out = r1.stdout.replace(/\n$/, '');
  assert.ok(out.startsWith('ab'));
  assert.equal(Array.from(out).length, 22);
  for (const ch of out) assert.ok(tok.chars.includes(ch));
  assert.match(r1.stderr, /tokens\/s/);
  assert.equal(gen(['--seed', '3', '--top-k', '3']).stdout, r1.stdout, 'seeded sampling is reproducible');
  const greedy = gen(['--temperature', '0']);
  assert.equal(greedy.status, 0, greedy.stderr);
  const bad = gen(['--prompt', 'xyz']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /not in the model's vocabulary/);
  const missing = spawnSync(process.execPath, [CLI, 'generate', join(dir, 'nope')], { encoding: 'utf8' });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /not found/);
});

test('sampling: temperature 0 is argmax, top-k restricts the support', () => {
  const z = Float64Array.from([0.1, 2, 1.9, -1]);
  assert.equal(sampleFromLogits(z, 0, 0, new Rng(1)), 1);
  const rng = new Rng(3);
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) seen.add(sampleFromLogits(z, 1, 2, rng));
  assert.deepEqual([...seen].sort(), [1, 2]);
});
