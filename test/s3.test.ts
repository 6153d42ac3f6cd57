import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/engine/rng.js';
import {
  ShiftConv2D,
  ShiftDense,
  ShiftInferenceEngine,
  canonicalDiscrete,
  clampShiftLatents,
  describeShiftModel,
  discreteToValues,
  exportShiftModel,
  heavisideSte,
  packShiftCodes,
  packShiftModel,
  psWeight,
  reluInt,
  roundSte,
  roundingShiftRightInt,
  s3RegularizationLoss,
  s3Weight,
  shiftAccumulateInt,
  shiftHistogram,
  shiftLayersOf,
  shiftRange,
  signFlipStats,
  signSte,
  unpackShiftCodes,
  unpackShiftModel,
  zeroFraction,
  type DiscreteWeights,
  type ShiftBits,
  type ShiftParameterization,
  type ShiftModelDescription,
} from '../src/methods/s3/index.js';
import { buildShiftCnn } from '../src/methods/s3/shift-cnn.js';
import { parseS3Method } from '../src/experiments/s3-shift/arms.js';
import { loadShiftAddon } from '../src/engine/shift-addon.js';

await tf.setBackend('cpu');
await tf.ready();

const LN2 = Math.LN2;

function allowedValues(par: ShiftParameterization, bits: ShiftBits): Set<number> {
  const { pMin, pMax } = shiftRange(par, bits);
  const s = new Set<number>([0]);
  for (let p = pMin; p <= pMax; p++) {
    s.add(2 ** p);
    s.add(-(2 ** p));
  }
  return s;
}

function assertInSet(values: Float32Array, par: ShiftParameterization, bits: ShiftBits, what: string): void {
  const allowed = allowedValues(par, bits);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] === 0 ? 0 : values[i]; // −0 → 0
    assert.ok(allowed.has(v), `${what}: value ${values[i]} at ${i} not in {0, ±2^p} for ${par} ${bits}-bit`);
  }
}

function randomArray(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.next();
  return a;
}

function closeArrays(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

/** fp conv → shift conv → maxpool → flatten → shift dense → fp dense (the paper's FP stem/head). */
function tinyCnn(par: ShiftParameterization, bits: ShiftBits, seed: number, opts: { bias?: boolean; bn?: boolean } = {}): tf.Sequential {
  const rng = new Rng(seed);
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: rng.seed() }), biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: rng.seed() }) }));
  m.add(new ShiftConv2D({ filters: 5, kernelSize: 3, padding: 'same', activation: opts.bn ? 'linear' : 'relu', parameterization: par, bits, seed: rng.seed(), useBias: opts.bias }));
  if (opts.bn) {
    m.add(tf.layers.batchNormalization({}));
    m.add(tf.layers.activation({ activation: 'relu' }));
  }
  m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  m.add(tf.layers.flatten());
  m.add(new ShiftDense({ units: 7, activation: 'relu', parameterization: par, bits, seed: rng.seed(), useBias: opts.bias }));
  m.add(tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: rng.seed() }) }));
  return m;
}

function trainSteps(model: tf.LayersModel, steps: number, seed: number, opt: tf.Optimizer, afterStep?: () => void): number[] {
  const rng = new Rng(seed);
  const x = tf.tensor4d(randomArray(rng, 8 * 6 * 6 * 2, 0, 1), [8, 6, 6, 2]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: 8 }, () => rng.int(3)), 'int32'), 3);
  const counts: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { grads, value } = tf.variableGrads(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor;
      const ce = tf.losses.softmaxCrossEntropy(labels, logits);
      return tf.add(ce, s3RegularizationLoss(model)) as tf.Scalar;
    });
    opt.applyGradients(grads);
    tf.dispose(grads);
    value.dispose();
    afterStep?.();
    counts.push(tf.memory().numTensors);
  }
  tf.dispose([x, labels]);
  return counts;
}

