import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { z } from 'zod';
import { softmaxCrossEntropy } from '../../engine/fused.js';
import { Rng } from '../../engine/rng.js';
import { gatherLabels, gatherRows } from '../../data/batching.js';
import type { ImageSplit } from '../../data/image-dataset.js';
import { fit, type EpochRow } from '../../train/fit.js';
import { evaluateClassifier } from '../../train/metrics.js';
import { createOptimizer } from '../../train/optimizers.js';
import { createSchedule } from '../../train/schedules.js';
import { Trainer, trainableVariables, type TrainHook } from '../../train/trainer.js';
import type { RunContext } from '../types.js';
import { fileCheckpointStore } from '../../node/checkpoint-file.js';

/** The `data` key's help text of every Fashion-MNIST experiment. */
export const IMAGE_DATA_DESCRIPTION = 'Directory with the four MNIST-format IDX files (train-/t10k- images and labels, gzipped or not); default: Fashion-MNIST from apt `dataset-fashion-mnist`.';

/** Optimizer/schedule keys every trained experiment shares (zod shape; spread into a schema, override defaults after). */
export const trainLoopShape = {
  epochs: z.number().int().positive().default(10).describe('Passes over the training set.'),
  batchSize: z.number().int().positive().default(128).describe('Examples per optimizer step.'),
  lr: z.number().positive().default(1e-3).describe('Peak learning rate (reached after warm-up; the schedule decays from it).'),
  optimizer: z.enum(['adam', 'adamw', 'sgd', 'momentum', 'nesterov']).default('adam').describe('adam (ignores weightDecay), adamw (decoupled weightDecay), sgd, momentum (SGD, μ = 0.9) or nesterov (μ = 0.9).'),
  weightDecay: z.number().min(0).default(0).describe('Weight decay (0 = none): decoupled on kernels (rank ≥ 2) for adamw, L2 added to every gradient for sgd/momentum/nesterov; adam ignores it.'),
  schedule: z.enum(['constant', 'cosine', 'step', 'plateau']).default('cosine').describe('LR schedule over all steps: constant; cosine (to 0 at the last step); step (× 0.1 every third of the steps); plateau (× 0.1 when the epoch\'s val_loss, else train_loss, has not improved for 2 epochs).'),
  warmupSteps: z.number().int().min(0).default(0).describe('Linear LR warm-up over the first N optimizer steps (0 = none; plateau ignores it).'),
  clipNorm: z.number().min(0).default(0).describe('Clip the global gradient L2 norm to this value (0 = no clipping).'),
};

/** The training knobs shared by image-classification experiments (zod shape, merged into each schema). */
export const imageTrainShape = {
  ...trainLoopShape,
  trainLimit: z.number().int().min(0).default(0).describe('Use only the first N training images (0 = all); for quick runs and tests.'),
  testLimit: z.number().int().min(0).default(0).describe('Evaluate on only the first N test images (0 = all).'),
  checkpointEverySteps: z.number().int().min(0).default(0).describe('Also checkpoint every N steps (0 = only at epoch ends).'),
};

/** The resolved values of `trainLoopShape`. */
export type TrainLoopConfig = { [K in keyof typeof trainLoopShape]: z.output<(typeof trainLoopShape)[K]> };

export interface ImageTrainConfig extends TrainLoopConfig {
  trainLimit: number;
  testLimit: number;
  checkpointEverySteps: number;
}

/** Builds a [n, H, W, 1] image batch tensor from rows `idx` of a split. */
export function imageBatch(split: ImageSplit, idx: ArrayLike<number>): tf.Tensor4D {
  const px = split.height * split.width;
  return tf.tensor4d(gatherRows(split.images, px, idx), [idx.length, split.height, split.width, 1]);
}

export interface TrainImageOptions<C extends ImageTrainConfig> {
  ctx: RunContext<C>;
  model: tf.LayersModel;
  train: ImageSplit;
  /** Training labels to fit (may be noisy); defaults to train.labels. */
  trainLabels?: Int32Array;
  test: ImageSplit;
  numClasses: number;
  rng: Rng;
  /** Batch loss from logits and integer labels; default mean softmax cross-entropy. */
  loss?: (logits: tf.Tensor2D, labels: tf.Tensor1D, idx: Int32Array) => tf.Scalar;
  hooks?: TrainHook[];
  /** Extra per-epoch metrics (e.g. σ-AUROC), merged into the logged epoch row. */
  epochMetrics?: (epoch: number) => Record<string, number>;
  extraState?: { get(): Record<string, unknown>; set(s: Record<string, unknown>): void };
  /** Forward for training (default model.apply with training=true). */
  forward?: (x: tf.Tensor4D, training: boolean) => tf.Tensor2D;
}

