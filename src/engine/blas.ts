/**
 * The optional OpenBLAS addon (native/blas.c, built by scripts/build-native.sh). When it loads,
 * the wasm kernel patches run large matrix products through OpenBLAS's sgemm directly on the wasm
 * heap (see kernels/blas_gemm.ts); when it does not, everything runs on plain wasm and
 * `blasStatus().reason` says why.
 *
 * `EFFTRAIN_BLAS=0` forces it off (how the tests exercise the fallback path);
 * `EFFTRAIN_BLAS_ADDON=/path/x.node` loads another build.
 */

/**
 * Node's built-ins without a static `node:` import, so this module stays browser-safe (the root entry
 * is bundled for browsers); null outside Node (the addon is then simply unavailable).
 */
function nodeBuiltins(): {
  createRequire: (url: string) => (id: string) => unknown;
  existsSync: (p: string) => boolean;
  fileURLToPath: (u: URL) => string;
} | null {
  const p = (globalThis as { process?: { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown } }).process;
  if (!p?.versions?.node || typeof p.getBuiltinModule !== 'function') return null;
  const mod = p.getBuiltinModule('module') as { createRequire: (url: string) => (id: string) => unknown };
  const fs = p.getBuiltinModule('fs') as { existsSync: (p: string) => boolean };
  const url = p.getBuiltinModule('url') as { fileURLToPath: (u: URL) => string };
  return { createRequire: mod.createRequire, existsSync: fs.existsSync, fileURLToPath: url.fileURLToPath };
}

/** The contract version this file expects of native/blas.c (EFFTRAIN_BLAS_ABI there). */
export const BLAS_ABI = 3;

/** The addon's functions (see native/blas.c for the exact contract). */
export interface BlasAddon {
  /** Contract version (absent in builds before it existed). */
  abi?: number;
  /**
   * For i in 0..batch: C_i = op(A_i)·op(B_i) + beta·C_i, row-major, with X_i at byte offset
   * xOff + i·xStride of `heap` (stride 0 shares one matrix). Throws RangeError when an operand
   * does not lie inside `heap`. `threads` (default: setThreads' value, 1 at load) is the OpenBLAS
   * thread count for this call only; a multi-threaded call runs alone in the process.
   */
  sgemm(
    heap: ArrayBufferLike,
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    aOff: number,
    bOff: number,
    cOff: number,
    batch: number,
    aStride: number,
    bStride: number,
    cStride: number,
    beta: number,
    threads?: number,
  ): void;
  /** NHWC im2col of images b0..b0+nb into patches [nb·OH·OW, KH·KW·C]; geom = convGeom(...). */
  im2col(heap: ArrayBufferLike, xOff: number, patchesOff: number, geom: number[], b0: number, nb: number): void;
  /** The adjoint of im2col: scatter-adds cols [nb·OH·OW, KH·KW·C] into dx (images b0..b0+nb). */
  col2im(heap: ArrayBufferLike, colsOff: number, dxOff: number, geom: number[], b0: number, nb: number): void;
  /** MaxPool gradient, tfjs's rule (first window maximum, strict >); writes all of dx. */
  maxPoolGrad(heap: ArrayBufferLike, xOff: number, dyOff: number, dxOff: number, geom: number[]): void;
  /**
   * One fused AdamW pass over n floats: offsets (bytes) of [p, m, v, g, pOut, mOut, vOut], coefficients
   * [b1, 1−b1, b2, 1−b2, epsC2, stepSize, decay, decayOn (0/1)], the first seven rounded to float32 (see native/blas.c).
   */
  adamw(heap: ArrayBufferLike, offsets: number[], n: number, coefficients: number[]): void;
  /** out[j] = Σ_i x[i, j] over a [rows, cols] float32 matrix (a Sum over leading axes). */
  sumLeading(heap: ArrayBufferLike, xOff: number, outOff: number, rows: number, cols: number): void;
  /**
   * Mean softmax cross-entropy of logits z [rows, cols] against labels y (same shape) into the scalar at
   * outOff: (1/rows)·Σ_r Σ_c −y[r,c]·(z[r,c] − lse_r), as tf.losses.softmaxCrossEntropy computes it.
   */
  softmaxCE(heap: ArrayBufferLike, yOff: number, zOff: number, outOff: number, rows: number, cols: number): void;
  /** Its logits gradient: dx[r,c] = (dy/rows)·(softmax(z)[r,c] − y[r,c]), dy the scalar at dyOff. */
  softmaxCEGrad(heap: ArrayBufferLike, yOff: number, zOff: number, dyOff: number, dxOff: number, rows: number, cols: number): void;
  /** tfjs's Relu gradient in one pass: dx = dy·step(x) over n floats. */
  reluGrad(heap: ArrayBufferLike, dyOff: number, xOff: number, dxOff: number, n: number): void;
  /** A bias add: out[r,c] = x[r,c] + b[c] over a [rows, cols] float32 matrix. */
  addRow(heap: ArrayBufferLike, xOff: number, bOff: number, outOff: number, rows: number, cols: number): void;
  /** out (row-major, `shape`) = x read with element `strides` (0 on broadcast axes); rank 1..8. */
  broadcast(heap: ArrayBufferLike, xOff: number, outOff: number, shape: number[], strides: number[]): void;
  /** LayerNorm over the last axis of x [rows, d]: y = (x − μ)·(σ² + eps)^(−1/2)·g + b. */
  layerNorm(heap: ArrayBufferLike, xOff: number, gOff: number, bOff: number, yOff: number, rows: number, d: number, eps: number): void;
  /** Its gradients dx [rows, d], dg [d], db [d] from dy [rows, d] (statistics recomputed from x). */
  layerNormGrad(heap: ArrayBufferLike, dyOff: number, xOff: number, gOff: number, dxOff: number, dgOff: number, dbOff: number, rows: number, d: number, eps: number): void;
  /** The tanh GELU over n floats: y = x·σ(x·(c + k·x²)). */
  gelu(heap: ArrayBufferLike, xOff: number, yOff: number, n: number): void;
  /** Its gradient: dx = dy·(σ(u) + x·σ(u)(1 − σ(u))·(c + 3k·x²)). */
  geluGrad(heap: ArrayBufferLike, dyOff: number, xOff: number, dxOff: number, n: number): void;
  /** Default thread count of sgemm calls that pass none (process-wide). */
  setThreads(n: number): void;
  threads(): number;
  config(): string;
}

