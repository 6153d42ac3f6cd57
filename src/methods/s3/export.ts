/**
 * Export of shift networks to a compact binary format.
 *
 * Paper: Li et al., "S³: Sign-Sparse-Shift Reparametrization …", NeurIPS 2021 — Sec. 3 (weights
 * w = ±2^p or 0; the released checkpoints store the discrete weights directly) and the experimental
 * setup (first conv, last FC and BatchNorm stay full precision). Encoding of shift weights follows
 * DeepShift (Elhoushi et al., CVPR-W 2021, Sec. 3.3: sign + shift per weight), with an explicit zero
 * code instead of DeepShift's out-of-range shift.
 *
 * Binary layout (all integers little-endian):
 *   bytes 0..3   magic "EFSH"
 *   bytes 4..5   u16 format version (1)
 *   bytes 6..7   u16 flags (0)
 *   bytes 8..11  u32 M = byte length of the JSON metadata
 *   bytes 12..   M bytes UTF-8 JSON metadata, then zero padding to a multiple of 4
 *   data section: blobs, each starting at a multiple of 4 (offsets in the metadata are relative to
 *                 the start of the data section)
 *   last 4 bytes u32 CRC-32 (IEEE) of every preceding byte
 * Blobs: float32 arrays (little-endian) for full-precision kernels/biases/affines, and packed b-bit
 * codes for shift weights: weight i occupies stream bits [i·b, i·b + b) (bit j of the stream is bit
 * j mod 8 of byte ⌊j/8⌋); code = signBit << (b−1) | m, where m = 0 encodes an exact zero (the zero flag)
 * and m ≥ 1 encodes p = pMin + m − 1; signBit = 1 for negative weights. With b bits this holds the
 * 2^b − 1 values {0, ±2^p : p ∈ [pMin, pMin + 2^{b−1} − 2]} — exactly the S3/DeepShift-PS set.
 */
import * as tf from '@tensorflow/tfjs';
import type { DiscreteWeights, ShiftParameterization } from './param.js';
import { ShiftConv2D, ShiftDense, ShiftLayerBase } from './layers.js';

/** Activations the exported format supports ('softmax' only as the network's last operation). */
export type ExportActivation = 'linear' | 'relu' | 'softmax';

/** Full-precision 2-D convolution, NHWC, kernel [kh, kw, cin, cout]. */
export interface FloatConvSpec {
  kind: 'conv2d';
  name: string;
  kernelSize: [number, number];
  strides: [number, number];
  padding: 'same' | 'valid';
  inChannels: number;
  filters: number;
  activation: ExportActivation;
  kernel: Float32Array;
  bias: Float32Array | null;
}

/** Full-precision dense layer, kernel [in, units]. */
export interface FloatDenseSpec {
  kind: 'dense';
  name: string;
  inFeatures: number;
  units: number;
  activation: ExportActivation;
  kernel: Float32Array;
  bias: Float32Array | null;
}

interface ShiftCommon {
  name: string;
  activation: 'linear' | 'relu';
  bits: number;
  parameterization: ShiftParameterization;
  pMin: number;
  pMax: number;
  weights: DiscreteWeights;
  bias: Float32Array | null;
}

/** Shift convolution (weights {0, ±2^p}), NHWC, kernel [kh, kw, cin, cout]. */
export interface ShiftConvSpec extends ShiftCommon {
  kind: 'shiftConv2d';
  kernelSize: [number, number];
  strides: [number, number];
  padding: 'same' | 'valid';
  inChannels: number;
  filters: number;
}

/** Shift dense layer (weights {0, ±2^p}), kernel [in, units]. */
export interface ShiftDenseSpec extends ShiftCommon {
  kind: 'shiftDense';
  inFeatures: number;
  units: number;
}

/** Max pooling, 'valid' padding. */
export interface MaxPoolSpec {
  kind: 'maxPool2d';
  name: string;
  poolSize: [number, number];
  strides: [number, number];
}

/** Flatten (NHWC order, identical to tfjs `flatten` on channels-last data). */
export interface FlattenSpec {
  kind: 'flatten';
  name: string;
}

/** Standalone activation. */
export interface ActivationSpec {
  kind: 'activation';
  name: string;
  activation: ExportActivation;
}

