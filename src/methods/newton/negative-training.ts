import type { Rng } from '../../engine/rng.js';

/**
 * Negative training, Yaeger, Lyon & Webb, NIPS 9 (1996) (and patent US5768422): invalid segments (pieces of a
 * character, or strokes of neighbouring characters merged) are trained with all-zero targets. Each negative is
 * used at a presentation with the negative-training probability (0.05–0.3), and its error is scaled by the
 * negative-training factor (0.2–0.5); see `normOutErrTargets({ negativeFactor })` for the scaling.
 */
export interface NegativeTrainingOptions {
  /** Learning-rate (error) factor for negative patterns. */
  factor: number;
  /** Probability that a given negative is trained on at one presentation. */
  prob: number;
}

/** Indices of the negatives kept for one presentation pass: each independently with probability `prob`. */
export function sampleNegatives(nNegatives: number, prob: number, rng: Rng): Int32Array {
  if (!(prob >= 0 && prob <= 1)) throw new Error(`negative-training probability must be in [0,1], got ${prob}`);
  const out: number[] = [];
  for (let i = 0; i < nNegatives; i++) if (rng.next() < prob) out.push(i);
  return Int32Array.from(out);
}
