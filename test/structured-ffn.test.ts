import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { Rng } from '../src/engine/rng.js';
import {
  BlockDenseLinear,
  BlockShuffleLinear,
  LowRankLinear,
  StructuredFfn,
  balancedFactors,
  ffnWeightFormula,
  gaussian,
  matmul,
  polar,
  sameFlopsRho,
  sgtAlpha,
  structureForShare,
  structureProblem,
  svd,
  type StructuredLinear,
} from '../src/methods/structured-ffn/index.js';
import { loadLayersModel, saveLayersModel } from '../src/train/model-io.js';
import { runExperiment } from '../src/experiments/runner.js';
import { evalBpc, parseMethod, stepPlanFor } from '../src/experiments/structured-ffn/index.js';
import { splitTrainValTest } from '../src/experiments/structured-ffn/data.js';
import { predictionChecks } from '../src/experiments/structured-ffn/report.js';
import { TransformerLM } from '../src/models/transformer.js';
import { structuredFfnBench } from '../src/bench/structured-ffn.js';
import type { Results } from '../src/experiments/types.js';
import { tempDir } from './helpers/tmp.js';

before(async () => {
  await initEngine({ backend: 'wasm' });
});

const randn = (shape: number[], seed: number, scale = 1): tf.Tensor2D => {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => r.normal() * scale), shape as number[]) as tf.Tensor as tf.Tensor2D;
};

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

function layers(n: number, m: number, extra: { guide?: boolean; init?: 'paper' | 'normal' } = {}): StructuredLinear[] {
  return [
    new LowRankLinear({ units: m, rank: 8, seed: 3, ...extra }).ensureBuilt(n),
    new BlockDenseLinear({ units: m, rank: 12, blocks: 4, seed: 4, ...extra }).ensureBuilt(n),
    new BlockShuffleLinear({ units: m, blocks: 4, seed: 5, ...extra }).ensureBuilt(n),
  ];
}

test('linalg: SVD reconstructs, polar factor is orthonormal, balanced factors give the best rank-r approximation', () => {
  const rng = new Rng(1);
  for (const [m, n] of [
    [12, 5],
    [5, 12],
    [8, 8],
  ]) {
    const a = gaussian(rng, m, n, 1);
    const { u, s, v, k } = svd(a, m, n);
    for (let i = 1; i < k; i++) assert.ok(s[i - 1] >= s[i]);
    let err = 0;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let x = 0;
        for (let c = 0; c < k; c++) x += u[i * k + c] * s[c] * v[j * k + c];
        err = Math.max(err, Math.abs(x - a[i * n + j]));
      }
    assert.ok(err < 1e-10, `svd ${m}x${n} reconstruction ${err}`);
    const p = polar(a, m, n);
    // Pᵀ·P = I (m ≥ n) or P·Pᵀ = I (m < n).
    const small = Math.min(m, n);
    for (let x = 0; x < small; x++)
      for (let y = 0; y < small; y++) {
        let dot = 0;
        if (m >= n) for (let i = 0; i < m; i++) dot += p[i * n + x] * p[i * n + y];
        else for (let j = 0; j < n; j++) dot += p[x * n + j] * p[y * n + j];
        assert.ok(Math.abs(dot - (x === y ? 1 : 0)) < 1e-10);
      }
    const { left, right } = balancedFactors(a, m, n, k);
    const rec = matmul(left, right, m, k, n);
    assert.ok(Math.max(...rec.map((x, i) => Math.abs(x - a[i]))) < 1e-10);
  }
});

