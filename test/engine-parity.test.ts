/**
 * Parity of the patched wasm backend with the cpu backend (forward and gradients), leak checks for
 * the bridged kernels, and the stock/patched round trip of applyWasmPatches.
 *
 * Pattern: every case is a closure that builds its inputs from fixed Float32Arrays, so it can run
 * once on wasm and once on cpu in the same process (tensors are per backend).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { applyWasmPatches } from '../src/engine/wasm-patches.js';
import { Rng } from '../src/engine/rng.js';

const TOL = 1e-4;

/** Seeded standard-normal data. */
function randn(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Relative error: max|a-b| / max(1, max|b|), so tiny references are compared absolutely. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return Number.isNaN(diff) ? Infinity : diff / scale;
}

/** Runs `fn` on one backend inside tidy and returns copies of the outputs' values and shapes. */
async function runOn(backend: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<{ values: Float32Array[]; shapes: number[][] }> {
  assert.ok(await tf.setBackend(backend));
  const outs = tf.tidy(() => {
    const r = fn();
    return Array.isArray(r) ? r : [r];
  });
  const values = outs.map((t) => Float32Array.from(t.dataSync() as ArrayLike<number>));
  const shapes = outs.map((t) => t.shape.slice());
  tf.dispose(outs);
  return { values, shapes };
}

/** Runs `fn` on patched wasm and on cpu and asserts every output agrees within TOL. */
async function assertParity(label: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<void> {
  const w = await runOn('wasm', fn);
  const c = await runOn('cpu', fn);
  await tf.setBackend('wasm');
  assert.equal(w.values.length, c.values.length, `${label}: output count`);
  for (let i = 0; i < w.values.length; i++) {
    assert.deepEqual(w.shapes[i], c.shapes[i], `${label}: shape of output ${i}`);
    const e = relErr(w.values[i], c.values[i]);
    assert.ok(e <= TOL, `${label}: output ${i} relative error ${e} > ${TOL}`);
  }
}

/** A tensor factory over fixed seeded data, usable on any backend. */
function fixed(shape: number[], seed: number, scale = 1): () => tf.Tensor {
  const data = randn(size(shape), seed, scale);
  return () => tf.tensor(data, shape);
}

function cpuBackend(): tf.KernelBackend {
  const b = tf.findBackend('cpu');
  assert.ok(b);
  return b;
}

before(async () => {
  assert.ok(await tf.setBackend('wasm'));
  await tf.ready();
  applyWasmPatches();
});

after(async () => {
  applyWasmPatches();
  await tf.setBackend('wasm');
});

describe('matMul parity (patched wasm vs cpu)', () => {
  const M = 7;
  const K = 5;
  const N = 6;
  const combos: Array<[boolean, boolean]> = [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ];
  /** Shape of an operand stored for the given transpose flag. */
  const shapeA = (batch: number[], t: boolean) => [...batch, ...(t ? [K, M] : [M, K])];
  const shapeB = (batch: number[], t: boolean) => [...batch, ...(t ? [N, K] : [K, N])];
  // tfjs-core's BatchMatMul gradient does not sum over broadcast batch dims (it throws "gradient
  // of input 'b' has shape [3,..] which does not match [1,..]" on every backend, cpu included), so
  // broadcast cases differentiate only w.r.t. the operand that is not broadcast. That still runs
  // the fold path: e.g. dA = dy[3,M,N] @ b[1,K,N]^T is a transposed, batch-folded product.
  const batchCases: Array<{ name: string; ba: number[]; bb: number[]; out: number[]; wrt: 'both' | 'a' | 'b' }> = [
    { name: 'rank-2', ba: [], bb: [], out: [], wrt: 'both' },
    { name: 'rank-3 batch 3', ba: [3], bb: [3], out: [3], wrt: 'both' },
    { name: 'rank-3 a batch 3, b batch 1 (fold)', ba: [3], bb: [1], out: [3], wrt: 'a' },
    { name: 'rank-3 a batch 1, b batch 3', ba: [1], bb: [3], out: [3], wrt: 'b' },
    { name: 'rank-4 a [2,3], b [1,1] (fold)', ba: [2, 3], bb: [1, 1], out: [2, 3], wrt: 'a' },
  ];
  for (const bc of batchCases) {
    for (const [tA, tB] of combos) {
      test(`${bc.name} transposeA=${tA} transposeB=${tB}: forward and grads (${bc.wrt})`, async () => {
        const a = fixed(shapeA(bc.ba, tA), 11);
        const b = fixed(shapeB(bc.bb, tB), 12);
        const dy = fixed([...bc.out, M, N], 13);
        await assertParity('forward', () => tf.matMul(a(), b(), tA, tB));
        await assertParity('grads', () => {
          if (bc.wrt === 'a') return tf.grad((x: tf.Tensor) => tf.matMul(x, b(), tA, tB))(a(), dy());
          if (bc.wrt === 'b') return tf.grad((y: tf.Tensor) => tf.matMul(a(), y, tA, tB))(b(), dy());
          return tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, tA, tB))([a(), b()], dy());
        });
      });
    }
  }
  // Entries of at least 8192 multiply-adds take the per-batch-entry split path (32·16·24 = 12288).
  for (const [tA, tB] of combos) {
    test(`per-batch split, batch 2 of 32x16 @ 16x24, transposeA=${tA} transposeB=${tB}: forward and grads`, async () => {
      const a = fixed(tA ? [2, 16, 32] : [2, 32, 16], 14);
      const b = fixed(tB ? [2, 24, 16] : [2, 16, 24], 15);
      const dy = fixed([2, 32, 24], 16);
      await assertParity('forward', () => tf.matMul(a(), b(), tA, tB));
      await assertParity('grads', () => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y, tA, tB))([a(), b()], dy()));
    });
  }
  test('per-batch split with shared a (batch 1) against batched b [2,3]: forward and grad of b', async () => {
    const a = fixed([1, 32, 16], 17);
    const b = fixed([2, 3, 16, 24], 18);
    const dy = fixed([2, 3, 32, 24], 19);
    await assertParity('forward', () => tf.matMul(a(), b()));
    await assertParity('grad', () => tf.grad((y: tf.Tensor) => tf.matMul(a(), y))(b(), dy()));
  });
  test('rank-3 a with rank-2 b (broadcast, fold): forward and grad of a', async () => {
    const a = fixed([4, M, K], 21);
    const b = fixed([K, N], 22);
    const dy = fixed([4, M, N], 23);
    await assertParity('forward', () => tf.matMul(a(), b()));
    await assertParity('grad', () => tf.grad((x: tf.Tensor) => tf.matMul(x, b()))(a(), dy()));
  });
});

