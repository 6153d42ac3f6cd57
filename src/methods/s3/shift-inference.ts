/**
 * Multiplication-free inference engine for exported shift networks (no tfjs). This file is the
 * per-sample TypeScript reference; when the shift addon (native/shift.c) loads, `ShiftInferenceEngine`
 * runs the same computation batched over 16-sample SIMD blocks (shift-batched.ts), bit for bit.
 *
 * Paper: Li et al., "S³: Sign-Sparse-Shift Reparametrization …", NeurIPS 2021 — Sec. 1/3: with
 * w = ±2^p and fixed-point activations, every multiply-accumulate becomes a shift and an add. The
 * integer loop follows DeepShift (Elhoushi et al., CVPR-W 2021, Sec. 3.3, `shift_cpu.cpp`):
 * y = Σ_{w≠0} ±(x << p), then rescale by 2^−f.
 *
 * Fixed-point scheme (per sample, per shift layer; int32 everywhere):
 * - An activation tensor is either float (Float64Array) or fixed point: Int32Array q with a
 *   power-of-two scale, value = q · 2^−f (f = "fractional bits", may differ per sample and layer).
 * - For a shift layer with exponents in [pMin, pMax] let L = max over output channels of
 *   Σ_{w≠0} 2^{p − pMin} (an integer: the worst-case gain in units of 2^pMin). Before the layer the
 *   input is brought to fixed point with the LARGEST f such that (max|q| + 1)·L ≤ 2^30 (and the bias,
 *   quantised to the output scale, stays below 2^30): from float by q = round(x·2^f); from fixed point
 *   by a rounding arithmetic right shift (x >> r) + ((x >> (r−1)) & 1). Hence no partial sum, shifted
 *   term or accumulator can overflow int32, and precision is ≈ 30 − log2 L bits relative to max|x|
 *   (≈ 20 bits for a 3×3×32 conv with |w| ≤ 4) — finer than the float32 rounding of the tfjs model.
 * - Inner loop (`shiftAccumulateInt`): for each output and each exponent k = p − pMin the inputs with
 *   +2^p and −2^p weights are summed separately (adds only), then acc += (pos − neg) << k. Output
 *   scale: f_out = f − pMin (exact: acc·2^{pMin − f} is the true value). Bias is added as
 *   round(b·2^{f_out}).
 * - ReLU and max-pooling run on the integers; the next shift layer re-scales if needed. Full-precision
 *   layers (first conv, last dense, per-channel affine = BatchNorm, global average pooling) convert to
 *   float (q·2^−f) and compute in float64 — the paper keeps these layers in full precision.
 * - No index arithmetic in the inner loops multiplies either: window offsets are precomputed and the
 *   window base advances by adding row/column steps.
 * Agreement with the tfjs model (which runs float32 matmuls with the same effective weights): logits
 * differ only by rounding (≈1e−6 relative), so argmax predictions agree unless two logits tie to that
 * precision.
 */
import type { DiscreteWeights } from './param.js';
import {
  type ChannelAffineSpec,
  type FloatConvSpec,
  type FloatDenseSpec,
  type LayerSpec,
  type MaxPoolSpec,
  type ShiftConvSpec,
  type ShiftDenseSpec,
  type ShiftModelDescription,
  inferShapes,
  unpackShiftModel,
} from './export.js';
import { biasFracLimit, fracForFloatInput, shiftForIntInput } from './fixed-point.js';
import { BatchedShiftRunner } from './shift-batched.js';
import { loadShiftAddon } from '../../engine/shift-addon.js';

export { ACC_LIMIT, MAX_FRAC_BITS } from './fixed-point.js';

/** An activation tensor of one sample: float, or fixed point (value = data·2^−frac). */
export type EngineActivation = { kind: 'float'; data: Float64Array } | { kind: 'int'; data: Int32Array; frac: number };
type Act = EngineActivation;

/**
 * Compiled shift layer ("program") for `shiftAccumulateInt` — S3 Sec. 3 / DeepShift Sec. 3.3 shift-add
 * kernel. For output channel co and exponent index k (p = pMin + k) the segment
 * offs[ptr[2(co·nShift + k)] .. ptr[2(co·nShift + k) + 1]) lists input offsets (relative to the window
 * base) with weight +2^p and the following segment up to ptr[… + 2] those with −2^p.
 */
