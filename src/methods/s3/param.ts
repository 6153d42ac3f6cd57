/**
 * Weight parametrisations of low-bit shift weights: S3 (sign × sparse × 2^shift) and DeepShift-PS.
 *
 * Paper: Li et al., "S³: Sign-Sparse-Shift Reparametrization for Effective Training of Low-bit
 * Shift Networks", NeurIPS 2021 (arXiv 2107.03453), Sec. 3 and Fig. 3 (as released in the official
 * `S3-Training/s3conv2dshift.py`); baseline: Elhoushi et al., "DeepShift", CVPR-W 2021, Sec. 3.2
 * (DeepShift-PS).
 *
 * Value sets (b = bit width, N = 2^{b−1} − 2):
 * - S3, b = 3 (official): p ∈ {0, 1, 2}, w ∈ {0, ±1, ±2, ±4} (7 values).
 * - S3, b = 4 (OUR EXTENSION — not in the paper or its released code): N = 6 nested shift latents,
 *   p ∈ {0, …, 6}, w ∈ {0, ±1, ±2, …, ±64} (15 values).
 * - DeepShift-PS, b bits: p ∈ {−N, …, 0}; b = 3: w ∈ {0, ±1, ±½, ±¼}; b = 4: p ∈ {−6, …, 0}.
 * Up to a global power-of-two scale the S3 and PS sets coincide (BN after the layer absorbs it).
 */
import * as tf from '@tensorflow/tfjs';
import { clampSte, heavisideSte, pow2, roundSte, signSte, ternarySignSte, unsymGradMul } from './ste.js';

export type ShiftParameterization = 's3' | 'deepshift-ps';
export type ShiftBits = 3 | 4;
/**
 * How S3 combines its N shift bits into p (Li et al. 2021, Fig. 3): 'nested' (official code huawei-noah/noah-research `S3-Training/s3conv2dshift.py`, thermometer
 * p = Σ_k Π_{j≤k} H(s_j); 3-bit: H(s1)·(H(s2)+1)) or 'summed' (ablation p = Σ_k H(s_k), same range).
 */
export type S3ShiftEncoding = 'nested' | 'summed';

/**
 * Discrete representation of a shift-weight tensor, flattened in the tfjs kernel layout
 * (dense: [in, units]; conv: [kh, kw, cin, cout]). Effective weight:
 * w = zero ? 0 : sign · 2^shift (S3 paper Sec. 3: w = S(W_sign)·H(W_sparse)·2^p).
 *
 * For snapshots taken from a layer, `sign` and `shift` of ZERO weights carry the latent state
 * (S3: S(W_sign) and the decoded shift; PS: sign of s̃ and round(clamp(p̃))) so that diagnostics can
 * follow them; the effective weight is still 0. After pack/unpack (`export.ts`) zero weights are
 * canonical: sign 0, shift 0.
 */
export interface DiscreteWeights {
  /** Sign of each weight, +1 / −1 (0 only for canonical zero weights after unpacking). */
  sign: Int8Array;
  /** 1 where the weight is exactly zero. */
  zero: Uint8Array;
  /** Exponent p of each weight (meaningful where zero = 0). */
  shift: Int8Array;
  /** Kernel shape (tfjs layout). */
  shape: number[];
}

/** Allowed exponent range of a parametrisation. */
export interface ShiftRange {
  pMin: number;
  pMax: number;
}

/**
 * Allowed exponent range — S3 paper Sec. 3 / Fig. 3 (S3 3-bit: p ∈ [0, 2]) and DeepShift Sec. 3.2
 * (PS: p ∈ [−(2^{b−1} − 2), 0]). S3 4-bit (p ∈ [0, 6]) is our extension with N = 2^{b−1} − 2 nested
 * shift latents.
 */
export function shiftRange(parameterization: ShiftParameterization, bits: ShiftBits): ShiftRange {
  const n = numShiftLatents(bits);
  return parameterization === 's3' ? { pMin: 0, pMax: n } : { pMin: -n, pMax: 0 };
}

/**
 * N = 2^{b−1} − 2: number of nested shift latents of S3 (2 for the paper's 3-bit layer), also the
 * number of non-zero exponent steps of DeepShift-PS (DeepShift Sec. 3.2, `shift_range`).
 */
export function numShiftLatents(bits: ShiftBits): number {
  if (bits !== 3 && bits !== 4) throw new Error(`shift layers support bits 3 or 4, got ${String(bits)}`);
  return 2 ** (bits - 1) - 2;
}

/**
 * Differentiable S3 weight — S3 paper Fig. 3 / Sec. 3 (official code order):
 *   p = Σ_{k=1..N} Π_{j≤k} H(W_s,j)   (3-bit: p = H(s1)·(H(s2) + 1) ∈ {0, 1, 2})
 *   W = S(W_sign) · H(W_sparse) · 2^p
 * H, S are STEs (identity backward); 2^p has the exact derivative 2^p·ln 2, so autodiff yields
 * ∂L/∂W_sign = g·h·2^p, ∂L/∂W_sparse = g·s·2^p, ∂L/∂W_s1 = g·s·h·2^p·ln2·(H(W_s2)+1),
 * ∂L/∂W_s2 = g·s·h·2^p·ln2·H(W_s1). `shiftLatents` has shape [N, ...kernelShape].
 * With `encoding = 'summed'` (ablation, not the released code): p = Σ_k H(W_s,k).
 */
