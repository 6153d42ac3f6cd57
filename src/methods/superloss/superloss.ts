/**
 * SuperLoss (Castells, Weinzaepfel, Revaud, "SuperLoss: A Generic Loss for Robust Curriculum
 * Learning", NeurIPS 2020): a task-agnostic wrapper around any per-sample loss ℓ_i that
 * down-weights hard samples (ℓ_i > τ) and up-weights easy ones (ℓ_i < τ), with the per-sample
 * confidence σ_i set in closed form to its optimum — no extra parameters, layers or stages.
 *
 *   L_λ(ℓ, σ) = (ℓ − τ)·σ + λ·(log σ)²                       (the SuperLoss objective)
 *   σ*(ℓ)     = exp(−W₀(½·max(−2/e, β))),  β = (ℓ − τ)/λ      (its closed-form minimiser)
 *   L*(ℓ)     = L_λ(ℓ, σ*(ℓ)),  batch loss = mean_i L*(ℓ_i)
 *
 * Equation numbers of the paper are not quoted here (the full PDF was not available when this was
 * written); each function names the formula it implements instead.
 *
 * Gradient: σ* is computed from a DETACHED copy of ℓ (zero gradient through σ). Because σ* is the
 * minimiser of L_λ(ℓ, ·), the envelope theorem gives d(L*)/dℓ = ∂L_λ/∂ℓ = σ*, so this is the exact
 * gradient of L*, and the iterative Lambert-W solver never needs to be differentiated.
 * In the clamped region (ℓ < τ − 2λ/e) σ* = e and L* = e·(ℓ − τ) + λ, slope e — same rule.
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../errors.js';
import { lambertW0, lambertW0Tensor } from './lambert-w.js';

/** How τ is chosen: a fixed number, `'log'` (= log C for C classes), or `'ema'` (running mean). */
export type SuperLossTau = number | 'log' | 'ema';

export interface SuperLossOptions {
  /** Regulariser strength λ > 0 (default 1). Smaller λ = stronger re-weighting. */
  lambda?: number;
  /**
   * Threshold τ. Default: `'log'` when `numClasses` is given, else `'ema'`.
   * - number: fixed τ.
   * - `'log'`: τ = log(numClasses) (CE of a uniform prediction); needs `numClasses` ≥ 2.
   * - `'ema'`: exponential moving average of the batch-mean loss, see {@link SuperLoss.compute}.
   */
  tau?: SuperLossTau;
  /** EMA momentum m ∈ [0, 1) for `tau: 'ema'`: τ ← m·τ + (1 − m)·mean(ℓ). Default 0.9. */
  emaMomentum?: number;
  /** Number of classes C, for `tau: 'log'`. */
  numClasses?: number;
  /**
   * Initial training mode (default true). In training mode `compute` updates the EMA τ; set
   * `superLoss.training = false` (or pass `{ update: false }` to `compute`) for evaluation.
   */
  training?: boolean;
}

/** Serialisable τ state for checkpoints (`getState()` / `setState()`). */
export interface SuperLossState {
  /** `'fixed'` for a numeric τ, else the τ option. */
  tauMode: 'fixed' | 'log' | 'ema';
  /** Current τ; null for `'ema'` before the first training batch. */
  tau: number | null;
  /** Number of EMA updates applied so far (0 for fixed modes). */
  updates: number;
}

/** A type alias (not an interface) so that `tf.tidy(() => sl.compute(x))` type-checks. */
export type SuperLossOutput = {
  /** Batch SuperLoss mean_i L*(ℓ_i): a scalar, differentiable w.r.t. ℓ (gradient σ*_i / batch). */
  loss: tf.Scalar;
  /** σ*_i per sample, float32, detached (zero gradient). */
  sigma: tf.Tensor1D;
  /** The τ used for this batch. */
  tau: number;
};

export interface SuperLossComputeOptions {
  /** Update the EMA τ with this batch (default: the instance's `training` flag). Ignored for fixed τ. */
  update?: boolean;
}

const TWO_OVER_E = 2 / Math.E;

function checkLambda(lambda: number): void {
  if (!(typeof lambda === 'number' && Number.isFinite(lambda) && lambda > 0)) {
    throw new UserError(`SuperLoss lambda must be a finite number > 0, got ${String(lambda)}`);
  }
}

/**
 * Optimal confidence σ*_λ(ℓ) = exp(−W₀(½·max(−2/e, β))), β = (ℓ − τ)/λ, in float64
 * (Castells et al. 2020, closed-form minimiser of the SuperLoss objective over σ).
 * σ* ∈ (0, e]; σ*(τ) = 1; σ* = e for ℓ ≤ τ − 2λ/e. NaN loss gives NaN.
 */
