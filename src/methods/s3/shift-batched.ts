/**
 * Batched path of the multiplication-free shift engine: the same computation as the per-sample
 * TypeScript engine (shift-inference.ts), run by the native kernels of native/shift.c on blocks of
 * `addon.lanes` samples stored element-major, sample-minor ([e·lanes + s]).
 *
 * Paper: Li et al., "S³: Sign-Sparse-Shift Reparametrization …", NeurIPS 2021, Sec. 1/3 (shift-add
 * layers, full-precision stem/head/BN); DeepShift (Elhoushi et al., CVPR-W 2021) Sec. 3.3 integer kernel.
 * Why it is bit-identical to the per-sample engine: every sample of a block shares the shift layer's
 * offset lists, and its int32 sums do not depend on the sample's scale; the scale choices are made here
 * per sample by the same functions (fixed-point.ts) from the per-sample max |x| the addon returns; the
 * float layers repeat the reference's float64 operations in the same order (native/shift.c).
 */
import type { ShiftAddon } from '../../engine/shift-addon.js';
import type { ShiftModelDescription } from './export.js';
import { fracForFloatInput, shiftForIntInput } from './fixed-point.js';
import type { CompiledOp } from './shift-inference.js';

type Block = { kind: 'float'; data: Float64Array } | { kind: 'int'; data: Int32Array };

/** Per-block state: the current activation block and each lane's fractional bits (when int). */
interface BlockState {
  a: Block;
  frac: Float64Array;
  /** Input fractional bits of every shift layer, [layer][lane]. */
  inFrac: Float64Array[];
}

type Step = (st: BlockState) => void;

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Runs an engine's compiled ops on blocks of samples through the shift addon. */
export class BatchedShiftRunner {
  private readonly steps: Step[] = [];
  private readonly lanes: number;
  private readonly input: Float64Array;
  private readonly outFloat: Float64Array;
  private readonly outScales: Float64Array;
  private readonly inputSize: number;
  private readonly outputSize: number;
  private readonly nShiftLayers: number;

  constructor(
    private readonly addon: ShiftAddon,
    ops: CompiledOp[],
    private readonly description: ShiftModelDescription,
  ) {
    const L = (this.lanes = addon.lanes);
    this.inputSize = size(ops.length ? ops[0].inShape : description.inputShape);
    this.input = new Float64Array(this.inputSize * L);
    let kind: Block['kind'] = 'float';
    let shiftIndex = 0;
    for (const op of ops) {
      const step = this.compile(op, kind, shiftIndex);
      this.steps.push(step.run);
      kind = step.kind;
      if (op.shift) shiftIndex++;
    }
    this.nShiftLayers = shiftIndex;
    this.outputSize = size(ops.length ? ops[ops.length - 1].outShape : description.inputShape);
    this.outFloat = new Float64Array(this.outputSize * L);
    this.outScales = new Float64Array(L);
  }

  /** Float view of the current block (int blocks converted with each lane's 2^−frac into `tmp`). */
  private floatOf(st: BlockState, tmp: Float64Array, scales: Float64Array): Float64Array {
    if (st.a.kind === 'float') return st.a.data;
    for (let s = 0; s < this.lanes; s++) scales[s] = 2 ** -st.frac[s];
    this.addon.toFloat(st.a.data, tmp, scales);
    return tmp;
  }

  private compile(op: CompiledOp, kind: Block['kind'], shiftIndex: number): { run: Step; kind: Block['kind'] } {
    const { addon } = this;
    const L = this.lanes;
    const spec = op.spec;
    const inElems = size(op.inShape);
    const outElems = size(op.outShape);
    // Scratch for converting an int block to float (only when the input is int).
    const tmp = () => new Float64Array(kind === 'int' ? inElems * L : 0);
    const scales = new Float64Array(L);
    switch (spec.kind) {
      case 'conv2d': {
        const g = op.conv!;
        const kernel = Float64Array.from(spec.kernel);
        const bias = spec.bias ? Float64Array.from(spec.bias) : null;
        const geom = Int32Array.of(g.inH, g.inW, g.cin, g.outH, g.outW, spec.kernelSize[0], spec.kernelSize[1], spec.strides[0], spec.strides[1], g.padTop, g.padLeft, spec.filters);
        const out = new Float64Array(outElems * L);
        const t = tmp();
        return {
          kind: 'float',
          run: (st) => {
            addon.conv2d(this.floatOf(st, t, scales), out, kernel, bias, geom);
            if (spec.activation === 'relu') addon.relu(out);
            st.a = { kind: 'float', data: out };
          },
        };
      }
      case 'dense': {
        const kernel = Float64Array.from(spec.kernel);
        const bias = spec.bias ? Float64Array.from(spec.bias) : null;
        const out = new Float64Array(outElems * L);
        const t = tmp();
        return {
          kind: 'float',
          run: (st) => {
            addon.dense(this.floatOf(st, t, scales), out, kernel, bias, spec.inFeatures, spec.units);
            if (spec.activation === 'relu') addon.relu(out);
            st.a = { kind: 'float', data: out };
          },
        };
      }
      case 'channelAffine': {
        const scale = Float64Array.from(spec.scale);
        const offset = Float64Array.from(spec.offset);
        const t = tmp();
        return {
          kind: 'float',
          run: (st) => {
            const x = this.floatOf(st, t, scales);
            addon.affine(x, scale, offset);
            st.a = { kind: 'float', data: x };
          },
        };
      }
      case 'globalAvgPool2d': {
        const [h, w, c] = op.inShape;
        const out = new Float64Array(c * L);
        const t = tmp();
        return {
          kind: 'float',
          run: (st) => {
            addon.globalAvgPool(this.floatOf(st, t, scales), out, h * w, c);
            st.a = { kind: 'float', data: out };
          },
        };
      }
      case 'maxPool2d': {
        const [inH, inW, c] = op.inShape;
        const [outH, outW] = op.outShape;
        const geom = Int32Array.of(inH, inW, c, outH, outW, spec.poolSize[0], spec.poolSize[1], spec.strides[0], spec.strides[1]);
        const out = kind === 'int' ? new Int32Array(outElems * L) : new Float64Array(outElems * L);
        return {
          kind,
          run: (st) => {
            addon.maxPool(st.a.data, out, geom);
            st.a = { kind, data: out } as Block;
          },
        };
      }
      case 'flatten':
        return { kind, run: () => {} };
      case 'activation':
        // 'linear' → identity; 'softmax' (last op only) is skipped, as in the per-sample engine.
        return { kind, run: spec.activation === 'relu' ? (st) => addon.relu(st.a.data) : () => {} };
      case 'shiftConv2d':
      case 'shiftDense':
        return { kind: 'int', run: this.compileShift(op, kind, shiftIndex) };
    }
  }

