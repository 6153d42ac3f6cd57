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
  /** Maps gradients (same order as params) to new gradients; entries are undefined for missing gradients under `missingGrads: 'skip'`. */
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
  /**
   * What `trainStep` does with a parameter the loss does not reach (no gradient): `zero` (default) treats the
   * gradient as zeros, so the optimizer still decays/moves it; `skip` leaves it out of clipping and the update
   * (as PyTorch does with `grad = None`), e.g. for stochastically skipped branches.
   */
  missingGrads?: 'zero' | 'skip';
}

/**
 * Computes the loss value and gradients for `params` (the default uses tf.variableGrads). Multi-task methods
 * supply their own, e.g. per-task gradients combined by a weighting. A gradient may be `undefined` for a
 * parameter that took no part in this step: it is left out of clipping and of the update.
 */
export type GradFn = (params: tf.Variable[]) => { value: tf.Scalar; grads: (tf.Tensor | undefined)[] };

/**
 * The custom training step: variableGrads → hooks' gradient transforms → global-norm clip → optimizer,
 * all inside tf.tidy, with a NaN/Inf check on the loss *before* the update is applied.
 */
export class Trainer {
  step = 0;
  private _params: tf.Variable[];
  readonly optimizer: Optimizer;
  schedule: Schedule;
  readonly clipNorm: number;
  readonly hooks: TrainHook[];
  private readonly lastCheckpoint: () => string | null;
  /** Gradient norm before clipping at the last step (only computed when clipping is on). */
  lastGradNorm = NaN;
  readonly missingGrads: 'zero' | 'skip';

  constructor(opts: TrainerOptions) {
    this._params = opts.params;
    this.missingGrads = opts.missingGrads ?? 'zero';
    this.optimizer = opts.optimizer;
    this.schedule = opts.schedule ?? constant(1e-3);
    this.clipNorm = opts.clipNorm ?? 0;
    this.hooks = opts.hooks ?? [];
    this.lastCheckpoint = opts.lastCheckpoint ?? (() => null);
  }

  /** The parameters being trained (in the order of gradients and optimizer slots). */
  get params(): tf.Variable[] {
    return this._params;
  }

  /**
   * Changes the trained parameter set mid-run (e.g. auxiliary guide weights removed after a warm phase).
   * Optimizer state follows each variable to its new position; slots of parameters that left are freed.
   */
  setParams(params: tf.Variable[]): void {
    const pos = new Map(params.map((p, j) => [p, j]));
    this.optimizer.remapSlots(this._params.map((p) => pos.get(p) ?? -1));
    this._params = params;
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
      return { value, grads: params.map((p) => grads[p.name] ?? (this.missingGrads === 'zero' ? tf.zerosLike(p) : undefined)) };
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
      for (const h of this.hooks) if (h.transformGrads) g = h.transformGrads(g as tf.Tensor[], ctx);
      if (this.clipNorm > 0) {
        const present = g.filter((x): x is tf.Tensor => x !== undefined);
        const c = clipByGlobalNorm(present, this.clipNorm);
        let k = 0;
        g = g.map((x) => (x === undefined ? undefined : c.grads[k++]));
        this.lastGradNorm = c.norm.dataSync()[0];
      }
      this.optimizer.apply(this.params, g as tf.Tensor[], ctx.lr);
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
