import * as tf from '@tensorflow/tfjs';
import { NonFiniteLossError } from '../errors.js';
import { clipByGlobalNorm, type Optimizer } from './optimizers.js';
import { constant, type Schedule } from './schedules.js';

/** What hooks see at each step. */
export interface StepContext {
  step: number;
  lr: number;
  params: tf.Variable[];
}

/**
 * A hook into the training step, for techniques: add a regularizer to the loss, rewrite gradients
 * (surgery, noise, straight-through tricks), or observe the step. All run inside the step's tf.tidy.
 */
export interface TrainHook {
  name: string;
  /** Extra scalar added to the loss before differentiation (e.g. a sparsity regularizer). */
  extraLoss?(ctx: StepContext): tf.Scalar | null;
  /** Maps gradients (same order as params) to new gradients. */
  transformGrads?(grads: tf.Tensor[], ctx: StepContext): tf.Tensor[];
  /** Called after the update with the step's loss value. */
  afterStep?(ctx: StepContext & { loss: number }): void;
}

export interface TrainerOptions {
  params: tf.Variable[];
  optimizer: Optimizer;
  schedule?: Schedule;
  /** Global-norm clipping threshold; 0/undefined = off. */
  clipNorm?: number;
  hooks?: TrainHook[];
  /** Returns a checkpoint path to name in NaN/Inf errors (the last good checkpoint), or null. */
  lastCheckpoint?: () => string | null;
}

/**
 * Computes the loss value and gradients for `params` (the default uses tf.variableGrads). Multi-task methods
 * supply their own, e.g. per-task gradients combined by a weighting.
 */
export type GradFn = (params: tf.Variable[]) => { value: tf.Scalar; grads: tf.Tensor[] };

/**
 * The custom training step: variableGrads → hooks' gradient transforms → global-norm clip → optimizer,
 * all inside tf.tidy, with a NaN/Inf check on the loss *before* the update is applied.
 */
export class Trainer {
  step = 0;
  readonly params: tf.Variable[];
  readonly optimizer: Optimizer;
  schedule: Schedule;
  readonly clipNorm: number;
  readonly hooks: TrainHook[];
  private readonly lastCheckpoint: () => string | null;
  /** Gradient norm before clipping at the last step (only computed when clipping is on). */
  lastGradNorm = NaN;

  constructor(opts: TrainerOptions) {
    this.params = opts.params;
    this.optimizer = opts.optimizer;
    this.schedule = opts.schedule ?? constant(1e-3);
    this.clipNorm = opts.clipNorm ?? 0;
    this.hooks = opts.hooks ?? [];
    this.lastCheckpoint = opts.lastCheckpoint ?? (() => null);
  }

  get lr(): number {
    return this.schedule.lr(this.step);
  }

  /** One optimisation step on the scalar loss returned by `lossFn`. Returns the loss value. */
  trainStep(lossFn: () => tf.Scalar): number {
    return this.trainStepWith((params) => {
      const ctx = this.context();
      const { value, grads } = tf.variableGrads(() => {
        let loss = lossFn();
        for (const h of this.hooks) {
          const extra = h.extraLoss?.(ctx);
          if (extra) loss = tf.add(loss, extra);
        }
        return loss;
      }, params);
      return { value, grads: params.map((p) => grads[p.name] ?? tf.zerosLike(p)) };
    });
  }

  /** One step with a custom gradient function (multi-task weightings, second-order tricks…). */
  trainStepWith(gradFn: GradFn): number {
    const ctx = this.context();
    const lossT = tf.tidy(() => {
      const { value, grads } = gradFn(this.params);
      const v = value.dataSync()[0];
      if (!Number.isFinite(v)) return tf.scalar(v);
      let g = grads;
      for (const h of this.hooks) if (h.transformGrads) g = h.transformGrads(g, ctx);
      if (this.clipNorm > 0) {
        const c = clipByGlobalNorm(g, this.clipNorm);
        g = c.grads;
        this.lastGradNorm = c.norm.dataSync()[0];
      }
      this.optimizer.apply(this.params, g, ctx.lr);
      return tf.scalar(v);
    });
    const loss = lossT.dataSync()[0];
    lossT.dispose();
    if (!Number.isFinite(loss)) throw new NonFiniteLossError(this.step, loss, this.lastCheckpoint());
    for (const h of this.hooks) h.afterStep?.({ ...ctx, loss });
    this.step++;
    return loss;
  }

  private context(): StepContext {
    return { step: this.step, lr: this.lr, params: this.params };
  }
}

/** The tf.Variables behind a LayersModel's trainable weights, in a stable order. */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** All of a model's variables (trainable and not, e.g. batch-norm moving statistics), in a stable order. */
export function allVariables(model: tf.LayersModel): tf.Variable[] {
  return model.weights.map((w) => w.read() as tf.Variable);
}
