import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine } from '../src/engine/backend.js';
import { Rng } from '../src/engine/rng.js';
import { AdamW, SGD, clipByGlobalNorm, createOptimizer } from '../src/train/optimizers.js';
import { warmupCosine, stepDecay, reduceOnPlateau, createSchedule } from '../src/train/schedules.js';
import { Trainer, trainableVariables } from '../src/train/trainer.js';
import { saveCheckpoint, loadCheckpoint, fileCheckpointStore } from '../src/node/checkpoint-file.js';
import { encodeSafetensors, decodeSafetensors } from '../src/train/safetensors.js';
import { saveLayersModel, loadLayersModel } from '../src/train/model-io.js';
import { fit } from '../src/train/fit.js';
import { auroc, meanStd } from '../src/train/metrics.js';
import { buildMlp, buildCnn } from '../src/models/classifiers.js';
import { NonFiniteLossError } from '../src/errors.js';
import { tempDir } from './helpers/tmp.js';

before(async () => {
  await initEngine({ backend: 'wasm' });
});

test('AdamW: two steps match the hand-computed update (decoupled decay on kernels only)', () => {
  const w = tf.variable(tf.tensor2d([[1, -2]]), true, 'w_adamw');
  const b = tf.variable(tf.tensor1d([0.5]), true, 'b_adamw');
  const opt = new AdamW({ beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.1 });
  const gW = [0.3, -0.4];
  const gB = [2];
  const lr = 0.01;
  // the decay uses θ before the adaptive step (θ ← θ − lr·adam − lr·λ·θ_old)
  const refOld = (p: number, gs: number[], decay: boolean) => {
    let m = 0, v = 0, x = p;
    gs.forEach((g, t) => {
      m = 0.9 * m + 0.1 * g;
      v = 0.99 * v + 0.01 * g * g;
      const mh = m / (1 - 0.9 ** (t + 1));
      const vh = v / (1 - 0.99 ** (t + 1));
      x = x - lr * (mh / (Math.sqrt(vh) + 1e-8)) - (decay ? lr * 0.1 * x : 0);
    });
    return x;
  };
  for (let s = 0; s < 2; s++) tf.tidy(() => opt.apply([w, b], [tf.tensor2d([gW]), tf.tensor1d(gB)], lr));
  const wv = w.dataSync();
  assert.ok(Math.abs(wv[0] - refOld(1, [0.3, 0.3], true)) < 1e-6);
  assert.ok(Math.abs(wv[1] - refOld(-2, [-0.4, -0.4], true)) < 1e-6);
  assert.ok(Math.abs(b.dataSync()[0] - refOld(0.5, [2, 2], false)) < 1e-6, 'no decay on biases');
  opt.dispose();
  w.dispose();
  b.dispose();
});

test('SGD momentum and Nesterov match PyTorch-convention hand computation', () => {
  for (const nesterov of [false, true]) {
    const p = tf.variable(tf.scalar(1));
    const opt = new SGD({ momentum: 0.9, nesterov });
    let x = 1, buf = 0;
    for (const g of [1, 0.5, -0.25]) {
      tf.tidy(() => opt.apply([p], [tf.scalar(g)], 0.1));
      buf = 0.9 * buf + g;
      x -= 0.1 * (nesterov ? g + 0.9 * buf : buf);
    }
    assert.ok(Math.abs(p.dataSync()[0] - x) < 1e-6, `nesterov=${nesterov}`);
    opt.dispose();
    p.dispose();
  }
  assert.throws(() => new SGD({ nesterov: true }), /momentum/);
  assert.throws(() => createOptimizer('nope' as never), /unknown optimizer/);
});

test('global-norm clipping scales all gradients by maxNorm/‖g‖ only when above', () => {
  tf.tidy(() => {
    const { grads, norm } = clipByGlobalNorm([tf.tensor1d([3, 0]), tf.tensor1d([0, 4])], 1);
    assert.ok(Math.abs(norm.dataSync()[0] - 5) < 1e-6);
    assert.deepEqual(Array.from(grads[0].dataSync()).map((v) => +v.toFixed(5)), [0.6, 0]);
    assert.deepEqual(Array.from(grads[1].dataSync()).map((v) => +v.toFixed(5)), [0, 0.8]);
    const c2 = clipByGlobalNorm([tf.tensor1d([0.3, 0.4])], 1);
    assert.deepEqual(Array.from(c2.grads[0].dataSync()).map((v) => +v.toFixed(5)), [0.3, 0.4]);
  });
});

