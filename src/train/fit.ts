import * as tf from '@tensorflow/tfjs';
import { Rng } from '../engine/rng.js';
import { epochBatches } from '../data/batching.js';
import { loadCheckpointFrom, readCheckpointMeta, saveCheckpointTo, type CheckpointStore } from './checkpoint.js';
import type { GradFn, Trainer } from './trainer.js';

export type EpochRow = Record<string, number>;

/** What a step hook sees after each optimizer step. */
export interface FitStepInfo {
  epoch: number;
  step: number;
  batchInEpoch: number;
  batchesPerEpoch: number;
  loss: number;
}

/**
 * A hook into `fit`'s loop (progress, evaluation, technique state such as an EMA). Hooks run in order; their
 * `state` is saved in checkpoints under the hook's name and restored on resume, so a resumed run is exact.
 * `B` is the batch type (row indices by default; multi-input tasks use one index array per input).
 */
export interface FitHook<B = Int32Array> {
  name: string;
  /** Before every optimizer step, with the step about to run (0-based): e.g. set a scheduled mixing weight, or change the trainer's parameter set. */
  beforeStep?(step: number): void;
  /**
   * Right after each optimizer step (before the `step` observers), with the step's batch: for techniques that
   * read the model after the update (e.g. FAMO's task losses on the same batch after the step).
   */
  afterStep?(info: FitStepInfo & { batch: B }): void;
  /** After every optimizer step (cheap observers). */
  step?(info: FitStepInfo): void;
  /** Evaluation after each epoch (in step mode: after each recorded step, given the steps done): metrics merged into the row. */
  evaluate?(epoch: number): Record<string, number>;
  /** With each finished epoch row (also replayed for the epochs restored on resume). */
  epoch?(row: EpochRow): void;
  /** Named state kept in checkpoints (JSON-serialisable). */
  state?: { get(): unknown; set(s: unknown): void };
  /**
   * On resume, with the checkpoint's step, *before* its tensors are loaded: bring the trainer's parameter set to
   * what it was at that step (e.g. auxiliary weights dropped mid-run), so the saved tensors and slots line up.
   */
  resume?(step: number): void;
}

/**
 * Step-based training (language models drawing their own windows): `total` optimizer steps in one pass, no epoch
 * permutation. `lossFn` gets an empty batch and the step; a row {step, lr, train_loss (mean since the previous
 * row), …evaluate()} is recorded after every step where `evalAt(done)` holds, and after the last step.
 * Checkpoints (with `checkpoint.everySteps`) are written every `everySteps` steps before the last one.
 */
export interface FitSteps {
  total: number;
  evalAt?: (done: number) => boolean;
}

export interface FitOptions<B = Int32Array> {
  trainer: Trainer;
  /**
   * Number of training examples; batches are seeded permutations of 0..n-1 with a fixed size (last partial batch
   * dropped). Required in epoch mode unless `batches` is given; unused with `steps`.
   */
  numTrain?: number;
  /** Rows per batch of the default `batches`; unused with `steps`. */
  batchSize?: number;
  /** Required in epoch mode; unused with `steps`. */
  epochs?: number;
  /** Train for a number of steps instead of epochs (see FitSteps); `lossFn`/`gradFn` then draw their own batches. */
  steps?: FitSteps;
  /** The run's RNG: it draws each epoch's order, and may be shared with dropout/noise in `lossFn`. Saved in checkpoints. */
  rng: Rng;
  /** Loss of one batch, called inside tf.variableGrads. One of `lossFn` / `gradFn` is required. */
  lossFn?: (batch: B, step: number) => tf.Scalar;
  /**
   * Instead of `lossFn`: the gradient function of one batch for `Trainer.trainStepWith` (e.g. multi-task
   * weightings). Called inside a tf.tidy that also holds the step, so tensors it creates are freed after it.
   */
  gradFn?: (batch: B, step: number, epoch: number) => GradFn;
  /** One epoch's batches from the run's RNG; default: a seeded permutation of 0..numTrain-1 cut into `batchSize` rows. */
  batches?: (rng: Rng) => B[];
  /** Evaluation after each epoch; returns metrics merged into the epoch row (e.g. val/test accuracy). */
  evaluate?: (epoch: number) => Record<string, number>;
  /** Called with each finished epoch row {epoch, step, train_loss, lr, …evaluate()}. */
  onEpoch?: (row: EpochRow) => void;
  /** Called after every step (cheap observers, e.g. progress). */
  onStep?: (info: { epoch: number; step: number; batchInEpoch: number; batchesPerEpoch: number; loss: number }) => void;
  /** Metric (lower is better) fed to a plateau schedule; default `val_loss` or `train_loss`. */
  plateauMetric?: string;
  /**
   * Where to checkpoint (every epoch, plus every `everySteps`), and whether to resume from it when present.
   * `final` (step mode) also checkpoints after the last step, so a run with a later phase can resume past this one.
   */
  checkpoint?: { store: CheckpointStore; everySteps?: number; resume?: boolean; final?: boolean };
  /** Extra state to save/restore with checkpoints (e.g. SuperLoss's τ EMA). */
  extraState?: { get(): Record<string, unknown>; set(s: Record<string, unknown>): void };
  extraVars?: tf.Variable[];
  /** Hooks for step, evaluation, epoch and named checkpoint state (run after the callbacks above). */
  hooks?: FitHook<B>[];
}

