/**
 * MicroBERT training loops (Gessler & Zeldes, MRL 2022):
 * - `pretrain`: multitask pretraining. Each batch comes from one dataset; a fixed cycle sets the task
 *   proportions (M: MLM only; MX: MLM:POS = 8:1; MXP: MLM:POS:parse = 8:1:1, the code's cycle
 *   `mlm×4, pos, mlm×4, parse`). A labeled batch goes to every compatible head: the encoder runs once on the
 *   masked input (MLM loss) and once unmasked (tagger, and parser in MXP); the losses are summed (the λs are
 *   sampling proportions, not loss weights). AdamW with a short linear warm-up, then reduce-on-plateau on the
 *   validation MLM perplexity (halve after `plateauPatience` evaluations without gain, floor `minLr`). The
 *   encoder with the best validation perplexity is kept.
 * - `trainProbe`: the evaluation probe — a fresh biaffine parser on a learned scalar mix of the encoder's layers
 *   (the paper's parser reads all layers; optional, else the last layer), the encoder fine-tuned at a
 *   lower rate (or frozen, factor 0: then its word vectors are computed once and cached), global-norm
 *   clipping 5.0, the best-dev-LAS weights kept; a UPOS linear probe trains alongside on stop-gradient word
 *   vectors (it does not change the encoder).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../engine/rng.js';
import { NonFiniteLossError } from '../../errors.js';
import { AdamW, clipByGlobalNorm } from '../../train/optimizers.js';
import { BatchStream, makeBatch, type PreparedSentence } from './batch.js';
import { stopGradient } from './heads.js';
import { batchTensors, cachedWordTensor, type MicroBert } from './model.js';
import { attachmentScores, predict } from './predict.js';

export const VARIANTS = ['none', 'm', 'mx', 'mxp'] as const;
export type Variant = (typeof VARIANTS)[number];
export type Task = 'mlm' | 'pos' | 'parse';

/** The batch cycle of a variant (MicroBERT §5): M = [mlm], MX = mlm×8 + pos, MXP = mlm×4, pos, mlm×4, parse. */
export function taskCycle(variant: Variant): Task[] {
  const m4: Task[] = ['mlm', 'mlm', 'mlm', 'mlm'];
  if (variant === 'm') return ['mlm'];
  if (variant === 'mx') return [...m4, ...m4, 'pos'];
  if (variant === 'mxp') return [...m4, 'pos', ...m4, 'parse'];
  return [];
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
  seed: number;
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

/** One optimizer step on `loss` over `vars` (inside a tidy), returning the loss value. */
function step(vars: tf.Variable[], loss: () => tf.Scalar, opts: { opt: AdamW; lr: number; clip?: number; split?: { opt: AdamW; lr: number; count: number } }, stepNo: number): number {
  const v = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(loss, vars);
    let g = vars.map((x) => grads[x.name]);
    if (opts.clip) {
      const present = g.filter((x): x is tf.Tensor => !!x);
      const c = clipByGlobalNorm(present, opts.clip).grads;
      let k = 0;
      g = g.map((x) => (x ? c[k++] : x));
    }
    if (opts.split) {
      const n = opts.split.count;
      opts.split.opt.apply(vars.slice(0, n), g.slice(0, n), opts.split.lr);
      opts.opt.apply(vars.slice(n), g.slice(n), opts.lr);
    } else opts.opt.apply(vars, g, opts.lr);
    return value;
  });
  const x = v.dataSync()[0];
  v.dispose();
  if (!Number.isFinite(x)) throw new NonFiniteLossError(stepNo, x, null);
  return x;
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

/**
 * Multitask pretraining of `model` (see the module comment). `unlabeled` feeds MLM batches, `labeled` the
 * POS/parse batches; `valUnlabeled` gives the validation perplexity. Adds the heads the variant needs.
 */