export interface BlasStatus {
  available: boolean;
  /** Why the addon is off (empty when available). */
  reason: string;
  /** OpenBLAS's build string, e.g. "OpenBLAS 0.3.21 ... Haswell MAX_THREADS=64". */
  config?: string;
  path?: string;
}

let loaded: { addon: BlasAddon | null; status: BlasStatus } | null = null;

/** Where the built addon may be: dist/engine -> ../../native, dist-test/src/engine -> ../../../native. */
function candidates(node: NonNullable<ReturnType<typeof nodeBuiltins>>): string[] {
  const env = process.env.EFFTRAIN_BLAS_ADDON;
  if (env) return [env];
  return ['../../native/build/efftrain_blas.node', '../../../native/build/efftrain_blas.node'].map((p) =>
    node.fileURLToPath(new URL(p, import.meta.url)),
  );
}

/** Loads the addon once per thread; never throws (a failure is reported in the status). */
export function loadBlas(): { addon: BlasAddon | null; status: BlasStatus } {
  if (loaded) return loaded;
  const node = nodeBuiltins();
  if (node === null) {
    loaded = { addon: null, status: { available: false, reason: 'not running in Node (process.getBuiltinModule missing)' } };
    return loaded;
  }
  if (process.env.EFFTRAIN_BLAS === '0') {
    loaded = { addon: null, status: { available: false, reason: 'EFFTRAIN_BLAS=0' } };
    return loaded;
  }
  const path = candidates(node).find((p) => node.existsSync(p));
  if (path === undefined) {
    loaded = { addon: null, status: { available: false, reason: 'addon not built (run scripts/build-native.sh; needs libopenblas-dev and a C compiler)' } };
    return loaded;
  }
  // OpenBLAS starts one thread per core when it loads unless told otherwise (from a worker thread
  // this assignment does not reach the real environment; the addon sets 1 itself when it loads).
  if (process.env.OPENBLAS_NUM_THREADS === undefined) process.env.OPENBLAS_NUM_THREADS = '1';
  try {
    const addon = node.createRequire(import.meta.url)(path) as BlasAddon;
    if (addon.abi !== BLAS_ABI) {
      loaded = { addon: null, status: { available: false, reason: `addon at ${path} was built from older sources (contract ${addon.abi ?? 1}, need ${BLAS_ABI}): re-run scripts/build-native.sh`, path } };
      return loaded;
    }
    loaded = { addon, status: { available: true, reason: '', config: addon.config(), path } };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    loaded = { addon: null, status: { available: false, reason: `addon failed to load: ${msg}`, path } };
  }
  return loaded;
}

/** The addon's load status (loads it if needed). */
export function blasStatus(): BlasStatus {
  return loadBlas().status;
}
