/**
 * The OpenBLAS path of the wasm kernel patches against plain patched wasm: products, fused
 * epilogues and conv gradients; first-step losses and gradients of the bench MLP and CNN, the
 * transformer LM and the MTL encoder within 1e-4 relative; heap growth; leaks; and the fallback
 * (addon forced off, or missing) choosing plain wasm with one line saying why.
 *
 * The BLAS cases skip when the addon is not built (they run in CI, which builds it); the fallback
 * cases always run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { applyWasmPatches } from '../src/engine/wasm-patches.js';
import { blasThreadsForRuns } from '../src/engine/threads.js';
import { loadBlas, type BlasAddon } from '../src/engine/blas.js';
import { fusedGelu, fusedLayerNorm, fusedSoftmaxCrossEntropy, softmaxCrossEntropy } from '../src/engine/fused.js';
import { gelu, linear } from '../src/models/ffn.js';
import { Rng } from '../src/engine/rng.js';
import { layerNorm, TransformerLM } from '../src/models/transformer.js';
import { MultiTaskNet, taskLoss } from '../src/methods/mtl/model.js';
import { AdamW } from '../src/train/optimizers.js';
import { constant } from '../src/train/schedules.js';
import { Trainer } from '../src/train/trainer.js';
import { tempDir } from './helpers/tmp.js';

const TOL = 1e-4;
const { addon, status } = loadBlas();
const skip = addon ? false : `OpenBLAS addon not available (${status.reason})`;

/** The addon with its sgemm (and fused-kernel) calls counted, so a test can tell that BLAS actually ran. */
let calls = 0;
const fusedCalls = { adamw: 0, sumLeading: 0, softmaxCE: 0, softmaxCEGrad: 0, reluGrad: 0, addRow: 0, broadcast: 0, layerNorm: 0, layerNormGrad: 0, gelu: 0, geluGrad: 0 };
const counting: BlasAddon | null = addon && {
  ...addon,
  sgemm: (...args: Parameters<BlasAddon['sgemm']>) => {
    calls++;
    addon.sgemm(...args);
  },
  adamw: (...args: Parameters<BlasAddon['adamw']>) => {
    fusedCalls.adamw++;
    addon.adamw(...args);
  },
  sumLeading: (...args: Parameters<BlasAddon['sumLeading']>) => {
    fusedCalls.sumLeading++;
    addon.sumLeading(...args);
  },
  softmaxCE: (...args: Parameters<BlasAddon['softmaxCE']>) => {
    fusedCalls.softmaxCE++;
    addon.softmaxCE(...args);
  },
  softmaxCEGrad: (...args: Parameters<BlasAddon['softmaxCEGrad']>) => {
    fusedCalls.softmaxCEGrad++;
    addon.softmaxCEGrad(...args);
  },
  reluGrad: (...args: Parameters<BlasAddon['reluGrad']>) => {
    fusedCalls.reluGrad++;
    addon.reluGrad(...args);
  },
  addRow: (...args: Parameters<BlasAddon['addRow']>) => {
    fusedCalls.addRow++;
    addon.addRow(...args);
  },
  broadcast: (...args: Parameters<BlasAddon['broadcast']>) => {
    fusedCalls.broadcast++;
    addon.broadcast(...args);
  },
  layerNorm: (...args: Parameters<BlasAddon['layerNorm']>) => {
    fusedCalls.layerNorm++;
    addon.layerNorm(...args);
  },
  layerNormGrad: (...args: Parameters<BlasAddon['layerNormGrad']>) => {
    fusedCalls.layerNormGrad++;
    addon.layerNormGrad(...args);
  },
  gelu: (...args: Parameters<BlasAddon['gelu']>) => {
    fusedCalls.gelu++;
    addon.gelu(...args);
  },
  geluGrad: (...args: Parameters<BlasAddon['geluGrad']>) => {
    fusedCalls.geluGrad++;
    addon.geluGrad(...args);
  },
};

