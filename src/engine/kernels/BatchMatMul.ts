/**
 * BatchMatMul (and, with `fused`, _FusedMatMul) for wasm: keeps every product on XNNPACK.
 *
 * The stock wasm kernels only reach XNNPACK when `transposeA = transposeB = false` and both batch
 * sizes are 1; everything else runs a naive blocked loop that is ~10x slower. Backprop always asks
 * for transposed products, so every Dense backward pass was slow. The wrapper transposes flagged
 * inputs explicitly (wasm `Transpose` kernel, last two axes), calls the stock kernel with both
 * flags false, and frees the temporaries. When `a` is batched and `b` is shared (batch 1), `a`'s
 * batch is folded into its rows (`[B*M, K] @ [K, N]`) so the product also stays on XNNPACK. When
 * both are batched (attention), products of at least SPLIT_MIN_MACS per entry run as one XNNPACK
 * call per batch entry.
 *
 * With the OpenBLAS addon active (blas_matmul.ts), products it serves skip all of this and run as
 * sgemm on the wasm heap; the rest take the XNNPACK path above.
 */
import * as tf from '@tensorflow/tfjs';
import { activeBlas } from './blas_gemm.js';
import { blasMatMul } from './blas_matmul.js';
import { copySlice, sizeOf, type WasmBackendLike } from './shared.js';

/**
 * Below this many multiply-adds per batch entry, per-entry XNNPACK calls cost more than they save.
 * Measured (2-core x86, Node 20): 32x(16x16@16x16) split 0.57 ms vs stock 0.24; 8192 MACs about
 * even; 16384 MACs 0.34 vs 0.80 ms; 16x(256x64@64x256) 12.7 vs 97 ms.
 */
const SPLIT_MIN_MACS = 8192;

/** Swaps the last two axes of `x` with the stock wasm Transpose kernel; the caller frees the result. */
function swapLastTwo(x: tf.TensorInfo, backend: WasmBackendLike, transpose: tf.KernelFunc): tf.TensorInfo {
  const r = x.shape.length;
  const perm: number[] = [];
  for (let i = 0; i < r - 2; i++) perm.push(i);
  perm.push(r - 1, r - 2);
  return transpose({ inputs: { x }, backend, attrs: { perm } }) as tf.TensorInfo;
}

/**
 * Builds the wrapped kernelFunc for `BatchMatMul` or `_FusedMatMul`.
 * `orig` is called with both transpose flags false, which is the only case the wasm kernel sends
 * to XNNPACK (and only when its batch sizes are 1, hence the fold below).
 */
