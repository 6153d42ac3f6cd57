/**
 * One (method, seed) run of `compete-smoe`: builds the character-level transformer with the method's FFN, trains
 * it through `fit` in step mode (MoE training state — competition schedule, FLOPs, drops, routing diagnostics —
 * is `MoeTraining` from the method folder, as a hook), evaluates bits per character on the held-out split along
 * the way, and returns the run's metrics. Checkpoints every `checkpointEverySteps` steps; `--resume` continues
 * exactly.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { evalWindows } from '../../data/text-corpus.js';
import { Rng } from '../../engine/rng.js';
import { UserError } from '../../errors.js';
import { TransformerLM } from '../../models/transformer.js';
import { MoeTraining, withEvalPolicy } from '../../methods/compete-smoe/index.js';
import { fileCheckpointStore } from '../../node/checkpoint-file.js';
import { saveTransformer } from '../../node/transformer-files.js';
import { mean, median } from '../../stats/index.js';
import { fit, type EpochRow, type FitHook } from '../../train/fit.js';
import { AdamW } from '../../train/optimizers.js';
import { warmupCosine } from '../../train/schedules.js';
import { Trainer } from '../../train/trainer.js';
import { hashString } from '../common/image-classification.js';
import type { MetricRow, RunContext } from '../types.js';
import { batchAt, evalBpc, loadData } from './data.js';
import type { CompeteSmoeConfig } from './index.js';
import { ffnFor, lrOf, modelConfigFor } from './methods.js';

/** The diagnostics keys of a curve row, in the order they are logged. */
const ROW_DIAGNOSTICS = ['load_cv', 'router_entropy', 'router_agreement', 'expert_similarity', 'routing_fluctuation'] as const;

/** Step times and wall time carried across a resume (the hook's named checkpoint state). */
interface TimingState {
  stepMs: number[];
  seconds: number;
}

