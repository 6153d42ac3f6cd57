import type { Rng } from '../../engine/rng.js';

/**
 * The character classifier: a small MLP with one hidden pathway per input representation (image | stroke
 * features), merged into a shared hidden layer, then C independent sigmoid outputs (0/1 targets, squared error, as
 * in the Newton recognizer; Yaeger, Lyon & Webb, NIPS 9, 1996). Hidden units use tanh.
 *
 * This file holds the plain-JS forward pass used at recognition time (browser-safe, no tfjs needed);
 * `net-tf.ts` trains the same parameters with tfjs.
 */
export interface NetSpec {
  inputDim: number;
  /** Input index ranges [from, to) of the branches and their hidden widths. */
  branches: { from: number; to: number; units: number }[];
  hidden: number;
  outputs: number;
}

/**
 * Parameters by name: `in.mean`, `in.scale` (fixed input standardisation x ← (x − mean)·scale, not trained),
 * `b{i}.w` (in×units, row-major), `b{i}.b`, `h.w`, `h.b`, `o.w`, `o.b`.
 */
export type NetWeights = Record<string, Float32Array>;

/** Parameter shapes by name. */
export function netShapes(s: NetSpec): Record<string, number[]> {
  const shapes: Record<string, number[]> = { 'in.mean': [s.inputDim], 'in.scale': [s.inputDim] };
  let merged = 0;
  s.branches.forEach((b, i) => {
    shapes[`b${i}.w`] = [b.to - b.from, b.units];
    shapes[`b${i}.b`] = [b.units];
    merged += b.units;
  });
  shapes['h.w'] = [merged, s.hidden];
  shapes['h.b'] = [s.hidden];
  shapes['o.w'] = [s.hidden, s.outputs];
  shapes['o.b'] = [s.outputs];
  return shapes;
}

/** Names of the parameters that training leaves fixed. */
export const FIXED_PARAMS = ['in.mean', 'in.scale'];

/**
 * Glorot-uniform weights and zero biases, drawn from `rng`; the input standardisation from `inputStats` (default:
 * identity).
 */
export function initNetWeights(s: NetSpec, rng: Rng, inputStats?: { mean: Float32Array; scale: Float32Array }): NetWeights {
  const w: NetWeights = {
    'in.mean': inputStats?.mean.slice() ?? new Float32Array(s.inputDim),
    'in.scale': inputStats?.scale.slice() ?? new Float32Array(s.inputDim).fill(1),
  };
  for (const [name, shape] of Object.entries(netShapes(s))) {
    if (FIXED_PARAMS.includes(name)) continue;
    const n = shape.reduce((a, b) => a * b, 1);
    const arr = new Float32Array(n);
    if (shape.length === 2) {
      const lim = Math.sqrt(6 / (shape[0] + shape[1]));
      for (let i = 0; i < n; i++) arr[i] = (2 * rng.next() - 1) * lim;
    }
    w[name] = arr;
  }
  return w;
}

function dense(x: Float32Array, xOff: number, nIn: number, W: Float32Array, b: Float32Array, nOut: number, out: Float32Array, outOff: number, act: 'tanh' | 'sigmoid'): void {
  for (let j = 0; j < nOut; j++) out[outOff + j] = b[j];
  for (let i = 0; i < nIn; i++) {
    const xi = x[xOff + i];
    if (xi === 0) continue;
    const row = i * nOut;
    for (let j = 0; j < nOut; j++) out[outOff + j] += xi * W[row + j];
  }
  for (let j = 0; j < nOut; j++) {
    const v = out[outOff + j];
    out[outOff + j] = act === 'tanh' ? Math.tanh(v) : 1 / (1 + Math.exp(-v));
  }
}

/** Forward pass for `n` row-major inputs; returns n×outputs sigmoid outputs. */
export function netForward(s: NetSpec, w: NetWeights, x: Float32Array, n: number): Float32Array {
  const merged = s.branches.reduce((a, b) => a + b.units, 0);
  const m = new Float32Array(merged);
  const h = new Float32Array(s.hidden);
  const y = new Float32Array(n * s.outputs);
  const xs = new Float32Array(s.inputDim);
  const mu = w['in.mean'];
  const sc = w['in.scale'];
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < s.inputDim; i++) xs[i] = (x[r * s.inputDim + i] - mu[i]) * sc[i];
    let off = 0;
    s.branches.forEach((b, i) => {
      dense(xs, b.from, b.to - b.from, w[`b${i}.w`], w[`b${i}.b`], b.units, m, off, 'tanh');
      off += b.units;
    });
    dense(m, 0, merged, w['h.w'], w['h.b'], s.hidden, h, 0, 'tanh');
    dense(h, 0, s.hidden, w['o.w'], w['o.b'], s.outputs, y, r * s.outputs, 'sigmoid');
  }
  return y;
}

/** Per-feature mean and 1/std (1 where the std is ~0) of `n` row-major samples, for the input standardisation. */
export function inputStatistics(x: Float32Array, n: number, dim: number): { mean: Float32Array; scale: Float32Array } {
  const mean = new Float32Array(dim);
  const scale = new Float32Array(dim);
  const m = new Float64Array(dim);
  const v = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let i = 0; i < dim; i++) m[i] += x[r * dim + i];
  for (let i = 0; i < dim; i++) m[i] /= Math.max(1, n);
  for (let r = 0; r < n; r++) for (let i = 0; i < dim; i++) v[i] += (x[r * dim + i] - m[i]) ** 2;
  for (let i = 0; i < dim; i++) {
    const sd = Math.sqrt(v[i] / Math.max(1, n));
    mean[i] = m[i];
    scale[i] = sd > 1e-6 ? 1 / sd : 1;
  }
  return { mean, scale };
}
