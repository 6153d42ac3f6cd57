/**
 * The structured FFN block (Wei et al., NeurIPS 2024): y = fc2(gelu(fc1(x))) with both linear maps replaced by the same kind
 * of structured map (same rank r / block count b), biases and activation dense. Registered as FFN kind
 * `structured` for src/models/transformer.ts. Also: sizing from a target parameter share, and the
 * parameter formulas of each map.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../engine/rng.js';
import { gelu, registerFfn, type Ffn, type FfnContext, type FfnDims, type FfnSpec, type NamedVariable } from '../../models/ffn.js';
import { createStructuredLinear, type StructuredInit, type StructuredLinear, type StructuredMap, type StructuredMapSpec } from './layers.js';

export interface StructuredFfnSpec extends FfnSpec {
  kind: 'structured';
  map: StructuredMap;
  rank?: number;
  blocks?: number;
  /** Self-guided training: each map gets a dense guide. */
  guide?: boolean;
  init?: StructuredInit;
  /** Pre-merged path for calls with at most this many token rows (after `merge()`). */
  mergeThreshold?: number;
}

export class StructuredFfn implements Ffn {
  readonly kind = 'structured';
  readonly fc1: StructuredLinear;
  readonly fc2: StructuredLinear;
  private readonly base: StructuredFfnSpec;

  constructor(
    spec: StructuredFfnSpec,
    readonly dModel: number,
    readonly dFf: number,
    seed: number,
    initStd: number,
  ) {
    this.base = { ...spec };
    const rng = new Rng(seed);
    const common = { useBias: true, guide: spec.guide ?? false, initStd, init: spec.init ?? 'paper', mergeThreshold: spec.mergeThreshold ?? 0 } as const;
    this.fc1 = createStructuredLinear(spec, { ...common, units: dFf, seed: rng.nextUint32() >>> 1 }).ensureBuilt(dModel);
    this.fc2 = createStructuredLinear(spec, { ...common, units: dModel, seed: rng.nextUint32() >>> 1 }).ensureBuilt(dFf);
  }

  /**
   * Forward. With guidance (ctx.guideAlpha > 0 and a guide present) each map draws u ~ U(0,1) from ctx.rng
   * in training: u < α → α·W·x + (1−α)·S(x), else exactly S(x) (as the official code's `reduce_flop` does). In evaluation (no rng), or with
   * ctx.guideSkip = false, the mixture is used deterministically.
   */
  apply(x: tf.Tensor2D, ctx: FfnContext): tf.Tensor2D {
    const alpha = ctx.guideAlpha ?? 0;
    const draw = (layer: StructuredLinear): boolean => {
      if (!layer.guide || alpha <= 0) return false;
      const use = ctx.training && ctx.rng && ctx.guideSkip !== false ? ctx.rng.next() < alpha : true;
      if (use && ctx.stats) ctx.stats.extraMacsPerToken += layer.inFeatures * layer.units;
      return use;
    };
    return tf.tidy(() => {
      const h = gelu(this.fc1.forward(x, { alpha, useGuide: draw(this.fc1) }));
      return this.fc2.forward(h, { alpha, useGuide: draw(this.fc2) });
    });
  }

  variables(): NamedVariable[] {
    return [
      ...this.fc1.namedVariables().map((v) => ({ name: `fc1/${v.name}`, variable: v.variable })),
      ...this.fc2.namedVariables().map((v) => ({ name: `fc2/${v.name}`, variable: v.variable })),
    ];
  }

  /** The guides' variables (empty once dropped). */
  guideVariables(): tf.Variable[] {
    return [this.fc1.guideVariable, this.fc2.guideVariable].filter((v): v is tf.Variable => v !== null);
  }

  /** Dense multiply-adds per token of the two guides (what a used guide costs). */
  guideMacsPerToken(): number {
    return this.dModel * this.dFf * 2;
  }

  dropGuides(): void {
    this.fc1.dropGuide();
    this.fc2.dropGuide();
  }

  merge(threshold?: number): void {
    this.fc1.merge(threshold);
    this.fc2.merge(threshold);
  }

  unmerge(): void {
    this.fc1.unmerge();
    this.fc2.unmerge();
  }

  weightCount(): number {
    return this.fc1.weightCount() + this.fc2.weightCount();
  }

