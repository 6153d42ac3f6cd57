/** Timing helpers shared by the benches: interleaved rounds (fair under CPU contention) and seeded inputs. */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../engine/rng.js';
import { median } from '../stats/index.js';

/** A tensor of standard-normal values drawn from `Rng(seed)` (same seed ⇒ same input in every process). */
export function randTensor(shape: number[], seed: number): tf.Tensor {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => r.normal()), shape);
}

/**
 * Times `fns` in interleaved rounds — each round runs `callsPerRound` calls of every function in turn, after
 * `warmup` calls each — and returns the median ms per call of each over the rounds, so load that comes and goes
 * hits every function alike.
 */
export function interleaved(fns: (() => void)[], rounds: number, callsPerRound: number, warmup: number): number[] {
  for (const f of fns) for (let i = 0; i < warmup; i++) f();
  const per: number[][] = fns.map(() => []);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((f, i) => {
      const t0 = performance.now();
      for (let c = 0; c < callsPerRound; c++) f();
      per[i].push((performance.now() - t0) / callsPerRound);
    });
  }
  return per.map(median);
}