describe('fused matMul parity', () => {
  for (const [tA, tB] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as Array<[boolean, boolean]>) {
    test(`bias + relu, transposeA=${tA} transposeB=${tB}: forward and grads`, async () => {
      const a = fixed(tA ? [5, 8] : [8, 5], 31);
      const b = fixed(tB ? [6, 5] : [5, 6], 32);
      const bias = fixed([6], 33);
      const dy = fixed([8, 6], 34);
      const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
        tf.fused.matMul({ a: x, b: y, bias: z, activation: 'relu', transposeA: tA, transposeB: tB });
      await assertParity('forward', () => f(a(), b(), bias()));
      await assertParity('grads', () => tf.grads(f)([a(), b(), bias()], dy()));
    });
  }
  // A one-element bias broadcasts over every column (the stock XNNPACK path added it to column 0
  // only, and rejected rank 0); checked against cpu, with and without transposes and in a fold.
  for (const [biasShape, tB, aShape] of [
    [[1], false, [8, 5]],
    [[1], true, [8, 5]],
    [[], false, [8, 5]],
    [[1], false, [2, 4, 5]],
  ] as Array<[number[], boolean, number[]]>) {
    test(`one-element bias ${JSON.stringify(biasShape)}, transposeB=${tB}, a ${JSON.stringify(aShape)}: forward and grads`, async () => {
      const a = fixed(aShape, 41);
      const b = fixed(tB ? [6, 5] : [5, 6], 42);
      const bias = fixed(biasShape, 43);
      const dy = fixed([...aShape.slice(0, -1), 6], 44);
      const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => tf.fused.matMul({ a: x, b: y, bias: z, activation: 'relu', transposeB: tB });
      await assertParity('forward', () => f(a(), b(), bias()));
      // tfjs-core cannot differentiate a broadcast b (see the matMul suite): grads of a and bias there.
      if (aShape.length === 2) await assertParity('grads', () => tf.grads(f)([a(), b(), bias()], dy()));
      else await assertParity('grads', () => tf.grads((x: tf.Tensor, z: tf.Tensor) => f(x, b(), z))([a(), bias()], dy()));
      // Not vacuous: the bias moves every column (relu off, so nothing is clipped).
      const w = await runOn('wasm', () => tf.sub(tf.fused.matMul({ a: a(), b: b(), bias: bias(), transposeB: tB }), tf.matMul(a(), b(), false, tB)));
      const want = randn(1, 43)[0];
      for (const v of w.values[0]) assert.ok(Math.abs(v - want) < 1e-5, `every entry must move by the bias ${want}, got ${v}`);
    });
  }
  test('batched a, shared b (fold) with bias + relu: forward and grads of a and bias', async () => {
    const a = fixed([3, 4, 5], 35);
    const b = fixed([1, 5, 6], 36);
    const bias = fixed([6], 37);
    const dy = fixed([3, 4, 6], 38);
    // Gradient w.r.t. the broadcast b is unsupported by tfjs-core itself (see the matMul suite).
    const f = (x: tf.Tensor, z: tf.Tensor) => tf.fused.matMul({ a: x, b: b(), bias: z, activation: 'relu' });
    await assertParity('forward', () => f(a(), bias()));
    await assertParity('grads', () => tf.grads(f)([a(), bias()], dy()));
  });
});

