/**
 * _FusedMatMul (matmul + bias + activation, what tfjs-layers' Dense runs) for wasm: the BatchMatMul
 * wrapper with the fused inputs passed through (see BatchMatMul.ts; the OpenBLAS path applies
 * bias and activation itself, blas_matmul.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { makeMatMulKernel } from './BatchMatMul.js';

export function makeFusedMatMulKernel(orig: tf.KernelConfig, transpose: tf.KernelFunc): tf.KernelFunc {
  return makeMatMulKernel(orig, transpose, true);
}
