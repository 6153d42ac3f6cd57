/**
 * Types and helpers shared by the wasm kernel patches (one kernel per file in this folder, as
 * tfjs-backend-wasm keeps its kernels).
 */
import * as tf from '@tensorflow/tfjs';

export type TypedArray = Float32Array | Int32Array | Uint8Array;
export type Values = TypedArray | Uint8Array[];

/** The parts of tfjs-backend-wasm's BackendWasm that the patches use. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Values): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): TypedArray;
  readSync(dataId: tf.DataId): Values;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

/** The parts of tfjs-backend-cpu's MathBackendCPU that the bridge uses. */
export interface CpuBackendLike {
  write(values: Values, shape: number[], dtype: tf.DataType): tf.DataId;
  readSync(dataId: tf.DataId): Values;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

export const WASM = 'wasm';
export const CPU = 'cpu';
/** Upper bound (floats) for one im2col/col2im chunk in the conv gradient kernels (16 MiB). */
export const IM2COL_CHUNK_FLOATS = 4 * 1024 * 1024;

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export /** Copies `len` floats of `src` starting at `offset` into a new wasm tensor of `shape`. */
function copySlice(backend: WasmBackendLike, src: tf.TensorInfo, offset: number, shape: number[]): tf.TensorInfo {
  const t = backend.makeOutput(shape, 'float32');
  const len = sizeOf(shape);
  backend.typedArrayFromHeap(t).set(backend.typedArrayFromHeap(src).subarray(offset, offset + len));
  return t;
}
