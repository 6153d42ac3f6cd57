import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../engine/rng.js';

/**
 * Seeded Glorot-uniform initializer. tfjs initializers take a `seed`; drawing it from the run's Rng
 * makes model init reproducible without Math.random.
 */
export function glorot(rng: Rng): ReturnType<typeof tf.initializers.glorotUniform> {
  return tf.initializers.glorotUniform({ seed: rng.seed() });
}

/** Seeded He-normal initializer (He et al., ICCV 2015) for ReLU layers. */
export function heNormal(rng: Rng): ReturnType<typeof tf.initializers.glorotUniform> {
  return tf.initializers.heNormal({ seed: rng.seed() });
}

/**
 * Inverted dropout (Srivastava et al., JMLR 2014) with a fresh seeded mask on every call.
 * (tf.layers.dropout with a fixed `seed` draws the *same* mask every step, so we do not use it.)
 */
export function dropout<T extends tf.Tensor>(x: T, rate: number, rng: Rng): T {
  if (rate <= 0) return x;
  return tf.tidy(() => {
    const keep = tf.cast(tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', rng.seed()), rate), 'float32');
    return tf.mul(x, tf.div(keep, 1 - rate)) as T;
  });
}