function randn(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

/** max|a − b| / max|b|: relative to the reference's largest entry. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  if (Number.isNaN(diff)) return Infinity;
  return scale === 0 ? diff : diff / scale;
}

/** Runs `fn` with BLAS on or off and returns copies of its outputs (and the sgemm call count). */
function runWith(blas: boolean, fn: () => tf.Tensor[]): { values: Float32Array[]; shapes: number[][]; sgemm: number } {
  applyWasmPatches({ blas: blas ? counting : null });
  const before = calls;
  const outs = tf.tidy(fn);
  const values = outs.map((t) => Float32Array.from(t.dataSync() as ArrayLike<number>));
  const shapes = outs.map((t) => t.shape.slice());
  tf.dispose(outs);
  return { values, shapes, sgemm: calls - before };
}

/** Asserts BLAS ran (at least `minCalls` sgemm calls) and every output is within TOL of plain wasm. */
function assertBlasParity(label: string, fn: () => tf.Tensor[], minCalls = 1): void {
  const ref = runWith(false, fn);
  const got = runWith(true, fn);
  assert.equal(ref.sgemm, 0, `${label}: plain wasm must not call BLAS`);
  assert.ok(got.sgemm >= minCalls, `${label}: expected ≥ ${minCalls} sgemm calls, got ${got.sgemm}`);
  assert.equal(got.values.length, ref.values.length);
  for (let i = 0; i < ref.values.length; i++) {
    assert.deepEqual(got.shapes[i], ref.shapes[i], `${label}: shape of output ${i}`);
    const e = relErr(got.values[i], ref.values[i]);
    assert.ok(e <= TOL, `${label}: output ${i} relative error ${e} > ${TOL}`);
  }
}

const fixed = (shape: number[], seed: number, scale = 1) => {
  const data = randn(shape.reduce((a, b) => a * b, 1), seed, scale);
  return () => tf.tensor(data, shape);
};

before(async () => {
  assert.ok(await tf.setBackend('wasm'));
  await tf.ready();
});

after(() => {
  applyWasmPatches();
});

describe('BLAS products (vs plain patched wasm)', { skip }, () => {
  // M·K·N = 273,000 ≥ BLAS_MIN_MACS, so these run through sgemm.
  const M = 70;
  const K = 65;
  const N = 60;
  const cases: Array<{ name: string; ba: number[]; bb: number[]; wrt: 'both' | 'a' | 'b' }> = [
    { name: 'rank-2', ba: [], bb: [], wrt: 'both' },
    { name: 'batch 3', ba: [3], bb: [3], wrt: 'both' },
    { name: 'a batch 3, b shared', ba: [3], bb: [1], wrt: 'a' },
    { name: 'a shared, b batch 3', ba: [1], bb: [3], wrt: 'b' },
    { name: 'rank-4 [2,3] vs [1,1]', ba: [2, 3], bb: [1, 1], wrt: 'a' },
  ];
  for (const c of cases) {
    for (const [tA, tB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      test(`${c.name} transposeA=${tA} transposeB=${tB}: forward and gradients`, () => {
        const a = fixed([...c.ba, ...(tA ? [K, M] : [M, K])], 1);
        const b = fixed([...c.bb, ...(tB ? [N, K] : [K, N])], 2);
        assertBlasParity('forward', () => [tf.matMul(a(), b(), tA, tB)]);
        assertBlasParity('gradients', () => {
          const av = a();
          const bv = b();
          const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, tA, tB)));
          if (c.wrt === 'a') return [tf.grad((x: tf.Tensor) => f(x, bv))(av)];
          if (c.wrt === 'b') return [tf.grad((y: tf.Tensor) => f(av, y))(bv)];
          return tf.grads(f)([av, bv]);
        });
      });
    }
  }

  for (const activation of ['linear', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'elu'] as const) {
    test(`fused matMul + bias + ${activation} and its gradients`, () => {
      const a = fixed([M, K], 3);
      const b = fixed([K, N], 4);
      const bias = fixed([N], 5);
      assertBlasParity('forward', () => [tf.fused.matMul({ a: a(), b: b(), bias: bias(), activation, leakyreluAlpha: 0.1 })]);
      assertBlasParity('gradients', () =>
        tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
          tf.sum(tf.square(tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, bias: z, activation, leakyreluAlpha: 0.1 }))),
        )([a(), b(), bias()]),
      );
    });
  }

  test('fused matMul with transposes and batch', () => {
    const a = fixed([2, K, M], 6);
    const b = fixed([2, N, K], 7);
    const bias = fixed([N], 8);
    assertBlasParity('forward', () => [tf.fused.matMul({ a: a(), b: b(), transposeA: true, transposeB: true, bias: bias(), activation: 'relu' })]);
  });

  test('small products stay on XNNPACK (no sgemm call)', () => {
    const got = runWith(true, () => [tf.matMul(tf.ones([8, 8]), tf.ones([8, 8]))]);
    assert.equal(got.sgemm, 0);
    assert.equal(got.values[0][0], 8);
  });

  test('conv2d input and filter gradients (stride 1 same, stride 2 valid)', () => {
    for (const [stride, pad] of [
      [1, 'same'],
      [2, 'valid'],
    ] as const) {
      const x = fixed([8, 13, 13, 8], 9);
      const w = fixed([3, 3, 8, 16], 10, 0.3);
      assertBlasParity(`conv2d s${stride} ${pad}`, () => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad))))([x(), w()]), 2);
    }
  });

  test('maxPool gradient in the addon equals the JS scatter bit for bit (ties, padding, stride)', () => {
    // Values rounded to 0.5 make many ties inside windows: both must pick the first maximum.
    const data = randn(4 * 9 * 9 * 6, 15).map((v) => Math.round(v * 2) / 2);
    for (const [size, stride, pad] of [
      [2, 2, 'valid'],
      [3, 2, 'same'],
      [3, 1, 'same'],
    ] as const) {
      const fn = () => [tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(x as tf.Tensor4D, size, stride, pad), tf.range(1, 7))))(tf.tensor(data, [4, 9, 9, 6]))];
      const ref = runWith(false, fn).values[0];
      const got = runWith(true, fn).values[0];
      assert.deepEqual(got, ref, `maxPool ${size}/${stride}/${pad}`);
    }
  });

  test('heap growth between calls: views are retaken, results stay right', () => {
    const a = fixed([128, 96], 11);
    const b = fixed([96, 80], 12);
    const ref = runWith(false, () => [tf.matMul(a(), b())]).values[0];
    applyWasmPatches({ blas: counting });
    const x = a();
    const y = b();
    // 96 MiB: larger than anything allocated so far, so the wasm heap must grow (new ArrayBuffer).
    const big = tf.zeros([24 * 1024 * 1024]);
    const z = tf.matMul(x, y);
    const e = relErr(z.dataSync(), ref);
    tf.dispose([x, y, big, z]);
    assert.ok(e <= TOL, `relative error ${e}`);
  });

  test('the addon rejects operands outside the heap instead of reading past it', () => {
    const heap = new ArrayBuffer(64);
    assert.throws(() => addon!.sgemm(heap, false, false, 4, 4, 4, 0, 0, 64, 1, 0, 0, 0, 0), /outside the heap/);
    assert.throws(() => addon!.sgemm(heap, false, false, 4, 4, 4, 2, 0, 0, 1, 0, 0, 0, 0), /outside the heap/);
    assert.throws(() => addon!.sgemm(new SharedArrayBuffer(64), false, false, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0), /ArrayBuffer heap/);
    const ok = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0]);
    addon!.sgemm(ok.buffer, false, false, 2, 2, 2, 0, 16, 32, 1, 0, 0, 0, 0);
    assert.deepEqual([...ok.subarray(8)], [19, 22, 43, 50]);
  });

  test('no tensor or data leaks over repeated BLAS training steps', () => {
    applyWasmPatches({ blas: counting });
    const w = tf.variable(tf.tensor(randn(96 * 80, 13, 0.1), [96, 80]));
    const x = tf.tensor(randn(128 * 96, 14), [128, 96]);
    const step = () => tf.tidy(() => {
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.relu(tf.matMul(x, v))))(w);
      w.assign(tf.sub(w, tf.mul(g, 1e-3)));
    });
    step();
    const n0 = tf.memory().numTensors;
    const d0 = tf.engine().backend.numDataIds();
    for (let i = 0; i < 5; i++) step();
    assert.equal(tf.memory().numTensors, n0);
    assert.equal(tf.engine().backend.numDataIds(), d0);
    tf.dispose([w, x]);
  });
});