export function pretrain(model: MicroBert, data: { unlabeled: PreparedSentence[]; labeled: PreparedSentence[]; valUnlabeled: PreparedSentence[] }, o: PretrainOptions): PretrainResult {
  const cycle = taskCycle(o.variant);
  if (!cycle.length || o.steps <= 0) return { bestValPpl: NaN, bestStep: 0, tokensPerSec: NaN, steps: 0 };
  model.addHeads({ mlm: true, tagger: cycle.includes('pos'), parser: cycle.includes('parse') }, o.seed + 101);
  const rng = new Rng(o.seed * 7919 + 1);
  const mlmStream = new BatchStream(data.unlabeled.length, o.batchSize, rng);
  const udStream = new BatchStream(data.labeled.length, o.batchSize, rng);
  const vars = [...model.encoder.variables(), ...model.heads().flatMap((h) => h.variables())];
  const opt = new AdamW({ weightDecay: o.weightDecay });
  let lr = o.lr;
  let best = Infinity;
  let bestStep = 0;
  let bad = 0;
  let snap: tf.Tensor[] | null = null;
  let tokens = 0;
  let trainMs = 0;
  let lossSum = 0;
  let lossN = 0;
  try {
    for (let s = 1; s <= o.steps; s++) {
      const task = cycle[(s - 1) % cycle.length];
      const sents = task === 'mlm' ? mlmStream.next().map((i) => data.unlabeled[i]) : udStream.next().map((i) => data.labeled[i]);
      const masked = makeBatch(sents, { maskRng: rng, vocabSize: model.cfg.vocabSize, maskProb: o.maskProb });
      const mt = batchTensors(masked);
      const clean = task === 'mlm' ? null : batchTensors(makeBatch(sents));
      const curLr = s <= o.warmupSteps ? (lr * s) / o.warmupSteps : lr;
      const t0 = performance.now();
      let loss: number;
      try {
        loss = step(
          vars,
          () => {
            let l = masked.mlmPos.length ? model.mlmLoss(mt, true) : tf.scalar(0);
            if (clean) {
              const words = model.wordVectors(clean, true);
              l = tf.add(l, model.taggerLoss(words, clean));
              if (model.parser) l = tf.add(l, model.parserLoss(words, clean, masked.B, masked.W, rng));
            }
            return l;
          },
          { opt, lr: curLr },
          s,
        );
      } finally {
        tf.dispose(Object.values(mt));
        if (clean) tf.dispose(Object.values(clean));
      }
      trainMs += performance.now() - t0;
      tokens += masked.keyMask.reduce((a, b) => a + b, 0);
      lossSum += loss;
      lossN++;
      o.onStep?.(s, loss);
      if (s % o.evalEvery === 0 || s === o.steps) {
        const ppl = mlmPerplexity(model, data.valUnlabeled, 64, o.maskProb);
        o.onEval?.({ step: s, val_ppl: ppl, lr: curLr, train_loss: lossSum / lossN });
        lossSum = 0;
        lossN = 0;
        if (ppl < best) {
          best = ppl;
          bestStep = s;
          bad = 0;
          if (snap) tf.dispose(snap);
          snap = model.snapshotEncoder();
        } else if (s > o.warmupSteps && ++bad >= o.plateauPatience) {
          lr = Math.max(o.minLr, lr / 2);
          bad = 0;
        }
      }
    }
    if (snap) model.restoreEncoder(snap);
  } finally {
    if (snap) tf.dispose(snap);
    opt.dispose();
  }
  return { bestValPpl: best, bestStep, tokensPerSec: tokens / (trainMs / 1000), steps: o.steps };
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
  const headVars = [...model.parser!.variables(), ...model.tagger!.variables(), ...(model.mix?.variables() ?? [])];
  const vars = [...enc, ...headVars];
  const encOpt = new AdamW({ weightDecay: o.weightDecay });
  const headOpt = new AdamW({ weightDecay: o.weightDecay });
  const gold = goldOf(dev.sents, dev.uposTags);
  let best = { devLas: -1, devUas: 0, devUposAcc: 0, bestStep: 0 };
  let snap: tf.Tensor[] | null = null;
  try {
    for (let s = 1; s <= o.steps; s++) {
      const idx = stream.next();
      const batch = makeBatch(idx.map((i) => train[i]));
      const t = batchTensors(batch);
      const cached = trainCache ? cachedWordTensor(trainCache, idx, batch.W, model.cfg.dModel, model.cachedLayers()) : null;
      let loss: number;
      try {
        loss = step(
          vars,
          () => {
            const words = cached ? model.wordsFromCache(cached) : model.wordVectors(t, true);
            const p = model.parserLoss(words, t, batch.B, batch.W, rng);
            return tf.add(p, model.taggerLoss(stopGradient(words), t)) as tf.Scalar;
          },
          frozen
            ? { opt: headOpt, lr: o.lr, clip: o.clip }
            : { opt: headOpt, lr: o.lr, clip: o.clip, split: { opt: encOpt, lr: o.lr * o.encoderLrFactor, count: enc.length } },
          s,
        );
      } finally {
        tf.dispose(Object.values(t));
        cached?.dispose();
      }
      o.onStep?.(s, loss);
      if (s % o.evalEvery === 0 || s === o.steps) {
        const sc = attachmentScores(gold, predict(model, dev.sents, 32, devCache));
        o.onEval?.({ step: s, dev_las: sc.las, dev_uas: sc.uas, dev_upos_acc: sc.uposAcc });
        if (sc.las > best.devLas) {
          best = { devLas: sc.las, devUas: sc.uas, devUposAcc: sc.uposAcc, bestStep: s };
          if (snap) tf.dispose(snap);
          snap = vars.map((v) => tf.keep(v.clone()));
        }
      }
    }
    if (snap) vars.forEach((v, i) => v.assign(snap![i]));
  } finally {
    if (snap) tf.dispose(snap);
    encOpt.dispose();
    headOpt.dispose();
  }
  return best;
}