/** Per-channel affine y = x·scale[c] + offset[c] (an inference-mode BatchNorm that could not be folded). */
export interface ChannelAffineSpec {
  kind: 'channelAffine';
  name: string;
  channels: number;
  scale: Float32Array;
  offset: Float32Array;
}

/** Global average pooling over H and W. */
export interface GlobalAvgPoolSpec {
  kind: 'globalAvgPool2d';
  name: string;
}

export type LayerSpec =
  | FloatConvSpec
  | FloatDenseSpec
  | ShiftConvSpec
  | ShiftDenseSpec
  | MaxPoolSpec
  | FlattenSpec
  | ActivationSpec
  | ChannelAffineSpec
  | GlobalAvgPoolSpec;

/** In-memory description of an exported shift network (what `packShiftModel` serialises). */
export interface ShiftModelDescription {
  /** Per-sample input shape: [H, W, C] for images or [D] for vectors. */
  inputShape: number[];
  /** Input scaling applied by the inference engine: x = raw·inputScale + inputOffset. */
  inputScale: number;
  inputOffset: number;
  layers: LayerSpec[];
}

export const SHIFT_FORMAT_MAGIC = 'EFSH';
export const SHIFT_FORMAT_VERSION = 1;

// ---------------------------------------------------------------------------------------------
// Shapes

/**
 * Output shape (per sample) of one exported layer — conv arithmetic as in tfjs ('same':
 * ⌈in/s⌉, 'valid': ⌈(in − k + 1)/s⌉). Used by the S3 export/inference path (S3 paper Sec. 3).
 */
export function layerOutputShape(spec: LayerSpec, inShape: number[]): number[] {
  const need3 = (): [number, number, number] => {
    if (inShape.length !== 3) throw new Error(`layer ${spec.name} (${spec.kind}) needs an [H, W, C] input, got [${inShape.join(', ')}]`);
    return [inShape[0], inShape[1], inShape[2]];
  };
  switch (spec.kind) {
    case 'conv2d':
    case 'shiftConv2d': {
      const [h, w, c] = need3();
      if (c !== spec.inChannels) throw new Error(`layer ${spec.name}: expected ${spec.inChannels} input channels, got ${c}`);
      const [kh, kw] = spec.kernelSize;
      const [sh, sw] = spec.strides;
      const oh = spec.padding === 'same' ? Math.ceil(h / sh) : Math.ceil((h - kh + 1) / sh);
      const ow = spec.padding === 'same' ? Math.ceil(w / sw) : Math.ceil((w - kw + 1) / sw);
      if (oh < 1 || ow < 1) throw new Error(`layer ${spec.name}: empty output for input [${inShape.join(', ')}]`);
      return [oh, ow, spec.filters];
    }
    case 'dense':
    case 'shiftDense': {
      if (inShape.length !== 1 || inShape[0] !== spec.inFeatures) {
        throw new Error(`layer ${spec.name}: expected a flat input of ${spec.inFeatures}, got [${inShape.join(', ')}]`);
      }
      return [spec.units];
    }
    case 'maxPool2d': {
      const [h, w, c] = need3();
      const oh = Math.ceil((h - spec.poolSize[0] + 1) / spec.strides[0]);
      const ow = Math.ceil((w - spec.poolSize[1] + 1) / spec.strides[1]);
      if (oh < 1 || ow < 1) throw new Error(`layer ${spec.name}: empty pooling output`);
      return [oh, ow, c];
    }
    case 'flatten':
      return [inShape.reduce((a, b) => a * b, 1)];
    case 'activation':
      return inShape.slice();
    case 'channelAffine': {
      if (inShape[inShape.length - 1] !== spec.channels) throw new Error(`layer ${spec.name}: expected ${spec.channels} channels`);
      return inShape.slice();
    }
    case 'globalAvgPool2d': {
      const [, , c] = need3();
      return [c];
    }
  }
}

/** Shapes of every activation of the exported network: [input, after layer 0, …] (S3 Sec. 3 export). */
export function inferShapes(desc: ShiftModelDescription): number[][] {
  const shapes = [desc.inputShape.slice()];
  for (const l of desc.layers) shapes.push(layerOutputShape(l, shapes[shapes.length - 1]));
  return shapes;
}

