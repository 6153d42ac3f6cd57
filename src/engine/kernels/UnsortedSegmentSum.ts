import * as tf from '@tensorflow/tfjs';
import { sizeOf, type WasmBackendLike } from './shared.js';

/**
 * UnsortedSegmentSum (the gradient of gather, hence of embedding layers) as a direct scatter-add
 * over the wasm heap: O(size(x)). The cpu kernel builds one mask per segment, i.e.
 * O(numSegments · size(x)), which is unusable for realistic vocabularies. Accumulates in float64
 * in index order, like the cpu kernel's sum, so results match it; out-of-range ids are dropped
 * (TensorFlow semantics, and what the cpu kernel's masks do).
 */
export const unsortedSegmentSumKernel: tf.KernelFunc = (args) => {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs.x as tf.TensorInfo;
  const ids = args.inputs.segmentIds as tf.TensorInfo;
  const numSegments = Number(args.attrs?.numSegments);
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum on wasm supports float32/int32, got ${x.dtype}`);
  }
  const innerShape = x.shape.slice(ids.shape.length);
  const inner = sizeOf(innerShape);
  const n = sizeOf(ids.shape);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  if (numSegments * inner === 0) return out;
  const acc = new Float64Array(numSegments * inner);
  // Views taken after makeOutput (heap growth detaches older views).
  const xv = backend.typedArrayFromHeap(x);
  const idv = backend.typedArrayFromHeap(ids);
  for (let i = 0; i < n; i++) {
    const s = idv[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) acc[dst + j] += xv[src + j];
  }
  backend.typedArrayFromHeap(out).set(acc);
  return out;
};
