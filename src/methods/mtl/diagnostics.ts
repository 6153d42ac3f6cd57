import * as tf from '@tensorflow/tfjs';
import { sequentialBatches } from '../../data/batching.js';
import { finiteMean, layerAlpha } from './metrics.js';
import type { MultiTaskNet } from './model.js';
import { saliencyShares, shareEntropy, toPositions } from './rep-mtl.js';
import { forwardAll, taskSaliencies, type MtlBatch } from './step.js';

/** Saliency-share statistics over a data set. */
export interface SaliencyStats {
  /** Mean TSR entropy −Σ_t P log P over all samples and positions (nats; ≤ log T). */
  entropy: number;
  /** Mean share P_t at every position, [T][positions]. */
  meanShare: number[][];
  /** Fraction of samples in which task t has the largest share at each position, [T][positions]. */
  dominance: number[][];
  positions: number;
}

/**
 * Measures the TSR quantities on data (e.g. the test set) for any trained model: `saliency(batch)` returns
 * S_t = ∂L_t/∂Z for each task (shaped like Z, same positions across tasks; any common scale — the shares are
 * ratios). Raw-loss saliencies, spatial
 * positions — the definition of the Rep-MTL TSR term.
 */
export function saliencyStats(n: number, batchSize: number, makeBatch: (idx: Int32Array) => MtlBatch, saliency: (batch: MtlBatch) => tf.Tensor[], positions: 'spatial' | 'channels' = 'spatial'): SaliencyStats {
  let entSum = 0;
  let count = 0;
  let share: Float64Array | null = null;
  let dom: Float64Array | null = null;
  let T = 0;
  let P = 0;
  for (const idx of sequentialBatches(n, batchSize)) {
    const [ent, sh, dm] = tf.tidy(() => {
      const sal = saliency(makeBatch(idx)).map((s) => toPositions(s, positions));
      const p = saliencyShares(sal); // [T, B, P]
      const e = tf.sum(shareEntropy(p));
      const arg = tf.argMax(p, 0); // [B, P]
      const oneHot = tf.oneHot(tf.reshape(arg, [-1]), p.shape[0]); // [B·P, T]
      const dmT = tf.sum(tf.reshape(oneHot, [p.shape[1], p.shape[2], p.shape[0]]), 0); // [P, T]
      return [e, tf.sum(p, 1), dmT];
    });
    T = sh.shape[0];
    P = sh.shape[1];
    share ??= new Float64Array(T * P);
    dom ??= new Float64Array(T * P);
    const s = sh.dataSync();
    const d = dm.dataSync();
    for (let t = 0; t < T; t++) for (let i = 0; i < P; i++) {
      share[t * P + i] += s[t * P + i];
      dom[t * P + i] += d[i * T + t];
    }
    entSum += ent.dataSync()[0];
    count += idx.length;
    tf.dispose([ent, sh, dm]);
  }
  const rows = (a: Float64Array | null) => Array.from({ length: T }, (_, t) => Array.from(a!.subarray(t * P, (t + 1) * P), (v) => v / count));
  return { entropy: entSum / (count * P), meanShare: rows(share), dominance: rows(dom), positions: P };
}

/** Closed-form raw-loss saliencies of a multi-task net on a batch (for `saliencyStats`). */
export function netSaliencies(net: MultiTaskNet, batch: MtlBatch): tf.Tensor[] {
  const { zs, fwds, losses } = forwardAll(net, batch);
  return taskSaliencies(net, zs, fwds, batch.targets, losses, { saliencyLoss: 'raw', headGrad: true }, zs[0].shape[0]);
}

/** Power-law α of the shared encoder's layers and each head's layers (mean over the layers with a fit). */
export function netAlphas(net: MultiTaskNet, opts?: { minEvals?: number; minTail?: number }): { encoder: number; heads: number[]; layers: { name: string; alpha: number; numEvals: number }[] } {
  const layers: { name: string; alpha: number; numEvals: number }[] = [];
  const enc: number[] = [];
  net.encoderVars.forEach((v, i) => {
    if (v.rank < 2) return;
    const f = layerAlpha(v, opts);
    layers.push({ name: `encoder.conv${i / 2}`, alpha: f.alpha, numEvals: f.numEvals });
    enc.push(f.alpha);
  });
  const heads = net.tasks.map((task, t) => {
    const hs: number[] = [];
    net.headVars(t).forEach((v, i) => {
      if (v.rank < 2) return;
      const f = layerAlpha(v, opts);
      layers.push({ name: `head.${task.name}.fc${i / 2}`, alpha: f.alpha, numEvals: f.numEvals });
      hs.push(f.alpha);
    });
    return finiteMean(hs);
  });
  return { encoder: finiteMean(enc), heads, layers };
}
