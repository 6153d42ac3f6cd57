import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../engine/rng.js';

/**
 * A task of a multi-task model: its name, output size, loss and metrics. The loss decides both the training
 * objective and the closed-form saliency ∂L/∂Z used by Rep-MTL.
 * - `softmax-ce`: integer labels [B], logits [B, K], L = batch mean of −log softmax(o)_y; metric `acc`.
 * - `mse`: float targets [B, K], L = mean over batch and outputs of (o − y)²; metric `mse` (lower is better).
 */
export interface MtlTask {
  name: string;
  /** Output width K (classes for `softmax-ce`). */
  outputs: number;
  loss: 'softmax-ce' | 'mse';
}

/** A metric and its direction, as Δm needs it (σ = 1 when lower is better). */
export interface MetricSpec {
  name: string;
  higherIsBetter: boolean;
}

/** The metrics a task's loss kind reports. */
export function taskMetrics(task: MtlTask): MetricSpec[] {
  return task.loss === 'softmax-ce' ? [{ name: 'acc', higherIsBetter: true }] : [{ name: 'mse', higherIsBetter: false }];
}

/** What every weighting sees at each step. */
export interface WeightingContext {
  /** Global step (0-based). */
  step: number;
  /** Epoch (0-based). */
  epoch: number;
  numTasks: number;
  /** The run's RNG (RLW's random weights, PCGrad's random order). */
  rng: Rng;
  /** Mean training loss of each task for every finished epoch: epochLosses[e][t] (DWA, GradNorm). */
  epochLosses: number[][];
}

/** The inputs of a gradient-combining weighting. */
export interface GradInput {
  /** Per-task gradients, flattened: [T, P] (P = shared parameters, or the shared representation for `rep`). */
  grads: tf.Tensor2D;
  /** Their Gram matrix GGᵀ in float64 (T×T). */
  gram: number[][];
  /** Current (raw, untransformed) task losses. */
  losses: number[];
  /** Which space the gradients live in. */
  space: 'param' | 'rep';
}

/** What a gradient weighting returns. */
export interface GradOutput {
  /**
   * The shared update as a combination Σ_t weights[t]·g_t of the task gradients (most methods: PCGrad's
   * projections, CAGrad, MGDA, IMTL-G… are all combinations of the task gradients).
   */
  weights?: number[];
  /** Or the shared update itself, [P] (DB-MTL's gradient buffer). */
  direction?: tf.Tensor1D;
  /**
   * Scale of each task's gradient on its own head (task-specific parameters). Default 1: every head gets the
   * gradient of its own (transformed) loss, as in LibMTL's `backward` mode.
   */
  taskWeights?: number[];
  /** Gradients of the weighting's own `variables` (GradNorm's loss scales), same order. */
  variableGrads?: tf.Tensor[];
  /** Clip the shared update to this L2 norm (Nash-MTL's max_norm). 0/undefined = off. */
  maxNorm?: number;
}

interface WeightingBase {
  /** Registered name (lower case): `ew`, `pcgrad`… */
  readonly name: string;
  /**
   * Trainable variables learned jointly with the model by the main optimizer (UW's log-variances, IMTL-L's
   * scales, GradNorm's loss scales). They are appended to the trainer's parameters and checkpointed.
   */
  readonly variables?: tf.Variable[];
  /** Loss weights applied at the last step, for logging (effective weight of each task loss). */
  lastWeights?: number[];
  /** FAMO-style methods need the task losses on the same batch after the update. */
  readonly needsLossesAfterStep?: boolean;
  afterStep?(info: { ctx: WeightingContext; losses: number[]; lossesAfter?: number[] }): void;
  /** Plain-JSON state for checkpoints (loss histories, FAMO logits, Adam moments…). */
  getState?(): Record<string, unknown>;
  setState?(s: Record<string, unknown>): void;
  /** Extra tensors to checkpoint (DB-MTL's gradient buffer). */
  readonly stateVariables?: tf.Variable[];
  /** Creates `stateVariables` before a checkpoint is restored (sharedSize = number of shared parameters). */
  prepareState?(info: { sharedSize: number }): void;
  dispose?(): void;
}

/** Loss weighting: a differentiable combination of the task losses (1 backward pass). */
export interface LossWeighting extends WeightingBase {
  readonly kind: 'loss';
  /** Called inside the gradient tape: returns the scalar objective. */
  combine(losses: tf.Scalar[], ctx: WeightingContext): tf.Scalar;
}

/** Gradient weighting: combines per-task gradients of the shared parameters (or representation). */
export interface GradWeighting extends WeightingBase {
  readonly kind: 'grad';
  /** Space of the per-task gradients. `rep` = w.r.t. the shared representation Z (MGDA-UB). */
  readonly space: 'param' | 'rep';
  /** Optional transform of each task loss before differentiation (IMTL-L scaling, DB-MTL's log). Inside the tape. */
  transformLoss?(loss: tf.Scalar, task: number, ctx: WeightingContext): tf.Scalar;
  combine(input: GradInput, ctx: WeightingContext): GradOutput;
}

export type Weighting = LossWeighting | GradWeighting;

/** Options every weighting factory receives: its own `<method>.<option>` keys plus the task count. */
export interface WeightingInit {
  numTasks: number;
  /** The method's options (keys without the `<method>.` prefix); unknown keys are rejected by the factory. */
  options: Record<string, unknown>;
}

/** A registered weighting: a factory with documented defaults. */
export interface WeightingFactory {
  name: string;
  /** Paper (authors, venue, year). */
  paper: string;
  /** Defaults of its options (LibMTL's config.py where it has them). */
  defaults: Record<string, number | string | boolean>;
  /** Does it accept `space: 'rep'` (LibMTL's rep_grad)? */
  supportsRep: boolean;
  create(init: WeightingInit): Weighting;
}