test('schedules: warmup+cosine, step, plateau with state', () => {
  const s = warmupCosine(1, 110, { warmupSteps: 10, minLr: 0.1 });
  assert.ok(Math.abs(s.lr(0) - 0.1) < 1e-12);
  assert.ok(Math.abs(s.lr(9) - 1) < 1e-12);
  assert.ok(Math.abs(s.lr(10) - 1) < 1e-12);
  assert.ok(Math.abs(s.lr(60) - 0.55) < 1e-12);
  assert.ok(Math.abs(s.lr(110) - 0.1) < 1e-12);
  const st = stepDecay(1, 10, 0.5);
  assert.deepEqual([st.lr(0), st.lr(9), st.lr(10), st.lr(25)], [1, 1, 0.5, 0.25]);
  const p = reduceOnPlateau(1, { factor: 0.5, patience: 1 });
  for (const m of [1, 0.9, 0.95, 0.95]) p.onEpochEnd!(m);
  assert.equal(p.lr(0), 0.5);
  const saved = p.getState!();
  const q = reduceOnPlateau(1, { factor: 0.5, patience: 1 });
  q.setState!(saved);
  assert.equal(q.lr(0), 0.5);
  assert.equal(createSchedule('constant', 0.3, 10).lr(5), 0.3);
});

test('safetensors round trip is exact', () => {
  tf.tidy(() => {
    const a = tf.tensor2d([[1.5, -2], [3, 4e-7]]);
    const b = tf.tensor1d([1, 2, 3], 'int32');
    const bytes = encodeSafetensors({ a, b }, { note: 'x' });
    const { tensors, metadata } = decodeSafetensors(bytes);
    assert.equal(metadata.note, 'x');
    assert.deepEqual(Array.from(tensors.a.dataSync()), Array.from(a.dataSync()));
    assert.deepEqual(tensors.b.shape, [3]);
    assert.equal(tensors.b.dtype, 'int32');
    assert.throws(() => decodeSafetensors(bytes.subarray(0, bytes.length - 2), 'ck.safetensors'), /ck\.safetensors: truncated/);
  });
});

function toyProblem(seed: number) {
  const rng = new Rng(seed);
  const model = buildMlp({ height: 4, width: 4, channels: 1 }, 3, [8], rng);
  const n = 64;
  const xs = new Float32Array(n * 16).map(() => rng.normal());
  const ys = Int32Array.from({ length: n }, (_, i) => (xs[i * 16] > 0 ? 1 : 0) + (xs[i * 16 + 1] > 0.5 ? 1 : 0));
  const x = tf.keep(tf.tensor4d(xs, [n, 4, 4, 1]));
  const y = tf.keep(tf.oneHot(tf.tensor1d(ys, 'int32'), 3));
  const lossFn = (idx: Int32Array) => {
    const i = tf.tensor1d(idx, 'int32');
    return tf.losses.softmaxCrossEntropy(tf.gather(y, i), model.apply(tf.gather(x, i), { training: true }) as tf.Tensor) as tf.Scalar;
  };
  return { rng, model, lossFn, n, dispose: () => { x.dispose(); y.dispose(); model.dispose(); } };
}

