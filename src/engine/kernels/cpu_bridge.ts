/**
 * The cpu bridge: a wasm kernel that runs the cpu backend's kernel of the same name, for kernels
 * wasm 4.22 lacks (gradients such as `DepthwiseConv2dNative*Backprop*`, and many more).
 */
import * as tf from '@tensorflow/tfjs';
import { CPU, sizeOf, type CpuBackendLike, type Values, type WasmBackendLike } from './shared.js';

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
export function makeCpuBridge(name: string): tf.KernelFunc {
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