test('parameter counts match the spec formulas (per map and per FFN), and the share sizing', () => {
  for (const [n, m] of [
    [64, 256],
    [256, 64],
    [32, 32],
  ]) {
    const ls = layers(n, m);
    const want = [8 * (n + m), 12 * (n / 4 + m), (Math.min(n, m) * (n + m)) / 4];
    ls.forEach((l, i) => {
      assert.equal(l.weightCount(), want[i], `${l.getClassName()} ${n}->${m}`);
      const actual = l.namedVariables().filter((v) => v.name !== 'bias' && v.name !== 'guide').reduce((s, v) => s + v.variable.size, 0);
      assert.equal(actual, want[i], `${l.getClassName()} stored weights`);
      l.release();
    });
  }
  // FFN totals (spec §2): dense 2df, LowRank 2r(d+f), BlockShuffle 2d(d+f)/b, BlockDense r(d+f)(1+1/b).
  const d = 64;
  const f = 256;
  const cases = [
    { map: 'lowrank' as const, rank: 16 },
    { map: 'lowrank' as const, rank: 32 },
    { map: 'blockdense' as const, rank: 22, blocks: 2 },
    { map: 'blockshuffle' as const, blocks: 4 },
  ];
  for (const c of cases) {
    const ffn = new StructuredFfn({ kind: 'structured', ...c }, d, f, 1, 0.02);
    assert.equal(ffn.weightCount(), ffnWeightFormula(c, d, f));
    ffn.dispose();
  }
  assert.equal(ffnWeightFormula({ map: 'lowrank', rank: 16 }, d, f), 10240);
  assert.equal(ffnWeightFormula({ map: 'blockshuffle', blocks: 4 }, d, f), 10240);
  assert.equal(ffnWeightFormula({ map: 'blockdense', rank: 22, blocks: 2 }, d, f), 10560);
  assert.equal(ffnWeightFormula({ map: 'dense' }, d, f), 32768);
  // Fractions with f = 4d: LowRank 1.25 r/d, BlockShuffle 1.25/b, BlockDense 0.625 (r/d)(1 + 1/b).
  assert.ok(Math.abs(ffnWeightFormula({ map: 'lowrank', rank: 16 }, d, f) / (2 * d * f) - (1.25 * 16) / 64) < 1e-12);
  assert.ok(Math.abs(ffnWeightFormula({ map: 'blockdense', rank: 22, blocks: 2 }, d, f) / (2 * d * f) - 0.625 * (22 / 64) * 1.5) < 1e-12);
  // xl check from the spec: 23 layers × 2·1024·10240 + one dense layer (2·2048·8192) = 516M.
  assert.equal(Math.round((23 * ffnWeightFormula({ map: 'lowrank', rank: 1024 }, 2048, 8192) + ffnWeightFormula({ map: 'dense' }, 2048, 8192)) / 1e6), 516);
  // Sizing at d=64, f=256 reproduces spec §10's arms.
  assert.deepEqual(structureForShare('lowrank', 0.32, d, f), { map: 'lowrank', rank: 16 });
  assert.deepEqual(structureForShare('lowrank', 0.63, d, f), { map: 'lowrank', rank: 32 });
  assert.deepEqual(structureForShare('blockdense', 0.32, d, f, 2), { map: 'blockdense', rank: 22, blocks: 2 });
  assert.deepEqual(structureForShare('blockshuffle', 0.32, d, f), { map: 'blockshuffle', blocks: 4 });
  assert.deepEqual(structureForShare('blockshuffle', 0.63, d, f), { map: 'blockshuffle', blocks: 2 });
  assert.equal(structureProblem({ map: 'blockshuffle', blocks: 3 }, d, f) !== null, true);
  assert.equal(structureProblem({ map: 'lowrank', rank: 16 }, d, f), null);
});

test('BlockShuffle follows the stride-b shuffle and interleaved output of the official code', () => {
  const n = 8;
  const m = 12;
  const b = 2;
  const l = new BlockShuffleLinear({ units: m, blocks: b, seed: 9, useBias: false, init: 'normal', initStd: 1 }).ensureBuilt(n);
  const [w1, w2] = l.namedVariables().map((v) => v.variable.arraySync() as number[][][]);
  const q = Math.min(n, m) / b;
  const x = Array.from({ length: n }, (_, i) => Math.sin(i + 1));
  // Reference loops: stage 1 per block, flat h[c1·q + t1]; stage-2 block c reads h[j·b + c]; out[t·b + c].
  const h = new Array(b * q).fill(0);
  for (let c1 = 0; c1 < b; c1++) for (let t1 = 0; t1 < q; t1++) for (let i = 0; i < n / b; i++) h[c1 * q + t1] += x[c1 * (n / b) + i] * w1[c1][i][t1];
  const out = new Array(m).fill(0);
  for (let c = 0; c < b; c++) for (let t = 0; t < m / b; t++) for (let j = 0; j < q; j++) out[t * b + c] += h[j * b + c] * w2[c][j][t];
  const y = l.forward(tf.tensor2d([x])).arraySync()[0];
  for (let i = 0; i < m; i++) assert.ok(Math.abs(y[i] - out[i]) < 1e-4, `out[${i}] ${y[i]} vs ${out[i]}`);
  l.release();
});

