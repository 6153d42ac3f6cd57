/**
 * Per-sample fixed-point scale choices of the multiplication-free shift engine (the scheme is in the
 * header of shift-inference.ts; S3, Li et al. NeurIPS 2021, Sec. 1/3; DeepShift, Elhoushi et al.
 * CVPR-W 2021, Sec. 3.3 int32 accumulators). The per-sample TypeScript engine and the batched native
 * engine both call these, so both pick the same scale for every sample and stay bit-identical.
 */

/**
 * Bound on |Σ shift-add terms| (and separately on |bias|) so that acc + bias fits in int32 — the
 * fixed-point budget of the shift-add kernel (S3 Sec. 1/3; DeepShift Sec. 3.3 int32 accumulators).
 */
export const ACC_LIMIT = 2 ** 30;
/** Upper cap on fractional bits (only reached for near-zero inputs); fixed-point scheme, DeepShift Sec. 3.3. */
export const MAX_FRAC_BITS = 60;

/** Largest input fractional bits f for which the bias quantised to 2^(f − pMin) stays below ACC_LIMIT. */
export function biasFracLimit(maxBias: number, pMin: number): number {
  return maxBias > 0 ? Math.floor(Math.log2((ACC_LIMIT - 1) / maxBias)) + pMin : MAX_FRAC_BITS;
}

/**
 * Fractional bits for a float input with max |x| = m: the largest f with (m·2^f + 1)·gain ≤ ACC_LIMIT,
 * capped by `fBias` (biasFracLimit) and MAX_FRAC_BITS.
 */
export function fracForFloatInput(m: number, gain: number, fBias: number): number {
  let f = m > 0 ? Math.floor(Math.log2((ACC_LIMIT / gain - 1) / m)) : MAX_FRAC_BITS;
  f = Math.min(f, fBias, MAX_FRAC_BITS);
  while (f > -1000 && (m * 2 ** f + 1) * gain > ACC_LIMIT) f--;
  return f;
}

/**
 * Rounding right shift r ≥ 0 for a fixed-point input with max |q| = m and `frac` fractional bits: the
 * smallest r with (m/2^r + 1)·gain ≤ ACC_LIMIT (after a rounding shift |q| ≤ ⌊m/2^r⌋ + 1), and at least
 * frac − fBias so that the bias fits.
 */
export function shiftForIntInput(m: number, frac: number, gain: number, fBias: number): number {
  let r = 0;
  if (m * gain > ACC_LIMIT) {
    r = 1;
    while ((m / 2 ** r + 1) * gain > ACC_LIMIT && r < 40) r++;
  }
  return Math.max(r, frac - fBias, 0);
}