export interface ShiftProgram {
  outH: number;
  outW: number;
  outC: number;
  nShift: number;
  ptr: Int32Array;
  offs: Int32Array;
  /** Added to the window base per output row / column. */
  rowStep: number;
  colStep: number;
  /** Worst-case gain L = max_co Σ_{w≠0} 2^{p − pMin}. */
  gain: number;
  /** Number of non-zero weights (adds per output position). */
  nonZero: number;
}

/**
 * Shift-and-add accumulation (S3 paper Sec. 1/3: x·(±2^p) = ±(x << p); DeepShift Sec. 3.3 CPU kernel):
 * out[pos, co] = bias[co] + Σ_k ((Σ_{+} x) − (Σ_{−} x)) << k, over all output positions. Contains no
 * multiplication (the test suite checks the source text). Caller guarantees no int32 overflow.
 */
export function shiftAccumulateInt(x: Int32Array, out: Int32Array, prog: ShiftProgram, bias: Int32Array): void {
  const { outH, outW, outC, nShift, ptr, offs, rowStep, colStep } = prog;
  let o = 0;
  let rowBase = 0;
  for (let oy = 0; oy < outH; oy++) {
    let base = rowBase;
    for (let ox = 0; ox < outW; ox++) {
      let seg = 0;
      for (let co = 0; co < outC; co++) {
        let acc = bias[co];
        for (let k = 0; k < nShift; k++) {
          let pos = 0;
          for (let t = ptr[seg], e = ptr[seg + 1]; t < e; t++) pos = (pos + x[base + offs[t]]) | 0;
          let neg = 0;
          for (let t = ptr[seg + 1], e = ptr[seg + 2]; t < e; t++) neg = (neg + x[base + offs[t]]) | 0;
          acc = (acc + ((pos - neg) << k)) | 0;
          seg += 2;
        }
        out[o] = acc;
        o++;
      }
      base += colStep;
    }
    rowBase += rowStep;
  }
}

/**
 * Rounding arithmetic right shift in place, x ← round(x / 2^r) (ties up), written with shifts only —
 * the fixed-point rescale between shift layers (DeepShift Sec. 3.3 fixed-point activations).
 */
export function roundingShiftRightInt(x: Int32Array, r: number): void {
  if (r <= 0) return;
  if (r > 31) {
    x.fill(0);
    return;
  }
  const r1 = r - 1;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    x[i] = (v >> r) + ((v >> r1) & 1);
  }
}

/** Integer ReLU in place (comparisons only) — ReLU on fixed-point activations (S3 Sec. 3 keeps ReLU). */
export function reluInt(x: Int32Array): void {
  for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0;
}

/**
 * Zero-padding copy of an HWC integer image — prepares the window offsets of `shiftAccumulateInt`
 * ('same' convolutions of the shift conv layers, S3 Sec. 3).
 */
export function padInt(x: Int32Array, h: number, w: number, c: number, padTop: number, padLeft: number, hp: number, wp: number): Int32Array {
  const out = new Int32Array(hp * wp * c);
  const rowLen = w * c;
  const rowStride = wp * c;
  let src = 0;
  let dst = (padTop * wp + padLeft) * c;
  for (let y = 0; y < h; y++) {
    out.set(x.subarray(src, src + rowLen), dst);
    src += rowLen;
    dst += rowStride;
  }
  return out;
}

/** Geometry of a convolution on one sample's NHWC input (padding as tfjs's 'same'/'valid'). */
export interface ConvGeometry {
  inH: number;
  inW: number;
  cin: number;
  outH: number;
  outW: number;
  padTop: number;
  padLeft: number;
  hp: number;
  wp: number;
}

function convGeometry(inShape: number[], outShape: number[], kernelSize: [number, number], strides: [number, number], padding: 'same' | 'valid'): ConvGeometry {
  const [inH, inW, cin] = inShape;
  const [outH, outW] = outShape;
  let padTop = 0;
  let padLeft = 0;
  let hp = inH;
  let wp = inW;
  if (padding === 'same') {
    const padH = Math.max((outH - 1) * strides[0] + kernelSize[0] - inH, 0);
    const padW = Math.max((outW - 1) * strides[1] + kernelSize[1] - inW, 0);
    padTop = Math.floor(padH / 2);
    padLeft = Math.floor(padW / 2);
    hp = inH + padH;
    wp = inW + padW;
  }
  return { inH, inW, cin, outH, outW, padTop, padLeft, hp, wp };
}

/**
 * Compiles discrete shift weights into a `ShiftProgram` (S3 Sec. 3 weights ±2^p grouped by p, as in a
 * shift-add accelerator). `tapOffset(i)` maps the flat kernel index (without the output channel) to
 * the input offset relative to the window base.
 */
