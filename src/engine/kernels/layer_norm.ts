/**
 * `EfftrainLayerNorm` (Ba, Kiros & Hinton 2016): y = (x − μ)·(σ² + ε)^(−1/2)·g + b over the last axis
 * of x [rows, d], as one kernel forward (the addon's `layerNorm`) and one backward
 * (`EfftrainLayerNormGrad`: dx, dg, db together, the statistics recomputed from x). tf.moments and the
 * element-wise ops run ~10 kernels forward and ~15 backward per LayerNorm. Registered for wasm while the
 * OpenBLAS addon is on; `fusedLayerNorm` (src/engine/fused.ts) returns null elsewhere and the caller
 * runs its own ops.
 */
import * as tf from '@tensorflow/tfjs';
import { activeBlas, heapOffsets } from './blas_gemm.js';
import { WASM, type WasmBackendLike } from './shared.js';

export const FUSED_LAYER_NORM = 'EfftrainLayerNorm';
export const FUSED_LAYER_NORM_GRAD = 'EfftrainLayerNormGrad';

function addonOrThrow(name: string) {
  const addon = activeBlas();
  if (addon === null) throw new Error(`${name} needs the OpenBLAS addon`);
  return addon;
}

/** Inputs x [rows, d], g [d], b [d] (float32); attr eps; output y [rows, d]. */
const layerNormKernel: tf.KernelFunc = (args) => {
  const addon = addonOrThrow(FUSED_LAYER_NORM);
  const backend = args.backend as unknown as WasmBackendLike;
  const { x, g, b } = args.inputs as Record<string, tf.TensorInfo>;
  const [rows, d] = x.shape;
  const y = backend.makeOutput(x.shape.slice(), 'float32');
  if (rows === 0) return y;
  const { heap, offsets } = heapOffsets(backend, x, g, b, y);
  addon.layerNorm(heap, offsets[0], offsets[1], offsets[2], offsets[3], rows, d, args.attrs?.eps as number);
  return y;
};

/** Inputs dy, x [rows, d], g [d]; attr eps; outputs [dx, dg, db]. */
const layerNormGradKernel: tf.KernelFunc = (args) => {
  const addon = addonOrThrow(FUSED_LAYER_NORM_GRAD);
  const backend = args.backend as unknown as WasmBackendLike;
  const { dy, x, g } = args.inputs as Record<string, tf.TensorInfo>;
  const [rows, d] = x.shape;
  const outs = [backend.makeOutput(x.shape.slice(), 'float32'), backend.makeOutput([d], 'float32'), backend.makeOutput([d], 'float32')];
  const { heap, offsets } = heapOffsets(backend, dy, x, g, ...outs);
  addon.layerNormGrad(heap, offsets[0], offsets[1], offsets[2], offsets[3], offsets[4], offsets[5], rows, d, args.attrs?.eps as number);
  return outs;
};

export const layerNormConfig: tf.KernelConfig = { kernelName: FUSED_LAYER_NORM, backendName: WASM, kernelFunc: layerNormKernel };
export const layerNormGradConfig: tf.KernelConfig = { kernelName: FUSED_LAYER_NORM_GRAD, backendName: WASM, kernelFunc: layerNormGradKernel };

/** The gradient of `EfftrainLayerNorm`: one backward kernel for all three inputs. */
export const layerNormGradient: tf.GradConfig = {
  kernelName: FUSED_LAYER_NORM,
  inputsToSave: ['x', 'g'],
  gradFunc: (dy, saved, attrs) => {
    const [x, g] = saved;
    const [dx, dg, db] = tf.engine().runKernel(FUSED_LAYER_NORM_GRAD, { dy: dy as tf.Tensor, x, g }, attrs) as unknown as tf.Tensor[];
    return { x: () => dx, g: () => dg, b: () => db };
  },
};

/** True when `fusedLayerNorm` can run now: wasm is the active backend and the addon is on. */
export function fusedLayerNormReady(): boolean {
  return activeBlas() !== null && tf.getBackend() === WASM && tf.getKernel(FUSED_LAYER_NORM, WASM) !== undefined;
}