describe('convolution parity', () => {
  const convCases: Array<{ name: string; x: number[]; f: number[]; stride: number; pad: 'same' | 'valid' }> = [
    { name: '3x3 stride 1 same', x: [2, 7, 7, 3], f: [3, 3, 3, 4], stride: 1, pad: 'same' },
    { name: '3x3 stride 2 valid', x: [2, 9, 8, 2], f: [3, 3, 2, 5], stride: 2, pad: 'valid' },
    { name: '2x4 stride 2 same', x: [3, 6, 9, 2], f: [2, 4, 2, 3], stride: 2, pad: 'same' },
  ];
  for (const c of convCases) {
    test(`conv2d ${c.name}: forward, dx and dfilter`, async () => {
      const x = fixed(c.x, 41);
      const w = fixed(c.f, 42);
      const f = (xx: tf.Tensor, ww: tf.Tensor) => tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.stride, c.pad);
      const outShape = await runOn('cpu', () => f(x(), w()));
      const dy = fixed(outShape.shapes[0], 43);
      await assertParity('forward', () => f(x(), w()));
      await assertParity('grads', () => tf.grads(f)([x(), w()], dy()));
    });
  }
  test('conv2d gradients over several im2col chunks', async () => {
    // kkc·OH·OW = 400·1024 per image, so the 4M-float chunk holds 10 images and 11 need two chunks.
    const x = fixed([11, 32, 32, 16], 44, 0.5);
    const w = fixed([5, 5, 16, 1], 45);
    const dy = fixed([11, 32, 32, 1], 46);
    const f = (xx: tf.Tensor, ww: tf.Tensor) => tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, 'same');
    await assertParity('dx, dfilter', () => tf.grads(f)([x(), w()], dy()));
  });
  const poolCases: Array<{ name: string; x: number[]; size: number; stride: number; pad: 'same' | 'valid' }> = [
    { name: '2x2 stride 2 valid', x: [2, 8, 6, 3], size: 2, stride: 2, pad: 'valid' },
    { name: '3x3 stride 1 same (overlapping)', x: [2, 5, 7, 2], size: 3, stride: 1, pad: 'same' },
    { name: '3x3 stride 2 same', x: [1, 7, 8, 4], size: 3, stride: 2, pad: 'same' },
  ];
  for (const c of poolCases) {
    test(`maxPool ${c.name}: forward and grad`, async () => {
      const x = fixed(c.x, 47);
      const f = (xx: tf.Tensor) => tf.maxPool(xx as tf.Tensor4D, c.size, c.stride, c.pad);
      const dyShape = (await runOn('cpu', () => f(x()))).shapes[0];
      const dy = fixed(dyShape, 48);
      await assertParity('forward', () => f(x()));
      await assertParity('grad', () => tf.grad(f)(x(), dy()));
    });
  }
  test('maxPool grad with ties routes to the first maximum, like cpu', async () => {
    // Values drawn from {0, 1, 2}: most windows contain ties.
    const rng = new Rng(49);
    const data = Float32Array.from({ length: 2 * 6 * 6 * 2 }, () => rng.int(3));
    const dy = fixed([2, 5, 5, 2], 50);
    await assertParity('grad', () => tf.grad((xx: tf.Tensor) => tf.maxPool(xx as tf.Tensor4D, 2, 1, 'valid'))(tf.tensor(data, [2, 6, 6, 2]), dy()));
  });
  test('conv2dTranspose stride 2 (Conv2DBackpropInput as a forward op): forward and grads', async () => {
    const x = fixed([2, 4, 5, 3], 54);
    const w = fixed([3, 3, 2, 3], 55); // [h, w, outChannels, inChannels]
    const dy = fixed([2, 8, 10, 2], 56);
    const f = (xx: tf.Tensor, ww: tf.Tensor) => tf.conv2dTranspose(xx as tf.Tensor4D, ww as tf.Tensor4D, [2, 8, 10, 2], 2, 'same');
    await assertParity('forward', () => f(x(), w()));
    await assertParity('grads', () => tf.grads(f)([x(), w()], dy()));
  });
  test('depthwiseConv2d: forward, dx and dfilter (cpu bridge)', async () => {
    const x = fixed([2, 6, 6, 3], 51);
    const w = fixed([3, 3, 3, 2], 52);
    const dy = fixed([2, 6, 6, 6], 53);
    const f = (xx: tf.Tensor, ww: tf.Tensor) => tf.depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, 'same');
    await assertParity('forward', () => f(x(), w()));
    await assertParity('grads', () => tf.grads(f)([x(), w()], dy()));
  });
});

