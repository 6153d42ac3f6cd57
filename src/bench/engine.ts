/**
 * `efftrain bench engine`: training-step speed of the tfjs backends in one process.
 *
 * Two workloads, each timed on wasm with stock kernels, wasm with our kernel patches
 * (src/engine/wasm-patches.ts), cpu, and tfjs-node when it is importable (plus, for the CNN,
 * wasm with only the missing kernels filled in, `cnn/wasm-bridge`):
 * - mlp: batch 256, 784→512→10 (Dense+ReLU, Dense), softmax cross-entropy, Adam.
 * - cnn: batch 64, 28×28×1 → conv3×3×16+ReLU → maxpool2 → conv3×3×32+ReLU → maxpool2 → dense 10, same loss and optimizer.
 *
 * One step = `optimizer.minimize(loss, true, vars)` inside tf.tidy, then reading the loss (so
 * asynchronous backends are timed to completion). A case that throws (e.g. cnn on stock wasm,
 * which lacks Conv2DBackpropFilter) is recorded with msPerStep NaN and an `error` string.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../engine/rng.js';
import { applyWasmPatches } from '../engine/wasm-patches.js';
import { tfjsNodeAvailable } from '../engine/backend.js';
import type { Bench, BenchCase, BenchResult } from './types.js';

/** A workload: model factory, fixed batch, and its analytic matmul/conv FLOPs per training step. */
interface Workload {
  name: 'mlp' | 'cnn';
  batch: number;
  inputShape: number[];
  classes: number;
  build(seed: number): tf.Sequential;
  flopsPerStep: number;
}

/** One backend configuration to time. */
interface Variant {
  suffix: 'wasm-stock' | 'wasm-bridge' | 'wasm' | 'cpu' | 'node';
  backend: string;
  /** applyWasmPatches options for wasm variants; null for other backends. */
  patches: { enabled: boolean; matmul?: boolean } | null;
  /** Restrict the variant to some workloads. */
  only?: Workload['name'];
}

/**
 * FLOPs of one training step for a chain of matmul/conv layers, counting 2 per multiply-add:
 * forward (F = Σ f_l), weight gradients (Σ f_l) and input gradients for every layer but the
 * first (its input is data, so tfjs prunes that product from the tape). Roughly 3·F; pooling,
 * activations, loss and the optimizer update are not counted.
 */
function trainFlops(layerMacs: number[]): number {
  const f = layerMacs.map((m) => 2 * m);
  const fwd = f.reduce((a, b) => a + b, 0);
  return fwd + fwd + (fwd - f[0]);
}

const MLP: Workload = {
  name: 'mlp',
  batch: 256,
  inputShape: [784],
  classes: 10,
  build: (seed) =>
    tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [784], units: 512, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
        tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
      ],
    }),
  flopsPerStep: trainFlops([256 * 784 * 512, 256 * 512 * 10]),
};

const CNN: Workload = {
  name: 'cnn',
  batch: 64,
  inputShape: [28, 28, 1],
  classes: 10,
  build: (seed) =>
    tf.sequential({
      layers: [
        tf.layers.conv2d({
          inputShape: [28, 28, 1],
          filters: 16,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: tf.initializers.glorotUniform({ seed }),
        }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.conv2d({
          filters: 32,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
        }),
        tf.layers.maxPooling2d({ poolSize: 2 }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 2 }) }),
      ],
    }),
  // conv1: 28·28 outputs × 16 filters × 3·3·1; conv2: 14·14 × 32 × 3·3·16; dense: 7·7·32 → 10.
  flopsPerStep: trainFlops([64 * 28 * 28 * 16 * 9 * 1, 64 * 14 * 14 * 32 * 9 * 16, 64 * 7 * 7 * 32 * 10]),
};

/** Fixed synthetic batch (inputs ~ N(0,1), uniform labels) so every backend sees the same data. */
function makeBatch(w: Workload, seed: number): { x: Float32Array; y: Float32Array } {
  const rng = new Rng(seed);
  const n = w.batch * w.inputShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.normal();
  const y = new Float32Array(w.batch * w.classes);
  for (let i = 0; i < w.batch; i++) y[i * w.classes + rng.int(w.classes)] = 1;
  return { x, y };
}

interface StepPlan {
  /** Untimed steps first (at least 1: the first step also reports firstLoss). */
  warmup: number;
  minSteps: number;
  maxSteps: number;
  /** Stop timing once minSteps are done and this much time has passed. */
  budgetMs: number;
}

/** What timing one case measures. */
interface StepTiming {
  msPerStep: number;
  gflops: number;
  steps: number;
  /** Loss of the very first step: same init and data everywhere, so comparable across backends. */
  firstLoss: number;
  /** Loss after the last timed step. */
  loss: number;
  /** Change in tf.memory().numTensors over the timed steps (0 = no leak). */
  tensorsDelta: number;
}

