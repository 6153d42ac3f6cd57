import * as tf from '@tensorflow/tfjs';
import { gatherRows, sequentialBatches } from '../../../data/batching.js';
import { MultiTaskNet, type MtlBatch, type MtlTask } from '../../../methods/mtl/index.js';


/** One split of a multi-task data set: one image array per input (1 = shared) and one label array per task. */
export interface MtlSplit {
  inputs: Float32Array[];
  labels: Int32Array[];
  /** Samples per input (every input has n). */
  n: number;
  height: number;
  width: number;
}

export interface MtlData {
  tasks: MtlTask[];
  train: MtlSplit;
  val: MtlSplit;
  test: MtlSplit;
  /** Paired (same indices for every input) or independent batches per input. */
  pairing: 'paired' | 'unpaired';
}

export const inputIndex = (split: MtlSplit, t: number) => (split.inputs.length === 1 ? 0 : t);

/** Builds the batch tensors of rows `idx[i]` of input i; task t reads the labels of its input's rows. */
export function makeMtlBatch(split: MtlSplit, idx: Int32Array[], tasks: number[] = split.labels.map((_, t) => t)): MtlBatch {
  const px = split.height * split.width;
  const inputs = split.inputs.map((im, i) => tf.tensor4d(gatherRows(im, px, idx[i]), [idx[i].length, split.height, split.width, 1]));
  const targets = tasks.map((t) => {
    const rows = idx[inputIndex(split, t)];
    return tf.tensor1d(Int32Array.from(rows, (r) => split.labels[t][r]), 'int32');
  });
  return { inputs, targets };
}

/** A single-task view of a split (for STL): task t's input and labels. */
export function taskView(split: MtlSplit, t: number): MtlSplit {
  return { inputs: [split.inputs[inputIndex(split, t)]], labels: [split.labels[t]], n: split.n, height: split.height, width: split.width };
}

/** Accuracy of each task of a net on a split (forward only, in batches). */
export function evaluateAccuracy(net: MultiTaskNet, split: MtlSplit, batchSize: number): number[] {
  const T = net.numTasks;
  const correct = new Array(T).fill(0);
  for (const idx of sequentialBatches(split.n, batchSize)) {
    const preds = tf.tidy(() => {
      const b = makeMtlBatch(split, split.inputs.map(() => idx));
      const zIn = b.inputs.map((x) => net.encode(x));
      return net.tasks.map((_, t) => tf.argMax(net.head(t, zIn[zIn.length === 1 ? 0 : t]).logits, 1));
    });
    preds.forEach((p, t) => {
      const v = p.dataSync();
      const lab = split.labels[t];
      for (let i = 0; i < v.length; i++) if (v[i] === lab[idx[i]]) correct[t]++;
      p.dispose();
    });
  }
  return correct.map((c) => c / split.n);
}

