/**
 * Kernel patches that make the tfjs 4.22 wasm backend usable for training in Node.
 *
 * Two independent fixes (see docs in /work/shared/ecosystem.md §1.2–1.3):
 *
 * 1. **Matmul fast path.** The wasm `BatchMatMul`/`_FusedMatMul` kernels only reach XNNPACK when
 *    `transposeA = transposeB = false` and both batch sizes are 1; everything else runs a naive
 *    blocked loop that is ~10x slower. Backprop always asks for transposed products, so every Dense
 *    backward pass was slow. The wrapper transposes flagged inputs explicitly (wasm `Transpose`
 *    kernel, last two axes), calls the stock kernel with both flags false, and frees the
 *    temporaries. When `a` is batched and `b` is shared (batch 1), `a`'s batch is folded into its
 *    rows (`[B*M, K] @ [K, N]`) so the product also stays on XNNPACK. When both are batched
 *    (attention), products of at least SPLIT_MIN_MACS per entry run as one XNNPACK call per batch
 *    entry.
 *
 *    The same part of the patches also replaces two stock gradient kernels that are direct loops
 *    in wasm and dominated a small CNN's backward pass: `Conv2DBackpropInput` (rewritten as one
 *    XNNPACK matmul + col2im) and `MaxPoolGrad` (a JS scatter).
 *
 * 2. **Missing kernels.** wasm 4.22 lacks kernels that gradients need (`Conv2DBackpropFilter`,
 *    `DepthwiseConv2dNative*Backprop*`, `UnsortedSegmentSum`, ...). Every kernel the cpu backend has
 *    and wasm lacks gets a wasm kernel: a generic "cpu bridge" that copies inputs to the cpu backend,
 *    runs the cpu kernel and copies the outputs back; `UnsortedSegmentSum` and channels-last
 *    `Conv2DBackpropFilter` get direct wasm-side implementations instead, because the cpu versions
 *    are O(numSegments·size) and a scalar 7-deep loop respectively (see their doc comments).
 *
 * Kernels that produce or consume `complex64` tensors (Complex, Real, Imag, ComplexAbs, FFT, IFFT)
 * are deliberately NOT bridged: the wasm backend has no storage for complex64 (its readSync and
 * typedArrayFromHeap throw "Unknown dtype"), so a bridged kernel would only move the failure
 * somewhere more confusing than tfjs' own "Kernel 'FFT' not registered for backend 'wasm'".
 * Everything else the cpu backend has is bridged, including string kernels (StaticRegexReplace),
 * multi-output kernels (RaggedRange, RaggedGather) and kernels whose inputs are lists (Einsum).
 * `Draw` is bridged too but needs a canvas, which Node does not have.
 *
 * Patch state lives on `globalThis` (keyed by a registered Symbol) rather than in module scope,
 * because the kernel registry is itself process-global: if two copies of this module are loaded
 * (e.g. `dist/` and `dist-test/`), they must not wrap each other's wrappers.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

/** What `applyWasmPatches` left installed. */
export interface WasmPatchReport {
  /** True when any patch is installed after the call. */
  enabled: boolean;
  /**
   * Stock wasm kernels currently replaced by faster paths: `BatchMatMul` and `_FusedMatMul` (the
   * transposed/batched matmul wrapper), `Conv2DBackpropInput` (matmul + col2im) and `MaxPoolGrad`.
   */
  matmul: string[];
  /** Kernels currently filled in for wasm (cpu bridge or direct wasm-side implementation). */
  bridged: string[];
}

type TypedArray = Float32Array | Int32Array | Uint8Array;
type Values = TypedArray | Uint8Array[];

