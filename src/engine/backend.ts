import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { blasStatus, loadBlas, type BlasStatus } from './blas.js';
import { defaultBlasThreads } from './threads.js';
import { applyWasmPatches, type WasmPatchReport } from './wasm-patches.js';

export { blasThreadsForRuns, defaultBlasThreads } from './threads.js';

/**
 * `auto` = tfjs-node if installed, else wasm with the OpenBLAS addon if it is built, else wasm.
 * `wasm` = wasm with efftrain's kernel patches (no BLAS); `wasm-blas` = the same plus OpenBLAS,
 * an error when the addon is not available.
 */
export type BackendChoice = 'auto' | 'wasm' | 'wasm-blas' | 'cpu' | 'node';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'wasm', 'wasm-blas', 'cpu', 'node'];

export interface EngineOptions {
  backend?: BackendChoice;
  /** Apply the wasm kernel patches (transposed matmul fast path, cpu bridge). Default true; off only for benchmarks. */
  wasmPatches?: boolean;
  /** Log the chosen backend to stderr. Default false. */
  log?: boolean;
  /**
   * Most OpenBLAS threads per product on wasm-blas. Default: EFFTRAIN_BLAS_THREADS, else 1 (the
   * runner passes blasThreadsForRuns: the same, capped at cores / workers). Two threads round large
   * products differently from one, so equal counts give equal numbers.
   */
  blasThreads?: number;
}

export interface EngineInfo {
  /** The tfjs backend name: 'wasm', 'cpu' or 'tensorflow'. */
  backend: string;
  /** What runs the kernels, for results and logs: 'wasm+blas', 'wasm', 'cpu' or 'tensorflow'. */
  engine: string;
  patches: WasmPatchReport | null;
  /** The OpenBLAS addon's status (whether it loaded, and why not), when wasm was chosen. */
  blas: BlasStatus | null;
}

let nodeAvailable: boolean | null = null;

/** True when `@tensorflow/tfjs-node` can be imported (it is an optional peer dependency). */
export async function tfjsNodeAvailable(): Promise<boolean> {
  if (nodeAvailable !== null) return nodeAvailable;
  try {
    const name = '@tensorflow/tfjs-node';
    await import(name);
    nodeAvailable = tf.findBackendFactory('tensorflow') != null;
  } catch {
    nodeAvailable = false;
  }
  return nodeAvailable;
}

/**
 * Chooses and initialises the tfjs backend (see BackendChoice). On wasm the kernel patches from
 * `wasm-patches.ts` are applied unless `wasmPatches: false` (which also turns BLAS off).
 */
export async function initEngine(opts: EngineOptions = {}): Promise<EngineInfo> {
  const choice = opts.backend ?? 'auto';
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new Error(`unknown backend "${choice}" (expected one of ${BACKEND_CHOICES.join(', ')})`);
  }
  let name: string;
  if (choice === 'node' || choice === 'auto') {
    const ok = await tfjsNodeAvailable();
    if (ok) name = 'tensorflow';
    else if (choice === 'node') {
      throw new Error('backend "node" needs @tensorflow/tfjs-node@4.22.0 (npm install @tensorflow/tfjs-node@4.22.0); use --backend wasm or auto');
    } else name = 'wasm';
  } else if (choice === 'wasm-blas') name = 'wasm';
  else name = choice;
  const patchesOn = opts.wasmPatches ?? true;
  const wantBlas = name === 'wasm' && (choice === 'wasm-blas' || choice === 'auto');
  const blas = wantBlas ? loadBlas() : null;
  if (choice === 'wasm-blas') {
    if (!blas!.addon) throw new Error(`backend "wasm-blas" needs the OpenBLAS addon: ${blas!.status.reason}; use --backend wasm or auto`);
    if (!patchesOn) throw new Error('backend "wasm-blas" needs the wasm kernel patches (drop --no-wasm-patches)');
  }
  silenceCpuBanner();
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`could not initialise tfjs backend "${name}"`);
  await tf.ready();
  let patches: WasmPatchReport | null = null;
  if (name === 'wasm') {
    patches = applyWasmPatches({
      enabled: patchesOn,
      blas: patchesOn ? (blas?.addon ?? null) : null,
      blasThreads: opts.blasThreads ?? defaultBlasThreads(),
    });
  }
  const engine = name === 'wasm' && patches?.blas ? 'wasm+blas' : name;
  const status = name === 'wasm' ? (blas?.status ?? blasStatus()) : null;
  if (opts.log) console.error(`efftrain: ${engineLine({ backend: name, engine, patches, blas: status })}`);
  return { backend: name, engine, patches, blas: status };
}

/**
 * One line saying what runs the kernels and, on wasm without BLAS, why the fast path is off:
 * "tfjs backend wasm+blas (OpenBLAS 0.3.21 …, 1 thread)" or "tfjs backend wasm (kernel patches
 * on; BLAS off: addon not built …)".
 */
export function engineLine(info: EngineInfo): string {
  if (info.backend !== 'wasm') return `tfjs backend ${info.engine}`;
  if (info.patches?.blas) {
    const t = info.patches.blasThreads;
    return `tfjs backend wasm+blas (${info.blas?.config ?? 'OpenBLAS'}, up to ${t} thread${t === 1 ? '' : 's'} per product)`;
  }
  const why = info.blas?.available ? 'not requested (--backend wasm)' : (info.blas?.reason ?? 'not requested');
  return `tfjs backend wasm (kernel patches ${info.patches?.enabled ? 'on' : 'off'}; BLAS off: ${why})`;
}

/**
 * The cpu backend prints a "install tfjs-node" banner on first use in Node. We choose backends
 * deliberately (and the wasm patches use cpu kernels as a bridge), so mark it as already shown.
 */
function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu && 'firstUse' in cpu) cpu.firstUse = false;
}
