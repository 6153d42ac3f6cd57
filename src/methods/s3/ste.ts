/**
 * Straight-through estimators (STE) and small differentiable helpers used by the shift layers.
 *
 * Paper: Li, Liu, Yu, Liu, Xu, Partovi Nia, "S³: Sign-Sparse-Shift Reparametrization for Effective
 * Training of Low-bit Shift Networks", NeurIPS 2021 (arXiv 2107.03453), Fig. 3 / Sec. 3; and
 * Elhoushi et al., "DeepShift: Towards Multiplication-Less Neural Networks", CVPR-W 2021
 * (arXiv 1905.13298), Sec. 3 (DeepShift-PS rounding STE).
 *
 * Every discretiser here is implemented with `tf.customGrad`: the forward pass produces the discrete
 * value, the backward pass returns the incoming gradient unchanged (plain STE — no clipping window),
 * exactly as in the official S3 code and DeepShift's `ste.py`.
 */
import * as tf from '@tensorflow/tfjs';

/** ln 2, the derivative factor of 2^p with respect to p (S3 paper Sec. 3: exact derivative of 2^p). */
export const LN2 = Math.LN2;

/**
 * Heaviside step with straight-through gradient — S3 paper Fig. 3, the indicator 1(x):
 * forward H(x) = 1 if x > 0 else 0 (x = 0 → 0); backward ∂H/∂x := 1 (gradient passed unchanged).
 * Used for the sparse latent (zero / non-zero) and for the shift latents.
 */
export const heavisideSte: (x: tf.Tensor) => tf.Tensor = tf.customGrad((x: tf.Tensor | tf.GradSaveFunc) => {
  const t = x as tf.Tensor;
  return {
    value: tf.tidy(() => tf.cast(tf.greater(t, 0), 'float32')),
    gradFunc: (dy: tf.Tensor) => dy,
  };
}) as (x: tf.Tensor) => tf.Tensor;

/**
 * Binary sign with straight-through gradient — S3 paper Fig. 3, S(x) = 2·1(x) − 1 with the official
 * code's convention S(0) = +1: forward +1 if x ≥ 0 else −1; backward gradient passed unchanged.
 */
export const signSte: (x: tf.Tensor) => tf.Tensor = tf.customGrad((x: tf.Tensor | tf.GradSaveFunc) => {
  const t = x as tf.Tensor;
  return {
    value: tf.tidy(() => tf.sub(tf.mul(tf.cast(tf.greaterEqual(t, 0), 'float32'), 2), 1)),
    gradFunc: (dy: tf.Tensor) => dy,
  };
}) as (x: tf.Tensor) => tf.Tensor;

/**
 * Ternary sign with straight-through gradient — DeepShift-PS `ste.sign` (DeepShift Sec. 3.2):
 * forward sign(x) ∈ {−1, 0, +1} (0 → 0); backward gradient passed unchanged.
 */
export const ternarySignSte: (x: tf.Tensor) => tf.Tensor = tf.customGrad((x: tf.Tensor | tf.GradSaveFunc) => {
  const t = x as tf.Tensor;
  return { value: tf.sign(t), gradFunc: (dy: tf.Tensor) => dy };
}) as (x: tf.Tensor) => tf.Tensor;

/**
 * Rounding with straight-through gradient — DeepShift-PS `ste.round` (DeepShift Sec. 3.2):
 * forward round-half-to-even (same as `torch.round`); backward gradient passed unchanged.
 */
export const roundSte: (x: tf.Tensor) => tf.Tensor = tf.customGrad((x: tf.Tensor | tf.GradSaveFunc) => {
  const t = x as tf.Tensor;
  return { value: tf.round(t), gradFunc: (dy: tf.Tensor) => dy };
}) as (x: tf.Tensor) => tf.Tensor;

/**
 * Clamp with identity gradient — emulates DeepShift-PS's in-place `shift.data.clamp_(…)` (DeepShift
 * Sec. 3.2, `modules.py`): the forward value is clamped to [lo, hi] but, because the PyTorch code
 * clamps `.data`, the gradient is not masked outside the range.
 */
export function clampSte(x: tf.Tensor, lo: number, hi: number): tf.Tensor {
  const f = tf.customGrad((a: tf.Tensor | tf.GradSaveFunc) => {
    const t = a as tf.Tensor;
    return { value: tf.clipByValue(t, lo, hi), gradFunc: (dy: tf.Tensor) => dy };
  }) as (a: tf.Tensor) => tf.Tensor;
  return f(x);
}

/**
 * y = 2^p for integer-valued p, with the exact derivative ∂y/∂p = 2^p·ln 2 — S3 paper Sec. 3 / Fig. 3
 * ("2^p uses the exact derivative") and DeepShift-PS (`2**shift_rounded`). The forward uses `tf.pow`
 * so that integer exponents give exactly representable powers of two (tf.exp(p·ln2) would not).
 */
export const pow2: (p: tf.Tensor) => tf.Tensor = tf.customGrad((p: tf.Tensor | tf.GradSaveFunc, save?: tf.Tensor | tf.GradSaveFunc) => {
  const t = p as tf.Tensor;
  const y = tf.pow(tf.scalar(2), t);
  (save as tf.GradSaveFunc)([y]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.mul(saved[0], LN2)),
  };
}) as (p: tf.Tensor) => tf.Tensor;

/**
 * Product with an asymmetric gradient — DeepShift-PS `ste.unsym_grad_mul` (DeepShift Sec. 3.2):
 * forward a·b; backward ∂L/∂a = g·b, ∂L/∂b = g (NOT scaled by a). DeepShift-PS uses it for
 * w = 2^p · s so that the sign latent receives the raw weight gradient.
 */
export const unsymGradMul: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor = tf.customGrad(
  (a: tf.Tensor | tf.GradSaveFunc, b: tf.Tensor | tf.GradSaveFunc, save?: tf.Tensor | tf.GradSaveFunc) => {
    const ta = a as tf.Tensor;
    const tb = b as tf.Tensor;
    (save as tf.GradSaveFunc)([tb]);
    return {
      value: tf.mul(ta, tb),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(dy, saved[0]), dy],
    };
  },
) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
