import type { Rng } from '../../engine/rng.js';

/**
 * Frequency balancing, Yaeger, Lyon & Webb, NIPS 9 (1996): repetition factor R_i = (a / F_i)^b with F_i = S_i / S̄,
 * S̄ = (1/C)·Σ S_i over the C classes. R > 1 repeats a pattern, R < 1 skips it with probability 1 − R.
 * The paper gives no cap; `cap` (default ∞) bounds R for very rare classes. Classes with S_i = 0 get R = cap.
 */
export function repetitionFactors(counts: ArrayLike<number>, a: number, b: number, cap = Infinity): Float64Array {
  if (!(a > 0) || !(b >= 0)) throw new Error(`frequency balancing needs a > 0 and b >= 0 (got a=${a}, b=${b})`);
  const C = counts.length;
  let total = 0;
  for (let i = 0; i < C; i++) total += counts[i];
  const mean = total / C;
  const R = new Float64Array(C);
  for (let i = 0; i < C; i++) {
    const F = counts[i] / mean;
    R[i] = F > 0 ? Math.min(cap, Math.pow(a / F, b)) : cap;
  }
  return R;
}

/** How many times to present one pattern with repetition factor R: ⌊R⌋ plus one more with probability frac(R). */
export function presentationCount(R: number, rng: Rng): number {
  const whole = Math.floor(R);
  return whole + (rng.next() < R - whole ? 1 : 0);
}

/**
 * One frequency-balanced epoch over samples with the given labels: each sample index appears
 * {@link presentationCount}(R[label]) times, shuffled. Samples with label < 0 (negatives) appear once.
 * Each repeated index is meant to be freshly augmented (stroke-warped) by the caller.
 */
export function frequencyBalancedEpoch(labels: ArrayLike<number>, R: ArrayLike<number>, rng: Rng): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    const k = c < 0 ? 1 : presentationCount(R[c], rng);
    for (let j = 0; j < k; j++) out.push(i);
  }
  return rng.shuffleInPlace(Int32Array.from(out));
}
