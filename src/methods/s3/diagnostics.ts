/**
 * Training diagnostics for shift networks: sign-flip rate, zero fraction, exponent histogram.
 *
 * Paper: Li et al., "S³: Sign-Sparse-Shift Reparametrization …", NeurIPS 2021 — abstract and Sec. 1/3
 * ("weight sign freezing" and the dense-weight regulariser that keeps weights non-zero); these are the
 * quantities the s3-shift experiment tracks per epoch.
 *
 * All functions take one `DiscreteWeights` snapshot or an array of them (one per layer, pooled).
 */
import type { DiscreteWeights } from './param.js';
import type { ShiftLayerBase } from './layers.js';

function asList(d: DiscreteWeights | DiscreteWeights[]): DiscreteWeights[] {
  return Array.isArray(d) ? d : [d];
}

/** Sign-flip statistics between two snapshots (see `signFlipStats`). */
export interface SignFlipStats {
  /** Weights non-zero in both snapshots whose sign differs. */
  flipped: number;
  /** Weights non-zero in both snapshots (the denominator of `fraction`). */
  eligible: number;
  /** flipped / eligible (0 when eligible = 0). THE sign-flip rate. */
  fraction: number;
  /**
   * Fraction of ALL weights whose latent sign differs (zero weights included, using the latent sign
   * carried in the snapshot: S(W_sign) for S3, sign of s̃ for PS). Informative for S3, where a zero
   * weight still has a well-defined sign latent.
   */
  latentFraction: number;
  /** Weights that went from non-zero to zero (prev non-zero, next zero). */
  becameZero: number;
  /** Weights that went from zero to non-zero. */
  becameNonZero: number;
  /** Total number of weights compared. */
  total: number;
}

/**
 * Sign-flip rate between two snapshots — S3 paper Sec. 1 ("weight sign freezing"): among weights that
 * are non-zero in BOTH snapshots, the fraction whose sign differs. Zero weights have no effective
 * sign, so they are excluded from `fraction` (see `latentFraction` for the latent-sign version).
 * Snapshots must come from the same layers in the same order.
 */
export function signFlipStats(prev: DiscreteWeights | DiscreteWeights[], next: DiscreteWeights | DiscreteWeights[]): SignFlipStats {
  const a = asList(prev);
  const b = asList(next);
  if (a.length !== b.length) throw new Error(`signFlipStats: ${a.length} vs ${b.length} snapshots`);
  let flipped = 0;
  let eligible = 0;
  let latentFlipped = 0;
  let becameZero = 0;
  let becameNonZero = 0;
  let total = 0;
  for (let l = 0; l < a.length; l++) {
    const x = a[l];
    const y = b[l];
    if (x.sign.length !== y.sign.length) throw new Error(`signFlipStats: snapshot ${l} sizes differ (${x.sign.length} vs ${y.sign.length})`);
    for (let i = 0; i < x.sign.length; i++) {
      total++;
      if (x.sign[i] !== y.sign[i]) latentFlipped++;
      const zx = x.zero[i] !== 0;
      const zy = y.zero[i] !== 0;
      if (!zx && !zy) {
        eligible++;
        if (x.sign[i] !== y.sign[i]) flipped++;
      } else if (!zx && zy) becameZero++;
      else if (zx && !zy) becameNonZero++;
    }
  }
  return {
    flipped,
    eligible,
    fraction: eligible > 0 ? flipped / eligible : 0,
    latentFraction: total > 0 ? latentFlipped / total : 0,
    becameZero,
    becameNonZero,
    total,
  };
}

/** Sign-flip rate (fraction of weights non-zero in both snapshots whose sign changed); S3 paper Sec. 1. */
export function signFlipFraction(prev: DiscreteWeights | DiscreteWeights[], next: DiscreteWeights | DiscreteWeights[]): number {
  return signFlipStats(prev, next).fraction;
}

/**
 * Fraction of weights that are exactly zero — the quantity the S3 dense-weight regulariser
 * α·Σ max(−W_sparse, 0) pushes down (S3 paper Fig. 3).
 */
export function zeroFraction(d: DiscreteWeights | DiscreteWeights[]): number {
  let zeros = 0;
  let total = 0;
  for (const x of asList(d)) {
    for (let i = 0; i < x.zero.length; i++) zeros += x.zero[i] !== 0 ? 1 : 0;
    total += x.zero.length;
  }
  return total > 0 ? zeros / total : 0;
}

/** Histogram of exponents of non-zero weights (see `shiftHistogram`). */
export interface ShiftHistogram {
  /** Exponent values pMin..pMax. */
  shifts: number[];
  /** Number of non-zero weights with each exponent. */
  counts: number[];
  /** Number of zero weights (not part of `counts`). */
  zeros: number;
  /** Total number of weights. */
  total: number;
}

/**
 * Histogram of the exponent p over non-zero weights (S3 paper Sec. 3, w = ±2^p), for p in
 * [pMin, pMax]. Throws if a non-zero weight has an exponent outside the range.
 */
export function shiftHistogram(d: DiscreteWeights | DiscreteWeights[], pMin: number, pMax: number): ShiftHistogram {
  const shifts: number[] = [];
  for (let p = pMin; p <= pMax; p++) shifts.push(p);
  const counts = new Array<number>(shifts.length).fill(0);
  let zeros = 0;
  let total = 0;
  for (const x of asList(d)) {
    for (let i = 0; i < x.zero.length; i++) {
      total++;
      if (x.zero[i]) {
        zeros++;
        continue;
      }
      const p = x.shift[i];
      if (p < pMin || p > pMax) throw new Error(`shiftHistogram: exponent ${p} outside [${pMin}, ${pMax}]`);
      counts[p - pMin]++;
    }
  }
  return { shifts, counts, zeros, total };
}

/**
 * Snapshot of every shift layer of a model: `{name, weights}` in layer order (S3 paper Sec. 3). Keep
 * two of these (e.g. at consecutive epochs) and pass their `weights` to `signFlipStats`.
 */
export function snapshotShiftLayers(layers: ShiftLayerBase[]): { name: string; weights: DiscreteWeights }[] {
  return layers.map((l) => ({ name: l.name, weights: l.discreteWeights() }));
}