test('STE forward values: H, S, round and layer weights are in the allowed sets', () => {
  const x = tf.tensor1d([-1.5, -0.5, 0, 0.5, 1.5, 2.5]);
  assert.deepEqual(Array.from(heavisideSte(x).dataSync()), [0, 0, 0, 1, 1, 1]);
  assert.deepEqual(Array.from(signSte(x).dataSync()), [-1, -1, 1, 1, 1, 1]);
  assert.deepEqual(Array.from(roundSte(x).dataSync()), [-2, 0, 0, 0, 2, 2]); // half to even, like torch.round
  x.dispose();
  for (const par of ['s3', 'deepshift-ps'] as const) {
    for (const bits of [3, 4] as const) {
      const dense = new ShiftDense({ units: 40, parameterization: par, bits, seed: 11 });
      const conv = new ShiftConv2D({ filters: 6, kernelSize: 3, parameterization: par, bits, seed: 12 });
      tf.tidy(() => {
        dense.apply(tf.zeros([1, 30]));
        conv.apply(tf.zeros([1, 5, 5, 4]));
      });
      const summed = new ShiftDense({ units: 20, parameterization: par, bits, seed: 13, shiftEncoding: 'summed' });
      tf.tidy(() => {
        summed.apply(tf.zeros([1, 30]));
      });
      for (const l of [dense, conv, summed]) {
        const w = l.effectiveWeights();
        assertInSet(w, par, bits, `${par}/${bits}/${l.name}`);
        // The discrete snapshot reproduces the effective weights exactly.
        const d = l.discreteWeights();
        const v = discreteToValues(d);
        for (let i = 0; i < w.length; i++) assert.ok(w[i] === v[i], `discrete/effective mismatch at ${i}`);
        const { pMin, pMax } = shiftRange(par, bits);
        const h = shiftHistogram(d, pMin, pMax);
        assert.equal(h.counts.reduce((a, b) => a + b, 0) + h.zeros, w.length);
      }
      dense.dispose();
      conv.dispose();
      summed.dispose();
    }
  }
  assert.deepEqual(shiftRange('s3', 3), { pMin: 0, pMax: 2 });
  assert.deepEqual(shiftRange('s3', 4), { pMin: 0, pMax: 6 });
  assert.deepEqual(shiftRange('deepshift-ps', 3), { pMin: -2, pMax: 0 });
  assert.deepEqual(shiftRange('deepshift-ps', 4), { pMin: -6, pMax: 0 });
});

test('S3 initialisation: latents ~ N(0, 2/fan_out), about half the weights zero, seeded', () => {
  const conv = new ShiftConv2D({ filters: 32, kernelSize: 3, seed: 5 });
  const conv2 = new ShiftConv2D({ filters: 32, kernelSize: 3, seed: 5 });
  tf.tidy(() => {
    conv.apply(tf.zeros([1, 4, 4, 16]));
    conv2.apply(tf.zeros([1, 4, 4, 16]));
  });
  const sign = conv.getWeights()[0].dataSync();
  let s2 = 0;
  for (const v of sign) s2 += v * v;
  const std = Math.sqrt(s2 / sign.length);
  const expected = Math.sqrt(2 / (3 * 3 * 32));
  assert.ok(Math.abs(std - expected) / expected < 0.05, `std ${std} vs ${expected}`);
  const zf = zeroFraction(conv.discreteWeights());
  assert.ok(zf > 0.45 && zf < 0.55, `zero fraction ${zf}`);
  assert.deepEqual(Array.from(conv.effectiveWeights()), Array.from(conv2.effectiveWeights()));
  conv.dispose();
  conv2.dispose();
});

