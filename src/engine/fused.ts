/**
 * Fused training-step operations that the engine can run as one kernel (see kernels/fused_adamw.ts).
 * Each returns null when the active engine has no fused kernel, and the caller runs its unfused ops.
 */
import * as tf from '@tensorflow/tfjs';
import { FUSED_ADAMW, fusedAdamWReady } from './kernels/fused_adamw.js';
import { FUSED_SOFTMAX_CE, fusedSoftmaxCEReady } from './kernels/softmax_ce.js';
import { FUSED_LAYER_NORM, fusedLayerNormReady } from './kernels/layer_norm.js';
import { FUSED_GELU, fusedGeluReady } from './kernels/gelu.js';
import { activeBlas } from './kernels/blas_gemm.js';

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

/**
 * Mean softmax cross-entropy of `logits` [rows, classes] against `labels` of the same shape (one-hot or
 * rows that sum to 1): (1/rows)·Σ_r Σ_c −y[r,c]·log softmax(z)[r,c] — tf.losses.softmaxCrossEntropy with
 * its defaults — as one kernel forward and one backward (gradient dy·(softmax(z) − y)/rows, tfjs's rule).
 * Null when the engine has no fused kernel (not wasm+blas) or the logits are not a float32 matrix.
 */
export function fusedSoftmaxCrossEntropy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar | null {
  if (!fusedSoftmaxCEReady()) return null;
  if (logits.rank !== 2 || logits.dtype !== 'float32' || labels.dtype === 'string' || labels.dtype === 'complex64') return null;
  if (!tf.util.arraysEqual(labels.shape, logits.shape) || logits.shape[0] === 0 || logits.shape[1] === 0) return null;
  // tf.oneHot gives int32 labels; tfjs's loss casts them the same way.
  const y = labels.dtype === 'float32' ? labels : tf.cast(labels, 'float32');
  return tf.engine().runKernel(FUSED_SOFTMAX_CE, { labels: y, logits }) as unknown as tf.Scalar;
}

/**
 * tf.losses.softmaxCrossEntropy(labels, logits) with its defaults (mean over rows), as one fused kernel
 * where the engine has it (wasm+blas: equal within float32 rounding) and exactly tfjs's ops elsewhere.
 */
export function softmaxCrossEntropy(labels: tf.Tensor, logits: tf.Tensor): tf.Scalar {
  return fusedSoftmaxCrossEntropy(labels, logits) ?? (tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar);
}

/**
 * LayerNorm (Ba, Kiros & Hinton 2016) over the last axis of x [rows, d]: (x − μ)·(σ² + eps)^(−1/2)·g + b
 * with μ, σ² the row's mean and biased variance (tf.moments), as one kernel forward and one backward.
 * Null when the engine has no fused kernel (not wasm+blas) or the shapes do not fit.
 */
export function fusedLayerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor2D | null {
  if (!fusedLayerNormReady()) return null;
  const d = x.shape[1];
  if (x.rank !== 2 || d === 0 || [x, g, b].some((t) => t.dtype !== 'float32') || g.rank !== 1 || b.rank !== 1 || g.shape[0] !== d || b.shape[0] !== d) return null;
  return tf.engine().runKernel(FUSED_LAYER_NORM, { x, g, b }, { eps } as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

/**
 * The tanh GELU (Hendrycks & Gimpel 2016), x·σ(x·(c + k·x²)) with c = 2√(2/π), k = 0.044715·c, as one
 * kernel forward and one backward. Null when the engine has no fused kernel (not wasm+blas) or x is not
 * float32.
 */
export function fusedGelu<T extends tf.Tensor>(x: T): T | null {
  if (!fusedGeluReady() || x.dtype !== 'float32') return null;
  return tf.engine().runKernel(FUSED_GELU, { x }) as T;
}

/**
 * Σ over the rows of x [rows, cols] (a bias gradient) as one pass of the addon where the engine has it
 * (wasm+blas); null elsewhere, so callers keep their own reduction there.
 */
export function fusedSumRows(x: tf.Tensor2D): tf.Tensor1D | null {
  // The Sum kernel of the BLAS path reduces leading axes in one pass (kernels/Sum.ts).
  if (activeBlas() === null || tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || x.rank !== 2) return null;
  return tf.sum(x, 0) as tf.Tensor1D;
}