/** The parts of tfjs-backend-wasm's BackendWasm that the patches use. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Values): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): TypedArray;
  readSync(dataId: tf.DataId): Values;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

/** The parts of tfjs-backend-cpu's MathBackendCPU that the bridge uses. */
interface CpuBackendLike {
  write(values: Values, shape: number[], dtype: tf.DataType): tf.DataId;
  readSync(dataId: tf.DataId): Values;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

interface PatchState {
  /** Kernel name -> the stock wasm config it replaced. */
  matmulOriginals: Map<string, tf.KernelConfig>;
  /** Kernel name -> the config we installed (used to check it is still ours before removing). */
  matmulInstalled: Map<string, tf.KernelConfig>;
  /** Kernel name -> the bridge config we installed. */
  bridgeInstalled: Map<string, tf.KernelConfig>;
}

const STATE_KEY = Symbol.for('efftrain.wasmPatches.state.v1');
const WASM = 'wasm';
const CPU = 'cpu';
/**
 * Stock wasm kernels replaced by faster paths (the `matmul` part of the patches): the two matmul
 * kernels, and the two gradient kernels that dominated a small CNN's backward pass once the filter
 * gradient was fixed. BatchMatMul must stay first: the conv gradient captures its stock config.
 */
const REPLACED_KERNELS = ['BatchMatMul', '_FusedMatMul', 'Conv2DBackpropInput', 'MaxPoolGrad'] as const;
/** wasm cannot store complex64 tensors; see the module comment. */
const UNBRIDGEABLE = new Set(['Complex', 'Real', 'Imag', 'ComplexAbs', 'FFT', 'IFFT']);
/**
 * Below this many multiply-adds per batch entry, per-entry XNNPACK calls cost more than they save.
 * Measured (2-core x86, Node 20): 32x(16x16@16x16) split 0.57 ms vs stock 0.24; 8192 MACs about
 * even; 16384 MACs 0.34 vs 0.80 ms; 16x(256x64@64x256) 12.7 vs 97 ms.
 */
const SPLIT_MIN_MACS = 8192;
/** Upper bound (floats) for one im2col/col2im chunk in the conv gradient kernels (16 MiB). */
const IM2COL_CHUNK_FLOATS = 4 * 1024 * 1024;

function state(): PatchState {
  const g = globalThis as unknown as Record<symbol, PatchState | undefined>;
  let s = g[STATE_KEY];
  if (s === undefined) {
    s = { matmulOriginals: new Map(), matmulInstalled: new Map(), bridgeInstalled: new Map() };
    g[STATE_KEY] = s;
  }
  return s;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Replaces the registered kernel `name` for wasm with `config` (no "already registered" warning). */
function replaceKernel(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName) !== undefined) {
    tf.unregisterKernel(config.kernelName, config.backendName);
  }
  tf.registerKernel(config);
}

// ---------------------------------------------------------------------------------------------
// (a) matmul wrapper
// ---------------------------------------------------------------------------------------------

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
function makeMatMulKernel(orig: tf.KernelConfig, transpose: tf.KernelFunc, fused: boolean): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as WasmBackendLike;
    const attrs = args.attrs ?? {};
    const a = args.inputs.a as tf.TensorInfo;
    const b = args.inputs.b as tf.TensorInfo;
    const tA = attrs.transposeA === true;
    const tB = attrs.transposeB === true;
    const temps: tf.TensorInfo[] = [];
    try {
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
        return splitBatches(orig, { ...args.inputs, a: a2, b: b2 }, backend, plainAttrs);
      }
      const out = orig.kernelFunc({ inputs: { ...args.inputs, a: a2, b: b2 }, backend, attrs: plainAttrs }) as tf.TensorInfo;
      if (outShape !== null) out.shape = outShape;
      return out;
    } finally {
      for (const t of temps) backend.disposeData(t.dataId);
    }
  };
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

