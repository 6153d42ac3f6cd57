/**
 * `EfftrainBroadcastTo`: x broadcast to `shape` (x has the same rank, with 1 on the broadcast axes) in
 * one pass of the OpenBLAS addon's `broadcast`. tf.broadcastTo runs wasm's Tile kernel, which
 * allocates per element and was slower than the tfjs all-ones product it would replace. Used by the
 * Sum/Mean gradients of kernels/reduce_grads.ts; copies values, so results are exact.
 */
import * as tf from '@tensorflow/tfjs';
import { activeBlas, heapOffsets } from './blas_gemm.js';
import { sizeOf, WASM, type WasmBackendLike } from './shared.js';

export const FUSED_BROADCAST = 'EfftrainBroadcastTo';

/** Input x (float32); attr `shape` (x's rank, equal to x's size on every axis where x's is not 1). */
const broadcastKernel: tf.KernelFunc = (args) => {
  const addon = activeBlas();
  if (addon === null) throw new Error(`${FUSED_BROADCAST} needs the OpenBLAS addon`);
  const backend = args.backend as unknown as WasmBackendLike;
  const x = args.inputs.x as tf.TensorInfo;
  const shape = (args.attrs?.shape as number[]).slice();
  const out = backend.makeOutput(shape, 'float32');
  if (sizeOf(shape) === 0) return out;
  // Row-major element strides of x, 0 where x is broadcast.
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = x.shape[d] === 1 && shape[d] !== 1 ? 0 : s;
    s *= x.shape[d];
  }
  const { heap, offsets } = heapOffsets(backend, x, out);
  addon.broadcast(heap, offsets[0], offsets[1], shape, strides);
  return out;
};

export const broadcastConfig: tf.KernelConfig = { kernelName: FUSED_BROADCAST, backendName: WASM, kernelFunc: broadcastKernel };

/** Its gradient (for higher-order gradients): dy summed over the broadcast axes. */
export const broadcastGradient: tf.GradConfig = {
  kernelName: FUSED_BROADCAST,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    const d = dy as tf.Tensor;
    const axes = x.shape.flatMap((n, i) => (n === 1 && d.shape[i] !== 1 ? [i] : []));
    return { x: () => (axes.length ? tf.sum(d, axes, true) : d.clone()) };
  },
};

/**
 * x (rank r, float32) broadcast to `shape` (rank r) as one kernel on wasm with the addon; null elsewhere
 * (the caller then uses its own ops).
 */
export function fusedBroadcastTo(x: tf.Tensor, shape: number[]): tf.Tensor | null {
  if (activeBlas() === null || tf.getBackend() !== WASM || tf.getKernel(FUSED_BROADCAST, WASM) === undefined) return null;
  if (x.dtype !== 'float32' || x.rank !== shape.length || x.rank < 1 || x.rank > 8) return null;
  if (x.shape.some((n, i) => n !== 1 && n !== shape[i])) return null;
  return tf.engine().runKernel(FUSED_BROADCAST, { x }, { shape } as unknown as tf.NamedAttrMap) as tf.Tensor;
}
