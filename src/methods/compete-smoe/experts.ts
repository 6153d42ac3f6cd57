/**
 * E two-layer expert MLPs g_i(x) = W2_i·act(W1_i·x + b1_i) + b2_i stored as stacked tensors, so a forward
 * over all experts is one batched matmul per layer ([E, rows, d] × [E, d, h]).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../engine/rng.js';
import { gelu, makeVariable, normalTensor, type NamedVariable } from '../../models/ffn.js';

export type ExpertActivation = 'gelu' | 'relu';

export class ExpertBank {
  /** [E, d, h] */
  readonly w1: tf.Variable;
  /** [E·h] (flat, so weight decay treats it as a bias) */
  readonly b1: tf.Variable;
  /** [E, h, d] */
  readonly w2: tf.Variable;
  /** [E·d] */
  readonly b2: tf.Variable;

  constructor(
    readonly experts: number,
    readonly dModel: number,
    readonly hidden: number,
    readonly activation: ExpertActivation,
    rng: Rng,
    initStd: number,
  ) {
    this.w1 = makeVariable(() => normalTensor(rng, [experts, dModel, hidden], initStd));
    this.b1 = makeVariable(() => tf.zeros([experts * hidden]));
    this.w2 = makeVariable(() => normalTensor(rng, [experts, hidden, dModel], initStd));
    this.b2 = makeVariable(() => tf.zeros([experts * dModel]));
  }

  /** Expert e applied to row block e: xe [E, rows, d] → [E, rows, d]. */
  forward(xe: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const { experts: E, hidden: h, dModel: d } = this;
      const pre = tf.add(tf.matMul(xe, this.w1 as tf.Tensor3D), tf.reshape(this.b1, [E, 1, h]));
      const a = this.activation === 'gelu' ? gelu(pre) : tf.relu(pre);
      return tf.add(tf.matMul(a, this.w2 as tf.Tensor3D), tf.reshape(this.b2, [E, 1, d])) as tf.Tensor3D;
    });
  }

  /**
   * Every expert on every row: x [n, d] → [E, n, d] (the competition's dense pass). The first layer is one
   * [n, d] × [d, E·h] GEMM (tiling x to [E, n, d] instead makes the backward ~3x slower on wasm: Tile's
   * gradient is a loop of slices).
   */
  forwardAll(x: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [n, d] = x.shape;
      const { experts: E, hidden: h } = this;
      const w1 = tf.reshape(tf.transpose(this.w1, [1, 0, 2]), [d, E * h]) as tf.Tensor2D;
      const pre = tf.add(tf.matMul(x, w1), this.b1);
      const a = this.activation === 'gelu' ? gelu(pre) : tf.relu(pre);
      const a3 = tf.transpose(tf.reshape(a, [n, E, h]), [1, 0, 2]) as tf.Tensor3D;
      return tf.add(tf.matMul(a3, this.w2 as tf.Tensor3D), tf.reshape(this.b2, [E, 1, d])) as tf.Tensor3D;
    });
  }

  /** Multiply-adds of one expert on one token. */
  macsPerExpertToken(): number {
    return 2 * this.dModel * this.hidden;
  }

  variables(): NamedVariable[] {
    return [
      { name: 'experts/fc1/kernel', variable: this.w1 },
      { name: 'experts/fc1/bias', variable: this.b1 },
      { name: 'experts/fc2/kernel', variable: this.w2 },
      { name: 'experts/fc2/bias', variable: this.b2 },
    ];
  }

  dispose(): void {
    tf.dispose([this.w1, this.b1, this.w2, this.b2]);
  }
}
