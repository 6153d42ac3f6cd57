import type { Rng } from '../engine/rng.js';

export type NoiseKind = 'sym' | 'pair' | 'conf';

/**
 * Confusable class pairs of Fashion-MNIST (class indices): T-shirt/top ↔ Shirt and Pullover ↔ Coat — the classes the
 * superloss-noisy-labels experiment treats as confusable. Used by `conf-<rate>` noise unless other pairs are given.
 */
export const FASHION_CONFUSABLE_PAIRS: ReadonlyArray<readonly [number, number]> = [
  [0, 6],
  [2, 4],
];

export interface NoisyLabels {
  labels: Int32Array;
  /** 1 where the label was changed (a noisy sample), 0 where it is clean. */
  noisy: Uint8Array;
  /** Fraction of labels actually changed. */
  actualRate: number;
}

export interface LabelNoiseOptions {
  /** Class pairs for `conf` noise (each class in at most one pair); default FASHION_CONFUSABLE_PAIRS. */
  pairs?: ReadonlyArray<readonly [number, number]>;
}

/** Partner class per class for `conf` noise (−1 = class in no pair); throws on out-of-range or repeated classes. */
export function pairPartners(pairs: ReadonlyArray<readonly [number, number]>, numClasses: number): Int32Array {
  const partner = new Int32Array(numClasses).fill(-1);
  for (const [a, b] of pairs) {
    for (const c of [a, b]) {
      if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new Error(`confusable pair [${a}, ${b}]: class ${c} is not in 0..${numClasses - 1}`);
      if (partner[c] !== -1) throw new Error(`confusable pairs: class ${c} appears in more than one pair`);
    }
    if (a === b) throw new Error(`confusable pair [${a}, ${b}] pairs a class with itself`);
    partner[a] = b;
    partner[b] = a;
  }
  return partner;
}

/**
 * Corrupts labels with rate r.
 * - `sym` (symmetric): each sample with probability r gets a label drawn uniformly from the *other* C−1 classes
 *   (so the realised noise rate is r; the convention of Han et al. 2018 "Co-teaching").
 * - `pair` (pair-flip): each sample with probability r is flipped to the next class (c → c+1 mod C).
 * - `conf` (confusable pairs): each sample of a class in one of `opts.pairs` is flipped with probability r to the
 *   other class of its pair (both directions, e.g. Shirt ↔ T-shirt); classes in no pair keep their labels, so the
 *   realised overall rate is r × (share of samples in paired classes).
 * Returns the noisy labels and the noise mask (SuperLoss's σ-AUROC needs it).
 */
export function injectLabelNoise(labels: Int32Array, numClasses: number, kind: NoiseKind, rate: number, rng: Rng, opts: LabelNoiseOptions = {}): NoisyLabels {
  if (!(rate >= 0 && rate <= 1)) throw new Error(`noise rate must be in [0,1], got ${rate}`);
  if (numClasses < 2) throw new Error('label noise needs at least 2 classes');
  const partner = kind === 'conf' ? pairPartners(opts.pairs ?? FASHION_CONFUSABLE_PAIRS, numClasses) : null;
  const out = new Int32Array(labels);
  const noisy = new Uint8Array(labels.length);
  let changed = 0;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (partner && partner[y] < 0) continue;
    if (rng.next() >= rate) continue;
    let z: number;
    if (kind === 'sym') {
      z = rng.int(numClasses - 1);
      if (z >= y) z += 1;
    } else if (kind === 'pair') {
      z = (y + 1) % numClasses;
    } else if (partner) {
      z = partner[y];
    } else {
      throw new Error(`unknown noise kind ${kind as string}`);
    }
    out[i] = z;
    noisy[i] = 1;
    changed++;
  }
  return { labels: out, noisy, actualRate: labels.length ? changed / labels.length : 0 };
}

/** Parses "sym-0.4" / "pair-0.4" / "conf-0.4" / "clean". */
export function parseNoiseSpec(spec: string): { kind: NoiseKind; rate: number } | null {
  if (spec === 'clean' || spec === 'none') return null;
  const m = /^(sym|pair|conf)-([0-9.]+)$/.exec(spec);
  if (!m) throw new Error(`bad noise spec "${spec}" (expected sym-<rate>, pair-<rate>, conf-<rate> or clean)`);
  const rate = Number(m[2]);
  if (!(rate >= 0 && rate <= 1)) throw new Error(`bad noise rate in "${spec}"`);
  return { kind: m[1] as NoiseKind, rate };
}
