/**
 * Kernel patches that make the tfjs 4.22 wasm backend usable for training in Node. Each patched
 * kernel lives in its own file under kernels/ (as tfjs-backend-wasm keeps its kernels); this file
 * installs and removes them.
 *
 * 1. **Replaced kernels** (`matmul` part): `BatchMatMul` and `_FusedMatMul` keep transposed and
 *    batched products on XNNPACK (kernels/BatchMatMul.ts); `Conv2DBackpropInput` becomes one matmul
 *    + col2im and `MaxPoolGrad` a JS scatter (the stock ones are direct loops that dominated a small
 *    CNN's backward pass).
 *
 * 2. **Missing kernels** (`bridge` part): wasm 4.22 lacks kernels that gradients need
 *    (`Conv2DBackpropFilter`, `DepthwiseConv2dNative*Backprop*`, `UnsortedSegmentSum`, ...). Every
 *    kernel the cpu backend has and wasm lacks gets a wasm kernel: the generic cpu bridge
 *    (kernels/cpu_bridge.ts), or for `UnsortedSegmentSum` and channels-last `Conv2DBackpropFilter`
 *    a direct wasm-side implementation.
 *
 * 3. **OpenBLAS** (`blas` option, optional addon, see blas.ts): the matmul kernels and the conv
 *    gradients run their products as sgemm on the wasm heap; small products stay on XNNPACK.
 *    Off unless asked for, so plain patched wasm is unchanged. With the addon, a few more kernels
 *    change (BLAS_KERNELS): Identity shares its input's buffer instead of copying, Slice/SplitV read
 *    through heap views instead of copying the whole input, Sum over leading axes (bias gradients)
 *    and row-vector Add (bias adds) run in the addon, Relu's gradient becomes one kernel, Sum's and
 *    Mean's gradients broadcast dy instead of multiplying by a fresh all-ones tensor, and
 *    `EfftrainAdamW` (the fused optimizer update that src/train/optimizers.ts uses when it is
 *    registered), `EfftrainSoftmaxCE`, `EfftrainLayerNorm` and `EfftrainGelu` (the fused loss,
 *    LayerNorm and GELU of src/engine/fused.ts) are added.
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
import type { BlasAddon } from './blas.js';
import { activeBlas, blasMaxThreads, setBlas } from './kernels/blas_gemm.js';
import { makeMatMulKernel } from './kernels/BatchMatMul.js';
import { makeConv2DBackpropFilterKernel } from './kernels/Conv2DBackpropFilter.js';
import { makeConv2DBackpropInputKernel } from './kernels/Conv2DBackpropInput.js';
import { makeCpuBridge } from './kernels/cpu_bridge.js';
import { makeFusedMatMulKernel } from './kernels/_FusedMatMul.js';
import { fusedAdamWConfig } from './kernels/fused_adamw.js';
import { makeIdentityKernel } from './kernels/Identity.js';
import { makeAddKernel } from './kernels/Add.js';
import { makeReluGradient, reluGradConfig } from './kernels/relu_grad.js';
import { makeMeanGradient, makeSumGradient } from './kernels/reduce_grads.js';
import { broadcastConfig, broadcastGradient } from './kernels/broadcast.js';
import { layerNormConfig, layerNormGradConfig, layerNormGradient } from './kernels/layer_norm.js';
import { geluConfig, geluGradConfig, geluGradient } from './kernels/gelu.js';
import { softmaxCEConfig, softmaxCEGradConfig, softmaxCEGradient } from './kernels/softmax_ce.js';
import { makeSliceKernel, makeSplitVKernel } from './kernels/Slice.js';
import { makeSumKernel } from './kernels/Sum.js';
import { makeMaxPoolGradKernel } from './kernels/MaxPoolGrad.js';
import { CPU, WASM } from './kernels/shared.js';
import { unsortedSegmentSumKernel } from './kernels/UnsortedSegmentSum.js';

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
  /** True when the matmul and conv-gradient products run through the OpenBLAS addon. */
  blas: boolean;
  /** Most OpenBLAS threads one product may use (1 when `blas` is false). */
  blasThreads: number;
  /** Kernels replaced or added for the BLAS path only (empty when `blas` is false). */
  blasKernels: string[];
}

