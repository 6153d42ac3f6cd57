import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { Rng } from '../src/engine/rng.js';
import { competeSmoe, type CompeteSmoeConfig } from '../src/experiments/compete-smoe/index.js';
import type { MetricRow, RunContext } from '../src/experiments/types.js';
import { MoeTraining } from '../src/methods/compete-smoe/index.js';
import { TransformerLM } from '../src/models/transformer.js';
import { fileCheckpointStore } from '../src/node/checkpoint-file.js';
import { readCheckpointMeta } from '../src/train/checkpoint.js';
import { fit } from '../src/train/fit.js';
import { AdamW } from '../src/train/optimizers.js';
import { Trainer } from '../src/train/trainer.js';
import { tempDir } from './helpers/tmp.js';

before(async () => {
  await initEngine({ backend: 'wasm' });
});

const TIMING = ['step_ms', 'step_ms_median', 'train_seconds'];
const untimed = <V>(o: Record<string, V>): Record<string, V> => Object.fromEntries(Object.entries(o).filter(([k]) => !TIMING.includes(k)));

/** One in-process run of the experiment; `stopAtRow` throws from ctx.log at that step's row (a kill before its checkpoint). */
async function runOnce(cfg: CompeteSmoeConfig, method: string, dir: string, resume: boolean, stopAtRow?: number) {
  const rows: MetricRow[] = [];
  const ctx: RunContext<CompeteSmoeConfig> = {
    experiment: 'compete-smoe',
    method,
    seed: 3,
    config: cfg,
    quick: false,
    backend: 'wasm',
    resume,
    artifactsDir: dir,
    log: (row) => {
      if (row.step === stopAtRow) throw new Error('interrupted');
      rows.push(row);
    },
    progress: () => {},
  };
  // Count the optimizer steps this process actually runs.
  const orig = Trainer.prototype.trainStep;
  let steps = 0;
  Trainer.prototype.trainStep = function (this: Trainer, lossFn) {
    steps++;
    return orig.call(this, lossFn);
  };
  try {
    const { metrics } = await competeSmoe.run(ctx);
    return { rows, metrics, steps };
  } finally {
    Trainer.prototype.trainStep = orig;
  }
}

test('compete-smoe: a run interrupted after its step-4 checkpoint and resumed gives the same curves and metrics', async () => {
  const dir = tempDir('efftrain-csmoe-resume-');
  const text = join(dir, 'tiny.txt');
  writeFileSync(text, 'the quick brown fox jumps over the lazy dog. '.repeat(40));
  const cfg = competeSmoe.schema.parse({
    text,
    dModel: 8, nHeads: 2, contextLength: 8, batchSize: 2, experts: 4, expertHidden: 4, evalWindows: 2, finalEvalWindows: 2, diagWindows: 2, evalBatch: 2,
    steps: 8, evalEvery: 2, checkpointEverySteps: 4, competeWarmup: 0, saveModel: false,
  });
  for (const method of ['compete-p0.2', 'smoe']) {
    const full = await runOnce(cfg, method, join(dir, `${method}-full`), false);
    assert.equal(full.steps, 8);
    assert.deepEqual(full.rows.map((r) => r.step), [2, 4, 6, 8]);
    const part = join(dir, `${method}-part`);
    await assert.rejects(runOnce(cfg, method, part, false, 6), /interrupted/);
    assert.equal(readCheckpointMeta(fileCheckpointStore(join(part, 'checkpoint.safetensors'))).step, 4);
    const resumed = await runOnce(cfg, method, part, true);
    assert.equal(resumed.steps, 4, 'the resumed run continues at step 4');
    // Restored rows are logged again (the runner keeps only finished runs' rows), then the new ones.
    assert.deepEqual(resumed.rows.map(untimed), full.rows.map(untimed));
    // tensors_after counts this process's live tensors, which include the interrupted run's.
    const { tensors_after: _a, ...a } = untimed(full.metrics);
    const { tensors_after: _b, ...b } = untimed(resumed.metrics);
    assert.deepEqual(b, a);
    if (method === 'compete-p0.2') {
      assert.ok(a.compete_fraction > 0 && a.compete_fraction < 1, `compete_fraction ${a.compete_fraction}`);
      assert.ok(Number.isFinite(a.routing_fluctuation));
    } else assert.ok(Number.isFinite(a.drop_rate) && Number.isFinite(a.load_cv));
  }
  assert.ok(existsSync(join(dir, 'smoe-part', 'checkpoint.safetensors')));
});

test('MoeTraining through fit: tensor count flat over steps, evaluations and diagnostics', () => {
  const V = 9;
  const T = 8;
  const model = new TransformerLM(
    {
      vocabSize: V, contextLength: T, dModel: 8, nHeads: 2, nLayers: 2, dFf: 4, firstLayerDense: false,
      ffn: { kind: 'moe', experts: 4, topK: 2, expertHidden: 4, router: { type: 'compete', prob: 0.5, warmup: 0, maxLayersPerStep: 2, affinity: 'softplus', routerLossCoef: 0.01, diversityCoef: 0.01, balanceCoef: 0.01 } },
    } as ConstructorParameters<typeof TransformerLM>[0],
    4,
  );
  const ids = tf.keep(tf.tensor2d(Int32Array.from({ length: 2 * T }, (_, i) => i % V), [2, T], 'int32'));
  const rng = new Rng(5);
  const moe = new MoeTraining(model.blocks.map((b) => b.ffn), { steps: 12, scheduleSeed: 7, rng, tokensPerStep: 2 * T, macsPerToken: model.macsPerToken(), diagnosticsForward: () => tf.dispose(model.logits(ids)) });
  const optimizer = new AdamW({ weightDecay: 0.1 });
  const trainer = new Trainer({ params: model.variables(), optimizer, clipNorm: 1 });
  const counts: number[] = [];
  const { history } = fit({
    trainer,
    steps: { total: 12, evalAt: (done) => done % 3 === 0 },
    rng,
    lossFn: (_, step) => {
      const r = new Rng(100 + step);
      const x = Int32Array.from({ length: 2 * T }, () => r.int(V));
      return model.loss(tf.tensor2d(x, [2, T], 'int32'), tf.tensor2d(x, [2, T], 'int32'), moe.context);
    },
    hooks: [moe.hook(), { name: 'probe', step: () => void counts.push(tf.memory().numTensors) }],
  });
  assert.equal(history.length, 4);
  for (const r of history) for (const k of ['load_cv', 'router_entropy', 'router_agreement', 'expert_similarity']) assert.ok(Number.isFinite(r[k]), k);
  assert.ok(Number.isFinite(history[3].routing_fluctuation));
  // Step 1 creates the optimizer's slots; from then on every step (evaluations between) leaves the count unchanged.
  assert.deepEqual(counts.slice(1), counts.slice(1).map(() => counts[1]));
  const s = moe.summary();
  assert.ok(s.compete_fraction > 0 && s.compete_fraction < 1);
  assert.equal(s.scheduled_competitions, moe.schedule!.count());
  assert.equal(s.compete_fraction, s.scheduled_competitions / 24);
  ids.dispose();
  model.dispose();
  optimizer.dispose();
});
