import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import type { Rng } from '../../../engine/rng.js';
import { MultiTaskNet, createWeighting, netAlphas, netSaliencies, saliencyStats, trainMultiTask, pairedEpochBatches, unpairedEpochBatches, type MtlTask, type RepMtlOptions } from '../../../methods/mtl/index.js';
import { meanStd } from '../../../train/metrics.js';
import { createOptimizer } from '../../../train/optimizers.js';
import { createSchedule } from '../../../train/schedules.js';
import type { MetricRow, RunContext } from '../../types.js';
import { fileCheckpointStore } from '../../../node/checkpoint-file.js';
import type { MtlTrainConfig } from './config.js';
import { evaluateAccuracy, makeMtlBatch, taskView, type MtlData } from './data.js';
import { parseMtlMethod, repOptionsFor } from './methods.js';


export interface MtlRunOptions<C extends MtlTrainConfig> {
  ctx: RunContext<C>;
  data: MtlData;
  rng: Rng;
}

export interface TrainedNet {
  net: MultiTaskNet;
  secPerEpoch: number;
  trainLoss: number;
}

export function buildNet(cfg: MtlTrainConfig, tasks: MtlTask[], h: number, w: number, rng: Rng): MultiTaskNet {
  return new MultiTaskNet({ inputShape: [h, w, 1], channels: cfg.channels, downsample: cfg.downsample }, tasks, tasks.map(() => ({ hidden: cfg.headHidden })), rng);
}

/** Trains one multi-task (or single-task) net with a weighting and optional Rep-MTL; logs epoch rows. */
export function trainOne<C extends MtlTrainConfig>(o: MtlRunOptions<C>, data: MtlData, weightingName: string, rep: RepMtlOptions | null, opts: { tag: string; ckpt: string; log: boolean; taskNames: string[] }): TrainedNet {
  const { ctx, rng } = o;
  const cfg = ctx.config;
  const T = data.tasks.length;
  const net = buildNet(cfg, data.tasks, data.train.height, data.train.width, rng);
  const weighting = createWeighting(weightingName, T, (cfg[weightingName] as Record<string, unknown>) ?? {});
  const train = data.train;
  const steps = train.n >= cfg.batchSize ? Math.floor(train.n / cfg.batchSize) : 1;
  const r = trainMultiTask({
    net,
    weighting,
    rep,
    optimizer: createOptimizer(cfg.optimizer, { weightDecay: cfg.weightDecay }),
    schedule: createSchedule(cfg.schedule, cfg.lr, steps * cfg.epochs, { warmupSteps: cfg.warmupSteps }),
    clipNorm: cfg.clipNorm,
    epochs: cfg.epochs,
    rng,
    epochBatches: data.pairing === 'paired' || train.inputs.length === 1 ? pairedEpochBatches(train.n, cfg.batchSize, train.inputs.length) : unpairedEpochBatches(train.inputs.map(() => train.n), cfg.batchSize),
    makeBatch: (idx) => makeMtlBatch(train, idx),
    evaluate: () => {
      const acc = evaluateAccuracy(net, data.val, cfg.evalBatch);
      const row: Record<string, number> = {};
      opts.taskNames.forEach((nm, t) => (row[`val_acc_${nm}`] = acc[t]));
      row.val_avg_acc = acc.reduce((a, b) => a + b, 0) / acc.length;
      return row;
    },
    onEpoch: (row) => {
      if (opts.log) ctx.log(opts.tag ? { ...row, part: opts.tag } : row);
      ctx.progress({ epoch: row.epoch, epochs: cfg.epochs, loss: row.train_loss, message: `${opts.tag ? opts.tag + ' ' : ''}val_avg_acc ${row.val_avg_acc.toFixed(4)}` });
    },
    onStep: (s) => {
      if (s.batch % 20 === 0 || s.batch === s.batches) ctx.progress({ epoch: s.epoch, epochs: cfg.epochs, step: s.batch, steps: s.batches, loss: s.loss });
    },
    checkpoint: { store: fileCheckpointStore(join(ctx.artifactsDir, opts.ckpt)), resume: ctx.resume },
    taskNames: opts.taskNames,
  });
  r.trainer.optimizer.dispose();
  weighting.dispose?.();
  const last = r.history[r.history.length - 1];
  return { net, secPerEpoch: r.secPerEpoch, trainLoss: last?.train_loss ?? NaN };
}

