/**
 * One (method, seed) run of `structured-ffn`: builds the LM for the method, trains it through `fit` in step mode
 * (the SGT guide loop is `SelfGuidedTraining` from the method folder, as a hook), evaluates bits per character on
 * the validation part along the way and, at the end only, on the test tail; returns the run's metrics.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { evalWindows } from '../../data/text-corpus.js';
import { Rng } from '../../engine/rng.js';
import { UserError } from '../../errors.js';
import type { FfnContext } from '../../models/ffn.js';
import { TransformerLM } from '../../models/transformer.js';
import { StructuredFfn } from '../../methods/structured-ffn/ffn.js';
import { SelfGuidedTraining } from '../../methods/structured-ffn/sgt-guides.js';
import { fileCheckpointStore } from '../../node/checkpoint-file.js';
import { saveTransformer } from '../../node/transformer-files.js';
import { median } from '../../stats/index.js';
import { fit, type EpochRow, type FitHook } from '../../train/fit.js';
import { AdamW } from '../../train/optimizers.js';
import { warmupCosine } from '../../train/schedules.js';
import { Trainer } from '../../train/trainer.js';
import { hashString } from '../common/image-classification.js';
import type { MetricRow, RunContext } from '../types.js';
import { batchAt, evalBpc, loadData } from './data.js';
import type { StructuredFfnConfig } from './index.js';
import { ffnSpecFor, modelConfigFor, parseMethod, stepPlanFor } from './methods.js';

/** Training diagnostics carried across a resume (the hook's named checkpoint state). */
interface LoopState {
  flops: number;
  ema: number | null;
  spikes: number;
  inSpike: boolean;
  valAtT: number | null;
  testAtT: number | null;
}

