import * as tf from '@tensorflow/tfjs';
import type { RngState } from '../engine/rng.js';
import { UserError } from '../errors.js';
import type { Optimizer } from './optimizers.js';
import { decodeSafetensors, encodeSafetensors } from './safetensors.js';
import type { Trainer } from './trainer.js';

/** Everything needed to continue a run exactly: weights, optimizer slots, RNG, step/epoch, schedule, extras. */
export interface CheckpointMeta {
  version: 1;
  step: number;
  epoch: number;
  /** Batches of `epoch` already done (a checkpoint may fall mid-epoch). */
  batchInEpoch: number;
  rng: RngState;
  /** RNG state at the start of the current epoch (to regenerate its batch order on resume). */
  epochRng: RngState;
  optimizer: { kind: string; iterations: number };
  schedule?: Record<string, number>;
  /** Anything else the experiment wants back (e.g. metric history, EMA of τ). */
  extra: Record<string, unknown>;
}

/** Where checkpoints live: a file (efftrain/node's `fileCheckpointStore`), memory, IndexedDB… */
export interface CheckpointStore {
  /** Names the checkpoint in messages (a file path). */
  readonly name: string;
  exists(): boolean;
  read(): Uint8Array;
  /** Must replace the previous checkpoint atomically (a crash mid-write keeps the old one). */
  write(bytes: Uint8Array): void;
}

/** A checkpoint store in memory (browser, tests). */
export function memoryCheckpointStore(name = 'memory checkpoint'): CheckpointStore {
  let bytes: Uint8Array | null = null;
  return {
    name,
    exists: () => bytes !== null,
    read: () => {
      if (!bytes) throw new Error(`${name}: no checkpoint written`);
      return bytes;
    },
    write: (b) => {
      bytes = b;
    },
  };
}

export type CheckpointInfo = Omit<CheckpointMeta, 'version' | 'step' | 'optimizer' | 'schedule'>;

/**
 * Encodes a checkpoint as one safetensors file: params `p/<i>`, extra variables `x/<i>`, optimizer slots
 * `opt/<key>`, and the metadata JSON (step, RNG, schedule, named extra state) in the header.
 */
export function encodeCheckpoint(trainer: Trainer, meta: CheckpointInfo, extraVars: tf.Variable[] = []): Uint8Array {
  const tensors: Record<string, tf.Tensor> = {};
  trainer.params.forEach((p, i) => (tensors[`p/${i}`] = p));
  extraVars.forEach((p, i) => (tensors[`x/${i}`] = p));
  const opt = trainer.optimizer.getState();
  for (const [k, t] of Object.entries(opt.slots)) tensors[`opt/${k}`] = t;
  const full: CheckpointMeta = {
    version: 1,
    step: trainer.step,
    optimizer: { kind: opt.kind, iterations: opt.iterations },
    schedule: trainer.schedule.getState?.(),
    ...meta,
  };
  return encodeSafetensors(tensors, { efftrain: JSON.stringify(full) });
}

/**
 * Restores a checkpoint made by encodeCheckpoint into `trainer` (params, optimizer, schedule, step) and
 * `extraVars`; returns the metadata so the caller can restore its RNG and loop position. `path` names the
 * source in errors.
 */
export function restoreCheckpoint(bytes: Uint8Array, path: string, trainer: Trainer, extraVars: tf.Variable[] = []): CheckpointMeta {
  const { tensors, metadata } = decodeSafetensors(bytes, path);
  try {
    const meta = JSON.parse(metadata.efftrain ?? 'null') as CheckpointMeta | null;
    if (!meta || meta.version !== 1) throw new Error(`${path}: not an efftrain checkpoint`);
    const assign = (vars: tf.Variable[], prefix: string) =>
      vars.forEach((p, i) => {
        const t = tensors[`${prefix}/${i}`];
        if (!t) throw new Error(`${path}: missing tensor ${prefix}/${i} (model changed since the checkpoint?)`);
        if (t.shape.join('x') !== p.shape.join('x')) {
          throw new Error(`${path}: tensor ${prefix}/${i} has shape [${t.shape}] but the model expects [${p.shape}]`);
        }
        p.assign(t);
      });
    assign(trainer.params, 'p');
    assign(extraVars, 'x');
    const slots: Record<string, tf.Tensor> = {};
    for (const [k, t] of Object.entries(tensors)) if (k.startsWith('opt/')) slots[k.slice(4)] = t;
    restoreOptimizer(trainer.optimizer, meta.optimizer, slots);
    if (meta.schedule) trainer.schedule.setState?.(meta.schedule);
    trainer.step = meta.step;
    return meta;
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

function restoreOptimizer(opt: Optimizer, info: { kind: string; iterations: number }, slots: Record<string, tf.Tensor>): void {
  opt.setState({ kind: info.kind, iterations: info.iterations, slots });
}

/** Writes a checkpoint of `trainer` to `store`. */
export function saveCheckpointTo(store: CheckpointStore, trainer: Trainer, meta: CheckpointInfo, extraVars: tf.Variable[] = []): void {
  store.write(encodeCheckpoint(trainer, meta, extraVars));
}

/**
 * Restores the checkpoint in `store` into `trainer` (see restoreCheckpoint) to resume a run. A truncated,
 * corrupt or mismatched checkpoint is a UserError naming it and what to do.
 */
export function loadCheckpointFrom(store: CheckpointStore, trainer: Trainer, extraVars: tf.Variable[] = []): CheckpointMeta {
  return resumeGuard(store, () => restoreCheckpoint(store.read(), store.name, trainer, extraVars));
}

/** The metadata of the checkpoint in `store` (step, RNG, extra state) without loading its tensors into anything. */
export function readCheckpointMeta(store: CheckpointStore): CheckpointMeta {
  return resumeGuard(store, () => {
    const { tensors, metadata } = decodeSafetensors(store.read(), store.name);
    tf.dispose(Object.values(tensors));
    const meta = JSON.parse(metadata.efftrain ?? 'null') as CheckpointMeta | null;
    if (!meta || meta.version !== 1) throw new Error(`${store.name}: not an efftrain checkpoint`);
    return meta;
  });
}

/** Runs `read` (which reads `store`), turning any failure into a UserError that says how to recover. */
export function resumeGuard<T>(store: CheckpointStore, read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${store.name}: cannot resume from this checkpoint (${(e as Error).message}); delete it to restart this run from scratch, or run without --resume`);
  }
}
