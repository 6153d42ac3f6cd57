/**
 * `EfftrainGelu`: the tanh GELU (Hendrycks & Gimpel 2016) as src/models/ffn.ts computes it,
 * y = x·σ(x·(c + k·x²)), as one vectorised pass of the addon's `gelu`, and its gradient
 * `EfftrainGeluGrad` as one more; the element-wise ops take 5 kernels forward and 7 backward, each a full
 * pass over the [tokens, d_ff] activation. σ goes through a polynomial exp (about 1 ulp), so values
 * agree with the unfused ops to float32 rounding, not bit for bit. Registered for wasm while the OpenBLAS
 * addon is on; `fusedGelu` (src/engine/fused.ts) returns null elsewhere.
 */
import * as tf from '@tensorflow/tfjs';
import { activeBlas, heapOffsets } from './blas_gemm.js';
import { sizeOf, WASM, type WasmBackendLike } from './shared.js';

export const FUSED_GELU = 'EfftrainGelu';
export const FUSED_GELU_GRAD = 'EfftrainGeluGrad';

function addonOrThrow(name: string) {
  const addon = activeBlas();
  if (addon === null) throw new Error(`${name} needs the OpenBLAS addon`);
  return addon;
}

const geluKernel: tf.KernelFunc = (args) => {
  const addon = addonOrThrow(FUSED_GELU);
  const backend = args.backend as unknown as WasmBackendLike;
  const x = args.inputs.x as tf.TensorInfo;
  const y = backend.makeOutput(x.shape.slice(), 'float32');
  const n = sizeOf(x.shape);
  if (n === 0) return y;
  const { heap, offsets } = heapOffsets(backend, x, y);
  addon.gelu(heap, offsets[0], offsets[1], n);
  return y;
};

const geluGradKernel: tf.KernelFunc = (args) => {
  const addon = addonOrThrow(FUSED_GELU_GRAD);
  const backend = args.backend as unknown as WasmBackendLike;
  const { dy, x } = args.inputs as Record<string, tf.TensorInfo>;
  const dx = backend.makeOutput(x.shape.slice(), 'float32');
  const n = sizeOf(x.shape);
  if (n === 0) return dx;
  const { heap, offsets } = heapOffsets(backend, dy, x, dx);
  addon.geluGrad(heap, offsets[0], offsets[1], offsets[2], n);
  return dx;
};

export const geluConfig: tf.KernelConfig = { kernelName: FUSED_GELU, backendName: WASM, kernelFunc: geluKernel };
export const geluGradConfig: tf.KernelConfig = { kernelName: FUSED_GELU_GRAD, backendName: WASM, kernelFunc: geluGradKernel };

export const geluGradient: tf.GradConfig = {
  kernelName: FUSED_GELU,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    return { x: () => tf.engine().runKernel(FUSED_GELU_GRAD, { dy: dy as tf.Tensor, x }) as tf.Tensor };
  },
};

/** True when `fusedGelu` can run now: wasm is the active backend and the addon is on. */
export function fusedGeluReady(): boolean {
  return activeBlas() !== null && tf.getBackend() === WASM && tf.getKernel(FUSED_GELU, WASM) !== undefined;
}
