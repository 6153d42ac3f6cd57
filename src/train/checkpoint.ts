import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import type { RngState } from '../engine/rng.js';
import { writeFileAtomic } from '../util/fs.js';
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

/**
 * Writes a checkpoint as one safetensors file (params `p/<i>`, optimizer slots `opt/<key>`, metadata JSON in
 * the header), atomically (temp + rename): a process killed mid-write leaves the previous checkpoint intact.
 */
export function saveCheckpoint(path: string, trainer: Trainer, meta: Omit<CheckpointMeta, 'version' | 'step' | 'optimizer' | 'schedule'>, extraVars: tf.Variable[] = []): void {
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
  writeFileAtomic(path, encodeSafetensors(tensors, { efftrain: JSON.stringify(full) }));
}

/**
 * Restores a checkpoint written by saveCheckpoint into `trainer` (params, optimizer, schedule, step) and
 * `extraVars`; returns the metadata so the caller can restore its RNG and loop position.
 */
export function loadCheckpoint(path: string, trainer: Trainer, extraVars: tf.Variable[] = []): CheckpointMeta {
  const { tensors, metadata } = decodeSafetensors(readFileSync(path), path);
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

/** True when a checkpoint file exists at `path`. */
export function hasCheckpoint(path: string): boolean {
  return existsSync(path);
}
