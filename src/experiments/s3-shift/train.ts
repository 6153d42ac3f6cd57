/**
 * How one `s3-shift` run trains: a train / validation split of the training images, the optimizer recipe of
 * the method (see arms.ts), the shift-layer hooks, and `fit` (src/train) with validation metrics per epoch.
 * The test split is not touched here.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import type { ImageSplit } from '../../data/image-dataset.js';
import { softmaxCrossEntropy } from '../../engine/fused.js';
import type { Rng } from '../../engine/rng.js';
import { chainForward, clampShiftLatents, quantizedLayers, s3RegularizationLoss } from '../../methods/s3/index.js';
import { fileCheckpointStore } from '../../node/checkpoint-file.js';
import { fit, type EpochRow } from '../../train/fit.js';
import { evaluateClassifier } from '../../train/metrics.js';
import { createOptimizer, SGD } from '../../train/optimizers.js';
import { createSchedule } from '../../train/schedules.js';
import { Trainer, trainableVariables, type TrainHook } from '../../train/trainer.js';
import { imageBatch } from '../common/image-classification.js';
import { gatherLabels } from '../../data/batching.js';
import type { RunContext } from '../types.js';
import type { S3Arm } from './arms.js';
import type { S3ShiftConfig } from './index.js';

/** Rows [from, from + n) of a split, without copying. */
export function splitRows(s: ImageSplit, from: number, n: number): ImageSplit {
  const px = s.height * s.width;
  return { ...s, images: s.images.subarray(from * px, (from + n) * px), labels: s.labels.subarray(from, from + n), n };
}

/**
 * The validation split is the LAST `valSize` training images; training uses the first
 * min(trainLimit, n − valSize). Test images are never part of either.
 */
export function trainValSplit(train: ImageSplit, cfg: Pick<S3ShiftConfig, 'valSize' | 'trainLimit'>): { fitSplit: ImageSplit; val: ImageSplit } {
  if (cfg.valSize >= train.n) throw new Error(`s3-shift: config key "valSize" (${cfg.valSize}) must be below the number of training images (${train.n})`);
  const pool = train.n - cfg.valSize;
  const nFit = cfg.trainLimit > 0 ? Math.min(cfg.trainLimit, pool) : pool;
  return { fitSplit: splitRows(train, 0, nFit), val: splitRows(train, pool, cfg.valSize) };
}

/** The variables of the shift-layer latents (for fp: the quantised convs' kernels), the "latents" of the recipes. */
export function latentVariables(model: tf.LayersModel): Set<tf.Variable> {
  const out = new Set<tf.Variable>();
  // Latents and kernels have the kernel's rank (≥ 2); biases are rank 1.
  for (const l of quantizedLayers(model)) for (const w of l.trainableWeights) if (w.shape.length >= 2) out.add(w.read() as tf.Variable);
  return out;
}

/** The recipe of a method: optimizer, peak lr, and the L2 decay of the latents. */
export function recipeFor(arm: S3Arm, cfg: S3ShiftConfig): { optimizer: ReturnType<typeof createOptimizer>; lr: number; latentWeightDecay: number; label: string } {
  // A base method's lr (chosen for Adam) carries over to its -radam / -lrx arms, not to the SGD recipe.
  const lr = cfg.lrByMethod[arm.name] ?? (arm.recipe === 'sgd' ? cfg.sgdLr : (cfg.lrByMethod[arm.base] ?? cfg.lr));
  if (arm.recipe === 'sgd') {
    return { optimizer: new SGD({ momentum: 0.9, weightDecay: cfg.sgdWeightDecay }), lr, latentWeightDecay: 0, label: `SGD m0.9 lr ${lr} wd ${cfg.sgdWeightDecay} (all params)` };
  }
  const name = arm.recipe === 'radam' ? 'radam' : cfg.optimizer;
  return { optimizer: createOptimizer(name, { weightDecay: cfg.weightDecay }), lr, latentWeightDecay: cfg.latentWeightDecay, label: `${name} lr ${lr}` };
}