export function optimalConfidence(loss: number, tau: number, lambda: number): number {
  checkLambda(lambda);
  const beta = (loss - tau) / lambda;
  if (Number.isNaN(beta)) return NaN;
  if (beta <= -TWO_OVER_E) return Math.E;
  return Math.exp(-lambertW0(0.5 * beta));
}

/**
 * The SuperLoss objective L_λ(ℓ, σ) = (ℓ − τ)·σ + λ·(log σ)² for one sample, float64
 * (Castells et al. 2020, definition of the SuperLoss).
 */
export function superLossObjective(loss: number, sigma: number, tau: number, lambda: number): number {
  const ls = Math.log(sigma);
  return (loss - tau) * sigma + lambda * ls * ls;
}

/**
 * The SuperLoss L*_λ(ℓ) = L_λ(ℓ, σ*_λ(ℓ)) for one sample, float64 (Castells et al. 2020, SuperLoss
 * objective evaluated at its closed-form optimal confidence). Its derivative in ℓ is σ*_λ(ℓ).
 */
export function superLossValue(loss: number, tau: number, lambda: number): number {
  return superLossObjective(loss, optimalConfidence(loss, tau, lambda), tau, lambda);
}

/**
 * σ*_λ(ℓ) = exp(−W₀(½·max(−2/e, β))), β = (ℓ − τ)/λ, elementwise on a tensor with float32 tfjs ops
 * (Castells et al. 2020, closed-form optimal confidence). NO gradient flows through the result
 * (it behaves like a constant of ℓ inside `tf.grads` / `tf.variableGrads`), which is what the
 * SuperLoss needs (envelope theorem, see the module doc). Returns a new float32 tensor.
 */
export function optimalConfidenceTensor(loss: tf.Tensor, tau: number, lambda: number): tf.Tensor {
  checkLambda(lambda);
  const detached = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const l = inputs[0] as tf.Tensor;
    // The forward ops of a customGrad run untaped and tidied: only the value is kept.
    const beta = tf.div(tf.sub(l, tau), lambda);
    const w = lambertW0Tensor(tf.mul(tf.maximum(beta, -TWO_OVER_E), 0.5));
    return { value: tf.exp(tf.neg(w)), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
  });
  if (loss.dtype === 'float32') return detached(loss);
  const asFloat = tf.cast(loss, 'float32');
  const sigma = detached(asFloat);
  asFloat.dispose();
  return sigma;
}

/**
 * SuperLoss wrapper with τ bookkeeping (Castells et al. 2020): per batch,
 * loss = mean_i [(ℓ_i − τ)·σ*_i + λ·(log σ*_i)²] with σ*_i the closed-form optimal confidence.
 * Create with {@link superLoss}.
 */
export class SuperLoss {
  readonly lambda: number;
  readonly tauMode: 'fixed' | 'log' | 'ema';
  readonly emaMomentum: number;
  readonly numClasses: number | undefined;
  /** Training mode: when true, `compute` updates the EMA τ (unless `{ update: false }` is passed). */
  training: boolean;
  private tauValue: number | null;
  private updates = 0;

  constructor(opts: SuperLossOptions = {}) {
    this.lambda = opts.lambda ?? 1;
    checkLambda(this.lambda);
    this.emaMomentum = opts.emaMomentum ?? 0.9;
    if (!(Number.isFinite(this.emaMomentum) && this.emaMomentum >= 0 && this.emaMomentum < 1)) {
      throw new UserError(`SuperLoss emaMomentum must be in [0, 1), got ${String(opts.emaMomentum)}`);
    }
    this.numClasses = opts.numClasses;
    if (this.numClasses !== undefined && !(Number.isInteger(this.numClasses) && this.numClasses >= 2)) {
      throw new UserError(`SuperLoss numClasses must be an integer >= 2, got ${String(this.numClasses)}`);
    }
    this.training = opts.training ?? true;
    const tau = opts.tau ?? (this.numClasses !== undefined ? 'log' : 'ema');
    if (typeof tau === 'number') {
      if (!Number.isFinite(tau)) throw new UserError(`SuperLoss tau must be finite, got ${tau}`);
      this.tauMode = 'fixed';
      this.tauValue = tau;
    } else if (tau === 'log') {
      if (this.numClasses === undefined) throw new UserError(`SuperLoss tau 'log' needs numClasses (tau = log C)`);
      this.tauMode = 'log';
      this.tauValue = Math.log(this.numClasses);
    } else if (tau === 'ema') {
      this.tauMode = 'ema';
      this.tauValue = null;
    } else {
      throw new UserError(`SuperLoss tau must be a number, 'log' or 'ema', got ${JSON.stringify(tau)}`);
    }
  }

  /** Current τ (null for `'ema'` before the first training batch). */
  get tau(): number | null {
    return this.tauValue;
  }

