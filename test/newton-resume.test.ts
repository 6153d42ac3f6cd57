import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { Rng } from '../src/engine/rng.js';
import { ErrorRiseAnnealer, NewtonSchedule, PatternStream, phaseAt, trainNewtonClassifier, type NetSpec, type NewtonEpoch, type NewtonTrainOptions, type SampleSource } from '../src/methods/newton/index.js';
import { memoryCheckpointStore, readCheckpointMeta, type CheckpointStore } from '../src/train/checkpoint.js';

/** 4 one-hot input types with noisy labels over 5 classes, and 60 negatives of random features (warped by the RNG). */
function source(): SampleSource {
  const rng = new Rng(11);
  const n = 300;
  const type = Int32Array.from({ length: n }, () => rng.int(4));
  const labels = Int32Array.from(type, (t) => (rng.next() < 0.7 ? t : rng.int(5)));
  return {
    positiveLabels: labels,
    nNegatives: 60,
    features(i, neg, out, off, r) {
      if (neg) out.fill(0.1 + (i % 7) / 10, off, off + 4);
      else {
        out.fill(0, off, off + 4);
        out[off + type[i]] = 1;
      }
      if (r) out[off + r.int(4)] += 0.1 * r.next();
    },
  };
}

const spec: NetSpec = { inputDim: 4, branches: [{ from: 0, to: 4, units: 6 }], hidden: 6, outputs: 5 };
// 250 patterns in batches of 32: 8 steps an epoch, the last of 26 patterns.
const opts: NewtonTrainOptions = {
  spec, epochs: 5, patternsPerEpoch: 250, batchSize: 32, lrScale: 1, schedule: 'anneal', fixedLr: 0.1, normOutErrD: 0.5,
  frequencyBalancing: { a: 0.5, b: 0.7, cap: 10 }, errorEmphasis: true, negativeTraining: { factor: 0.3 }, strokeWarping: true,
};

function run(store: CheckpointStore, resume: boolean, stopAtEpoch?: number) {
  const epochs: NewtonEpoch[] = [];
  const tensors: number[] = [];
  const res = trainNewtonClassifier(source(), {
    ...opts,
    checkpoint: { store, everySteps: 3, resume },
    onEpoch: (e) => {
      if (e.epoch === stopAtEpoch) throw new Error('interrupted');
      epochs.push(e);
      tensors.push(tf.memory().numTensors);
    },
  }, new Rng(4));
  return { epochs, tensors, weights: Object.fromEntries(Object.entries(res.weights).map(([k, v]) => [k, Array.from(v)])) };
}

test('Newton training through fit: interrupted mid-epoch and resumed gives the same epochs and weights; tensors flat', async () => {
  await initEngine({ backend: 'wasm' });
  const before = tf.memory().numTensors;
  const full = run(memoryCheckpointStore(), false);
  assert.equal(tf.memory().numTensors, before, 'no tensor left after training');
  assert.equal(full.epochs.length, 5);
  assert.deepEqual(full.tensors, full.tensors.map(() => full.tensors[0]), 'tensor count flat from epoch to epoch');
  for (const e of full.epochs) assert.equal(e.positives + e.negatives, 250);
  const sum = (k: 'negatives' | 'backprop') => full.epochs.reduce((s, e) => s + e[k], 0);
  assert.ok(sum('negatives') > 0 && sum('backprop') < 5 * 250, `negatives presented, correct positives skipped by error emphasis: ${JSON.stringify(full.epochs)}`);
  // Epoch 2 (0-based) runs steps 17–24; its onEpoch throws before the epoch-end checkpoint: the last one is step 21.
  const store = memoryCheckpointStore();
  assert.throws(() => run(store, false, 2), /interrupted/);
  assert.equal(readCheckpointMeta(store).step, 21);
  assert.equal(readCheckpointMeta(store).batchInEpoch, 5);
  const resumed = run(store, true);
  assert.deepEqual(resumed.epochs, full.epochs, 'restored epochs replayed, then the same new ones');
  assert.deepEqual(resumed.weights, full.weights);
  // A different seed gives different weights (the comparison above can fail).
  const other = trainNewtonClassifier(source(), opts, new Rng(5));
  assert.notDeepEqual(Array.from(other.weights['o.w']), full.weights['o.w']);
});

test('NewtonSchedule: phase rate × lrScale × annealer per epoch; annealer state round-trips through JSON (prev = ∞)', () => {
  const s = new NewtonSchedule({ mode: 'anneal', epochs: 4, stepsPerEpoch: 3, lrScale: 2, fixedLr: 0.1 });
  assert.equal(s.lr(0), phaseAt(0, 4).lr * 2);
  assert.equal(s.lr(5), phaseAt(1, 4).lr * 2);
  assert.equal(s.lr(99), phaseAt(3, 4).lr * 2, 'steps past the end use the last epoch');
  s.onEpochEnd(10);
  s.onEpochEnd(12); // error rose: × 0.9
  assert.equal(s.lr(6), phaseAt(2, 4).lr * 2 * 0.9);
  const copy = new NewtonSchedule(s.o);
  copy.setState(JSON.parse(JSON.stringify(s.getState())));
  copy.onEpochEnd(11);
  s.onEpochEnd(11);
  assert.equal(copy.lr(9), s.lr(9));
  const fresh = new ErrorRiseAnnealer();
  const restored = new ErrorRiseAnnealer();
  restored.setState(JSON.parse(JSON.stringify(fresh.getState())));
  assert.equal(restored.update(1e30), 1, 'the first epoch never anneals, also after a restore');
  const fixed = new NewtonSchedule({ mode: 'fixed', epochs: 4, stepsPerEpoch: 3, lrScale: 2, fixedLr: 0.1 });
  fixed.onEpochEnd(1);
  fixed.onEpochEnd(2);
  assert.equal(fixed.lr(11), 0.2);
});

test('PatternStream: positives once per list plus sampled negatives; a restored stream continues identically', () => {
  const labels = Int32Array.from({ length: 20 }, (_, i) => i % 3);
  const rng = new Rng(8);
  const a = new PatternStream(labels, 10, null, true, rng);
  const first = Array.from({ length: 20 }, () => a.next(0.5));
  assert.deepEqual(first.filter((e) => e >= 0).sort((x, y) => x - y), [...new Set(first.filter((e) => e >= 0))].sort((x, y) => x - y), 'no positive twice in a list');
  const state = JSON.parse(JSON.stringify(a.getState()));
  const rngState = rng.getState();
  const next = Array.from({ length: 40 }, () => a.next(0.5));
  const rng2 = Rng.fromState(rngState);
  const b = new PatternStream(labels, 10, null, true, rng2);
  b.setState(state);
  assert.deepEqual(Array.from({ length: 40 }, () => b.next(0.5)), next);
});
