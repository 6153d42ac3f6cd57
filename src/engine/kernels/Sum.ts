/**
 * Sum over leading axes (bias gradients: Σ over batch and time of dY) in one pass with the
 * OpenBLAS addon's `sumLeading`. Stock wasm first transposes the reduced axes to the end, then sums.
 * Everything else (other axes, int32, no addon) goes to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { activeBlas, heapOffsets } from './blas_gemm.js';
import { sizeOf, type WasmBackendLike } from './shared.js';

/** The number of leading axes `axis` names (0..k-1 in any order), or -1 when they are not a leading prefix. */
export function leadingAxes(axis: number | number[] | undefined, rank: number): number {
  const list = axis === undefined ? [...Array(rank).keys()] : Array.isArray(axis) ? axis : [axis];
  const norm = [...new Set(list.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  for (let i = 0; i < norm.length; i++) if (norm[i] !== i) return -1;
  return norm.length;
}

export function makeSumKernel(orig: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const addon = activeBlas();
    const x = args.inputs.x as tf.TensorInfo;
    const rank = x.shape.length;
    const k = addon === null || x.dtype !== 'float32' ? -1 : leadingAxes(args.attrs?.axis as number | number[] | undefined, rank);
    // k = rank is a full reduction, which the stock kernel already does in one pass.
    if (addon === null || k <= 0 || k >= rank) return orig.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const rest = x.shape.slice(k);
    const outShape = args.attrs?.keepDims === true ? [...Array(k).fill(1), ...rest] : rest;
    const out = backend.makeOutput(outShape, 'float32');
    const rows = sizeOf(x.shape.slice(0, k));
    const cols = sizeOf(rest);
    if (cols === 0) return out;
    const { heap, offsets } = heapOffsets(backend, x, out);
    addon.sumLeading(heap, offsets[0], offsets[1], rows, cols);
    return out;
  };
}