// ---------------------------------------------------------------------------------------------
// tfjs model → description

/** Options of `describeShiftModel` / `exportShiftModel`. */
export interface ExportOptions {
  /** Recorded input scaling x = raw·inputScale + inputOffset (defaults 1 and 0: raw = model input). */
  inputScale?: number;
  inputOffset?: number;
}

function activationName(layer: tf.layers.Layer, act: unknown): ExportActivation {
  const a = act == null ? 'linear' : String(act);
  if (a === 'linear' || a === 'relu' || a === 'softmax') return a;
  throw new Error(`layer ${layer.name}: activation '${a}' is not supported by the shift export (use linear, relu or softmax)`);
}

function pairOf(v: unknown, what: string): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0] as number, v[1] as number];
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'number') return [v[0] as number, v[0] as number];
  throw new Error(`unsupported ${what}: ${JSON.stringify(v)}`);
}

function weightsOf(layer: tf.layers.Layer): Float32Array[] {
  return layer.getWeights().map((w) => Float32Array.from(w.dataSync() as Float32Array));
}

/**
 * Describes a tfjs model (sequential chain) for export — S3 paper Sec. 3 / experimental setup: shift
 * layers are exported as discrete {sign, zero, shift}; full-precision conv/dense (first conv, last FC),
 * BatchNorm and pooling stay float. Supported layers: InputLayer, Conv2D, Dense, ShiftConv2D,
 * ShiftDense, MaxPooling2D ('valid'), Flatten, Activation/ReLU (linear, relu, softmax), Dropout
 * (identity), BatchNormalization (last axis; folded into a preceding full-precision conv/dense with
 * linear activation, else kept as a per-channel affine), GlobalAveragePooling2D. Anything else throws.
 */