test('initialisation: LowRank factors are balanced (‖V‖ = ‖U‖), block factors orthonormal', () => {
  const [lr, bd, bs] = layers(64, 256);
  const [v, u] = lr.namedVariables().map((x) => x.variable);
  const fro = (t: tf.Tensor) => tf.tidy(() => tf.norm(t).dataSync()[0]);
  assert.ok(Math.abs(fro(v) - fro(u)) < 1e-4 * fro(v));
  const blk = bs.namedVariables()[0].variable; // [b, 16, 16]
  const gram = tf.tidy(() => tf.matMul(blk, blk, true, false));
  assert.ok(maxAbsDiff(gram, tf.tidy(() => tf.tile(tf.expandDims(tf.eye(16), 0), [4, 1, 1]))) < 1e-4);
  gram.dispose();
  const bdU = bd.namedVariables()[1].variable; // [12, 256]: orthonormal rows
  const g2 = tf.tidy(() => tf.matMul(bdU, bdU, false, true));
  assert.ok(maxAbsDiff(g2, tf.eye(12)) < 1e-4);
  g2.dispose();
  for (const l of [lr, bd, bs]) l.release();
});

test('pre-merge: merged dense path equals the structured path to ≤1e-5 and is chosen by token count', () => {
  for (const [n, m] of [
    [64, 256],
    [256, 64],
  ]) {
    for (const l of layers(n, m)) {
      const x = randn([37, n], 11);
      const ys = l.forward(x);
      l.merge(16);
      assert.ok(l.merged);
      assert.equal(l.pathFor(37), 'structured');
      assert.equal(l.pathFor(16), 'merged');
      const merged = tf.tidy(() => tf.add(tf.matMul(x, l.merged!), l.namedVariables().find((v) => v.name === 'bias')!.variable));
      const diff = maxAbsDiff(ys, merged);
      assert.ok(diff <= 1e-5, `${l.getClassName()} ${n}->${m}: ${diff}`);
      const small = tf.slice(x, [0, 0], [4, n]) as tf.Tensor2D;
      const viaMerged = l.forward(small);
      l.unmerge();
      const viaFactors = l.forward(small);
      assert.ok(maxAbsDiff(viaMerged, viaFactors) <= 1e-5);
      tf.dispose([x, ys, merged, small, viaMerged, viaFactors]);
      l.release();
    }
  }
});

