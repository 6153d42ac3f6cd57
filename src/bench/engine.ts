/**
 * `efftrain bench engine`: training-step speed of the tfjs backends in one process.
 *
 * Workloads, each timed on wasm with stock kernels, wasm with our kernel patches
 * (src/engine/wasm-patches.ts), wasm + OpenBLAS with 1 thread (`wasm-blas`) and with every core
 * (`wasm-blas-mt`) when the addon is built, cpu, and tfjs-node when it is importable (plus, for the
 * CNN, wasm with only the missing kernels filled in, `cnn/wasm-bridge`):
 * - mlp: batch 256, 784→512→10 (Dense+ReLU, Dense), softmax cross-entropy, Adam through the Trainer.
 * - cnn: batch 64, 28×28×1 → conv3×3×16+ReLU → maxpool2 → conv3×3×32+ReLU → maxpool2 → dense 10, same loss and optimizer.
 * - lm: the TransformerLM (src/models/transformer.ts) at d = 256, 4 heads, 4 layers, d_ff 1024,
 *   4 × 256 = 1024 tokens per step, AdamW + clipping through the Trainer (the experiments' step);
 *   patched wasm and BLAS variants only (stock wasm and cpu take minutes per step).
 *
 * One step = `Trainer.trainStep` (variableGrads, optimizer update, loss read back, so asynchronous
 * backends are timed to completion) with efftrain's Adam/AdamW and, for the MLP and CNN, efftrain's
 * `softmaxCrossEntropy` (one fused kernel on wasm+blas, tfjs's ops elsewhere), as in every experiment. The wasm variants of a workload are timed in
 * interleaved rounds (median over rounds, per-round ratios in `roundRatios`); cpu and tfjs-node
 * one after another. A case that throws (e.g. cnn on stock wasm,
 * which lacks Conv2DBackpropFilter) is recorded with msPerStep NaN and an `error` string.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../engine/rng.js';
import { availableParallelism } from 'node:os';
import { applyWasmPatches } from '../engine/wasm-patches.js';
import { tfjsNodeAvailable } from '../engine/backend.js';
import { loadBlas } from '../engine/blas.js';
import { softmaxCrossEntropy } from '../engine/fused.js';
import { TransformerLM } from '../models/transformer.js';
import { AdamW, createOptimizer } from '../train/optimizers.js';
import { constant } from '../train/schedules.js';
import { Trainer, trainableVariables } from '../train/trainer.js';
import type { Bench, BenchCase, BenchResult } from './types.js';
import { median } from '../stats/index.js';

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
  suffix: 'wasm-stock' | 'wasm-bridge' | 'wasm' | 'wasm-blas' | 'wasm-blas-mt' | 'cpu' | 'node';
  backend: string;
  /** applyWasmPatches options for wasm variants; null for other backends. */
  patches: { enabled: boolean; matmul?: boolean; blasThreads?: number } | null;
  /** Run products through the OpenBLAS addon (wasm variants). */
  blas?: boolean;
  /** Restrict the variant to some workloads. */
  only?: string[];
}

/** The LM workload (see the module comment); not a tf.Sequential, so it has its own step. */
const LM = { name: 'lm', batch: 4, seqLen: 256, vocab: 80, dModel: 256, nHeads: 4, nLayers: 4, dFf: 1024 };
/** `--quick` times a smaller LM (d = 128, 2 layers, 256 tokens); bench.json records which (`lm`). */
const LM_QUICK = { ...LM, batch: 2, seqLen: 128, dModel: 128, nLayers: 2, dFf: 512 };
type LmSize = typeof LM;
/** Variants the LM runs on. */
const LM_VARIANTS = new Set(['wasm', 'wasm-blas', 'wasm-blas-mt', 'node']);

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

/** A ready-to-time training step: returns the loss; `dispose` frees the model and optimizer. */
interface Stepper {
  step(): number;
  dispose(): void;
  flopsPerStep: number;
}

