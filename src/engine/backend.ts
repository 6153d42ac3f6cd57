import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { applyWasmPatches, type WasmPatchReport } from './wasm-patches.js';

export type BackendChoice = 'auto' | 'wasm' | 'cpu' | 'node';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'wasm', 'cpu', 'node'];

export interface EngineOptions {
  backend?: BackendChoice;
  /** Apply the wasm kernel patches (transposed matmul fast path, cpu bridge). Default true; off only for benchmarks. */
  wasmPatches?: boolean;
  /** Log the chosen backend to stderr. Default false. */
  log?: boolean;
}

export interface EngineInfo {
  backend: string;
  patches: WasmPatchReport | null;
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
 * Chooses and initialises the tfjs backend. `auto` = tfjs-node when importable, else wasm.
 * On wasm the kernel patches from `wasm-patches.ts` are applied unless `wasmPatches: false`.
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
  } else name = choice;
  silenceCpuBanner();
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`could not initialise tfjs backend "${name}"`);
  await tf.ready();
  let patches: WasmPatchReport | null = null;
  if (name === 'wasm') patches = applyWasmPatches({ enabled: opts.wasmPatches ?? true });
  if (opts.log) {
    const extra = name === 'wasm' ? ` (kernel patches ${patches?.enabled ? 'on' : 'off'})` : '';
    console.error(`efftrain: tfjs backend ${name}${extra}`);
  }
  return { backend: name, patches };
}

/**
 * The cpu backend prints a "install tfjs-node" banner on first use in Node. We choose backends
 * deliberately (and the wasm patches use cpu kernels as a bridge), so mark it as already shown.
 */
function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu && 'firstUse' in cpu) cpu.firstUse = false;
}
