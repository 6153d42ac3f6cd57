import type { Rng } from '../engine/rng.js';

/**
 * Seeded mini-batch index generator with fixed batch shapes: each epoch is a fresh seeded permutation,
 * and the last partial batch is dropped (wasm memory only grows; changing shapes fragment it).
 */
export function epochBatches(n: number, batchSize: number, rng: Rng, opts: { shuffle?: boolean; dropLast?: boolean } = {}): Int32Array[] {
  if (batchSize < 1) throw new Error(`batchSize must be ≥ 1, got ${batchSize}`);
  const order = opts.shuffle === false ? Int32Array.from({ length: n }, (_, i) => i) : rng.permutation(n);
  const dropLast = opts.dropLast ?? true;
  const out: Int32Array[] = [];
  for (let s = 0; s < n; s += batchSize) {
    if (s + batchSize > n && dropLast && s > 0) break;
    out.push(order.subarray(s, Math.min(n, s + batchSize)));
  }
  return out;
}

/** Evaluation batches in order, the last one possibly smaller. */
export function sequentialBatches(n: number, batchSize: number): Int32Array[] {
  return epochBatches(n, batchSize, null as unknown as Rng, { shuffle: false, dropLast: false });
}

/** Gathers rows of a row-major matrix with `rowLen` columns into a new Float32Array. */
export function gatherRows(src: Float32Array, rowLen: number, idx: ArrayLike<number>, out?: Float32Array): Float32Array {
  const dst = out ?? new Float32Array(idx.length * rowLen);
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i];
    dst.set(src.subarray(j * rowLen, (j + 1) * rowLen), i * rowLen);
  }
  return dst;
}

/** Gathers integer labels. */
export function gatherLabels(src: Int32Array, idx: ArrayLike<number>): Int32Array {
  const dst = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) dst[i] = src[idx[i]];
  return dst;
}

/**
 * A seeded train/validation split: returns index arrays. Stratification is not needed at our sizes,
 * but the split is a permutation so classes are mixed.
 */
export function trainValSplit(n: number, valFraction: number, rng: Rng): { train: Int32Array; val: Int32Array } {
  if (!(valFraction >= 0 && valFraction < 1)) throw new Error(`valFraction must be in [0,1), got ${valFraction}`);
  const perm = rng.permutation(n);
  const nVal = Math.round(n * valFraction);
  return { val: perm.slice(0, nVal), train: perm.slice(nVal) };
}