describe('gather / embedding gradient parity', () => {
  const idx = Int32Array.from([3, 0, 7, 3, 3, 9, 1, 0]);
  test('gather axis 0 (embedding lookup) forward and grad', async () => {
    const p = fixed([10, 4], 61);
    const dy = fixed([8, 4], 62);
    const f = (pp: tf.Tensor) => tf.gather(pp, tf.tensor1d(idx, 'int32'));
    await assertParity('forward', () => f(p()));
    await assertParity('grad', () => tf.grad(f)(p(), dy()));
  });
  test('gather axis 1 with 2-D indices: grad', async () => {
    const p = fixed([3, 10, 2], 63);
    const dy = fixed([3, 2, 4, 2], 64);
    const f = (pp: tf.Tensor) => tf.gather(pp, tf.tensor2d(idx, [2, 4], 'int32'), 1);
    await assertParity('grad', () => tf.grad(f)(p(), dy()));
  });
  test('unsortedSegmentSum directly (int32 and float32)', async () => {
    const x = fixed([8, 3], 65);
    await assertParity('float32', () => tf.unsortedSegmentSum(x(), tf.tensor1d(idx, 'int32'), 12));
    await assertParity('int32', () => tf.unsortedSegmentSum(tf.tensor2d(idx, [4, 2], 'int32'), tf.tensor1d([1, 1, 0, 3], 'int32'), 4));
  });
});

describe('other bridged kernels', () => {
  test('einsum (array inputs) through the cpu bridge', async () => {
    const a = fixed([3, 4], 71);
    const b = fixed([4, 5], 72);
    await assertParity('einsum', () => tf.einsum('ij,jk->ik', a(), b()));
  });
  test('staticRegexReplace (string tensors) through the cpu bridge', async () => {
    await tf.setBackend('wasm');
    const out = tf.tidy(() => tf.string.staticRegexReplace(tf.tensor(['hello world', 'abc']), 'o', '0'));
    assert.equal(out.dtype, 'string');
    assert.deepEqual(out.dataSync(), ['hell0 w0rld', 'abc']);
    out.dispose();
  });
  test('raggedRange (two outputs) through the cpu bridge', async () => {
    await assertParity('raggedRange', () => {
      const r = tf.raggedRange(tf.tensor1d([0, 5, 2], 'int32'), tf.tensor1d([3, 5, 9], 'int32'), tf.tensor1d([1, 1, 3], 'int32'));
      return [r.rtNestedSplits, r.rtDenseValues];
    });
  });
});