export async function runCompeteSmoe(ctx: RunContext<CompeteSmoeConfig>): Promise<{ metrics: Record<string, number> }> {
  const cfg = ctx.config;
  const f = ffnFor(ctx.method, cfg);
  if (!f) throw new UserError(`unknown method "${ctx.method}"`);
  const data = loadData(cfg);
  const held = cfg.evalSplit === 'tune' ? data.tune : data.val;
  const model = new TransformerLM(modelConfigFor(cfg, data.tok.vocabSize, f), hashString(`compete-smoe/model/${ctx.seed}`));
  const T = cfg.contextLength;
  const tokensPerStep = cfg.batchSize * T;
  const diagBatch = evalWindows(held, T, cfg.diagWindows, cfg.diagWindows)[0];
  const diagIds = tf.keep(tf.tensor2d(diagBatch.x, [diagBatch.batch, T], 'int32'));
  const rng = new Rng(hashString(`compete-smoe/rng/${ctx.seed}`));
  const moe = new MoeTraining(
    model.blocks.map((b) => b.ffn),
    {
      steps: cfg.steps,
      scheduleSeed: hashString(`compete-smoe/schedule/${ctx.seed}`),
      rng,
      tokensPerStep,
      macsPerToken: model.macsPerToken(),
      diagnosticsForward: () => tf.dispose(model.logits(diagIds)),
    },
  );
  const optimizer = new AdamW({ weightDecay: cfg.weightDecay });
  const lr = lrOf(cfg, ctx.method);
  const schedule = warmupCosine(lr, cfg.steps, { warmupSteps: Math.round(cfg.warmupFraction * cfg.steps), minLr: lr * cfg.minLrFraction });
  const ckptPath = join(ctx.artifactsDir, 'checkpoint.safetensors');
  const trainer = new Trainer({ params: model.variables(), optimizer, schedule, clipNorm: cfg.clipNorm, lastCheckpoint: () => (cfg.checkpointEverySteps > 0 ? ckptPath : null) });
  const evalSub = evalWindows(held, T, cfg.evalBatch, cfg.evalWindows);
  const evalFull = evalWindows(held, T, cfg.evalBatch, cfg.finalEvalWindows);
  const timing: TimingState = { stepMs: [], seconds: 0 };
  let stepStart = 0;
  let t0 = performance.now();

  const curves: FitHook = {
    name: 'compete-smoe',
    beforeStep: () => {
      stepStart = performance.now();
    },
    step: ({ step: done, loss }) => {
      timing.stepMs.push(performance.now() - stepStart);
      if (done % 10 === 0 && !(done % cfg.evalEvery === 0 || done === cfg.steps)) ctx.progress({ step: done, steps: cfg.steps, loss });
    },
    evaluate: (done) => {
      const final = done === cfg.steps;
      return { tokens: done * tokensPerStep, train_flops: moe.flops, lr: schedule.lr(done - 1), val_bpc: evalBpc(model, final ? evalFull : evalSub), step_ms: mean(timing.stepMs.slice(-cfg.evalEvery)) };
    },
    epoch: (r: EpochRow) => {
      const row: MetricRow = {
        step: r.step,
        tokens: r.tokens,
        train_flops: r.train_flops,
        lr: r.lr,
        train_loss: r.train_loss,
        val_bpc: r.val_bpc,
        eval_set: r.step === cfg.steps ? 'final' : 'subset',
        step_ms: r.step_ms,
      };
      for (const k of ROW_DIAGNOSTICS) if (k in r) row[k] = r[k];
      ctx.log(row);
      ctx.progress({ step: r.step, steps: cfg.steps, loss: r.train_loss, message: `val_bpc ${r.val_bpc.toFixed(3)}` });
    },
    state: {
      get: () => ({ stepMs: timing.stepMs, seconds: timing.seconds + (performance.now() - t0) / 1000 }),
      set: (s) => {
        Object.assign(timing, s as TimingState);
        t0 = performance.now();
      },
    },
  };

  const { history } = fit({
    trainer,
    steps: { total: cfg.steps, evalAt: (done) => done % cfg.evalEvery === 0 },
    rng,
    lossFn: (_, step) => {
      const batch = batchAt(data.train, cfg, ctx.seed, step);
      return model.loss(tf.tensor2d(batch.x, [batch.batch, T], 'int32'), tf.tensor2d(batch.y, [batch.batch, T], 'int32'), moe.context);
    },
    checkpoint: cfg.checkpointEverySteps > 0 ? { store: fileCheckpointStore(ckptPath), everySteps: cfg.checkpointEverySteps, resume: ctx.resume } : undefined,
    hooks: [moe.hook(), curves],
  });
  const trainSeconds = timing.seconds + (performance.now() - t0) / 1000;
  const valBpc = Number(history[history.length - 1].val_bpc);
  const steady = timing.stepMs.slice(Math.min(3, timing.stepMs.length - 1));
  const metrics: Record<string, number> = {
    val_bpc: valBpc,
    step_ms: mean(steady),
    step_ms_median: median(steady),
    train_flops: moe.flops,
    ffn_weights: model.ffnWeightCount(),
    active_ffn_macs: model.blocks.reduce((s, b) => s + b.ffn.macsPerToken(), 0),
    params: model.paramCount(),
    train_seconds: trainSeconds,
  };
  if (moe.layers.length) {
    metrics.val_bpc_compete = withEvalPolicy(moe.layers, 'compete', () => evalBpc(model, evalFull));
    Object.assign(metrics, moe.summary());
  }
  if (cfg.saveModel) saveTransformer(model, join(ctx.artifactsDir, 'model'), { tokenizer: data.tok.toJSON(), corpus: data.name, method: ctx.method, seed: ctx.seed, val_bpc: valBpc, steps: cfg.steps });
  diagIds.dispose();
  model.dispose();
  optimizer.dispose();
  metrics.tensors_after = tf.memory().numTensors;
  return { metrics };
}
