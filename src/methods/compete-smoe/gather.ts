/**
 * Row gather with a gather-only gradient, for token dispatch on the wasm backend.
 *
 * tfjs' own gradient of `tf.gather` is `UnsortedSegmentSum`, which the wasm backend lacks (tfjs 4.22). The
 * dispatch of a MoE layer knows its index map in JS, so the gradient can be written as gathers too: row m
 * of ∂src is Σ_j ∂y[pos_j(m)] over the (at most `multiplicity`) output rows that read row m, i.e. one
 * gather of ∂y per multiplicity level.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Inverse index lists of `idx` over `rows` source rows: level j holds, for every source row m, the
 * position of its (j+1)-th reader in `idx`, or `idx.length` (a zero row) when it has fewer readers.
 * Entries of `idx` equal to `rows` (the zero-row sentinel) have no source.
 */
export function inverseIndex(idx: Int32Array, rows: number): Int32Array[] {
  const count = new Int32Array(rows);
  for (const m of idx) if (m < rows) count[m]++;
  let levels = 0;
  for (const c of count) levels = Math.max(levels, c);
  const out = Array.from({ length: levels }, () => new Int32Array(rows).fill(idx.length));
  count.fill(0);
  for (let p = 0; p < idx.length; p++) {
    const m = idx[p];
    if (m < rows) out[count[m]++][m] = p;
  }
  return out;
}

/**
 * y[p] = src[idx[p]] for idx[p] < rows, and 0 for idx[p] = rows (the sentinel of an empty slot).
 * `src` is [rows, d]; the result is [idx.length, d]; the gradient flows to `src` through gathers only.
 */
export function gatherRows(src: tf.Tensor2D, idx: Int32Array): tf.Tensor2D {
  const [rows, d] = src.shape;
  for (const m of idx) if (m < 0 || m > rows) throw new Error(`gatherRows: index ${m} outside [0, ${rows}]`);
  const f = tf.customGrad((...args: unknown[]) => {
    const s = args[0] as tf.Tensor2D;
    const padded = tf.concat([s, tf.zeros([1, d])], 0);
    const value = tf.gather(padded, tf.tensor1d(idx, 'int32')) as tf.Tensor2D;
    return {
      value,
      gradFunc: (dy: tf.Tensor) => {
        const dyPad = tf.concat([dy as tf.Tensor2D, tf.zeros([1, d])], 0);
        const inv = inverseIndex(idx, rows);
        if (inv.length === 0) return [tf.zeros([rows, d])];
        const parts = inv.map((ix) => tf.gather(dyPad, tf.tensor1d(ix, 'int32')));
        return [parts.length === 1 ? parts[0] : tf.addN(parts)];
      },
    };
  });
  return f(src) as tf.Tensor2D;
}