  private compileShift(op: CompiledOp, kind: Block['kind'], shiftIndex: number): Step {
    const { addon } = this;
    const L = this.lanes;
    const spec = op.spec as Extract<CompiledOp['spec'], { kind: 'shiftConv2d' | 'shiftDense' }>;
    const { prog, geom: g, fBias } = op.shift!;
    const inElems = size(op.inShape);
    const padded = g !== null && (g.hp !== g.inH || g.wp !== g.inW);
    const geom = g
      ? Int32Array.of(g.inH, g.inW, g.cin, g.padTop, g.padLeft, g.hp, g.wp, prog.outH, prog.outW, prog.outC, prog.nShift, prog.rowStep, prog.colStep, spec.activation === 'relu' ? 1 : 0)
      : Int32Array.of(1, 1, inElems, 0, 0, 1, 1, 1, 1, prog.outC, prog.nShift, 0, 0, spec.activation === 'relu' ? 1 : 0);
    const pad = padded ? new Int32Array(g!.hp * g!.wp * g!.cin * L) : null;
    const q = kind === 'float' ? new Int32Array(inElems * L) : null;
    const out = new Int32Array(prog.outH * prog.outW * prog.outC * L);
    const bias = new Int32Array(prog.outC * L);
    const maxAbs = new Float64Array(L);
    const scales = new Float64Array(L);
    const r = new Int32Array(L);
    return (st) => {
      const inFrac = st.inFrac[shiftIndex];
      addon.maxAbs(st.a.data, maxAbs);
      let x: Int32Array;
      if (st.a.kind === 'float') {
        for (let s = 0; s < L; s++) {
          inFrac[s] = fracForFloatInput(maxAbs[s], prog.gain, fBias);
          scales[s] = 2 ** inFrac[s];
        }
        addon.quantize(st.a.data, q!, scales);
        x = q!;
      } else {
        let any = false;
        for (let s = 0; s < L; s++) {
          r[s] = shiftForIntInput(maxAbs[s], st.frac[s], prog.gain, fBias);
          inFrac[s] = st.frac[s] - r[s];
          if (r[s] > 0) any = true;
        }
        if (any) addon.shiftRight(st.a.data, r); // in place: the block is this layer's alone
        x = st.a.data;
      }
      for (let s = 0; s < L; s++) {
        const fOut = inFrac[s] - spec.pMin;
        st.frac[s] = fOut;
        const sc = 2 ** fOut;
        for (let c = 0; c < prog.outC; c++) bias[c * L + s] = spec.bias ? Math.round(spec.bias[c] * sc) : 0;
      }
      addon.shiftLayer(x, pad, out, prog.ptr, prog.offs, bias, geom);
      st.a = { kind: 'int', data: out };
    };
  }

  /**
   * Logits of n samples into `out` [n, outputSize]; returns the input fractional bits of every shift
   * layer for the last sample (the engine's `lastFracBits`), or null when n = 0.
   */
  logits(images: Float32Array, n: number, out: Float32Array | Float64Array): number[] | null {
    const L = this.lanes;
    const { inputScale, inputOffset } = this.description;
    const st: BlockState = { a: { kind: 'float', data: this.input }, frac: new Float64Array(L), inFrac: Array.from({ length: this.nShiftLayers }, () => new Float64Array(L)) };
    let last: number[] | null = null;
    for (let b0 = 0; b0 < n; b0 += L) {
      this.addon.loadInput(images, n, this.inputSize, b0, inputScale, inputOffset, this.input);
      st.a = { kind: 'float', data: this.input };
      for (const step of this.steps) step(st);
      const y = this.floatOf(st, this.outFloat, this.outScales);
      this.addon.output(y, out, b0, n, this.outputSize);
      const lane = Math.min(L, n - b0) - 1;
      last = st.inFrac.map((f) => f[lane]);
    }
    return last;
  }
}
