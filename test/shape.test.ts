/** The library shape: stats, results contract, registry, Trainer's missing gradients and parameter sets, fit hooks. */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { auroc, mean, median, pairedTTest, quantile, std, studentTCdf, studentTQuantile } from '../src/stats/index.js';
import { applyRunMetrics, pairedAgainstBaseline, parseMetricRow, parseResults, RESULTS_SCHEMA_VERSION, summarize, withKind, type Results, type RunRecord } from '../src/results/index.js';
import { Registry } from '../src/util/registry.js';
import { UserError } from '../src/errors.js';
import { AdamW, SGD } from '../src/train/optimizers.js';
import { constant } from '../src/train/schedules.js';
import { Trainer } from '../src/train/trainer.js';
import { fit, type FitHook } from '../src/train/fit.js';
import { memoryCheckpointStore, loadCheckpointFrom } from '../src/train/checkpoint.js';
import { Rng } from '../src/engine/rng.js';
import { runsTable, fmtSummary, pairedSection } from '../src/report/report.js';

before(async () => {
  await initEngine({ backend: 'cpu' });
});

test('stats: mean, std, median, quantile (type 7) on hand-computed values', () => {
  assert.equal(mean([1, 2, 3, 4]), 2.5);
  assert.ok(Math.abs(std([2, 4, 4, 4, 5, 5, 7, 9]) - Math.sqrt(32 / 7)) < 1e-12);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  // R: quantile(c(1,2,3,4,10), c(0.25, 0.9)) = 2, 7.6
  assert.equal(quantile([10, 1, 3, 2, 4], 0.25), 2);
  assert.ok(Math.abs(quantile([10, 1, 3, 2, 4], 0.9) - 7.6) < 1e-12);
});

test('stats: Student t CDF and quantile match published table values', () => {
  // qt(0.975, df) for df = 1, 2, 4, 9 and pt(2, 5) (R)
  assert.ok(Math.abs(studentTQuantile(0.975, 1) - 12.706204736174698) < 1e-9);
  assert.ok(Math.abs(studentTQuantile(0.975, 2) - 4.302652729911275) < 1e-9);
  assert.ok(Math.abs(studentTQuantile(0.975, 4) - 2.7764451051977987) < 1e-9);
  assert.ok(Math.abs(studentTQuantile(0.975, 9) - 2.2621571627409915) < 1e-9);
  assert.ok(Math.abs(studentTCdf(2, 5) - 0.9490302605850709) < 1e-9);
});

test('stats: paired t-test by hand (d = [1, 2, 2]: mean 5/3, sd √(1/3), t = 5, df = 2)', () => {
  const r = pairedTTest([1, 2, 3], [0, 0, 1]);
  assert.equal(r.n, 3);
  assert.equal(r.df, 2);
  assert.ok(Math.abs(r.meanDiff - 5 / 3) < 1e-12);
  assert.ok(Math.abs(r.t - 5) < 1e-9);
  // p = 2·(1 − pt(5, 2)) = 0.03774 (R: 0.0377498)
  assert.ok(Math.abs(r.p - 0.03774955) < 1e-6);
  const half = 4.302652729911275 * Math.sqrt(1 / 3) / Math.sqrt(3);
  assert.ok(Math.abs(r.ci95[0] - (5 / 3 - half)) < 1e-9 && Math.abs(r.ci95[1] - (5 / 3 + half)) < 1e-9);
});