test('SGT: guide starts equal to S, α schedule values, skip gives exactly S(x), same-FLOPs ρ', () => {
  assert.equal(sgtAlpha(0, 100), 1);
  assert.ok(Math.abs(sgtAlpha(25, 100) - 0.5 * (1 + Math.cos(Math.PI / 4))) < 1e-12);
  assert.ok(Math.abs(sgtAlpha(50, 100) - 0.5) < 1e-12);
  assert.ok(Math.abs(sgtAlpha(75, 100) - 0.5 * (1 + Math.cos((3 * Math.PI) / 4))) < 1e-12);
  assert.equal(sgtAlpha(100, 100), 0);
  assert.equal(sgtAlpha(250, 100), 0);
  assert.equal(sgtAlpha(5, 0), 0);
  assert.ok(Math.abs(sgtAlpha(30, 100, 'linear') - 0.7) < 1e-12);
  // Mean α over the guidance period is 0.5 (the expected dense-branch use).
  let mean = 0;
  for (let t = 0; t < 1000; t++) mean += sgtAlpha(t, 1000) / 1000;
  assert.ok(Math.abs(mean - 0.5) < 1e-3);
  // Spec §4 xl check: 2.10e20 = (1+ρ)·1.29e20 + 0.5·ρ·1.18e20 → ρ ≈ 0.43.
  assert.ok(Math.abs(sameFlopsRho(2.1e20, 1.29e20, 1.18e20) - 0.43) < 0.01);
  for (const l of layers(32, 64, { guide: true })) {
    const x = randn([5, 32], 2);
    const g = l.guideVariable!;
    const viaGuide = tf.tidy(() => tf.matMul(x, g as tf.Tensor2D));
    const s = l.structured(x);
    assert.ok(maxAbsDiff(viaGuide, s) < 1e-5, `${l.getClassName()} guide = S at init`);
    // Make W differ from S, then check the two forms of the forward.
    const w2 = tf.tidy(() => tf.add(g, 0.1));
    g.assign(w2);
    const bias = l.namedVariables().find((v) => v.name === 'bias')!.variable;
    const skipped = l.forward(x, { alpha: 0.3, useGuide: false });
    const sb = tf.tidy(() => tf.add(s, bias));
    assert.ok(maxAbsDiff(skipped, sb) < 1e-6, 'skip → exactly S(x) + b');
    const mixed = l.forward(x, { alpha: 0.3, useGuide: true });
    const want = tf.tidy(() => tf.add(tf.add(tf.mul(tf.matMul(x, g as tf.Tensor2D), 0.3), tf.mul(s, 0.7)), bias));
    assert.ok(maxAbsDiff(mixed, want) < 1e-5, 'used → α·Wx + (1−α)·S(x) + b');
    const names = l.namedVariables().map((v) => v.name);
    assert.ok(names.includes('guide'));
    l.dropGuide();
    assert.equal(l.guideVariable, null);
    assert.ok(!l.namedVariables().some((v) => v.name === 'guide'));
    assert.equal(l.getConfig().guide, false);
    tf.dispose([x, viaGuide, s, w2, skipped, sb, mixed, want]);
    l.release();
  }
});

test('getConfig round trip and tf.layers save/load of the structured layers', async () => {
  const mk = [
    () => new LowRankLinear({ units: 24, rank: 4, seed: 7, guide: true, mergeThreshold: 8 }),
    () => new BlockDenseLinear({ units: 24, rank: 8, blocks: 2, seed: 8, init: 'normal' }),
    () => new BlockShuffleLinear({ units: 24, blocks: 4, seed: 9, useBias: false }),
  ];
  for (const make of mk) {
    const l = make();
    const cfg = l.getConfig();
    const Cls = l.constructor as unknown as { new (c: tf.serialization.ConfigDict): StructuredLinear; fromConfig: (c: unknown, d: tf.serialization.ConfigDict) => StructuredLinear };
    const back = tf.serialization.SerializationMap.getMap().classNameMap[l.getClassName()];
    assert.ok(back, `${l.getClassName()} is registered`);
    const l2 = Cls.fromConfig(Cls, cfg);
    assert.deepEqual(l2.getConfig(), { ...cfg, name: l2.name });
    // Through a model: same outputs after save/load (weights and config).
    const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [16] }), make()] });
    const dir = tempDir('efftrain-sffn-layer-');
    await saveLayersModel(model, dir);
    const loaded = await loadLayersModel(dir);
    const x = randn([3, 16], 5);
    const a = model.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    assert.ok(maxAbsDiff(a, b) < 1e-6);
    const last = (mm: tf.LayersModel) => mm.layers[mm.layers.length - 1];
    assert.equal(last(loaded).getClassName(), l.getClassName());
    const { name: _n1, ...c1 } = last(model).getConfig();
    const { name: _n2, ...c2 } = last(loaded).getConfig();
    assert.deepEqual(c1, c2);
    tf.dispose([x, a, b]);
    model.dispose();
    loaded.dispose();
  }
});

