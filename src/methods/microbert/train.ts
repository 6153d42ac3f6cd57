/**
 * MicroBERT training (Gessler & Zeldes, MRL 2022), both phases through `fit` in step mode:
 * - `pretrain`: multitask pretraining. Each batch comes from one dataset in the variant's task cycle
 *   (`TaskMixer`: M = MLM only, MX = MLM:POS 8:1, MXP = MLM:POS:parse 8:1:1). A labeled batch goes to every
 *   compatible head: the encoder runs once on the masked input (MLM loss) and once unmasked (tagger, and parser in
 *   MXP); the losses are summed (the λs are sampling proportions, not loss weights). AdamW with a short linear
 *   warm-up, then reduce-on-plateau on the validation MLM perplexity (`warmupPlateau`). The encoder with the best
 *   validation perplexity is kept (`BestWeights`).
 * - `trainProbe`: the evaluation probe — a fresh biaffine parser on a learned scalar mix of the encoder's layers
 *   (the paper's parser reads all layers; optional, else the last layer), the encoder fine-tuned at a lower rate
 *   (an `lrScale` on one AdamW: PyTorch-style parameter groups) or frozen (factor 0: its word vectors are computed
 *   once and cached), global-norm clipping 5.0, the best-dev-LAS weights kept; a UPOS linear probe trains
 *   alongside on stop-gradient word vectors (it does not change the encoder).
 * With a checkpoint store, each phase checkpoints every `everySteps` steps and after its last step (named state:
 * stream positions, best score, speed counters; the best weights as extra variables), so `resume` continues
 * exactly where the run stopped, also past a finished pretraining phase.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../engine/rng.js';
import type { CheckpointStore } from '../../train/checkpoint.js';
import { fit, type FitHook } from '../../train/fit.js';
import { AdamW } from '../../train/optimizers.js';
import { constant } from '../../train/schedules.js';
import { Trainer } from '../../train/trainer.js';
import { BatchStream, makeBatch, type BatchStreamState, type PreparedSentence } from './batch.js';
import { BestWeights } from './best-weights.js';
import { stopGradient } from './heads.js';
import { TaskMixer, taskCycle, type Variant } from './mixing.js';
import { batchTensors, cachedWordTensor, type MicroBert } from './model.js';
import { attachmentScores, predict } from './predict.js';
import { warmupPlateau } from './schedule.js';

/** Where a phase checkpoints (`everySteps` = 0: only after its last step) and whether it resumes from there. */
export interface PhaseCheckpoint {
  store: CheckpointStore;
  everySteps?: number;
  resume?: boolean;
}

export interface PretrainOptions {
  variant: Variant;
  steps: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  warmupSteps: number;
  /** Validation MLM perplexity every this many steps. */
  evalEvery: number;
  plateauPatience: number;
  minLr: number;
  maskProb: number;
  /** Hidden dropout of the encoder during pretraining (the paper's code: 0.1); default 0. */
  dropout?: number;
  seed: number;
  checkpoint?: PhaseCheckpoint;
  onEval?(row: { step: number; val_ppl: number; lr: number; train_loss: number }): void;
  onStep?(step: number, loss: number): void;
}

export interface PretrainResult {
  bestValPpl: number;
  bestStep: number;
  /** Wordpiece tokens (non-padding inputs) per second of training steps, evaluation excluded. */
  tokensPerSec: number;
  steps: number;
}

/**
 * Validation MLM perplexity: exp(mean cross-entropy over masked pieces), with one fixed masking of `sents`
 * (seeded, so successive evaluations are comparable).
 */
export function mlmPerplexity(model: MicroBert, sents: PreparedSentence[], batchSize: number, maskProb = 0.15, seed = 12345): number {
  const rng = new Rng(seed);
  let sum = 0;
  let n = 0;
  for (let i = 0; i < sents.length; i += batchSize) {
    const b = makeBatch(sents.slice(i, i + batchSize), { maskRng: rng, vocabSize: model.cfg.vocabSize, maskProb });
    if (b.mlmPos.length === 0) continue;
    const t = batchTensors(b);
    const l = model.mlmLoss(t, false);
    sum += l.dataSync()[0] * b.mlmPos.length;
    n += b.mlmPos.length;
    l.dispose();
    tf.dispose(Object.values(t));
  }
  return Math.exp(sum / Math.max(1, n));
}

const fitCheckpoint = (c: PhaseCheckpoint | undefined) => (c ? { store: c.store, everySteps: c.everySteps, resume: c.resume, final: true } : undefined);

