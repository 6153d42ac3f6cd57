/**
 * `efftrain bench shift-inference`: images/s of the multiplication-free `ShiftInferenceEngine` (plain
 * TypeScript, int32 shift-and-add in the shift layers, float64 in the full-precision stem/head) against
 * tfjs float inference of the same network on wasm, in one process.
 *
 * Model: the `s3-shift` experiment's CNN (28×28×1 → FP conv 3×3/2 ×16 → BN/ReLU → S3 3-bit conv 3×3/2 ×32 →
 * BN/ReLU → S3 3-bit conv 3×3/2 ×64 → BN/ReLU → flatten → FP dense 10) at its seeded RANDOM initialisation
 * (no training: BN moving statistics are the identity, about half of the S3 weights are zero — the S3
 * sparse latents start at N(0, 2/n)); the zero fraction is reported because the engine's cost scales with
 * the number of non-zero weights. Inputs: the first `batch` Fashion-MNIST test images when the data set is
 * installed, else uniform noise in [0, 1].
 *
 * Cases (msPerStep = milliseconds per batch, plus imagesPerSec):
 * - `shift-inference/engine`: `ShiftInferenceEngine.logits` on the batch (built from the packed bytes) —
 *   the batched native path (native/shift.c) when the shift addon loads, else the TypeScript path.
 * - `shift-inference/engine-ts`: the same engine forced onto its per-sample TypeScript path (only when
 *   the native path ran; the two must agree bit for bit, reported as `bitIdenticalToTypeScript`).
 * - `shift-inference/tfjs-wasm`: a plain tfjs model with the effective weights baked into float Conv2D
 *   layers (how the same network would be deployed with tfjs), `model.apply` in inference mode + reading
 *   the logits, on the wasm backend.
 * - `shift-inference/tfjs-wasm-shiftlayers`: the training model itself (ShiftConv2D layers recompute the
 *   effective kernel from the latents on every call).
 * Argmax agreement between the engine and both tfjs models on the batch is reported as well.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FASHION_MNIST_DIR, loadImageDataset } from '../data/image-dataset.js';
import { applyWasmPatches } from '../engine/wasm-patches.js';
import { shiftAddonStatus } from '../engine/shift-addon.js';
import { Rng } from '../engine/rng.js';
import { parseS3Method } from '../experiments/s3-shift/arms.js';
import { ShiftInferenceEngine, ShiftLayerBase, argmaxRows, buildShiftCnn, exportShiftModel, snapshotQuantized, zeroFraction } from '../methods/s3/index.js';
import type { Bench, BenchCase, BenchResult } from './types.js';

const CHANNELS = [16, 32, 64];

/** Copies `shiftModel`'s weights into the architecture-identical float model (effective shift kernels baked in). */
export function bakeFloatModel(shiftModel: tf.LayersModel, floatModel: tf.LayersModel): void {
  if (shiftModel.layers.length !== floatModel.layers.length) throw new Error('bakeFloatModel: models differ in depth');
  shiftModel.layers.forEach((src, i) => {
    const dst = floatModel.layers[i];
    if (src instanceof ShiftLayerBase) {
      const k = src.discreteWeights();
      const w = tf.tensor(src.effectiveWeights(), k.shape);
      dst.setWeights(src.useBias ? [w, tf.tensor(src.biasValues()!)] : [w]);
      w.dispose();
    } else if (src.getWeights().length) dst.setWeights(src.getWeights());
  });
}

/** True when two float32 arrays hold the same bit patterns. */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.every((v, i) => v === ub[i]);
}

function inputs(batch: number, log: (l: string) => void): { x: Float32Array; source: string } {
  if (existsSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')) || existsSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte'))) {
    try {
      const ds = loadImageDataset(FASHION_MNIST_DIR);
      if (ds.test.height === 28 && ds.test.width === 28 && ds.test.n >= batch) {
        return { x: ds.test.images.slice(0, batch * 784), source: `Fashion-MNIST test images 0..${batch - 1}` };
      }
    } catch (e) {
      log(`(could not load Fashion-MNIST: ${(e as Error).message}; using noise)`);
    }
  }
  const rng = new Rng(7);
  const x = new Float32Array(batch * 784);
  for (let i = 0; i < x.length; i++) x[i] = rng.next();
  return { x, source: 'uniform noise in [0, 1]' };
}