describe('layers training parity', () => {
  /** Deterministic weights for `model`, shared by both backends. */
  function weightsFor(model: tf.LayersModel, seed: number): Float32Array[] {
    return model.getWeights().map((w, i) => randn(w.size, seed + i, 0.3));
  }
  async function trainLosses(backend: string, build: () => tf.LayersModel, xs: () => tf.Tensor, ys: () => tf.Tensor, seed: number): Promise<number[]> {
    assert.ok(await tf.setBackend(backend));
    const model = build();
    const init = weightsFor(model, seed);
    tf.tidy(() => model.setWeights(model.getWeights().map((w, i) => tf.tensor(init[i], w.shape))));
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const x = xs();
    const y = ys();
    const losses: number[] = [];
    for (let s = 0; s < 4; s++) {
      const l = await model.trainOnBatch(x, y);
      losses.push(Array.isArray(l) ? l[0] : l);
    }
    tf.dispose([x, y]);
    model.dispose();
    return losses;
  }
  function oneHot(n: number, k: number, seed: number): () => tf.Tensor {
    const rng = new Rng(seed);
    const data = new Float32Array(n * k);
    for (let i = 0; i < n; i++) data[i * k + rng.int(k)] = 1;
    return () => tf.tensor2d(data, [n, k]);
  }
  async function assertSameLosses(build: () => tf.LayersModel, xs: () => tf.Tensor, ys: () => tf.Tensor, seed: number): Promise<void> {
    const w = await trainLosses('wasm', build, xs, ys, seed);
    const c = await trainLosses('cpu', build, xs, ys, seed);
    await tf.setBackend('wasm');
    for (let i = 0; i < w.length; i++) {
      assert.ok(Number.isFinite(w[i]), `wasm loss ${i} not finite`);
      assert.ok(Math.abs(w[i] - c[i]) <= TOL * Math.max(1, Math.abs(c[i])), `step ${i}: wasm ${w[i]} vs cpu ${c[i]}`);
    }
    assert.ok(w[w.length - 1] < w[0], 'loss should decrease');
  }
  test('conv2d + dense model trains identically on wasm and cpu', async () => {
    const build = () =>
      tf.sequential({
        layers: [
          tf.layers.conv2d({ inputShape: [8, 8, 2], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.conv2d({ filters: 6, kernelSize: 3, activation: 'relu' }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 16, activation: 'relu' }),
          tf.layers.dense({ units: 3, activation: 'softmax' }),
        ],
      });
    await assertSameLosses(build, fixed([12, 8, 8, 2], 81), oneHot(12, 3, 82), 83);
  });
  test('embedding + dense model trains identically on wasm and cpu', async () => {
    const rng = new Rng(91);
    const tokens = Float32Array.from({ length: 10 * 5 }, () => rng.int(20));
    const build = () =>
      tf.sequential({
        layers: [
          tf.layers.embedding({ inputDim: 20, outputDim: 8, inputLength: 5 }),
          tf.layers.flatten(),
          tf.layers.dense({ units: 4, activation: 'softmax' }),
        ],
      });
    await assertSameLosses(build, () => tf.tensor2d(tokens, [10, 5]), oneHot(10, 4, 92), 93);
  });
});

describe('memory and switching', () => {
  test('no data ids or tensors leak over 50 bridged conv-gradient calls', async () => {
    await tf.setBackend('wasm');
    const wasm = tf.backend();
    const cpu = cpuBackend();
    const x = tf.tensor(randn(2 * 6 * 6 * 3, 101), [2, 6, 6, 3]) as tf.Tensor4D;
    const w = tf.tensor(randn(3 * 3 * 3 * 4, 102), [3, 3, 3, 4]) as tf.Tensor4D;
    const dw = tf.tensor(randn(3 * 3 * 3 * 2, 103), [3, 3, 3, 2]) as tf.Tensor4D;
    const a = tf.tensor(randn(2 * 32 * 16, 104), [2, 32, 16]);
    const b = tf.tensor(randn(2 * 16 * 24, 105), [2, 16, 24]);
    const emb = tf.tensor(randn(10 * 4, 106), [10, 4]);
    const ids = tf.tensor1d([1, 4, 4, 9], 'int32');
    const step = () => {
      // Native Conv2DBackpropFilter/Input, cpu-bridged depthwise gradients, MaxPoolGrad, the
      // split and transposed matmul paths, and UnsortedSegmentSum.
      const conv = (xx: tf.Tensor, ww: tf.Tensor) => tf.maxPool(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, 'same'), 2, 2, 'valid').sum();
      const g = tf.grads(conv)([x, w]);
      const h = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, 'same').sum())([x, dw]);
      const m = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.matMul(p, q).sum())([a, b]);
      const e = tf.grad((p: tf.Tensor) => tf.gather(p, ids).sum())(emb);
      tf.dispose([...g, ...h, ...m, e]);
    };
    step(); // warm up any lazily created state
    const before = { wasm: wasm.numDataIds(), cpu: cpu.numDataIds(), tensors: tf.memory().numTensors };
    for (let i = 0; i < 50; i++) step();
    const afterIds = { wasm: wasm.numDataIds(), cpu: cpu.numDataIds(), tensors: tf.memory().numTensors };
    tf.dispose([x, w, dw, a, b, emb, ids]);
    assert.deepEqual(afterIds, before);
  });

  test('applyWasmPatches({enabled:false}) restores stock kernels and applyWasmPatches() reinstalls', async () => {
    await tf.setBackend('wasm');
    const patched = applyWasmPatches();
    assert.equal(patched.enabled, true);
    assert.deepEqual(patched.matmul, ['BatchMatMul', '_FusedMatMul', 'Conv2DBackpropInput', 'MaxPoolGrad']);
    for (const k of ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'UnsortedSegmentSum']) {
      assert.ok(patched.bridged.includes(k), `${k} bridged`);
    }
    assert.ok(!patched.bridged.includes('FFT'), 'complex kernels are not bridged');
    const patchedMatMul = tf.getKernel('BatchMatMul', 'wasm');
    assert.deepEqual(applyWasmPatches(), patched, 'idempotent');
    assert.equal(tf.getKernel('BatchMatMul', 'wasm'), patchedMatMul, 'idempotent: no re-wrap');

    const stock = applyWasmPatches({ enabled: false });
    assert.deepEqual(stock, { enabled: false, matmul: [], bridged: [], blas: false, blasThreads: 1, blasKernels: [] });
    const stockMatMul = tf.getKernel('BatchMatMul', 'wasm');
    assert.notEqual(stockMatMul, patchedMatMul);
    assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm'), undefined);
    const x = tf.ones([1, 4, 4, 1]) as tf.Tensor4D;
    const w = tf.ones([3, 3, 1, 1]) as tf.Tensor4D;
    const filterGrad = () => tf.tidy(() => tf.grad((ww: tf.Tensor) => tf.conv2d(x, ww as tf.Tensor4D, 1, 'same').sum())(w).dataSync());
    assert.throws(filterGrad, /Conv2DBackpropFilter/);
    // Stock transposed matmul still computes the right thing (just slowly).
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const ref = [14, 32, 32, 77];
    assert.deepEqual(Array.from(tf.tidy(() => tf.matMul(a, a, false, true)).dataSync()), ref);

    assert.deepEqual(applyWasmPatches({ enabled: false }), stock, 'disable is idempotent');
    assert.equal(tf.getKernel('BatchMatMul', 'wasm'), stockMatMul);

    const again = applyWasmPatches();
    assert.deepEqual(again, patched);
    assert.notEqual(tf.getKernel('BatchMatMul', 'wasm'), stockMatMul);
    assert.equal(filterGrad()[0], 9); // w[0,0] meets x[oh-1, ow-1]: in range for 3x3 of the 4x4 outputs
    assert.deepEqual(Array.from(tf.tidy(() => tf.matMul(a, a, false, true)).dataSync()), ref);
    applyWasmPatches({ enabled: false });
    assert.equal(tf.getKernel('BatchMatMul', 'wasm'), stockMatMul, 'second round trip restores the same stock config');
    applyWasmPatches({ matmul: false });
    assert.equal(tf.getKernel('BatchMatMul', 'wasm'), stockMatMul, 'matmul:false keeps stock matmul');
    assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm') !== undefined, 'bridge alone installed');
    applyWasmPatches();
    tf.dispose([x, w, a]);
  });
});