/**
 * Multitask pretraining of `model` (see the module comment). `unlabeled` feeds MLM batches, `labeled` the
 * POS/parse batches; `valUnlabeled` gives the validation perplexity. Adds the heads the variant needs.
 */
export function pretrain(model: MicroBert, data: { unlabeled: PreparedSentence[]; labeled: PreparedSentence[]; valUnlabeled: PreparedSentence[] }, o: PretrainOptions): PretrainResult {
  const cycle = taskCycle(o.variant);
  if (!cycle.length || o.steps <= 0) return { bestValPpl: NaN, bestStep: 0, tokensPerSec: NaN, steps: 0 };
  model.addHeads({ mlm: true, tagger: cycle.includes('pos'), parser: cycle.includes('parse') }, o.seed + 101);
  // One RNG for the streams, masking and parser dropout, in that order within a step; fit checkpoints it.
  const rng = new Rng(o.seed * 7919 + 1);
  const mixer = new TaskMixer(cycle, { unlabeled: data.unlabeled.length, labeled: data.labeled.length }, o.batchSize, rng);
  const schedule = warmupPlateau(o.lr, { warmupSteps: o.warmupSteps, patience: o.plateauPatience, minLr: o.minLr });
  // A head a batch does not reach (the tagger on an MLM batch) gets no update and no decay that step.
  const trainer = new Trainer({
    params: [...model.encoder.variables(), ...model.heads().flatMap((h) => h.variables())],
    optimizer: new AdamW({ weightDecay: o.weightDecay }),
    schedule,
    missingGrads: 'skip',
    lastCheckpoint: () => o.checkpoint?.store.name ?? null,
  });
  const best = new BestWeights('microbert-best-ppl', model.encoder.variables(), (a, b) => a < b);
  const speed = { tokens: 0, ms: 0 };
  let stepTokens = 0;
  let t0 = 0;
  const loop: FitHook = {
    name: 'microbert-pretrain',
    beforeStep: () => void (t0 = performance.now()),
    step: ({ step, loss }) => {
      speed.ms += performance.now() - t0;
      speed.tokens += stepTokens;
      o.onStep?.(step, loss);
    },
    evaluate: (done) => {
      const ppl = mlmPerplexity(model, data.valUnlabeled, 64, o.maskProb);
      const lr = schedule.lr(done - 1); // the rate of the step just taken, before the plateau rule acts
      best.offer(ppl, done);
      schedule.observe(ppl, done);
      return { val_ppl: ppl, lr };
    },
    epoch: (r) => o.onEval?.({ step: r.step, val_ppl: r.val_ppl, lr: r.lr, train_loss: r.train_loss }),
    state: { get: () => ({ ...speed }), set: (s) => void Object.assign(speed, s) },
  };
  // Dropout masks come from the run's RNG too (after the step's masking), so a resumed run draws the same ones.
  if (o.dropout) model.dropout = { rate: o.dropout, rng };
  try {
    fit({
      trainer,
      steps: { total: o.steps, evalAt: (done) => done % o.evalEvery === 0 },
      rng,
      lossFn: (_, step) => {
        const { task, indices } = mixer.next(step);
        const sents = indices.map((i) => (task === 'mlm' ? data.unlabeled[i] : data.labeled[i]));
        const masked = makeBatch(sents, { maskRng: rng, vocabSize: model.cfg.vocabSize, maskProb: o.maskProb });
        stepTokens = masked.keyMask.reduce((a, b) => a + b, 0);
        const mt = batchTensors(masked);
        let l = masked.mlmPos.length ? model.mlmLoss(mt, true) : tf.scalar(0);
        if (task !== 'mlm') {
          const clean = batchTensors(makeBatch(sents));
          const words = model.wordVectors(clean, true);
          l = tf.add(l, model.taggerLoss(words, clean));
          if (model.parser) l = tf.add(l, model.parserLoss(words, clean, masked.B, masked.W, rng));
        }
        return l;
      },
      checkpoint: fitCheckpoint(o.checkpoint),
      extraVars: best.copies,
      hooks: [mixer.hook(), best.hook(), loop],
    });
    best.restore();
  } finally {
    model.dropout = null;
    best.dispose();
    trainer.optimizer.dispose();
  }
  return { bestValPpl: best.state.score ?? Infinity, bestStep: best.state.step, tokensPerSec: speed.tokens / (speed.ms / 1000), steps: o.steps };
}

