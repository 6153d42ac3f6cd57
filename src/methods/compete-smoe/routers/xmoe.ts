/**
 * `xmoe`: the low-dimensional cosine router of X-MoE (Chi et al., NeurIPS 2022, "On the representation
 * collapse of sparse mixture of experts", eq. 5): project the token to `dim` dimensions, score each expert
 * by the cosine similarity with a learned expert embedding, divide by a temperature τ:
 *   z_i = cos(W_p·x, e_i) / τ.
 * Both sides are L2-normalised inside the cosine, so the embeddings need no renormalisation step.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../../engine/rng.js';
import { makeVariable, normalTensor, type NamedVariable } from '../../../models/ffn.js';
import { registerRouter } from './registry.js';
import type { Router, RouterDims, RouterSpec } from './types.js';

export interface XmoeRouterSpec extends RouterSpec {
  type: 'xmoe';
  /** Projection dimension (default 4 for small models; X-MoE used 16 at large scale). */
  dim?: number;
  /** Temperature τ (default 0.3, the X-MoE/CompeteSMoE-v1 value). */
  temperature?: number;
}

export class XmoeRouter implements Router {
  readonly type = 'xmoe';
  readonly trainable = true;
  readonly competition = null;
  readonly proj: tf.Variable;
  readonly emb: tf.Variable;
  readonly dim: number;
  readonly temperature: number;

  constructor(
    spec: XmoeRouterSpec,
    readonly dims: RouterDims,
    seed: number,
    initStd: number,
  ) {
    this.dim = spec.dim ?? 4;
    this.temperature = spec.temperature ?? 0.3;
    if (!(Number.isInteger(this.dim) && this.dim >= 1)) throw new Error(`xmoe router: dim must be a positive integer, got ${spec.dim}`);
    if (!(this.temperature > 0)) throw new Error(`xmoe router: temperature must be > 0, got ${spec.temperature}`);
    const rng = new Rng(seed);
    this.proj = makeVariable(() => normalTensor(rng, [dims.dModel, this.dim], initStd));
    // Expert embeddings: direction matters only (cosine), so a unit-scale init.
    this.emb = makeVariable(() => normalTensor(rng, [dims.experts, this.dim], 1));
  }

  logits(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const h = tf.matMul(x, this.proj as tf.Tensor2D) as tf.Tensor2D;
      const unit = (t: tf.Tensor2D) => tf.div(t, tf.sqrt(tf.add(tf.sum(tf.square(t), 1, true), 1e-12))) as tf.Tensor2D;
      return tf.mul(tf.matMul(unit(h), unit(this.emb as tf.Tensor2D), false, true), 1 / this.temperature) as tf.Tensor2D;
    });
  }

  variables(): NamedVariable[] {
    return [
      { name: 'router/proj', variable: this.proj },
      { name: 'router/expert_emb', variable: this.emb },
    ];
  }

  macsPerToken(): number {
    return this.dim * (this.dims.dModel + this.dims.experts);
  }

  spec(): XmoeRouterSpec {
    return { type: 'xmoe', dim: this.dim, temperature: this.temperature };
  }

  dispose(): void {
    tf.dispose([this.proj, this.emb]);
  }
}

registerRouter('xmoe', (spec, dims, seed, initStd) => new XmoeRouter(spec as XmoeRouterSpec, dims, seed, initStd));
