import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { encodeIdx } from '../src/data/idx.js';
import { batchNormTraining, discretizeLatent, latentMovement, roundHalfEven, type LatentSnapshot } from '../src/methods/s3/index.js';
import { runExperiment } from '../src/experiments/runner.js';
import { comparisonPairs, parseS3Arm } from '../src/experiments/s3-shift/index.js';
import { trainValSplit } from '../src/experiments/s3-shift/train.js';
import { RAdam, SGD } from '../src/train/optimizers.js';
import { writeSyntheticIdx } from './helpers/synthetic.js';
import { tempDir } from './helpers/tmp.js';

await tf.setBackend('cpu');
await tf.ready();

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => {
  const x = a.dataSync();
  const y = b.dataSync();
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
};

/** Two BatchNormalization layers built on [n,h,w,c] with the same γ, β, moving stats (non-trivial values). */
function twinBn(c: number, momentum: number) {
  const mk = () => {
    const l = tf.layers.batchNormalization({ axis: -1, momentum, epsilon: 1e-3 });
    l.build([null, 3, 3, c]);
    l.setWeights([tf.tensor1d([1.5, 0.5, 2].slice(0, c)), tf.tensor1d([0.1, -0.2, 0.3].slice(0, c)), tf.tensor1d([0.2, -0.1, 0.05].slice(0, c)), tf.tensor1d([1.2, 0.8, 2.5].slice(0, c))]);
    return l;
  };
  return [mk(), mk()] as const;
}

