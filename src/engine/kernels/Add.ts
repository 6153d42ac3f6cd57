/**
 * Add with a row-vector operand ([..., N] + [N], a bias add) in one pass of the OpenBLAS addon's
 * `addRow`; stock wasm takes its general broadcasting path for it. The sums are the same float32
 * additions, so results are bit-identical. Everything else goes to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { activeBlas, heapOffsets } from './blas_gemm.js';
import { sizeOf, type WasmBackendLike } from './shared.js';

/** Below this many outputs the stock kernel's call is as cheap. */
const MIN_SIZE = 4096;

export function makeAddKernel(orig: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const addon = activeBlas();
    const { a, b } = args.inputs as Record<string, tf.TensorInfo>;
    if (addon === null || a.dtype !== 'float32' || b.dtype !== 'float32') return orig.kernelFunc(args);
    // Which operand is the row: b in x + bias, a in bias + x (addition commutes bit for bit).
    const [x, row] = b.shape.length === 1 && a.shape.length >= 2 ? [a, b] : a.shape.length === 1 && b.shape.length >= 2 ? [b, a] : [null, null];
    if (x === null || row === null) return orig.kernelFunc(args);
    const cols = row.shape[0];
    const size = sizeOf(x.shape);
    if (x.shape[x.shape.length - 1] !== cols || size < MIN_SIZE) return orig.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(x.shape.slice(), 'float32');
    const { heap, offsets } = heapOffsets(backend, x, row, out);
    addon.addRow(heap, offsets[0], offsets[1], offsets[2], size / cols, cols);
    return out;
  };
}