test('gradients through the STEs equal the straight-through formulas (S3 and DeepShift-PS)', () => {
  const x = tf.tensor1d([-0.7, 0.2, 1.3]);
  const c = tf.tensor1d([0.5, -2, 3]);
  for (const f of [heavisideSte, signSte, roundSte]) {
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), c)))(x);
    assert.deepEqual(Array.from(g.dataSync()), [0.5, -2, 3]);
    g.dispose();
  }
  tf.dispose([x, c]);

  // S3: W = S(a)·H(b)·2^{H(s1)(H(s2)+1)}, loss = Σ W·G ⇒ ∂L/∂W = G.
  const rng = new Rng(3);
  const n = 24;
  const a = randomArray(rng, n);
  const b = randomArray(rng, n);
  const s1 = randomArray(rng, n);
  const s2 = randomArray(rng, n);
  const G = randomArray(rng, n, -2, 2);
  const [ta, tb, tsh, tg] = [tf.tensor1d(a), tf.tensor1d(b), tf.tensor2d([...s1, ...s2], [2, n]), tf.tensor1d(G)];
  const [ga, gb, gsh] = tf.grads((A: tf.Tensor, B: tf.Tensor, SH: tf.Tensor) => tf.sum(tf.mul(s3Weight(A, B, SH), tg)))([ta, tb, tsh]);
  const [da, db, dsh] = [ga.dataSync(), gb.dataSync(), gsh.dataSync()];
  for (let i = 0; i < n; i++) {
    const s = a[i] >= 0 ? 1 : -1;
    const h = b[i] > 0 ? 1 : 0;
    const h1 = s1[i] > 0 ? 1 : 0;
    const h2 = s2[i] > 0 ? 1 : 0;
    const p = h1 * (h2 + 1);
    const tol = 1e-5;
    assert.ok(Math.abs(da[i] - G[i] * h * 2 ** p) < tol, `dSign ${i}`);
    assert.ok(Math.abs(db[i] - G[i] * s * 2 ** p) < tol, `dSparse ${i}`);
    assert.ok(Math.abs(dsh[i] - G[i] * s * h * 2 ** p * LN2 * (h2 + 1)) < tol, `dShift1 ${i}`);
    assert.ok(Math.abs(dsh[n + i] - G[i] * s * h * 2 ** p * LN2 * h1) < tol, `dShift2 ${i}`);
  }
  tf.dispose([ga, gb, gsh]);
  // Summed-shift ablation: p = H(s1) + H(s2), ∂p/∂s_k = 1.
  const gsum = tf.grad((SH: tf.Tensor) => tf.sum(tf.mul(s3Weight(ta, tb, SH, 'summed'), tg)))(tsh);
  const dsum = gsum.dataSync();
  for (let i = 0; i < n; i++) {
    const s = a[i] >= 0 ? 1 : -1;
    const h = b[i] > 0 ? 1 : 0;
    const p = (s1[i] > 0 ? 1 : 0) + (s2[i] > 0 ? 1 : 0);
    const e = G[i] * s * h * 2 ** p * LN2;
    assert.ok(Math.abs(dsum[i] - e) < 1e-5 && Math.abs(dsum[n + i] - e) < 1e-5, `summed dShift ${i}`);
  }
  tf.dispose([ta, tb, tsh, gsum]);

  // DeepShift-PS: W = 2^{round(clamp(p̃))}·sign(round(s̃)); ∂L/∂p̃ = G·s·2^p·ln2, ∂L/∂s̃ = G.
  const pl = randomArray(rng, n, -3, 0.5);
  const sl = randomArray(rng, n, -1.2, 1.2);
  const [tp, ts] = [tf.tensor1d(pl), tf.tensor1d(sl)];
  const [gp, gs] = tf.grads((P: tf.Tensor, S: tf.Tensor) => tf.sum(tf.mul(psWeight(P, S, -2), tg)))([tp, ts]);
  const [dp, ds] = [gp.dataSync(), gs.dataSync()];
  for (let i = 0; i < n; i++) {
    const p = Math.round(Math.min(0, Math.max(-2, pl[i])));
    const r = Math.abs(sl[i]) < 0.5 ? 0 : Math.sign(sl[i]);
    assert.ok(Math.abs(dp[i] - G[i] * r * 2 ** p * LN2) < 1e-5, `dP ${i}`);
    assert.ok(Math.abs(ds[i] - G[i]) < 1e-6, `dS ${i}`);
  }
  tf.dispose([tp, ts, gp, gs, tg]);
});