interface PatchState {
  /** Kernel name -> the stock wasm config it replaced. */
  matmulOriginals: Map<string, tf.KernelConfig>;
  /** Kernel name -> the config we installed (used to check it is still ours before removing). */
  matmulInstalled: Map<string, tf.KernelConfig>;
  /** Kernel name -> the bridge config we installed. */
  bridgeInstalled: Map<string, tf.KernelConfig>;
  /** BLAS-path kernels: name -> the config they replaced (undefined for added kernels), and ours. */
  blasOriginals?: Map<string, tf.KernelConfig | undefined>;
  blasInstalled?: Map<string, tf.KernelConfig>;
  /** Gradients registered for the BLAS path: name -> the one replaced (undefined for added ones), and ours. */
  gradOriginals?: Map<string, tf.GradConfig | undefined>;
  gradInstalled?: Map<string, tf.GradConfig>;
}

const STATE_KEY = Symbol.for('efftrain.wasmPatches.state.v1');
/**
 * Stock wasm kernels replaced by faster paths (the `matmul` part of the patches): the two matmul
 * kernels, and the two gradient kernels that dominated a small CNN's backward pass once the filter
 * gradient was fixed. BatchMatMul must stay first: the conv gradient captures its stock config.
 */
const REPLACED_KERNELS = ['BatchMatMul', '_FusedMatMul', 'Conv2DBackpropInput', 'MaxPoolGrad'] as const;
/** Stock kernels replaced, and kernels added, only while the OpenBLAS addon is on. */
const BLAS_KERNELS = [
  'Identity',
  'Sum',
  'Slice',
  'SplitV',
  'Add',
  fusedAdamWConfig.kernelName,
  softmaxCEConfig.kernelName,
  softmaxCEGradConfig.kernelName,
  reluGradConfig.kernelName,
  broadcastConfig.kernelName,
  layerNormConfig.kernelName,
  layerNormGradConfig.kernelName,
  geluConfig.kernelName,
  geluGradConfig.kernelName,
] as const;
/** Added kernels of the BLAS path, by name. */
const BLAS_ADDED: ReadonlyMap<string, tf.KernelConfig> = new Map(
  [fusedAdamWConfig, softmaxCEConfig, softmaxCEGradConfig, reluGradConfig, broadcastConfig, layerNormConfig, layerNormGradConfig, geluConfig, geluGradConfig].map((c) => [
    c.kernelName,
    c,
  ]),
);
/** wasm cannot store complex64 tensors; see the module comment. */
const UNBRIDGEABLE = new Set(['Complex', 'Real', 'Imag', 'ComplexAbs', 'FFT', 'IFFT']);
function state(): PatchState {
  const g = globalThis as unknown as Record<symbol, PatchState | undefined>;
  let s = g[STATE_KEY];
  if (s === undefined) {
    s = { matmulOriginals: new Map(), matmulInstalled: new Map(), bridgeInstalled: new Map() };
    g[STATE_KEY] = s;
  }
  return s;
}

/** Replaces the registered kernel `name` for wasm with `config` (no "already registered" warning). */
function replaceKernel(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName) !== undefined) {
    tf.unregisterKernel(config.kernelName, config.backendName);
  }
  tf.registerKernel(config);
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
    else if (name === '_FusedMatMul') kernelFunc = makeFusedMatMulKernel(orig, transposeCfg.kernelFunc);
    else kernelFunc = makeMatMulKernel(orig, transposeCfg.kernelFunc, false);
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