/** Loss and gradients of `lossFn` w.r.t. `vars`, as plain arrays. */
function lossAndGrads(vars: tf.Variable[], lossFn: () => tf.Scalar): tf.Tensor[] {
  const { value, grads } = tf.variableGrads(lossFn, vars);
  return [value, ...vars.map((v) => grads[v.name])];
}

describe('first-step losses and gradients within 1e-4 relative of plain wasm', { skip }, () => {
  test('bench MLP (784→512→10, softmax cross-entropy)', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [784], units: 512, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      ],
    });
    const x = fixed([64, 784], 21);
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 10), 'int32'), 10);
    const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
    const before = { ...fusedCalls };
    assertBlasParity('mlp', () => lossAndGrads(vars, () => softmaxCrossEntropy(y, model.apply(x(), { training: true }) as tf.Tensor)), 3);
    for (const k of ['softmaxCE', 'softmaxCEGrad', 'reluGrad', 'addRow'] as const) assert.equal(fusedCalls[k] - before[k], 1, `${k} ran once on the BLAS path`);
    model.dispose();
    y.dispose();
  });

  test('bench CNN (two conv3×3 + maxpool, dense)', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }),
      ],
    });
    const x = fixed([16, 28, 28, 1], 22);
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), 'int32'), 10);
    const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
    assertBlasParity('cnn', () => lossAndGrads(vars, () => softmaxCrossEntropy(y, model.apply(x(), { training: true }) as tf.Tensor)), 2);
    model.dispose();
    y.dispose();
  });

  test('transformer LM (d=64, 2 layers, 4 heads, 4×32 tokens)', () => {
    const model = new TransformerLM({ vocabSize: 40, contextLength: 32, dModel: 64, nHeads: 4, nLayers: 2, dFf: 256, ffn: { kind: 'dense' } }, 7);
    const rng = new Rng(8);
    const ids = Int32Array.from({ length: 128 }, () => rng.int(40));
    const tgt = Int32Array.from({ length: 128 }, () => rng.int(40));
    const vars = model.variables();
    assertBlasParity(
      'lm',
      () =>
        lossAndGrads(vars, () =>
          model.loss(tf.tensor2d(ids, [4, 32], 'int32'), tf.tensor2d(tgt, [4, 32], 'int32'), { training: true, rng: new Rng(1) }),
        ),
      4,
    );
    model.dispose();
  });

  test('MTL encoder (conv 8→16 channels, two heads)', () => {
    const tasks = [
      { name: 'left', outputs: 10, loss: 'softmax-ce' as const },
      { name: 'right', outputs: 10, loss: 'softmax-ce' as const },
    ];
    const net = new MultiTaskNet({ inputShape: [28, 28, 1], channels: [8, 16], downsample: 'maxpool' }, tasks, [{ hidden: 32 }, { hidden: 0 }], new Rng(9));
    const x = fixed([16, 28, 28, 1], 23);
    const labels = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 10), 'int32');
    const vars = net.params();
    assertBlasParity(
      'mtl',
      () =>
        lossAndGrads(vars, () => {
          const z = net.encode(x() as tf.Tensor4D);
          return tf.addN(tasks.map((t, i) => taskLoss(t, net.head(i, z).logits, labels))) as tf.Scalar;
        }),
      2,
    );
    net.dispose();
    labels.dispose();
  });
});