export async function runStructuredFfn(ctx: RunContext<StructuredFfnConfig>): Promise<{ metrics: Record<string, number> }> {
  const cfg = ctx.config;
  const plan = parseMethod(ctx.method);
  if (!plan) throw new UserError(`unknown method "${ctx.method}"`);
  const data = loadData(cfg);
  const model = new TransformerLM(modelConfigFor(cfg, data.tok.vocabSize, ffnSpecFor(plan, cfg)), hashString(`structured-ffn/model/${ctx.seed}`));
  const T = cfg.contextLength;
  const tokensPerStep = cfg.batchSize * T;
  const structured = model.blocks.map((b) => b.ffn).filter((f): f is StructuredFfn => f instanceof StructuredFfn);
  const macsStruct = model.macsPerToken();
  const denseFfnMacs = 2 * cfg.dModel * cfg.dFf;
  const macsDense = macsStruct - model.blocks.reduce((s, b) => s + b.ffn.macsPerToken(), 0) + cfg.nLayers * denseFfnMacs;
  const sp = stepPlanFor(plan, cfg.steps, cfg.sgtRatio, { dense: macsDense, struct: macsStruct, guide: structured.length * denseFfnMacs });

  // The run's RNG draws SGT's skips; fit keeps it in checkpoints.
  const rng = new Rng(hashString(`structured-ffn/sgt/${ctx.seed}`));
  const sgt = new SelfGuidedTraining(structured, { tG: sp.tG, decay: cfg.guideDecay, stochasticSkip: cfg.sgtStochasticSkip, rng });
  const optimizer = new AdamW({ weightDecay: cfg.weightDecay });
  const schedule = warmupCosine(cfg.lr, sp.total, { warmupSteps: Math.round(cfg.warmupFraction * sp.total), minLr: cfg.lr * cfg.minLrFraction });
  const ckptPath = join(ctx.artifactsDir, 'checkpoint.safetensors');
  // A guide skipped on a step has no gradient: `missingGrads: 'skip'` leaves it out of clipping and the update.
  const trainer = new Trainer({
    params: sgt.trainerParams(model.namedVariables().map((n) => n.variable)),
    optimizer,
    schedule,
    clipNorm: cfg.clipNorm,
    missingGrads: 'skip',
    lastCheckpoint: () => (cfg.checkpointEverySteps > 0 ? ckptPath : null),
  });
  sgt.attach(trainer);

  const evalSub = evalWindows(data.val, T, cfg.evalBatch, cfg.evalWindows);
  const evalFull = evalWindows(data.val, T, cfg.evalBatch, cfg.finalEvalWindows);
  const testFull = data.test ? evalWindows(data.test, T, cfg.evalBatch, cfg.finalEvalWindows) : null;
  const evalCtx = (alpha: number): FfnContext => ({ training: false, rng: null, guideAlpha: alpha });
  const warmSteps = Math.round(cfg.warmupFraction * sp.total);
  // Same-FLOPs arms train past T: they are also evaluated (on the full set) at step T.
  const atT = (done: number) => done === cfg.steps && sp.total !== cfg.steps;
  const isFinal = (done: number) => done === sp.total || atT(done);
  const loop: LoopState = { flops: 0, ema: null, spikes: 0, inSpike: false, valAtT: null, testAtT: null };
  const stepMs: number[] = [];
  let stepStart = 0;

  const diagnostics: FitHook = {
    name: 'structured-ffn',
    beforeStep: () => {
      stepStart = performance.now();
    },
    step: ({ step: done, loss }) => {
      stepMs.push(performance.now() - stepStart);
      loop.flops += 6 * tokensPerStep * (macsStruct + sgt.context.stats.extraMacsPerToken);
      // A spike: the loss jumps more than spikeThreshold nats above its EMA (counted once until it falls back).
      const step = done - 1;
      if (step >= warmSteps + 10 && loop.ema !== null) {
        if (loss > loop.ema + cfg.spikeThreshold) {
          if (!loop.inSpike) loop.spikes++;
          loop.inSpike = true;
        } else if (loss < loop.ema + cfg.spikeThreshold / 2) loop.inSpike = false;
      }
      loop.ema = loop.ema !== null ? 0.9 * loop.ema + 0.1 * loss : loss;
      if (done % 10 === 0 && !(done % cfg.evalEvery === 0 || isFinal(done))) ctx.progress({ step: done, steps: sp.total, loss });
    },
    evaluate: (done) => {
      const alpha = sgt.alphaAt(done);
      const valBpc = evalBpc(model, isFinal(done) ? evalFull : evalSub, evalCtx(alpha));
      // The test tail is read only by the final evaluations (and at step T of the same-FLOPs arms).
      const test: Record<string, number> = testFull && isFinal(done) ? { test_bpc: evalBpc(model, testFull, evalCtx(alpha)) } : {};
      if (done === cfg.steps) {
        loop.valAtT = valBpc;
        loop.testAtT = test.test_bpc ?? null;
      }
      return { tokens: done * tokensPerStep, train_flops: loop.flops, lr: schedule.lr(done - 1), alpha, val_bpc: valBpc, ...test, step_ms: median(stepMs.slice(-cfg.evalEvery)) };
    },
    epoch: (r: EpochRow) => {
      const row: MetricRow = {
        step: r.step,
        tokens: r.tokens,
        train_flops: r.train_flops,
        lr: r.lr,
        alpha: r.alpha,
        train_loss: r.train_loss,
        val_bpc: r.val_bpc,
        ...(r.test_bpc !== undefined ? { test_bpc: r.test_bpc } : {}),
        eval_set: isFinal(r.step) ? 'final' : 'subset',
        step_ms: r.step_ms,
      };
      ctx.log(row);
      ctx.progress({ step: r.step, steps: sp.total, loss: r.train_loss, message: `val_bpc ${r.val_bpc.toFixed(3)}` });
    },
    state: {
      get: () => ({ ...loop }),
      set: (s) => void Object.assign(loop, s as LoopState),
    },
  };

  const t0 = performance.now();
  const { history } = fit({
    trainer,
    steps: { total: sp.total, evalAt: (done) => done % cfg.evalEvery === 0 || atT(done) },
    rng,
    lossFn: (_, step) => {
      const batch = batchAt(data.train, cfg, ctx.seed, step >= sp.replayFrom ? step - sp.replayFrom : step);
      return model.loss(tf.tensor2d(batch.x, [batch.batch, T], 'int32'), tf.tensor2d(batch.y, [batch.batch, T], 'int32'), sgt.context);
    },
    checkpoint: cfg.checkpointEverySteps > 0 ? { store: fileCheckpointStore(ckptPath), everySteps: cfg.checkpointEverySteps, resume: ctx.resume } : undefined,
    hooks: [sgt.hook(), diagnostics],
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  sgt.dropGuides();
  const last = history[history.length - 1];
  const valBpc = Number(last?.val_bpc ?? NaN);
  const testBpc = last?.test_bpc;
  if (cfg.saveModel) {
    saveTransformer(model, join(ctx.artifactsDir, 'model'), { tokenizer: data.tok.toJSON(), corpus: data.name, method: ctx.method, seed: ctx.seed, val_bpc: valBpc, ...(testBpc !== undefined ? { test_bpc: testBpc } : {}), steps: sp.total });
  }
  const steadyMs = median(stepMs.slice(Math.min(3, stepMs.length - 1)));
  const metrics: Record<string, number> = {
    val_bpc: valBpc,
    ...(testBpc !== undefined ? { test_bpc: testBpc, test_bpc_at_T: loop.testAtT ?? testBpc } : {}),
    ffn_params: model.ffnWeightCount(),
    step_ms: steadyMs,
    loss_spikes: loop.spikes,
    val_bpc_at_T: loop.valAtT ?? valBpc,
    tokens_per_s: (tokensPerStep * 1000) / steadyMs,
    train_flops: loop.flops,
    steps: sp.total,
    params: model.paramCount(),
    train_seconds: trainSeconds,
  };
  model.dispose();
  optimizer.dispose();
  metrics.tensors_after = tf.memory().numTensors;
  return { metrics };
}
