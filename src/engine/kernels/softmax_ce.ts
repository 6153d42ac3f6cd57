/**
 * `EfftrainSoftmaxCE`: the mean softmax cross-entropy of logits [rows, cols] against labels of the same
 * shape as one kernel (the addon's `softmaxCE`), with its gradient `EfftrainSoftmaxCEGrad` as one more:
 * tf.losses.softmaxCrossEntropy (and an LM's −mean Σ y·logSoftmax) otherwise runs ~25 small kernels
 * forward and backward. Registered for wasm while the OpenBLAS addon is on; `fusedSoftmaxCrossEntropy`
 * (src/engine/fused.ts) falls back to the unfused ops everywhere else, so plain wasm is unchanged.
 *
 * The logits gradient follows tfjs's rule, dy·(softmax(z) − y) per row (correct for labels that sum to
 * 1); the labels gradient is its negation, as in tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import { activeBlas, heapOffsets } from './blas_gemm.js';
import { WASM, type WasmBackendLike } from './shared.js';

export const FUSED_SOFTMAX_CE = 'EfftrainSoftmaxCE';
export const FUSED_SOFTMAX_CE_GRAD = 'EfftrainSoftmaxCEGrad';

function addonOrThrow(name: string) {
  const addon = activeBlas();
  if (addon === null) throw new Error(`${name} needs the OpenBLAS addon (use the unfused loss)`);
  return addon;
}

/** Inputs labels, logits (float32 [rows, cols]); output the mean loss (float32 scalar). */
const softmaxCEKernel: tf.KernelFunc = (args) => {
  const addon = addonOrThrow(FUSED_SOFTMAX_CE);
  const backend = args.backend as unknown as WasmBackendLike;
  const { labels, logits } = args.inputs as Record<string, tf.TensorInfo>;
  const [rows, cols] = logits.shape;
  const out = backend.makeOutput([], 'float32');
  const { heap, offsets } = heapOffsets(backend, labels, logits, out);
  addon.softmaxCE(heap, offsets[0], offsets[1], offsets[2], rows, cols);
  return out;
};

/** Inputs dy (scalar), labels, logits; output d loss / d logits. */
const softmaxCEGradKernel: tf.KernelFunc = (args) => {
  const addon = addonOrThrow(FUSED_SOFTMAX_CE_GRAD);
  const backend = args.backend as unknown as WasmBackendLike;
  const { dy, labels, logits } = args.inputs as Record<string, tf.TensorInfo>;
  const [rows, cols] = logits.shape;
  const dx = backend.makeOutput(logits.shape, 'float32');
  const { heap, offsets } = heapOffsets(backend, labels, logits, dy, dx);
  addon.softmaxCEGrad(heap, offsets[0], offsets[1], offsets[2], offsets[3], rows, cols);
  return dx;
};

export const softmaxCEConfig: tf.KernelConfig = { kernelName: FUSED_SOFTMAX_CE, backendName: WASM, kernelFunc: softmaxCEKernel };
export const softmaxCEGradConfig: tf.KernelConfig = { kernelName: FUSED_SOFTMAX_CE_GRAD, backendName: WASM, kernelFunc: softmaxCEGradKernel };

/** The gradient of `EfftrainSoftmaxCE` (registered once; it only runs where the forward kernel ran). */
export const softmaxCEGradient: tf.GradConfig = {
  kernelName: FUSED_SOFTMAX_CE,
  inputsToSave: ['labels', 'logits'],
  gradFunc: (dy, saved) => {
    const [labels, logits] = saved;
    const dLogits = () => tf.engine().runKernel(FUSED_SOFTMAX_CE_GRAD, { dy: dy as tf.Tensor, labels, logits }) as tf.Tensor;
    return { logits: dLogits, labels: () => tf.neg(dLogits()) };
  },
};

/** True when `fusedSoftmaxCrossEntropy` can run now: wasm is the active backend and the addon is on. */
export function fusedSoftmaxCEReady(): boolean {
  return activeBlas() !== null && tf.getBackend() === WASM && tf.getKernel(FUSED_SOFTMAX_CE, WASM) !== undefined;
}
