/**
 * The optional shift-engine addon (native/shift.c, built by scripts/build-native-shift.sh, which
 * scripts/build-native.sh calls): batched SIMD kernels for the multiplication-free S3 inference engine
 * (src/methods/s3/shift-batched.ts). When it does not load, the engine runs its TypeScript path and
 * `shiftAddonStatus().reason` says why.
 *
 * `EFFTRAIN_SHIFT_NATIVE=0` forces it off; `EFFTRAIN_SHIFT_ADDON=/path/x.node` loads another build.
 */

/** The contract version this file expects of native/shift.c (EFFTRAIN_SHIFT_ABI there). */
export const SHIFT_ABI = 1;

type F64 = Float64Array;
type I32 = Int32Array;

/**
 * The addon's kernels on blocks of `lanes` samples stored element-major, sample-minor
 * ([e·lanes + s]); see native/shift.c for each contract. All throw TypeError on wrong types or lengths.
 */
export interface ShiftAddon {
  abi: number;
  lanes: number;
  config(): string;
  loadInput(images: Float32Array, n: number, inputSize: number, b0: number, scale: number, offset: number, out: F64): void;
  conv2d(x: F64, out: F64, kernel: F64, bias: F64 | null, geom: I32): void;
  dense(x: F64, out: F64, kernel: F64, bias: F64 | null, inFeatures: number, units: number): void;
  affine(x: F64, scale: F64, offset: F64): void;
  relu(x: F64 | I32): void;
  maxPool(x: F64 | I32, out: F64 | I32, geom: I32): void;
  globalAvgPool(x: F64, out: F64, positions: number, channels: number): void;
  toFloat(x: I32, out: F64, scales: F64): void;
  maxAbs(x: F64 | I32, out: F64): void;
  quantize(x: F64, out: I32, scales: F64): void;
  shiftRight(x: I32, r: I32): void;
  shiftLayer(x: I32, pad: I32 | null, out: I32, ptr: I32, offs: I32, bias: I32, geom: I32): void;
  output(x: F64, out: Float32Array | F64, b0: number, n: number, outSize: number): void;
}

export interface ShiftAddonStatus {
  available: boolean;
  /** Why the addon is off (empty when available). */
  reason: string;
  /** e.g. "16-sample blocks, AVX-512". */
  config?: string;
  path?: string;
}

let loaded: { addon: ShiftAddon | null; status: ShiftAddonStatus } | null = null;

/** Loads the addon once; never throws (a failure is reported in the status). Browser-safe (no static node: import). */
export function loadShiftAddon(): { addon: ShiftAddon | null; status: ShiftAddonStatus } {
  if (loaded) return loaded;
  const off = (reason: string, path?: string) => (loaded = { addon: null, status: { available: false, reason, path } });
  const proc = (globalThis as { process?: { versions?: { node?: string }; env?: Record<string, string | undefined>; getBuiltinModule?: (id: string) => unknown } }).process;
  if (!proc?.versions?.node || typeof proc.getBuiltinModule !== 'function') return off('not running in Node (process.getBuiltinModule missing)');
  const env = proc.env ?? {};
  if (env.EFFTRAIN_SHIFT_NATIVE === '0') return off('EFFTRAIN_SHIFT_NATIVE=0');
  const { createRequire } = proc.getBuiltinModule('module') as { createRequire: (url: string) => (id: string) => unknown };
  const { existsSync } = proc.getBuiltinModule('fs') as { existsSync: (p: string) => boolean };
  const { fileURLToPath } = proc.getBuiltinModule('url') as { fileURLToPath: (u: URL) => string };
  // dist/engine -> ../../native, dist-test/src/engine -> ../../../native
  const candidates = env.EFFTRAIN_SHIFT_ADDON
    ? [env.EFFTRAIN_SHIFT_ADDON]
    : ['../../native/build/efftrain_shift.node', '../../../native/build/efftrain_shift.node'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) return off('addon not built (run scripts/build-native.sh; needs a C compiler and Node headers)');
  try {
    const addon = createRequire(import.meta.url)(path) as ShiftAddon;
    if (addon.abi !== SHIFT_ABI) return off(`addon at ${path} was built from other sources (contract ${addon.abi}, need ${SHIFT_ABI}): re-run scripts/build-native.sh`, path);
    loaded = { addon, status: { available: true, reason: '', config: addon.config(), path } };
  } catch (e) {
    off(`addon failed to load: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`, path);
  }
  return loaded!;
}

/** The addon's load status (loads it if needed). */
export function shiftAddonStatus(): ShiftAddonStatus {
  return loadShiftAddon().status;
}