test('method names and step budgets (fixedstep SGT, same FLOPs, fixedflop SGT with replay)', () => {
  assert.deepEqual(parseMethod('lowrank-32-sgt-sameflops'), { name: 'lowrank-32-sgt-sameflops', map: 'lowrank', share: 32, sgt: true, sameFlops: true });
  assert.equal(parseMethod('lowrank-x'), null);
  const macs = { dense: 120, struct: 100, guide: 40 };
  assert.deepEqual(stepPlanFor(parseMethod('lowrank-32')!, 100, 0.5, macs), { total: 100, tG: 0, replayFrom: Infinity, rho: 0 });
  assert.deepEqual(stepPlanFor(parseMethod('lowrank-32-sgt')!, 100, 0.5, macs), { total: 100, tG: 50, replayFrom: Infinity, rho: 0.5 });
  assert.equal(stepPlanFor(parseMethod('lowrank-32-sameflops')!, 100, 0.5, macs).total, 120);
  const g = stepPlanFor(parseMethod('lowrank-32-sgt-sameflops')!, 100, 0.5, macs);
  // ρ = (120 − 100)/(100 + 20) = 1/6 → 17 extra steps replaying the first 17 batches.
  assert.deepEqual(g, { total: 117, tG: 17, replayFrom: 100, rho: 20 / 120 });
});

test('tiny end-to-end runExperiment (workers 1): results, metrics rows, saved model, report, no leaks', async () => {
  const dir = tempDir('efftrain-sffn-run-');
  const text = join(dir, 'tiny.txt');
  const line = 'the quick brown fox jumps over the lazy dog. ';
  writeFileSync(text, line.repeat(60));
  const outDir = join(dir, 'run');
  const methods = ['dense', 'lowrank-32-sgt', 'blockshuffle-32-sgt-sameflops'];
  const { results } = await runExperiment({
    experiment: 'structured-ffn',
    quick: false,
    sets: ['dModel=16', 'nHeads=2', 'dFf=64', 'contextLength=16', 'batchSize=4', 'steps=6', 'evalEvery=2', 'evalWindows=4', 'finalEvalWindows=8', 'evalBatch=4'],
    flags: { methods, seeds: [1], data: text },
    outDir,
    workers: 1,
    quiet: true,
  });
  const onDisk = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as Results;
  assert.deepEqual(onDisk.methods, methods);
  const rows = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  // 28 symbols: an untrained model (logits ≈ 0) scores log2(28) ≈ 4.81 bits/char.
  const uniform = Math.log2(new Set(line).size);
  for (const r of results.runs) {
    const m = r.metrics;
    for (const k of ['val_bpc', 'test_bpc', 'ffn_params', 'step_ms', 'loss_spikes']) assert.ok(Number.isFinite(m[k]), `${r.method} ${k}`);
    // The run's metrics are its last evaluation (the final one, on the validation part and the test tail).
    const mine = rows.filter((x) => x.method === r.method && x.kind === 'step');
    const last = mine[mine.length - 1];
    assert.equal(last.eval_set, 'final');
    assert.equal(m.val_bpc, last.val_bpc);
    assert.equal(m.test_bpc, last.test_bpc);
    // Only final evaluations read the test tail.
    assert.ok(mine.filter((x) => x.eval_set === 'subset').every((x) => !('test_bpc' in x)));
    // Training helped: the first evaluation is near uniform, the last is clearly below it (this text is periodic).
    assert.ok(mine[0].val_bpc < uniform + 0.1 && m.val_bpc < uniform - 0.3, `${r.method}: ${mine[0].val_bpc} → ${m.val_bpc} (uniform ${uniform})`);
    assert.equal(m.tensors_after, 0, `${r.method} disposed its tensors`);
    assert.ok(existsSync(join(outDir, 'runs', `${r.method}-seed1`, 'model', 'weights.safetensors')));
    const saved = JSON.parse(readFileSync(join(outDir, 'runs', `${r.method}-seed1`, 'model', 'model.json'), 'utf8'));
    for (const f of saved.ffns) assert.notEqual(f.guide, true, 'guides are dropped before saving');
  }
  const dense = results.runs.find((r) => r.method === 'dense')!.metrics;
  const lr = results.runs.find((r) => r.method === 'lowrank-32-sgt')!.metrics;
  assert.ok(lr.ffn_params < dense.ffn_params);
  const sf = results.runs.find((r) => r.method === 'blockshuffle-32-sgt-sameflops')!.metrics;
  assert.ok(sf.steps > 6, 'same-FLOPs SGT trains extra (replayed) steps');
  assert.ok(rows.some((r) => r.method === 'lowrank-32-sgt' && r.step === 2 && r.alpha > 0));
  const report = readFileSync(join(outDir, 'report.md'), 'utf8');
  assert.match(report, /paper predicts/);
  assert.ok(existsSync(join(outDir, 'charts', 'val_bpc-vs-flops.svg')));
  assert.ok(existsSync(join(outDir, 'charts', 'val_bpc-vs-step.svg')));
});

