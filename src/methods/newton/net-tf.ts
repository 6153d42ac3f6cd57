import * as tf from '@tensorflow/tfjs';
import { FIXED_PARAMS, netShapes, type NetSpec, type NetWeights } from './net.js';

// Variable names must be unique per tfjs instance.
let nextNetId = 0;

/** tfjs variables for a {@link NetSpec} (training side of `net.ts`). Call `dispose()` when done. */
export class TfNet {
  readonly vars: Record<string, tf.Variable>;

  constructor(readonly spec: NetSpec, init: NetWeights) {
    this.vars = {};
    const netId = nextNetId++;
    for (const [name, shape] of Object.entries(netShapes(spec))) this.vars[name] = tf.tidy(() => tf.variable(tf.tensor(init[name], shape), !FIXED_PARAMS.includes(name), `newton${netId}.${name}`));
  }

  /** Sigmoid outputs for a batch [B, inputDim]. */
  apply(x: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      x = tf.mul(tf.sub(x, this.vars['in.mean']), this.vars['in.scale']) as tf.Tensor2D;
      const parts = this.spec.branches.map((b, i) => tf.tanh(tf.add(tf.matMul(tf.slice(x, [0, b.from], [-1, b.to - b.from]), this.vars[`b${i}.w`] as tf.Tensor2D), this.vars[`b${i}.b`])) as tf.Tensor2D);
      const m = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
      const h = tf.tanh(tf.add(tf.matMul(m, this.vars['h.w'] as tf.Tensor2D), this.vars['h.b'])) as tf.Tensor2D;
      return tf.sigmoid(tf.add(tf.matMul(h, this.vars['o.w'] as tf.Tensor2D), this.vars['o.b'])) as tf.Tensor2D;
    });
  }

  /** Current parameter values (copies). */
  weights(): NetWeights {
    const w: NetWeights = {};
    for (const [name, v] of Object.entries(this.vars)) w[name] = v.dataSync().slice() as Float32Array;
    return w;
  }

  dispose(): void {
    for (const v of Object.values(this.vars)) v.dispose();
  }
}