  /**
   * Batch SuperLoss (Castells et al. 2020): mean_i [(ℓ_i − τ)·σ*_i + λ·(log σ*_i)²] with
   * σ*_i = exp(−W₀(½·max(−2/e, (ℓ_i − τ)/λ))) computed from the detached ℓ (float32 tensor ops).
   *
   * Works inside `tf.tidy`, `tf.grads` and `tf.variableGrads`; d(loss)/dℓ_i = σ*_i / batch.
   * `loss` and `sigma` are new tensors owned by the caller (inside `tf.variableGrads` only the
   * returned loss survives the forward pass — `tf.keep(sigma)` to use it afterwards).
   *
   * τ = 'ema': on a training call (`update`, default `this.training`) τ is updated BEFORE it is used:
   * the first training batch sets τ = mean(ℓ); later ones τ ← m·τ + (1 − m)·mean(ℓ), m = emaMomentum
   * (batch mean computed in float64 on the host from ℓ's values — one synchronous read). A batch
   * whose mean is not finite leaves τ unchanged. On a non-updating call τ is used as is; if no
   * training batch has been seen yet, the current batch mean is used for that call only.
   */
  compute(perSampleLoss: tf.Tensor1D, opts: SuperLossComputeOptions = {}): SuperLossOutput {
    if (perSampleLoss.rank !== 1) {
      throw new UserError(`SuperLoss.compute expects a rank-1 per-sample loss [batch], got shape [${perSampleLoss.shape.join(', ')}]`);
    }
    if (perSampleLoss.size === 0) throw new UserError('SuperLoss.compute got an empty batch');
    const tau = this.resolveTau(perSampleLoss, opts.update ?? this.training);
    const lambda = this.lambda;
    return tf.tidy(() => {
      const l = tf.cast(perSampleLoss, 'float32') as tf.Tensor1D;
      const sigma = optimalConfidenceTensor(l, tau, lambda) as tf.Tensor1D;
      const logSigma = tf.log(sigma);
      const perSample = tf.add(tf.mul(tf.sub(l, tau), sigma), tf.mul(tf.square(logSigma), lambda));
      const loss = tf.mean(perSample) as tf.Scalar;
      return { loss, sigma, tau };
    });
  }

  /** Serialisable τ state for checkpoints. */
  getState(): SuperLossState {
    return { tauMode: this.tauMode, tau: this.tauValue, updates: this.updates };
  }

  /**
   * Restores τ state from {@link getState}. The mode must match this instance's. For `'ema'` τ and
   * the update count are restored; for fixed modes τ comes from the options and a different stored
   * value is an error (it would mean the checkpoint was made with another configuration).
   */
  setState(state: SuperLossState): void {
    if (state === null || typeof state !== 'object') throw new UserError('SuperLoss.setState: state must be an object');
    if (state.tauMode !== this.tauMode) {
      throw new UserError(`SuperLoss.setState: state has tau mode '${String(state.tauMode)}', this SuperLoss uses '${this.tauMode}'`);
    }
    if (state.tau !== null && !(typeof state.tau === 'number' && Number.isFinite(state.tau))) {
      throw new UserError(`SuperLoss.setState: tau must be a finite number or null, got ${String(state.tau)}`);
    }
    if (!(Number.isInteger(state.updates) && state.updates >= 0)) {
      throw new UserError(`SuperLoss.setState: updates must be a non-negative integer, got ${String(state.updates)}`);
    }
    if (this.tauMode === 'ema') {
      if ((state.tau === null) !== (state.updates === 0)) {
        throw new UserError('SuperLoss.setState: an EMA tau must be null exactly when updates is 0');
      }
      this.tauValue = state.tau;
      this.updates = state.updates;
    } else if (state.tau !== this.tauValue) {
      throw new UserError(`SuperLoss.setState: stored tau ${String(state.tau)} differs from the configured tau ${String(this.tauValue)}`);
    }
  }

  /** Forgets the EMA τ (no-op for fixed τ). */
  reset(): void {
    if (this.tauMode === 'ema') {
      this.tauValue = null;
      this.updates = 0;
    }
  }

  private resolveTau(perSampleLoss: tf.Tensor1D, update: boolean): number {
    if (this.tauMode !== 'ema') return this.tauValue as number;
    const values = perSampleLoss.dataSync();
    let sum = 0;
    for (let i = 0; i < values.length; i++) sum += values[i]!;
    const mean = sum / values.length;
    if (update && Number.isFinite(mean)) {
      this.tauValue = this.tauValue === null ? mean : this.emaMomentum * this.tauValue + (1 - this.emaMomentum) * mean;
      this.updates++;
    }
    return this.tauValue ?? mean;
  }
}

/**
 * Creates a {@link SuperLoss} (Castells et al. 2020): wraps any per-sample loss ℓ_i into
 * mean_i [(ℓ_i − τ)·σ*_i + λ·(log σ*_i)²] with the closed-form σ*_i = exp(−W₀(½·max(−2/e, β_i))).
 */
