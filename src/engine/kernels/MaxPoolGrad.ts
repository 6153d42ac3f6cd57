import * as tf from '@tensorflow/tfjs';
import { activeBlas, convGeom, heapOffsets } from './blas_gemm.js';
import { type WasmBackendLike } from './shared.js';

/**
 * MaxPoolGrad as a direct scatter in JS: each pooling window sends its dy to the first position
 * holding the window maximum (strict >, row-major, from -Infinity: exactly the cpu kernel's
 * maxPoolPositions rule, so ties and NaNs behave the same). The stock wasm kernel is a direct loop
 * that was the second-largest cost of a small CNN's backward pass. With the OpenBLAS addon active the
 * same loop runs in C (native/blas.c).
 */
export function makeMaxPoolGradKernel(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as WasmBackendLike;
    const dy = args.inputs.dy as tf.TensorInfo;
    const x = args.inputs.input as tf.TensorInfo;
    const attrs = args.attrs ?? {};
    if (x.dtype !== 'float32' || dy.dtype !== 'float32') return stock.kernelFunc(args);
    const info = tf.backend_util.computePool2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterSize as number | [number, number],
      attrs.strides as number | [number, number],
      1,
      attrs.pad as 'same' | 'valid' | number,
      attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    );
    const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
    const { effectiveFilterHeight: FH, effectiveFilterWidth: FW, strideHeight: SH, strideWidth: SW } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const out = backend.makeOutput(x.shape.slice(), 'float32');
    if (B * H * W * C === 0) return out;
    const addon = activeBlas();
    if (addon !== null) {
      const { heap, offsets } = heapOffsets(backend, x, dy, out);
      addon.maxPoolGrad(heap, offsets[0], offsets[1], offsets[2], convGeom({ B, H, W, C, OH, OW, KH: FH, KW: FW, SH, SW, top, left }));
      return out;
    }
    const dx = backend.typedArrayFromHeap(out);
    dx.fill(0);
    const xv = backend.typedArrayFromHeap(x);
    const dyv = backend.typedArrayFromHeap(dy);
    for (let b = 0; b < B; b++) {
      for (let oh = 0; oh < OH; oh++) {
        const r0 = oh * SH - top;
        const rMin = Math.max(0, r0);
        const rMax = Math.min(H, r0 + FH);
        for (let ow = 0; ow < OW; ow++) {
          const c0 = ow * SW - left;
          const cMin = Math.max(0, c0);
          const cMax = Math.min(W, c0 + FW);
          const dyBase = ((b * OH + oh) * OW + ow) * C;
          for (let ch = 0; ch < C; ch++) {
            let best = Number.NEGATIVE_INFINITY;
            let at = -1;
            for (let r = rMin; r < rMax; r++) {
              let i = ((b * H + r) * W + cMin) * C + ch;
              for (let col = cMin; col < cMax; col++, i += C) {
                const v = xv[i];
                if (v > best) {
                  best = v;
                  at = i;
                }
              }
            }
            if (at >= 0) dx[at] += dyv[dyBase + ch];
          }
        }
      }
    }
    return out;
  };
}