/** Copies `len` floats of `src` starting at `offset` into a new wasm tensor of `shape`. */
function copySlice(backend: WasmBackendLike, src: tf.TensorInfo, offset: number, shape: number[]): tf.TensorInfo {
  const t = backend.makeOutput(shape, 'float32');
  const len = sizeOf(shape);
  backend.typedArrayFromHeap(t).set(backend.typedArrayFromHeap(src).subarray(offset, offset + len));
  return t;
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

function installMatMul(s: PatchState): void {
  const transposeCfg = tf.getKernel('Transpose', WASM);
  if (transposeCfg === undefined) return;
  // The stock BatchMatMul, whether or not it is wrapped already (the conv gradient calls it with
  // flags false and batch 1, the XNNPACK case, so it needs no wrapper).
  const stockMatMul = s.matmulOriginals.get('BatchMatMul') ?? tf.getKernel('BatchMatMul', WASM);
  for (const name of REPLACED_KERNELS) {
    if (s.matmulInstalled.has(name)) continue;
    const orig = tf.getKernel(name, WASM);
    if (orig === undefined || stockMatMul === undefined) continue;
    let kernelFunc: tf.KernelFunc;
    if (name === 'Conv2DBackpropInput') kernelFunc = makeConv2DBackpropInputKernel(orig, stockMatMul, transposeCfg.kernelFunc);
    else if (name === 'MaxPoolGrad') kernelFunc = makeMaxPoolGradKernel(orig);
    else kernelFunc = makeMatMulKernel(orig, transposeCfg.kernelFunc, name === '_FusedMatMul');
    // Spread keeps setupFunc/disposeFunc: the engine re-runs setupFunc on every setBackend('wasm'),
    // and the stock kernelFunc we delegate to depends on it.
    const cfg: tf.KernelConfig = { ...orig, kernelFunc };
    replaceKernel(cfg);
    s.matmulOriginals.set(name, orig);
    s.matmulInstalled.set(name, cfg);
  }
}

function removeMatMul(s: PatchState): void {
  for (const [name, cfg] of s.matmulInstalled) {
    const orig = s.matmulOriginals.get(name);
    // Only restore when the registry still holds our wrapper; someone else's later override wins.
    if (orig !== undefined && tf.getKernel(name, WASM) === cfg) replaceKernel(orig);
    s.matmulInstalled.delete(name);
    s.matmulOriginals.delete(name);
  }
}

// ---------------------------------------------------------------------------------------------
// (b) missing kernels: generic cpu bridge
// ---------------------------------------------------------------------------------------------

function isTensorInfo(v: unknown): v is tf.TensorInfo {
  return typeof v === 'object' && v !== null && 'dataId' in v && 'shape' in v && 'dtype' in v;
}

/**
 * Maps every TensorInfo in a kernel's `inputs` through `f`. Inputs are usually a name->TensorInfo
 * map, but some kernels take an array (Einsum, via runKernel(Einsum, tensors)) or a map whose
 * values are arrays of tensors (RaggedGather.paramsNestedSplits, RaggedTensorToTensor's
 * rowPartitionTensors); optional inputs may be null. Anything else passes through unchanged.
 */
function mapTensorInfos(v: unknown, f: (t: tf.TensorInfo) => tf.TensorInfo): unknown {
  if (v == null) return v;
  if (isTensorInfo(v)) return f(v);
  if (Array.isArray(v)) return v.map((x) => mapTensorInfos(x, f));
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = mapTensorInfos(x, f);
    return out;
  }
  return v;
}

/** Copies `values` into a fresh wasm tensor of the given shape/dtype. */
function wasmTensorFrom(backend: WasmBackendLike, shape: number[], dtype: tf.DataType, values: Values): tf.TensorInfo {
  if (dtype === 'string') return backend.makeOutput(shape, dtype, undefined, values);
  if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bool') {
    throw new Error(`wasm cpu bridge: cannot hold dtype ${dtype} on the wasm backend`);
  }
  const out = backend.makeOutput(shape, dtype);
  // typedArrayFromHeap after makeOutput: the malloc may have grown (and detached) the heap.
  // set() converts element-wise, so a cpu kernel that used another typed array type is still fine.
  if (sizeOf(shape) > 0) backend.typedArrayFromHeap(out).set(values as ArrayLike<number>);
  return out;
}

