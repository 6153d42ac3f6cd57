import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initEngine } from '../src/engine/backend.js';
import { TransformerLM } from '../src/models/transformer.js';
import { ffnFor, modelConfigFor, type CompeteSmoeConfig } from '../src/experiments/compete-smoe/index.js';
import { moeBench } from '../src/bench/moe.js';
import '../src/methods/compete-smoe/index.js';
import type { Results } from '../src/experiments/types.js';
import { tempDir } from './helpers/tmp.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });
const tinySets = ['dModel=8', 'nHeads=2', 'contextLength=8', 'batchSize=2', 'experts=4', 'expertHidden=4', 'steps=4', 'evalEvery=2', 'evalWindows=2', 'finalEvalWindows=2', 'diagWindows=2', 'evalBatch=2'];

before(async () => {
  await initEngine({ backend: 'wasm' });
});

test('compete-smoe CLI: every method runs, FLOPs count competition, report has paired differences, generate samples a MoE model', () => {
  const dir = tempDir('efftrain-csmoe-');
  const text = join(dir, 'tiny.txt');
  writeFileSync(text, 'the quick brown fox jumps over the lazy dog. '.repeat(40));
  const out = join(dir, 'run');
  const methods = ['dense-active', 'dense-total', 'smoe', 'xmoe', 'smoe-dropout', 'compete', 'compete-p0.2', 'compete-always'];
  const r = cli(['run', 'compete-smoe', '--data', text, '--methods', methods.join(','), '--seeds', '1,2', '--workers', '1', '--quiet', '--out', out, ...tinySets.flatMap((s) => ['--set', s])]);
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results;
  assert.equal(res.runs.length, 16);
  for (const run of res.runs) {
    assert.ok(Number.isFinite(run.metrics.val_bpc), `${run.method} val_bpc`);
    assert.equal(run.metrics.tensors_after, 0, `${run.method} leaks tensors`);
    if (run.method.startsWith('dense')) assert.equal(run.metrics.expert_similarity, undefined);
    else for (const k of ['router_agreement', 'load_cv', 'expert_similarity', 'router_entropy', 'val_bpc_compete']) assert.ok(Number.isFinite(run.metrics[k]), `${run.method} ${k}`);
  }
  // compete-always competes on every layer-step: FLOPs = 6 · tokens/step · steps · (model MACs + layers·(E−k)·2·d·h)
  const cfg = { dModel: 8, nHeads: 2, contextLength: 8, batchSize: 2, experts: 4, topK: 2, expertHidden: 4, nLayers: 2, capacityFactor: 0, balanceCoef: 0.01, zLossCoef: 0.001, xmoeDim: 4, xmoeTemperature: 0.3 } as CompeteSmoeConfig;
  const always = res.runs.find((x) => x.method === 'compete-always' && x.seed === 1)!.metrics;
  const vocab = new Set('the quick brown fox jumps over the lazy dog. ').size;
  const m = new TransformerLM(modelConfigFor(cfg, vocab, ffnFor('compete-always', { ...cfg, competeProb: 1, competeWarmup: 0 } as CompeteSmoeConfig)!), 1);
  assert.equal(always.train_flops, 6 * 16 * 4 * (m.macsPerToken() + 2 * (4 - 2) * 2 * 8 * 4));
  assert.equal(always.compete_fraction, 1);
  m.dispose();
  const report = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(report, /Paired differences against `smoe`/);
  assert.match(report, /\| compete \| val_bpc \| 2 \|/);
  assert.match(report, /compete expert_similarity < smoe/);
  for (const c of ['val_bpc', 'expert_similarity', 'router_agreement', 'load_cv', 'routing_fluctuation']) assert.ok(existsSync(join(out, 'charts', `${c}-vs-step.svg`)), c);
  const g = cli(['generate', join(out, 'runs', 'compete-seed1', 'model'), '--prompt', 'the ', '--tokens', '6', '--temperature', '0']);
  assert.equal(g.status, 0, g.stderr);
  assert.equal(g.stdout.length, 'the '.length + 6 + 1);
  assert.ok(g.stdout.startsWith('the '));
});

