/**
 * A small, browser-safe demonstration of two efftrain techniques together: a 3-class spiral with noisy labels,
 * learned by a network whose hidden layer is an S3 `ShiftDense` (weights in {0, ±2^p}; Li et al., NeurIPS 2021)
 * trained with the SuperLoss (Castells et al., NeurIPS 2020, τ = log C) around cross-entropy.
 *
 * It runs the same in Node and in a browser page (`efftrain serve` → /playground): everything random comes from
 * `Rng(seed)`, so on the same backend the same seed gives the same loss curve.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../engine/rng.js';
import { ShiftDense, s3RegularizationLoss } from '../methods/s3/layers.js';
import { crossEntropyPerSample, superLoss } from '../methods/superloss/superloss.js';
import { AdamW } from '../train/optimizers.js';
import { constant } from '../train/schedules.js';
import { Trainer, trainableVariables } from '../train/trainer.js';

export interface SpiralData {
  /** [n, 2] points, row-major. */
  x: Float32Array;
  /** Observed (possibly flipped) labels. */
  y: Int32Array;
  /** True labels. */
  clean: Int32Array;
  n: number;
  classes: number;
}

/**
 * `classes` interleaved spiral arms of `perClass` points each, with Gaussian jitter, and a fraction `noise` of the
 * labels replaced by a different class chosen uniformly (symmetric label noise).
 */
export function spiralData(seed: number, perClass = 80, classes = 3, noise = 0.2): SpiralData {
  const rng = new Rng(seed);
  const n = perClass * classes;
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  const clean = new Int32Array(n);
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < perClass; i++) {
      const k = c * perClass + i;
      const r = (i + 1) / perClass;
      const t = (c * 2 * Math.PI) / classes + r * 1.75 * Math.PI + rng.normal() * 0.12;
      x[2 * k] = r * Math.cos(t);
      x[2 * k + 1] = r * Math.sin(t);
      clean[k] = c;
      y[k] = rng.next() < noise ? (c + 1 + rng.int(classes - 1)) % classes : c;
    }
  }
  return { x, y, clean, n, classes };
}

export interface ShiftSuperLossOptions {
  seed: number;
  steps?: number;
  batchSize?: number;
  lr?: number;
  hidden?: number;
  /** SuperLoss λ (regularisation of the confidences). */
  lambda?: number;
  /** Called after every step; awaited, so a page can yield to draw. */
  onStep?: (step: number, loss: number) => void | Promise<void>;
}

export interface ShiftSuperLossResult {
  losses: number[];
  /** Accuracy on the true labels of the training points. */
  cleanAccuracy: number;
  /** Predicted class on a `grid`×`grid` lattice over [−1.1, 1.1]², row-major from the top-left. */
  gridClasses: Int32Array;
  grid: number;
  data: SpiralData;
}

/** Builds dense(relu) → S3 ShiftDense(relu) → dense(classes) with every initialiser seeded from `rng`. */
export function shiftNet(rng: Rng, hidden: number, classes: number): tf.Sequential {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [2], units: hidden, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: rng.seed() }) }),
      new ShiftDense({ units: hidden, activation: 'relu', useBias: true, seed: rng.seed() }),
      tf.layers.dense({ units: classes, kernelInitializer: tf.initializers.glorotUniform({ seed: rng.seed() }) }),
    ],
  });
}

/**
 * Trains the spiral classifier for `steps` minibatch steps (AdamW, constant LR) on the SuperLoss of the
 * per-sample cross-entropy plus the S3 sparse-weight regulariser, and returns the loss after each step.
 */
export async function trainShiftSuperLoss(o: ShiftSuperLossOptions): Promise<ShiftSuperLossResult> {
  const steps = o.steps ?? 150;
  const batch = o.batchSize ?? 48;
  const hidden = o.hidden ?? 24;
  const rng = new Rng(o.seed);
  const data = spiralData(rng.nextUint32());
  const model = shiftNet(rng, hidden, data.classes);
  const x = tf.tensor2d(data.x, [data.n, 2]);
  const y = tf.tensor1d(data.y, 'int32');
  const sl = superLoss({ lambda: o.lambda ?? 1, tau: 'log', numClasses: data.classes });
  tf.tidy(() => void model.predict(tf.zeros([1, 2]))); // builds the layers so their variables exist
  const trainer = new Trainer({
    params: trainableVariables(model),
    optimizer: new AdamW(),
    schedule: constant(o.lr ?? 0.02),
    hooks: [{ name: 's3-regularizer', extraLoss: () => s3RegularizationLoss(model) }],
  });
  const losses: number[] = [];
  let order = rng.permutation(data.n);
  let pos = 0;
  try {
    for (let s = 0; s < steps; s++) {
      if (pos + batch > data.n) {
        order = rng.permutation(data.n);
        pos = 0;
      }
      const idx = order.slice(pos, pos + batch);
      pos += batch;
      const loss = tf.tidy(() => {
        const ids = tf.tensor1d(idx, 'int32');
        const xb = tf.gather(x, ids) as tf.Tensor2D;
        const yb = tf.gather(y, ids) as tf.Tensor1D;
        return trainer.trainStep(() => sl.compute(crossEntropyPerSample(model.apply(xb, { training: true }) as tf.Tensor2D, yb)).loss);
      });
      losses.push(loss);
      await o.onStep?.(s, loss);
    }
    const grid = 48;
    const { cleanAccuracy, gridClasses } = tf.tidy(() => {
      const pred = (model.predict(x) as tf.Tensor2D).argMax(1).dataSync();
      let ok = 0;
      for (let i = 0; i < data.n; i++) if (pred[i] === data.clean[i]) ok++;
      const pts = new Float32Array(grid * grid * 2);
      for (let r = 0; r < grid; r++) {
        for (let c = 0; c < grid; c++) {
          pts[2 * (r * grid + c)] = -1.1 + (2.2 * (c + 0.5)) / grid;
          pts[2 * (r * grid + c) + 1] = 1.1 - (2.2 * (r + 0.5)) / grid;
        }
      }
      const g = (model.predict(tf.tensor2d(pts, [grid * grid, 2])) as tf.Tensor2D).argMax(1).dataSync();
      return { cleanAccuracy: ok / data.n, gridClasses: Int32Array.from(g) };
    });
    return { losses, cleanAccuracy, gridClasses, grid, data };
  } finally {
    x.dispose();
    y.dispose();
    trainer.optimizer.dispose?.();
    model.dispose();
  }
}