export function s3Weight(signLatent: tf.Tensor, sparseLatent: tf.Tensor, shiftLatents: tf.Tensor, encoding: S3ShiftEncoding = 'nested'): tf.Tensor {
  return tf.tidy(() => {
    const s = signSte(signLatent);
    const h = heavisideSte(sparseLatent);
    const p = s3Exponent(heavisideSte(shiftLatents), encoding);
    return tf.mul(tf.mul(s, h), pow2(p));
  });
}

/**
 * Exponent from the stacked shift bits (S3 Fig. 3): nested/thermometer p = Σ_k Π_{j≤k} bit_j, or the
 * summed ablation p = Σ_k bit_k.
 */
function s3Exponent(bits: tf.Tensor, encoding: S3ShiftEncoding): tf.Tensor {
  const slices = tf.unstack(bits, 0);
  let prod = slices[0];
  let p = prod;
  for (let k = 1; k < slices.length; k++) {
    prod = encoding === 'nested' ? tf.mul(prod, slices[k]) : slices[k];
    p = tf.add(p, prod);
  }
  return p;
}

/**
 * Differentiable DeepShift-PS weight — DeepShift Sec. 3.2 (`modules.py`, `ste.py`):
 *   p = round(clamp(p̃, pMin, 0)), s = sign(round(s̃)) ∈ {−1, 0, 1}, W = 2^p · s
 * with identity STEs for clamp/round/sign and the asymmetric product: ∂L/∂p̃ = g·s·2^p·ln 2,
 * ∂L/∂s̃ = g (unscaled).
 */
export function psWeight(shiftLatent: tf.Tensor, signLatent: tf.Tensor, pMin: number): tf.Tensor {
  return tf.tidy(() => {
    const p = roundSte(clampSte(shiftLatent, pMin, 0));
    const s = ternarySignSte(roundSte(signLatent));
    return unsymGradMul(pow2(p), s);
  });
}

/**
 * Discrete state of S3 latents (no gradient) — S3 paper Fig. 3: sign = S(W_sign), zero = 1 − H(W_sparse),
 * shift = nested (thermometer) or summed decoding of H(W_s,k). Uses the same tf ops as the forward pass.
 */
export function s3Discrete(signLatent: tf.Tensor, sparseLatent: tf.Tensor, shiftLatents: tf.Tensor, encoding: S3ShiftEncoding = 'nested'): DiscreteWeights {
  const [sign, zero, shift] = tf.tidy(() => {
    const s = tf.sub(tf.mul(tf.cast(tf.greaterEqual(signLatent, 0), 'float32'), 2), 1);
    const z = tf.cast(tf.lessEqual(sparseLatent, 0), 'float32');
    const p = s3Exponent(tf.cast(tf.greater(shiftLatents, 0), 'float32'), encoding);
    return [s, z, p];
  });
  return finishDiscrete(sign, zero, shift, signLatent.shape);
}

/**
 * Discrete state of DeepShift-PS latents (no gradient) — DeepShift Sec. 3.2: shift = round(clamp(p̃)),
 * zero = (round(s̃) = 0), sign = sign(round(s̃)) for non-zero weights and the sign of s̃ for zeros.
 */
export function psDiscrete(shiftLatent: tf.Tensor, signLatent: tf.Tensor, pMin: number): DiscreteWeights {
  const [sign, zero, shift] = tf.tidy(() => {
    const p = tf.round(tf.clipByValue(shiftLatent, pMin, 0));
    const sr = tf.sign(tf.round(signLatent));
    const z = tf.cast(tf.equal(sr, 0), 'float32');
    const latentSign = tf.sub(tf.mul(tf.cast(tf.greaterEqual(signLatent, 0), 'float32'), 2), 1);
    const s = tf.where(tf.equal(sr, 0), latentSign, sr);
    return [s, z, p];
  });
  return finishDiscrete(sign, zero, shift, signLatent.shape);
}

function finishDiscrete(sign: tf.Tensor, zero: tf.Tensor, shift: tf.Tensor, shape: number[]): DiscreteWeights {
  const s = sign.dataSync();
  const z = zero.dataSync();
  const p = shift.dataSync();
  tf.dispose([sign, zero, shift]);
  const n = s.length;
  const out: DiscreteWeights = { sign: new Int8Array(n), zero: new Uint8Array(n), shift: new Int8Array(n), shape: shape.slice() };
  for (let i = 0; i < n; i++) {
    out.sign[i] = s[i];
    out.zero[i] = z[i];
    out.shift[i] = p[i];
  }
  return out;
}

/**
 * Effective weight values of a discrete representation: w = zero ? 0 : sign·2^shift
 * (S3 paper Sec. 3, W = S·H·2^p). Exact in float32.
 */
export function discreteToValues(d: DiscreteWeights): Float32Array {
  const n = d.sign.length;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = d.zero[i] ? 0 : d.sign[i] * 2 ** d.shift[i];
  return out;
}
