import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { FASHION_MNIST_DIR } from '../src/data/image-dataset.js';
import { initEngine } from '../src/engine/backend.js';
import { shiftAddonStatus } from '../src/engine/shift-addon.js';
import { runExperiment } from '../src/experiments/runner.js';
import { parseS3Method } from '../src/experiments/s3-shift/index.js';
import { shiftInferenceBench } from '../src/bench/shift-inference.js';
import { ShiftInferenceEngine, unpackShiftModel } from '../src/methods/s3/index.js';
import type { Results } from '../src/experiments/types.js';
import { writeSyntheticIdx } from './helpers/synthetic.js';
import { tempDir } from './helpers/tmp.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });
const realData = existsSync(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz')) || existsSync(join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte'));
// Real Fashion-MNIST when installed (the export check then runs on real images), else a synthetic IDX set.
const data = realData ? FASHION_MNIST_DIR : writeSyntheticIdx({ nTrain: 600, nTest: 200, size: 12, classes: 4 });
const METHODS = ['fp', 'deepshift-ps-3bit', 's3-3bit'];

test('parseS3Method understands the method names', () => {
  assert.deepEqual(parseS3Method('fp'), { kind: 'fp' });
  assert.deepEqual(parseS3Method('s3-4bit'), { kind: 'shift', parameterization: 's3', bits: 4, encoding: 'nested', regularize: true });
  assert.deepEqual(parseS3Method('deepshift-ps-3bit'), { kind: 'shift', parameterization: 'deepshift-ps', bits: 3, encoding: 'nested', regularize: true });
  assert.equal((parseS3Method('s3-3bit-noreg') as { regularize: boolean }).regularize, false);
  assert.equal((parseS3Method('s3-3bit-summed') as { encoding: string }).encoding, 'summed');
  assert.throws(() => parseS3Method('s3-5bit'));
  assert.throws(() => parseS3Method('deepshift-ps-3bit-noreg'));
});

let runDir = '';