/** The training-step hooks of a method: S3 regulariser, DeepShift-PS clamp, L2 decay of the latents. */
export function hooksFor(model: tf.LayersModel, arm: S3Arm, latents: Set<tf.Variable>, latentWeightDecay: number): TrainHook[] {
  const hooks: TrainHook[] = [];
  const q = arm.quant;
  if (q.kind === 'shift') {
    hooks.push({
      name: 's3-shift',
      // S3 dense-weight regulariser α·Σ max(−W_sparse, 0) (S3 Fig. 3); zero for DeepShift-PS / -noreg.
      extraLoss: () => (q.parameterization === 's3' && q.regularize ? s3RegularizationLoss(model) : null),
      // DeepShift-PS in-place exponent clamp after each optimiser step (DeepShift `modules.py`).
      afterStep: () => {
        if (q.parameterization === 'deepshift-ps') clampShiftLatents(model);
      },
    });
  }
  if (latentWeightDecay > 0) {
    // L2 decay of the latents added to their gradients (PyTorch `weight_decay`; S3 main.py uses 1e-4).
    hooks.push({ name: 'latent-weight-decay', transformGrads: (g, ctx) => g.map((x, i) => (x && latents.has(ctx.params[i]) ? tf.add(x, tf.mul(ctx.params[i], latentWeightDecay)) : x)) });
  }
  return hooks;
}

export interface S3TrainOptions {
  ctx: RunContext<S3ShiftConfig>;
  arm: S3Arm;
  model: tf.LayersModel;
  fitSplit: ImageSplit;
  val: ImageSplit;
  numClasses: number;
  rng: Rng;
  epochMetrics: () => Record<string, number>;
  extraState: { get(): Record<string, unknown>; set(s: Record<string, unknown>): void };
}

/** Trains one model through `fit`; logs {train_loss, val_acc, val_loss, …epochMetrics} per epoch. */
export function trainS3(o: S3TrainOptions): { history: EpochRow[]; trainer: Trainer; lrSum: number; lrSumLatent: number; recipe: string } {
  const { ctx, model, arm } = o;
  const cfg = ctx.config;
  const stepsPerEpoch = Math.max(1, Math.floor(o.fitSplit.n / cfg.batchSize));
  const totalSteps = stepsPerEpoch * cfg.epochs;
  const recipe = recipeFor(arm, cfg);
  const latents = latentVariables(model);
  if (arm.latentLrMult !== 1) recipe.optimizer.lrScale = (p) => (latents.has(p) ? arm.latentLrMult : 1);
  const forward = chainForward(model);
  const ckptPath = join(ctx.artifactsDir, 'checkpoint.safetensors');
  const trainer = new Trainer({
    params: trainableVariables(model),
    optimizer: recipe.optimizer,
    schedule: createSchedule(cfg.schedule, recipe.lr, totalSteps, { warmupSteps: cfg.warmupSteps }),
    clipNorm: cfg.clipNorm,
    hooks: hooksFor(model, arm, latents, recipe.latentWeightDecay),
    lastCheckpoint: () => ckptPath,
  });
  let lrSum = 0;
  for (let s = 0; s < totalSteps; s++) lrSum += trainer.schedule.lr(s);
  const val = o.val;
  const { history } = fit({
    trainer,
    numTrain: o.fitSplit.n,
    batchSize: cfg.batchSize,
    epochs: cfg.epochs,
    rng: o.rng,
    lossFn: (idx) => {
      const y = tf.oneHot(tf.tensor1d(gatherLabels(o.fitSplit.labels, idx), 'int32'), o.numClasses);
      return softmaxCrossEntropy(y, forward(imageBatch(o.fitSplit, idx), true));
    },
    evaluate: () => {
      const r = evaluateClassifier(val.n, 500, (idx) => forward(imageBatch(val, idx), false), val.labels);
      return { val_acc: r.acc, val_loss: r.loss, ...o.epochMetrics() };
    },
    onEpoch: (row) => {
      ctx.log(row);
      ctx.progress({ epoch: row.epoch, epochs: cfg.epochs, loss: row.train_loss, message: `val_acc ${row.val_acc.toFixed(4)}` });
    },
    onStep: (s) => {
      if (s.batchInEpoch % 20 === 0 || s.batchInEpoch === s.batchesPerEpoch) ctx.progress({ epoch: s.epoch, epochs: cfg.epochs, step: s.batchInEpoch, steps: s.batchesPerEpoch, loss: s.loss });
    },
    checkpoint: { store: fileCheckpointStore(ckptPath), everySteps: cfg.checkpointEverySteps, resume: ctx.resume },
    extraState: o.extraState,
  });
  return { history, trainer, lrSum, lrSumLatent: lrSum * arm.latentLrMult, recipe: recipe.label };
}
