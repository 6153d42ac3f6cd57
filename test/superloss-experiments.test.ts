/**
 * Tests for the SuperLoss experiments: method-name parsing, target-outlier injection, the tabular loader,
 * the σ-diagnostics, and tiny end-to-end runs of `superloss-noisy-labels` and `superloss-regression` through
 * `runExperiment` (worker threads, results.json, report). Kept small: the whole file runs in well under a minute.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/engine/rng.js';
import { UserError } from '../src/errors.js';
import { injectTargetOutliers, loadTabular, parseCsv, vegaCarsPath } from '../src/data/tabular.js';
import { parseNoisyLabelMethod, sigmaDiagnostics } from '../src/experiments/superloss-noisy-labels/index.js';
import { parseRegressionMethod } from '../src/experiments/superloss-regression/index.js';
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
    assert.equal(d.metrics.lowsigma_precision, 1);
    // σ* = e for the clamped easy samples (ties count ½ in the AUROC, still 1 here since noisy σ* < 1).
    assert.ok(Math.abs(d.sigma[0] - Math.E) < 1e-12);
    assert.ok(d.sigma[4] < 1 && d.sigma[5] < d.sigma[4]);
  });
});

function readResults(dir: string): Results {
  return JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results;
}

describe('end to end (tiny)', { concurrency: false }, () => {
  test('superloss-noisy-labels', { skip: !existsSync(FASHION_MNIST_DIR) && 'Fashion-MNIST not installed' }, async () => {
    const outDir = join(tmp(), 'nl');
    try {
      const { results } = await runExperiment({
        experiment: 'superloss-noisy-labels',
        quick: true,
        sets: ['trainLimit=512', 'epochs=2', 'refEpochs=1', 'testLimit=500', 'lambdas=[0.25,1]', 'mlpHidden=[32]', 'batchSize=64'],
        flags: { seeds: [1] },
        workers: 1,
        quiet: true,
        outDir,
      });
      const onDisk = readResults(outDir);
      assert.deepEqual(onDisk.methods, ['ce@sym-0.4', 'superloss@sym-0.4']);
      assert.equal(results.runs.length, 2);
      for (const m of onDisk.methods) {
        const s = onDisk.summary[m];
        for (const k of ['test_acc', 'sigma_auroc', 'sigma_auroc_hard', 'negloss_auroc', 'noisy_fit', 'val_acc']) {
          assert.ok(s[k] && s[k].mean >= 0 && s[k].mean <= 1, `${m} ${k} = ${s[k]?.mean}`);
        }
        assert.ok(Math.abs(s.noise_rate.mean - 0.4) < 0.1);
        assert.equal(s.tensors_after.mean, 0, 'tensor count must return to 0 after a run');
      }
      assert.ok([0.25, 1].includes(onDisk.summary['superloss@sym-0.4'].lambda.mean));
      assert.equal(onDisk.summary['ce@sym-0.4'].lambda, undefined);
      const chosen = (onDisk.derived as { chosenLambda: Record<string, Record<string, number>> }).chosenLambda;
      assert.equal(chosen['superloss@sym-0.4']['1'], onDisk.summary['superloss@sym-0.4'].lambda.mean);
      const rows = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const epochs = rows.filter((r) => r.method === 'superloss@sym-0.4' && typeof r.epoch === 'number').map((r) => r.epoch);
      assert.deepEqual(epochs, [0, 1, 2]);
      assert.equal(rows.filter((r) => typeof r.hist_epoch === 'number').length, 4);
      assert.equal(rows.filter((r) => typeof r.select_lambda === 'number').length, 2);
      const report = readFileSync(join(outDir, 'report.md'), 'utf8');
      assert.match(report, /Chosen λ per \(noise, seed\)/);
      assert.match(report, /Hard clean/);
      assert.match(report, /Is the loss a valid difficulty measure/);
      const charts = readdirSync(join(outDir, 'charts'));
      for (const f of ['sym-0.4-test_acc.svg', 'sym-0.4-sigma_auroc.svg', 'superloss_sym-0.4-sigma-hist-epoch1.svg', 'ce_sym-0.4-sigma-hist-epoch2.svg']) assert.ok(charts.includes(f), f);
    } finally {
      rmSync(join(outDir, '..'), { recursive: true, force: true });
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
        sets: ['trainLimit=0', 'epochs=4', 'refEpochs=1', 'lambdas=[1]', 'mlpHidden=[16]', 'batchSize=32', 'lr=0.01'],
        flags: { seeds: [2], data, methods: ['ce@pair-0.3', 'superloss@pair-0.3'] },
        workers: 1,
        quiet: true,
        outDir,
      });
      const r = readResults(outDir);
      for (const m of r.methods) {
        assert.ok(r.summary[m].test_acc.mean > 0.5, `${m} learns the easy synthetic task: ${r.summary[m].test_acc.mean}`);
        assert.ok(r.summary[m].sigma_auroc.mean >= 0 && r.summary[m].sigma_auroc.mean <= 1);
      }
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  test('superloss-regression (and same seed ⇒ same numbers)', async () => {
    const base = tmp();
    try {
      const opts = {
        experiment: 'superloss-regression',
        quick: true,
        sets: ['epochs=4', 'evalEvery=2', 'lambdas=[0.25,1]', 'hidden=[8]'],
        flags: { seeds: [1], methods: ['l1@out-0.2', 'smoothl1@out-0.2', 'superloss@out-0.2'] },
        workers: 1,
        quiet: true,
      };
      const a = await runExperiment({ ...opts, outDir: join(base, 'a') });
      const b = await runExperiment({ ...opts, outDir: join(base, 'b') });
      assert.deepEqual(a.results.runs.map((r) => r.metrics), b.results.runs.map((r) => r.metrics));
      const r = readResults(join(base, 'a'));
      assert.equal(r.runs.length, 3);
      for (const m of r.methods) {
        const s = r.summary[m];
        assert.ok(Number.isFinite(s.test_mae.mean) && s.test_mae.mean > 0, `${m} test_mae`);
        assert.ok(s.negloss_auroc.mean >= 0 && s.negloss_auroc.mean <= 1);
        assert.equal(s.tensors_after.mean, 0);
        assert.equal(s.outlier_rate.mean, Math.round(0.2 * (s.n_fit.mean + s.n_val.mean)) / (s.n_fit.mean + s.n_val.mean));
      }
      const sl = r.summary['superloss@out-0.2'];
      assert.ok(sl.sigma_auroc.mean >= 0 && sl.sigma_auroc.mean <= 1);
      assert.ok([0.25, 1].includes(sl.lambda.mean));
      assert.ok(existsSync(join(base, 'a', 'report.md')));
      assert.match(readFileSync(join(base, 'a', 'report.md'), 'utf8'), /Chosen λ per \(rate, seed\)/);
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
