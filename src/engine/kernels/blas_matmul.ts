/**
 * BatchMatMul / _FusedMatMul through OpenBLAS (see blas_gemm.ts): transposes go to BLAS as flags
 * (no Transpose kernel), a shared operand gets stride 0, and `a`'s batch is folded into its rows
 * when `b` is shared. The fused epilogue (bias, activation) runs on the output in place: the bias
 * is written into C first and GEMM accumulates onto it (beta = 1), then the activation.
 *
 * Returns null for anything it does not serve (non-float32, broadcast batch shapes other than a
 * shared operand, prelu, products under BLAS_MIN_MACS); the caller then uses the XNNPACK path.
 */
import * as tf from '@tensorflow/tfjs';
import type { BlasAddon } from '../blas.js';
import { BLAS_MIN_MACS, gemm } from './blas_gemm.js';
import { sizeOf, type WasmBackendLike } from './shared.js';

const ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'leakyrelu', 'sigmoid', 'elu']);

function batchDims(shape: number[], rank: number): number[] {
  const dims = shape.slice(0, -2);
  while (dims.length < rank - 2) dims.unshift(1);
  return dims;
}

/** Applies tfjs's fused activation to `v` in place (same formulas as tfjs-core's applyActivation). */
function activate(v: Float32Array, activation: string, alpha: number): void {
  const n = v.length;
  switch (activation) {
    case 'relu':
      for (let i = 0; i < n; i++) if (v[i] < 0) v[i] = 0;
      break;
    case 'relu6':
      for (let i = 0; i < n; i++) v[i] = v[i] < 0 ? 0 : v[i] > 6 ? 6 : v[i];
      break;
    case 'leakyrelu':
      for (let i = 0; i < n; i++) if (v[i] < 0) v[i] *= alpha;
      break;
    case 'sigmoid':
      for (let i = 0; i < n; i++) v[i] = 1 / (1 + Math.exp(-v[i]));
      break;
    case 'elu':
      for (let i = 0; i < n; i++) if (v[i] < 0) v[i] = Math.exp(v[i]) - 1;
      break;
  }
}

/** See the module comment. */
export function blasMatMul(addon: BlasAddon, args: Parameters<tf.KernelFunc>[0], fused: boolean): tf.TensorInfo | null {
  const backend = args.backend as unknown as WasmBackendLike;
  const attrs = args.attrs ?? {};
  const a = args.inputs.a as tf.TensorInfo;
  const b = args.inputs.b as tf.TensorInfo;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return null;
  const tA = attrs.transposeA === true;
  const tB = attrs.transposeB === true;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = tA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const n = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  if ((tB ? b.shape[rb - 1] : b.shape[rb - 2]) !== k) return null;
  let bias: tf.TensorInfo | null = null;
  let activation = 'linear';
  let alpha = 0;
  if (fused) {
    if (args.inputs.preluActivationWeights != null) return null;
    activation = String(attrs.activation ?? 'linear');
    alpha = Number(attrs.leakyreluAlpha ?? 0.2);
    if (!ACTIVATIONS.has(activation)) return null;
    bias = (args.inputs.bias as tf.TensorInfo | undefined) ?? null;
    if (bias !== null && bias.dtype !== 'float32') return null;
  }
  const rank = Math.max(ra, rb);
  const ba = batchDims(a.shape, rank);
  const bb = batchDims(b.shape, rank);
  const na = sizeOf(ba);
  const nb = sizeOf(bb);
  let outBatch: number[];
  if (ba.every((d, i) => d === bb[i])) outBatch = ba;
  else if (na === 1) outBatch = bb;
  else if (nb === 1) outBatch = ba;
  else return null;
  const batch = sizeOf(outBatch);
  if (batch * m * n * k < BLAS_MIN_MACS) return null;
  const outShape = [...outBatch, m, n];
  const outSize = batch * m * n;
  if (bias !== null) {
    // The stock wasm kernel takes rank-1 bias only ([N], or [1] broadcast); anything else goes
    // there so it fails the same way.
    if (bias.shape.length !== 1 || (bias.shape[0] !== n && bias.shape[0] !== 1)) return null;
  }
  const out = backend.makeOutput(outShape, 'float32');
  if (outSize === 0) return out;
  if (bias !== null) {
    const ov = backend.typedArrayFromHeap(out) as Float32Array;
    const bv = backend.typedArrayFromHeap(bias) as Float32Array;
    if (bv.length === 1) ov.fill(bv[0]);
    else for (let r = 0; r < outSize; r += n) ov.set(bv, r);
  }
  const beta = bias !== null ? 1 : 0;
  if (nb === 1 && na > 1 && !tA) {
    // [B, M, K] @ [K, N]: one [B·M, K] @ [K, N] product.
    gemm(addon, backend, { a, b, c: out, transA: false, transB: tB, m: batch * m, n, k, beta });
  } else {
    gemm(addon, backend, {
      a,
      b,
      c: out,
      transA: tA,
      transB: tB,
      m,
      n,
      k,
      batch,
      aStride: na === 1 ? 0 : m * k,
      bStride: nb === 1 ? 0 : k * n,
      cStride: m * n,
      beta,
    });
  }
  if (activation !== 'linear') activate(backend.typedArrayFromHeap(out) as Float32Array, activation, alpha);
  return out;
}