test('compete-smoe CLI: bad config keys and methods exit 2 naming them', () => {
  const r = cli(['run', 'compete-smoe', '--quiet', '--set', 'topK=9', '--methods', 'smoe', '--seeds', '1']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /config key "topK": 9 exceeds experts 8/);
  const u = cli(['run', 'compete-smoe', '--quiet', '--methods', 'compete-banana', '--seeds', '1']);
  assert.equal(u.status, 2);
  assert.match(u.stderr, /compete-banana/);
});

test('bench moe (tiny sizes): every router, dense references, competition vs routed step', async () => {
  const lines: string[] = [];
  const res = await moeBench.run({ quick: true, log: (l) => lines.push(l), widths: [8], tokens: 32 } as Parameters<typeof moeBench.run>[0]);
  const names = res.cases.map((c) => c.name);
  assert.deepEqual(names, ['d8/dense-active', 'd8/dense-total', 'd8/topk', 'd8/xmoe', 'd8/smoe-dropout', 'd8/compete/routed-step', 'd8/compete/competition-step']);
  const c = res.cases.find((x) => x.name === 'd8/compete/competition-step')!;
  assert.equal(c.macsPerToken, 8 * 2 * 8 * 8 + 8 * 8); // all E experts (2·d·h each) + the router
  assert.ok('d8/competition-step / d8/routed-step' in (res.ratios as Record<string, number>));
});

test('compete-smoe: evalSplit=tune never reads the reported split; methodLr overrides lr per method', () => {
  const dir = tempDir('efftrain-csmoe-split-');
  // same symbols, same train and tune parts; only the last 10% (the reported split) differs
  const body = 'the quick brown fox jumps over the lazy dog. '.repeat(40);
  const tail = body.slice(-Math.round(body.length * 0.1));
  const other = [...tail].reverse().join('');
  const files = [body, body.slice(0, body.length - tail.length) + other].map((t, i) => {
    const f = join(dir, `t${i}.txt`);
    writeFileSync(f, t);
    return f;
  });
  let runs = 0;
  const metricsOf = (text: string, split: string, extra: string[] = []) => {
    const out = join(dir, `run-${runs++}`);
    const sets = [...tinySets, `evalSplit=${split}`, 'saveModel=false', ...extra];
    const r = cli(['run', 'compete-smoe', '--data', text, '--methods', 'compete', '--seeds', '1', '--workers', '1', '--quiet', '--out', out, ...sets.flatMap((s) => ['--set', s])]);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results).runs[0].metrics;
  };
  const keys = ['val_bpc', 'val_bpc_compete', 'expert_similarity', 'router_agreement', 'load_cv'];
  const [a, b] = files.map((f) => metricsOf(f, 'tune'));
  for (const k of keys) assert.equal(a[k], b[k], `tune-split ${k} must not depend on the reported split`);
  const [va, vb] = files.map((f) => metricsOf(f, 'val'));
  assert.notEqual(va.val_bpc, vb.val_bpc, 'the val split does read the tail (the check above can fail)');
  const fast = metricsOf(files[0], 'tune', ['methodLr={"compete":0.5}']);
  assert.notEqual(fast.val_bpc, a.val_bpc, 'methodLr changes the method it names');
  const other_ = metricsOf(files[0], 'tune', ['methodLr={"smoe":0.5}']);
  assert.equal(other_.val_bpc, a.val_bpc, 'methodLr leaves other methods at lr');
  const bad = cli(['run', 'compete-smoe', '--quiet', '--methods', 'smoe', '--seeds', '1', '--set', 'methodLr={"banana":0.1}']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /config key "methodLr": unknown method "banana"/);
});
