// Training-step time of plain patched wasm against wasm + OpenBLAS in one process, by wall time and by process
// CPU time (less sensitive to other processes on the machine), in interleaved rounds.
// Usage: node scripts/engine-cpu-ratio.mjs mlp|lm [rounds=8] [stepsPerRound=5]   (after `npx tsc -p tsconfig.json`)
//   mlp: the bench MLP (batch 256, 784→512→10, softmax cross-entropy, Adam);
//   lm: the structured-ffn quick step (TransformerLM d=64, 2 layers, 4 heads, 16×64 tokens, AdamW + clip).
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../dist/engine/backend.js';
import { applyWasmPatches } from '../dist/engine/wasm-patches.js';
import { loadBlas } from '../dist/engine/blas.js';
import { softmaxCrossEntropy } from '../dist/engine/fused.js';
import { Rng } from '../dist/engine/rng.js';
import { TransformerLM } from '../dist/models/transformer.js';
import { AdamW, createOptimizer } from '../dist/train/optimizers.js';
import { constant } from '../dist/train/schedules.js';
import { Trainer, trainableVariables } from '../dist/train/trainer.js';

const [workload = 'mlp', roundsArg = '8', perArg = '5'] = process.argv.slice(2);
const rounds = Number(roundsArg);
const per = Number(perArg);
await initEngine({ backend: 'wasm' });
const blas = loadBlas();
if (!blas.addon) throw new Error(`the OpenBLAS addon is not available: ${blas.status.reason}`);

function mlp() {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [784], units: 512, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  const rng = new Rng(1);
  const x = tf.tensor2d(Float32Array.from({ length: 256 * 784 }, () => rng.normal()), [256, 784]);
  const y = tf.oneHot(tf.tensor1d(Int32Array.from({ length: 256 }, () => rng.int(10)), 'int32'), 10);
  const trainer = new Trainer({ params: trainableVariables(model), optimizer: createOptimizer('adam'), schedule: constant(1e-3) });
  return () => trainer.trainStep(() => softmaxCrossEntropy(y, model.apply(x, { training: true })));
}

function lm() {
  const [B, T] = [16, 64];
  const rng = new Rng(3);
  const ids = () => tf.tensor2d(Int32Array.from({ length: B * T }, () => rng.int(80)), [B, T], 'int32');
  const x = ids();
  const y = ids();
  const model = new TransformerLM({ vocabSize: 80, contextLength: T, dModel: 64, nHeads: 4, nLayers: 2, dFf: 256, ffn: { kind: 'dense' } }, 1);
  const trainer = new Trainer({ params: model.variables(), optimizer: new AdamW({ weightDecay: 0.1 }), clipNorm: 1 });
  const ctx = { training: true, rng: new Rng(1) };
  return () => trainer.trainStep(() => model.loss(x, y, ctx));
}

const make = workload === 'lm' ? lm : mlp;
const variants = [
  { name: 'wasm', addon: null },
  { name: 'wasm-blas', addon: blas.addon },
].map((v) => ({ ...v, step: null, wall: [], cpu: [], first: NaN }));
for (const v of variants) {
  applyWasmPatches({ blas: v.addon });
  v.step = make();
  v.first = v.step();
  v.step();
}
for (let r = 0; r < rounds; r++) {
  for (const v of variants) {
    applyWasmPatches({ blas: v.addon });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < per; i++) v.step();
    v.wall.push((performance.now() - t0) / per);
    const c = process.cpuUsage(c0);
    v.cpu.push((c.user + c.system) / 1000 / per);
  }
}
applyWasmPatches({ blas: null });
const median = (a) => {
  const s = [...a].sort((p, q) => p - q);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(`${workload}: ${blas.status.config}; ${rounds} rounds × ${per} steps`);
for (const v of variants) console.log(`${v.name.padEnd(10)} loss@1 ${v.first.toFixed(5)}  wall ${median(v.wall).toFixed(2)} ms/step  cpu ${median(v.cpu).toFixed(2)} ms/step`);
const [a, b] = variants;
console.log(`wasm-blas vs wasm: wall ${(median(a.wall) / median(b.wall)).toFixed(2)}x, cpu ${(median(a.cpu) / median(b.cpu)).toFixed(2)}x; per round (wall) ${a.wall.map((w, i) => (w / b.wall[i]).toFixed(2)).join(' ')}`);