export interface ProbeOptions {
  steps: number;
  batchSize: number;
  /** Rate of the fresh heads; the encoder gets lr × encoderLrFactor. */
  lr: number;
  encoderLrFactor: number;
  /**
   * Read the encoder through a learned scalar mix of all its layers (embeddings and every block), as the
   * paper's AllenNLP parser does; false = the last layer only. Default true.
   */
  layerMix?: boolean;
  weightDecay: number;
  evalEvery: number;
  clip: number;
  seed: number;
  checkpoint?: PhaseCheckpoint;
  onEval?(row: { step: number; dev_las: number; dev_uas: number; dev_upos_acc: number }): void;
  onStep?(step: number, loss: number): void;
}

/** Gold annotation in the form `attachmentScores` takes. */
export function goldOf(sents: PreparedSentence[], uposTags: string[][]) {
  return sents.map((s, i) => ({ heads: s.heads, labels: s.labels, upos: s.upos, uposTags: uposTags[i] }));
}

/**
 * Trains the parser probe (and a UPOS linear probe) on `train`, choosing the weights by LAS on `dev`.
 * Returns the best dev scores. Replaces any parser/tagger heads on the model.
 */
export function trainProbe(model: MicroBert, train: PreparedSentence[], dev: { sents: PreparedSentence[]; uposTags: string[][] }, o: ProbeOptions): { devLas: number; devUas: number; devUposAcc: number; bestStep: number } {
  model.addHeads({ parser: true, tagger: true, mix: o.layerMix ?? true }, o.seed + 202);
  const rng = new Rng(o.seed * 104729 + 3);
  const stream = new BatchStream(train.length, o.batchSize, rng);
  // A frozen encoder (factor 0) runs once: word vectors are cached and only the heads train.
  const frozen = o.encoderLrFactor === 0;
  const trainCache = frozen ? model.cacheWordVectors(train) : null;
  const devCache = frozen ? model.cacheWordVectors(dev.sents) : undefined;
  const enc = frozen ? [] : model.encoder.variables();
  const vars = [...enc, ...model.parser!.variables(), ...model.tagger!.variables(), ...(model.mix?.variables() ?? [])];
  const optimizer = new AdamW({ weightDecay: o.weightDecay });
  if (!frozen) optimizer.lrScale = (_, i) => (i < enc.length ? o.encoderLrFactor : 1);
  const trainer = new Trainer({ params: vars, optimizer, schedule: constant(o.lr), clipNorm: o.clip, missingGrads: 'skip', lastCheckpoint: () => o.checkpoint?.store.name ?? null });
  const best = new BestWeights('microbert-best-las', vars, (a, b) => a > b);
  const gold = goldOf(dev.sents, dev.uposTags);
  const hooks: FitHook[] = [
    { name: 'microbert-probe-stream', state: { get: () => stream.getState(), set: (s) => stream.setState(s as BatchStreamState) } },
    best.hook(),
    {
      name: 'microbert-probe',
      step: ({ step, loss }) => o.onStep?.(step, loss),
      evaluate: (done) => {
        const sc = attachmentScores(gold, predict(model, dev.sents, 32, devCache));
        best.offer(sc.las, done, { uas: sc.uas, upos: sc.uposAcc }); // dev-LAS selection
        return { dev_las: sc.las, dev_uas: sc.uas, dev_upos_acc: sc.uposAcc };
      },
      epoch: (r) => o.onEval?.({ step: r.step, dev_las: r.dev_las, dev_uas: r.dev_uas, dev_upos_acc: r.dev_upos_acc }),
    },
  ];
  try {
    fit({
      trainer,
      steps: { total: o.steps, evalAt: (done) => done % o.evalEvery === 0 },
      rng,
      lossFn: () => {
        const idx = stream.next();
        const batch = makeBatch(idx.map((i) => train[i]));
        const t = batchTensors(batch);
        const words = trainCache ? model.wordsFromCache(cachedWordTensor(trainCache, idx, batch.W, model.cfg.dModel, model.cachedLayers())) : model.wordVectors(t, true);
        const p = model.parserLoss(words, t, batch.B, batch.W, rng);
        return tf.add(p, model.taggerLoss(stopGradient(words), t)) as tf.Scalar;
      },
      checkpoint: fitCheckpoint(o.checkpoint),
      extraVars: best.copies,
      hooks,
    });
    best.restore();
  } finally {
    best.dispose();
    optimizer.dispose();
  }
  const s = best.state;
  return { devLas: s.score ?? -1, devUas: s.info.uas ?? 0, devUposAcc: s.info.upos ?? 0, bestStep: s.step };
}
