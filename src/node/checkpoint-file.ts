import type * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync } from 'node:fs';
import { encodeCheckpoint, restoreCheckpoint, type CheckpointInfo, type CheckpointMeta, type CheckpointStore } from '../train/checkpoint.js';
import type { Trainer } from '../train/trainer.js';
import { writeFileAtomic } from '../util/fs.js';

/** A checkpoint store backed by one file, written atomically (temp + rename). */
export function fileCheckpointStore(path: string): CheckpointStore {
  return {
    name: path,
    exists: () => existsSync(path),
    read: () => readFileSync(path),
    write: (bytes) => writeFileAtomic(path, bytes),
  };
}

/**
 * Writes a checkpoint file atomically: a process killed mid-write leaves the previous checkpoint intact.
 */
export function saveCheckpoint(path: string, trainer: Trainer, meta: CheckpointInfo, extraVars: tf.Variable[] = []): void {
  writeFileAtomic(path, encodeCheckpoint(trainer, meta, extraVars));
}

/** Restores a checkpoint file written by saveCheckpoint into `trainer` and `extraVars`. */
export function loadCheckpoint(path: string, trainer: Trainer, extraVars: tf.Variable[] = []): CheckpointMeta {
  return restoreCheckpoint(readFileSync(path), path, trainer, extraVars);
}

/** True when a checkpoint file exists at `path`. */
export function hasCheckpoint(path: string): boolean {
  return existsSync(path);
}