/**
 * Runs one (method, seed): STL trains one network per task (EW on a single task; its sec/epoch is the sum over
 * the task networks, its saliency shares compare the task networks' own saliencies); every other method trains
 * the shared network. Returns per-task test accuracy, sec/epoch, TSR entropy on test data, α, and logs the
 * saliency-share map as a `{kind: 'diagnostic', name: 'saliency'}` row.
 */
export function runMtl<C extends MtlTrainConfig>(o: MtlRunOptions<C>): Record<string, number> {
  const { ctx, data } = o;
  const cfg = ctx.config;
  const method = parseMtlMethod(ctx.method);
  const names = data.tasks.map((t) => t.name);
  const T = names.length;
  const test = data.test;
  const metrics: Record<string, number> = {};
  let nets: MultiTaskNet[];
  let secPerEpoch = 0;
  let trainLoss = 0;
  if (method.kind === 'stl') {
    nets = [];
    data.tasks.forEach((task, t) => {
      const single: MtlData = { tasks: [task], train: taskView(data.train, t), val: taskView(data.val, t), test: taskView(data.test, t), pairing: 'paired' };
      const r = trainOne(o, single, 'ew', null, { tag: task.name, ckpt: `stl-${task.name}.safetensors`, log: true, taskNames: [task.name] });
      nets.push(r.net);
      secPerEpoch += r.secPerEpoch;
      trainLoss += r.trainLoss;
    });
    nets.forEach((net, t) => (metrics[`acc_${names[t]}`] = evaluateAccuracy(net, taskView(test, t), cfg.evalBatch)[0]));
  } else {
    const r = trainOne(o, data, method.weighting, repOptionsFor(method, cfg), { tag: '', ckpt: 'checkpoint.safetensors', log: true, taskNames: names });
    nets = [r.net];
    secPerEpoch = r.secPerEpoch;
    trainLoss = r.trainLoss;
    evaluateAccuracy(r.net, test, cfg.evalBatch).forEach((a, t) => (metrics[`acc_${names[t]}`] = a));
  }
  metrics.avg_acc = names.reduce((s, n) => s + metrics[`acc_${n}`], 0) / T;
  metrics.sec_per_epoch = secPerEpoch;
  // TSR entropy and saliency shares on test data (raw-loss saliencies, spatial positions).
  const stats = saliencyStats(
    test.n,
    cfg.evalBatch,
    (idx) => makeMtlBatch(test, test.inputs.map(() => idx)),
    (batch) => (method.kind === 'stl' ? nets.map((net, t) => netSaliencies(net, { inputs: [batch.inputs[batch.inputs.length === 1 ? 0 : t]], targets: [batch.targets[t]] })[0]) : netSaliencies(nets[0], batch)),
  );
  metrics.tsr_entropy = stats.entropy;
  // Power-law α: shared encoder (mean over the task networks for STL) and each head.
  const opt = { minEvals: 10, minTail: cfg.alphaMinTail };
  const al = nets.map((n) => netAlphas(n, opt));
  metrics.alpha_encoder = meanStd(al.map((a) => a.encoder).filter(Number.isFinite)).mean;
  names.forEach((nm, t) => (metrics[`alpha_${nm}`] = method.kind === 'stl' ? al[t].heads[0] : al[0].heads[t]));
  metrics.train_loss = trainLoss;
  metrics.params = nets.reduce((s, n) => s + n.params().reduce((a, v) => a + v.size, 0), 0);
  const [zh, zw] = nets[0].zShape;
  ctx.log({ kind: 'diagnostic', name: 'saliency', tasks: T, h: zh, w: zw, share: stats.meanShare.flat(), dominance: stats.dominance.flat() } as MetricRow);
  ctx.log({ kind: 'diagnostic', name: 'alpha_layers', ...Object.fromEntries(al.flatMap((a, i) => a.layers.map((l) => [`${method.kind === 'stl' ? names[i] + ':' : ''}${l.name}`, Number.isFinite(l.alpha) ? l.alpha : null]))) } as MetricRow);
  for (const n of nets) n.dispose();
  metrics.leaked_tensors = tf.memory().numTensors;
  return metrics;
}