export function superLoss(opts: SuperLossOptions = {}): SuperLoss {
  return new SuperLoss(opts);
}

// ---------------------------------------------------------------------------------------------
// Per-sample base losses ℓ_i (no reduction over the batch), to be wrapped by the SuperLoss.

function checkSameShape(name: string, a: tf.Tensor, b: tf.Tensor): void {
  if (a.rank < 1) throw new UserError(`${name}: inputs need a leading batch axis, got a scalar`);
  if (a.shape.length !== b.shape.length || a.shape.some((s, i) => s !== b.shape[i])) {
    throw new UserError(`${name}: prediction shape [${a.shape.join(', ')}] differs from target shape [${b.shape.join(', ')}]`);
  }
}

/** Mean over every non-batch axis of a [batch, ...] tensor → [batch]. */
function meanPerSample(x: tf.Tensor): tf.Tensor1D {
  if (x.rank === 1) return x as tf.Tensor1D;
  return tf.mean(tf.reshape(x, [x.shape[0]!, -1]), 1) as tf.Tensor1D;
}

/**
 * Per-sample softmax cross-entropy ℓ_i = −Σ_c y_ic·log softmax(logits_i)_c, the classification
 * task loss Castells et al. 2020 wrap with the SuperLoss (τ = log C).
 * `labels`: integer class indices [batch] (any numeric dtype, values in [0, C)) or targets
 * [batch, C] (one-hot or soft). Returns [batch].
 */
export function crossEntropyPerSample(logits: tf.Tensor2D, labels: tf.Tensor1D | tf.Tensor2D): tf.Tensor1D {
  if (logits.rank !== 2) throw new UserError(`crossEntropyPerSample: logits must be [batch, classes], got [${logits.shape.join(', ')}]`);
  const [batch, classes] = logits.shape;
  return tf.tidy(() => {
    let target: tf.Tensor2D;
    if (labels.rank === 1) {
      if (labels.shape[0] !== batch) throw new UserError(`crossEntropyPerSample: ${labels.shape[0]} labels for ${batch} logits rows`);
      target = tf.oneHot(tf.cast(labels, 'int32') as tf.Tensor1D, classes).toFloat() as tf.Tensor2D;
    } else if (labels.rank === 2) {
      checkSameShape('crossEntropyPerSample', logits, labels);
      target = tf.cast(labels, 'float32') as tf.Tensor2D;
    } else {
      throw new UserError(`crossEntropyPerSample: labels must be [batch] or [batch, classes], got [${labels.shape.join(', ')}]`);
    }
    return tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
  });
}

/**
 * Per-sample L1 loss ℓ_i = mean_j |pred_ij − target_ij| (mean over non-batch axes), a regression
 * task loss wrapped by the SuperLoss (Castells et al. 2020). Returns [batch].
 */
export function l1PerSample(pred: tf.Tensor, target: tf.Tensor): tf.Tensor1D {
  checkSameShape('l1PerSample', pred, target);
  return tf.tidy(() => meanPerSample(tf.abs(tf.sub(pred, target))));
}

/**
 * Per-sample squared-error loss ℓ_i = mean_j (pred_ij − target_ij)² (mean over non-batch axes;
 * "L2" = squared error, not its root), a regression task loss wrapped by the SuperLoss
 * (Castells et al. 2020). Returns [batch].
 */
export function l2PerSample(pred: tf.Tensor, target: tf.Tensor): tf.Tensor1D {
  checkSameShape('l2PerSample', pred, target);
  return tf.tidy(() => meanPerSample(tf.squaredDifference(pred, target)));
}

/**
 * Per-sample smooth-L1 loss (the regression loss the SuperLoss wraps in Castells et al. 2020):
 * with d = |pred − target|, elementwise 0.5·d²/β if d < β else d − 0.5·β, then the mean over the
 * non-batch axes. β = 0 is plain L1. Returns [batch].
 */
export function smoothL1PerSample(pred: tf.Tensor, target: tf.Tensor, beta = 1): tf.Tensor1D {
  checkSameShape('smoothL1PerSample', pred, target);
  if (!(Number.isFinite(beta) && beta >= 0)) throw new UserError(`smoothL1PerSample: beta must be >= 0, got ${beta}`);
  return tf.tidy(() => {
    const d = tf.abs(tf.sub(pred, target));
    if (beta === 0) return meanPerSample(d);
    // Branch-free form (tfjs has no gradient for Less inside tf.where): with m = min(d, β),
    // 0.5·m²/β + (d − m) equals 0.5·d²/β for d < β and d − 0.5β otherwise.
    const m = tf.minimum(d, beta);
    return meanPerSample(tf.add(tf.div(tf.mul(tf.square(m), 0.5), beta), tf.sub(d, m)));
  });
}