/** Times training steps of `w` on the current backend; throws whatever the step throws. */
function timeSteps(w: Workload, data: { x: Float32Array; y: Float32Array }, plan: StepPlan): StepTiming {
  const model = w.build(1234);
  const optimizer = tf.train.adam(1e-3);
  const x = tf.tensor(data.x, [w.batch, ...w.inputShape]);
  const y = tf.tensor2d(data.y, [w.batch, w.classes]);
  const vars = model.trainableWeights.map((v) => v.read() as tf.Variable);
  const step = (): number => {
    // With returnCost = true, minimize returns the loss scalar (never null).
    const cost = tf.tidy(
      () =>
        optimizer.minimize(
          () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
          true,
          vars,
        ) as tf.Scalar,
    );
    // Reading the loss forces completion on asynchronous backends; it is one float.
    const loss = cost.dataSync()[0];
    cost.dispose();
    return loss;
  };
  try {
    const firstLoss = step();
    for (let i = 1; i < plan.warmup; i++) step();
    const tensorsBefore = tf.memory().numTensors;
    let steps = 0;
    let loss = NaN;
    const t0 = performance.now();
    let elapsed = 0;
    while (steps < plan.maxSteps && (steps < plan.minSteps || elapsed < plan.budgetMs)) {
      loss = step();
      steps++;
      elapsed = performance.now() - t0;
    }
    const msPerStep = elapsed / steps;
    return {
      msPerStep,
      gflops: w.flopsPerStep / (msPerStep * 1e6),
      steps,
      firstLoss,
      loss,
      tensorsDelta: tf.memory().numTensors - tensorsBefore,
    };
  } finally {
    optimizer.dispose();
    model.dispose();
    tf.dispose([x, y]);
  }
}

/** Switches backend and wasm patch state; false when the backend cannot be initialised. */
async function useVariant(v: Variant): Promise<boolean> {
  if (!(await tf.setBackend(v.backend))) return false;
  await tf.ready();
  if (v.patches !== null) applyWasmPatches(v.patches);
  return true;
}

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

/** See the module comment; case names are `<workload>/<variant>`, e.g. `mlp/wasm-stock`. */
export const engineBench: Bench = {
  name: 'engine',
  description: 'training-step time of an MLP and a small CNN on wasm (stock vs patched), cpu, and tfjs-node if present',
  async run(opts: { quick: boolean; log: (line: string) => void }): Promise<BenchResult> {
    const { quick, log } = opts;
    const previousBackend = tf.getBackend();
    const variants: Variant[] = [
      { suffix: 'wasm-stock', backend: 'wasm', patches: { enabled: false } },
      // Missing kernels filled but stock matmul/conv-input/max-pool gradients: shows what the
      // kernel replacements add for the CNN (for the MLP this is the same as stock).
      { suffix: 'wasm-bridge', backend: 'wasm', patches: { enabled: true, matmul: false }, only: 'cnn' },
      { suffix: 'wasm', backend: 'wasm', patches: { enabled: true } },
      { suffix: 'cpu', backend: 'cpu', patches: null },
    ];
    const nodeOk = await tfjsNodeAvailable();
    if (nodeOk) variants.push({ suffix: 'node', backend: 'tensorflow', patches: null });
    const plan: StepPlan = quick
      ? { warmup: 1, minSteps: 1, maxSteps: 5, budgetMs: 2000 }
      : { warmup: 2, minSteps: 3, maxSteps: 30, budgetMs: 8000 };

    const cases: BenchCase[] = [];
    log(`engine bench (${quick ? 'quick' : 'full'}): tfjs ${tf.version.tfjs}, tfjs-node ${nodeOk ? 'present' : 'absent'}`);
    log(`${'case'.padEnd(16)} ${'ms/step'.padStart(10)} ${'GFLOP/s'.padStart(8)} ${'steps'.padStart(5)} ${'loss@1'.padStart(8)}  note`);
    try {
      for (const w of [MLP, CNN]) {
        const data = makeBatch(w, w.name === 'mlp' ? 1 : 2);
        for (const v of variants) {
          if (v.only !== undefined && v.only !== w.name) continue;
          const name = `${w.name}/${v.suffix}`;
          let c: BenchCase;
          try {
            if (!(await useVariant(v))) throw new Error(`backend ${v.backend} failed to initialise`);
            c = { name, backend: v.backend, ...timeSteps(w, data, plan) };
          } catch (e) {
            const msg = e instanceof Error ? e.message : String(e);
            c = { name, backend: v.backend, msPerStep: NaN, error: msg };
          }
          cases.push(c);
          const note = typeof c.error === 'string' ? `error: ${c.error}` : c.tensorsDelta ? `tensor delta ${String(c.tensorsDelta)}` : '';
          log(
            `${name.padEnd(16)} ${fmt(c.msPerStep, 1).padStart(10)} ${fmt(c.gflops ?? NaN, 2).padStart(8)} ${String(c.steps ?? '-').padStart(5)} ${fmt(
              typeof c.firstLoss === 'number' ? c.firstLoss : NaN,
              4,
            ).padStart(8)}  ${note}`,
          );
        }
      }
    } finally {
      // Leave the process as the toolkit expects it: wasm patches installed, backend as before.
      applyWasmPatches();
      if (previousBackend) await tf.setBackend(previousBackend);
    }

    const ms = new Map(cases.map((c) => [c.name, c.msPerStep]));
    const speedup: Record<string, number> = {};
    for (const w of ['mlp', 'cnn']) {
      for (const [fast, slow] of [
        ['wasm', 'wasm-stock'],
        ['wasm', 'wasm-bridge'],
        ['wasm', 'cpu'],
        ['node', 'wasm'],
      ]) {
        const f = ms.get(`${w}/${fast}`);
        const s = ms.get(`${w}/${slow}`);
        if (f !== undefined && s !== undefined && Number.isFinite(f) && Number.isFinite(s) && f > 0) {
          speedup[`${w}/${fast} vs ${w}/${slow}`] = Number((s / f).toFixed(2));
        }
      }
    }
    for (const [k, v] of Object.entries(speedup)) log(`speedup ${k}: ${v}x`);
    return { cases, speedup, flopsPerStep: { mlp: MLP.flopsPerStep, cnn: CNN.flopsPerStep }, quick };
  },
};