export function describeShiftModel(model: tf.LayersModel, opts: ExportOptions = {}): ShiftModelDescription {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) throw new Error('exportShiftModel supports single-input, single-output models');
  const inShape = model.inputs[0].shape.slice(1);
  if (inShape.some((d) => d == null)) throw new Error(`exportShiftModel needs a fully known input shape, got [${model.inputs[0].shape.join(', ')}]`);
  const desc: ShiftModelDescription = {
    inputShape: inShape as number[],
    inputScale: opts.inputScale ?? 1,
    inputOffset: opts.inputOffset ?? 0,
    layers: [],
  };
  let shape = desc.inputShape.slice();
  let prevLayer: tf.layers.Layer | null = null;
  const push = (spec: LayerSpec): void => {
    shape = layerOutputShape(spec, shape);
    desc.layers.push(spec);
  };
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer') continue;
    // Only linear chains: every layer must consume exactly the previous layer's output.
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    const chained =
      inbound.length === 1 && (prevLayer === null ? inbound[0].getClassName() === 'InputLayer' : inbound[0] === prevLayer);
    if (!chained) throw new Error(`exportShiftModel supports linear (sequential) models only; layer ${layer.name} breaks the chain`);
    prevLayer = layer;
    const cfg = layer.getConfig();
    if (layer instanceof ShiftConv2D || layer instanceof ShiftDense) {
      const { pMin, pMax } = layer.range;
      const common = {
        name: layer.name,
        activation: layer.activation,
        bits: layer.bits,
        parameterization: layer.parameterization,
        pMin,
        pMax,
        weights: layer.discreteWeights(),
        bias: layer.biasValues(),
      };
      if (layer instanceof ShiftConv2D) {
        push({
          kind: 'shiftConv2d',
          ...common,
          kernelSize: [layer.kernelSize[0], layer.kernelSize[1]],
          strides: [layer.strides[0], layer.strides[1]],
          padding: layer.padding,
          inChannels: common.weights.shape[2],
          filters: layer.filters,
        });
      } else {
        push({ kind: 'shiftDense', ...common, inFeatures: common.weights.shape[0], units: layer.units });
      }
      continue;
    }
    if (layer instanceof ShiftLayerBase) throw new Error(`layer ${layer.name}: unknown shift layer subclass ${cls}`);
    switch (cls) {
      case 'Conv2D': {
        if (cfg.dataFormat != null && cfg.dataFormat !== 'channelsLast') throw new Error(`layer ${layer.name}: only channelsLast convolutions are supported`);
        const dil = pairOf(cfg.dilationRate ?? 1, 'dilationRate');
        if (dil[0] !== 1 || dil[1] !== 1) throw new Error(`layer ${layer.name}: dilated convolutions are not supported`);
        const w = weightsOf(layer);
        const kshape = layer.getWeights()[0].shape as number[];
        const padding = cfg.padding as string;
        if (padding !== 'same' && padding !== 'valid') throw new Error(`layer ${layer.name}: padding '${padding}' not supported`);
        push({
          kind: 'conv2d',
          name: layer.name,
          kernelSize: [kshape[0], kshape[1]],
          strides: pairOf(cfg.strides ?? 1, 'strides'),
          padding,
          inChannels: kshape[2],
          filters: kshape[3],
          activation: activationName(layer, cfg.activation),
          kernel: w[0],
          bias: cfg.useBias ? w[1] : null,
        });
        break;
      }
      case 'Dense': {
        const w = weightsOf(layer);
        const kshape = layer.getWeights()[0].shape as number[];
        if (shape.length !== 1) throw new Error(`layer ${layer.name}: Dense on a rank-${shape.length + 1} input is not supported (add a Flatten)`);
        push({
          kind: 'dense',
          name: layer.name,
          inFeatures: kshape[0],
          units: kshape[1],
          activation: activationName(layer, cfg.activation),
          kernel: w[0],
          bias: cfg.useBias ? w[1] : null,
        });
        break;
      }
      case 'MaxPooling2D': {
        if (cfg.padding !== 'valid') throw new Error(`layer ${layer.name}: only 'valid' max pooling is supported`);
        if (cfg.dataFormat != null && cfg.dataFormat !== 'channelsLast') throw new Error(`layer ${layer.name}: only channelsLast pooling is supported`);
        const pool = pairOf(cfg.poolSize, 'poolSize');
        push({ kind: 'maxPool2d', name: layer.name, poolSize: pool, strides: pairOf(cfg.strides ?? pool, 'strides') });
        break;
      }
      case 'Flatten':
        if (cfg.dataFormat != null && cfg.dataFormat !== 'channelsLast') throw new Error(`layer ${layer.name}: only channelsLast flatten is supported`);
        push({ kind: 'flatten', name: layer.name });
        break;
      case 'Activation':
        push({ kind: 'activation', name: layer.name, activation: activationName(layer, cfg.activation) });
        break;
      case 'ReLU':
        if (cfg.maxValue != null) throw new Error(`layer ${layer.name}: ReLU with maxValue is not supported`);
        push({ kind: 'activation', name: layer.name, activation: 'relu' });
        break;
      case 'Dropout':
        break;
      case 'GlobalAveragePooling2D':
        if (cfg.dataFormat != null && cfg.dataFormat !== 'channelsLast') throw new Error(`layer ${layer.name}: only channelsLast pooling is supported`);
        push({ kind: 'globalAvgPool2d', name: layer.name });
        break;
      case 'BatchNormalization': {
        const axis = cfg.axis as number;
        const rank = shape.length + 1;
        if (axis !== -1 && axis !== rank - 1) throw new Error(`layer ${layer.name}: only last-axis BatchNormalization is supported`);
        const w = weightsOf(layer);
        let k = 0;
        const gamma = cfg.scale ? w[k++] : null;
        const beta = cfg.center ? w[k++] : null;
        const mean = w[k++];
        const variance = w[k++];
        const eps = cfg.epsilon as number;
        const c = mean.length;
        const scale = new Float32Array(c);
        const offset = new Float32Array(c);
        for (let i = 0; i < c; i++) {
          const s = (gamma ? gamma[i] : 1) / Math.sqrt(variance[i] + eps);
          scale[i] = s;
          offset[i] = (beta ? beta[i] : 0) - mean[i] * s;
        }
        const prev = desc.layers[desc.layers.length - 1];
        if (prev && (prev.kind === 'conv2d' || prev.kind === 'dense') && prev.activation === 'linear') {
          // Fold into the full-precision layer: W' = W·scale (per output channel), b' = b·scale + offset.
          const cout = prev.kind === 'conv2d' ? prev.filters : prev.units;
          const kernel = Float32Array.from(prev.kernel);
          for (let i = 0; i < kernel.length; i++) kernel[i] *= scale[i % cout];
          const bias = new Float32Array(cout);
          for (let i = 0; i < cout; i++) bias[i] = (prev.bias ? prev.bias[i] : 0) * scale[i] + offset[i];
          prev.kernel = kernel;
          prev.bias = bias;
        } else {
          push({ kind: 'channelAffine', name: layer.name, channels: c, scale, offset });
        }
        break;
      }
      default:
        throw new Error(`exportShiftModel: unsupported layer ${layer.name} (${cls}); supported: Conv2D, Dense, ShiftConv2D, ShiftDense, MaxPooling2D, Flatten, Activation, ReLU, Dropout, BatchNormalization, GlobalAveragePooling2D`);
    }
  }
  for (let i = 0; i < desc.layers.length - 1; i++) {
    const l = desc.layers[i];
    if ((l.kind === 'activation' || l.kind === 'conv2d' || l.kind === 'dense') && l.activation === 'softmax') {
      throw new Error(`layer ${l.name}: softmax is only supported as the last operation`);
    }
  }
  return desc;
}