test('getConfig/fromConfig and model save/load round trips give identical outputs', async () => {
  const rng = new Rng(9);
  const x = tf.tensor4d(randomArray(rng, 2 * 5 * 5 * 3), [2, 5, 5, 3]);
  for (const par of ['s3', 'deepshift-ps'] as const) {
    const layer = new ShiftConv2D({ filters: 4, kernelSize: [3, 2], strides: [1, 2], padding: 'same', parameterization: par, bits: 4, seed: 77, useBias: true, activation: 'relu', sparseAlpha: 3e-5, initScale: 2, shiftEncoding: 'summed' });
    const y1 = layer.apply(x) as tf.Tensor;
    const cfg = layer.getConfig();
    const clone = ShiftConv2D.fromConfig(ShiftConv2D, cfg) as ShiftConv2D;
    assert.deepEqual(clone.getConfig(), cfg);
    const y2 = clone.apply(x) as tf.Tensor;
    assert.deepEqual(Array.from(y2.dataSync()), Array.from(y1.dataSync()));
    assert.deepEqual(y1.shape, layer.computeOutputShape(x.shape) as number[]);
    tf.dispose([y1, y2]);
    layer.dispose();
    clone.dispose();
  }
  x.dispose();

  const model = tinyCnn('s3', 3, 21, { bias: true, bn: true });
  const input = tf.tensor4d(randomArray(rng, 3 * 6 * 6 * 2, 0, 1), [3, 6, 6, 2]);
  const before = model.predict(input) as tf.Tensor;
  let saved: tf.io.ModelArtifacts | null = null;
  await model.save(tf.io.withSaveHandler(async (art) => {
    saved = art;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  assert.ok(saved);
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(saved));
  const after = loaded.predict(input) as tf.Tensor;
  assert.deepEqual(Array.from(after.dataSync()), Array.from(before.dataSync()));
  assert.equal(shiftLayersOf(loaded).length, 2);
  tf.dispose([input, before, after]);
  model.dispose();
  loaded.dispose();
});

test('training a tiny model keeps every effective weight in {0, ±2^p}; tensor count stays flat', () => {
  for (const par of ['s3', 'deepshift-ps'] as const) {
    for (const bits of [3, 4] as const) {
      const model = tinyCnn(par, bits, 31, { bias: bits === 4 });
      const shiftLayers = shiftLayersOf(model);
      const snap0 = shiftLayers.map((l) => l.discreteWeights());
      const lat0 = shiftLayers.map((l) => l.getWeights().map((w) => Float32Array.from(w.dataSync())));
      const opt = tf.train.adam(0.05);
      const counts = trainSteps(model, 12, 4, opt, par === 'deepshift-ps' ? () => clampShiftLatents(model) : undefined);
      // flat after the optimiser's slots exist (created on the first step)
      assert.equal(counts[counts.length - 1], counts[1], `${par}/${bits}: tensor count ${counts.join(',')}`);
      for (const l of shiftLayers) assertInSet(l.effectiveWeights(), par, bits, `${par}/${bits}/${l.name} after training`);
      const snap1 = shiftLayers.map((l) => l.discreteWeights());
      const moved = shiftLayers.some((l, i) => l.getWeights().some((w, j) => !w.dataSync().every((v, k) => v === lat0[i][j][k])));
      assert.ok(moved, 'latents changed');
      const stats = signFlipStats(snap0, snap1);
      assert.ok(stats.fraction >= 0 && stats.fraction <= 1 && stats.eligible > 0);
      if (par === 'deepshift-ps') {
        const { pMin } = shiftRange(par, bits);
        for (const l of shiftLayers) for (const v of l.getWeights()[0].dataSync()) assert.ok(v >= pMin && v <= 0, 'p̃ clamped in place');
      }
      opt.dispose();
      model.dispose();
    }
  }
});

test('tensor count stays flat over many training steps', () => {
  const model = tinyCnn('s3', 3, 33, { bias: true, bn: true });
  const opt = tf.train.momentum(0.05, 0.9);
  const counts = trainSteps(model, 40, 5, opt);
  assert.equal(counts[39], counts[2], `tensor counts ${counts.join(',')}`);
  for (const l of shiftLayersOf(model)) assertInSet(l.effectiveWeights(), 's3', 3, l.name);
  opt.dispose();
  model.dispose();
});

test('S3 regulariser: α·Σ max(−W_sparse, 0), registered as a layer loss', () => {
  const model = tinyCnn('s3', 3, 41);
  const layers = shiftLayersOf(model);
  let expected = 0;
  for (const l of layers) for (const v of l.getWeights()[1].dataSync()) expected += Math.max(-v, 0) * 1e-5;
  const r = s3RegularizationLoss(model);
  assert.ok(Math.abs(r.dataSync()[0] - expected) < 1e-9);
  assert.equal(model.calculateLosses().length, 0); // tf.Sequential: empty until built
  tf.tidy(() => {
    model.predict(tf.zeros([1, 6, 6, 2]));
  });
  const losses = model.calculateLosses();
  assert.equal(losses.length, 2);
  const sum = losses.reduce((a, t) => a + t.dataSync()[0], 0);
  assert.ok(Math.abs(sum - expected) < 1e-9);
  // gradient only on negative sparse latents, value −α
  const sparse = layers[0].getWeights()[1];
  const g = tf.variableGrads(() => layers[0].regularizationLoss());
  const gv = Object.entries(g.grads).find(([k]) => k.includes(layers[0].name) && k.endsWith('sparse'));
  assert.ok(gv, `sparse grad in ${Object.keys(g.grads).join(', ')}`);
  const gd = gv[1].dataSync();
  const sd = sparse.dataSync();
  for (let i = 0; i < gd.length; i++) assert.ok(Math.abs(gd[i] - (sd[i] < 0 ? -1e-5 : 0)) < 1e-12);
  tf.dispose([r, ...losses, g.value, ...Object.values(g.grads)]);
  model.dispose();
});

test('diagnostics: sign flips among weights non-zero in both, zero fraction, histogram', () => {
  const mk = (sign: number[], zero: number[], shift: number[]): DiscreteWeights => ({ sign: Int8Array.from(sign), zero: Uint8Array.from(zero), shift: Int8Array.from(shift), shape: [sign.length] });
  const a = mk([1, -1, 1, 1, -1], [0, 0, 1, 0, 0], [0, 1, 2, 2, 0]);
  const b = mk([-1, -1, -1, 1, 1], [0, 0, 0, 1, 0], [0, 1, 2, 2, 1]);
  const s = signFlipStats(a, b);
  assert.equal(s.eligible, 3); // indices 0, 1, 4
  assert.equal(s.flipped, 2); // 0 and 4
  assert.equal(s.fraction, 2 / 3);
  assert.equal(s.latentFraction, 3 / 5);
  assert.equal(s.becameZero, 1);
  assert.equal(s.becameNonZero, 1);
  assert.equal(zeroFraction([a, b]), 2 / 10);
  const h = shiftHistogram(b, 0, 2);
  assert.deepEqual(h, { shifts: [0, 1, 2], counts: [1, 2, 1], zeros: 1, total: 5 });
});

test('packed codes round trip exactly for every value at 3 and 4 bits', () => {
  for (const par of ['s3', 'deepshift-ps'] as const) {
    for (const bits of [3, 4] as const) {
      const { pMin, pMax } = shiftRange(par, bits);
      const sign: number[] = [];
      const zero: number[] = [];
      const shift: number[] = [];
      for (let rep = 0; rep < 3; rep++) {
        for (let p = pMin; p <= pMax; p++) {
          for (const s of [1, -1]) {
            sign.push(s);
            zero.push(0);
            shift.push(p);
          }
        }
        sign.push(-1);
        zero.push(1);
        shift.push(pMax);
      }
      const w: DiscreteWeights = { sign: Int8Array.from(sign), zero: Uint8Array.from(zero), shift: Int8Array.from(shift), shape: [sign.length] };
      const packed = packShiftCodes(w, bits, pMin, pMax);
      assert.equal(packed.length, Math.ceil((sign.length * bits) / 8));
      const back = unpackShiftCodes(packed, sign.length, bits, pMin, [sign.length]);
      assert.deepEqual(back, canonicalDiscrete(w));
      assert.deepEqual(Array.from(discreteToValues(back)), Array.from(discreteToValues(w)));
    }
  }
});

test('model pack/unpack round trip is exact and detects corruption', () => {
  const model = tinyCnn('deepshift-ps', 4, 51, { bias: true, bn: true });
  // give BN non-trivial statistics
  const bn = model.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
  const rng = new Rng(8);
  tf.tidy(() => bn.setWeights(bn.getWeights().map((w, i) => tf.tensor(randomArray(rng, w.size, i === 3 ? 0.5 : -0.5, i === 3 ? 2 : 0.5), w.shape))));
  const desc = describeShiftModel(model, { inputScale: 1 / 255, inputOffset: 0 });
  const bytes = packShiftModel(desc);
  const back = unpackShiftModel(bytes);
  const canon: ShiftModelDescription = {
    ...desc,
    layers: desc.layers.map((l) => (l.kind === 'shiftConv2d' || l.kind === 'shiftDense' ? { ...l, weights: canonicalDiscrete(l.weights) } : l)),
  };
  assert.deepEqual(back, canon);
  assert.deepEqual(packShiftModel(back), bytes);
  assert.deepEqual(exportShiftModel(model, { inputScale: 1 / 255 }), bytes);
  assert.deepEqual(back.layers.map((l) => l.kind), ['conv2d', 'shiftConv2d', 'channelAffine', 'activation', 'maxPool2d', 'flatten', 'shiftDense', 'dense']);
  const bad = Uint8Array.from(bytes);
  bad[bad.length - 10] ^= 0x10;
  assert.throws(() => unpackShiftModel(bad), /CRC/);
  // shift weights take bits/8 bytes each: far smaller than float32
  const shiftCount = desc.layers.reduce((a, l) => a + (l.kind === 'shiftConv2d' || l.kind === 'shiftDense' ? l.weights.zero.length : 0), 0);
  assert.ok(shiftCount > 0);
  model.dispose();
  assert.throws(() => describeShiftModel(tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2 }), tf.layers.layerNormalization()] })), /unsupported layer/);
});