test('batchNormTraining matches tfjs BatchNormalization: training forward, moving statistics, inference, gradients', () => {
  const c = 3;
  const x = tf.randomNormal([4, 3, 3, c], 0.7, 2, 'float32', 11);
  const upstream = tf.randomNormal([4, 3, 3, c], 0, 1, 'float32', 12); // a random linear readout so gradients are not trivial
  const [ours, ref] = twinBn(c, 0.9);
  // Forward in training mode (also updates the moving statistics in both).
  const yOurs = batchNormTraining(ours, x);
  const yRef = ref.apply(x, { training: true }) as tf.Tensor;
  // float32 outputs of order 1: 1e-5 is ~100 ulps; a formula slip (e.g. unbiased variance, n/(n−1) = 36/35) moves them by > 1e-2.
  assert.ok(maxAbsDiff(yOurs, yRef) < 1e-5, `training forward differs by ${maxAbsDiff(yOurs, yRef)}`);
  // Hand check of one output: channel 0, position 0, with the batch statistics of channel 0.
  const xs = x.dataSync();
  const ch0 = Array.from({ length: xs.length / c }, (_, i) => xs[i * c]);
  const mu = ch0.reduce((a, b) => a + b, 0) / ch0.length;
  const v = ch0.reduce((a, b) => a + (b - mu) ** 2, 0) / ch0.length;
  assert.ok(Math.abs(yOurs.dataSync()[0] - (1.5 * (xs[0] - mu)) / Math.sqrt(v + 1e-3) - 0.1) < 1e-4);
  // Moving statistics: moving ← moving·momentum + batch·(1 − momentum), identical in both.
  const [, , mmO, mvO] = ours.getWeights();
  const [, , mmR, mvR] = ref.getWeights();
  assert.ok(maxAbsDiff(mmO, mmR) < 1e-6 && maxAbsDiff(mvO, mvR) < 1e-5, 'moving statistics');
  assert.ok(Math.abs(mmO.dataSync()[0] - (0.9 * 0.2 + 0.1 * mu)) < 1e-5, 'moving mean by hand');
  assert.ok(Math.abs(mvO.dataSync()[0] - (0.9 * 1.2 + 0.1 * v)) < 1e-5, 'moving variance by hand (biased batch variance)');
  // Inference after the update: the layer's own path, with our updated statistics.
  const zOurs = ours.apply(x, { training: false }) as tf.Tensor;
  const zRef = ref.apply(x, { training: false }) as tf.Tensor;
  assert.ok(maxAbsDiff(zOurs, zRef) < 1e-5, 'inference forward');
  // A biased/unbiased slip would be caught by the tolerance above: the unbiased-variance output differs by far more.
  const n = ch0.length;
  const unbiased = (1.5 * (xs[0] - mu)) / Math.sqrt((v * n) / (n - 1) + 1e-3) + 0.1;
  assert.ok(Math.abs(unbiased - yRef.dataSync()[0]) > 1e-3, 'the control differs beyond the tolerance');

  // Gradients of Σ upstream·y with respect to x, γ and β.
  const [gOurs, gRef] = [ours, ref].map((l) => {
    const [gamma, beta] = l.trainableWeights.map((w) => w.read() as tf.Variable);
    const f = (t: tf.Tensor) => tf.sum(tf.mul(upstream, l === ours ? batchNormTraining(l, t) : (l.apply(t, { training: true }) as tf.Tensor))) as tf.Scalar;
    const gx = tf.grad(f)(x);
    const { grads } = tf.variableGrads(() => f(x), [gamma, beta]);
    return [gx, grads[gamma.name], grads[beta.name]];
  });
  for (let i = 0; i < 3; i++) assert.ok(maxAbsDiff(gOurs[i], gRef[i]) < 1e-4, `gradient ${['x', 'gamma', 'beta'][i]} differs by ${maxAbsDiff(gOurs[i], gRef[i])}`);
  // Finite-difference check of ∂/∂x at one element, float64 by hand (independent of both implementations).
  const up = upstream.dataSync();
  const [g0, b0] = [1.5, 0.1];
  const loss = (xv: Float64Array) => {
    let s = 0;
    for (let ch = 0; ch < c; ch++) {
      const vals = Array.from({ length: n }, (_, i) => xv[i * c + ch]);
      const m = vals.reduce((a, b) => a + b, 0) / n;
      const va = vals.reduce((a, b) => a + (b - m) ** 2, 0) / n;
      const [g, b] = ch === 0 ? [g0, b0] : ch === 1 ? [0.5, -0.2] : [2, 0.3];
      for (let i = 0; i < n; i++) s += up[i * c + ch] * ((g * (vals[i] - m)) / Math.sqrt(va + 1e-3) + b);
    }
    return s;
  };
  const base = Float64Array.from(xs);
  const h = 1e-4;
  for (const k of [0, 7, 20]) {
    const p = Float64Array.from(base);
    const q = Float64Array.from(base);
    p[k] += h;
    q[k] -= h;
    const fd = (loss(p) - loss(q)) / (2 * h);
    assert.ok(Math.abs(fd - gOurs[0].dataSync()[k]) < 1e-3 * Math.max(1, Math.abs(fd)), `finite difference at ${k}: ${fd} vs ${gOurs[0].dataSync()[k]}`);
  }
  tf.dispose([x, upstream, yOurs, yRef, zOurs, zRef, ...gOurs, ...gRef]);
  for (const l of [ours, ref]) for (const w of l.weights) w.dispose();
});

test('RAdam: momentum steps while ρ_t ≤ 5, rectified adaptive steps after (Liu et al. 2020, Alg. 2)', () => {
  const opt = new RAdam();
  assert.equal(opt.rectification(1).r, null);
  assert.ok(Math.abs(opt.rectification(1).rho - 1) < 1e-9, 'ρ_1 = ρ∞ − 2β2/(1−β2) = 1999 − 1998 = 1');
  assert.equal(opt.rectification(5).r, null);
  assert.ok(opt.rectification(6).r !== null, 'ρ_6 > 5');
  const p = tf.variable(tf.tensor1d([1]));
  const lr = 0.1;
  const g = 2; // constant gradient
  const theta: number[] = [1];
  for (let t = 1; t <= 8; t++) {
    tf.tidy(() => opt.apply([p], [tf.tensor1d([g])], lr));
    theta.push(p.dataSync()[0]);
  }
  // Steps 1–5: θ ← θ − lr·m̂ and with a constant gradient m̂ = g exactly: −0.2 per step.
  for (let t = 1; t <= 5; t++) assert.ok(Math.abs(theta[t - 1] - theta[t] - lr * g) < 1e-6, `step ${t}`);
  // Step 6: θ ← θ − lr·r_6·m̂·√(1−β2⁶)/(√v_6 + ε); constant g gives m̂ = g, v_6 = (1−β2⁶)g², so the step is lr·r_6 (ε aside).
  const r6 = opt.rectification(6).r!;
  assert.ok(r6 > 0 && r6 < 0.1, `r_6 = ${r6} is small (variance still high)`);
  assert.ok(Math.abs(theta[5] - theta[6] - lr * r6) < 1e-6, `step 6: ${theta[5] - theta[6]} vs ${lr * r6}`);
  p.dispose();
  opt.dispose();
});