export function makeMatMulKernel(orig: tf.KernelConfig, transpose: tf.KernelFunc, fused: boolean): tf.KernelFunc {
  return (args) => {
    const blas = activeBlas();
    if (blas !== null) {
      const out = blasMatMul(blas, args, fused);
      if (out !== null) return out;
    }
    const backend = args.backend as WasmBackendLike;
    const attrs = args.attrs ?? {};
    const a = args.inputs.a as tf.TensorInfo;
    const b = args.inputs.b as tf.TensorInfo;
    const tA = attrs.transposeA === true;
    const tB = attrs.transposeB === true;
    const temps: tf.TensorInfo[] = [];
    let inputs = args.inputs;
    try {
      const bias = fused ? (args.inputs.bias as tf.TensorInfo | undefined) : undefined;
      if (bias !== undefined && bias !== null) {
        const wide = broadcastBias(bias, tB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1], backend);
        if (wide !== bias) {
          temps.push(wide);
          inputs = { ...inputs, bias: wide };
        }
      }
      let a2 = a;
      let b2 = b;
      if (tA) {
        a2 = swapLastTwo(a, backend, transpose);
        temps.push(a2);
      }
      if (tB) {
        b2 = swapLastTwo(b, backend, transpose);
        temps.push(b2);
      }
      // Fold a's batch into rows when b is shared across the batch: [B, M, K] @ [K, N] equals
      // reshape([B*M, K] @ [K, N], [B, M, N]) element for element (same dot products), and the
      // folded product has batch 1 so XNNPACK takes it. A prelu weight tensor could broadcast
      // against the batch dims, so the fused kernel folds only without one.
      const aBatch = sizeOf(a2.shape.slice(0, -2));
      const bBatch = sizeOf(b2.shape.slice(0, -2));
      const canFold =
        aBatch > 1 && bBatch === 1 && a2.shape.length >= 3 && (!fused || args.inputs.preluActivationWeights == null);
      let outShape: number[] | null = null;
      if (canFold) {
        const m = a2.shape[a2.shape.length - 2];
        const k = a2.shape[a2.shape.length - 1];
        const n = b2.shape[b2.shape.length - 1];
        const rank = Math.max(a2.shape.length, b2.shape.length);
        const batchDims = a2.shape.slice(0, -2);
        while (batchDims.length < rank - 2) batchDims.unshift(1);
        outShape = [...batchDims, m, n];
        // A TensorInfo that shares a2's data but claims a different shape: the stock kernels only
        // read through it (BatchMatMul reshapes with incRef/decRef, _FusedMatMul reads directly).
        a2 = { dataId: a2.dataId, shape: [1, aBatch * m, k], dtype: a2.dtype };
        b2 = { dataId: b2.dataId, shape: [1, k, n], dtype: b2.dtype };
      }
      const plainAttrs = { ...attrs, transposeA: false, transposeB: false };
      if (!canFold && shouldSplit(a2, b2, fused ? args.inputs.preluActivationWeights : undefined)) {
        return splitBatches(orig, { ...inputs, a: a2, b: b2 }, backend, plainAttrs);
      }
      const out = orig.kernelFunc({ inputs: { ...inputs, a: a2, b: b2 }, backend, attrs: plainAttrs }) as tf.TensorInfo;
      if (outShape !== null) out.shape = outShape;
      return out;
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
}

/**
 * A one-element bias (shape [] or [1]) widened to [n]. The stock wasm kernel rejects rank 0, and on
 * its XNNPACK path reads a [1] bias as if it had n entries (only column 0 got it), so both are
 * widened here; any other bias is returned unchanged (the caller frees a new one).
 */
function broadcastBias(bias: tf.TensorInfo, n: number, backend: WasmBackendLike): tf.TensorInfo {
  if (bias.dtype !== 'float32' || sizeOf(bias.shape) !== 1 || bias.shape.length > 1 || (bias.shape.length === 1 && n === 1)) return bias;
  const wide = backend.makeOutput([n], 'float32');
  const value = backend.typedArrayFromHeap(bias)[0];
  (backend.typedArrayFromHeap(wide) as Float32Array).fill(value);
  return wide;
}

/** Batch dims of `x` left-padded with 1s to `rank - 2` entries. */
function paddedBatch(x: tf.TensorInfo, rank: number): number[] {
  const dims = x.shape.slice(0, -2);
  while (dims.length < rank - 2) dims.unshift(1);
  return dims;
}

/**
 * True when a batched product (both batch > 1 with identical batch dims, or a shared `a` with
 * batch 1 against a batched `b`) is worth running as one 2-D XNNPACK product per batch entry
 * instead of the stock kernel's naive loop.
 */
function shouldSplit(a: tf.TensorInfo, b: tf.TensorInfo, prelu: unknown): boolean {
  if (prelu != null || a.dtype !== 'float32' || b.dtype !== 'float32') return false;
  const rank = Math.max(a.shape.length, b.shape.length);
  if (rank < 3) return false;
  const ba = paddedBatch(a, rank);
  const bb = paddedBatch(b, rank);
  const nb = sizeOf(bb);
  if (nb <= 1) return false;
  const sameBatch = ba.every((d, i) => d === bb[i]);
  if (!sameBatch && sizeOf(ba) !== 1) return false;
  const m = a.shape[a.shape.length - 2];
  const k = a.shape[a.shape.length - 1];
  const n = b.shape[b.shape.length - 1];
  return m * k * n >= SPLIT_MIN_MACS;
}

/**
 * Runs a batched product as one batch-1 product per batch entry (each on XNNPACK), copying the
 * slices in and the results out. The copies are O(MK + KN + MN) per entry against O(MKN) work.
 */
function splitBatches(
  orig: tf.KernelConfig,
  inputs: tf.NamedTensorInfoMap,
  backend: WasmBackendLike,
  attrs: tf.NamedAttrMap,
): tf.TensorInfo {
  const a = inputs.a as tf.TensorInfo;
  const b = inputs.b as tf.TensorInfo;
  const rank = Math.max(a.shape.length, b.shape.length);
  const m = a.shape[a.shape.length - 2];
  const k = a.shape[a.shape.length - 1];
  const n = b.shape[b.shape.length - 1];
  const batchDims = paddedBatch(b, rank);
  const nb = sizeOf(batchDims);
  const aShared = sizeOf(paddedBatch(a, rank)) === 1;
  const out = backend.makeOutput([...batchDims, m, n], 'float32');
  for (let i = 0; i < nb; i++) {
    const temps: tf.TensorInfo[] = [];
    try {
      const ai = aShared ? { dataId: a.dataId, shape: [1, m, k], dtype: a.dtype } : copySlice(backend, a, i * m * k, [1, m, k]);
      if (!aShared) temps.push(ai);
      const bi = copySlice(backend, b, i * k * n, [1, k, n]);
      temps.push(bi);
      const r = orig.kernelFunc({ inputs: { ...inputs, a: ai, b: bi }, backend, attrs }) as tf.TensorInfo;
      temps.push(r);
      backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(r), i * m * n);
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  }
  return out;
}
