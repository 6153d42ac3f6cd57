/**
 * Principal branch W₀ of the Lambert W function (the solution w ≥ −1 of w·eʷ = z, z ≥ −1/e),
 * as needed by the SuperLoss closed-form confidence σ* = exp(−W₀(½·max(−2/e, β)))
 * (Castells, Weinzaepfel, Revaud, "SuperLoss: A Generic Loss for Robust Curriculum Learning",
 * NeurIPS 2020, closed-form optimal confidence).
 *
 * Two implementations:
 * - {@link lambertW0}: float64 JS numbers, Halley iteration run to convergence (≈ 1e-15 relative
 *   away from the branch point).
 * - {@link lambertW0Tensor}: float32 tfjs ops, branch-free, a fixed number of Halley steps; usable
 *   inside `tf.tidy` / gradient tapes (no gradient is defined through it — callers detach).
 *
 * Numerics shared by both:
 * - Distance to the branch point d = z + 1/e is computed with 1/e split into a rounded part plus a
 *   correction (hi + lo), so that d is accurate even when z is within a few ulps of −1/e (plain
 *   `1 + e·z` loses all digits there). Then p = √(2e·d).
 * - Close to the branch point (small p) the Puiseux series W = −1 + p − p²/3 + 11/72·p³ − …
 *   (7 terms) is used directly: the Halley step divides by W' ∝ (1 + w) → 0 and would only add
 *   rounding noise there.
 * - Elsewhere Halley's method is applied to h(w) = w − z·e^{−w} (the root equation divided by eʷ).
 *   Unlike f(w) = w·eʷ − z this never overflows: for every representable z, e^{−w} stays normal.
 * - Initial guess: the branch-point series for z < −0.25, Winitzki's approximation
 *   w₀ = L·(1 − log(1 + L)/(2 + L)), L = log(1 + z), otherwise.
 */
import * as tf from '@tensorflow/tfjs';

/** 1/e rounded to float64. */
const INV_E_HI = 1 / Math.E; // 0.36787944117144233
/** 1/e − INV_E_HI (exact value of the float64 rounding error, from a 50-digit computation). */
const INV_E_LO = -1.2428753672788363e-17;
/** 1/e rounded to float32 (it rounds UP: −INV_E_HI32 lies just below the true branch point). */
const INV_E_HI32 = Math.fround(1 / Math.E); // 0.3678794503211975
/** 1/e − INV_E_HI32, rounded to float32. */
const INV_E_LO32 = Math.fround(-9.149755619830557e-9);

/** The branch point −1/e (float64). */
export const LAMBERT_W_BRANCH_POINT = -INV_E_HI;

/** Coefficients of the series W₀ = Σ c_k p^k at the branch point, p = √(2(1 + e·z)). */
const SERIES = [-1, 1, -1 / 3, 11 / 72, -43 / 540, 769 / 17280, -221 / 8505, 680863 / 43545600];

/** Below this p (float64 path) the series alone is exact to ≈ 1e-18; above it Halley is used. */
const SERIES_P_MAX_F64 = 1e-2;
/** Float32 path: series truncation error at p = 0.25 is ≈ 1.5e-7, below the float32 Halley noise. */
const SERIES_P_MAX_F32 = 0.25;
/** Halley steps of the float32 tensor path (initial guess error ≤ 2.3e-2 ⇒ 1 step ≈ 1e-5, 2 steps ≈ eps). */
const TENSOR_HALLEY_STEPS = 3;

function seriesAtBranch(p: number): number {
  let acc = 0;
  for (let k = SERIES.length - 1; k >= 0; k--) acc = acc * p + SERIES[k]!;
  return acc;
}

/**
 * Lambert W₀ in float64: the principal-branch solution w ≥ −1 of w·eʷ = z (used for the
 * SuperLoss confidence σ* = exp(−W₀(½·max(−2/e, β))), Castells et al. 2020, closed-form σ*).
 *
 * Domain [−1/e, ∞):
 * - `z === -1/Math.E` (and anything within 4 ulps below it, i.e. rounding noise of an argument
 *   that is mathematically −1/e) returns exactly −1.
 * - z further below −1/e throws a `RangeError` (no real W₀ exists there).
 * - NaN returns NaN; +Infinity returns +Infinity.
 *
 * Accuracy: ≤ 1e-14 relative away from the branch point; within distance d of −1/e the problem
 * itself has condition number ∝ 1/√d, so the absolute error is bounded by ≈ 1e-16/√(2e·d)
 * (≈ 1e-14 at worst, at the switch to the series).
 */