describe('the rest of the step on the BLAS path (fused AdamW, Sum, Identity, Slice/SplitV)', { skip }, () => {
  /** Bit patterns of every value, for exact comparisons (distinguishes -0 and NaN payloads). */
  const bits = (xs: Float32Array[]) => xs.map((x) => Array.from(new Uint32Array(x.buffer.slice(0))));

  /** Three AdamW steps (decay on the matrix, off for the bias) with BLAS on or off; params and slots after. */
  function adamSteps(blas: boolean): Float32Array[] {
    applyWasmPatches({ blas: blas ? counting : null });
    const params = [tf.variable(tf.tensor(randn(40 * 30, 51), [40, 30])), tf.variable(tf.tensor(randn(30, 52), [30]))];
    const opt = new AdamW({ weightDecay: 0.1 });
    for (let s = 0; s < 3; s++) {
      tf.tidy(() => opt.apply(params, params.map((p, i) => tf.tensor(randn(p.size, 60 + 10 * s + i, 1 + s), p.shape)), 1e-2 * (s + 1)));
    }
    const out = [...params, ...Object.values(opt.getState().slots)].map((t) => Float32Array.from(t.dataSync() as Float32Array));
    opt.dispose();
    tf.dispose(params);
    return out;
  }

  test('fused AdamW is bit-identical to the unfused ops, and runs one kernel per parameter', () => {
    const ref = adamSteps(false);
    const before = fusedCalls.adamw;
    const got = adamSteps(true);
    assert.equal(fusedCalls.adamw - before, 6, '2 parameters × 3 steps through the addon');
    assert.equal(got.length, 6, 'two params and their m, v slots');
    assert.deepEqual(bits(got), bits(ref));
    assert.notDeepEqual(bits(got)[0], bits([Float32Array.from(randn(40 * 30, 51))])[0], 'the parameter moved');
  });

  test('Sum over leading axes (bias gradients) matches the stock kernel; other axes are unchanged', () => {
    const x = fixed([6, 5, 7], 53);
    const cases: Array<[number | number[] | undefined, boolean, boolean]> = [
      [0, false, true],
      [[0, 1], false, true],
      [[1, 0], true, true],
      [-3, true, true],
      [1, false, false],
      [2, false, false],
      [undefined, false, false],
    ];
    for (const [axis, keepDims, viaAddon] of cases) {
      const before = fusedCalls.sumLeading;
      assertBlasParity(`sum axis ${JSON.stringify(axis)} keepDims ${keepDims}`, () => [tf.sum(x(), axis, keepDims), tf.sum(tf.tensor(randn(6 * 5 * 7, 54).map(Math.round), [6, 5, 7], 'int32'), axis, keepDims)], 0);
      assert.equal(fusedCalls.sumLeading - before > 0, viaAddon, `axis ${JSON.stringify(axis)}: addon used`);
    }
  });

  test('Identity shares the buffer (no copy) and frees it only with the last reference', () => {
    applyWasmPatches({ blas: counting });
    const n0 = tf.engine().backend.numDataIds();
    const x = tf.tensor([1, 2, 3]);
    const y = tf.clone(x);
    assert.equal(tf.engine().backend.numDataIds(), n0 + 1, 'one buffer for both');
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
    y.dispose();
    assert.equal(tf.engine().backend.numDataIds(), n0);
  });

  test('Slice and SplitV through heap views equal the stock kernels bit for bit (ranks 1–4)', () => {
    const shapes = [[17], [6, 9], [3, 5, 8], [2, 3, 4, 6]];
    for (const shape of shapes) {
      const x = fixed(shape, 55 + shape.length);
      const begin = shape.map((d) => Math.floor(d / 3));
      const size = shape.map((d, i) => d - begin[i] - (i % 2));
      const last = shape.length - 1;
      const fn = () => [tf.slice(x(), begin, size), ...tf.split(x(), [1, shape[last] - 1], last), ...tf.split(x(), [shape[0] - 1, 1], 0)];
      const ref = runWith(false, fn).values;
      const got = runWith(true, fn).values;
      assert.deepEqual(bits(got), bits(ref), `shape ${JSON.stringify(shape)}`);
    }
  });

  test('Trainer steps on the BLAS path: no tensor or data-id leaks, exact resume from the optimizer state', () => {
    applyWasmPatches({ blas: counting });
    const cfg = { vocabSize: 30, contextLength: 16, dModel: 32, nHeads: 2, nLayers: 1, dFf: 64, ffn: { kind: 'dense' as const } };
    const rng = new Rng(70);
    const ids = tf.tensor2d(Int32Array.from({ length: 64 }, () => rng.int(30)), [4, 16], 'int32');
    const tgt = tf.tensor2d(Int32Array.from({ length: 64 }, () => rng.int(30)), [4, 16], 'int32');
    const run = (steps: number, from?: { weights: Float32Array[]; state: ReturnType<AdamW['getState']>; iterations: number }) => {
      const model = new TransformerLM(cfg, 71);
      const vars = model.variables();
      const trainer = new Trainer({ params: vars, optimizer: new AdamW({ weightDecay: 0.1 }), clipNorm: 1, schedule: constant(3e-3) });
      if (from) {
        tf.tidy(() => vars.forEach((v, i) => v.assign(tf.tensor(from.weights[i], v.shape))));
        trainer.optimizer.setState(from.state);
        trainer.step = from.iterations;
      }
      const losses: number[] = [];
      losses.push(trainer.trainStep(() => model.loss(ids, tgt, { training: true, rng: new Rng(72) })));
      const n0 = tf.memory().numTensors;
      const d0 = tf.engine().backend.numDataIds();
      for (let i = 1; i < steps; i++) losses.push(trainer.trainStep(() => model.loss(ids, tgt, { training: true, rng: new Rng(72) })));
      assert.equal(tf.memory().numTensors, n0, 'tensor count flat');
      assert.equal(tf.engine().backend.numDataIds(), d0, 'data ids flat');
      const weights = vars.map((v) => Float32Array.from(v.dataSync() as Float32Array));
      const st = trainer.optimizer.getState();
      const state = { ...st, slots: Object.fromEntries(Object.entries(st.slots).map(([k, t]) => [k, tf.keep(t.clone())])) };
      model.dispose();
      trainer.optimizer.dispose();
      return { losses, weights, state, iterations: trainer.step };
    };
    const before = fusedCalls.adamw;
    const full = run(4);
    assert.ok(fusedCalls.adamw > before, 'the fused update ran');
    const half = run(2);
    const resumed = run(2, half);
    assert.deepEqual(resumed.losses, full.losses.slice(2));
    assert.deepEqual(bits(resumed.weights), bits(full.weights));
    for (const r of [full, half, resumed]) tf.dispose(Object.values(r.state.slots));
    tf.dispose([ids, tgt]);
  });
});

