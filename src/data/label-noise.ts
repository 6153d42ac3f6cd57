import type { Rng } from '../engine/rng.js';

export type NoiseKind = 'sym' | 'pair';

export interface NoisyLabels {
  labels: Int32Array;
  /** 1 where the label was changed (a noisy sample), 0 where it is clean. */
  noisy: Uint8Array;
  /** Fraction of labels actually changed. */
  actualRate: number;
}

/**
 * Corrupts labels with rate r.
 * - `sym` (symmetric): each sample with probability r gets a label drawn uniformly from the *other* C−1 classes
 *   (so the realised noise rate is r; the convention of Han et al. 2018 "Co-teaching").
 * - `pair` (pair-flip): each sample with probability r is flipped to the next class (c → c+1 mod C).
 * Returns the noisy labels and the noise mask (SuperLoss's σ-AUROC needs it).
 */
export function injectLabelNoise(labels: Int32Array, numClasses: number, kind: NoiseKind, rate: number, rng: Rng): NoisyLabels {
  if (!(rate >= 0 && rate <= 1)) throw new Error(`noise rate must be in [0,1], got ${rate}`);
  if (numClasses < 2) throw new Error('label noise needs at least 2 classes');
  const out = new Int32Array(labels);
  const noisy = new Uint8Array(labels.length);
  let changed = 0;
  for (let i = 0; i < labels.length; i++) {
    if (rng.next() >= rate) continue;
    const y = labels[i];
    let z: number;
    if (kind === 'sym') {
      z = rng.int(numClasses - 1);
      if (z >= y) z += 1;
    } else if (kind === 'pair') {
      z = (y + 1) % numClasses;
    } else {
      throw new Error(`unknown noise kind ${kind as string}`);
    }
    out[i] = z;
    noisy[i] = 1;
    changed++;
  }
  return { labels: out, noisy, actualRate: labels.length ? changed / labels.length : 0 };
}

/** Parses "sym-0.4" / "pair-0.4" / "clean". */
export function parseNoiseSpec(spec: string): { kind: NoiseKind; rate: number } | null {
  if (spec === 'clean' || spec === 'none') return null;
  const m = /^(sym|pair)-([0-9.]+)$/.exec(spec);
  if (!m) throw new Error(`bad noise spec "${spec}" (expected sym-<rate>, pair-<rate> or clean)`);
  const rate = Number(m[2]);
  if (!(rate >= 0 && rate <= 1)) throw new Error(`bad noise rate in "${spec}"`);
  return { kind: m[1] as NoiseKind, rate };
}
