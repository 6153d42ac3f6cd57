import * as tf from '@tensorflow/tfjs';
import { activeBlas, BLAS_MIN_MACS, convGeom, gemm, heapOffsets } from './blas_gemm.js';
import { IM2COL_CHUNK_FLOATS, nhwcConvGeometry, WASM, type WasmBackendLike } from './shared.js';

/**
 * Conv2DBackpropFilter (the conv2d weight gradient) for NHWC as im2col + one XNNPACK matmul:
 * dW[kh,kw,ci,co] = Σ_{b,oh,ow} x[b, oh·sh+kh-top, ow·sw+kw-left, ci] · dy[b,oh,ow,co], i.e.
 * patchesᵀ[KH·KW·CI, P] @ dy[P, CO] with P = B·OH·OW, whose row-major result is already in the
 * [KH,KW,CI,CO] filter layout. The patch matrix is written directly in transposed layout so the
 * matmul needs no transpose flags (the XNNPACK path); the batch is processed in chunks to keep the
 * patch matrix under IM2COL_CHUNK_FLOATS. The cpu kernel this replaces is a scalar 7-deep loop
 * through TensorBuffer.get. NCHW falls back to the cpu bridge. With the OpenBLAS addon active, im2col
 * runs in the addon and the product is one sgemm per chunk (transA, accumulating into dW).
 */
export function makeConv2DBackpropFilterKernel(fallback: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as WasmBackendLike;
    const x = args.inputs.x as tf.TensorInfo;
    const dy = args.inputs.dy as tf.TensorInfo;
    const attrs = args.attrs ?? {};
    const dataFormat = (attrs.dataFormat ?? 'NHWC') as 'NHWC' | 'NCHW';
    const matmul = tf.getKernel('BatchMatMul', WASM);
    if (dataFormat !== 'NHWC' || x.dtype !== 'float32' || dy.dtype !== 'float32' || matmul === undefined) {
      return fallback(args);
    }
    const { batchSize, H, W, CI, OH, OW, CO, KH, KW, SH, SW, top, left, kkc, perImage } = nhwcConvGeometry(x.shape as number[], attrs.filterShape as number[], attrs);
    const out = backend.makeOutput([KH, KW, CI, CO], 'float32');
    if (kkc * CO === 0) return out;
    if (batchSize * perImage === 0) {
      backend.typedArrayFromHeap(out).fill(0);
      return out;
    }
    const chunk = Math.max(1, Math.min(batchSize, Math.floor(IM2COL_CHUNK_FLOATS / Math.max(1, kkc * perImage))));
    const blas = batchSize * perImage * kkc * CO >= BLAS_MIN_MACS ? activeBlas() : null;
    if (blas !== null) {
      // OpenBLAS path: im2col in the addon in natural [P, KH·KW·CI] layout, then dW (+)= patchesᵀ·dy
      // as sgemm with transA (the first chunk overwrites dW, later chunks accumulate onto it).
      const geom = convGeom({ B: batchSize, H, W, C: CI, OH, OW, KH, KW, SH, SW, top, left });
      for (let b0 = 0; b0 < batchSize; b0 += chunk) {
        const nb = Math.min(chunk, batchSize - b0);
        const P = nb * perImage;
        const patches = backend.makeOutput([P, kkc], 'float32');
        try {
          const { heap, offsets } = heapOffsets(backend, x, patches);
          blas.im2col(heap, offsets[0], offsets[1], geom, b0, nb);
          gemm(blas, backend, { a: patches, b: dy, c: out, transA: true, transB: false, m: kkc, n: CO, k: P, bOffset: b0 * perImage * CO, beta: b0 === 0 ? 0 : 1 });
        } finally {
          backend.disposeData(patches.dataId);
        }
      }
      return out;
    }
    const single = chunk >= batchSize;
    const acc = single ? null : new Float64Array(kkc * CO);
    for (let b0 = 0; b0 < batchSize; b0 += chunk) {
      const nb = Math.min(chunk, batchSize - b0);
      const P = nb * perImage;
      const temps: tf.TensorInfo[] = [];
      try {
        const patches = backend.makeOutput([1, kkc, P], 'float32');
        temps.push(patches);
        let dyChunk: tf.TensorInfo;
        if (single) {
          dyChunk = { dataId: dy.dataId, shape: [1, P, CO], dtype: 'float32' };
        } else {
          dyChunk = backend.makeOutput([1, P, CO], 'float32');
          temps.push(dyChunk);
        }
        // All allocations done; take heap views now (malloc may have replaced the buffer).
        const xv = backend.typedArrayFromHeap(x);
        const pv = backend.typedArrayFromHeap(patches);
        if (!single) {
          const dyv = backend.typedArrayFromHeap(dy);
          backend.typedArrayFromHeap(dyChunk).set(dyv.subarray(b0 * perImage * CO, (b0 + nb) * perImage * CO));
        }
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++) {
            for (let ci = 0; ci < CI; ci++) {
              let w = ((kh * KW + kw) * CI + ci) * P;
              for (let b = 0; b < nb; b++) {
                const xb = (b0 + b) * H;
                for (let oh = 0; oh < OH; oh++) {
                  const ih = oh * SH + kh - top;
                  if (ih < 0 || ih >= H) {
                    pv.fill(0, w, w + OW);
                    w += OW;
                    continue;
                  }
                  const rowBase = (xb + ih) * W;
                  for (let ow = 0; ow < OW; ow++) {
                    const iw = ow * SW + kw - left;
                    pv[w++] = iw < 0 || iw >= W ? 0 : xv[(rowBase + iw) * CI + ci];
                  }
                }
              }
            }
          }
        }
        const prod = matmul.kernelFunc({
          inputs: { a: patches, b: dyChunk },
          backend,
          attrs: { transposeA: false, transposeB: false },
        }) as tf.TensorInfo;
        temps.push(prod);
        const prodv = backend.typedArrayFromHeap(prod);
        if (acc === null) backend.typedArrayFromHeap(out).set(prodv);
        else for (let i = 0; i < acc.length; i++) acc[i] += prodv[i];
      } finally {
        for (const t of temps) backend.disposeData(t.dataId);
      }
    }
    if (acc !== null) backend.typedArrayFromHeap(out).set(acc);
    return out;
  };
}