function compileProgram(
  w: DiscreteWeights,
  pMin: number,
  pMax: number,
  outC: number,
  tapOffset: (tap: number) => number,
  geom: { outH: number; outW: number; rowStep: number; colStep: number },
): ShiftProgram {
  const nShift = pMax - pMin + 1;
  const nTaps = w.zero.length / outC;
  const lists: number[][] = [];
  for (let i = 0; i < outC * nShift * 2; i++) lists.push([]);
  let gain = 0;
  let nonZero = 0;
  for (let co = 0; co < outC; co++) {
    let g = 0;
    for (let tap = 0; tap < nTaps; tap++) {
      const i = tap * outC + co;
      if (w.zero[i]) continue;
      const p = w.shift[i];
      if (p < pMin || p > pMax) throw new Error(`shift exponent ${p} outside [${pMin}, ${pMax}]`);
      const s = w.sign[i];
      if (s !== 1 && s !== -1) throw new Error(`non-zero shift weight with sign ${s}`);
      lists[(co * nShift + (p - pMin)) * 2 + (s > 0 ? 0 : 1)].push(tapOffset(tap));
      g += 2 ** (p - pMin);
      nonZero++;
    }
    gain = Math.max(gain, g);
  }
  const ptr = new Int32Array(lists.length + 1);
  let total = 0;
  for (let i = 0; i < lists.length; i++) {
    ptr[i] = total;
    total += lists[i].length;
  }
  ptr[lists.length] = total;
  const offs = new Int32Array(total);
  let t = 0;
  for (const l of lists) for (const v of l) offs[t++] = v;
  return { outH: geom.outH, outW: geom.outW, outC, nShift, ptr, offs, rowStep: geom.rowStep, colStep: geom.colStep, gain: Math.max(gain, 1), nonZero };
}

function toFloat(a: Act): Float64Array {
  if (a.kind === 'float') return a.data;
  const s = 2 ** -a.frac;
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i] * s;
  return out;
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] < 0 ? -x[i] : x[i];
    if (v > m) m = v;
  }
  return m;
}

/**
 * Chooses the fixed-point representation of a shift layer's input (fixed-point scheme in the file
 * header; DeepShift Sec. 3.3 fixed-point activations): largest f with (max|q| + 1)·gain ≤ 2^30 and
 * max|b|·2^{f − pMin} + 1 ≤ 2^30. Returns a NEW int tensor (or the same one when no rescale is needed).
 */
export function toFixedForShiftLayer(a: Act, gain: number, maxBias: number, pMin: number): { data: Int32Array; frac: number } {
  const fBias = biasFracLimit(maxBias, pMin);
  if (a.kind === 'float') {
    const f = fracForFloatInput(maxAbs(a.data), gain, fBias);
    const s = 2 ** f;
    const q = new Int32Array(a.data.length);
    for (let i = 0; i < q.length; i++) q[i] = Math.round(a.data[i] * s);
    return { data: q, frac: f };
  }
  const r = shiftForIntInput(maxAbs(a.data), a.frac, gain, fBias);
  if (r === 0) return { data: a.data, frac: a.frac };
  const q = Int32Array.from(a.data);
  roundingShiftRightInt(q, r);
  return { data: q, frac: a.frac - r };
}

/** One layer compiled for the engine: the per-sample TypeScript `run`, plus what the batched native path needs. */
export interface CompiledOp {
  spec: LayerSpec;
  inShape: number[];
  outShape: number[];
  run(a: Act): Act;
  cost: { shiftAdds: number; shifts: number; floatMacs: number };
  /** Float convolutions: their geometry. */
  conv?: ConvGeometry;
  /** Shift layers: the program, the conv geometry (null for dense) and the bias bound of `biasFracLimit`. */
  shift?: { prog: ShiftProgram; geom: ConvGeometry | null; fBias: number };
}

