/**
 * `smoe-dropout`: the frozen random router of SMoE-Dropout (Chen et al., ICLR 2023): z = x·W_r with W_r drawn
 * once and never trained. W_r ~ N(0, 1/d) so the logits are O(1) for layer-normalised inputs. The weights
 * are a function of `seed`, which the spec records, so a saved model rebuilds them without storing them.
 * (The paper also raises k during training; this router keeps k fixed.)
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../../engine/rng.js';
import { normalTensor, type NamedVariable } from '../../../models/ffn.js';
import { registerRouter } from './registry.js';
import type { Router, RouterDims, RouterSpec } from './types.js';

export interface FrozenRouterSpec extends RouterSpec {
  type: 'smoe-dropout';
  /** Seed of the frozen weights (set when the router is first built). */
  seed?: number;
}

export class FrozenRandomRouter implements Router {
  readonly type = 'smoe-dropout';
  readonly trainable = false;
  readonly competition = null;
  readonly kernel: tf.Tensor2D;
  readonly seed: number;

  constructor(
    spec: FrozenRouterSpec,
    readonly dims: RouterDims,
    seed: number,
  ) {
    this.seed = spec.seed ?? seed;
    this.kernel = tf.keep(normalTensor(new Rng(this.seed), [dims.dModel, dims.experts], 1 / Math.sqrt(dims.dModel)) as tf.Tensor2D);
  }

  logits(x: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(x, this.kernel);
  }

  variables(): NamedVariable[] {
    return [];
  }

  macsPerToken(): number {
    return this.dims.dModel * this.dims.experts;
  }

  spec(): FrozenRouterSpec {
    return { type: 'smoe-dropout', seed: this.seed };
  }

  dispose(): void {
    this.kernel.dispose();
  }
}

registerRouter('smoe-dropout', (spec, dims, seed) => new FrozenRandomRouter(spec as FrozenRouterSpec, dims, seed));
