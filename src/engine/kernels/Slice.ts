/**
 * Slice and SplitV reading the input through a view of the wasm heap. The stock wasm Slice reads
 * its input with `readSync`, which copies the whole tensor into a fresh ArrayBuffer on every call
 * (SplitV does that once per output); for a transformer's q/k/v split that is three copies of the
 * [tokens, 3d] activation per layer, and the external-memory churn triggers V8 collections.
 * Same values as stock (a copy is a copy). Installed with the OpenBLAS path only.
 */
import * as tf from '@tensorflow/tfjs';
import { sizeOf, type TypedArray, type WasmBackendLike } from './shared.js';

/** Copies x[begin : begin + size] (rank ≤ 4, numeric dtypes) into `out` through heap views. */
function copySlice(backend: WasmBackendLike, x: tf.TensorInfo, out: tf.TensorInfo, begin: number[], size: number[]): void {
  const xv = backend.typedArrayFromHeap(x);
  const ov = backend.typedArrayFromHeap(out);
  // Pad to rank 4: [a, b, c, d], strides of x in elements.
  const pad = 4 - x.shape.length;
  const shape = [...Array(pad).fill(1), ...x.shape];
  const b = [...Array(pad).fill(0), ...begin];
  const s = [...Array(pad).fill(1), ...size];
  const s3 = shape[3];
  const s2 = shape[2] * s3;
  const s1 = shape[1] * s2;
  const row = s[3];
  let o = 0;
  for (let i = b[0]; i < b[0] + s[0]; i++) {
    for (let j = b[1]; j < b[1] + s[1]; j++) {
      for (let k = b[2]; k < b[2] + s[2]; k++) {
        const start = i * s1 + j * s2 + k * s3 + b[3];
        (ov as TypedArray).set((xv as TypedArray).subarray(start, start + row), o);
        o += row;
      }
    }
  }
}

function servable(x: tf.TensorInfo): boolean {
  return x.dtype !== 'string' && x.shape.length >= 1 && x.shape.length <= 4;
}

export function makeSliceKernel(orig: tf.KernelConfig, useHeap: () => boolean): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!useHeap() || !servable(x)) return orig.kernelFunc(args);
    const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tf.Tensor, args.attrs?.begin as number[], args.attrs?.size as number[]);
    const backend = args.backend as unknown as WasmBackendLike;
    const out = backend.makeOutput(size, x.dtype);
    if (sizeOf(size) > 0) copySlice(backend, x, out, begin, size);
    return out;
  };
}

export function makeSplitVKernel(orig: tf.KernelConfig, useHeap: () => boolean): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!useHeap() || !servable(x)) return orig.kernelFunc(args);
    const axis = tf.util.parseAxisParam(args.attrs?.axis as number, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, args.attrs?.numOrSizeSplits as number[] | number, axis);
    const backend = args.backend as unknown as WasmBackendLike;
    // All outputs first: makeOutput may grow the heap, which detaches earlier views.
    const outs = sizes.map((s) => {
      const shape = x.shape.slice();
      shape[axis] = s;
      return backend.makeOutput(shape, x.dtype);
    });
    const begin = new Array<number>(x.shape.length).fill(0);
    outs.forEach((out) => {
      if (sizeOf(out.shape) > 0) copySlice(backend, x, out, begin.slice(), out.shape);
      begin[axis] += out.shape[axis];
    });
    return outs;
  };
}
