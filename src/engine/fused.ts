/**
 * Fused training-step operations that the engine can run as one kernel (see kernels/fused_adamw.ts).
 * Each returns null when the active engine has no fused kernel, and the caller runs its unfused ops.
 */
import * as tf from '@tensorflow/tfjs';
import { FUSED_ADAMW, fusedAdamWReady } from './kernels/fused_adamw.js';

/** Float32 coefficients of one AdamW step; see `fusedAdamW`. */
export interface AdamWCoefficients {
  beta1: number;
  beta2: number;
  /** ε·√(1−β2ᵗ): ε scaled to the bias-corrected step. */
  epsC2: number;
  /** lr·√(1−β2ᵗ)/(1−β1ᵗ). */
  stepSize: number;
  /** lr·λ for decoupled weight decay; null for none (no decay term at all). */
  decay: number | null;
}

/**
 * One AdamW step (Loshchilov & Hutter, ICLR 2019, Alg. 2, bias corrections folded into stepSize/epsC2)
 * as a single kernel: returns [p', m', v'] with
 *   m' = β1·m + (1−β1)·g,  v' = β2·v + (1−β2)·g²,  p' = p − stepSize·m'/(√v' + epsC2) [− decay·p],
 * bit-identical to computing the same expressions with tf ops in float32. Null when the engine has
 * no fused kernel (not wasm+blas) or the tensors are not float32 of one shape.
 */
export function fusedAdamW(p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, c: AdamWCoefficients): [tf.Tensor, tf.Tensor, tf.Tensor] | null {
  if (!fusedAdamWReady()) return null;
  for (const t of [p, m, v, g]) if (t.dtype !== 'float32' || !tf.util.arraysEqual(t.shape, p.shape)) return null;
  const coefficients = [c.beta1, 1 - c.beta1, c.beta2, 1 - c.beta2, c.epsC2, c.stepSize, c.decay ?? 0, c.decay === null ? 0 : 1];
  const out = tf.engine().runKernel(FUSED_ADAMW, { p, m, v, g }, { coefficients } as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
  return [out[0], out[1], out[2]];
}