describe('fused loss and epilogues on the BLAS path (softmax cross-entropy, Relu/Sum/Mean gradients, bias Add)', { skip }, () => {
  const bits = (xs: Float32Array[]) => xs.map((x) => Array.from(new Uint32Array(x.buffer.slice(0))));

  test('softmax cross-entropy: a hand-computed case, and value and gradients within 1e-4 of tf.losses (one-hot int32 and soft labels)', () => {
    applyWasmPatches({ blas: counting });
    tf.tidy(() => {
      // −log softmax([1, 2, 3])₃ = log(e + e² + e³) − 3 and −log softmax([0, 0, 0])₁ = log 3; the mean of both.
      const want = (Math.log(Math.E + Math.E ** 2 + Math.E ** 3) - 3 + Math.log(3)) / 2;
      const loss = fusedSoftmaxCrossEntropy(tf.tensor2d([[0, 0, 1], [1, 0, 0]]), tf.tensor2d([[1, 2, 3], [0, 0, 0]]));
      assert.ok(loss !== null, 'fused on the BLAS path');
      assert.ok(Math.abs(loss.dataSync()[0] - want) < 1e-6, `loss ${loss.dataSync()[0]} vs ${want}`);
    });
    const z = fixed([37, 11], 81, 3);
    const soft = tf.tidy(() => tf.softmax(tf.tensor(randn(37 * 11, 82), [37, 11])));
    const hard = tf.oneHot(tf.tensor1d(Array.from({ length: 37 }, (_, i) => (i * 7) % 11), 'int32'), 11);
    for (const [name, y] of [['soft', soft], ['one-hot', hard]] as const) {
      const ref = runWith(false, () => {
        const logits = tf.variable(z());
        const labels = tf.variable(y.toFloat());
        const f = () => tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
        const { value, grads } = tf.variableGrads(f, [logits, labels]);
        const res = [value, grads[logits.name], grads[labels.name]];
        tf.dispose([logits, labels]);
        return res;
      });
      const before = { ...fusedCalls };
      const got = runWith(true, () => {
        const logits = tf.variable(z());
        const labels = tf.variable(y.toFloat());
        const { value, grads } = tf.variableGrads(() => softmaxCrossEntropy(labels, logits), [logits, labels]);
        const res = [value, grads[logits.name], grads[labels.name]];
        tf.dispose([logits, labels]);
        return res;
      });
      assert.equal(fusedCalls.softmaxCE - before.softmaxCE, 1, `${name}: fused forward ran`);
      assert.equal(fusedCalls.softmaxCEGrad - before.softmaxCEGrad, 2, `${name}: fused gradient ran (logits and labels)`);
      for (let i = 0; i < 3; i++) {
        const e = relErr(got.values[i], ref.values[i]);
        assert.ok(e <= TOL, `${name}: output ${i} relative error ${e}`);
      }
    }
    applyWasmPatches({ blas: null });
    const logits = z();
    assert.equal(fusedSoftmaxCrossEntropy(hard, logits), null, 'plain wasm: no fused loss');
    logits.dispose();
    tf.dispose([soft, hard]);
  });

  test('Relu, Sum and Mean gradients and the bias Add equal the stock ones bit for bit (NaN, ±0, ±Inf included)', () => {
    const special = new Float32Array(randn(6 * 8 * 10, 83));
    special.set([NaN, 0, -0, Infinity, -Infinity, 1e-40, -1e-40, 3], 0);
    const x = () => tf.tensor(special, [6, 8, 10]);
    const dy = fixed([6, 8, 10], 84);
    const bias = fixed([10], 85);
    const fn = () => {
      const v = x();
      const d = dy();
      const b = bias();
      return [
        tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.relu(t), d)))(v),
        tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.sum(t, 1, true), tf.sum(d, 1, true))))(v),
        tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.sum(t, [0, 2]), tf.sum(d, [0, 2]))))(v),
        tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(t, -1), tf.mean(d, -1))))(v),
        tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(t, [0, 1], true), tf.mean(d, [0, 1], true))))(v),
        tf.add(v, b),
        tf.add(b, tf.reshape(v, [48, 10])),
        tf.add(tf.reshape(v, [48, 10]), tf.reshape(b, [1, 10])),
      ];
    };
    const ref = runWith(false, fn).values;
    const before = { ...fusedCalls };
    const got = runWith(true, fn).values;
    assert.equal(fusedCalls.reluGrad - before.reluGrad, 1, 'Relu gradient in the addon');
    assert.deepEqual(bits(got), bits(ref));
    assert.ok(Number.isNaN(got[0][0]), 'NaN input: NaN gradient, as tfjs');
  });

  test('LayerNorm: one kernel each way, value and gradients (x, g, b) within 1e-4 of the tf.moments ops', () => {
    const x = fixed([50, 24], 90, 2);
    const g = fixed([24], 91);
    const b = fixed([24], 92);
    const w = fixed([50, 24], 93);
    const fn = () => {
      const vs = [tf.variable(x()), tf.variable(g()), tf.variable(b())];
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layerNorm(vs[0] as tf.Tensor2D, vs[1], vs[2], 1e-5), w())) as tf.Scalar, vs);
      const out = [value, layerNorm(vs[0] as tf.Tensor2D, vs[1], vs[2], 1e-5), ...vs.map((v) => grads[v.name])];
      tf.dispose(vs);
      return out;
    };
    const before = { ...fusedCalls };
    assertBlasParity('layerNorm', fn, 0);
    assert.equal(fusedCalls.layerNorm - before.layerNorm, 2, 'forward in the addon (twice: under the tape and plain)');
    assert.equal(fusedCalls.layerNormGrad - before.layerNormGrad, 1, 'one backward kernel for x, g and b');
    applyWasmPatches({ blas: null });
    tf.tidy(() => assert.equal(fusedLayerNorm(x() as tf.Tensor2D, g(), b(), 1e-5), null, 'plain wasm: no fused LayerNorm'));
  });

  test('GELU and the linear layer\'s bias gradient: one kernel each way, within 1e-4 of the unfused ops (tails and NaN included)', () => {
    const xs = new Float32Array(randn(40 * 64, 95, 3));
    xs.set([0, -0, 50, -50, 100, -100, 1e-30, NaN], 0);
    const dyv = fixed([40, 64], 96);
    const w = fixed([64, 32], 97, 0.2);
    const bias = fixed([32], 98);
    const fn = () => {
      const vs = [tf.variable(tf.tensor(xs, [40, 64])), tf.variable(w()), tf.variable(bias())];
      const f = () => tf.sum(tf.mul(linear(gelu(vs[0]) as tf.Tensor2D, vs[1] as tf.Tensor2D, vs[2] as tf.Tensor1D), tf.slice(dyv(), [0, 0], [40, 32]))) as tf.Scalar;
      const { value, grads } = tf.variableGrads(f, vs);
      const out = [value, gelu(vs[0]), ...vs.map((v) => grads[v.name])];
      tf.dispose(vs);
      return out;
    };
    const ref = runWith(false, fn);
    const before = { ...fusedCalls };
    const got = runWith(true, fn);
    assert.equal(fusedCalls.gelu - before.gelu, 2, 'forward in the addon');
    assert.equal(fusedCalls.geluGrad - before.geluGrad, 1, 'backward in the addon');
    assert.ok(fusedCalls.sumLeading - before.sumLeading >= 1, 'bias gradient as a column sum');
    // The NaN entry gives NaN in the activation and its gradient on both paths; compare the rest.
    for (let i = 0; i < ref.values.length; i++) {
      const r = ref.values[i].map((v, j) => (i === 1 || i === 2) && j === 7 ? 0 : v);
      const g = got.values[i].map((v, j) => (i === 1 || i === 2) && j === 7 ? 0 : v);
      if (i === 1 || i === 2) assert.ok(Number.isNaN(got.values[i][7]) && Number.isNaN(ref.values[i][7]), `output ${i}: NaN stays NaN`);
      if (i === 0 || i > 2) continue; // the loss and the weight/bias gradients see the NaN row: NaN on both paths
      const e = relErr(g, r);
      assert.ok(e <= TOL, `gelu output ${i}: relative error ${e}`);
    }
    // Tails: gelu(x) → x for large x and → 0 for very negative x (σ's exp argument is clamped at ±87).
    for (const [k, v] of [[50, 50], [-50, 0], [100, 100], [-100, 0]]) {
      const at = Array.from(xs.slice(0, 8)).indexOf(k);
      assert.ok(Math.abs(got.values[1][at] - v) < 1e-30, `gelu(${k}) = ${got.values[1][at]}`);
    }
    applyWasmPatches({ blas: null });
    tf.tidy(() => assert.equal(fusedGelu(tf.tensor([1, 2])), null, 'plain wasm: no fused GELU'));
  });

  test('Sum and Mean gradients broadcast through the addon, with no Tile', () => {
    const x = fixed([32, 48], 94);
    const before = fusedCalls.broadcast;
    const got = runWith(true, () => [tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(t, -1, true), tf.sum(t, 0))))(x())]).values;
    const ref = runWith(false, () => [tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.mean(t, -1, true), tf.sum(t, 0))))(x())]).values;
    assert.ok(fusedCalls.broadcast - before >= 2, 'the Mean and Sum gradients used the addon');
    assert.ok(relErr(got[0], ref[0]) <= TOL);
  });

  test('bias Add goes through the addon for large row broadcasts only', () => {
    const big = fixed([64, 128], 86);
    const row = fixed([128], 87);
    const before = fusedCalls.addRow;
    const got = runWith(true, () => [tf.add(big(), row()), tf.add(row(), big()), tf.add(fixed([4, 128], 88)(), row())]).values;
    assert.equal(fusedCalls.addRow - before, 2, 'two large bias adds, the small one stays on the stock kernel');
    assert.deepEqual(bits(got), bits(runWith(false, () => [tf.add(big(), row()), tf.add(row(), big()), tf.add(fixed([4, 128], 88)(), row())]).values));
  });

  test('the registry gets its own gradients and kernels back when BLAS is off', () => {
    applyWasmPatches({ blas: null });
    const stock = ['Relu', 'Sum', 'Mean'].map((k) => tf.getGradient(k));
    applyWasmPatches({ blas: counting });
    const ours = ['Relu', 'Sum', 'Mean'].map((k) => tf.getGradient(k));
    ours.forEach((g, i) => assert.notEqual(g, stock[i], 'replaced while BLAS is on'));
    assert.ok(tf.getKernel('EfftrainSoftmaxCE', 'wasm'));
    applyWasmPatches({ blas: null });
    ['Relu', 'Sum', 'Mean'].forEach((k, i) => assert.equal(tf.getGradient(k), stock[i], `${k}: tfjs's gradient restored`));
    assert.equal(tf.getKernel('EfftrainSoftmaxCE', 'wasm'), undefined);
    assert.equal(tf.getGradient('EfftrainSoftmaxCE'), undefined);
  });

  test('bench MLP steps with the fused loss keep tensor and data-id counts flat', () => {
    applyWasmPatches({ blas: counting });
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [64], units: 96, activation: 'relu' }), tf.layers.dense({ units: 10 })] });
    const x = tf.tensor(randn(128 * 64, 89), [128, 64]);
    const y = tf.oneHot(tf.tensor1d(Array.from({ length: 128 }, (_, i) => i % 10), 'int32'), 10);
    const trainer = new Trainer({ params: model.trainableWeights.map((w) => w.read() as tf.Variable), optimizer: new AdamW(), schedule: constant(1e-3) });
    const step = () => trainer.trainStep(() => softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor));
    step();
    const n0 = tf.memory().numTensors;
    const d0 = tf.engine().backend.numDataIds();
    const losses = [0, 1, 2, 3].map(step);
    assert.equal(tf.memory().numTensors, n0, 'tensor count flat');
    assert.equal(tf.engine().backend.numDataIds(), d0, 'data ids flat');
    assert.ok(losses[3] < losses[0], `the loss falls: ${losses.join(', ')}`);
    trainer.optimizer.dispose();
    model.dispose();
    tf.dispose([x, y]);
  });
});

