/**
 * Identity without a copy (what the cpu backend does): the output shares the input's buffer and
 * bumps its reference count. Stock wasm copies the tensor, and gradient bookkeeping runs hundreds
 * of Identity calls per transformer step. tfjs tensors are immutable, so sharing is safe.
 * Installed with the OpenBLAS path only, so plain patched wasm is unchanged.
 */
import * as tf from '@tensorflow/tfjs';

export function makeIdentityKernel(orig: tf.KernelConfig, useShared: () => boolean): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (!useShared() || x.dtype === 'string') return orig.kernelFunc(args);
    (args.backend as unknown as { incRef(d: tf.DataId): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  };
}