export interface FitResult {
  history: EpochRow[];
  resumedFrom: { step: number; epoch: number } | null;
}

/**
 * The epoch loop over Trainer.trainStep: seeded batching, per-epoch evaluation, atomic checkpoints
 * (every epoch, plus every `everySteps`), and exact resume — a resumed run reproduces the uninterrupted one,
 * because the checkpoint stores the RNG state at the start of the epoch (to regenerate its batch order)
 * and at the checkpoint (for everything drawn since).
 */
export function fit<B = Int32Array>(o: FitOptions<B>): FitResult {
  if (!o.lossFn && !o.gradFn) throw new Error('fit: lossFn or gradFn is required');
  if (!o.steps && o.epochs === undefined) throw new Error('fit: `epochs` is required without `steps`');
  if (!o.steps && !o.batches && (o.numTrain === undefined || o.batchSize === undefined)) {
    throw new Error('fit: `numTrain` and `batchSize` are required without `steps` or `batches`');
  }
  const makeBatches = o.batches ?? ((r: Rng) => epochBatches(o.numTrain!, o.batchSize!, r) as unknown as B[]);
  const { trainer, rng } = o;
  let history: EpochRow[] = [];
  let startEpoch = 0;
  let skipBatches = 0;
  let epochRngState = rng.getState();
  let resumedFrom: FitResult['resumedFrom'] = null;
  // Running sum of the current epoch's batch losses (saved so a mid-epoch resume reports the same mean).
  let lossSum = 0;
  let lossN = 0;
  const ckpt = o.checkpoint;
  const hooks = o.hooks ?? [];
  if (ckpt?.resume && ckpt.store.exists()) {
    if (hooks.some((h) => h.resume)) {
      const at = readCheckpointMeta(ckpt.store).step;
      for (const h of hooks) h.resume?.(at);
    }
    const meta = loadCheckpointFrom(ckpt.store, trainer, o.extraVars);
    rng.setState(meta.rng);
    epochRngState = meta.epochRng;
    startEpoch = meta.epoch;
    skipBatches = meta.batchInEpoch;
    history = (meta.extra.history as EpochRow[]) ?? [];
    ({ sum: lossSum, n: lossN } = (meta.extra.epochLoss as { sum: number; n: number }) ?? { sum: 0, n: 0 });
    if (meta.extra.user) o.extraState?.set(meta.extra.user as Record<string, unknown>);
    const hookState = (meta.extra.hooks ?? {}) as Record<string, unknown>;
    for (const h of hooks) if (h.state && h.name in hookState) h.state.set(hookState[h.name]);
    resumedFrom = { step: meta.step, epoch: meta.epoch };
    for (const row of history) {
      o.onEpoch?.(row);
      for (const h of hooks) h.epoch?.(row);
    }
  }
  const save = (epoch: number, batchInEpoch: number) => {
    if (!ckpt) return;
    saveCheckpointTo(
      ckpt.store,
      trainer,
      { epoch, batchInEpoch, rng: rng.getState(), epochRng: epochRngState, extra: { history, epochLoss: { sum: lossSum, n: lossN }, user: o.extraState?.get() ?? null, hooks: Object.fromEntries(hooks.filter((h) => h.state).map((h) => [h.name, h.state!.get()])) } },
      o.extraVars,
    );
  };
  if (o.steps) {
    // One pass ("epoch" 0, batchInEpoch = steps done), checkpointed every `everySteps` before the last step.
    const { total, evalAt } = o.steps;
    const empty = new Int32Array(0) as unknown as B;
    while (trainer.step < total) {
      const step = trainer.step;
      for (const h of hooks) h.beforeStep?.(step);
      const loss = o.gradFn ? tf.tidy(() => trainer.trainStepWith(o.gradFn!(empty, step, 0))) : trainer.trainStep(() => o.lossFn!(empty, step));
      const done = trainer.step;
      lossSum += loss;
      lossN++;
      const info = { epoch: 0, step: done, batchInEpoch: done, batchesPerEpoch: total, loss };
      for (const h of hooks) h.afterStep?.({ ...info, batch: empty });
      o.onStep?.(info);
      for (const h of hooks) h.step?.(info);
      if (done === total || evalAt?.(done)) {
        const row: EpochRow = { step: done, lr: trainer.lr, train_loss: lossN ? lossSum / lossN : NaN };
        Object.assign(row, o.evaluate?.(done) ?? {});
        for (const h of hooks) Object.assign(row, h.evaluate?.(done) ?? {});
        history.push(row);
        o.onEpoch?.(row);
        for (const h of hooks) h.epoch?.(row);
        lossSum = 0;
        lossN = 0;
      }
      if (ckpt?.everySteps && done % ckpt.everySteps === 0 && done < total) save(0, done);
      else if (ckpt?.final && done === total) save(0, done);
    }
    return { history, resumedFrom };
  }
  for (let epoch = startEpoch; epoch < o.epochs!; epoch++) {
    let batches: B[];
    if (skipBatches > 0) {
      batches = makeBatches(Rng.fromState(epochRngState));
    } else {
      epochRngState = rng.getState();
      batches = makeBatches(rng);
    }
    if (skipBatches === 0) {
      lossSum = 0;
      lossN = 0;
    }
    const t0 = Date.now();
    for (let b = skipBatches; b < batches.length; b++) {
      const batch = batches[b];
      const step = trainer.step;
      for (const h of hooks) h.beforeStep?.(step);
      const loss = o.gradFn ? tf.tidy(() => trainer.trainStepWith(o.gradFn!(batch, step, epoch))) : trainer.trainStep(() => o.lossFn!(batch, step));
      lossSum += loss;
      lossN++;
      const info = { epoch, step: trainer.step, batchInEpoch: b + 1, batchesPerEpoch: batches.length, loss };
      for (const h of hooks) h.afterStep?.({ ...info, batch });
      o.onStep?.(info);
      for (const h of hooks) h.step?.(info);
      if (ckpt?.everySteps && trainer.step % ckpt.everySteps === 0 && b + 1 < batches.length) save(epoch, b + 1);
    }
    skipBatches = 0;
    const row: EpochRow = { epoch: epoch + 1, step: trainer.step, lr: trainer.lr, train_loss: lossN ? lossSum / lossN : NaN, epoch_seconds: (Date.now() - t0) / 1000 };
    Object.assign(row, o.evaluate?.(epoch + 1) ?? {});
    for (const h of hooks) Object.assign(row, h.evaluate?.(epoch + 1) ?? {});
    if (trainer.schedule.onEpochEnd) {
      const key = o.plateauMetric ?? ('val_loss' in row ? 'val_loss' : 'train_loss');
      trainer.schedule.onEpochEnd(row[key]);
    }
    history.push(row);
    o.onEpoch?.(row);
    for (const h of hooks) h.epoch?.(row);
    save(epoch + 1, 0);
  }
  return { history, resumedFrom };
}