/**
 * A wasm kernelFunc that runs the cpu backend's kernel `name`:
 * copy inputs wasm -> cpu, run the cpu kernelFunc, copy outputs cpu -> wasm, free every cpu-side
 * data id it created (inputs and outputs, once each, forced: nobody else can reference them).
 * The cpu kernel is looked up at call time so a later re-registration on cpu is honoured.
 */
function makeCpuBridge(name: string): tf.KernelFunc {
  return (args) => {
    const wasm = args.backend as WasmBackendLike;
    const cpu = tf.findBackend(CPU) as unknown as CpuBackendLike | null;
    const cpuKernel = tf.getKernel(name, CPU);
    if (cpu == null || cpuKernel === undefined) {
      throw new Error(`wasm cpu bridge: cpu backend or cpu kernel '${name}' is unavailable`);
    }
    const cpuIds = new Set<tf.DataId>();
    try {
      const toCpu = (t: tf.TensorInfo): tf.TensorInfo => {
        const dataId = cpu.write(wasm.readSync(t.dataId), t.shape.slice(), t.dtype);
        cpuIds.add(dataId);
        return { dataId, shape: t.shape.slice(), dtype: t.dtype };
      };
      const cpuInputs = mapTensorInfos(args.inputs, toCpu) as tf.NamedTensorInfoMap;
      const out = cpuKernel.kernelFunc({ inputs: cpuInputs, backend: cpu, attrs: args.attrs });
      const outs = Array.isArray(out) ? out : [out];
      // Register output ids for disposal first, so a throw while copying back cannot leak them.
      for (const o of outs) cpuIds.add(o.dataId);
      const copied = outs.map((o) => wasmTensorFrom(wasm, o.shape.slice(), o.dtype, cpu.readSync(o.dataId)));
      return Array.isArray(out) ? copied : copied[0];
    } finally {
      // Some cpu kernels return one of their inputs (Draw) or alias data; the Set frees each once.
      for (const id of cpuIds) cpu.disposeData(id, true);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// (b') direct wasm-side implementations for the two kernels training hits every step
// ---------------------------------------------------------------------------------------------

/**
 * UnsortedSegmentSum (the gradient of gather, hence of embedding layers) as a direct scatter-add
 * over the wasm heap: O(size(x)). The cpu kernel builds one mask per segment, i.e.
 * O(numSegments · size(x)), which is unusable for realistic vocabularies. Accumulates in float64
 * in index order, like the cpu kernel's sum, so results match it; out-of-range ids are dropped
 * (TensorFlow semantics, and what the cpu kernel's masks do).
 */
const unsortedSegmentSumKernel: tf.KernelFunc = (args) => {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs.x as tf.TensorInfo;
  const ids = args.inputs.segmentIds as tf.TensorInfo;
  const numSegments = Number(args.attrs?.numSegments);
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum on wasm supports float32/int32, got ${x.dtype}`);
  }
  const innerShape = x.shape.slice(ids.shape.length);
  const inner = sizeOf(innerShape);
  const n = sizeOf(ids.shape);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  if (numSegments * inner === 0) return out;
  const acc = new Float64Array(numSegments * inner);
  // Views taken after makeOutput (heap growth detaches older views).
  const xv = backend.typedArrayFromHeap(x);
  const idv = backend.typedArrayFromHeap(ids);
  for (let i = 0; i < n; i++) {
    const s = idv[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) acc[dst + j] += xv[src + j];
  }
  backend.typedArrayFromHeap(out).set(acc);
  return out;
};

/**
 * Conv2DBackpropFilter (the conv2d weight gradient) for NHWC as im2col + one XNNPACK matmul:
 * dW[kh,kw,ci,co] = Σ_{b,oh,ow} x[b, oh·sh+kh-top, ow·sw+kw-left, ci] · dy[b,oh,ow,co], i.e.
 * patchesᵀ[KH·KW·CI, P] @ dy[P, CO] with P = B·OH·OW, whose row-major result is already in the
 * [KH,KW,CI,CO] filter layout. The patch matrix is written directly in transposed layout so the
 * matmul needs no transpose flags (the XNNPACK path); the batch is processed in chunks to keep the
 * patch matrix under IM2COL_CHUNK_FLOATS. The cpu kernel this replaces is a scalar 7-deep loop
 * through TensorBuffer.get. NCHW falls back to the cpu bridge.
 */
function makeConv2DBackpropFilterKernel(fallback: tf.KernelFunc): tf.KernelFunc {
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
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape as [number, number, number, number],
      attrs.strides as number | [number, number],
      1,
      attrs.pad as 'same' | 'valid' | number,
      attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
      false,
      'channelsLast',
    );
    const { batchSize, inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW, outChannels: CO } = info;
    const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const kkc = KH * KW * CI;
    const perImage = OH * OW;
    const out = backend.makeOutput([KH, KW, CI, CO], 'float32');
    if (kkc * CO === 0) return out;
    if (batchSize * perImage === 0) {
      backend.typedArrayFromHeap(out).fill(0);
      return out;
    }
    const chunk = Math.max(1, Math.min(batchSize, Math.floor(IM2COL_CHUNK_FLOATS / Math.max(1, kkc * perImage))));
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

/**
 * Conv2DBackpropInput (the conv2d input gradient) for NHWC as one XNNPACK matmul + col2im:
 * cols[P, KH·KW·CI] = dy[P, CO] @ Wᵀ (W viewed as [KH·KW·CI, CO], transposed once, explicitly),
 * then each column entry is scatter-added to the input pixel it came from. Replaces the stock
 * wasm kernel, a direct loop that ran at ~1-2 GFLOP/s and dominated CNN backward passes. Any
 * stride/padding works because col2im follows the same index map as im2col. The batch is
 * processed in chunks so cols stays under IM2COL_CHUNK_FLOATS. NCHW goes to the stock kernel.
 */
function makeConv2DBackpropInputKernel(stock: tf.KernelConfig, stockMatMul: tf.KernelConfig, transpose: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as WasmBackendLike;
    const dy = args.inputs.dy as tf.TensorInfo;
    const filter = args.inputs.filter as tf.TensorInfo;
    const attrs = args.attrs ?? {};
    const dataFormat = (attrs.dataFormat ?? 'NHWC') as 'NHWC' | 'NCHW';
    if (dataFormat !== 'NHWC' || dy.dtype !== 'float32' || filter.dtype !== 'float32') return stock.kernelFunc(args);
    const info = tf.backend_util.computeConv2DInfo(
      attrs.inputShape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides as number | [number, number],
      1,
      attrs.pad as 'same' | 'valid' | number,
      attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
      false,
      'channelsLast',
    );
    const { batchSize, inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW, outChannels: CO } = info;
    const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const kkc = KH * KW * CI;
    const perImage = OH * OW;
    const out = backend.makeOutput([batchSize, H, W, CI], 'float32');
    if (batchSize * H * W * CI === 0) return out;
    backend.typedArrayFromHeap(out).fill(0);
    if (kkc * CO * perImage === 0) return out;
    const chunk = Math.max(1, Math.min(batchSize, Math.floor(IM2COL_CHUNK_FLOATS / Math.max(1, kkc * perImage))));
    const wT = transpose({ inputs: { x: { dataId: filter.dataId, shape: [kkc, CO], dtype: 'float32' } }, backend, attrs: { perm: [1, 0] } }) as tf.TensorInfo;
    try {
      for (let b0 = 0; b0 < batchSize; b0 += chunk) {
        const nb = Math.min(chunk, batchSize - b0);
        const P = nb * perImage;
        const temps: tf.TensorInfo[] = [];
        try {
          let dyChunk: tf.TensorInfo;
          if (nb === batchSize) {
            dyChunk = { dataId: dy.dataId, shape: [1, P, CO], dtype: 'float32' };
          } else {
            dyChunk = copySlice(backend, dy, b0 * perImage * CO, [1, P, CO]);
            temps.push(dyChunk);
          }
          const cols = stockMatMul.kernelFunc({
            inputs: { a: dyChunk, b: { dataId: wT.dataId, shape: [1, CO, kkc], dtype: 'float32' } },
            backend,
            attrs: { transposeA: false, transposeB: false },
          }) as tf.TensorInfo;
          temps.push(cols);
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
      backend.disposeData(wT.dataId);
    }
    return out;
  };
}

/**
 * MaxPoolGrad as a direct scatter in JS: each pooling window sends its dy to the first position
 * holding the window maximum (strict >, row-major, from -Infinity: exactly the cpu kernel's
 * maxPoolPositions rule, so ties and NaNs behave the same). The stock wasm kernel is a direct loop
 * that was the second-largest cost of a small CNN's backward pass.
 */
function makeMaxPoolGradKernel(stock: tf.KernelConfig): tf.KernelFunc {
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

function installBridge(s: PatchState): void {
  const have = new Set(tf.getKernelsForBackend(WASM).map((k) => k.kernelName));
  for (const k of tf.getKernelsForBackend(CPU)) {
    const name = k.kernelName;
    if (have.has(name) || s.bridgeInstalled.has(name) || UNBRIDGEABLE.has(name)) continue;
    let kernelFunc: tf.KernelFunc;
    if (name === 'UnsortedSegmentSum') kernelFunc = unsortedSegmentSumKernel;
    else if (name === 'Conv2DBackpropFilter') kernelFunc = makeConv2DBackpropFilterKernel(makeCpuBridge(name));
    else kernelFunc = makeCpuBridge(name);
    const cfg: tf.KernelConfig = { kernelName: name, backendName: WASM, kernelFunc };
    tf.registerKernel(cfg);
    s.bridgeInstalled.set(name, cfg);
  }
}

function removeBridge(s: PatchState): void {
  for (const [name, cfg] of s.bridgeInstalled) {
    if (tf.getKernel(name, WASM) === cfg) tf.unregisterKernel(name, WASM);
    s.bridgeInstalled.delete(name);
  }
}

/**
 * Installs or removes the wasm kernel patches; idempotent, and switchable any number of times in
 * one process (the stock configs are kept, so `{enabled: false}` restores them exactly).
 *
 * - `applyWasmPatches()` installs both the matmul wrapper and the missing-kernel bridge.
 * - `applyWasmPatches({enabled: false})` restores fully stock wasm kernels: the replaced kernels
 *   get their stock configs back and the bridged kernels are unregistered, so conv2d or embedding
 *   training on wasm fails again at the first backward pass with tfjs' "Kernel
 *   'Conv2DBackpropFilter' not registered for backend 'wasm'" (resp. 'UnsortedSegmentSum'), and
 *   transposed/batched matmuls are slow again. This is what `efftrain bench engine` compares.
 * - `matmul: false` / `bridge: false` leave out (and remove, if installed) one of the two parts.
 *
 * The patches are registered for the 'wasm' backend only and do not depend on which backend is
 * active; call it after the wasm backend package is loaded (importing this module loads it).
 * Kernels that become registered for cpu later are bridged on the next call.
 */
export function applyWasmPatches(opts: { enabled?: boolean; matmul?: boolean; bridge?: boolean } = {}): WasmPatchReport {
  const enabled = opts.enabled ?? true;
  const wantMatMul = enabled && (opts.matmul ?? true);
  const wantBridge = enabled && (opts.bridge ?? true);
  const s = state();
  if (wantMatMul) installMatMul(s);
  else removeMatMul(s);
  if (wantBridge) installBridge(s);
  else removeBridge(s);
  const matmul = [...s.matmulInstalled.keys()];
  const bridged = [...s.bridgeInstalled.keys()].sort();
  return { enabled: matmul.length + bridged.length > 0, matmul, bridged };
}
