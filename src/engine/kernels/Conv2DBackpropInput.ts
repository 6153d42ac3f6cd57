import * as tf from '@tensorflow/tfjs';
import { activeBlas, BLAS_MIN_MACS, convGeom, gemm, heapOffsets } from './blas_gemm.js';
import { copySlice, IM2COL_CHUNK_FLOATS, nhwcConvGeometry, type WasmBackendLike } from './shared.js';

/**
 * Conv2DBackpropInput (the conv2d input gradient) for NHWC as one XNNPACK matmul + col2im:
 * cols[P, KH·KW·CI] = dy[P, CO] @ Wᵀ (W viewed as [KH·KW·CI, CO], transposed once, explicitly),
 * then each column entry is scatter-added to the input pixel it came from. Replaces the stock
 * wasm kernel, a direct loop that ran at ~1-2 GFLOP/s and dominated CNN backward passes. Any
 * stride/padding works because col2im follows the same index map as im2col. The batch is
 * processed in chunks so cols stays under IM2COL_CHUNK_FLOATS. NCHW goes to the stock kernel.
 * With the OpenBLAS addon active, the product is one sgemm with W transposed by flag and col2im
 * runs in the addon (same loop order, so the same sums as the JS scatter).
 */
export function makeConv2DBackpropInputKernel(stock: tf.KernelConfig, stockMatMul: tf.KernelConfig, transpose: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as WasmBackendLike;
    const dy = args.inputs.dy as tf.TensorInfo;
    const filter = args.inputs.filter as tf.TensorInfo;
    const attrs = args.attrs ?? {};
    const dataFormat = (attrs.dataFormat ?? 'NHWC') as 'NHWC' | 'NCHW';
    if (dataFormat !== 'NHWC' || dy.dtype !== 'float32' || filter.dtype !== 'float32') return stock.kernelFunc(args);
    const { batchSize, H, W, CI, OH, OW, CO, KH, KW, SH, SW, top, left, kkc, perImage } = nhwcConvGeometry(attrs.inputShape as number[], filter.shape as number[], attrs);
    const out = backend.makeOutput([batchSize, H, W, CI], 'float32');
    if (batchSize * H * W * CI === 0) return out;
    backend.typedArrayFromHeap(out).fill(0);
    if (kkc * CO * perImage === 0) return out;
    const chunk = Math.max(1, Math.min(batchSize, Math.floor(IM2COL_CHUNK_FLOATS / Math.max(1, kkc * perImage))));
    // With OpenBLAS the product reads W transposed in place and dy at an offset: no temporaries.
    const blas = batchSize * perImage * kkc * CO >= BLAS_MIN_MACS ? activeBlas() : null;
    const wT =
      blas !== null
        ? null
        : (transpose({ inputs: { x: { dataId: filter.dataId, shape: [kkc, CO], dtype: 'float32' } }, backend, attrs: { perm: [1, 0] } }) as tf.TensorInfo);
    try {
      for (let b0 = 0; b0 < batchSize; b0 += chunk) {
        const nb = Math.min(chunk, batchSize - b0);
        const P = nb * perImage;
        const temps: tf.TensorInfo[] = [];
        try {
          let cols: tf.TensorInfo;
          if (wT === null) {
            cols = backend.makeOutput([P, kkc], 'float32');
            temps.push(cols);
            gemm(blas!, backend, { a: dy, b: filter, c: cols, transA: false, transB: true, m: P, n: kkc, k: CO, aOffset: b0 * perImage * CO });
          } else {
            let dyChunk: tf.TensorInfo;
            if (nb === batchSize) {
              dyChunk = { dataId: dy.dataId, shape: [1, P, CO], dtype: 'float32' };
            } else {
              dyChunk = copySlice(backend, dy, b0 * perImage * CO, [1, P, CO]);
              temps.push(dyChunk);
            }
            cols = stockMatMul.kernelFunc({
              inputs: { a: dyChunk, b: { dataId: wT.dataId, shape: [1, CO, kkc], dtype: 'float32' } },
              backend,
              attrs: { transposeA: false, transposeB: false },
            }) as tf.TensorInfo;
            temps.push(cols);
          }
          if (blas !== null) {
            const { heap, offsets } = heapOffsets(backend, cols, out);
            const geom = convGeom({ B: batchSize, H, W, C: CI, OH, OW, KH, KW, SH, SW, top, left });
            blas.col2im(heap, offsets[0], offsets[1], geom, b0, nb);
            continue;
          }
          const cv = backend.typedArrayFromHeap(cols);
          const dx = backend.typedArrayFromHeap(out);
          let c = 0;
          for (let b = 0; b < nb; b++) {
            const xb = (b0 + b) * H;
            for (let oh = 0; oh < OH; oh++) {
              for (let ow = 0; ow < OW; ow++) {
                for (let kh = 0; kh < KH; kh++) {
                  const ih = oh * SH + kh - top;
                  if (ih < 0 || ih >= H) {
                    c += KW * CI;
                    continue;
                  }
                  for (let kw = 0; kw < KW; kw++) {
                    const iw = ow * SW + kw - left;
                    if (iw < 0 || iw >= W) {
                      c += CI;
                      continue;
                    }
                    let d = ((xb + ih) * W + iw) * CI;
                    for (let ci = 0; ci < CI; ci++) dx[d++] += cv[c++];
                  }
                }
              }
            }
          }
        } finally {
          for (const t of temps) backend.disposeData(t.dataId);
        }
      }
    } finally {
      if (wT !== null) backend.disposeData(wT.dataId);
    }
    return out;
  };
}