function floatConv(spec: FloatConvSpec, g: ConvGeometry, x: Float64Array): Float64Array {
  const { inH, inW, cin, outH, outW, padTop, padLeft } = g;
  const [kh, kw] = spec.kernelSize;
  const [sh, sw] = spec.strides;
  const cout = spec.filters;
  const out = new Float64Array(outH * outW * cout);
  const k = spec.kernel;
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      const o = (oy * outW + ox) * cout;
      for (let co = 0; co < cout; co++) out[o + co] = spec.bias ? spec.bias[co] : 0;
      for (let dy = 0; dy < kh; dy++) {
        const iy = oy * sh + dy - padTop;
        if (iy < 0 || iy >= inH) continue;
        for (let dx = 0; dx < kw; dx++) {
          const ix = ox * sw + dx - padLeft;
          if (ix < 0 || ix >= inW) continue;
          const xi = (iy * inW + ix) * cin;
          const ki = (dy * kw + dx) * cin * cout;
          for (let ci = 0; ci < cin; ci++) {
            const xv = x[xi + ci];
            if (xv === 0) continue;
            const kr = ki + ci * cout;
            for (let co = 0; co < cout; co++) out[o + co] += xv * k[kr + co];
          }
        }
      }
    }
  }
  return out;
}

function floatDense(spec: FloatDenseSpec, x: Float64Array): Float64Array {
  const out = new Float64Array(spec.units);
  for (let j = 0; j < spec.units; j++) out[j] = spec.bias ? spec.bias[j] : 0;
  const k = spec.kernel;
  for (let i = 0; i < spec.inFeatures; i++) {
    const xv = x[i];
    if (xv === 0) continue;
    const r = i * spec.units;
    for (let j = 0; j < spec.units; j++) out[j] += xv * k[r + j];
  }
  return out;
}

function reluFloat(x: Float64Array): Float64Array {
  for (let i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0;
  return x;
}

function applyActivation(a: Act, act: string): Act {
  if (act === 'relu') {
    if (a.kind === 'int') reluInt(a.data);
    else reluFloat(a.data);
  }
  // 'linear' → identity; 'softmax' (last op only) is skipped: the engine returns pre-softmax logits.
  return a;
}

function maxPool(spec: MaxPoolSpec, inShape: number[], outShape: number[], a: Act): Act {
  const [, inW, c] = inShape;
  const [outH, outW] = outShape;
  const [ph, pw] = spec.poolSize;
  const [sh, sw] = spec.strides;
  const x = a.data;
  const out = a.kind === 'int' ? new Int32Array(outH * outW * c) : new Float64Array(outH * outW * c);
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      const o = (oy * outW + ox) * c;
      for (let ch = 0; ch < c; ch++) {
        let m = -Infinity;
        for (let dy = 0; dy < ph; dy++) {
          for (let dx = 0; dx < pw; dx++) {
            const v = x[((oy * sh + dy) * inW + (ox * sw + dx)) * c + ch];
            if (v > m) m = v;
          }
        }
        out[o + ch] = m;
      }
    }
  }
  return a.kind === 'int' ? { kind: 'int', data: out as Int32Array, frac: a.frac } : { kind: 'float', data: out as Float64Array };
}

function compileShift(spec: ShiftConvSpec | ShiftDenseSpec, inShape: number[], outShape: number[]): CompiledOp {
  let prog: ShiftProgram;
  let geom: ConvGeometry | null = null;
  if (spec.kind === 'shiftConv2d') {
    const g = convGeometry(inShape, outShape, spec.kernelSize, spec.strides, spec.padding);
    geom = g;
    const [, kw] = spec.kernelSize;
    const cin = spec.inChannels;
    prog = compileProgram(
      spec.weights,
      spec.pMin,
      spec.pMax,
      spec.filters,
      (tap) => {
        const ci = tap % cin;
        const dxy = (tap - ci) / cin;
        const dx = dxy % kw;
        const dy = (dxy - dx) / kw;
        return (dy * g.wp + dx) * cin + ci;
      },
      { outH: g.outH, outW: g.outW, rowStep: spec.strides[0] * g.wp * cin, colStep: spec.strides[1] * cin },
    );
  } else {
    prog = compileProgram(spec.weights, spec.pMin, spec.pMax, spec.units, (tap) => tap, { outH: 1, outW: 1, rowStep: 0, colStep: 0 });
  }
  if (prog.gain > 2 ** 24) throw new Error(`layer ${spec.name}: worst-case gain ${prog.gain} too large for the int32 shift engine`);
  const outC = prog.outC;
  const maxBias = spec.bias ? maxAbs(spec.bias) : 0;
  const positions = prog.outH * prog.outW;
  return {
    spec,
    inShape,
    outShape,
    cost: { shiftAdds: prog.nonZero * positions, shifts: outC * prog.nShift * positions, floatMacs: 0 },
    shift: { prog, geom, fBias: biasFracLimit(maxBias, spec.pMin) },
    run(a: Act): Act {
      const q = toFixedForShiftLayer(a, prog.gain, maxBias, spec.pMin);
      const fOut = q.frac - spec.pMin;
      const bias = new Int32Array(outC);
      if (spec.bias) {
        const s = 2 ** fOut;
        for (let c = 0; c < outC; c++) bias[c] = Math.round(spec.bias[c] * s);
      }
      let x = q.data;
      if (geom && (geom.hp !== geom.inH || geom.wp !== geom.inW)) {
        x = padInt(x, geom.inH, geom.inW, geom.cin, geom.padTop, geom.padLeft, geom.hp, geom.wp);
      }
      const out = new Int32Array(positions * outC);
      shiftAccumulateInt(x, out, prog, bias);
      if (spec.activation === 'relu') reluInt(out);
      return { kind: 'int', data: out, frac: fOut };
    },
  };
}