test('s3-shift end to end: results.json metrics, export agreement, diagnostics, report', async () => {
  const outDir = join(tempDir('efftrain-s3-'), 'run');
  const { results } = await runExperiment({
    experiment: 's3-shift',
    quick: false,
    sets: ['trainLimit=1024', 'testLimit=200', 'valSize=200', 'epochs=2', 'batchSize=32', 'channels=[8,16,16]'],
    flags: { methods: METHODS, seeds: [1], data },
    outDir,
    workers: 1,
    quiet: true,
  });
  runDir = outDir;
  const onDisk = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as Results;
  assert.deepEqual(onDisk.methods, METHODS);
  assert.equal(results.runs.length, 3);
  for (const r of results.runs) {
    const m = r.metrics;
    assert.ok(m.test_acc >= 0 && m.test_acc <= 1, `${r.method} test_acc ${m.test_acc}`);
    assert.ok(m.test_acc > 0.3, `${r.method} learns something: ${m.test_acc}`);
    assert.equal(m.export_agreement, 1, `${r.method}: engine argmax agrees with tfjs on every test image`);
    assert.equal(m.export_test_acc, m.test_acc, `${r.method}: equal accuracy`);
    assert.ok(Number.isFinite(m.sign_flip_last), `${r.method} sign_flip_last`);
    assert.ok(m.zero_frac >= 0 && m.zero_frac <= 1);
    assert.ok(m.export_bytes > 0 && m.float32_bytes > 0);
    assert.equal(m.tensors_after, 0, `${r.method} disposed its tensors`);
    assert.equal(m.export_engine_native, shiftAddonStatus().available ? 1 : 0, `${r.method}: engine path recorded`);
    assert.ok(existsSync(join(outDir, 'runs', `${r.method}-seed1`, 'model.efsh')));
    assert.ok(existsSync(join(outDir, 'runs', `${r.method}-seed1`, 'model', 'model.json')));
    if (r.method !== 'fp') assert.ok(m.export_bytes < m.float32_bytes / 1.5, `${r.method}: export ${m.export_bytes} vs float32 ${m.float32_bytes}`);
  }
  const ps = results.runs.find((r) => r.method === 'deepshift-ps-3bit')!;
  const s3 = results.runs.find((r) => r.method === 's3-3bit')!;
  assert.ok(s3.metrics.sign_flip_last > 0, 'S3 signs flip');
  assert.ok(ps.metrics.sign_flip_last < s3.metrics.sign_flip_last, 'DeepShift-PS flips less than S3');
  // Adam moves every latent by at most ≈ Σ lr; PS sign latents need ≥ 1 to reverse, S3's ≈ |W_sign| (≈ 0.05).
  assert.ok(ps.metrics.sign_latent_dabs_p99 <= 1.2 * ps.metrics.lr_sum_latent, `PS |Δs̃| p99 ${ps.metrics.sign_latent_dabs_p99} vs Σ lr ${ps.metrics.lr_sum_latent}`);
  assert.ok(ps.metrics.sign_latent_flip_dist_median > 1 && s3.metrics.sign_latent_flip_dist_median < 0.2);
  const rows = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  for (const m of METHODS) {
    const ep = rows.filter((r) => r.method === m && r.epoch === 1);
    assert.equal(ep.length, 1);
    for (const k of ['sign_flip', 'sign_flip_latent', 'sign_changed_since_init', 'zero_frac', 'val_acc']) assert.equal(typeof ep[0][k], 'number', `${m} ${k}`);
    assert.equal(ep[0].test_acc, undefined, 'the test split is not evaluated per epoch');
    const mv = rows.filter((r) => r.method === m && r.kind === 'diagnostic' && r.name === 'latent_movement');
    assert.equal(mv.length, 1);
    assert.ok(mv[0].sign_dabs_median > 0, `${m}: sign latents moved`);
    const hist = rows.filter((r) => r.method === m && r.kind === 'diagnostic' && r.name === 'shift_hist');
    assert.equal(hist.length, m === 'fp' ? 0 : 1);
  }
  const h = rows.find((r) => r.method === 's3-3bit' && r.kind === 'diagnostic' && r.name === 'shift_hist');
  assert.deepEqual(h.shifts, [0, 1, 2]);
  assert.equal(h.zeros + h.counts.reduce((a: number, b: number) => a + b, 0), h.total);
  const extra = results.derived as { targets: Record<string, unknown> };
  assert.equal(typeof extra.targets.fp_minus_s3_3bit_points, 'number');
  assert.equal(extra.targets.export_agreement_min, 1);
  const report = readFileSync(join(outDir, 'report.md'), 'utf8');
  assert.match(report, /## S3 diagnostics/);
  assert.match(report, /How far the latents moved/);
  assert.match(report, /Paired comparisons/);
  assert.match(report, /s3-shift-hist-s3-3bit\.svg/);
  for (const f of ['charts/curve-sign_flip.svg', 'charts/curve-zero_frac.svg', 'charts/s3-sign-flip-log.svg', 'charts/s3-shift-hist-deepshift-ps-3bit.svg']) assert.ok(existsSync(join(outDir, f)), f);
});

test('export-shift verb: run directory (default and --method/--seed), model directory, --verify, errors', () => {
  assert.ok(runDir, 'needs the end-to-end run');
  const tmp = tempDir('efftrain-exp-');
  // Default: the first shift method (config order) → deepshift-ps-3bit seed 1.
  const out1 = join(tmp, 'a.efsh');
  const r1 = cli(['export-shift', runDir, '--out', out1, '--json']);
  assert.equal(r1.status, 0, r1.stderr);
  const j1 = JSON.parse(r1.stdout);
  assert.match(j1.source, /deepshift-ps-3bit, seed 1/);
  assert.equal(j1.bytes, readFileSync(out1).length);
  assert.ok(j1.float32Bytes > j1.bytes);
  assert.deepEqual(j1.shiftBits, [3]);
  // Same bytes as the in-run export.
  assert.deepEqual(readFileSync(out1), readFileSync(join(runDir, 'runs', 'deepshift-ps-3bit-seed1', 'model.efsh')));

  const out2 = join(tmp, 'b.efsh');
  const r2 = cli(['export-shift', runDir, '--method', 's3-3bit', '--seed', '1', '--out', out2]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stdout, /compact format: \d+ bytes/);
  assert.match(r2.stdout, /float32 model: +\d+ bytes/);
  assert.deepEqual(readFileSync(out2), readFileSync(join(runDir, 'runs', 's3-3bit-seed1', 'model.efsh')));
  const desc = unpackShiftModel(new Uint8Array(readFileSync(out2)));
  assert.ok(desc.layers.some((l) => l.kind === 'shiftConv2d'));
  assert.ok(new ShiftInferenceEngine(desc).outputSize > 0);

  const out3 = join(tmp, 'c.efsh');
  const r3 = cli(['export-shift', join(runDir, 'runs', 's3-3bit-seed1', 'model'), '--out', out3, '--verify', '50', '--data', data, '--json']);
  assert.equal(r3.status, 0, r3.stderr);
  const j3 = JSON.parse(r3.stdout);
  assert.equal(j3.verify.images, 50);
  assert.equal(j3.verify.agreement, 1);
  assert.equal(j3.verify.engineAcc, j3.verify.tfjsAcc);
  assert.ok(j3.verify.engineBackend === 'native' || /runs in TypeScript: ./.test(j3.verify.engineBackend), j3.verify.engineBackend);
  if (j3.verify.engineBackend === 'native') assert.equal(j3.verify.bitIdenticalToTypeScript, true);

  const bad = cli(['export-shift', runDir, '--method', 'nope', '--out', join(tmp, 'd.efsh')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no saved model matches --method nope/);
  const missing = cli(['export-shift', join(tmp, 'nothing'), '--out', join(tmp, 'e.efsh')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /not found/);
});

test('bench shift-inference (quick) reports both cases', async () => {
  await initEngine({ backend: 'wasm' });
  const lines: string[] = [];
  const res = await shiftInferenceBench.run({ quick: true, log: (l) => lines.push(l) });
  const names = res.cases.map((c) => c.name);
  for (const n of ['shift-inference/engine', 'shift-inference/tfjs-wasm']) assert.ok(names.includes(n), n);
  for (const c of res.cases) {
    assert.ok(c.msPerStep > 0 && Number.isFinite(c.msPerStep), `${c.name} msPerStep`);
    assert.ok((c.imagesPerSec as number) > 0);
  }
  const agreement = res.agreement as { engineVsTfjsFloat: number; engineVsTfjsShiftLayers: number };
  assert.equal(agreement.engineVsTfjsFloat, 1);
  assert.equal(agreement.engineVsTfjsShiftLayers, 1);
  assert.equal(tf.getBackend(), 'wasm');
  assert.ok(lines.some((l) => l.includes('shift-inference/engine')));
  if (shiftAddonStatus().available) {
    // the native path ran, and the TypeScript path was timed next to it with bit-identical logits
    assert.ok(names.includes('shift-inference/engine-ts'));
    assert.equal(res.bitIdenticalToTypeScript, true);
    assert.match(String(res.engineBackend), /^native addon/);
  } else {
    assert.ok(lines.some((l) => /shift engine runs in TypeScript: ./.test(l)), 'one line saying why the native path is off');
  }
});