/**
 * tfjs model → packed bytes (S3 paper Sec. 3: shift layers stored as discrete low-bit weights; FP
 * layers as float32). Equivalent to `packShiftModel(describeShiftModel(model, opts))`.
 */
export function exportShiftModel(model: tf.LayersModel, opts: ExportOptions = {}): Uint8Array {
  return packShiftModel(describeShiftModel(model, opts));
}

// ---------------------------------------------------------------------------------------------
// Packing

/**
 * Packs discrete shift weights at b bits per weight (S3 Sec. 3 value set; DeepShift Sec. 3.3 sign+shift
 * encoding with an explicit zero code): code = signBit << (b−1) | m, m = 0 ⇔ zero, else p = pMin + m − 1.
 */
export function packShiftCodes(w: DiscreteWeights, bits: number, pMin: number, pMax: number): Uint8Array {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new Error(`packShiftCodes: bits must be in [2, 8], got ${bits}`);
  if (pMax - pMin + 1 > 2 ** (bits - 1) - 1) throw new Error(`packShiftCodes: ${pMax - pMin + 1} exponents do not fit ${bits} bits`);
  const n = w.zero.length;
  const out = new Uint8Array(Math.ceil((n * bits) / 8));
  for (let i = 0; i < n; i++) {
    let code = 0;
    if (!w.zero[i]) {
      const p = w.shift[i];
      const s = w.sign[i];
      if (p < pMin || p > pMax || !Number.isInteger(p)) throw new Error(`packShiftCodes: weight ${i} exponent ${p} outside [${pMin}, ${pMax}]`);
      if (s !== 1 && s !== -1) throw new Error(`packShiftCodes: weight ${i} has sign ${s} but is not flagged zero`);
      code = ((s < 0 ? 1 : 0) << (bits - 1)) | (p - pMin + 1);
    }
    const bit = i * bits;
    for (let j = 0; j < bits; j++) {
      if ((code >> j) & 1) {
        const b = bit + j;
        out[b >> 3] |= 1 << (b & 7);
      }
    }
  }
  return out;
}

/** Inverse of `packShiftCodes` (S3 Sec. 3 value set); zero weights come back as sign 0, shift 0. */
export function unpackShiftCodes(bytes: Uint8Array, n: number, bits: number, pMin: number, shape: number[]): DiscreteWeights {
  if (bytes.length < Math.ceil((n * bits) / 8)) throw new Error('unpackShiftCodes: not enough bytes');
  const out: DiscreteWeights = { sign: new Int8Array(n), zero: new Uint8Array(n), shift: new Int8Array(n), shape: shape.slice() };
  const mMask = (1 << (bits - 1)) - 1;
  for (let i = 0; i < n; i++) {
    const bit = i * bits;
    let code = 0;
    for (let j = 0; j < bits; j++) {
      const b = bit + j;
      code |= ((bytes[b >> 3] >> (b & 7)) & 1) << j;
    }
    const m = code & mMask;
    if (m === 0) {
      out.zero[i] = 1;
      out.sign[i] = 0;
      out.shift[i] = 0;
    } else {
      out.sign[i] = code >> (bits - 1) ? -1 : 1;
      out.shift[i] = pMin + m - 1;
    }
  }
  return out;
}