function compileOp(spec: LayerSpec, inShape: number[], outShape: number[]): CompiledOp {
  const noCost = { shiftAdds: 0, shifts: 0, floatMacs: 0 };
  switch (spec.kind) {
    case 'shiftConv2d':
    case 'shiftDense':
      return compileShift(spec, inShape, outShape);
    case 'conv2d': {
      const g = convGeometry(inShape, outShape, spec.kernelSize, spec.strides, spec.padding);
      return {
        spec,
        inShape,
        outShape,
        cost: { ...noCost, floatMacs: g.outH * g.outW * spec.filters * spec.kernelSize[0] * spec.kernelSize[1] * spec.inChannels },
        conv: g,
        run: (a) => applyActivation({ kind: 'float', data: floatConv(spec, g, toFloat(a)) }, spec.activation),
      };
    }
    case 'dense':
      return {
        spec,
        inShape,
        outShape,
        cost: { ...noCost, floatMacs: spec.inFeatures * spec.units },
        run: (a) => applyActivation({ kind: 'float', data: floatDense(spec, toFloat(a)) }, spec.activation),
      };
    case 'maxPool2d':
      return { spec, inShape, outShape, cost: noCost, run: (a) => maxPool(spec, inShape, outShape, a) };
    case 'flatten':
      return { spec, inShape, outShape, cost: noCost, run: (a) => a };
    case 'activation':
      return { spec, inShape, outShape, cost: noCost, run: (a) => applyActivation(a, spec.activation) };
    case 'channelAffine': {
      const aff: ChannelAffineSpec = spec;
      return {
        spec,
        inShape,
        outShape,
        cost: { ...noCost, floatMacs: inShape.reduce((x, y) => x * y, 1) },
        run: (a) => {
          const x = Float64Array.from(toFloat(a));
          const c = aff.channels;
          for (let i = 0; i < x.length; i++) x[i] = x[i] * aff.scale[i % c] + aff.offset[i % c];
          return { kind: 'float', data: x };
        },
      };
    }
    case 'globalAvgPool2d':
      return {
        spec,
        inShape,
        outShape,
        cost: noCost,
        run: (a) => {
          const x = toFloat(a);
          const [h, w, c] = inShape;
          const out = new Float64Array(c);
          for (let i = 0; i < h * w; i++) for (let ch = 0; ch < c; ch++) out[ch] += x[i * c + ch];
          for (let ch = 0; ch < c; ch++) out[ch] /= h * w;
          return { kind: 'float', data: out };
        },
      };
  }
}

/**
 * Runs an exported shift network with fixed-point shift-add arithmetic in the shift layers (S3 paper
 * Sec. 1/3 — multiplication-free shift networks; DeepShift Sec. 3.3 integer kernel). See the file
 * header for the fixed-point scheme. Inputs are raw samples in the model's input layout (NHWC
 * flattened), scaled by the recorded `inputScale`/`inputOffset`. Runs on the shift addon's batched
 * kernels when it loads (`backend` = 'native'), else per sample in TypeScript (`backendReason` says why);
 * both give the same outputs bit for bit.
 */
export class ShiftInferenceEngine {
  readonly description: ShiftModelDescription;
  readonly inputShape: number[];
  readonly outputShape: number[];
  readonly inputSize: number;
  readonly outputSize: number;
  private readonly ops: CompiledOp[];
  /** The batched native path (native/shift.c), or null when the engine runs per sample in TypeScript. */
  private readonly batched: BatchedShiftRunner | null;
  /** Which code computes `logits`: the native addon (batched SIMD) or the per-sample TypeScript loop. */
  readonly backend: 'native' | 'typescript';
  /** One line saying why the TypeScript path runs (empty on the native path). */
  readonly backendReason: string;
  /** Fractional bits chosen for each shift layer's input on the last sample processed (diagnostic). */
  lastFracBits: number[] = [];

