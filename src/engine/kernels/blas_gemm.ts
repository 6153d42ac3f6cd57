/**
 * GEMM through the OpenBLAS addon on tensors that live in the wasm heap: the addon receives the
 * heap's ArrayBuffer and byte offsets, so operands are read and results written in place.
 *
 * Views are taken after every allocation of the call (`makeOutput` may grow the heap, which
 * replaces the ArrayBuffer and detaches older views).
 */
import * as tf from '@tensorflow/tfjs';
import type { BlasAddon } from '../blas.js';
import type { WasmBackendLike } from './shared.js';

const BLAS_KEY = Symbol.for('efftrain.wasmPatches.blas.v1');

interface BlasState {
  addon: BlasAddon | null;
  /** Most OpenBLAS threads one product may use. */
  maxThreads: number;
}

function blasState(): BlasState {
  const g = globalThis as unknown as Record<symbol, BlasState | undefined>;
  let s = g[BLAS_KEY];
  if (s === undefined) {
    s = { addon: null, maxThreads: 1 };
    g[BLAS_KEY] = s;
  }
  return s;
}

/** Turns the BLAS path on (addon given) or off (null) for every patched kernel. */
export function setBlas(addon: BlasAddon | null, maxThreads = 1): void {
  const s = blasState();
  s.addon = addon;
  s.maxThreads = Math.max(1, Math.floor(maxThreads));
}

/** The active addon, or null when the kernels use XNNPACK. */
export function activeBlas(): BlasAddon | null {
  return blasState().addon;
}

export function blasMaxThreads(): number {
  return blasState().maxThreads;
}

/**
 * Products with fewer multiply-adds stay on XNNPACK: at 64³ the call overheads of both are about
 * equal, and below it the wasm path avoids a boundary crossing.
 */
export const BLAS_MIN_MACS = 64 * 64 * 64;
/**
 * Two OpenBLAS threads pay only for large products (measured on 2 cores: 1.8x at 1.3e8 MACs,
 * 0.5x at 1.3e6 MACs, where thread wake-up dominates).
 */
const TWO_THREAD_MIN_MACS = 1 << 25;

/** One GEMM call over heap tensors; `aOff`… are float offsets inside each tensor (default 0). */
export interface GemmSpec {
  a: tf.TensorInfo;
  b: tf.TensorInfo;
  c: tf.TensorInfo;
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  batch?: number;
  /** Strides between batch entries in floats (0 = shared). */
  aStride?: number;
  bStride?: number;
  cStride?: number;
  aOffset?: number;
  bOffset?: number;
  /** 1 accumulates into c (c must be initialised), 0 overwrites it. */
  beta?: 0 | 1;
}

/** Runs `spec` on `addon`; all tensors must be float32 wasm tensors of `backend`. */
export function gemm(addon: BlasAddon, backend: WasmBackendLike, spec: GemmSpec): void {
  const batch = spec.batch ?? 1;
  const s = blasState();
  // The count goes with the call: OpenBLAS's count is process-wide, and the addon holds it for
  // exactly this product (other threads' products keep theirs; see native/blas.c).
  const threads = s.maxThreads > 1 && batch * spec.m * spec.n * spec.k >= TWO_THREAD_MIN_MACS ? s.maxThreads : 1;
  const av = backend.typedArrayFromHeap(spec.a);
  const bv = backend.typedArrayFromHeap(spec.b);
  const cv = backend.typedArrayFromHeap(spec.c);
  addon.sgemm(
    cv.buffer,
    spec.transA,
    spec.transB,
    spec.m,
    spec.n,
    spec.k,
    av.byteOffset + 4 * (spec.aOffset ?? 0),
    bv.byteOffset + 4 * (spec.bOffset ?? 0),
    cv.byteOffset,
    batch,
    4 * (spec.aStride ?? 0),
    4 * (spec.bStride ?? 0),
    4 * (spec.cStride ?? 0),
    spec.beta ?? 0,
    threads,
  );
}

/** The heap's ArrayBuffer and the byte offset of each tensor, for the addon's heap helpers. */
export function heapOffsets(backend: WasmBackendLike, ...ts: tf.TensorInfo[]): { heap: ArrayBufferLike; offsets: number[] } {
  const views = ts.map((t) => backend.typedArrayFromHeap(t));
  return { heap: views[0].buffer, offsets: views.map((v) => v.byteOffset) };
}

/** The addon's NHWC geometry array: [B, H, W, C, OH, OW, KH, KW, SH, SW, top, left]. */
export function convGeom(g: { B: number; H: number; W: number; C: number; OH: number; OW: number; KH: number; KW: number; SH: number; SW: number; top: number; left: number }): number[] {
  return [g.B, g.H, g.W, g.C, g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.top, g.left];
}
