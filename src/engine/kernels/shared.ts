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

/** NHWC conv2d geometry of a backprop kernel: sizes, strides, top/left padding, patch width and positions per image. */
export interface NhwcConvGeometry {
  batchSize: number;
  H: number;
  W: number;
  CI: number;
  OH: number;
  OW: number;
  CO: number;
  KH: number;
  KW: number;
  SH: number;
  SW: number;
  top: number;
  left: number;
  /** KH·KW·CI: one im2col row. */
  kkc: number;
  /** OH·OW: im2col rows per image. */
  perImage: number;
}

/** The geometry tfjs's computeConv2DInfo gives for an NHWC conv2d with the kernel's attrs (dilation 1). */
export function nhwcConvGeometry(inputShape: number[], filterShape: number[], attrs: tf.NamedAttrMap): NhwcConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as 'same' | 'valid' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
  const { batchSize, inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW, outChannels: CO } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = info;
  return { batchSize, H, W, CI, OH, OW, CO, KH, KW, SH, SW, top: info.padInfo.top, left: info.padInfo.left, kkc: KH * KW * CI, perImage: OH * OW };
}
