import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../engine/rng.js';
import type { CheckpointStore } from '../../train/checkpoint.js';
import { fit, type EpochRow, type FitHook } from '../../train/fit.js';
import { SGD } from '../../train/optimizers.js';
import { Trainer, type GradFn } from '../../train/trainer.js';
import { argmaxRows, errorEmphasisMask } from './error-emphasis.js';
import { repetitionFactors } from './frequency-balancing.js';
import { initNetWeights, inputStatistics, type NetSpec, type NetWeights } from './net.js';
import { TfNet } from './net-tf.js';
import { normOutErrFactor, normOutErrLoss, normOutErrTargets } from './normouterr.js';
import { PatternStream, type PatternStreamState } from './patterns.js';
import { NewtonSchedule, type NewtonPhase } from './schedule.js';

/**
 * Training loop of the Newton character classifier with each of the five innovations of Yaeger, Lyon & Webb
 * (NIPS 9, 1996) switchable: NormOutErr, frequency balancing, error emphasis, negative training, stroke warping
 * (through the sample source), and annealing with the multi-phase schedule.
 *
 * Every epoch presents exactly `patternsPerEpoch` patterns (so arms are compared at equal presentations): an epoch
 * list is drawn (positives, frequency-balanced or once each; plus the negatives picked by the negative-train
 * probability), shuffled, and consumed batch by batch; a new list is drawn when one runs out (`PatternStream`).
 *
 * It trains through efftrain's `fit` (epochs of ⌈patternsPerEpoch / batchSize⌉ steps, the last one partial) and
 * `Trainer` with plain SGD: the phase/annealing learning rate is a `NewtonSchedule`, each step's batch — the
 * patterns, stroke warps, error-emphasis mask and NormOutErr targets — is built in its gradient function, and the
 * epoch counters, the pattern stream and the annealer are named checkpoint state, so a resumed run is exact.
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
  /** Called after every epoch (on resume also for the epochs restored from the checkpoint). */
  onEpoch?: (e: NewtonEpoch) => void;
  /** Checkpoints at every epoch end (and every `everySteps` steps) in `store`; `resume` continues from it when present. */
  checkpoint?: { store: CheckpointStore; everySteps?: number; resume?: boolean };
}

/** One epoch's numbers: learning rate, mean loss per pattern, patterns presented and patterns back-propagated. */
export interface NewtonEpoch {
  epoch: number;
  lr: number;
  loss: number;
  positives: number;
  negatives: number;
  backprop: number;
}

/** Counters of the current epoch (checkpoint state with the pattern stream). */
interface EpochCounters {
  total: number;
  positives: number;
  negatives: number;
  backprop: number;
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
  const counts = new Float64Array(C);
  for (const c of src.positiveLabels) counts[c]++;
  const R = o.frequencyBalancing ? repetitionFactors(counts, o.frequencyBalancing.a, o.frequencyBalancing.b, o.frequencyBalancing.cap) : null;
  // Input standardisation from (up to 2000) un-augmented positives.
  const nStat = Math.min(2000, src.positiveLabels.length);
  const xs = new Float32Array(nStat * D);
  const pick = rng.permutation(src.positiveLabels.length);
  for (let k = 0; k < nStat; k++) src.features(pick[k], false, xs, k * D, undefined);
  const net = new TfNet(o.spec, initNetWeights(o.spec, rng, inputStatistics(xs, nStat, D)));
  const trainable = Object.values(net.vars).filter((v) => v.trainable);
  const fixed = Object.values(net.vars).filter((v) => !v.trainable);
  // Epochs of equal presentations: full batches, then the remainder.
  const sizes: number[] = [];
  for (let done = 0; done < o.patternsPerEpoch; done += o.batchSize) sizes.push(Math.min(o.batchSize, o.patternsPerEpoch - done));
  const schedule = new NewtonSchedule({ mode: o.schedule, epochs: o.epochs, stepsPerEpoch: sizes.length, lrScale: o.lrScale, fixedLr: o.fixedLr, phases: o.phases });
  const optimizer = new SGD();
  const trainer = new Trainer({ params: trainable, optimizer, schedule });
  const stream = new PatternStream(src.positiveLabels, src.nNegatives, R, o.negativeTraining !== null, rng);
  const ep: EpochCounters = { total: 0, positives: 0, negatives: 0, backprop: 0 };

  /** The gradient of one batch of `B` patterns at optimizer step `step`: patterns, warps, emphasis mask, NormOutErr targets. */
  const batchGrad = (B: number, step: number): GradFn => {
    const ph = schedule.phase(step);
    const x = new Float32Array(B * D);
    const labels = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const e = stream.next(ph.negativeTrainProb);
      const neg = e < 0;
      const i = neg ? -e - 1 : e;
      src.features(i, neg, x, b * D, o.strokeWarping ? rng : undefined);
      labels[b] = neg ? -1 : src.positiveLabels[i];
      if (neg) ep.negatives++;
      else ep.positives++;
    }
    const xt = tf.tensor2d(x, [B, D]);
    let scale: Float32Array | undefined;
    if (o.errorEmphasis) scale = errorEmphasisMask(argmaxRows(net.apply(xt).dataSync(), C), labels, ph.correctTrainProb, rng);
    const { targets, weights } = normOutErrTargets(labels, C, { A, negativeFactor: o.negativeTraining?.factor ?? 1, sampleScale: scale });
    if (scale) for (const s of scale) ep.backprop += s;
    else ep.backprop += B;
    const tt = tf.tensor2d(targets, [B, C]);
    const wt = tf.tensor2d(weights, [B, C]);
    return (params) => {
      const { value, grads } = tf.variableGrads(() => normOutErrLoss(net.apply(xt), tt, wt), params);
      return { value, grads: params.map((p) => grads[p.name]) };
    };
  };

  const hook: FitHook<number> = {
    name: 'newton',
    beforeStep: (step) => {
      if (step % sizes.length === 0) Object.assign(ep, { total: 0, positives: 0, negatives: 0, backprop: 0 });
    },
    afterStep: ({ batch: B, loss }) => {
      ep.total += loss * B;
    },
    // The row's lr is the epoch's (fit's own is the next step's); `train_error` feeds the annealer.
    evaluate: (epoch) => ({ lr: schedule.lr((epoch - 1) * sizes.length), loss: ep.total / o.patternsPerEpoch, train_error: ep.total, positives: ep.positives, negatives: ep.negatives, backprop: ep.backprop }),
    epoch: (r: EpochRow) => o.onEpoch?.({ epoch: r.epoch - 1, lr: r.lr, loss: r.loss, positives: r.positives, negatives: r.negatives, backprop: r.backprop }),
    state: {
      get: () => ({ epoch: { ...ep }, stream: stream.getState() }),
      set: (s) => {
        const st = s as { epoch: EpochCounters; stream: PatternStreamState };
        Object.assign(ep, st.epoch);
        stream.setState(st.stream);
      },
    },
  };

  try {
    fit<number>({
      trainer,
      epochs: o.epochs,
      rng,
      batches: () => sizes,
      gradFn: batchGrad,
      plateauMetric: 'train_error',
      checkpoint: o.checkpoint,
      extraVars: fixed,
      hooks: [hook],
    });
    return { weights: net.weights(), A };
  } finally {
    net.dispose();
    optimizer.dispose();
  }
}