test('Optimizer.lrScale gives a parameter group its own learning rate', () => {
  const a = tf.variable(tf.tensor1d([1]));
  const b = tf.variable(tf.tensor1d([1]));
  const opt = new SGD();
  opt.lrScale = (p) => (p === a ? 10 : 1);
  tf.tidy(() => opt.apply([a, b], [tf.tensor1d([1]), tf.tensor1d([1])], 0.01));
  assert.ok(Math.abs(a.dataSync()[0] - 0.9) < 1e-6);
  assert.ok(Math.abs(b.dataSync()[0] - 0.99) < 1e-6);
  tf.dispose([a, b]);
});

test('latentMovement: |Δ| quantiles, dead-zone crossings and sign reversals of DeepShift-PS; threshold 0 for S3', () => {
  assert.deepEqual([0.5, -0.5, 1.5, 2.5, -1.5, 0.49].map(roundHalfEven), [0, -0, 2, 2, -2, 0]);
  assert.equal(discretizeLatent('deepshift-ps', 'shift', -2.7, -2), -2);
  const ps = (sign: number[], shift: number[]): LatentSnapshot => ({ parameterization: 'deepshift-ps', pMin: -2, latents: { sign: Float32Array.from(sign), shift: Float32Array.from(shift) } });
  const m = latentMovement(ps([0.9, 0.6, 0.2, -0.7], [-1.2, -0.4, -2, 0]), ps([-0.7, 0.4, 0.6, -0.8], [-1.6, -0.4, -3, 0.2]));
  // ternary sign [1,1,0,−1] → [−1,0,1,−1]: 3 of 4 changed; of the 3 non-zero at init only #0 reversed.
  assert.equal(m.roles.sign.crossedFraction, 0.75);
  assert.ok(Math.abs(m.signReversed - 1 / 3) < 1e-12);
  assert.ok(Math.abs(m.signFlipDistanceMedian - 1.2) < 1e-6, 'median of |s̃|+0.5 over [0.9, 0.6, −0.7] = 1.2');
  assert.ok(Math.abs(m.roles.sign.absDeltaMedian - 0.3) < 1e-6, '|Δ| = [1.6, 0.2, 0.4, 0.1] → median 0.3');
  assert.ok(Math.abs(m.roles.sign.absDeltaMax - 1.6) < 1e-6);
  assert.equal(m.latentSignChanged, 0.25); // sign(s̃) changed only for #0
  // shift: round(clamp) [−1,−0,−2,0] → [−2,−0,−2,0]: one of four changed (−3 clamps to −2).
  assert.equal(m.roles.shift.crossedFraction, 0.25);
  const s3 = (sign: number[]): LatentSnapshot => ({ parameterization: 's3', pMin: 0, latents: { sign: Float32Array.from(sign) } });
  const m3 = latentMovement(s3([0.05, -0.02, 0.1, 0]), s3([-0.01, -0.03, 0.2, -0.001]));
  assert.equal(m3.roles.sign.crossedFraction, 0.5); // #0 and #3 (0 counts as +) crossed 0
  assert.equal(m3.signReversed, 0.5);
  assert.ok(Math.abs(m3.signFlipDistanceMedian - 0.035) < 1e-6);
  assert.throws(() => latentMovement(s3([1]), ps([1], [0])));
});

