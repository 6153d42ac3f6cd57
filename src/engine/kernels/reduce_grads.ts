/**
 * Gradients of Sum and Mean without the all-ones tensor tfjs builds for them: tfjs computes
 * dy·ones(x.shape) (and ÷ n for Mean) with `ones` filled in a fresh JavaScript array and copied into
 * the heap on every call — in a small transformer step (two Means per LayerNorm) that allocation was a
 * fifth of the step's CPU time. Here the reduced dy is broadcast by the addon instead
 * (kernels/broadcast.ts): the same float32 values (dy·1 = dy; Mean divides the same dy by the same n),
 * so bit-identical.
 *
 * Installed with the OpenBLAS path only; at call time they use tfjs's own gradient unless wasm runs
 * with the addon, so plain wasm and other backends are unchanged.
 */
import * as tf from '@tensorflow/tfjs';
import { activeBlas } from './blas_gemm.js';
import { fusedBroadcastTo } from './broadcast.js';
import { WASM } from './shared.js';

function fast(): boolean {
  return activeBlas() !== null && tf.getBackend() === WASM;
}

/** x.shape with the reduced axes set to 1 (where the reduced dy broadcasts from). */
function keptShape(x: tf.Tensor, attrs: tf.NamedAttrMap): number[] {
  const shape = x.shape.slice();
  for (const a of tf.util.parseAxisParam(attrs.axis as number | number[], x.shape)) shape[a] = 1;
  return shape;
}

/** Sum's gradient: dy broadcast back over the reduced axes. */
export function makeSumGradient(orig: tf.GradConfig): tf.GradConfig {
  return {
    ...orig,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      if (!fast() || x.rank < 1) return orig.gradFunc(dy, saved, attrs);
      const derX = fusedBroadcastTo(tf.reshape(dy as tf.Tensor, keptShape(x, attrs)), x.shape);
      return derX === null ? orig.gradFunc(dy, saved, attrs) : { x: () => derX };
    },
  };
}

/** Mean's gradient: dy / n broadcast back over the reduced axes (n = the number of reduced entries). */
export function makeMeanGradient(orig: tf.GradConfig): tf.GradConfig {
  return {
    ...orig,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      if (!fast() || x.rank < 1 || (dy as tf.Tensor).dtype !== 'float32') return orig.gradFunc(dy, saved, attrs);
      const kept = keptShape(x, attrs);
      const n = tf.util.sizeFromShape(x.shape) / tf.util.sizeFromShape(kept);
      return { x: () => fusedBroadcastTo(tf.div(tf.reshape(dy as tf.Tensor, kept), n), x.shape) ?? orig.gradFunc(dy, saved, attrs).x() };
    },
  };
}