/**
 * Canonical form of a discrete snapshot (S3 Sec. 3 weights; zero carries no sign or shift): zero
 * weights get sign 0 and shift 0 — what `unpackShiftCodes` returns.
 */
export function canonicalDiscrete(w: DiscreteWeights): DiscreteWeights {
  const out: DiscreteWeights = { sign: Int8Array.from(w.sign), zero: Uint8Array.from(w.zero), shift: Int8Array.from(w.shift), shape: w.shape.slice() };
  for (let i = 0; i < out.zero.length; i++) {
    if (out.zero[i]) {
      out.sign[i] = 0;
      out.shift[i] = 0;
    }
  }
  return out;
}

let crcTable: Uint32Array | null = null;
/** CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) — integrity check of the S3 export format. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

interface BlobRef {
  offset: number;
  byteLength: number;
}

const align4 = (n: number): number => (n + 3) & ~3;

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function expectedKernelShape(l: FloatConvSpec | FloatDenseSpec | ShiftConvSpec | ShiftDenseSpec): number[] {
  return l.kind === 'conv2d' || l.kind === 'shiftConv2d'
    ? [l.kernelSize[0], l.kernelSize[1], l.inChannels, l.filters]
    : [l.inFeatures, l.units];
}

/**
 * Serialises a shift-network description into the binary format documented at the top of this file
 * (S3 paper Sec. 3: low-bit shift weights + full-precision stem/head/BN). Validates shapes first.
 */
export function packShiftModel(desc: ShiftModelDescription): Uint8Array {
  inferShapes(desc); // validates the chain
  const blobs: Uint8Array[] = [];
  let dataLen = 0;
  const addBlob = (bytes: Uint8Array): BlobRef => {
    const ref = { offset: dataLen, byteLength: bytes.length };
    blobs.push(bytes);
    dataLen = align4(dataLen + bytes.length);
    return ref;
  };
  const addFloat = (a: Float32Array, expected: number, what: string): BlobRef => {
    if (a.length !== expected) throw new Error(`packShiftModel: ${what} has ${a.length} values, expected ${expected}`);
    const bytes = new Uint8Array(a.length * 4);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < a.length; i++) dv.setFloat32(i * 4, a[i], true);
    return addBlob(bytes);
  };
  const metaLayers: Record<string, unknown>[] = [];
  for (const l of desc.layers) {
    switch (l.kind) {
      case 'conv2d':
      case 'dense': {
        const { kernel, bias, ...rest } = l;
        const kshape = expectedKernelShape(l);
        const cout = kshape[kshape.length - 1];
        metaLayers.push({
          ...rest,
          kernel: addFloat(kernel, product(kshape), `${l.name} kernel`),
          bias: bias ? addFloat(bias, cout, `${l.name} bias`) : null,
        });
        break;
      }
      case 'shiftConv2d':
      case 'shiftDense': {
        const { weights, bias, ...rest } = l;
        const kshape = expectedKernelShape(l);
        if (weights.zero.length !== product(kshape) || weights.shape.join(',') !== kshape.join(',')) {
          throw new Error(`packShiftModel: ${l.name} weights have shape [${weights.shape.join(', ')}], expected [${kshape.join(', ')}]`);
        }
        const cout = kshape[kshape.length - 1];
        metaLayers.push({
          ...rest,
          codes: addBlob(packShiftCodes(weights, l.bits, l.pMin, l.pMax)),
          bias: bias ? addFloat(bias, cout, `${l.name} bias`) : null,
        });
        break;
      }
      case 'channelAffine': {
        const { scale, offset, ...rest } = l;
        metaLayers.push({ ...rest, scale: addFloat(scale, l.channels, `${l.name} scale`), offset: addFloat(offset, l.channels, `${l.name} offset`) });
        break;
      }
      default:
        metaLayers.push({ ...l });
    }
  }
  const meta = {
    format: 'efftrain-shift',
    version: SHIFT_FORMAT_VERSION,
    inputShape: desc.inputShape,
    inputScale: desc.inputScale,
    inputOffset: desc.inputOffset,
    dataByteLength: dataLen,
    layers: metaLayers,
  };
  const metaBytes = new TextEncoder().encode(JSON.stringify(meta));
  const headerLen = align4(12 + metaBytes.length);
  const total = headerLen + dataLen + 4;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = SHIFT_FORMAT_MAGIC.charCodeAt(i);
  dv.setUint16(4, SHIFT_FORMAT_VERSION, true);
  dv.setUint16(6, 0, true);
  dv.setUint32(8, metaBytes.length, true);
  out.set(metaBytes, 12);
  let off = headerLen;
  for (const b of blobs) {
    out.set(b, off);
    off = align4(off + b.length);
  }
  dv.setUint32(total - 4, crc32(out.subarray(0, total - 4)), true);
  return out;
}

