import * as tf from '@tensorflow/tfjs';
import { fusedAdamW } from '../engine/fused.js';

/** Serializable optimizer state: named slot tensors plus plain numbers. */
export interface OptimizerState {
  kind: string;
  iterations: number;
  slots: Record<string, tf.Tensor>;
}

/**
 * A small optimizer base in the style of tinygrad's nn/optim.py: slots live in tf.Variables keyed by the
 * parameter's index, so the state can be checkpointed synchronously and restored exactly.
 * `apply` must be called inside tf.tidy (the trainer does this).
 */
export abstract class Optimizer {
  iterations = 0;
  protected slots = new Map<string, tf.Variable>();
  abstract readonly kind: string;
  /**
   * Optional per-parameter learning-rate multiplier (PyTorch parameter groups with their own `lr`, e.g.
   * DeepShift's `--lr-sign`): parameter i is updated with lr · lrScale(param, i). Null = 1 for every parameter.
   */
  lrScale: ((p: tf.Variable, index: number) => number) | null = null;

  /** Applies one update with learning rate `lr` to `params` given `grads` (same order). */
  apply(params: tf.Variable[], grads: tf.Tensor[], lr: number): void {
    this.iterations++;
    for (let i = 0; i < params.length; i++) {
      const g = grads[i];
      if (!g) continue;
      this.update(i, params[i], g, this.lrScale ? lr * this.lrScale(params[i], i) : lr);
    }
  }

  protected abstract update(index: number, p: tf.Variable, g: tf.Tensor, lr: number): void;

  protected slot(key: string, like: tf.Tensor): tf.Variable {
    let v = this.slots.get(key);
    if (!v) {
      v = tf.keep(tf.variable(tf.zerosLike(like), false, undefined, 'float32'));
      this.slots.set(key, v);
    }
    return v;
  }

  getState(): OptimizerState {
    const slots: Record<string, tf.Tensor> = {};
    for (const [k, v] of this.slots) slots[k] = v;
    return { kind: this.kind, iterations: this.iterations, slots };
  }

  setState(state: OptimizerState): void {
    if (state.kind !== this.kind) throw new Error(`checkpoint optimizer is ${state.kind}, this run uses ${this.kind}`);
    this.dispose();
    this.iterations = state.iterations;
    for (const [k, t] of Object.entries(state.slots)) {
      this.slots.set(k, tf.keep(tf.variable(t, false)));
    }
  }

  /**
   * Re-keys the slots after the parameter list changed: `newIndex[i]` is the new index of old parameter i,
   * or -1 when it left the run (its slots are freed). Slot keys are `<index>/<name>`.
   */
  remapSlots(newIndex: number[]): void {
    const next = new Map<string, tf.Variable>();
    for (const [k, v] of this.slots) {
      const slash = k.indexOf('/');
      const j = newIndex[Number(k.slice(0, slash))] ?? -1;
      if (j < 0) v.dispose();
      else next.set(`${j}${k.slice(slash)}`, v);
    }
    this.slots = next;
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay coefficient (Loshchilov & Hutter 2019). 0 gives plain Adam. */
  weightDecay?: number;
  /** Which parameters get weight decay; default: rank ≥ 2 (kernels), not biases/norm scales. */
  decayFilter?: (p: tf.Variable, index: number) => boolean;
}

/**
 * AdamW — Adam with decoupled weight decay (Loshchilov & Hutter, ICLR 2019, Algorithm 2):
 * m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  θ ← θ − lr·( m̂/(√v̂+ε) + λ θ ).
 * With weightDecay = 0 it is Adam (Kingma & Ba 2015).
 */
export class AdamW extends Optimizer {
  readonly kind = 'adamw';
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  private readonly decayFilter: (p: tf.Variable, index: number) => boolean;

  constructor(opts: AdamWOptions = {}) {
    super();
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.epsilon = opts.epsilon ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.decayFilter = opts.decayFilter ?? ((p) => p.shape.length >= 2);
  }

  protected update(i: number, p: tf.Variable, g: tf.Tensor, lr: number): void {
    const m = this.slot(`${i}/m`, p);
    const v = this.slot(`${i}/v`, p);
    const t = this.iterations;
    const b1 = this.beta1;
    const b2 = this.beta2;
    // Bias corrections folded into the step size: lr_t = lr·√(1−β2ᵗ)/(1−β1ᵗ), ε scaled to match m̂/(√v̂+ε).
    const c1 = 1 - Math.pow(b1, t);
    const c2 = Math.sqrt(1 - Math.pow(b2, t));
    const stepSize = (lr * c2) / c1;
    const decayOn = this.weightDecay > 0 && this.decayFilter(p, i);
    const decay = decayOn ? lr * this.weightDecay : 0;
    // One kernel on engines that have it (wasm+blas), the same float32 arithmetic as the ops below.
    const fused = fusedAdamW(p, m, v, g, { beta1: b1, beta2: b2, epsC2: this.epsilon * c2, stepSize, decay: decayOn ? decay : null });
    if (fused) {
      m.assign(fused[1]);
      v.assign(fused[2]);
      p.assign(fused[0]);
      return;
    }
    updateMoments(m, v, g, b1, b2);
    const upd = tf.div(m, tf.add(tf.sqrt(v), this.epsilon * c2));
    let next = tf.sub(p, tf.mul(upd, stepSize));
    if (decayOn) next = tf.sub(next, tf.mul(p, decay));
    p.assign(next);
  }
}

/** Adam's moment estimates in place (Kingma & Ba, ICLR 2015, Alg. 1): m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g². */
function updateMoments(m: tf.Variable, v: tf.Variable, g: tf.Tensor, b1: number, b2: number): void {
  m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
  v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
}

/** L2 weight decay folded into the gradient (the SGD / PyTorch `weight_decay` convention): g + wd·p. */
function withL2(g: tf.Tensor, p: tf.Variable, wd: number): tf.Tensor {
  return wd > 0 ? tf.add(g, tf.mul(p, wd)) : g;
}

export interface SGDOptions {
  momentum?: number;
  nesterov?: boolean;
  /** L2-style weight decay added to the gradient (classic SGD convention). */
  weightDecay?: number;
}

/**
 * SGD with (optionally Nesterov) momentum, PyTorch convention (Sutskever et al., ICML 2013):
 * b ← μ b + g;  step = g + μ b (Nesterov) or b;  θ ← θ − lr·step.
 */
export class SGD extends Optimizer {
  readonly kind = 'sgd';
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;