export function lambertW0(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z === Infinity) return Infinity;
  if (z <= LAMBERT_W_BRANCH_POINT) {
    if (z >= LAMBERT_W_BRANCH_POINT * (1 + 4 * Number.EPSILON)) return -1;
    throw new RangeError(`lambertW0: argument ${z} is below the branch point -1/e; W0 is undefined there`);
  }
  if (z === 0) return 0;
  const d = Math.max(0, z + INV_E_HI + INV_E_LO);
  const p = Math.sqrt(2 * Math.E * d);
  if (p < SERIES_P_MAX_F64) return seriesAtBranch(p);

  let w: number;
  if (z < -0.25) {
    w = seriesAtBranch(p);
  } else {
    const L = Math.log1p(z);
    w = L * (1 - Math.log1p(L) / (2 + L));
  }
  for (let it = 0; it < 20; it++) {
    // Halley on h(w) = w − z·e^{−w}: h' = 1 + z·e^{−w}, h'' = −z·e^{−w}.
    const ze = z * Math.exp(-w);
    const h = w - ze;
    const h1 = 1 + ze;
    const step = (2 * h * h1) / (2 * h1 * h1 + h * ze);
    w -= step;
    if (!(Math.abs(step) > 4 * Number.EPSILON * Math.max(1, Math.abs(w)))) break;
  }
  return w;
}

/**
 * Lambert W₀ applied elementwise to a float32 tensor with tfjs ops (for the SuperLoss confidence
 * σ* = exp(−W₀(½·max(−2/e, β))), Castells et al. 2020, closed-form σ*).
 *
 * - Inputs below the float32 branch point −fround(1/e) are clamped to it and return exactly −1
 *   (fround(1/e) > 1/e, so that clamp value is itself just outside the true domain).
 * - Branch-free: the Puiseux series where p = √(2e(z + 1/e)) < 0.25, else 3 Halley steps on
 *   h(w) = w − z·e^{−w} from Winitzki's / the series' initial guess, selected with `tf.where`.
 * - Accuracy (float32): |ΔW| ≲ 1e-6·max(1, |W|) against the exact W₀ of the float32 input,
 *   including within a few ulps of the branch point. NaN propagates; ±Infinity gives NaN.
 * - No gradient is defined (the SuperLoss computes σ from a detached loss); wrap it in
 *   `tf.customGrad` if a derivative is ever needed (dW/dz = W / (z·(1 + W))).
 *
 * The result is a new float32 tensor of the same shape; intermediates are disposed.
 */
export function lambertW0Tensor(z: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const x = tf.maximum(tf.cast(z, 'float32'), -INV_E_HI32);
    // d = z + 1/e: (x + hi) is exact near the branch point (Sterbenz), lo restores the rest.
    const d = tf.relu(tf.add(tf.add(x, INV_E_HI32), INV_E_LO32));
    const p = tf.sqrt(tf.mul(d, 2 * Math.E));
    // Series at the branch point (Horner).
    let series: tf.Tensor = tf.fill(p.shape, SERIES[SERIES.length - 1]!);
    for (let k = SERIES.length - 2; k >= 0; k--) series = tf.add(tf.mul(series, p), SERIES[k]!);
    // Winitzki's initial guess (argument kept ≥ −0.25 so the log1p's stay well defined).
    const L = tf.log1p(tf.maximum(x, -0.25));
    const winitzki = tf.mul(L, tf.sub(1, tf.div(tf.log1p(L), tf.add(L, 2))));
    let w: tf.Tensor = tf.where(tf.less(x, -0.25), series, winitzki);
    for (let it = 0; it < TENSOR_HALLEY_STEPS; it++) {
      const ze = tf.mul(x, tf.exp(tf.neg(w)));
      const h = tf.sub(w, ze);
      const h1 = tf.add(ze, 1);
      const num = tf.mul(tf.mul(h, h1), 2);
      const den = tf.add(tf.mul(tf.square(h1), 2), tf.mul(h, ze));
      w = tf.sub(w, tf.div(num, den));
    }
    return tf.where(tf.less(p, SERIES_P_MAX_F32), series, w);
  });
}