function installBlasKernels(s: PatchState): void {
  const originals = (s.blasOriginals ??= new Map());
  const installed = (s.blasInstalled ??= new Map());
  for (const name of BLAS_KERNELS) {
    if (installed.has(name)) continue;
    const orig = tf.getKernel(name, WASM);
    let cfg: tf.KernelConfig;
    if (name === 'Identity' && orig) cfg = { ...orig, kernelFunc: makeIdentityKernel(orig, () => activeBlas() !== null) };
    else if (name === 'Sum' && orig) cfg = { ...orig, kernelFunc: makeSumKernel(orig) };
    else if (name === 'Slice' && orig) cfg = { ...orig, kernelFunc: makeSliceKernel(orig, () => activeBlas() !== null) };
    else if (name === 'SplitV' && orig) cfg = { ...orig, kernelFunc: makeSplitVKernel(orig, () => activeBlas() !== null) };
    else if (name === 'Add' && orig) cfg = { ...orig, kernelFunc: makeAddKernel(orig) };
    else if (BLAS_ADDED.has(name)) cfg = BLAS_ADDED.get(name)!;
    else continue;
    replaceKernel(cfg);
    originals.set(name, orig);
    installed.set(name, cfg);
  }
  // Gradients are global (not per backend): ours check at call time that wasm runs with the addon.
  const gradOriginals = (s.gradOriginals ??= new Map());
  const gradInstalled = (s.gradInstalled ??= new Map());
  const replaced: [string, (orig: tf.GradConfig) => tf.GradConfig][] = [
    ['Relu', makeReluGradient],
    ['Sum', makeSumGradient],
    ['Mean', makeMeanGradient],
  ];
  const grads: tf.GradConfig[] = [softmaxCEGradient, broadcastGradient, layerNormGradient, geluGradient];
  for (const [name, make] of replaced) {
    const orig = tf.getGradient(name);
    if (orig && !gradInstalled.has(name)) grads.push(make(orig));
  }
  for (const g of grads) {
    if (gradInstalled.has(g.kernelName)) continue;
    gradOriginals.set(g.kernelName, tf.getGradient(g.kernelName));
    tf.registerGradient(g);
    gradInstalled.set(g.kernelName, g);
  }
}

function removeBlasKernels(s: PatchState): void {
  for (const [name, cfg] of s.blasInstalled ?? []) {
    const orig = s.blasOriginals?.get(name);
    if (tf.getKernel(name, WASM) === cfg) {
      if (orig !== undefined) replaceKernel(orig);
      else tf.unregisterKernel(name, WASM);
    }
    s.blasInstalled!.delete(name);
    s.blasOriginals?.delete(name);
  }
  for (const [name, g] of s.gradInstalled ?? []) {
    const orig = s.gradOriginals?.get(name);
    if (tf.getGradient(name) === g) {
      if (orig !== undefined) tf.registerGradient(orig);
      else tf.unregisterGradient(name);
    }
    s.gradInstalled!.delete(name);
    s.gradOriginals?.delete(name);
  }
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
 * - `blas: addon` (from `loadBlas()`) runs large products of the replaced kernels through OpenBLAS,
 *   with at most `blasThreads` threads per product (default 1); omitted or null turns it off. It
 *   needs the matmul part.
 *
 * The patches are registered for the 'wasm' backend only and do not depend on which backend is
 * active; call it after the wasm backend package is loaded (importing this module loads it).
 * Kernels that become registered for cpu later are bridged on the next call.
 */
export function applyWasmPatches(
  opts: { enabled?: boolean; matmul?: boolean; bridge?: boolean; blas?: BlasAddon | null; blasThreads?: number } = {},
): WasmPatchReport {
  const enabled = opts.enabled ?? true;
  const wantMatMul = enabled && (opts.matmul ?? true);
  const wantBridge = enabled && (opts.bridge ?? true);
  const s = state();
  if (wantMatMul) installMatMul(s);
  else removeMatMul(s);
  if (wantBridge) installBridge(s);
  else removeBridge(s);
  const blasAddon = wantMatMul ? (opts.blas ?? null) : null;
  setBlas(blasAddon, opts.blasThreads ?? 1);
  if (blasAddon) installBlasKernels(s);
  else removeBlasKernels(s);
  const matmul = [...s.matmulInstalled.keys()];
  const bridged = [...s.bridgeInstalled.keys()].sort();
  const blas = activeBlas() !== null;
  const blasKernels = [...(s.blasInstalled?.keys() ?? [])];
  return { enabled: matmul.length + bridged.length > 0, matmul, bridged, blas, blasThreads: blas ? blasMaxThreads() : 1, blasKernels };
}
