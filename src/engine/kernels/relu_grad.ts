/**
 * The Relu gradient as one kernel, `EfftrainReluGrad` (the addon's `reluGrad`: dx = dy·step(x) in one
 * pass), instead of tfjs's Step, Cast and Multiply. While the OpenBLAS path is installed, Relu's
 * registered gradient is replaced by `reluGradient`, which uses the kernel when wasm runs with the
 * addon and tfjs's own gradient everywhere else; the products are the same float32 ones, so the
 * result is bit-identical.
 */
import * as tf from '@tensorflow/tfjs';
import { activeBlas, heapOffsets } from './blas_gemm.js';
import { sizeOf, WASM, type WasmBackendLike } from './shared.js';

export const FUSED_RELU_GRAD = 'EfftrainReluGrad';

/** Inputs dy, x (float32, same shape); output dy·step(x). */
const reluGradKernel: tf.KernelFunc = (args) => {
  const addon = activeBlas();
  if (addon === null) throw new Error(`${FUSED_RELU_GRAD} needs the OpenBLAS addon`);
  const backend = args.backend as unknown as WasmBackendLike;
  const { dy, x } = args.inputs as Record<string, tf.TensorInfo>;
  const dx = backend.makeOutput(x.shape, 'float32');
  const n = sizeOf(x.shape);
  if (n === 0) return dx;
  const { heap, offsets } = heapOffsets(backend, dy, x, dx);
  addon.reluGrad(heap, offsets[0], offsets[1], offsets[2], n);
  return dx;
};

export const reluGradConfig: tf.KernelConfig = { kernelName: FUSED_RELU_GRAD, backendName: WASM, kernelFunc: reluGradKernel };

/** Relu's gradient: the fused kernel on wasm with the addon, `orig` (tfjs's) otherwise. */
export function makeReluGradient(orig: tf.GradConfig): tf.GradConfig {
  return {
    ...orig,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const d = dy as tf.Tensor;
      const fused = activeBlas() !== null && tf.getBackend() === WASM && tf.getKernel(FUSED_RELU_GRAD, WASM) !== undefined;
      if (!fused || x.dtype !== 'float32' || d.dtype !== 'float32' || !tf.util.arraysEqual(x.shape, d.shape)) return orig.gradFunc(dy, saved, attrs);
      return { x: () => tf.engine().runKernel(FUSED_RELU_GRAD, { dy: d, x }) as tf.Tensor };
    },
  };
}