test('shift inference engine agrees with the tfjs model (argmax 100%, logits close)', () => {
  const cases: { par: ShiftParameterization; bits: ShiftBits; bias?: boolean; bn?: boolean; train?: boolean }[] = [
    { par: 's3', bits: 3 },
    { par: 's3', bits: 3, train: true },
    { par: 's3', bits: 4, bias: true },
    { par: 'deepshift-ps', bits: 3 },
    { par: 'deepshift-ps', bits: 4, bias: true, bn: true, train: true },
  ];
  const rng = new Rng(123);
  const n = 200;
  for (const [ci, c] of cases.entries()) {
    const model = tinyCnn(c.par, c.bits, 60 + ci, { bias: c.bias, bn: c.bn });
    if (c.train) {
      const opt = tf.train.adam(0.05);
      trainSteps(model, 5, 7, opt, () => clampShiftLatents(model));
      opt.dispose();
    }
    const images = randomArray(rng, n * 6 * 6 * 2, 0, 1);
    const xt = tf.tensor4d(images, [n, 6, 6, 2]);
    const yt = model.predict(xt) as tf.Tensor;
    const ref = yt.dataSync() as Float32Array;
    const refArg = yt.argMax(1);
    const refPred = refArg.dataSync();
    const engine = new ShiftInferenceEngine(exportShiftModel(model));
    const z = engine.logits(images, n);
    const pred = engine.predict(images, n);
    let scale = 0;
    for (const v of ref) scale = Math.max(scale, Math.abs(v));
    let maxDiff = 0;
    for (let i = 0; i < z.length; i++) maxDiff = Math.max(maxDiff, Math.abs(z[i] - ref[i]));
    assert.ok(maxDiff <= 1e-4 * Math.max(1, scale), `${c.par}/${c.bits}: max |Δlogit| ${maxDiff} (scale ${scale})`);
    let agree = 0;
    for (let i = 0; i < n; i++) agree += pred[i] === refPred[i] ? 1 : 0;
    assert.equal(agree, n, `${c.par}/${c.bits}: argmax agreement ${agree}/${n}`);
    const cost = engine.costPerSample();
    assert.ok(cost.shiftAdds > 0 && cost.floatMacs > 0);
    tf.dispose([xt, yt, refArg]);
    model.dispose();
  }
});

