import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../engine/rng.js';
import type { CheckpointStore } from '../../train/checkpoint.js';
import { fit, type FitHook } from '../../train/fit.js';
import type { Optimizer } from '../../train/optimizers.js';
import type { Schedule } from '../../train/schedules.js';
import { Trainer } from '../../train/trainer.js';
import type { MultiTaskNet } from './model.js';
import type { RepMtlOptions } from './rep-mtl.js';
import { batchLosses, mtlGradFn, mtlParams, type MtlBatch, type MtlStepInfo } from './step.js';
import type { Weighting, WeightingContext } from './types.js';

export type MtlEpochRow = Record<string, number>;

export interface MtlTrainOptions {
  net: MultiTaskNet;
  weighting: Weighting;
  rep: RepMtlOptions | null;
  optimizer: Optimizer;
  schedule: Schedule;
  clipNorm?: number;
  epochs: number;
  /** The run's RNG: epoch orders, RLW's weights, PCGrad's order. Saved in checkpoints. */
  rng: Rng;
  /** One epoch's batches; each batch holds one index array per input (one for single-input MTL). */
  epochBatches(rng: Rng): Int32Array[][];
  /** Builds the batch tensors (called inside the step's tf.tidy). */
  makeBatch(idx: Int32Array[]): MtlBatch;
  /** Evaluation after each epoch (merged into the epoch row). */
  evaluate?(epoch: number): Record<string, number>;
  onEpoch?(row: MtlEpochRow): void;
  onStep?(info: { epoch: number; batch: number; batches: number; loss: number }): void;
  /** Epoch-end checkpoints (weights, optimizer, RNG, weighting state) and resume. */
  checkpoint?: { store: CheckpointStore; resume: boolean };
  /** Names used for per-task columns (`loss_<task>`, `w_<task>`); default the net's task names. */
  taskNames?: string[];
}

export interface MtlTrainResult {
  history: MtlEpochRow[];
  trainer: Trainer;
  /** Mean training seconds per epoch (steps only, no evaluation), over the epochs run in this process. */
  secPerEpoch: number;
}

/**
 * The multi-task epoch loop, run by `fit` with the multi-task gradient function: seeded fixed-shape batches, one
 * `Trainer.trainStepWith` per batch, per-task epoch-mean losses (fed to DWA/GradNorm through the context),
 * FAMO's after-step losses (an `afterStep` hook on the same batch), evaluation, and epoch-end checkpoints with
 * exact resume (weighting state and epoch losses as the hook's named state).
 */
export function trainMultiTask(o: MtlTrainOptions): MtlTrainResult {
  const { net, weighting, rng } = o;
  const T = net.numTasks;
  const names = o.taskNames ?? net.tasks.map((t) => t.name);
  const trainer = new Trainer({ params: mtlParams(net, weighting), optimizer: o.optimizer, schedule: o.schedule, clipNorm: o.clipNorm ?? 0, lastCheckpoint: () => o.checkpoint?.store.name ?? null });
  const sharedSize = net.encoderVars.reduce((s, v) => s + v.size, 0);
  weighting.prepareState?.({ sharedSize });
  let epochLosses: number[][] = [];
  // The current step's context and what it reports; per-epoch sums of what the steps reported.
  let ctx: WeightingContext = { step: 0, epoch: 0, numTasks: T, rng, epochLosses };
  let info: MtlStepInfo = { losses: new Array(T).fill(NaN), tsr: null, csa: null };
  const fresh = () => ({ sums: new Array(T).fill(0), wsum: new Array(T).fill(0), tsr: 0, csa: 0, n: 0 });
  let acc = fresh();
  const times: number[] = [];
  let live = false;
  const hook: FitHook<Int32Array[]> = {
    name: 'mtl',
    afterStep: ({ batch }) => {
      if (weighting.afterStep) {
        const lossesAfter = weighting.needsLossesAfterStep ? tf.tidy(() => batchLosses(net, o.makeBatch(batch))) : undefined;
        weighting.afterStep({ ctx, losses: info.losses, lossesAfter });
      }
      info.losses.forEach((l, t) => (acc.sums[t] += l));
      (weighting.lastWeights ?? []).forEach((w, t) => (acc.wsum[t] += w));
      acc.tsr += info.tsr ?? 0;
      acc.csa += info.csa ?? 0;
      acc.n++;
    },
    step: (s) => o.onStep?.({ epoch: s.epoch, batch: s.batchInEpoch, batches: s.batchesPerEpoch, loss: s.loss }),
    evaluate: (epoch) => {
      const n = Math.max(1, acc.n);
      epochLosses = [...epochLosses, acc.sums.map((s) => s / n)];
      const row: MtlEpochRow = {};
      names.forEach((nm, t) => {
        row[`loss_${nm}`] = acc.sums[t] / n;
        row[`w_${nm}`] = acc.wsum[t] / n;
      });
      if (o.rep?.tsr) row.train_tsr = acc.tsr / n;
      if (o.rep?.csa) row.train_csa = acc.csa / n;
      acc = fresh();
      live = true;
      return Object.assign(row, o.evaluate?.(epoch) ?? {});
    },
    epoch: (row) => {
      if (live) times.push(row.epoch_seconds);
      live = false;
      o.onEpoch?.(row);
    },
    state: {
      get: () => ({ epochLosses, weighting: weighting.getState?.() ?? null }),
      set: (s) => {
        const st = s as { epochLosses?: number[][]; weighting?: Record<string, unknown> | null };
        epochLosses = st.epochLosses ?? [];
        if (st.weighting) weighting.setState?.(st.weighting);
      },
    },
  };
  const { history } = fit<Int32Array[]>({
    trainer,
    epochs: o.epochs,
    rng,
    batches: o.epochBatches,
    gradFn: (idx, step, epoch) => {
      ctx = { step, epoch, numTasks: T, rng, epochLosses };
      info = { losses: new Array(T).fill(NaN), tsr: null, csa: null };
      return mtlGradFn({ net, weighting, rep: o.rep }, o.makeBatch(idx), ctx, info);
    },
    plateauMetric: 'train_loss',
    checkpoint: o.checkpoint ? { store: o.checkpoint.store, resume: o.checkpoint.resume } : undefined,
    extraVars: weighting.stateVariables ?? [],
    hooks: [hook],
  });
  const secPerEpoch = times.length ? times.reduce((a, b) => a + b, 0) / times.length : history.reduce((s, r) => s + r.epoch_seconds, 0) / Math.max(1, history.length);
  return { history, trainer, secPerEpoch };
}

/** Seeded batches for single-input or paired multi-input MTL: one permutation, the same indices for every input. */
export function pairedEpochBatches(n: number, batchSize: number, inputs: number): (rng: Rng) => Int32Array[][] {
  return (rng) => {
    const perm = rng.permutation(n);
    const steps = n >= batchSize ? Math.floor(n / batchSize) : 1;
    return Array.from({ length: steps }, (_, s) => new Array<Int32Array>(inputs).fill(perm.subarray(s * batchSize, Math.min(n, (s + 1) * batchSize))));
  };
}

/** Seeded batches for unpaired multi-input MTL: an independent permutation per input (sizes may differ). */
export function unpairedEpochBatches(sizes: number[], batchSize: number): (rng: Rng) => Int32Array[][] {
  return (rng) => {
    const perms = sizes.map((n) => rng.permutation(n));
    const steps = Math.max(1, Math.floor(Math.min(...sizes) / batchSize));
    return Array.from({ length: steps }, (_, s) => perms.map((p) => p.subarray(s * batchSize, (s + 1) * batchSize)));
  };
}