/**
 * Parses bytes written by `packShiftModel` back into a description (S3 paper Sec. 3 export). Verifies
 * magic, version and CRC-32. Round trip is exact (zero weights come back canonical: sign 0, shift 0).
 */
export function unpackShiftModel(bytes: Uint8Array): ShiftModelDescription {
  if (bytes.length < 16) throw new Error('unpackShiftModel: too short');
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== SHIFT_FORMAT_MAGIC) throw new Error(`unpackShiftModel: bad magic '${magic}'`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(4, true);
  if (version !== SHIFT_FORMAT_VERSION) throw new Error(`unpackShiftModel: unsupported version ${version}`);
  const crc = dv.getUint32(bytes.length - 4, true);
  if (crc !== crc32(bytes.subarray(0, bytes.length - 4))) throw new Error('unpackShiftModel: CRC mismatch (corrupted file)');
  const metaLen = dv.getUint32(8, true);
  const meta = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + metaLen))) as {
    inputShape: number[];
    inputScale: number;
    inputOffset: number;
    dataByteLength: number;
    layers: Record<string, unknown>[];
  };
  const dataStart = align4(12 + metaLen);
  if (dataStart + meta.dataByteLength + 4 !== bytes.length) throw new Error('unpackShiftModel: length mismatch');
  const blob = (ref: unknown): Uint8Array => {
    const r = ref as BlobRef;
    if (r.offset < 0 || r.offset + r.byteLength > meta.dataByteLength) throw new Error('unpackShiftModel: blob out of range');
    return bytes.subarray(dataStart + r.offset, dataStart + r.offset + r.byteLength);
  };
  const floats = (ref: unknown): Float32Array => {
    const b = blob(ref);
    const d = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out = new Float32Array(b.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = d.getFloat32(i * 4, true);
    return out;
  };
  const layers: LayerSpec[] = meta.layers.map((m) => {
    const kind = m.kind as LayerSpec['kind'];
    switch (kind) {
      case 'conv2d':
      case 'dense':
        return { ...m, kernel: floats(m.kernel), bias: m.bias ? floats(m.bias) : null } as unknown as LayerSpec;
      case 'shiftConv2d':
      case 'shiftDense': {
        const spec = m as unknown as ShiftConvSpec | ShiftDenseSpec;
        const kshape = expectedKernelShape(spec);
        const { codes, ...rest } = m;
        return {
          ...rest,
          weights: unpackShiftCodes(blob(codes), product(kshape), spec.bits, spec.pMin, kshape),
          bias: m.bias ? floats(m.bias) : null,
        } as unknown as LayerSpec;
      }
      case 'channelAffine':
        return { ...m, scale: floats(m.scale), offset: floats(m.offset) } as unknown as LayerSpec;
      case 'maxPool2d':
      case 'flatten':
      case 'activation':
      case 'globalAvgPool2d':
        return { ...m } as unknown as LayerSpec;
      default:
        throw new Error(`unpackShiftModel: unknown layer kind ${String(kind)}`);
    }
  });
  const desc: ShiftModelDescription = { inputShape: meta.inputShape, inputScale: meta.inputScale, inputOffset: meta.inputOffset, layers };
  inferShapes(desc);
  return desc;
}
