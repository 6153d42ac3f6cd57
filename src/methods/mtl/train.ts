import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../engine/rng.js';
import { loadCheckpointFrom, saveCheckpointTo, type CheckpointStore } from '../../train/checkpoint.js';
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
 * The multi-task epoch loop: seeded fixed-shape batches, one `Trainer.trainStepWith` per batch with the
 * multi-task gradient function, per-task epoch-mean losses (fed to DWA/GradNorm through the context),
 * FAMO's after-step loss, evaluation, and epoch-end checkpoints with exact resume.
 */
export function trainMultiTask(o: MtlTrainOptions): MtlTrainResult {
  const { net, weighting, rng } = o;
  const T = net.numTasks;
  const names = o.taskNames ?? net.tasks.map((t) => t.name);
  const trainer = new Trainer({ params: mtlParams(net, weighting), optimizer: o.optimizer, schedule: o.schedule, clipNorm: o.clipNorm ?? 0, lastCheckpoint: () => o.checkpoint?.store.name ?? null });
  let history: MtlEpochRow[] = [];
  let epochLosses: number[][] = [];
  let start = 0;
  const sharedSize = net.encoderVars.reduce((s, v) => s + v.size, 0);
  weighting.prepareState?.({ sharedSize });
  const extraVars = () => weighting.stateVariables ?? [];
  if (o.checkpoint?.resume && o.checkpoint.store.exists()) {
    const meta = loadCheckpointFrom(o.checkpoint.store, trainer, extraVars());
    rng.setState(meta.rng);
    start = meta.epoch;
    history = (meta.extra.history as MtlEpochRow[]) ?? [];
    epochLosses = (meta.extra.epochLosses as number[][]) ?? [];
    if (meta.extra.weighting) weighting.setState?.(meta.extra.weighting as Record<string, unknown>);
    for (const row of history) o.onEpoch?.(row);
  }
  const times: number[] = [];
  for (let epoch = start; epoch < o.epochs; epoch++) {
    const epochRng = rng.getState();
    const batches = o.epochBatches(rng);
    const sums = new Array(T).fill(0);
    const wsum = new Array(T).fill(0);
    let tsrSum = 0;
    let csaSum = 0;
    let lossSum = 0;
    const t0 = performance.now();
    batches.forEach((idx, b) => {
      const ctx: WeightingContext = { step: trainer.step, epoch, numTasks: T, rng, epochLosses };
      const info: MtlStepInfo = { losses: new Array(T).fill(NaN), tsr: null, csa: null };
      const loss = tf.tidy(() => {
        const batch = o.makeBatch(idx);
        const l = trainer.trainStepWith(mtlGradFn({ net, weighting, rep: o.rep }, batch, ctx, info));
        if (weighting.afterStep) {
          const lossesAfter = weighting.needsLossesAfterStep ? batchLosses(net, batch) : undefined;
          weighting.afterStep({ ctx, losses: info.losses, lossesAfter });
        }
        return l;
      });
      lossSum += loss;
      info.losses.forEach((l, t) => (sums[t] += l));
      (weighting.lastWeights ?? []).forEach((w, t) => (wsum[t] += w));
      tsrSum += info.tsr ?? 0;
      csaSum += info.csa ?? 0;
      o.onStep?.({ epoch, batch: b + 1, batches: batches.length, loss });
    });
    const seconds = (performance.now() - t0) / 1000;
    times.push(seconds);
    const n = Math.max(1, batches.length);
    epochLosses = [...epochLosses, sums.map((s) => s / n)];
    const row: MtlEpochRow = { epoch: epoch + 1, step: trainer.step, lr: trainer.lr, train_loss: lossSum / n, epoch_seconds: seconds };
    names.forEach((nm, t) => {
      row[`loss_${nm}`] = sums[t] / n;
      row[`w_${nm}`] = wsum[t] / n;
    });
    if (o.rep?.tsr) row.train_tsr = tsrSum / n;
    if (o.rep?.csa) row.train_csa = csaSum / n;
    Object.assign(row, o.evaluate?.(epoch + 1) ?? {});
    trainer.schedule.onEpochEnd?.(row.train_loss);
    history.push(row);
    o.onEpoch?.(row);
    if (o.checkpoint) {
      saveCheckpointTo(o.checkpoint.store, trainer, { epoch: epoch + 1, batchInEpoch: 0, rng: rng.getState(), epochRng, extra: { history, epochLosses, weighting: weighting.getState?.() ?? null } }, extraVars());
    }
  }
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

