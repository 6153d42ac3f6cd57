import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSyntheticIdx } from './helpers/synthetic.js';
import type { Results } from '../src/experiments/types.js';
import { tempDir } from './helpers/tmp.js';
import { loadBlas } from '../src/engine/blas.js';
import { runStatus } from '../src/serve/runs.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const tmp = () => tempDir('efftrain-cli-');
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });
const data = writeSyntheticIdx({ nTrain: 600, nTest: 200, size: 12, classes: 4 });
const tiny = ['--data', data, '--set', 'epochs=2', '--set', 'batchSize=32', '--set', 'mlpHidden=[32]', '--set', 'cnnChannels=[4,8]', '--set', 'cnnHidden=16', '--set', 'cnnDownsample="stride"', '--quiet'];

test('--help works on every verb', () => {
  for (const verb of [[], ['list'], ['run'], ['report'], ['bench'], ['serve']]) {
    const r = cli([...verb, '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: efftrain/);
  }
});

test('list shows experiments and benches (text and JSON)', () => {
  const r = cli(['list']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /fashion-baseline/);
  const j = JSON.parse(cli(['list', '--json']).stdout);
  const fb = j.experiments.find((e: { name: string }) => e.name === 'fashion-baseline');
  assert.deepEqual(fb.methods, ['mlp', 'cnn']);
  assert.ok(j.benches.some((b: { name: string }) => b.name === 'engine'));
});

let firstRun: { dir: string; results: Results } | null = null;

test('run writes config.json, metrics.jsonl, results.json (stable contract), report.md, SVG charts', () => {
  const dir = join(tmp(), 'run');
  const r = cli(['run', 'fashion-baseline', ...tiny, '--seeds', '1,2', '--workers', '2', '--out', dir]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), dir);
  const res = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results;
  assert.equal(res.experiment, 'fashion-baseline');
  assert.equal(res.quick, false);
  // auto: wasm with OpenBLAS when the addon is built (and not forced off), else plain wasm.
  assert.equal(res.backend, loadBlas().addon ? 'wasm+blas' : 'wasm');
  assert.deepEqual(res.seeds, [1, 2]);
  assert.equal(res.runs.length, 4);
  for (const run of res.runs) {
    assert.deepEqual(Object.keys(run).sort(), ['method', 'metrics', 'seed', 'wallSeconds']);
    assert.ok(run.metrics.test_acc >= 0 && run.metrics.test_acc <= 1);
    assert.ok(run.metrics.test_acc > 0.6, `${run.method} learns the synthetic task: ${run.metrics.test_acc}`);
    assert.equal(run.metrics.leaked_tensors, 0, 'run disposed all its tensors');
  }
  for (const m of ['mlp', 'cnn']) {
    const s = res.summary[m].test_acc;
    assert.equal(s.n, 2);
    const xs = res.runs.filter((x) => x.method === m).map((x) => x.metrics.test_acc);
    assert.ok(Math.abs(s.mean - (xs[0] + xs[1]) / 2) < 1e-12);
  }
  assert.ok(res.wallSeconds > 0);
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.epochs, 2);
  assert.equal(cfg.data, data);
  const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.length, 8, 'one row per epoch per run');
  assert.ok(rows.every((x) => typeof x.method === 'string' && typeof x.seed === 'number' && typeof x.epoch === 'number'));
  const report = readFileSync(join(dir, 'report.md'), 'utf8');
  assert.match(report, /\| mlp \| 0\.\d{4} ± /);
  assert.match(report, /reproduce: `efftrain run fashion-baseline/);
  const svg = readFileSync(join(dir, 'charts', 'curve-test_acc.svg'), 'utf8');
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<polyline /);
  assert.equal(JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8')).state, 'done', 'status.json says done');
  firstRun = { dir, results: res };
});

test('--workers 1 gives identical numbers to --workers 2 (same seed, same backend)', () => {
  assert.ok(firstRun, 'needs the previous test');
  const dir = join(tmp(), 'run1');
  const r = cli(['run', 'fashion-baseline', ...tiny, '--seeds', '1,2', '--workers', '1', '--out', dir]);
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results;
  assert.deepEqual(res.runs.map((x) => x.metrics), firstRun!.results.runs.map((x) => x.metrics));
});

test('report regenerates report.md from a run directory', () => {
  assert.ok(firstRun);
  writeFileSync(join(firstRun!.dir, 'report.md'), 'stale');
  const r = cli(['report', firstRun!.dir]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(readFileSync(join(firstRun!.dir, 'report.md'), 'utf8'), /## Summary/);
  const bad = cli(['report', tmp()]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /results\.json: not found/);
});

function assertUserError(args: string[], pattern: RegExp, outDir?: string): void {
  const r = cli(args);
  assert.notEqual(r.status, 0, `expected failure for ${args.join(' ')}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  if (outDir) assert.ok(!existsSync(join(outDir, 'results.json')), 'no results.json left behind');
}

test('user errors: one clear message naming the key or file, non-zero exit, no results.json', () => {
  const out = () => join(tmp(), 'o');
  let o = out();
  assertUserError(['run', 'nope', '--out', o], /unknown experiment "nope"/, o);
  assertUserError(['run', 'fashion-baseline', '--bogus'], /unknown option '--bogus'/);
  o = out();
  assertUserError(['run', 'fashion-baseline', ...tiny, '--set', 'bogusKey=1', '--out', o], /unknown config key "bogusKey"/, o);
  o = out();
  assertUserError(['run', 'fashion-baseline', ...tiny, '--set', 'epochs=-1', '--out', o], /config key "epochs"/, o);
  o = out();
  assertUserError(['run', 'fashion-baseline', ...tiny, '--methods', 'mlp,transformer', '--out', o], /unknown method "transformer"/, o);
  o = out();
  assertUserError(['run', 'fashion-baseline', ...tiny, '--data', '/no/such/dir', '--out', o], /data directory \/no\/such\/dir does not exist/, o);
  const broken = writeSyntheticIdx({ nTrain: 50, nTest: 20, size: 6 });
  writeFileSync(join(broken, 't10k-images-idx3-ubyte'), Buffer.from([0, 0, 8, 3, 0, 0, 0, 20, 0, 0, 0, 6, 0, 0, 0, 6, 1, 2]));
  o = out();
  assertUserError(['run', 'fashion-baseline', ...tiny, '--data', broken, '--out', o], /t10k-images-idx3-ubyte: truncated IDX data/, o);
  const cfg = join(tmp(), 'bad.json');
  writeFileSync(cfg, '{\n  "epochs": 2,\n  "lr": oops\n}\n');
  o = out();
  assertUserError(['run', 'fashion-baseline', '--config', cfg, '--out', o], /bad\.json:3: invalid JSON/, o);
  assertUserError(['run', 'fashion-baseline', '--seeds', '1,x'], /seeds must be a comma-separated list/);
  assertUserError(['run', 'fashion-baseline', '--backend', 'gpu'], /Allowed choices are auto, wasm, wasm-blas, cpu, node/);
  assertUserError(['run', 'fashion-baseline', '--backend', 'node', ...tiny, '--out', out()], /needs @tensorflow\/tfjs-node/);
});

test('a NaN loss stops the run with the step named and no results.json', () => {
  const o = join(tmp(), 'nan');
  const r = cli(['run', 'fashion-baseline', ...tiny, '--methods', 'mlp', '--seeds', '1', '--set', 'lr=1e30', '--set', 'optimizer="sgd"', '--out', o]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /mlp seed 1: loss became (NaN|Infinity|-Infinity) at step \d+; last good checkpoint kept at .*checkpoint\.safetensors/);
  assert.ok(!existsSync(join(o, 'results.json')));
  assert.deepEqual(runStatus(o, null, false).status, 'failed', 'status.json records the failure for the dashboard');
});

test('a run killed mid-training and resumed with --resume ends with the same metrics as an uninterrupted run', async () => {
  const big = writeSyntheticIdx({ nTrain: 3000, nTest: 200, size: 12, classes: 4, seed: 3 });
  const args = ['run', 'fashion-baseline', '--data', big, '--methods', 'cnn', '--seeds', '5', '--workers', '1', '--quiet',
    '--set', 'epochs=2', '--set', 'batchSize=16', '--set', 'cnnChannels=[8,16]', '--set', 'cnnHidden=16', '--set', 'cnnDownsample="stride"', '--set', 'checkpointEverySteps=10'];
  const ref = join(tmp(), 'ref');
  assert.equal(cli([...args, '--out', ref]).status, 0);
  const killedDir = join(tmp(), 'killed');
  const ckpt = join(killedDir, 'runs', 'cnn-seed5', 'checkpoint.safetensors');
  const child = spawn(process.execPath, [CLI, ...args, '--out', killedDir], { stdio: 'ignore' });
  const t0 = Date.now();
  // Kill once the second mid-run checkpoint exists (file is replaced atomically, so poll its metadata).
  await new Promise<void>((resolve, reject) => {
    const poll = setInterval(() => {
      if (existsSync(ckpt)) {
        const head = readFileSync(ckpt).subarray(0, 4096).toString('latin1');
        const m = /\\"step\\":(\d+)/.exec(head);
        if (m && Number(m[1]) >= 20) {
          clearInterval(poll);
          child.kill('SIGKILL');
          resolve();
        }
      }
      if (Date.now() - t0 > 120000) {
        clearInterval(poll);
        reject(new Error('no checkpoint appeared'));
      }
    }, 10);
  });
  await new Promise((r) => child.on('exit', r));
  assert.ok(!existsSync(join(killedDir, 'results.json')), 'killed run left no results.json');
  assert.equal(runStatus(killedDir, null, false).status, 'interrupted', 'a killed run reads as interrupted (its pid is gone)');
  // A truncated checkpoint (a disk filled up, a copy cut short) on --resume: a user error naming the file and
  // what to do, nothing written. Tried on a copy so the real resume below still has its checkpoint.
  const brokenDir = join(tmp(), 'broken');
  cpSync(killedDir, brokenDir, { recursive: true });
  const brokenCkpt = join(brokenDir, 'runs', 'cnn-seed5', 'checkpoint.safetensors');
  truncateSync(brokenCkpt, Math.floor(statSync(brokenCkpt).size / 2));
  const broken = cli([...args, '--out', brokenDir, '--resume']);
  assert.equal(broken.status, 2, broken.stderr);
  assert.match(broken.stderr, /cnn-seed5\/checkpoint\.safetensors: cannot resume .*truncated.*delete it/);
  assert.doesNotMatch(broken.stderr, /internal error|\n\s+at /);
  assert.ok(!existsSync(join(brokenDir, 'results.json')), 'no results.json after a failed resume');
  const resumed = cli([...args, '--out', killedDir, '--resume']);
  assert.equal(resumed.status, 0, resumed.stderr);
  const a = JSON.parse(readFileSync(join(ref, 'results.json'), 'utf8')) as Results;
  const b = JSON.parse(readFileSync(join(killedDir, 'results.json'), 'utf8')) as Results;
  assert.deepEqual(b.runs[0].metrics, a.runs[0].metrics);
  const rowsA = readFileSync(join(ref, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => { const { epoch_seconds: _e, ...rest } = JSON.parse(l); return rest; });
  const rowsB = readFileSync(join(killedDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => { const { epoch_seconds: _e, ...rest } = JSON.parse(l); return rest; });
  assert.deepEqual(rowsB, rowsA, 'per-epoch metrics identical after resume');
  assert.ok(!readdirSync(join(killedDir, 'runs', 'cnn-seed5')).some((f) => f.includes('.tmp-')));
  assertUserError([...args, '--out', killedDir], /already holds a run/);
});

test('--resume with more seeds keeps the finished runs and runs only the new ones; other changes are refused', () => {
  const args = ['run', 'fashion-baseline', ...tiny, '--methods', 'mlp', '--workers', '1'];
  const dir = join(tmp(), 'grow');
  assert.equal(cli([...args, '--seeds', '1', '--out', dir]).status, 0);
  const seed1 = readFileSync(join(dir, 'runs', 'mlp-seed1', 'result.json'), 'utf8');
  writeFileSync(join(dir, 'runs', 'mlp-seed1', 'result.json'), JSON.stringify({ ...JSON.parse(seed1), wallSeconds: 12345.5 }));
  const grown = cli([...args, '--seeds', '1,2', '--out', dir, '--resume']);
  assert.equal(grown.status, 0, grown.stderr);
  const res = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results;
  assert.deepEqual(res.runs.map((r) => r.seed), [1, 2]);
  assert.equal(res.runs[0].wallSeconds, 12345.5, 'seed 1 came from its finished result.json, not a new run');
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).seeds, [1, 2]);
  const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(rows.filter((r) => r.seed === 1).length, rows.filter((r) => r.seed === 2).length, 'seed 1 rows kept, seed 2 rows added');
  // Seed 2 equals a run of seed 2 alone.
  const alone = join(tmp(), 'alone');
  assert.equal(cli([...args, '--seeds', '2', '--out', alone]).status, 0);
  assert.deepEqual(res.runs[1].metrics, (JSON.parse(readFileSync(join(alone, 'results.json'), 'utf8')) as Results).runs[0].metrics);
  assertUserError([...args, '--seeds', '1,2', '--set', 'epochs=3', '--out', dir, '--resume'], /config differs .* in more than methods\/seeds/);
});

test('bench engine --quick writes bench.json with the named cases', () => {
  const o = join(tmp(), 'bench');
  const r = cli(['bench', 'engine', '--quick', '--out', o]);
  assert.equal(r.status, 0, r.stderr);
  const b = JSON.parse(readFileSync(join(o, 'bench.json'), 'utf8'));
  const names = b.cases.map((c: { name: string }) => c.name);
  for (const n of ['mlp/wasm-stock', 'mlp/wasm', 'mlp/cpu', 'cnn/wasm-stock', 'cnn/wasm', 'cnn/cpu']) assert.ok(names.includes(n), n);
  const mlp = b.cases.find((c: { name: string }) => c.name === 'mlp/wasm');
  assert.ok(mlp.msPerStep > 0 && mlp.gflops > 0);
  assertUserError(['bench', 'nope'], /unknown benchmark "nope"/);
});

test('list prints method patterns, list weightings their papers; config prints resolved keys with descriptions', () => {
  const l = cli(['list']);
  assert.equal(l.status, 0, l.stderr);
  assert.match(l.stdout, /methods: stl \| <weighting> \| rep-mtl\[-tsr\|-csa\]\[@<weighting>\]/);
  assert.doesNotMatch(l.stdout, /rep-mtl-csa@nash-mtl/, 'no cross product');
  const w = cli(['list', 'weightings']);
  assert.equal(w.status, 0, w.stderr);
  assert.match(w.stdout, /pcgrad\s+.*Yu et al|pcgrad\s+.*Gradient Surgery/i);
  assert.match(w.stdout, /cagrad\.calpha=/);
  assert.match(w.stdout, /log-ew\s+.*Dual-Balancing.*Rep-MTL/);
  const c = cli(['config', 'fashion-baseline', '--quick', '--set', 'epochs=7']);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /^epochs = 7$/m);
  assert.match(c.stdout, /^cnnDownsample = "stride"\n    Downsampling in the CNN/m);
  const j = JSON.parse(cli(['config', 'fashion-baseline', '--quick', '--json']).stdout);
  assert.equal(j.epochs, 3);
  assertUserError(['config', 'fashion-baseline', '--set', 'epoch=3'], /unknown config key "epoch" \(valid: methods, seeds, data, epochs,/);
  assertUserError(['list', 'nope'], /list: unknown "nope"/);
});