describe('OpenBLAS threads across worker threads', () => {
  test('blasThreadsForRuns: 1 unless EFFTRAIN_BLAS_THREADS asks, then capped at cores / workers', () => {
    const saved = process.env.EFFTRAIN_BLAS_THREADS;
    delete process.env.EFFTRAIN_BLAS_THREADS;
    try {
      // The default never follows the number of runs: --workers and --resume must not change numbers.
      for (const [w, c] of [[1, 2], [2, 2], [1, 16], [4, 16]]) assert.equal(blasThreadsForRuns(w, c), 1);
      process.env.EFFTRAIN_BLAS_THREADS = '2';
      assert.equal(blasThreadsForRuns(1, 2), 2);
      assert.equal(blasThreadsForRuns(2, 2), 1, 'two workers on two cores: no oversubscription');
      assert.equal(blasThreadsForRuns(2, 16), 2);
      process.env.EFFTRAIN_BLAS_THREADS = '1';
      assert.equal(blasThreadsForRuns(1, 2), 1);
    } finally {
      if (saved === undefined) delete process.env.EFFTRAIN_BLAS_THREADS;
      else process.env.EFFTRAIN_BLAS_THREADS = saved;
    }
  });

  // Worker threads load the addon, run 1- and 2-thread products concurrently and exit, while the
  // main thread forks child processes. Before the addon's lock, a fork during another thread's
  // 2-thread product deadlocked inside OpenBLAS's fork handler (the child is killed at 60 s then).
  test('concurrent products, thread-count changes, forks and worker exits: no hang or crash, stable results', { skip }, () => {
    const script = join(tempDir('efftrain-blas-stress-'), 'stress.mjs');
    writeFileSync(
      script,
      `import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
const path = ${JSON.stringify(status.path)};
function work(id, iters) {
  const a = createRequire(import.meta.url)(path);
  const n = 200 + 8 * id;
  const heap = new ArrayBuffer(3 * n * n * 4);
  const f = new Float32Array(heap);
  for (let i = 0; i < 2 * n * n; i++) f[i] = ((i * 7919) % 13) - 6;
  const ref = [];
  for (let it = 0; it < iters; it++) {
    const threads = 1 + ((it + id) % 2);
    a.sgemm(heap, false, false, n, n, n, 0, n * n * 4, 2 * n * n * 4, 1, 0, 0, 0, 0, threads);
    const c = f.slice(2 * n * n);
    if (it < 2) ref.push(c);
    else if (c.some((v, i) => v !== ref[it % 2][i])) throw new Error('worker ' + id + ': product changed at call ' + it);
  }
}
if (isMainThread) {
  for (let round = 0; round < 2; round++) {
    const done = [0, 1, 2].map((id) => new Promise((res, rej) => {
      const w = new Worker(new URL(import.meta.url), { workerData: { id } });
      w.on('error', rej);
      w.on('exit', (code) => (code === 0 ? res() : rej(new Error('worker exit ' + code))));
    }));
    for (let i = 0; i < 6; i++) spawnSync('sh', ['-c', ':']);
    work(9, 10);
    await Promise.all(done);
  }
  console.log('stress ok');
} else work(workerData.id, 40);
`,
    );
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, null, `killed by ${r.signal} (hang?): ${r.stderr}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /stress ok/);
  });
});

describe('fallback without the addon', () => {
  const backendJs = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'engine', 'backend.js');
  /** initEngine in a fresh process with `env` added; prints EngineInfo (or the error) as JSON. */
  const probe = (choice: string, env: Record<string, string>) => {
    const code = `import(${JSON.stringify(backendJs)}).then(async (m) => {
      try { const i = await m.initEngine({ backend: ${JSON.stringify(choice)} }); console.log(JSON.stringify({ engine: i.engine, blas: i.blas, line: m.engineLine(i) })); }
      catch (e) { console.log(JSON.stringify({ error: e.message })); }
    })`;
    // The child decides from `env` alone (the suite itself may run under EFFTRAIN_BLAS=0).
    const base = { ...process.env };
    delete base.EFFTRAIN_BLAS;
    delete base.EFFTRAIN_BLAS_ADDON;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...base, ...env } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };

  test('EFFTRAIN_BLAS=0: auto runs plain wasm and says why; wasm-blas is a clear error', () => {
    const auto = probe('auto', { EFFTRAIN_BLAS: '0' });
    assert.equal(auto.engine, 'wasm');
    assert.match(auto.line, /BLAS off: EFFTRAIN_BLAS=0/);
    const forced = probe('wasm-blas', { EFFTRAIN_BLAS: '0' });
    assert.match(forced.error, /needs the OpenBLAS addon: EFFTRAIN_BLAS=0/);
  });

  test('a missing addon file falls back with the build hint', () => {
    const r = probe('auto', { EFFTRAIN_BLAS_ADDON: '/nonexistent/efftrain_blas.node' });
    assert.equal(r.engine, 'wasm');
    assert.match(r.line, /addon not built \(run scripts\/build-native\.sh/);
  });

  test('a broken addon file falls back with the loader error', () => {
    const bad = join(tempDir('efftrain-blas-'), 'broken.node');
    writeFileSync(bad, 'not a shared object');
    const r = probe('auto', { EFFTRAIN_BLAS_ADDON: bad });
    assert.equal(r.engine, 'wasm');
    assert.match(r.line, /addon failed to load/);
  });

  test('an addon built from older sources (no or another contract version) is refused with the rebuild hint', () => {
    const dir = tempDir('efftrain-blas-');
    for (const [name, body] of [['old.cjs', ''], ['other.cjs', 'exports.abi = 1;']]) {
      const stale = join(dir, name);
      writeFileSync(stale, `${body}\nexports.config = () => 'OpenBLAS stale';\nexports.sgemm = () => {};\n`);
      const r = probe('auto', { EFFTRAIN_BLAS_ADDON: stale });
      assert.equal(r.engine, 'wasm');
      assert.match(r.line, /built from older sources \(contract 1, need \d+\): re-run scripts\/build-native\.sh/);
    }
  });

  test('--backend wasm never uses BLAS; auto uses it when the addon is built', { skip }, () => {
    const plain = probe('wasm', {});
    assert.equal(plain.engine, 'wasm');
    assert.match(plain.line, /BLAS off: not requested/);
    assert.equal(probe('auto', {}).engine, 'wasm+blas');
  });
});