/**
 * Times several functions (one batch per call) in interleaved rounds — f0, f1, f2, f0, f1, … — so that
 * load from other processes hits every case alike. `warmup` untimed rounds, then at least `min` rounds
 * and until `budgetMs` of total time (or `max` rounds).
 */
function timeInterleaved(fns: (() => void)[], plan: { warmup: number; min: number; max: number; budgetMs: number }): { ms: number; reps: number }[] {
  for (let i = 0; i < plan.warmup; i++) for (const f of fns) f();
  const total = fns.map(() => 0);
  let reps = 0;
  const t0 = performance.now();
  while (reps < plan.max && (reps < plan.min || performance.now() - t0 < plan.budgetMs)) {
    fns.forEach((f, i) => {
      const t = performance.now();
      f();
      total[i] += performance.now() - t;
    });
    reps++;
  }
  return total.map((t) => ({ ms: t / reps, reps }));
}

export const shiftInferenceBench: Bench = {
  name: 'shift-inference',
  description: 'multiplication-free ShiftInferenceEngine (native addon, TypeScript fallback) vs tfjs float inference (wasm) of the same S3 3-bit CNN, images/s',
  async run(opts: { quick: boolean; log: (line: string) => void }): Promise<BenchResult> {
    const { quick, log } = opts;
    const previous = tf.getBackend();
    if (previous !== 'wasm') {
      if (!(await tf.setBackend('wasm'))) throw new Error('shift-inference bench: wasm backend failed to initialise');
      await tf.ready();
      applyWasmPatches();
    }
    const batch = 256;
    const plan = quick ? { warmup: 1, min: 1, max: 3, budgetMs: 1000 } : { warmup: 1, min: 5, max: 100, budgetMs: 20000 };
    const rng = new Rng(1234);
    const dims = { height: 28, width: 28, numClasses: 10, channels: CHANNELS, head: 'flatten' as const };
    const shiftModel = buildShiftCnn({ ...dims, method: parseS3Method('s3-3bit') }, rng);
    const floatModel = buildShiftCnn({ ...dims, method: parseS3Method('fp') }, new Rng(1));
    const xt: tf.Tensor4D[] = [];
    try {
      bakeFloatModel(shiftModel, floatModel);
      const zeroFrac = zeroFraction(snapshotQuantized(shiftModel));
      const bytes = exportShiftModel(shiftModel);
      const engine = new ShiftInferenceEngine(bytes);
      const engineTs = engine.backend === 'native' ? new ShiftInferenceEngine(bytes, { native: false }) : null;
      const engineBackend = engine.backend === 'native' ? `native addon (${shiftAddonStatus().config})` : 'TypeScript';
      const cost = engine.costPerSample();
      const { x, source } = inputs(batch, log);
      const xTensor = tf.tensor4d(x, [batch, 28, 28, 1]);
      xt.push(xTensor);
      log(`shift-inference bench (${quick ? 'quick' : 'full'}): batch ${batch}, inputs: ${source}; model: s3-3bit CNN [${CHANNELS.join(', ')}] at random init (zero fraction ${(100 * zeroFrac).toFixed(1)}%), export ${bytes.length} bytes`);
      log(`engine cost per image: ${cost.shiftAdds} int adds, ${cost.shifts} shifts, ${cost.floatMacs} float MACs (FP stem/head/BN); backend ${tf.getBackend()}`);
      log(engine.backend === 'native' ? `shift engine: ${engineBackend}` : engine.backendReason);

      const tfLogitsOf = (m: tf.LayersModel): Float32Array => {
        const y = tf.tidy(() => m.apply(xTensor, { training: false }) as tf.Tensor);
        const v = y.dataSync() as Float32Array;
        y.dispose();
        return v;
      };
      let enLogits: Float32Array = new Float32Array(0);
      let floatLogits: Float32Array = new Float32Array(0);
      let shiftLogits: Float32Array = new Float32Array(0);
      let tsLogits: Float32Array = new Float32Array(0);
      tfLogitsOf(floatModel); // extra warm-up of the wasm kernels
      tfLogitsOf(shiftModel);
      const fns = [() => void (enLogits = engine.logits(x, batch)), () => void (floatLogits = tfLogitsOf(floatModel)), () => void (shiftLogits = tfLogitsOf(shiftModel))];
      if (engineTs) fns.push(() => void (tsLogits = engineTs.logits(x, batch)));
      const [en, fl, sl, ts] = timeInterleaved(fns, plan);
      const bitIdentical = engineTs ? sameBits(enLogits, tsLogits) : null;

      const pe = argmaxRows(enLogits, batch, 10);
      const pf = argmaxRows(floatLogits, batch, 10);
      const ps = argmaxRows(shiftLogits, batch, 10);
      let agreeF = 0;
      let agreeS = 0;
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < batch; i++) {
        if (pe[i] === pf[i]) agreeF++;
        if (pe[i] === ps[i]) agreeS++;
      }
      for (let i = 0; i < enLogits.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(enLogits[i] - floatLogits[i]));
        maxAbs = Math.max(maxAbs, Math.abs(floatLogits[i]));
      }
      const mk = (name: string, t: { ms: number; reps: number }, extra: Record<string, unknown> = {}): BenchCase => ({
        name,
        msPerStep: t.ms,
        imagesPerSec: (1000 * batch) / t.ms,
        batch,
        reps: t.reps,
        ...extra,
      });
      const cases: BenchCase[] = [
        mk('shift-inference/engine', en, { backend: engineBackend, argmaxAgreementWithTfjs: agreeF / batch, ...(bitIdentical === null ? { fallbackReason: engine.backendReason } : { bitIdenticalToTypeScript: bitIdentical }) }),
        mk('shift-inference/tfjs-wasm', fl, { backend: 'wasm', model: 'float Conv2D with baked effective weights' }),
        mk('shift-inference/tfjs-wasm-shiftlayers', sl, { backend: 'wasm', model: 'ShiftConv2D layers (kernel recomputed from latents per call)', argmaxAgreementWithEngine: agreeS / batch }),
      ];
      if (ts) cases.push(mk('shift-inference/engine-ts', ts, { backend: 'TypeScript (per sample, int32 shift-add)' }));
      log(`${'case'.padEnd(40)} ${'ms/batch'.padStart(10)} ${'images/s'.padStart(10)} ${'reps'.padStart(5)}`);
      for (const c of cases) log(`${c.name.padEnd(40)} ${c.msPerStep.toFixed(1).padStart(10)} ${(c.imagesPerSec as number).toFixed(0).padStart(10)} ${String(c.reps).padStart(5)}`);
      const speedup = fl.ms / en.ms;
      log(`engine vs tfjs-wasm (baked float): ${speedup >= 1 ? `engine ${speedup.toFixed(2)}x faster` : `tfjs-wasm ${(1 / speedup).toFixed(2)}x faster`}`);
      if (ts) log(`native vs TypeScript engine: ${(ts.ms / en.ms).toFixed(2)}x faster; logits bit-identical: ${bitIdentical ? 'yes' : 'NO'}`);
      log(`argmax agreement engine vs tfjs float: ${(100 * agreeF / batch).toFixed(2)}%, vs tfjs shift layers: ${(100 * agreeS / batch).toFixed(2)}%; max |Δlogit| ${maxDiff.toExponential(2)} (max |logit| ${maxAbs.toFixed(2)})`);
      return {
        cases,
        quick,
        batch,
        inputs: source,
        model: { architecture: `s3-3bit CNN, channels ${CHANNELS.join('/')}, flatten head`, init: 'seeded random init, untrained', zeroFraction: zeroFrac, exportBytes: bytes.length, costPerImage: cost },
        engineVsTfjsWasm: speedup,
        engineBackend,
        ...(ts ? { nativeVsTypeScript: ts.ms / en.ms, bitIdenticalToTypeScript: bitIdentical } : {}),
        agreement: { engineVsTfjsFloat: agreeF / batch, engineVsTfjsShiftLayers: agreeS / batch, maxAbsLogitDiff: maxDiff },
      };
    } finally {
      tf.dispose(xt);
      shiftModel.dispose();
      floatModel.dispose();
      if (previous && previous !== tf.getBackend()) await tf.setBackend(previous);
    }
  },
};