  /**
   * `options.native` (default true): use the shift addon when it loads; false forces the TypeScript path.
   * Both paths give bit-identical logits (test/s3-native.test.ts).
   */
  constructor(model: ShiftModelDescription | Uint8Array, options: { native?: boolean } = {}) {
    this.description = model instanceof Uint8Array ? unpackShiftModel(model) : model;
    const shapes = inferShapes(this.description);
    this.ops = this.description.layers.map((l, i) => compileOp(l, shapes[i], shapes[i + 1]));
    this.inputShape = shapes[0];
    this.outputShape = shapes[shapes.length - 1];
    this.inputSize = this.inputShape.reduce((a, b) => a * b, 1);
    this.outputSize = this.outputShape.reduce((a, b) => a * b, 1);
    const { addon, status } = options.native === false ? { addon: null, status: { reason: 'native path disabled by the caller' } } : loadShiftAddon();
    this.batched = addon ? new BatchedShiftRunner(addon, this.ops, this.description) : null;
    this.backend = this.batched ? 'native' : 'typescript';
    this.backendReason = this.batched ? '' : `shift engine runs in TypeScript: ${status.reason}`;
  }

  /**
   * Final-layer outputs (before a final softmax, if any) for n samples: Float32Array [n, outputSize].
   * Shift layers run on int32 fixed point with shifts and adds only (S3 Sec. 3; DeepShift Sec. 3.3).
   */
  logits(images: Float32Array, n: number): Float32Array {
    return this.run(images, n, new Float32Array(n * this.outputSize));
  }

  /** The same outputs before their rounding to float32 (the engine's float64 values; for exactness checks). */
  logitsFloat64(images: Float32Array, n: number): Float64Array {
    return this.run(images, n, new Float64Array(n * this.outputSize));
  }

  private run<T extends Float32Array | Float64Array>(images: Float32Array, n: number, out: T): T {
    if (images.length !== n * this.inputSize) {
      throw new Error(`ShiftInferenceEngine: expected ${n}×${this.inputSize} = ${n * this.inputSize} values, got ${images.length}`);
    }
    if (this.batched) {
      const fracs = this.batched.logits(images, n, out);
      if (fracs) this.lastFracBits = fracs;
      return out;
    }
    const { inputScale, inputOffset } = this.description;
    for (let s = 0; s < n; s++) {
      const x = new Float64Array(this.inputSize);
      const base = s * this.inputSize;
      for (let i = 0; i < x.length; i++) x[i] = images[base + i] * inputScale + inputOffset;
      let a: Act = { kind: 'float', data: x };
      const fracs: number[] = [];
      for (const op of this.ops) {
        a = op.run(a);
        if (op.spec.kind === 'shiftConv2d' || op.spec.kind === 'shiftDense') fracs.push((a as { frac: number }).frac + op.spec.pMin);
      }
      this.lastFracBits = fracs;
      const y = toFloat(a);
      for (let j = 0; j < this.outputSize; j++) out[s * this.outputSize + j] = y[j];
    }
    return out;
  }

  /** Argmax class per sample (first maximum on ties) — predictions of the shift network (S3 Sec. 4). */
  predict(images: Float32Array, n: number): Int32Array {
    const z = this.logits(images, n);
    return argmaxRows(z, n, this.outputSize);
  }

  /**
   * Per-sample operation counts: integer adds (one per non-zero shift weight and output position),
   * shifts (one per output, exponent group), float MACs in the full-precision layers — the cost model
   * of shift networks (S3 Sec. 1; DeepShift Sec. 3.3).
   */
  costPerSample(): { shiftAdds: number; shifts: number; floatMacs: number } {
    const c = { shiftAdds: 0, shifts: 0, floatMacs: 0 };
    for (const op of this.ops) {
      c.shiftAdds += op.cost.shiftAdds;
      c.shifts += op.cost.shifts;
      c.floatMacs += op.cost.floatMacs;
    }
    return c;
  }
}

/** Row-wise argmax (first maximum on ties) of an [n, k] matrix — prediction rule used in S3 Sec. 4. */
export function argmaxRows(z: ArrayLike<number>, n: number, k: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bv = z[i * k];
    for (let j = 1; j < k; j++) {
      if (z[i * k + j] > bv) {
        bv = z[i * k + j];
        best = j;
      }
    }
    out[i] = best;
  }
  return out;
}
