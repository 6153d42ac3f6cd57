/**
 * `topk`: the softmax SMoE router (Shazeer et al. 2017; GShard top-2): logits z = x·W_r + b_r, probabilities
 * softmax(z); the layer keeps the k largest and renormalises their probabilities as gate weights.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../../engine/rng.js';
import { linear, makeVariable, normalTensor, type NamedVariable } from '../../../models/ffn.js';
import { registerRouter } from './registry.js';
import type { Router, RouterDims, RouterSpec } from './types.js';
import type { CompetitionSettings } from '../competition.js';

export class LinearRouter implements Router {
  readonly type: string = 'topk';
  readonly trainable = true;
  readonly competition: CompetitionSettings | null = null;
  readonly kernel: tf.Variable;
  readonly bias: tf.Variable;

  constructor(
    readonly dims: RouterDims,
    seed: number,
    initStd: number,
  ) {
    const rng = new Rng(seed);
    this.kernel = makeVariable(() => normalTensor(rng, [dims.dModel, dims.experts], initStd));
    this.bias = makeVariable(() => tf.zeros([dims.experts]));
  }

  logits(x: tf.Tensor2D): tf.Tensor2D {
    return linear(x, this.kernel as tf.Tensor2D, this.bias as tf.Tensor1D);
  }

  variables(): NamedVariable[] {
    return [
      { name: 'router/kernel', variable: this.kernel },
      { name: 'router/bias', variable: this.bias },
    ];
  }

  macsPerToken(): number {
    return this.dims.dModel * this.dims.experts;
  }

  spec(): RouterSpec {
    return { type: this.type };
  }

  dispose(): void {
    tf.dispose([this.kernel, this.bias]);
  }
}

registerRouter('topk', (_spec: RouterSpec, dims, seed, initStd) => new LinearRouter(dims, seed, initStd));