test('s3-shift method names, comparisons and the train/validation split', () => {
  const a = parseS3Arm('deepshift-ps-3bit-radam-lrx10');
  assert.equal(a.base, 'deepshift-ps-3bit');
  assert.equal(a.recipe, 'radam');
  assert.equal(a.latentLrMult, 10);
  assert.equal(parseS3Arm('s3-3bit-noreg-sgd').base, 's3-3bit-noreg');
  assert.equal(parseS3Arm('s3-3bit').latentLrMult, 1);
  for (const bad of ['fp-lrx10', 'deepshift-ps-3bit-lrx10-radam', 'deepshift-ps-3bit-summed', 's3-3bit-lrx0', 's3-2bit']) assert.throws(() => parseS3Arm(bad), bad);
  assert.deepEqual(comparisonPairs(['fp', 'deepshift-ps-3bit', 'deepshift-ps-3bit-radam', 's3-3bit']), [
    ['fp', 'deepshift-ps-3bit'],
    ['fp', 'deepshift-ps-3bit-radam'],
    ['fp', 's3-3bit'],
    ['s3-3bit', 'deepshift-ps-3bit'],
    ['s3-3bit', 'deepshift-ps-3bit-radam'],
    ['deepshift-ps-3bit-radam', 'deepshift-ps-3bit'],
  ]);
  assert.deepEqual(comparisonPairs(['fp-sgd', 'deepshift-ps-3bit-sgd', 's3-3bit-sgd']), [
    ['fp-sgd', 'deepshift-ps-3bit-sgd'],
    ['fp-sgd', 's3-3bit-sgd'],
    ['s3-3bit-sgd', 'deepshift-ps-3bit-sgd'],
  ]);
  const train = { images: new Float32Array(10 * 4).map((_, i) => i), labels: Int32Array.from({ length: 10 }, (_, i) => i), n: 10, height: 2, width: 2 };
  const { fitSplit, val } = trainValSplit(train, { valSize: 3, trainLimit: 0 });
  assert.deepEqual(Array.from(fitSplit.labels), [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(val.labels), [7, 8, 9]);
  assert.equal(val.images[0], 28);
  assert.deepEqual(Array.from(trainValSplit(train, { valSize: 3, trainLimit: 4 }).fitSplit.labels), [0, 1, 2, 3]);
  assert.deepEqual(Array.from(trainValSplit(train, { valSize: 3, trainLimit: 100 }).fitSplit.labels).length, 7, 'trainLimit never reaches into validation');
  assert.throws(() => trainValSplit(train, { valSize: 10, trainLimit: 0 }), /valSize/);
});

test('s3-shift selection runs (finalTest=false) never read test labels; final runs do', async () => {
  const data = writeSyntheticIdx({ nTrain: 400, nTest: 100, size: 8, classes: 4 });
  const shuffled = join(tempDir('efftrain-s3-sel-'), 'data');
  cpSync(data, shuffled, { recursive: true });
  writeFileSync(join(shuffled, 't10k-labels-idx1-ubyte'), encodeIdx([100], Uint8Array.from({ length: 100 }, (_, i) => (i + 1) % 4)));
  const run = async (dir: string, finalTest: boolean) =>
    (
      await runExperiment({
        experiment: 's3-shift',
        quick: false,
        sets: ['trainLimit=256', 'valSize=100', 'epochs=1', 'batchSize=32', 'channels=[4,8,8]', 'exportEval=false', `finalTest=${finalTest}`, 'lrByMethod={"deepshift-ps-3bit":0.01}'],
        flags: { methods: ['deepshift-ps-3bit-lrx10', 's3-3bit'], seeds: [1], data: dir },
        outDir: join(tempDir('efftrain-s3-sel-run-'), 'run'),
        workers: 1,
        quiet: true,
      })
    ).results;
  const [a, b] = [await run(data, false), await run(shuffled, false)];
  assert.equal(a.metrics.primary, 'val_acc');
  for (let i = 0; i < a.runs.length; i++) {
    assert.equal(a.runs[i].metrics.test_acc, undefined, 'no test metric in a selection run');
    assert.deepEqual(a.runs[i].metrics.val_acc, b.runs[i].metrics.val_acc);
    assert.deepEqual(a.runs[i].metrics.sign_latent_dabs_median, b.runs[i].metrics.sign_latent_dabs_median);
  }
  const ps = a.runs.find((r) => r.method === 'deepshift-ps-3bit-lrx10')!;
  // 8 steps of cosine from 0.01: Σ_s 0.01·(1 + cos(πs/8))/2 = 0.01·(8 + 1)/2 = 0.045; latents at 10×.
  assert.ok(Math.abs(ps.metrics.lr_sum_latent - 0.45) < 1e-9, `Σ lr of the PS latents: ${ps.metrics.lr_sum_latent}`);
  // Control: with the test split read, shuffled test labels change test_acc (so the check above can fail).
  const [c, d] = [await run(data, true), await run(shuffled, true)];
  assert.notEqual(c.runs[1].metrics.test_acc, d.runs[1].metrics.test_acc);
  assert.deepEqual(c.runs[1].metrics.val_acc, a.runs[1].metrics.val_acc, 'the final test read does not change training');
});

test('latentWeightDecay decays only the quantised layers\' latents (L2 added to their gradients)', async () => {
  const { Rng } = await import('../src/engine/rng.js');
  const { buildShiftCnn } = await import('../src/methods/s3/index.js');
  const { hooksFor, latentVariables } = await import('../src/experiments/s3-shift/train.js');
  const { Trainer, trainableVariables } = await import('../src/train/trainer.js');
  const arm = parseS3Arm('s3-3bit-noreg');
  const model = buildShiftCnn({ height: 8, width: 8, numClasses: 3, channels: [2, 3, 4], head: 'flatten', method: arm.quant }, new Rng(3));
  model.predict(tf.zeros([1, 8, 8, 1]));
  const latents = latentVariables(model);
  assert.equal(latents.size, 2 * 3, 'two shift layers × (sign, sparse, shift)');
  const params = trainableVariables(model);
  const before = params.map((p) => Float32Array.from(p.dataSync()));
  const trainer = new Trainer({ params, optimizer: new SGD(), hooks: hooksFor(model, arm, latents, 0.1) });
  // A loss with zero gradient: the update is −lr·wd·θ on latents and nothing elsewhere.
  trainer.trainStep(() => tf.mul(tf.sum(params[0]), 0) as tf.Scalar);
  params.forEach((p, i) => {
    const now = p.dataSync();
    const k = latents.has(p) ? 1 - 1e-3 * 0.1 : 1;
    for (let j = 0; j < now.length; j++) assert.ok(Math.abs(now[j] - k * before[i][j]) < 1e-7, `${p.name}[${j}]`);
  });
  for (const w of model.weights) w.dispose();
});

test('recipeFor: Adam default, -radam, the official -sgd recipe, per-method lr chosen on validation', async () => {
  const { recipeFor } = await import('../src/experiments/s3-shift/train.js');
  const { RAdam: RA, SGD: S, AdamW } = await import('../src/train/optimizers.js');
  const cfg = { lr: 3e-3, lrByMethod: { 'deepshift-ps-3bit': 0.01 }, optimizer: 'adam', weightDecay: 0, latentWeightDecay: 1e-4, sgdLr: 0.1, sgdWeightDecay: 1e-4 } as unknown as Parameters<typeof recipeFor>[1];
  const adam = recipeFor(parseS3Arm('s3-3bit'), cfg);
  assert.ok(adam.optimizer instanceof AdamW);
  assert.equal(adam.lr, 3e-3);
  assert.equal(adam.latentWeightDecay, 1e-4);
  const radam = recipeFor(parseS3Arm('deepshift-ps-3bit-radam-lrx10'), cfg);
  assert.ok(radam.optimizer instanceof RA);
  assert.equal(radam.lr, 0.01, 'the base method\'s chosen lr');
  const sgd = recipeFor(parseS3Arm('s3-3bit-sgd'), cfg);
  assert.ok(sgd.optimizer instanceof S);
  assert.equal((sgd.optimizer as InstanceType<typeof S>).momentum, 0.9);
  assert.equal((sgd.optimizer as InstanceType<typeof S>).weightDecay, 1e-4);
  assert.equal(sgd.lr, 0.1);
  assert.equal(recipeFor(parseS3Arm('deepshift-ps-3bit-sgd'), cfg).lr, 0.1, 'the Adam-chosen lr of the base does not carry over to SGD');
  assert.equal(sgd.latentWeightDecay, 0, 'the SGD decay already covers the latents');
});
