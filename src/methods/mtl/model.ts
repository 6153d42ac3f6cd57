import * as tf from '@tensorflow/tfjs';
import { softmaxCrossEntropy } from '../../engine/fused.js';
import type { Rng } from '../../engine/rng.js';
import type { MtlTask } from './types.js';

/** A trainable variable initialised to zeros (the initial tensor is freed). */
function zerosVar(shape: number[]): tf.Variable {
  const z = tf.zeros(shape);
  const v = tf.variable(z, true);
  z.dispose();
  return v;
}

/** The shared convolutional encoder: [Conv3×3(c) → ReLU → MaxPool2 (or a stride-2 conv)]*. */
export interface EncoderSpec {
  /** Input [H, W, C]. */
  inputShape: [number, number, number];
  channels: number[];
  downsample: 'maxpool' | 'stride';
}

/** A task head on the flattened representation: Linear (hidden = 0) or Linear → ReLU → Linear. */
export interface HeadSpec {
  hidden: number;
}

/** One head's forward pass, kept for the closed-form saliency. */
export interface HeadForward {
  logits: tf.Tensor2D;
  /** Hidden pre-activation (MLP heads only). */
  pre?: tf.Tensor2D;
  /** Hidden activation relu(pre) (MLP heads only). */
  hid?: tf.Tensor2D;
}

interface HeadParams {
  w1: tf.Variable;
  b1: tf.Variable;
  w2?: tf.Variable;
  b2?: tf.Variable;
}

/**
 * A hard-parameter-sharing multi-task network: a shared encoder E(θs) giving Z = E(X) ∈ R^{B×H'×W'×C}
 * (channels-last) and one head H_t(θt) per task. Plain tf.Variables and functional ops, so the saliency
 * S_t = ∂L_t/∂Z can be written in closed form and differentiated once more by ordinary autodiff.
 */
export class MultiTaskNet {
  readonly encoderVars: tf.Variable[] = [];
  readonly heads: HeadParams[] = [];
  /** Z's shape without the batch: [H', W', C]. */
  readonly zShape: [number, number, number];

  constructor(
    readonly encoder: EncoderSpec,
    readonly tasks: MtlTask[],
    readonly headSpecs: HeadSpec[],
    rng: Rng,
  ) {
    if (headSpecs.length !== tasks.length) throw new Error(`MultiTaskNet: ${tasks.length} tasks but ${headSpecs.length} head specs`);
    let [h, w, c] = encoder.inputShape;
    encoder.channels.forEach((co, i) => {
      const k = tf.initializers.heNormal({ seed: rng.seed() }).apply([3, 3, c, co], 'float32');
      this.encoderVars.push(tf.variable(k, true), zerosVar([co]));
      k.dispose();
      h = Math.ceil(h / 2);
      w = Math.ceil(w / 2);
      c = co;
    });
    this.zShape = [h, w, c];
    const d = h * w * c;
    headSpecs.forEach((hs, t) => {
      const k = tasks[t].outputs;
      const mk = (shape: number[], init: 'he' | 'glorot', nm: string) => {
        const v = (init === 'he' ? tf.initializers.heNormal({ seed: rng.seed() }) : tf.initializers.glorotUniform({ seed: rng.seed() })).apply(shape, 'float32');
        const out = tf.variable(v, true);
        v.dispose();
        return out;
      };
      if (hs.hidden > 0) {
        this.heads.push({ w1: mk([d, hs.hidden], 'he', 'w1'), b1: zerosVar([hs.hidden]), w2: mk([hs.hidden, k], 'glorot', 'w2'), b2: zerosVar([k]) });
      } else {
        this.heads.push({ w1: mk([d, k], 'glorot', 'w1'), b1: zerosVar([k]) });
      }
    });
  }

  get numTasks(): number {
    return this.tasks.length;
  }

  /** Size of the flattened representation D = H'·W'·C. */
  get zSize(): number {
    return this.zShape[0] * this.zShape[1] * this.zShape[2];
  }

  headVars(t: number): tf.Variable[] {
    const h = this.heads[t];
    return h.w2 ? [h.w1, h.b1, h.w2, h.b2!] : [h.w1, h.b1];
  }

  /** Shared parameters, then every head's parameters (task order): the trainer's parameter order. */
  params(): tf.Variable[] {
    return [...this.encoderVars, ...this.heads.flatMap((_, t) => this.headVars(t))];
  }