test('stats: AUROC counts ties half and is NaN for one class', () => {
  assert.equal(auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  assert.equal(auroc([1, 1, 1, 1], [0, 1, 0, 1]), 0.5);
  assert.ok(Number.isNaN(auroc([1, 2], [1, 1])));
});

test('registry: get lists known names; same item twice is fine, a different one is not', () => {
  const r = new Registry<{ x: number }>('widget');
  const a = { x: 1 };
  r.register('a', a);
  r.register('a', a);
  assert.throws(() => r.register('a', { x: 2 }), /widget "a" registered twice/);
  assert.throws(() => r.get('b'), (e: Error) => e instanceof UserError && /unknown widget "b" \(known: a\)/.test(e.message));
  assert.deepEqual(r.names(), ['a']);
});

function results(over: Partial<Results> = {}): Results {
  const runs: RunRecord[] = [
    { method: 'base', seed: 1, metrics: { acc: 0.5, n: 10 }, wallSeconds: 1 },
    { method: 'base', seed: 2, metrics: { acc: 0.6, n: 10 }, wallSeconds: 1 },
    { method: 'new', seed: 1, metrics: { acc: 0.7, n: 12, lambda: 0.25 }, wallSeconds: 1 },
    { method: 'new', seed: 2, metrics: { acc: 0.75, n: 12, lambda: 1 }, wallSeconds: 1 },
  ];
  const metrics = { primary: 'acc', higherIsBetter: true, baseline: 'base', diagnostics: ['n'] };
  return {
    schemaVersion: RESULTS_SCHEMA_VERSION, experiment: 'x', quick: true, backend: 'cpu', seeds: [1, 2], methods: ['base', 'new'], metrics, runs,
    summary: summarize(runs), derived: { paired_vs_baseline: pairedAgainstBaseline(runs, metrics) }, wallSeconds: 1, ...over,
  };
}

test('results: a written file validates; NaN round-trips as null; bad files get clear errors', () => {
  const r = results();
  r.runs[0].metrics.acc = NaN;
  const back = parseResults(JSON.parse(JSON.stringify(r)), 'r.json');
  assert.ok(Number.isNaN(back.runs[0].metrics.acc));
  const { schemaVersion: _drop, ...old } = results();
  assert.throws(() => parseResults(old, 'old.json'), /old\.json: no schemaVersion/);
  assert.throws(() => parseResults({ ...results(), schemaVersion: 99 }, 'v.json'), /v\.json: schemaVersion 99 is not supported/);
  assert.throws(() => parseResults({ ...results(), runs: [{ method: 'a' }] }, 'b.json'), /b\.json: not a valid efftrain results file \(runs\.0\.seed/);
});

test('results: metric rows are a union on kind; rows without kind get epoch/step', () => {
  assert.equal(withKind({ epoch: 1, loss: 2 }).kind, 'epoch');
  assert.equal(withKind({ step: 5 }).kind, 'step');
  assert.throws(() => withKind({ loss: 1 }), /without kind/);
  assert.equal(parseMetricRow({ kind: 'diagnostic', name: 'hist', method: 'm', seed: 1, counts: [1, 2] }).kind, 'diagnostic');
  assert.throws(() => parseMetricRow({ kind: 'epoch', method: 'm', seed: 1 }, 'metrics.jsonl:3'), /metrics\.jsonl:3: invalid metric row \(epoch/);
  assert.throws(() => parseMetricRow({ kind: 'weird', method: 'm', seed: 1 }), /invalid metric row/);
});

test('results: derived step adds per-run metrics without touching the inputs; paired test uses the declared baseline', () => {
  const r = results();
  const runs = applyRunMetrics(r.runs, { runMetrics: { 'new#1': { gain: 1 } } });
  assert.equal(runs[2].metrics.gain, 1);
  assert.equal(r.runs[2].metrics.gain, undefined);
  const p = r.derived.paired_vs_baseline as Record<string, { meanDiff: number; n: number; vs: string }>;
  assert.equal(p.new.vs, 'base');
  assert.equal(p.new.n, 2);
  assert.ok(Math.abs(p.new.meanDiff - 0.175) < 1e-12);
});

test('report: Runs table takes the union of metric keys (blank where a run lacks one); integers print as integers', () => {
  const r = results();
  const t = runsTable(r.runs).split('\n');
  assert.equal(t[0], '| method | seed | acc | n | lambda | wall s |');
  assert.equal(t[2], '| base | 1 | 0.5000 | 10 |  | 1.0 |');
  assert.equal(t[4], '| new | 1 | 0.7000 | 12 | 0.2500 | 1.0 |');
  assert.equal(fmtSummary(r.summary.new.n), '12');
  assert.equal(fmtSummary(r.summary.new.acc), '0.7250 ± 0.0354');
});

test('report: paired section lists methods with seed pairs and names, instead of NaN rows, those without', () => {
  const r = results();
  const withMissing = {
    ...r,
    derived: { ...r.derived, paired_vs_baseline: { ...(r.derived.paired_vs_baseline as object), lonely: { vs: 'base', metric: 'acc', meanDiff: NaN, ci95: [NaN, NaN], p: NaN, n: 0 } } },
  };
  const md = pairedSection(withMissing);
  assert.match(md, /\| new \| 0\.1750 \|/);
  assert.ok(!md.includes('NaN'), md);
  assert.match(md, /No seed has `acc` for both `base` and `lonely`: not compared\./);
  const onlyMissing = { ...r, derived: { paired_vs_baseline: { lonely: { vs: 'base', metric: 'acc', meanDiff: NaN, ci95: [NaN, NaN], p: NaN, n: 0 } } } };
  const md2 = pairedSection(onlyMissing);
  assert.ok(!md2.includes('| method |'), 'no empty table');
  assert.match(md2, /not compared/);
});

test('Trainer: missingGrads "skip" leaves an unused parameter and its optimizer state alone; "zero" still decays it', () => {
  const run = (missingGrads: 'skip' | 'zero') => {
    const a = tf.variable(tf.tensor1d([1, 2]), true, `a-${missingGrads}`);
    const unused = tf.variable(tf.tensor1d([3]), true, `u-${missingGrads}`);
    const t = new Trainer({ params: [a, unused], optimizer: new AdamW({ weightDecay: 0.5, decayFilter: () => true }), schedule: constant(0.1), clipNorm: 1, missingGrads });
    t.trainStep(() => tf.sum(tf.square(a)) as tf.Scalar);
    const out = { u: unused.dataSync()[0], slots: Object.keys(t.optimizer.getState().slots).sort() };
    t.optimizer.dispose();
    a.dispose();
    unused.dispose();
    return out;
  };
  const skip = run('skip');
  assert.equal(skip.u, 3);
  assert.deepEqual(skip.slots, ['0/m', '0/v']);
  const zero = run('zero');
  assert.ok(zero.u < 3, 'weight decay applies to a zero gradient');
  assert.deepEqual(zero.slots, ['0/m', '0/v', '1/m', '1/v']);
});

test('Trainer: setParams moves optimizer state with each variable and frees the dropped ones', () => {
  const a = tf.variable(tf.tensor1d([1]), true, 'sp-a');
  const g = tf.variable(tf.tensor1d([2]), true, 'sp-g');
  const b = tf.variable(tf.tensor1d([3]), true, 'sp-b');
  const t = new Trainer({ params: [a, g, b], optimizer: new SGD({ momentum: 0.9 }), schedule: constant(0.1) });
  t.trainStep(() => tf.addN([tf.sum(a), tf.sum(g), tf.mul(2, tf.sum(b))]) as tf.Scalar);
  const mb = Array.from(t.optimizer.getState().slots['2/momentum'].dataSync());
  const before = tf.memory().numTensors;
  t.setParams([a, b]);
  assert.equal(tf.memory().numTensors, before - 1, 'the dropped parameter’s slot is freed');
  const slots = t.optimizer.getState().slots;
  assert.deepEqual(Object.keys(slots).sort(), ['0/momentum', '1/momentum']);
  assert.deepEqual(Array.from(slots['1/momentum'].dataSync()), mb);
  t.trainStep(() => tf.add(tf.sum(a), tf.mul(2, tf.sum(b))) as tf.Scalar);
  assert.equal(t.step, 2);
  t.optimizer.dispose();
  tf.dispose([a, g, b]);
});

test('fit: step/evaluate/epoch hooks run; named hook state survives a checkpoint and resume exactly', () => {
  const store = memoryCheckpointStore();
  const run = (epochs: number, resume: boolean) => {
    const w = tf.variable(tf.tensor1d([1, -1]), true);
    const trainer = new Trainer({ params: [w], optimizer: new SGD(), schedule: constant(0.05) });
    let steps = 0;
    const counter: FitHook = {
      name: 'counter',
      step: () => steps++,
      evaluate: () => ({ w0: w.dataSync()[0] }),
      state: { get: () => ({ steps }), set: (s) => (steps = (s as { steps: number }).steps) },
    };
    const epochsSeen: number[] = [];
    const res = fit({
      trainer, numTrain: 8, batchSize: 4, epochs, rng: new Rng(1),
      lossFn: (idx) => tf.mul(tf.sum(tf.square(w)), idx.length) as tf.Scalar,
      hooks: [counter, { name: 'log', epoch: (row) => epochsSeen.push(row.epoch) }],
      checkpoint: { store, resume },
    });
    const out = { w: Array.from(w.dataSync()), steps, epochsSeen, history: res.history.map((r) => r.w0) };
    w.dispose();
    return out;
  };
  const full = run(3, false);
  assert.equal(full.steps, 6);
  assert.deepEqual(full.epochsSeen, [1, 2, 3]);
  run(2, false);
  const resumed = run(3, true);
  assert.equal(resumed.steps, 6, 'the hook’s named state came back from the checkpoint');
  assert.deepEqual(resumed.epochsSeen, [1, 2, 3], 'restored epochs are replayed to hooks');
  assert.deepEqual(resumed.w, full.w);
  assert.deepEqual(resumed.history, full.history);
});

test('checkpoint: a truncated checkpoint on resume is a UserError naming it and what to do', () => {
  const store = memoryCheckpointStore('runs/x/checkpoint.safetensors');
  store.write(new Uint8Array([1, 2, 3]));
  const w = tf.variable(tf.tensor1d([1]));
  const trainer = new Trainer({ params: [w], optimizer: new SGD() });
  assert.throws(() => loadCheckpointFrom(store, trainer), (e: Error) => e instanceof UserError && /runs\/x\/checkpoint\.safetensors: cannot resume .*truncated.*delete it/.test(e.message));
  w.dispose();
});

test('safetensors: bytes equal a reference file written by hand from the format spec (non-ASCII name, padding in UTF-8 bytes)', async () => {
  const { encodeSafetensors, decodeSafetensors } = await import('../src/train/safetensors.js');
  const t = tf.tensor1d([1, -2], 'float32');
  const out = encodeSafetensors({ 'poids_é': t }, { k: 'v' });
  t.dispose();
  // Reference: header JSON as the spec writes it ("é" is 2 UTF-8 bytes), spaces up to 8-byte alignment.
  const json = '{"__metadata__":{"k":"v"},"poids_é":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const jb = Buffer.from(json, 'utf8');
  assert.equal(jb.length, 86);
  const n = 88; // 86 bytes padded with 2 spaces: 8 + 88 = 96 ≡ 0 (mod 8); UTF-16 length (85) would give 87
  const ref = Buffer.alloc(8 + n + 8);
  ref.writeBigUInt64LE(BigInt(n), 0);
  jb.copy(ref, 8);
  ref.fill(0x20, 8 + jb.length, 8 + n);
  ref.writeFloatLE(1, 8 + n);
  ref.writeFloatLE(-2, 8 + n + 4);
  assert.deepEqual(Buffer.from(out), ref);
  const back = decodeSafetensors(out);
  assert.deepEqual(Array.from(back.tensors['poids_é'].dataSync()), [1, -2]);
  tf.dispose(Object.values(back.tensors));
});