  constructor(opts: SGDOptions = {}) {
    super();
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    if (this.nesterov && this.momentum <= 0) throw new Error('Nesterov momentum needs momentum > 0');
  }

  protected update(i: number, p: tf.Variable, g0: tf.Tensor, lr: number): void {
    let g = withL2(g0, p, this.weightDecay);
    if (this.momentum > 0) {
      const b = this.slot(`${i}/momentum`, p);
      const nb = tf.add(tf.mul(b, this.momentum), g);
      b.assign(nb);
      g = this.nesterov ? tf.add(g, tf.mul(nb, this.momentum)) : nb;
    }
    p.assign(tf.sub(p, tf.mul(g, lr)));
  }
}

export interface RAdamOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** L2 weight decay added to the gradient (PyTorch `RAdam(weight_decay=…)` convention). */
  weightDecay?: number;
}

/**
 * RAdam — rectified Adam (Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020,
 * Algorithm 2): with ρ∞ = 2/(1−β2) − 1 and ρ_t = ρ∞ − 2tβ2ᵗ/(1−β2ᵗ), the step is
 * θ ← θ − lr·m̂·r_t·√(1−β2ᵗ)/(√v + ε) when ρ_t > 5 (variance of the adaptive rate tractable), with
 * r_t = √((ρ_t−4)(ρ_t−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρ_t)), and the un-adapted momentum step θ ← θ − lr·m̂ otherwise
 * (m̂ = m/(1−β1ᵗ)). The threshold 5 is the one of the authors' code and of PyTorch. DeepShift recommends it for
 * DeepShift-PS (DeepShift README).
 */
export class RAdam extends Optimizer {
  readonly kind = 'radam';
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;

  constructor(opts: RAdamOptions = {}) {
    super();
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.epsilon = opts.epsilon ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
  }

  /** ρ_t and the rectification r_t at step t (r_t = null while ρ_t ≤ 5: momentum step). */
  rectification(t: number): { rho: number; r: number | null } {
    const b2 = this.beta2;
    const rhoInf = 2 / (1 - b2) - 1;
    const b2t = Math.pow(b2, t);
    const rho = rhoInf - (2 * t * b2t) / (1 - b2t);
    if (!(rho > 5)) return { rho, r: null };
    return { rho, r: Math.sqrt(((rho - 4) * (rho - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rho)) };
  }

  protected update(i: number, p: tf.Variable, g0: tf.Tensor, lr: number): void {
    const g = withL2(g0, p, this.weightDecay);
    const m = this.slot(`${i}/m`, p);
    const v = this.slot(`${i}/v`, p);
    const t = this.iterations;
    updateMoments(m, v, g, this.beta1, this.beta2);
    const c1 = 1 - Math.pow(this.beta1, t);
    const { r } = this.rectification(t);
    if (r === null) {
      p.assign(tf.sub(p, tf.mul(m, lr / c1)));
      return;
    }
    const c2 = Math.sqrt(1 - Math.pow(this.beta2, t));
    p.assign(tf.sub(p, tf.mul(tf.div(m, tf.add(tf.sqrt(v), this.epsilon)), (lr * r * c2) / c1)));
  }
}

export type OptimizerName = 'adam' | 'adamw' | 'sgd' | 'momentum' | 'nesterov' | 'radam';

/** Factory by name (the CLI's `--set optimizer=adamw`). */
export function createOptimizer(name: OptimizerName, opts: { weightDecay?: number; momentum?: number; beta1?: number; beta2?: number } = {}): Optimizer {
  switch (name) {
    case 'adam':
      return new AdamW({ ...opts, weightDecay: 0 });
    case 'adamw':
      return new AdamW({ weightDecay: opts.weightDecay ?? 0.01, beta1: opts.beta1, beta2: opts.beta2 });
    case 'sgd':
      return new SGD({ weightDecay: opts.weightDecay });
    case 'momentum':
      return new SGD({ momentum: opts.momentum ?? 0.9, weightDecay: opts.weightDecay });
    case 'nesterov':
      return new SGD({ momentum: opts.momentum ?? 0.9, nesterov: true, weightDecay: opts.weightDecay });
    case 'radam':
      return new RAdam({ weightDecay: opts.weightDecay, beta1: opts.beta1, beta2: opts.beta2 });
    default:
      throw new Error(`unknown optimizer ${name as string}`);
  }
}

/**
 * Global-norm gradient clipping (Pascanu et al., ICML 2013): if ‖g‖₂ over all tensors exceeds `maxNorm`,
 * every gradient is scaled by maxNorm/‖g‖. Returns the clipped grads and the norm before clipping (a scalar tensor).
 */
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: tf.Scalar } {
  const sq = grads.map((g) => tf.sum(tf.square(g)));
  const norm = tf.sqrt(tf.addN(sq)) as tf.Scalar;
  const scale = tf.div(maxNorm, tf.maximum(norm, maxNorm));
  return { grads: grads.map((g) => tf.mul(g, scale)), norm };
}