/** Times `make()`'s steps on the current backend; throws whatever the step throws. */
function timeStepper(make: () => Stepper, plan: StepPlan): StepTiming {
  const s = make();
  try {
    const firstLoss = s.step();
    for (let i = 1; i < plan.warmup; i++) s.step();
    const tensorsBefore = tf.memory().numTensors;
    let steps = 0;
    let loss = NaN;
    const t0 = performance.now();
    let elapsed = 0;
    while (steps < plan.maxSteps && (steps < plan.minSteps || elapsed < plan.budgetMs)) {
      loss = s.step();
      steps++;
      elapsed = performance.now() - t0;
    }
    const msPerStep = elapsed / steps;
    return { msPerStep, gflops: s.flopsPerStep / (msPerStep * 1e6), steps, firstLoss, loss, tensorsDelta: tf.memory().numTensors - tensorsBefore };
  } finally {
    s.dispose();
  }
}

/** The LM training step: TransformerLM + AdamW + clipping through the Trainer, fixed random tokens. */
function lmStepper(LM: LmSize): Stepper {
  const rng = new Rng(3);
  const n = LM.batch * LM.seqLen;
  const x = tf.tensor2d(Int32Array.from({ length: n }, () => rng.int(LM.vocab)), [LM.batch, LM.seqLen], 'int32');
  const y = tf.tensor2d(Int32Array.from({ length: n }, () => rng.int(LM.vocab)), [LM.batch, LM.seqLen], 'int32');
  const model = new TransformerLM(
    { vocabSize: LM.vocab, contextLength: LM.seqLen, dModel: LM.dModel, nHeads: LM.nHeads, nLayers: LM.nLayers, dFf: LM.dFf, ffn: { kind: 'dense' } },
    1,
  );
  const trainer = new Trainer({ params: model.variables(), optimizer: new AdamW({ weightDecay: 0.1 }), clipNorm: 1 });
  const ctx = { training: true, rng: new Rng(1) };
  return {
    step: () => trainer.trainStep(() => model.loss(x, y, ctx)),
    dispose: () => {
      model.dispose();
      trainer.optimizer.dispose();
      tf.dispose([x, y]);
    },
    // Forward MACs per token (model.macsPerToken) × tokens × 2 FLOPs × 3 (forward + two gradients).
    flopsPerStep: 3 * 2 * model.macsPerToken() * n,
  };
}

/**
 * The MLP/CNN training step: tf.Sequential, softmax cross-entropy (src/engine/fused.ts), Adam (efftrain's AdamW with no
 * decay, lr 1e-3) through the Trainer — the step every experiment runs — on a fixed batch.
 */
function sequentialStepper(w: Workload, data: { x: Float32Array; y: Float32Array }): Stepper {
  const model = w.build(1234);
  const x = tf.tensor(data.x, [w.batch, ...w.inputShape]);
  const y = tf.tensor2d(data.y, [w.batch, w.classes]);
  const trainer = new Trainer({ params: trainableVariables(model), optimizer: createOptimizer('adam'), schedule: constant(1e-3) });
  return {
    step: () => trainer.trainStep(() => softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor)),
    dispose: () => {
      trainer.optimizer.dispose();
      model.dispose();
      tf.dispose([x, y]);
    },
    flopsPerStep: w.flopsPerStep,
  };
}


/**
 * Times the wasm variants of one workload in interleaved rounds: every variant gets its own model,
 * and each round runs `perRound` steps of every variant in turn, switching only the kernel patches.
 * A variant's ms/step is the median over rounds (`roundsMs` keeps them all), which keeps the
 * comparison fair when other processes share the CPU. A variant whose first step throws is
 * returned as its Error.
 */