test('fully quantised network (shift layer first) runs from float input', () => {
  const m = tf.sequential();
  m.add(new ShiftDense({ inputShape: [20], units: 16, activation: 'relu', seed: 1, useBias: true }));
  m.add(new ShiftDense({ units: 16, activation: 'relu', seed: 2, parameterization: 'deepshift-ps' }));
  m.add(new ShiftDense({ units: 5, seed: 3, bits: 4 }));
  const rng = new Rng(2);
  const n = 100;
  const x = randomArray(rng, n * 20, -3, 3);
  const xt = tf.tensor2d(x, [n, 20]);
  const yt = m.predict(xt) as tf.Tensor;
  const ref = yt.dataSync();
  const engine = new ShiftInferenceEngine(exportShiftModel(m));
  const z = engine.logits(x, n);
  closeArrays(z, ref, 1e-5, 'logits');
  const am = yt.argMax(1);
  assert.deepEqual(Array.from(engine.predict(x, n)), Array.from(am.dataSync()));
  tf.dispose([xt, yt, am]);
  m.dispose();
});

test('engine handles strided / valid / same / non-square shift convolutions and global average pooling', () => {
  const m = tf.sequential();
  m.add(new ShiftConv2D({ inputShape: [9, 8, 2], filters: 3, kernelSize: [3, 2], strides: [2, 1], padding: 'valid', seed: 4, activation: 'relu', useBias: true }));
  m.add(new ShiftConv2D({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', seed: 5, parameterization: 'deepshift-ps', bits: 4 }));
  m.add(tf.layers.batchNormalization({}));
  m.add(tf.layers.reLU());
  m.add(tf.layers.globalAveragePooling2d({}));
  m.add(tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }));
  const rng = new Rng(6);
  const bn = m.layers[2];
  tf.tidy(() => bn.setWeights(bn.getWeights().map((w, i) => tf.tensor(randomArray(rng, w.size, i === 3 ? 0.5 : -0.5, i === 3 ? 2 : 0.5), w.shape))));
  const n = 50;
  const x = randomArray(rng, n * 9 * 8 * 2, -1, 1);
  const xt = tf.tensor4d(x, [n, 9, 8, 2]);
  const probs = m.predict(xt) as tf.Tensor;
  const engine = new ShiftInferenceEngine(exportShiftModel(m));
  const z = engine.logits(x, n); // pre-softmax
  const sm = tf.tidy(() => tf.softmax(tf.tensor2d(z, [n, 4])));
  closeArrays(sm.dataSync(), probs.dataSync(), 1e-5, 'softmax(engine logits)');
  const am = probs.argMax(1);
  assert.deepEqual(Array.from(engine.predict(x, n)), Array.from(am.dataSync()));
  tf.dispose([xt, probs, sm, am]);
  m.dispose();
});

test('inner loops use only shifts and adds (no multiplication in their source)', () => {
  for (const f of [shiftAccumulateInt, roundingShiftRightInt, reluInt]) {
    const src = f.toString();
    assert.ok(!src.includes('*'), `${f.name} contains '*':\n${src}`);
    assert.ok(!/Math\.(imul|pow)/.test(src), `${f.name} uses Math.imul/pow`);
  }
  // rounding right shift = round-half-up division by 2^r
  const v = Int32Array.from([7, 8, -7, -8, -9, 5, 2 ** 31 - 1, -(2 ** 31)]);
  const expected = Array.from(v, (x) => Math.floor(x / 4 + 0.5));
  roundingShiftRightInt(v, 2);
  assert.deepEqual(Array.from(v), expected);
});

// ---- the batched native path (native/shift.c) against the per-sample TypeScript engine ----

/** Bit patterns of float32 logits (NaN compared as NaN). */
function bitsOf(z: Float32Array): number[] {
  const u = new Uint32Array(z.buffer, z.byteOffset, z.length);
  return Array.from(z, (v, i) => (Number.isNaN(v) ? -1 : u[i]));
}

/** Inputs with the cases that exercise every scale path: zeros, huge and tiny magnitudes, and a NaN pixel. */
function stressInputs(rng: Rng, n: number, size: number): Float32Array {
  const x = randomArray(rng, n * size, -1, 1.5);
  x.fill(0, 0, size); // sample 0: all zero
  for (let i = size; i < 2 * size; i++) x[i] *= 3e7; // sample 1: huge → int rescales between shift layers
  for (let i = 2 * size; i < 3 * size; i++) x[i] *= 1e-12; // sample 2: tiny → many fractional bits
  x[3 * size + 1] = Number.NaN; // sample 3: a NaN pixel
  return x;
}

const shiftAddon = loadShiftAddon();

test('native shift engine equals the TypeScript engine bit for bit (random and trained models, n not a multiple of the block)', { skip: shiftAddon.addon ? false : shiftAddon.status.reason }, () => {
  const rng = new Rng(77);
  const models: { name: string; model: tf.LayersModel; size: number }[] = [];
  const bnRandom = (m: tf.LayersModel) => {
    for (const l of m.layers) {
      if (l.getClassName() !== 'BatchNormalization') continue;
      tf.tidy(() => l.setWeights(l.getWeights().map((w, i) => tf.tensor(randomArray(rng, w.size, i === 3 ? 0.5 : -0.5, i === 3 ? 2 : 0.5), w.shape))));
    }
  };
  models.push({ name: 'tiny s3 3-bit', model: tinyCnn('s3', 3, 91), size: 72 });
  const trained = tinyCnn('deepshift-ps', 4, 92, { bias: true, bn: true });
  const opt = tf.train.adam(0.05);
  trainSteps(trained, 5, 9, opt, () => clampShiftLatents(trained));
  opt.dispose();
  models.push({ name: 'tiny deepshift-ps 4-bit, bias, BN, trained', model: trained, size: 72 });
  const dense = tf.sequential();
  dense.add(new ShiftDense({ inputShape: [20], units: 16, activation: 'relu', seed: 1, useBias: true }));
  dense.add(new ShiftDense({ units: 16, activation: 'relu', seed: 2, parameterization: 'deepshift-ps' }));
  dense.add(new ShiftDense({ units: 5, seed: 3, bits: 4 }));
  models.push({ name: 'fully quantised dense', model: dense, size: 20 });
  const gap = tf.sequential();
  gap.add(new ShiftConv2D({ inputShape: [9, 8, 2], filters: 3, kernelSize: [3, 2], strides: [2, 1], padding: 'valid', seed: 4, activation: 'relu', useBias: true }));
  gap.add(new ShiftConv2D({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', seed: 5, parameterization: 'deepshift-ps', bits: 4 }));
  gap.add(tf.layers.batchNormalization({}));
  gap.add(tf.layers.reLU());
  gap.add(tf.layers.globalAveragePooling2d({}));
  gap.add(tf.layers.dense({ units: 4, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }));
  models.push({ name: 'strided/valid/non-square + GAP', model: gap, size: 9 * 8 * 2 });
  const bench = buildShiftCnn({ height: 28, width: 28, numClasses: 10, channels: [16, 32, 64], head: 'flatten', method: parseS3Method('s3-3bit') }, new Rng(1234));
  models.push({ name: 'bench CNN (s3-3bit, 28×28)', model: bench, size: 784 });
  for (const { name, model, size } of models) {
    bnRandom(model);
    const bytes = exportShiftModel(model);
    const native = new ShiftInferenceEngine(bytes);
    const ts = new ShiftInferenceEngine(bytes, { native: false });
    assert.equal(native.backend, 'native', native.backendReason);
    assert.equal(ts.backend, 'typescript');
    assert.match(ts.backendReason, /disabled by the caller/);
    for (const n of [37, 16, 1]) {
      const x = stressInputs(rng, Math.max(n, 4), size).subarray(0, n * size);
      const a = native.logits(x, n);
      const b = ts.logits(x, n);
      assert.deepEqual(bitsOf(a), bitsOf(b), `${name}, n=${n}: logits differ`);
      // float64 before the final rounding: catches any change of float operation or order in the float layers
      const a64 = native.logitsFloat64(x, n);
      const b64 = ts.logitsFloat64(x, n);
      for (let i = 0; i < a64.length; i++) assert.ok(Object.is(a64[i], b64[i]), `${name}, n=${n}: float64 logit ${i}: ${a64[i]} vs ${b64[i]}`);
      assert.deepEqual(native.lastFracBits, ts.lastFracBits, `${name}, n=${n}: fractional bits of the last sample`);
      if (n > 4) assert.ok(a.some((v) => v !== 0 && Number.isFinite(v)), `${name}: logits all zero`);
    }
    model.dispose();
  }
});

test('shift addon refuses wrong arrays instead of reading out of bounds', { skip: shiftAddon.addon ? false : shiftAddon.status.reason }, () => {
  const addon = shiftAddon.addon!;
  const L = addon.lanes;
  const x = new Int32Array(4 * L);
  const out = new Int32Array(2 * L);
  const bias = new Int32Array(2 * L);
  const geom = Int32Array.of(1, 1, 4, 0, 0, 1, 1, 1, 1, 2, 1, 0, 0, 0); // dense 4 → 2, one exponent
  const ptr = Int32Array.of(0, 1, 2, 3, 4);
  addon.shiftLayer(x.fill(3), null, out, ptr, Int32Array.of(0, 1, 2, 3), bias, geom);
  assert.deepEqual(Array.from(out.subarray(0, 2 * L)), new Array(2 * L).fill(0)); // (3 − 3) per output
  assert.throws(() => addon.shiftLayer(x, null, out, ptr, Int32Array.of(0, 1, 2, 4), bias, geom), /reach past the input/);
  assert.throws(() => addon.shiftLayer(x, null, out, Int32Array.of(0, 1, 2, 3, 9), Int32Array.of(0, 1, 2, 3), bias, geom), /ptr out of range/);
  assert.throws(() => addon.shiftLayer(x, null, new Int32Array(L), ptr, Int32Array.of(0, 1, 2, 3), bias, geom), /lengths/);
  assert.throws(() => addon.conv2d(new Float64Array(3), new Float64Array(3), new Float64Array(1), null, new Int32Array(12)), /lengths/);
  assert.throws(() => addon.relu(new Float32Array(L) as unknown as Float64Array), /Float64Array or Int32Array/);
  // Math.round semantics (ties toward +∞) and ToInt32 of NaN in quantize
  const v = new Float64Array(L).fill(-2.5);
  v[1] = 2.5;
  v[2] = Number.NaN;
  v[3] = -0.5;
  const q = new Int32Array(L);
  addon.quantize(v, q, new Float64Array(L).fill(1));
  assert.deepEqual(Array.from(q.subarray(0, 4)), [Math.round(-2.5), Math.round(2.5), 0, 0]);
});
