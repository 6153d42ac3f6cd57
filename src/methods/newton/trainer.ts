import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../engine/rng.js';
import { argmaxRows, errorEmphasisMask } from './error-emphasis.js';
import { frequencyBalancedEpoch, repetitionFactors } from './frequency-balancing.js';
import { initNetWeights, inputStatistics, type NetSpec, type NetWeights } from './net.js';
import { TfNet } from './net-tf.js';
import { sampleNegatives } from './negative-training.js';
import { normOutErrFactor, normOutErrLoss, normOutErrTargets } from './normouterr.js';
import { ErrorRiseAnnealer, NEWTON_PHASES, phaseAt, type NewtonPhase } from './schedule.js';

/**
 * Training loop of the Newton character classifier with each of the five innovations of Yaeger, Lyon & Webb
 * (NIPS 9, 1996) switchable: NormOutErr, frequency balancing, error emphasis, negative training, stroke warping
 * (through the sample source), and annealing with the multi-phase schedule.
 *
 * Every epoch presents exactly `patternsPerEpoch` patterns (so arms are compared at equal presentations): an epoch
 * list is drawn (positives, frequency-balanced or once each; plus the negatives picked by the negative-train
 * probability), shuffled, and consumed batch by batch; a new list is drawn when one runs out.
 */
export interface SampleSource {
  /** Class index of each positive sample. */
  positiveLabels: Int32Array;
  nNegatives: number;
  /**
   * Writes the features of positive `i` (or negative `i` when `negative`) into `out` at `offset`. `rng` is given when
   * the sample should be freshly augmented (stroke warping); it is undefined otherwise.
   */
  features(i: number, negative: boolean, out: Float32Array, offset: number, rng: Rng | undefined): void;
}

export interface NewtonTrainOptions {
  spec: NetSpec;
  epochs: number;
  patternsPerEpoch: number;
  batchSize: number;
  /** Multiplies the schedule's learning rate (the paper's rates are per-pattern SGD on summed error). */
  lrScale: number;
  /** 'anneal': phase learning rates × the error-rise annealer; 'fixed': `fixedLr` × lrScale throughout. */
  schedule: 'anneal' | 'fixed';
  fixedLr: number;
  phases?: readonly NewtonPhase[];
  /** NormOutErr d (0 = off). */
  normOutErrD: number;
  /** Frequency balancing R = (a/F)^b capped at `cap`, or null. */
  frequencyBalancing: { a: number; b: number; cap: number } | null;
  /** Error emphasis with the phases' correct-train probabilities. */
  errorEmphasis: boolean;
  /** Negative training with this factor and the phases' negative-train probabilities, or null. */
  negativeTraining: { factor: number } | null;
  /** Fresh stroke warp at every presentation. */
  strokeWarping: boolean;
  /** Called after every epoch. */
  onEpoch?: (e: { epoch: number; lr: number; loss: number; positives: number; negatives: number; backprop: number }) => void;
}

export interface NewtonTrainResult {
  weights: NetWeights;
  /** NormOutErr A used (1 when off): the recognizer's inverse map needs it. */
  A: number;
}

export function trainNewtonClassifier(src: SampleSource, o: NewtonTrainOptions, rng: Rng): NewtonTrainResult {
  const C = o.spec.outputs;
  const D = o.spec.inputDim;
  const A = normOutErrFactor(o.normOutErrD, C);
  const phases = o.phases ?? NEWTON_PHASES;
  const counts = new Float64Array(C);
  for (const c of src.positiveLabels) counts[c]++;
  const R = o.frequencyBalancing ? repetitionFactors(counts, o.frequencyBalancing.a, o.frequencyBalancing.b, o.frequencyBalancing.cap) : null;
  // Input standardisation from (up to 2000) un-augmented positives.
  const nStat = Math.min(2000, src.positiveLabels.length);
  const xs = new Float32Array(nStat * D);
  const pick = rng.permutation(src.positiveLabels.length);
  for (let k = 0; k < nStat; k++) src.features(pick[k], false, xs, k * D, undefined);
  const net = new TfNet(o.spec, initNetWeights(o.spec, rng, inputStatistics(xs, nStat, D)));
  const opt = tf.train.sgd(0.1);
  const trainable = Object.values(net.vars).filter((v) => v.trainable);
  const annealer = new ErrorRiseAnnealer();
  let list: Int32Array = new Int32Array(0); // entries: positive i ≥ 0, negative j as −(j+1)
  let pos = 0;
  const nextList = (negProb: number) => {
    const p = R ? frequencyBalancedEpoch(src.positiveLabels, R, rng) : rng.permutation(src.positiveLabels.length);
    const n = o.negativeTraining ? sampleNegatives(src.nNegatives, negProb, rng) : new Int32Array(0);
    const all = new Int32Array(p.length + n.length);
    all.set(p);
    for (let k = 0; k < n.length; k++) all[p.length + k] = -(n[k] + 1);
    list = rng.shuffleInPlace(all);
    pos = 0;
  };
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const ph = phaseAt(epoch, o.epochs, phases);
      const lr = o.schedule === 'anneal' ? ph.lr * o.lrScale * annealer.scale : o.fixedLr * o.lrScale;
      opt.setLearningRate(lr);
      let total = 0;
      let nPos = 0;
      let nNeg = 0;
      let nBack = 0;
      for (let done = 0; done < o.patternsPerEpoch; ) {
        const B = Math.min(o.batchSize, o.patternsPerEpoch - done);
        const x = new Float32Array(B * D);
        const labels = new Int32Array(B);
        for (let b = 0; b < B; b++) {
          if (pos >= list.length) nextList(ph.negativeTrainProb);
          const e = list[pos++];
          const neg = e < 0;
          const i = neg ? -e - 1 : e;
          src.features(i, neg, x, b * D, o.strokeWarping ? rng : undefined);
          labels[b] = neg ? -1 : src.positiveLabels[i];
          if (neg) nNeg++;
          else nPos++;
        }
        done += B;
        const xt = tf.tensor2d(x, [B, D]);
        let scale: Float32Array | undefined;
        if (o.errorEmphasis) {
          const y = tf.tidy(() => net.apply(xt));
          scale = errorEmphasisMask(argmaxRows(y.dataSync(), C), labels, ph.correctTrainProb, rng);
          y.dispose();
        }
        const { targets, weights } = normOutErrTargets(labels, C, { A, negativeFactor: o.negativeTraining?.factor ?? 1, sampleScale: scale });
        if (scale) for (const s of scale) nBack += s;
        else nBack += B;
        const tt = tf.tensor2d(targets, [B, C]);
        const wt = tf.tensor2d(weights, [B, C]);
        const loss = opt.minimize(() => normOutErrLoss(net.apply(xt), tt, wt), true, trainable);
        total += loss!.dataSync()[0] * B;
        tf.dispose([loss!, xt, tt, wt]);
      }
      if (!Number.isFinite(total)) throw new Error(`newton training: non-finite loss at epoch ${epoch} (lr ${lr}); lower lrScale`);
      if (o.schedule === 'anneal') annealer.update(total);
      o.onEpoch?.({ epoch, lr, loss: total / o.patternsPerEpoch, positives: nPos, negatives: nNeg, backprop: nBack });
    }
    return { weights: net.weights(), A };
  } finally {
    net.dispose();
    opt.dispose();
  }
}
