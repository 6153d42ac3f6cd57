/**
 * `EfftrainAdamW`: one AdamW step for one parameter as a single kernel (the addon's `adamw`, one pass
 * over p, m, v and g), instead of the ~12 element-wise kernels the unfused update runs. Registered
 * for wasm; it runs only while the OpenBLAS addon is active, so plain wasm is unchanged.
 *
 * The addon does the same float32 operations in the same order as the unfused ops (see
 * native/blas.c), so its results are bit-identical to them.
 */
import * as tf from '@tensorflow/tfjs';
import { activeBlas, heapOffsets } from './blas_gemm.js';
import { sizeOf, WASM, type WasmBackendLike } from './shared.js';

export const FUSED_ADAMW = 'EfftrainAdamW';

/** Kernel function: inputs p, m, v, g (float32, same shape); attr `coefficients` (8 numbers, see BlasAddon.adamw); outputs [p', m', v']. */
export const fusedAdamWKernel: tf.KernelFunc = (args) => {
  const addon = activeBlas();
  if (addon === null) throw new Error(`${FUSED_ADAMW} needs the OpenBLAS addon (use the unfused update)`);
  const backend = args.backend as unknown as WasmBackendLike;
  const { p, m, v, g } = args.inputs as Record<string, tf.TensorInfo>;
  const coefficients = args.attrs?.coefficients as number[];
  const outs = [p, m, v].map((t) => backend.makeOutput(t.shape, 'float32'));
  const { heap, offsets } = heapOffsets(backend, p, m, v, g, ...outs);
  addon.adamw(heap, offsets, sizeOf(p.shape), coefficients);
  return outs;
};

export const fusedAdamWConfig: tf.KernelConfig = { kernelName: FUSED_ADAMW, backendName: WASM, kernelFunc: fusedAdamWKernel };

/** True when `fusedAdamW` can run now: wasm is the active backend and the addon is on. */
export function fusedAdamWReady(): boolean {
  return activeBlas() !== null && tf.getBackend() === WASM && tf.getKernel(FUSED_ADAMW, WASM) !== undefined;
}
