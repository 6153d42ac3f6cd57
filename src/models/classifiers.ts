import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../engine/rng.js';
import { heNormal, glorot } from '../train/layers.js';

export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

/** A multilayer perceptron on flattened images: input → [Dense(h) → ReLU]* → Dense(classes) logits. */
export function buildMlp(input: ImageShape, numClasses: number, hidden: number[], rng: Rng): tf.LayersModel {
  const x = tf.input({ shape: [input.height, input.width, input.channels] });
  let h = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  for (const units of hidden) {
    h = tf.layers.dense({ units, activation: 'relu', kernelInitializer: heNormal(rng) }).apply(h) as tf.SymbolicTensor;
  }
  const out = tf.layers.dense({ units: numClasses, kernelInitializer: glorot(rng) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: out, name: 'mlp' });
}

/**
 * A small CNN: [Conv3×3(c) → ReLU → MaxPool2]* (or stride-2 convs, cheaper on wasm) → Flatten → Dense(hidden) → ReLU → Dense(classes) logits.
 */
export function buildCnn(input: ImageShape, numClasses: number, channels: number[], hidden: number, rng: Rng, downsample: 'maxpool' | 'stride' = 'maxpool'): tf.LayersModel {
  const x = tf.input({ shape: [input.height, input.width, input.channels] });
  let h: tf.SymbolicTensor = x;
  for (const filters of channels) {
    const strides = downsample === 'stride' ? 2 : 1;
    h = tf.layers.conv2d({ filters, kernelSize: 3, strides, padding: 'same', activation: 'relu', kernelInitializer: heNormal(rng) }).apply(h) as tf.SymbolicTensor;
    if (downsample === 'maxpool') h = tf.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tf.SymbolicTensor;
  }
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  if (hidden > 0) h = tf.layers.dense({ units: hidden, activation: 'relu', kernelInitializer: heNormal(rng) }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: numClasses, kernelInitializer: glorot(rng) }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: x, outputs: out, name: 'cnn' });
}