export interface TrainImageResult {
  history: EpochRow[];
  testAcc: number;
  testLoss: number;
  trainer: Trainer;
}

/**
 * Trains an image classifier with efftrain's Trainer (custom loop, checkpoints, resume), logging one row per
 * epoch with test accuracy, and returns the final test accuracy. Shared by fashion-baseline, SuperLoss and S3.
 */
export function trainImageClassifier<C extends ImageTrainConfig>(o: TrainImageOptions<C>): TrainImageResult {
  const { ctx, model, train, test } = o;
  const cfg = ctx.config;
  const labels = o.trainLabels ?? train.labels;
  const nTrain = cfg.trainLimit > 0 ? Math.min(cfg.trainLimit, train.n) : train.n;
  const nTest = cfg.testLimit > 0 ? Math.min(cfg.testLimit, test.n) : test.n;
  const stepsPerEpoch = Math.max(1, Math.floor(nTrain / cfg.batchSize));
  const totalSteps = stepsPerEpoch * cfg.epochs;
  const forward = o.forward ?? ((x: tf.Tensor4D, training: boolean) => model.apply(x, { training }) as tf.Tensor2D);
  const trainer = new Trainer({
    params: trainableVariables(model),
    optimizer: createOptimizer(cfg.optimizer, { weightDecay: cfg.weightDecay }),
    schedule: createSchedule(cfg.schedule, cfg.lr, totalSteps, { warmupSteps: cfg.warmupSteps }),
    clipNorm: cfg.clipNorm,
    hooks: o.hooks,
    lastCheckpoint: () => ckptPath,
  });
  const ckptPath = join(ctx.artifactsDir, 'checkpoint.safetensors');
  const lossFn =
    o.loss ??
    ((logits: tf.Tensor2D, y: tf.Tensor1D) => softmaxCrossEntropy(tf.oneHot(y, o.numClasses), logits));
  const evalTest = () => evaluateClassifier(nTest, 500, (idx) => forward(imageBatch(test, idx), false), test.labels);
  const { history } = fit({
    trainer,
    numTrain: nTrain,
    batchSize: cfg.batchSize,
    epochs: cfg.epochs,
    rng: o.rng,
    lossFn: (idx) => {
      const x = imageBatch(train, idx);
      const y = tf.tensor1d(gatherLabels(labels, idx), 'int32');
      return lossFn(forward(x, true), y, idx);
    },
    evaluate: (epoch) => {
      const r = evalTest();
      return { test_acc: r.acc, test_loss: r.loss, ...(o.epochMetrics?.(epoch) ?? {}) };
    },
    onEpoch: (row) => {
      ctx.log(row);
      ctx.progress({ epoch: row.epoch, epochs: cfg.epochs, loss: row.train_loss, message: `test_acc ${row.test_acc.toFixed(4)}` });
    },
    onStep: (s) => {
      if (s.batchInEpoch % 20 === 0 || s.batchInEpoch === s.batchesPerEpoch) {
        ctx.progress({ epoch: s.epoch, epochs: cfg.epochs, step: s.batchInEpoch, steps: s.batchesPerEpoch, loss: s.loss });
      }
    },
    checkpoint: { store: fileCheckpointStore(ckptPath), everySteps: cfg.checkpointEverySteps, resume: ctx.resume },
    extraState: o.extraState,
  });
  const final = history[history.length - 1];
  return { history, testAcc: final?.test_acc ?? NaN, testLoss: final?.test_loss ?? NaN, trainer };
}

/** A stable 31-bit hash of a string (FNV-1a), used to derive per-method seeds. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 1;
}

/** The run's RNG for (seed, method): independent across methods, identical across processes. */
export function runRng(seed: number, salt: string): Rng {
  return new Rng((seed * 1000003) ^ hashString(salt));
}