async function timeInterleaved(vs: Variant[], make: () => Stepper, rounds: number, perRound: number, warmup: number): Promise<Map<Variant, (StepTiming & { roundsMs: number[] }) | Error>> {
  const out = new Map<Variant, (StepTiming & { roundsMs: number[] }) | Error>();
  const live: { v: Variant; s: Stepper; firstLoss: number; loss: number; ms: number[]; delta: number }[] = [];
  try {
    for (const v of vs) {
      let s: Stepper | null = null;
      try {
        if (!(await useVariant(v))) throw new Error(`backend ${v.backend} failed to initialise`);
        s = make();
        const firstLoss = s.step();
        for (let i = 1; i < warmup; i++) s.step();
        live.push({ v, s, firstLoss, loss: firstLoss, ms: [], delta: 0 });
      } catch (e) {
        s?.dispose();
        out.set(v, e instanceof Error ? e : new Error(String(e)));
      }
    }
    for (let r = 0; r < rounds; r++) {
      for (const l of live) {
        await useVariant(l.v);
        const n0 = tf.memory().numTensors;
        const t0 = performance.now();
        for (let i = 0; i < perRound; i++) l.loss = l.s.step();
        l.ms.push((performance.now() - t0) / perRound);
        l.delta += tf.memory().numTensors - n0;
      }
    }
  } finally {
    for (const l of live) l.s.dispose();
  }
  for (const l of live) {
    const ms = median(l.ms);
    out.set(l.v, { msPerStep: ms, gflops: l.s.flopsPerStep / (ms * 1e6), steps: rounds * perRound, firstLoss: l.firstLoss, loss: l.loss, tensorsDelta: l.delta, roundsMs: l.ms });
  }
  return out;
}

/** Switches backend and wasm patch state; false when the backend cannot be initialised. */
async function useVariant(v: Variant): Promise<boolean> {
  if (!(await tf.setBackend(v.backend))) return false;
  await tf.ready();
  if (v.patches !== null) applyWasmPatches({ ...v.patches, blas: v.blas ? loadBlas().addon : null });
  return true;
}

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