test('sgtStochasticSkip=false uses every guide on every guided step (training FLOPs by hand)', async () => {
  const dir = tempDir('efftrain-sffn-noskip-');
  const text = join(dir, 'tiny.txt');
  writeFileSync(text, 'pack my box with five dozen liquor jugs. '.repeat(60));
  const { results } = await runExperiment({
    experiment: 'structured-ffn',
    quick: false,
    sets: ['dModel=16', 'nHeads=2', 'dFf=64', 'contextLength=16', 'batchSize=4', 'steps=6', 'evalEvery=6', 'evalWindows=2', 'finalEvalWindows=2', 'evalBatch=2', 'sgtStochasticSkip=false', 'saveModel=false'],
    flags: { methods: ['lowrank-32', 'lowrank-32-sgt'], seeds: [1], data: text },
    outDir: join(dir, 'run'),
    workers: 1,
    quiet: true,
  });
  const flops = (m: string) => results.runs.find((r) => r.method === m)!.metrics.train_flops;
  // Block 1's two guides are dense 16×64 maps (2·16·64 = 2048 MACs/token), used on the t_g = 0.5·6 = 3 guided steps of
  // 4·16 = 64 tokens, at 6 FLOPs per MAC (forward + backward).
  assert.equal(flops('lowrank-32-sgt') - flops('lowrank-32'), 6 * 64 * 2048 * 3);
});

test('bench structured-ffn (tiny) writes the ffn/* and decode/* cases', async () => {
  const res = await structuredFfnBench.run({ quick: true, log: () => {}, sizes: { width: 32, dFf: 128, tokens: 64, decodeTokens: [1, 8] } } as never);
  const names = res.cases.map((c) => c.name);
  for (const n of ['ffn/dense', 'ffn/lowrank-32', 'ffn/blockdense-32', 'ffn/blockshuffle-32', 'decode/lowrank-32/1/structured', 'decode/lowrank-32/8/merged']) {
    assert.ok(names.includes(n), `${n} in ${names.join(',')}`);
  }
  for (const c of res.cases) assert.ok(c.msPerStep > 0, c.name);
});

test('split: train | val | test are contiguous and disjoint, test is the tail, sizes round(n·fraction)', () => {
  const ids = Int32Array.from({ length: 1000 }, (_, i) => i);
  const { train, val, test: tail } = splitTrainValTest(ids, 0.1, 0.15);
  assert.equal(tail!.length, 150);
  assert.equal(val.length, 100);
  assert.equal(train.length, 750);
  assert.deepEqual([train[0], train[749], val[0], val[99], tail![0], tail![149]], [0, 749, 750, 849, 850, 999]);
  // The test tail does not move when the validation part changes size.
  assert.deepEqual(Array.from(splitTrainValTest(ids, 0.2, 0.15).test!), Array.from(tail!));
  assert.equal(splitTrainValTest(ids, 0.1, 0).test, null);
  assert.throws(() => splitTrainValTest(ids, 0.5, 0.5), /valFraction.*testFraction/);
});

test('evalBpc is the token-weighted mean cross-entropy in bits (against log-softmax by hand)', () => {
  const model = new TransformerLM({ vocabSize: 5, contextLength: 4, dModel: 8, nHeads: 2, nLayers: 1, dFf: 16, ffn: { kind: 'dense' } }, 3);
  const r = new Rng(2);
  const mk = (batch: number) => ({ batch, T: 4, x: Int32Array.from({ length: batch * 4 }, () => r.int(5)), y: Int32Array.from({ length: batch * 4 }, () => r.int(5)) });
  const batches = [mk(3), mk(1)];
  let bits = 0;
  let n = 0;
  for (const b of batches) {
    const logits = tf.tidy(() => model.logits(tf.tensor2d(b.x, [b.batch, 4], 'int32')).arraySync());
    logits.forEach((row, i) => {
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((s, v) => s + Math.exp(v - mx), 0));
      bits += (lse - row[b.y[i]]) / Math.LN2;
      n++;
    });
  }
  assert.ok(Math.abs(evalBpc(model, batches) - bits / n) < 1e-5);
  model.dispose();
});