test('tensor count stays flat over 500 training steps (trainer + AdamW + clipping + schedule)', () => {
  const p = toyProblem(1);
  const trainer = new Trainer({ params: trainableVariables(p.model), optimizer: new AdamW({ weightDecay: 0.01 }), schedule: warmupCosine(1e-2, 500, { warmupSteps: 20 }), clipNorm: 1 });
  const batches = Array.from({ length: 4 }, (_, k) => Int32Array.from({ length: 16 }, (_, i) => k * 16 + i));
  for (let s = 0; s < 5; s++) trainer.trainStep(() => p.lossFn(batches[s % 4]));
  const before = tf.memory().numTensors;
  let first = NaN, last = NaN;
  for (let s = 0; s < 500; s++) {
    const l = trainer.trainStep(() => p.lossFn(batches[s % 4]));
    if (s === 0) first = l;
    last = l;
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
  assert.ok(last < first, `loss decreased ${first} → ${last}`);
  trainer.optimizer.dispose();
  p.dispose();
});

test('NaN loss stops the run naming the step and the last checkpoint, before corrupting weights', () => {
  const p = toyProblem(2);
  const trainer = new Trainer({ params: trainableVariables(p.model), optimizer: new AdamW(), lastCheckpoint: () => '/tmp/ck.safetensors' });
  trainer.trainStep(() => p.lossFn(Int32Array.from([0, 1, 2, 3])));
  const w0 = Array.from(trainer.params[0].dataSync());
  assert.throws(
    () => trainer.trainStep(() => tf.mul(p.lossFn(Int32Array.from([0, 1])), NaN) as tf.Scalar),
    (e: Error) => e instanceof NonFiniteLossError && /loss became NaN at step 1; last good checkpoint kept at \/tmp\/ck\.safetensors/.test(e.message),
  );
  assert.throws(() => trainer.trainStep(() => tf.div(p.lossFn(Int32Array.from([0, 1])), 0) as tf.Scalar), /loss became Infinity at step 1/);
  assert.deepEqual(Array.from(trainer.params[0].dataSync()), w0, 'weights untouched by the bad step');
  trainer.optimizer.dispose();
  p.dispose();
});

test('checkpoint + resume mid-epoch reproduces the uninterrupted run exactly', () => {
  const dir = tempDir('efftrain-ck-');
  const run = (stopAfterSteps: number | null, resume: boolean) => {
    const p = toyProblem(3);
    const trainer = new Trainer({ params: trainableVariables(p.model), optimizer: createOptimizer('adamw'), schedule: reduceOnPlateau(5e-3, { patience: 0, factor: 0.5 }) });
    let stepsTaken = 0;
    const res = (() => {
      try {
        return fit({
          trainer, numTrain: p.n, batchSize: 10, epochs: 4, rng: p.rng,
          lossFn: (idx) => {
            if (stopAfterSteps !== null && stepsTaken++ >= stopAfterSteps) throw new Error('killed');
            // consume the run RNG inside the step too (like dropout would)
            p.rng.next();
            return p.lossFn(idx);
          },
          checkpoint: { store: fileCheckpointStore(join(dir, 'ck.safetensors')), everySteps: 4, resume },
        });
      } catch (e) {
        if ((e as Error).message !== 'killed') throw e;
        return null;
      }
    })();
    const w = Array.from(trainer.params[0].dataSync());
    trainer.optimizer.dispose();
    p.dispose();
    return { res, w };
  };
  const full = run(null, false);
  const killed = run(9, false); // dies in epoch 2 (6 batches/epoch), after the step-8 checkpoint
  assert.equal(killed.res, null);
  assert.ok(existsSync(join(dir, 'ck.safetensors')));
  assert.ok(!readdirSync(dir).some((f) => f.includes('.tmp-')), 'no temp files left');
  const resumed = run(null, true);
  assert.deepEqual(resumed.res!.resumedFrom, { step: 8, epoch: 1 });
  assert.deepEqual(resumed.w, full.w, 'same final weights');
  assert.deepEqual(resumed.res!.history, full.res!.history.map((r, i) => ({ ...r, epoch_seconds: resumed.res!.history[i].epoch_seconds })));
});

test('fit: epoch mode names the option it is missing; step mode needs none of them', () => {
  const p = toyProblem(5);
  const trainer = new Trainer({ params: trainableVariables(p.model), optimizer: createOptimizer('adamw'), schedule: reduceOnPlateau(5e-3) });
  try {
    const lossFn = (idx: Int32Array) => p.lossFn(idx.length ? idx : Int32Array.from([0, 1, 2, 3]));
    assert.throws(() => fit({ trainer, numTrain: p.n, batchSize: 10, rng: p.rng, lossFn }), /`epochs` is required without `steps`/);
    assert.throws(() => fit({ trainer, epochs: 1, rng: p.rng, lossFn }), /`numTrain` and `batchSize` are required/);
    assert.equal(trainer.step, 0, 'nothing trained before the check');
    const { history } = fit({ trainer, steps: { total: 3 }, rng: p.rng, lossFn });
    assert.equal(trainer.step, 3);
    assert.equal(history.length, 1);
    assert.equal(history[0].step, 3);
  } finally {
    trainer.optimizer.dispose();
    p.dispose();
  }
});

test('saveCheckpoint/loadCheckpoint restores params and optimizer slots; shape mismatch is an error', () => {
  const dir = tempDir('efftrain-ck2-');
  const p = toyProblem(4);
  const t = new Trainer({ params: trainableVariables(p.model), optimizer: new AdamW() });
  t.trainStep(() => p.lossFn(Int32Array.from([0, 1, 2])));
  const rng = new Rng(1);
  saveCheckpoint(join(dir, 'c'), t, { epoch: 0, batchInEpoch: 1, rng: rng.getState(), epochRng: rng.getState(), extra: { a: 1 } });
  const w = Array.from(t.params[0].dataSync());
  t.trainStep(() => p.lossFn(Int32Array.from([3, 4])));
  const meta = loadCheckpoint(join(dir, 'c'), t);
  assert.equal(meta.step, 1);
  assert.equal(t.step, 1);
  assert.deepEqual(meta.extra, { a: 1 });
  assert.deepEqual(Array.from(t.params[0].dataSync()), w);
  const other = buildMlp({ height: 4, width: 4, channels: 1 }, 3, [5], new Rng(1));
  const t2 = new Trainer({ params: trainableVariables(other), optimizer: new AdamW() });
  assert.throws(() => loadCheckpoint(join(dir, 'c'), t2), /has shape \[16,8\] but the model expects \[16,5\]/);
  other.dispose();
  t.optimizer.dispose();
  p.dispose();
});

test('LayersModel save/load (model.json + weights.bin) round trip is exact without tfjs-node', async () => {
  const dir = tempDir('efftrain-model-');
  const m = buildCnn({ height: 8, width: 8, channels: 1 }, 4, [4, 8], 16, new Rng(5), 'stride');
  await saveLayersModel(m, dir);
  assert.ok(existsSync(join(dir, 'model.json')) && existsSync(join(dir, 'weights.bin')));
  const m2 = await loadLayersModel(dir);
  const x = tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 1);
  const a = (m.predict(x) as tf.Tensor).dataSync();
  const b = (m2.predict(x) as tf.Tensor).dataSync();
  assert.deepEqual(Array.from(b), Array.from(a));
  await assert.rejects(loadLayersModel(join(dir, 'nope')), /model file not found/);
  m.dispose();
  m2.dispose();
});

test('AUROC (Mann–Whitney with ties) and meanStd against hand values', () => {
  assert.equal(auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  assert.equal(auroc([1, 1, 1, 1], [0, 1, 0, 1]), 0.5);
  assert.equal(auroc([3, 2, 1], [1, 0, 0]), 1);
  assert.ok(Number.isNaN(auroc([1, 2], [1, 1])));
  const s = meanStd([1, 2, 3, 4]);
  assert.equal(s.mean, 2.5);
  assert.ok(Math.abs(s.std - Math.sqrt(5 / 3)) < 1e-12);
  assert.equal(meanStd([7]).std, 0);
});

test('seeded model init: same seed ⇒ same weights', () => {
  const a = buildMlp({ height: 4, width: 4, channels: 1 }, 3, [8], new Rng(11));
  const b = buildMlp({ height: 4, width: 4, channels: 1 }, 3, [8], new Rng(11));
  assert.deepEqual(Array.from(a.weights[0].read().dataSync()), Array.from(b.weights[0].read().dataSync()));
  a.dispose();
  b.dispose();
});
