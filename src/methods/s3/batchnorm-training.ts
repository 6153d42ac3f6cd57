/**
 * A training-mode BatchNormalization forward for tfjs-layers models, written with broadcasting ops, and a
 * chain-model forward that uses it.
 *
 * Maths: Ioffe & Szegedy, "Batch Normalization", ICML 2015, Algorithm 1 (normalise with the biased batch
 * variance, then γ·x̂ + β) and the moving-average update of tfjs-layers / Keras:
 * moving ← moving − (moving − batch)·(1 − momentum). Why it exists: tfjs' fused BN gradient tiles the
 * per-channel statistics to the full activation shape, which is slow on wasm (≈60% of a training step of the
 * S3 CNN); here autodiff reduces with Sum instead. Inference still goes through the layer itself (and exports
 * read its variables), so a model trained this way is an ordinary tfjs model.
 */
import * as tf from '@tensorflow/tfjs';

type LayerVar = ReturnType<tf.layers.Layer['addWeight']>;
interface BnFields {
  gamma: LayerVar | null;
  beta: LayerVar | null;
  movingMean: LayerVar;
  movingVariance: LayerVar;
  epsilon: number;
  momentum: number;
  axis: number | number[];
}

function bnFields(layer: tf.layers.Layer): BnFields {
  if (layer.getClassName() !== 'BatchNormalization') throw new Error(`batchNormTraining: ${layer.name} is a ${layer.getClassName()}, not BatchNormalization`);
  const bn = layer as unknown as BnFields;
  const axis = Array.isArray(bn.axis) ? bn.axis : [bn.axis];
  if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== (layer.inputSpec?.[0]?.ndim ?? 0) - 1)) {
    throw new Error(`batchNormTraining: ${layer.name} normalises axis ${JSON.stringify(bn.axis)}; only the last axis is supported`);
  }
  return bn;
}

/**
 * BatchNormalization of `x` in training mode with the statistics of this batch (Ioffe & Szegedy 2015,
 * Alg. 1; biased variance, ε from the layer), updating the layer's moving mean/variance in place exactly as
 * tfjs-layers' `BatchNormalization` does with `training: true`. Normalises over every axis but the last.
 * Gradients flow to x, γ and β by autodiff.
 */
export function batchNormTraining(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  const bn = bnFields(layer);
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  for (const [v, batch] of [
    [bn.movingMean, mean],
    [bn.movingVariance, variance],
  ] as const) {
    tf.tidy(() => {
      const orig = v.read();
      v.write(tf.sub(orig, tf.mul(tf.sub(orig, batch), 1 - bn.momentum)));
    });
  }
  let scale = tf.rsqrt(tf.add(variance, bn.epsilon));
  if (bn.gamma) scale = tf.mul(scale, bn.gamma.read());
  let y = tf.mul(tf.sub(x, mean), scale);
  if (bn.beta) y = tf.add(y, bn.beta.read());
  return y;
}

/**
 * Training/inference forward of a chain model (each layer feeds the next, like `buildShiftCnn`'s): in
 * training mode BatchNormalization layers run through `batchNormTraining`, every other layer through
 * `layer.apply`; inference uses `model.apply`.
 */
export function chainForward(model: tf.LayersModel): (x: tf.Tensor4D, training: boolean) => tf.Tensor2D {
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  return (x, training) => {
    if (!training) return model.apply(x, { training: false }) as tf.Tensor2D;
    let h: tf.Tensor = x;
    for (const l of layers) h = l.getClassName() === 'BatchNormalization' ? batchNormTraining(l, h) : (l.apply(h, { training: true }) as tf.Tensor);
    return h as tf.Tensor2D;
  };
}

/** The moving mean/variance variables of every BatchNormalization layer, in layer order (for checkpoints). */
export function batchNormStatVariables(model: tf.LayersModel): tf.Variable[] {
  return model.layers
    .filter((l) => l.getClassName() === 'BatchNormalization')
    .flatMap((l) => {
      const bn = l as unknown as BnFields;
      return [bn.movingMean.read() as tf.Variable, bn.movingVariance.read() as tf.Variable];
    });
}