test('prediction checks: paired by seed with a t-based 95% CI (t(0.975, 2) = 4.3027)', () => {
  const runs = (a: number[], b: number[]) => [
    ...a.map((v, i) => ({ method: 'lowrank-32-sgt', seed: i + 1, metrics: { test_bpc: v } })),
    ...b.map((v, i) => ({ method: 'lowrank-32', seed: i + 1, metrics: { test_bpc: v } })),
  ];
  const check = (a: number[], b: number[]) => predictionChecks(['lowrank-32', 'lowrank-32-sgt'], runs(a, b), 'test_bpc').find((c) => c.prediction.startsWith('SGT closes'))!;
  // b − a = 0.10, 0.12, 0.11: mean 0.11, sd 0.01, CI 0.11 ± 4.3027·0.01/√3 = [0.085, 0.135].
  const agree = check([2.0, 2.1, 2.2], [2.1, 2.22, 2.31]);
  assert.equal(agree.verdict, 'agrees');
  assert.match(agree.observed, /95% CI \[0\.085, 0\.135\]/);
  assert.equal(check([2.1, 2.22, 2.31], [2.0, 2.1, 2.2]).verdict, 'disagrees');
  // A positive mean difference the CI cannot separate from 0: differences 0.3, −0.1, 0.2 (CI 0.133 ± 0.517).
  assert.equal(check([2.0, 2.1, 2.2], [2.3, 2.0, 2.4]).verdict, 'within noise');
  assert.equal(check([2.0], [2.3]).verdict, 'too few seeds');
  // Pairs are matched by seed, not by position: shuffling one method's runs changes nothing.
  const shuffled = runs([2.0, 2.1, 2.2], [2.1, 2.22, 2.31]).reverse();
  assert.equal(predictionChecks(['lowrank-32', 'lowrank-32-sgt'], shuffled, 'test_bpc').find((c) => c.prediction.startsWith('SGT closes'))!.observed, agree.observed);
  assert.equal(predictionChecks(['dense'], runs([1], [1]), 'test_bpc')[0].verdict, 'not run');
});

test('no choice reads the test tail: changing its text moves only test_bpc', async () => {
  const dir = tempDir('efftrain-sffn-split-');
  const base = 'sphinx of black quartz, judge my vow. '.repeat(70);
  // Same symbols, other order in the last 10% (the test tail).
  const cut = base.length - Math.round(base.length * 0.1);
  const r = new Rng(9);
  const tailChars = Array.from(base.slice(cut));
  for (let i = tailChars.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [tailChars[i], tailChars[j]] = [tailChars[j], tailChars[i]];
  }
  const texts = [base, base.slice(0, cut) + tailChars.join('')];
  const out: Record<string, number>[] = [];
  for (const [k, t] of texts.entries()) {
    const file = join(dir, `t${k}.txt`);
    writeFileSync(file, t);
    const { results } = await runExperiment({
      experiment: 'structured-ffn',
      quick: false,
      sets: ['dModel=16', 'nHeads=2', 'dFf=64', 'contextLength=16', 'batchSize=4', 'steps=4', 'evalEvery=2', 'evalWindows=4', 'finalEvalWindows=8', 'evalBatch=4', 'saveModel=false'],
      flags: { methods: ['lowrank-32-sgt'], seeds: [1], data: file },
      outDir: join(dir, `run${k}`),
      workers: 1,
      quiet: true,
    });
    assert.equal(results.metrics.primary, 'test_bpc');
    out.push(results.runs[0].metrics);
  }
  for (const key of ['val_bpc', 'val_bpc_at_T', 'train_flops', 'loss_spikes', 'steps']) assert.equal(out[1][key], out[0][key], key);
  assert.notEqual(out[1].test_bpc, out[0].test_bpc);
});