  macsPerToken(): number {
    return this.weightCount();
  }

  spec(): StructuredFfnSpec {
    return { ...this.base, guide: this.fc1.guide, mergeThreshold: this.fc1.mergeThreshold };
  }

  dispose(): void {
    this.fc1.release();
    this.fc2.release();
  }
}

registerFfn('structured', (spec: FfnSpec, dims: FfnDims, seed: number, initStd: number) => new StructuredFfn(spec as StructuredFfnSpec, dims.dModel, dims.dFf, seed, initStd));

/**
 * FFN weights of one block with width d and hidden f, both maps replaced (d ≤ f):
 * dense 2df; LowRank 2r(d+f); BlockShuffle 2d(d+f)/b; BlockDense r(d/b+f) + r(f/b+d) = r(d+f)(1+1/b).
 */
export function ffnWeightFormula(spec: { map: StructuredMap | 'dense'; rank?: number; blocks?: number }, d: number, f: number): number {
  const r = spec.rank ?? 0;
  const b = spec.blocks ?? 1;
  switch (spec.map) {
    case 'dense':
      return 2 * d * f;
    case 'lowrank':
      return 2 * r * (d + f);
    case 'blockshuffle':
      return (2 * Math.min(d, f) * (d + f)) / b;
    case 'blockdense':
      return r * (d + f) * (1 + 1 / b);
  }
}

/**
 * The structure that gives ≈ `share` (fraction of the dense 2df weights) for width d and hidden f:
 * LowRank r = round(share·d·f/(d+f)); BlockDense (b = `blocks`, default 2) r = the multiple of b nearest
 * 2·share·d·f/((d+f)(1+1/b)); BlockShuffle b = the common divisor of d and f nearest (d+f)/(share·f).
 */
export function structureForShare(map: StructuredMap, share: number, d: number, f: number, blocks = 2): StructuredMapSpec {
  if (!(share > 0 && share <= 1)) throw new Error(`parameter share must be in (0, 1], got ${share}`);
  switch (map) {
    case 'lowrank':
      return { map, rank: Math.max(1, Math.min(Math.min(d, f), Math.round((share * d * f) / (d + f)))) };
    case 'blockdense': {
      const b = blocks;
      const r = Math.max(b, b * Math.round((2 * share * d * f) / ((d + f) * (1 + 1 / b)) / b));
      return { map, rank: r, blocks: b };
    }
    case 'blockshuffle': {
      const target = (d + f) / (share * f);
      let best = 1;
      for (let b = 1; b <= Math.min(d, f); b++) {
        if (d % b !== 0 || f % b !== 0) continue;
        if (Math.abs(Math.log(b / target)) < Math.abs(Math.log(best / target))) best = b;
      }
      return { map, blocks: best };
    }
  }
}

/** Why a structure does not fit an FFN of width d and hidden f (both maps d→f and f→d), or null when it does. */
export function structureProblem(spec: StructuredMapSpec, d: number, f: number): string | null {
  const { rank: r, blocks: b } = spec;
  switch (spec.map) {
    case 'lowrank':
      return r !== undefined && Number.isInteger(r) && r >= 1 && r <= Math.min(d, f) ? null : `rank ${r} must be an integer in [1, ${Math.min(d, f)}]`;
    case 'blockdense':
      if (!b || !r || !Number.isInteger(b) || !Number.isInteger(r)) return 'needs integer rank and blocks';
      return d % b === 0 && f % b === 0 && r % b === 0 ? null : `width ${d}, hidden ${f} and rank ${r} must be divisible by blocks ${b}`;
    case 'blockshuffle':
      if (!b || !Number.isInteger(b)) return 'needs integer blocks';
      return d % b === 0 && f % b === 0 ? null : `width ${d} and hidden ${f} must be divisible by blocks ${b}`;
  }
}

/**
 * Default pre-merge threshold (token rows) per map, from `efftrain bench structured-ffn` on wasm (width 256,
 * 2 cores): the merged GEMM wins below ~8 rows for BlockDense and ~32 for BlockShuffle (their batched
 * block stages carry transposes), while LowRank's two thin GEMMs beat the merged one even for a single row.
 */
export function defaultMergeThreshold(map: StructuredMap): number {
  return map === 'blockshuffle' ? 32 : map === 'blockdense' ? 8 : 0;
}