/** See the module comment; case names are `<workload>/<variant>`, e.g. `mlp/wasm-stock`. */
export const engineBench: Bench = {
  name: 'engine',
  description: 'training-step time of an MLP, a small CNN and a d=256 transformer LM on wasm (stock, patched, +OpenBLAS), cpu, and tfjs-node if present',
  async run(opts: { quick: boolean; log: (line: string) => void }): Promise<BenchResult> {
    const { quick, log } = opts;
    const previousBackend = tf.getBackend();
    const variants: Variant[] = [
      { suffix: 'wasm-stock', backend: 'wasm', patches: { enabled: false } },
      // Missing kernels filled but stock matmul/conv-input/max-pool gradients: shows what the
      // kernel replacements add for the CNN (for the MLP this is the same as stock).
      { suffix: 'wasm-bridge', backend: 'wasm', patches: { enabled: true, matmul: false }, only: ['cnn'] },
      { suffix: 'wasm', backend: 'wasm', patches: { enabled: true } },
      { suffix: 'cpu', backend: 'cpu', patches: null },
    ];
    const blas = loadBlas();
    if (blas.addon) {
      variants.push({ suffix: 'wasm-blas', backend: 'wasm', patches: { enabled: true, blasThreads: 1 }, blas: true });
      const cores = availableParallelism();
      if (cores > 1) variants.push({ suffix: 'wasm-blas-mt', backend: 'wasm', patches: { enabled: true, blasThreads: cores }, blas: true });
    }
    const nodeOk = await tfjsNodeAvailable();
    if (nodeOk) variants.push({ suffix: 'node', backend: 'tensorflow', patches: null });
    const previousBlas = applyWasmPatches().blas;
    const plan: StepPlan = quick
      ? { warmup: 1, minSteps: 1, maxSteps: 5, budgetMs: 2000 }
      : { warmup: 2, minSteps: 3, maxSteps: 30, budgetMs: 8000 };
    const lm = quick ? LM_QUICK : LM;
    const lmPlan: StepPlan = quick ? { warmup: 1, minSteps: 1, maxSteps: 2, budgetMs: 1000 } : { warmup: 1, minSteps: 3, maxSteps: 10, budgetMs: 8000 };

    const cases: BenchCase[] = [];
    log(`engine bench (${quick ? 'quick' : 'full'}): tfjs ${tf.version.tfjs}, tfjs-node ${nodeOk ? 'present' : 'absent'}, OpenBLAS addon ${blas.addon ? `present (${blas.status.config})` : `absent (${blas.status.reason})`}`);
    log(`${'case'.padEnd(16)} ${'ms/step'.padStart(10)} ${'GFLOP/s'.padStart(8)} ${'steps'.padStart(5)} ${'loss@1'.padStart(8)}  note`);
    try {
      for (const w of [MLP, CNN, LM]) {
        const data = w === LM ? null : makeBatch(w as Workload, w.name === 'mlp' ? 1 : 2);
        const make = (): Stepper => (data === null ? lmStepper(lm) : sequentialStepper(w as Workload, data));
        const mine = variants.filter((v) => (v.only === undefined || v.only.includes(w.name)) && (w !== LM || LM_VARIANTS.has(v.suffix)));
        // wasm variants: interleaved rounds in one set of models; other backends: one after another.
        const rounds = quick ? 1 : w === LM ? 4 : 5;
        const perRound = quick ? 1 : w === MLP ? 4 : w === CNN ? 2 : 1;
        const wasmTimings = await timeInterleaved(mine.filter((v) => v.backend === 'wasm'), make, rounds, perRound, quick ? 1 : 2);
        for (const v of mine) {
          const name = `${w.name}/${v.suffix}`;
          let c: BenchCase;
          try {
            let timing: StepTiming | Error | undefined = wasmTimings.get(v);
            if (timing === undefined) {
              if (!(await useVariant(v))) throw new Error(`backend ${v.backend} failed to initialise`);
              timing = timeStepper(make, data === null ? lmPlan : plan);
            }
            if (timing instanceof Error) throw timing;
            c = { name, backend: v.backend, blas: v.blas === true, blasThreads: v.blas ? v.patches?.blasThreads : undefined, ...timing };
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
      // Leave the process as the toolkit expects it: wasm patches installed (BLAS as before), backend as before.
      applyWasmPatches({ blas: previousBlas ? blas.addon : null });
      if (previousBackend) await tf.setBackend(previousBackend);
    }

    const ms = new Map(cases.map((c) => [c.name, c.msPerStep]));
    const speedup: Record<string, number> = {};
    for (const w of ['mlp', 'cnn', 'lm']) {
      for (const [fast, slow] of [
        ['wasm', 'wasm-stock'],
        ['wasm', 'wasm-bridge'],
        ['wasm', 'cpu'],
        ['wasm-blas', 'wasm'],
        ['wasm-blas-mt', 'wasm'],
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
    // Per-round ratios of the BLAS variants against patched wasm (interleaved rounds): the spread.
    const roundRatios: Record<string, number[]> = {};
    for (const w of ['mlp', 'cnn', 'lm']) {
      const base = cases.find((c) => c.name === `${w}/wasm`)?.roundsMs as number[] | undefined;
      for (const fast of ['wasm-blas', 'wasm-blas-mt']) {
        const f = cases.find((c) => c.name === `${w}/${fast}`)?.roundsMs as number[] | undefined;
        if (!base || !f || base.length !== f.length) continue;
        const r = base.map((b, i) => Number((b / f[i]).toFixed(2)));
        roundRatios[`${w}/${fast} vs ${w}/wasm`] = r;
        log(`per-round ${w}/${fast} vs ${w}/wasm: ${r.join(', ')}`);
      }
    }
    // The best engine per workload (what `--backend auto` would pick among those timed here).
    const best: Record<string, string> = {};
    for (const w of ['mlp', 'cnn', 'lm']) {
      const timed = cases.filter((c) => c.name.startsWith(`${w}/`) && Number.isFinite(c.msPerStep));
      if (timed.length) best[w] = timed.reduce((a, b) => (b.msPerStep < a.msPerStep ? b : a)).name;
    }
    log(`fastest: ${Object.values(best).join(', ')}`);
    return {
      cases,
      speedup,
      roundRatios,
      best,
      blas: blas.status,
      flopsPerStep: { mlp: MLP.flopsPerStep, cnn: CNN.flopsPerStep },
      lm,
      quick,
    };
  },
};
