/**
 * Tests for the SuperLoss experiments: method-name parsing, target-outlier injection, the tabular loader,
 * the σ-diagnostics, and tiny end-to-end runs of `superloss-noisy-labels` and `superloss-regression` through
 * `runExperiment` (worker threads, results.json, report). Kept small: the whole file runs in well under a minute.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/engine/rng.js';
import { UserError } from '../src/errors.js';
import { injectTargetOutliers, loadTabular, parseCsv, vegaCarsPath } from '../src/data/tabular.js';
import { hardCleanGroups, parseNoisyLabelMethod, sigmaDiagnostics } from '../src/experiments/superloss-noisy-labels/index.js';
import { parseRegressionMethod, scoreTest, selectByValidation, smoothL1Rank1, splitRows, tuningGrid } from '../src/experiments/superloss-regression/index.js';
import { FASHION_CONFUSABLE_PAIRS, injectLabelNoise, pairPartners, parseNoiseSpec } from '../src/data/label-noise.js';
import { optimalConfidence } from '../src/methods/superloss/index.js';
import { readIdx } from '../src/data/idx.js';
import { runExperiment } from '../src/experiments/runner.js';
import { FASHION_MNIST_DIR } from '../src/data/image-dataset.js';
import { encodeIdx } from '../src/data/idx.js';
import type { Results } from '../src/experiments/types.js';
import { tempDir } from './helpers/tmp.js';

const tmp = () => tempDir('efftrain-sl-');

describe('method-name parsing', () => {
  test('noisy-label methods: <loss>@<noise>', () => {
    assert.deepEqual(parseNoisyLabelMethod('ce@sym-0.4'), { loss: 'ce', noise: 'sym-0.4', kind: 'sym', rate: 0.4 });
    assert.deepEqual(parseNoisyLabelMethod('superloss@pair-0.4'), { loss: 'superloss', noise: 'pair-0.4', kind: 'pair', rate: 0.4 });
    assert.deepEqual(parseNoisyLabelMethod('superloss@clean'), { loss: 'superloss', noise: 'clean', kind: 'clean', rate: 0 });
    assert.deepEqual(parseNoisyLabelMethod('ce@conf-0.4'), { loss: 'ce', noise: 'conf-0.4', kind: 'conf', rate: 0.4 });
    for (const bad of ['ce', 'mse@sym-0.4', 'ce@sym', 'ce@sym-1.5', 'ce@flip-0.2', '@sym-0.2', 'superloss@']) {
      assert.throws(() => parseNoisyLabelMethod(bad), UserError, bad);
    }
  });

  test('regression methods: <loss>@out-<rate>', () => {
    assert.deepEqual(parseRegressionMethod('l1@out-0.2'), { loss: 'l1', rate: 0.2 });
    assert.deepEqual(parseRegressionMethod('smoothl1@out-0.4'), { loss: 'smoothl1', rate: 0.4 });
    assert.deepEqual(parseRegressionMethod('superloss@out-0'), { loss: 'superloss', rate: 0 });
    for (const bad of ['l2@out-0.2', 'l1@0.2', 'l1@out-2', 'l1@out-', 'superloss']) {
      assert.throws(() => parseRegressionMethod(bad), UserError, bad);
    }
  });
});

describe('target outliers', () => {
  const y = Float32Array.from({ length: 200 }, (_, i) => 10 + (i % 37));
  test('replaces exactly round(rate·n) targets with draws from the documented range', () => {
    const r = injectTargetOutliers(y, 0.3, new Rng(7), { below: 0.5, above: 2 });
    const lo = 10;
    const hi = 46;
    assert.deepEqual(r.range, [lo - 0.5 * (hi - lo), hi + 2 * (hi - lo)]);
    let k = 0;
    for (let i = 0; i < y.length; i++) {
      if (r.outlier[i]) {
        k++;
        assert.ok(r.y[i] >= r.range[0] && r.y[i] <= r.range[1]);
      } else assert.equal(r.y[i], y[i]);
    }
    assert.equal(k, 60);
    assert.equal(r.actualRate, 0.3);
  });
  test('deterministic per seed, rate 0 is a no-op, bad rates throw', () => {
    const a = injectTargetOutliers(y, 0.4, new Rng(3));
    const b = injectTargetOutliers(y, 0.4, new Rng(3));
    const c = injectTargetOutliers(y, 0.4, new Rng(4));
    assert.deepEqual(a.y, b.y);
    assert.notDeepEqual(a.y, c.y);
    const z = injectTargetOutliers(y, 0, new Rng(3));
    assert.deepEqual(z.y, y);
    assert.equal(z.outlier.reduce((s, v) => s + v, 0), 0);
    assert.throws(() => injectTargetOutliers(y, 1.5, new Rng(1)));
  });
});

describe('tabular loader', () => {
  test('CSV: numeric, date and categorical columns; rows with missing values dropped', () => {
    const dir = tmp();
    try {
      const f = join(dir, 't.csv');
      const rows = ['name,y,a,when,kind', ...Array.from({ length: 14 }, (_, i) => `car ${i},${i},${i * 2},19${70 + (i % 5)}-01-01,${['x', 'y', '"z"'][i % 3]}`), 'bad,NA,1,1970-01-01,x', 'bad2,3,,1970-01-01,x'];
      writeFileSync(f, rows.join('\n'));
      const ds = loadTabular(f, { target: 'y', exclude: [] });
      assert.equal(ds.n, 14);
      assert.equal(ds.droppedRows, 2);
      assert.deepEqual(ds.featureNames, ['a', 'when', 'kind=x', 'kind=y', 'kind=z']);
      assert.ok(ds.droppedColumns.some((c) => c.startsWith('name')));
      assert.equal(ds.x[1 * ds.d + 0], 2);
      assert.equal(ds.x[1 * ds.d + 1], 1971);
      assert.deepEqual(Array.from(ds.x.subarray(2 * ds.d + 2, 3 * ds.d)), [0, 0, 1]);
      assert.throws(() => loadTabular(f, { target: 'nope' }), UserError);
      assert.throws(() => loadTabular(join(dir, 'missing.json')), /npm install vega-datasets/);
      assert.equal(parseCsv('a;b\n1;x\n', 's.csv')[0].b, 'x');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('vega-datasets cars.json: 392 complete rows, 9 features', () => {
    const ds = loadTabular('');
    assert.equal(ds.source, vegaCarsPath());
    assert.equal(ds.n, 392);
    assert.equal(ds.droppedRows, 14);
    assert.deepEqual(ds.featureNames, ['Cylinders', 'Displacement', 'Horsepower', 'Weight_in_lbs', 'Acceleration', 'Year', 'Origin=Europe', 'Origin=Japan', 'Origin=USA']);
  });
});

describe('confusable-pair label noise', () => {
  test('flips only within the pairs, both directions, at rate r per paired class', () => {
    const n = 20000;
    const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
    const r = injectLabelNoise(labels, 10, 'conf', 0.4, new Rng(5));
    assert.deepEqual(FASHION_CONFUSABLE_PAIRS, [[0, 6], [2, 4]]);
    const partner: Record<number, number> = { 0: 6, 6: 0, 2: 4, 4: 2 };
    const flipped = new Array<number>(10).fill(0);
    let changed = 0;
    for (let i = 0; i < n; i++) {
      assert.equal(r.noisy[i] === 1, r.labels[i] !== labels[i]);
      if (!r.noisy[i]) continue;
      changed++;
      flipped[labels[i]]++;
      assert.equal(r.labels[i], partner[labels[i]], `class ${labels[i]} flipped to ${r.labels[i]}`);
    }
    for (const c of [1, 3, 5, 7, 8, 9]) assert.equal(flipped[c], 0, `class ${c} is in no pair`);
    // 2000 samples per class, rate 0.4: binomial sd ≈ 22, so ±110 is a 5-sd band.
    for (const c of [0, 2, 4, 6]) assert.ok(Math.abs(flipped[c] - 800) < 110, `class ${c}: ${flipped[c]} flips`);
    assert.equal(r.actualRate, changed / n);
    assert.ok(Math.abs(r.actualRate - 0.16) < 0.012);
    // Custom pairs; bad pairs are rejected with the class named.
    const c = injectLabelNoise(Int32Array.from([0, 1, 2, 0, 1, 2]), 3, 'conf', 1, new Rng(1), { pairs: [[1, 2]] });
    assert.deepEqual(Array.from(c.labels), [0, 2, 1, 0, 2, 1]);
    assert.throws(() => pairPartners([[0, 3]], 3), /class 3 is not in 0..2/);
    assert.throws(() => pairPartners([[0, 1], [1, 2]], 3), /class 1 appears in more than one pair/);
    assert.deepEqual(parseNoiseSpec('conf-0.3'), { kind: 'conf', rate: 0.3 });
  });
});

describe('hard-clean groups (spec §7: top-10% reference loss OR a confusable class)', () => {
  test('hand-computed masks', () => {
    // 12 samples: reference losses 0..11; samples 10 and 3 are noisy (never hard).
    const refLoss = Float32Array.from({ length: 12 }, (_, i) => i);
    const trueLabels = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1]);
    const isNoisy = Uint8Array.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0]);
    // Clean losses {0,1,2,4,5,6,7,8,9,11}: type-7 quantile 0.9 = 9 + 0.1·(11 − 9) = 9.2 → only sample 11 is top-loss.
    const g = hardCleanGroups(refLoss, trueLabels, isNoisy, 0.9, [0, 2, 4, 6]);
    assert.deepEqual(Array.from(g.hardLoss), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(Array.from(g.hardClass), [1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(g.isHard), [1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 1]);
    // A noisy sample of a confusable class is not hard clean.
    const g2 = hardCleanGroups(refLoss, trueLabels, Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 0.9, [0]);
    assert.equal(g2.isHard[0], 0);
  });
});

describe('σ diagnostics', () => {
  test('AUROC 1 when every noisy sample has a higher loss; hard-clean subset and memorisation', () => {
    const loss = Float32Array.from([0.1, 0.2, 3, 0.3, 5, 6]);
    const isNoisy = Uint8Array.from([0, 0, 0, 0, 1, 1]);
    const isHard = Uint8Array.from([0, 0, 1, 0, 0, 0]);
    const noisyLabels = Int32Array.from([0, 1, 2, 3, 4, 5]);
    const trueLabels = Int32Array.from([0, 1, 2, 3, 1, 2]);
    const pred = Int32Array.from([0, 1, 0, 3, 4, 2]);
    const d = sigmaDiagnostics(loss, pred, { noisyLabels, trueLabels, isNoisy, isHard }, Math.log(10), 1);
    assert.equal(d.metrics.negloss_auroc, 1);
    assert.equal(d.metrics.negloss_auroc_hard, 1);
    assert.equal(d.metrics.sigma_auroc_hard, 1);
    assert.equal(d.metrics.noisy_fit, 0.5);
    assert.equal(d.metrics.noisy_true, 0.5);
    assert.equal(d.metrics.clean_fit, 0.75);
    assert.equal(d.metrics.lowsigma_precision, 1);
    assert.equal(d.metrics.noisy_sigma_clamped, 0);
    assert.ok(Math.abs(d.sigma[0] - Math.E) < 1e-12);
    assert.ok(d.sigma[4] < 1 && d.sigma[5] < d.sigma[4]);
    assert.ok(Math.abs(d.metrics.sigma_mean_noisy - (optimalConfidence(5, Math.log(10), 1) + optimalConfidence(6, Math.log(10), 1)) / 2) < 1e-12);
  });

  test('σ* saturation: clamped clean/noisy pairs tie (½) while −loss still ranks them; hard parts', () => {
    // τ = log 10, λ = 1: every ℓ < τ − 2/e ≈ 1.567 has σ* = e. Clean {0.1, 0.3, 2.5}, noisy {0.2, 0.4}.
    const loss = Float32Array.from([0.1, 0.3, 2.5, 0.2, 0.4]);
    const isNoisy = Uint8Array.from([0, 0, 0, 1, 1]);
    const hardLoss = Uint8Array.from([0, 0, 1, 0, 0]);
    const hardClass = Uint8Array.from([0, 1, 0, 0, 0]);
    const d = sigmaDiagnostics(loss, new Int32Array(5), { noisyLabels: new Int32Array(5), trueLabels: new Int32Array(5), isNoisy, isHard: Uint8Array.from([0, 1, 1, 0, 0]), hardParts: { hardloss: hardLoss, hardclass: hardClass } }, Math.log(10), 1);
    // −loss: pairs (clean, noisy) ranked right: (0.1,0.2) (0.1,0.4) (0.3,0.4) → 3 of 6.
    assert.equal(d.metrics.negloss_auroc, 3 / 6);
    // σ*: the four small losses tie at e (4 pairs × ½ = 2), 2.5 loses to both noisy (0) → 2 of 6.
    assert.equal(d.metrics.sigma_auroc, 2 / 6);
    assert.equal(d.metrics.noisy_sigma_clamped, 1);
    // hard (union {0.3, 2.5}) vs noisy: −loss (0.3,0.4) right → 1 of 4; σ: (0.3,·) two ties → 1 of 4.
    assert.equal(d.metrics.negloss_auroc_hard, 1 / 4);
    assert.equal(d.metrics.sigma_auroc_hard, 1 / 4);
    assert.equal(d.metrics.negloss_auroc_hardloss, 0);
    assert.equal(d.metrics.negloss_auroc_hardclass, 1 / 2);
    assert.equal(d.metrics.sigma_auroc_hardclass, 1 / 2);
    // Precision of the 2 highest-loss samples at being noisy: {2.5 clean, 0.4 noisy} → ½.
    assert.equal(d.metrics.lowsigma_precision, 0.5);
  });
});

describe('regression pieces', () => {
  test('smoothL1Rank1: hand values and gradient = clip(d/β, −1, 1) (finite differences)', () => {
    const pred = [0.2, -1.5, 3, 0.05];
    const y = [0, 0, 0.5, 0.05];
    const beta = 0.5;
    const ref = (p: number, t: number) => {
      const a = Math.abs(p - t);
      return a < beta ? (0.5 * a * a) / beta : a - 0.5 * beta;
    };
    const v = tf.tidy(() => smoothL1Rank1(tf.tensor1d(pred), tf.tensor1d(y), beta).arraySync());
    assert.deepEqual(v.map((x) => +x.toFixed(6)), [0.04, 1.25, 2.25, 0]);
    const g = tf.tidy(() => tf.grad((p: tf.Tensor) => tf.sum(smoothL1Rank1(p as tf.Tensor1D, tf.tensor1d(y), beta)))(tf.tensor1d(pred)).arraySync() as number[]);
    for (let i = 0; i < pred.length; i++) {
      const h = 1e-4;
      const fd = (ref(pred[i] + h, y[i]) - ref(pred[i] - h, y[i])) / (2 * h);
      assert.ok(Math.abs(g[i] - fd) < 1e-3, `i=${i}: grad ${g[i]} vs finite difference ${fd}`);
    }
    assert.deepEqual(g.map((x) => +x.toFixed(5)), [0.4, -1, 1, 0]);
  });

  test('tuning grids, selection by validation only, test scoring, split', () => {
    const cfg = { lrs: [1e-3, 1e-2], smoothL1Betas: [0.5, 1, 2], lambdas: [0.25, 1] };
    assert.deepEqual(tuningGrid(cfg, 'l1'), [{ lr: 1e-3, beta: null, lambda: null }, { lr: 1e-2, beta: null, lambda: null }]);
    assert.equal(tuningGrid(cfg, 'smoothl1').length, 6);
    assert.deepEqual(tuningGrid(cfg, 'smoothl1')[4], { lr: 1e-2, beta: 1, lambda: null });
    assert.deepEqual(tuningGrid(cfg, 'superloss')[1], { lr: 1e-3, beta: null, lambda: 1 });
    assert.equal(selectByValidation([3, 2, 2, 5]), 1);
    assert.equal(selectByValidation([NaN, 4, 3]), 2);
    assert.deepEqual(scoreTest(Float32Array.from([1, 2, 3]), { yTest: Float32Array.from([2, 2, 0]) }), { test_mae: 4 / 3, test_rmse: Math.sqrt(10 / 3) });
    const a = splitRows(50, 0.2, 7);
    assert.equal(a.testRows.length, 10);
    assert.deepEqual([...a.testRows, ...a.poolRows].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
    assert.deepEqual(splitRows(50, 0.2, 7), a);
    assert.notDeepEqual(splitRows(50, 0.2, 8).testRows, a.testRows);
  });
});

function readResults(dir: string): Results {
  return JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results;
}

describe('end to end (tiny)', { concurrency: false }, () => {
  test('superloss-noisy-labels: summary = last epoch rows, hard-clean sizes, and no λ choice reads test labels', { skip: !existsSync(FASHION_MNIST_DIR) && 'Fashion-MNIST not installed' }, async () => {
    const base = tmp();
    try {
      // The same data with every TEST label replaced (c → c+3 mod 10); training files are links to the originals.
      const scrambled = join(base, 'scrambled');
      mkdirSync(scrambled);
      for (const f of ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz']) symlinkSync(join(FASHION_MNIST_DIR, f), join(scrambled, f));
      const testLabels = readIdx(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz'));
      writeFileSync(join(scrambled, 't10k-labels-idx1-ubyte'), encodeIdx(testLabels.dims, Uint8Array.from(testLabels.data, (c) => (c + 3) % 10)));
      const opts = {
        experiment: 'superloss-noisy-labels',
        quick: true,
        sets: ['trainLimit=512', 'epochs=2', 'refEpochs=1', 'testLimit=500', 'lambdas=[0.25,1]', 'mlpHidden=[32]', 'batchSize=64'],
        workers: 1,
        quiet: true,
      };
      const methods = ['ce@sym-0.4', 'superloss@sym-0.4', 'superloss@conf-0.4'];
      const outDir = join(base, 'nl');
      const { results } = await runExperiment({ ...opts, flags: { seeds: [1], methods }, outDir });
      await runExperiment({ ...opts, flags: { seeds: [1], methods, data: scrambled }, outDir: join(base, 'nl-scrambled') });
      const onDisk = readResults(outDir);
      const other = readResults(join(base, 'nl-scrambled'));
      assert.deepEqual(onDisk.methods, methods);
      assert.equal(results.runs.length, 3);
      const rows = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const rowsB = readFileSync(join(base, 'nl-scrambled', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      for (const m of methods) {
        const run = onDisk.runs.find((r) => r.method === m)!;
        const epochRows = rows.filter((r) => r.method === m && typeof r.epoch === 'number');
        assert.deepEqual(epochRows.map((r) => r.epoch), [0, 1, 2]);
        const last = epochRows[2];
        for (const k of ['test_acc', 'val_acc', 'sigma_auroc', 'sigma_auroc_hard', 'negloss_auroc', 'negloss_auroc_hard', 'negloss_auroc_hardloss', 'negloss_auroc_hardclass', 'noisy_fit']) {
          assert.equal(run.metrics[k], last[k], `${m} ${k}: run metric = last-epoch row`);
        }
        // Spec hard clean: ≈ 10% top-loss ∪ the 4 confusable classes (≈ 40% of clean samples).
        const { hard_clean_frac: h, hardloss_frac: hl, hardclass_frac: hc } = run.metrics;
        assert.ok(Math.abs(hl - 0.1) < 0.01, `top-10% part ${hl}`);
        assert.ok(hc > 0.2 && hc < 0.5, `confusable-class part ${hc}`);
        assert.ok(h >= Math.max(hl, hc) && h <= hl + hc + 1e-12, `union ${h}`);
        assert.equal(run.metrics.tensors_after, 0, 'tensor count must return to 0 after a run');
        // Scrambled test labels: identical training, validation and λ choice; different test accuracy.
        const runB = other.runs.find((r) => r.method === m)!;
        for (const k of ['val_acc', 'negloss_auroc', 'noise_rate', 'hard_clean_frac']) assert.equal(runB.metrics[k], run.metrics[k], `${m} ${k} must not depend on test labels`);
        assert.equal(runB.metrics.lambda, run.metrics.lambda);
        assert.ok(runB.metrics.test_acc < run.metrics.test_acc - 0.3, `${m}: scrambled test labels must change test_acc (${runB.metrics.test_acc} vs ${run.metrics.test_acc})`);
      }
      const strip = (rs: Record<string, unknown>[]) => rs.filter((r) => r.kind === 'selection').map(({ select_test_acc: _t, ...rest }) => rest);
      assert.equal(strip(rows).length, 4);
      assert.deepEqual(strip(rowsB), strip(rows), 'selection rows (λ, val_acc, chosen) are identical with scrambled test labels');
      // The selection is real: the chosen λ has the best validation accuracy among the candidates.
      for (const m of ['superloss@sym-0.4', 'superloss@conf-0.4']) {
        const sel = rows.filter((r) => r.kind === 'selection' && r.method === m);
        const chosen = sel.find((r) => r.chosen)!;
        assert.equal(chosen.select_val_acc, Math.max(...sel.map((r) => r.select_val_acc)));
        assert.equal(onDisk.summary[m].lambda.mean, chosen.select_lambda);
      }
      assert.equal(onDisk.summary['ce@sym-0.4'].lambda, undefined);
      // conf noise: only the paired classes are noisy; realised rate ≈ 0.4 × their share (≈ 0.4).
      assert.ok(Math.abs(onDisk.summary['superloss@conf-0.4'].noise_rate.mean - 0.16) < 0.05);
      const sym = onDisk.summary['superloss@sym-0.4'].noise_rate.mean;
      assert.ok(Math.abs(sym - 0.4) < 0.07, `sym noise rate ${sym}`);
      assert.equal(rows.filter((r) => typeof r.hist_epoch === 'number').length, 6);
      const report = readFileSync(join(outDir, 'report.md'), 'utf8');
      for (const h of [/Chosen λ per \(noise, seed\)/, /Hard clean/, /AUROC table/, /negloss_auroc @1/, /SuperLoss − CE, paired by seed/, /Is the loss a valid difficulty measure/]) assert.match(report, h);
      const charts = readdirSync(join(outDir, 'charts'));
      for (const f of ['sym-0.4-test_acc.svg', 'sym-0.4-sigma_auroc.svg', 'superloss_sym-0.4-sigma-hist-epoch1.svg', 'ce_sym-0.4-sigma-hist-epoch2.svg']) assert.ok(charts.includes(f), f);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('superloss-noisy-labels on another IDX data set via --data (3 classes, 8×8, pair-flip noise)', async () => {
    const base = tmp();
    try {
      const data = join(base, 'idx');
      const rng = new Rng(11);
      const make = (n: number) => {
        const labels = Uint8Array.from({ length: n }, (_, i) => i % 3);
        // Class c lights up rows 2c..2c+2 of an 8×8 image, plus noise.
        const images = new Uint8Array(n * 64);
        for (let i = 0; i < n; i++) for (let p = 0; p < 64; p++) images[i * 64 + p] = (Math.floor(p / 8) >> 1 === labels[i] ? 180 : 0) + rng.int(60);
        return { labels, images };
      };
      const tr = make(240);
      const te = make(60);
      mkdirSync(data, { recursive: true });
      writeFileSync(join(data, 'train-images-idx3-ubyte'), encodeIdx([240, 8, 8], tr.images));
      writeFileSync(join(data, 'train-labels-idx1-ubyte'), encodeIdx([240], tr.labels));
      writeFileSync(join(data, 't10k-images-idx3-ubyte'), encodeIdx([60, 8, 8], te.images));
      writeFileSync(join(data, 't10k-labels-idx1-ubyte'), encodeIdx([60], te.labels));
      const outDir = join(base, 'out');
      await runExperiment({
        experiment: 'superloss-noisy-labels',
        quick: true,
        sets: ['trainLimit=0', 'epochs=4', 'refEpochs=1', 'lambdas=[1]', 'mlpHidden=[16]', 'batchSize=32', 'lr=0.01', 'hardClasses=[0]', 'confusablePairs=[[1,2]]'],
        flags: { seeds: [2], data, methods: ['ce@pair-0.3', 'superloss@pair-0.3', 'ce@sym-0.3'] },
        workers: 1,
        quiet: true,
        outDir,
      });
      const r = readResults(outDir);
      for (const m of r.methods) assert.ok(r.summary[m].test_acc.mean > 0.5, `${m} learns the easy synthetic task: ${r.summary[m].test_acc.mean}`);
      // Symmetric noise on an easy task: the mislabelled samples stand out by their loss (tie-free AUROC well above chance).
      assert.ok(r.summary['ce@sym-0.3'].negloss_auroc.mean > 0.8, `negloss_auroc ${r.summary['ce@sym-0.3'].negloss_auroc.mean}`);
      // Config keys naming classes the data set does not have are user errors that name the key.
      await assert.rejects(
        runExperiment({ experiment: 'superloss-noisy-labels', quick: true, sets: ['hardClasses=[7]'], flags: { data }, workers: 1, quiet: true, outDir: join(base, 'never') }),
        (e: Error) => e instanceof UserError && /hardClasses: class 7/.test(e.message),
      );
      await assert.rejects(
        runExperiment({ experiment: 'superloss-noisy-labels', quick: true, sets: ['hardClasses=[0]', 'confusablePairs=[[0,5]]'], flags: { data }, workers: 1, quiet: true, outDir: join(base, 'never') }),
        (e: Error) => e instanceof UserError && /confusablePairs: .*class 5/.test(e.message),
      );
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('superloss-regression: same seed ⇒ same numbers; LR/β/λ choices never read test targets', async () => {
    const base = tmp();
    try {
      // cars.json as a CSV in loader row order, and a copy whose TEST targets (seed 1's split) are scrambled.
      const ds = loadTabular('');
      const { testRows } = splitRows(ds.n, 0.2, 1);
      const isTest = new Set(testRows);
      const csv = (scramble: boolean) => {
        const head = [...ds.featureNames.map((_, j) => `f${j}`), 'y'].join(',');
        const body = Array.from({ length: ds.n }, (_, i) => [...ds.x.subarray(i * ds.d, (i + 1) * ds.d), scramble && isTest.has(i) ? 100 - ds.y[i] : ds.y[i]].join(','));
        return [head, ...body].join('\n');
      };
      writeFileSync(join(base, 'cars.csv'), csv(false));
      writeFileSync(join(base, 'cars-scrambled.csv'), csv(true));
      const opts = {
        experiment: 'superloss-regression',
        quick: true,
        sets: ['epochs=4', 'evalEvery=2', 'lambdas=[0.25,1]', 'lrs=[0.003,0.03]', 'smoothL1Betas=[0.5,2]', 'hidden=[8]', 'target="y"', 'exclude=[]'],
        workers: 1,
        quiet: true,
      };
      const methods = ['l1@out-0.2', 'smoothl1@out-0.2', 'superloss@out-0.2'];
      const a = await runExperiment({ ...opts, flags: { seeds: [1], methods, data: join(base, 'cars.csv') }, outDir: join(base, 'a') });
      const b = await runExperiment({ ...opts, flags: { seeds: [1], methods, data: join(base, 'cars.csv') }, outDir: join(base, 'b') });
      const c = await runExperiment({ ...opts, flags: { seeds: [1], methods, data: join(base, 'cars-scrambled.csv') }, outDir: join(base, 'c') });
      assert.deepEqual(a.results.runs.map((r) => r.metrics), b.results.runs.map((r) => r.metrics));
      const r = readResults(join(base, 'a'));
      const rows = readFileSync(join(base, 'a', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const rowsC = readFileSync(join(base, 'c', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const expected: Record<string, number> = { 'l1@out-0.2': 2, 'smoothl1@out-0.2': 4, 'superloss@out-0.2': 4 };
      for (const m of methods) {
        const run = r.runs.find((x) => x.method === m)!;
        const runC = c.results.runs.find((x) => x.method === m)!;
        assert.equal(run.metrics.n_candidates, expected[m]);
        const sel = rows.filter((x) => x.kind === 'selection' && x.method === m);
        assert.equal(sel.length, expected[m]);
        // The chosen candidate has the lowest validation median AE, and the grid points really differ on validation.
        const chosen = sel.find((x) => x.chosen)!;
        assert.equal(chosen.select_val_medae, Math.min(...sel.map((x) => x.select_val_medae)));
        assert.ok(new Set(sel.map((x) => x.select_val_medae)).size > 1, `${m}: candidates differ on validation`);
        assert.equal(run.metrics.lr, chosen.select_lr);
        assert.equal(run.metrics.test_mae, chosen.select_test_mae);
        assert.equal(run.metrics.tensors_after, 0);
        assert.equal(run.metrics.outlier_rate, Math.round(0.2 * (run.metrics.n_fit + run.metrics.n_val)) / (run.metrics.n_fit + run.metrics.n_val));
        // Scrambled test targets: same choices and validation numbers, different test MAE.
        for (const k of ['lr', 'beta', 'lambda', 'val_medae', 'negloss_auroc', 'train_clean_mae']) assert.equal(runC.metrics[k], run.metrics[k], `${m} ${k} must not depend on test targets`);
        assert.ok(Math.abs(runC.metrics.test_mae - run.metrics.test_mae) > 1, `${m}: scrambled test targets change test_mae`);
      }
      const strip = (rs: Record<string, unknown>[]) => rs.filter((x) => x.kind === 'selection').map(({ select_test_mae: _t, ...rest }) => rest);
      assert.deepEqual(strip(rowsC), strip(rows));
      assert.equal(r.runs.find((x) => x.method === 'smoothl1@out-0.2')!.metrics.lambda, undefined);
      assert.ok([0.5, 2].includes(r.runs.find((x) => x.method === 'smoothl1@out-0.2')!.metrics.beta));
      assert.ok([0.25, 1].includes(r.runs.find((x) => x.method === 'superloss@out-0.2')!.metrics.lambda));
      const report = readFileSync(join(base, 'a', 'report.md'), 'utf8');
      for (const h of [/Tuning grid: validation signal per candidate/, /Asymmetry/, /superloss − l1 \(paired, 95% t-CI\)/]) assert.match(report, h);
      assert.ok(existsSync(join(base, 'a', 'charts', 'test_mae-by-rate.svg')));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('regression data errors are user errors naming vega-datasets', async () => {
    await assert.rejects(
      runExperiment({ experiment: 'superloss-regression', quick: true, sets: ['data="/nonexistent/cars.json"'], workers: 1, quiet: true, outDir: join(tmpdir(), 'efftrain-never') }),
      (e: Error) => e instanceof UserError && /npm install vega-datasets/.test(e.message),
    );
    await assert.rejects(
      runExperiment({ experiment: 'superloss-noisy-labels', quick: true, flags: { methods: ['ce@bogus-0.1'] }, workers: 1, quiet: true, outDir: join(tmpdir(), 'efftrain-never') }),
      UserError,
    );
  });
});