  /** Z = E(x), [B, H', W', C]. */
  encode(x: tf.Tensor4D): tf.Tensor4D {
    let h: tf.Tensor4D = x;
    const n = this.encoder.channels.length;
    for (let i = 0; i < n; i++) {
      const k = this.encoderVars[2 * i] as tf.Tensor4D;
      const b = this.encoderVars[2 * i + 1];
      if (this.encoder.downsample === 'stride') {
        h = tf.relu(tf.add(tf.conv2d(h, k, 2, 'same'), b)) as tf.Tensor4D;
      } else {
        h = tf.relu(tf.add(tf.conv2d(h, k, 1, 'same'), b)) as tf.Tensor4D;
        h = tf.maxPool(h, 2, 2, 'same');
      }
    }
    return h;
  }

  /** Head t on Z (any shape [B, …] with D entries per sample). */
  head(t: number, z: tf.Tensor, params?: tf.Tensor[]): HeadForward {
    const [w1, b1, w2, b2] = params ?? this.headVars(t);
    const zf = tf.reshape(z, [-1, this.zSize]) as tf.Tensor2D;
    if (w2) {
      const pre = tf.add(tf.matMul(zf, w1 as tf.Tensor2D), b1) as tf.Tensor2D;
      const hid = tf.relu(pre);
      return { logits: tf.add(tf.matMul(hid, w2 as tf.Tensor2D), b2!) as tf.Tensor2D, pre, hid };
    }
    return { logits: tf.add(tf.matMul(zf, w1 as tf.Tensor2D), b1) as tf.Tensor2D };
  }

  /** Logits of every task on a shared input (inference). */
  predict(x: tf.Tensor4D): tf.Tensor2D[] {
    const z = this.encode(x);
    return this.tasks.map((_, t) => this.head(t, z).logits);
  }

  dispose(): void {
    for (const v of this.params()) v.dispose();
  }
}

/** Task loss (batch mean): softmax cross-entropy on integer labels, or MSE on float targets. */
export function taskLoss(task: MtlTask, logits: tf.Tensor2D, target: tf.Tensor): tf.Scalar {
  if (task.loss === 'softmax-ce') return softmaxCrossEntropy(tf.oneHot(target as tf.Tensor1D, task.outputs), logits);
  return tf.mean(tf.square(tf.sub(logits, target))) as tf.Scalar;
}

/** ∂L/∂logits of the batch-mean loss, written out (first-order ops only, so it can be differentiated again). */
export function lossGradLogits(task: MtlTask, logits: tf.Tensor2D, target: tf.Tensor, scale = 1): tf.Tensor2D {
  const B = logits.shape[0];
  if (task.loss === 'softmax-ce') return tf.mul(tf.sub(tf.softmax(logits), tf.oneHot(target as tf.Tensor1D, task.outputs)), scale / B) as tf.Tensor2D;
  return tf.mul(tf.sub(logits, target), (2 * scale) / (B * task.outputs)) as tf.Tensor2D;
}

/**
 * Closed-form task saliency S_t = ∂L_t/∂Z for the batch-mean loss, shaped like Z:
 * linear head: S = g Wᵀ; MLP head: S = ((g W2ᵀ) ⊙ 1[pre > 0]) W1ᵀ, with g = ∂L/∂logits
 * ((softmax(o) − Y)/B for cross-entropy; `scale` multiplies it, e.g. B for the summed loss).
 * Built from first-order ops only, so one ordinary autodiff pass through S (Rep-MTL's regularisers) gives the
 * exact second-order terms (Hessian–vector products through the heads). tfjs 4.22 cannot do this with nested
 * tf.grad (see test/mtl.test.ts): (1) second derivatives through ops whose gradient uses their saved output
 * (exp, softmax, the cross-entropy custom gradient) come out silently wrong; (2) a tf.grad nested in an outer
 * tape shares that tape, so it also differentiates through outer-scope tensors derived from its input
 * (a VJP with an outer-computed cotangent gets a wrong value). `params` overrides the head parameters
 * (e.g. detached copies).
 */
export function closedFormSaliency(net: MultiTaskNet, t: number, z: tf.Tensor, fwd: HeadForward, target: tf.Tensor, params?: tf.Tensor[], scale = 1): tf.Tensor {
  const [w1, , w2] = params ?? net.headVars(t);
  const g = lossGradLogits(net.tasks[t], fwd.logits, target, scale);
  let s: tf.Tensor2D;
  if (w2) {
    const dh = tf.matMul(g, w2 as tf.Tensor2D, false, true);
    const dpre = tf.mul(dh, tf.step(fwd.pre!)) as tf.Tensor2D;
    s = tf.matMul(dpre, w1 as tf.Tensor2D, false, true);
  } else s = tf.matMul(g, w1 as tf.Tensor2D, false, true);
  return tf.reshape(s, z.shape);
}
