/**
 * One (method, seed) run of `newton-handwriting`: trains the character classifier with the arm's innovations
 * (`trainNewtonClassifier`, through `fit`, checkpointed every epoch for `--resume`), builds the word recognizer
 * and evaluates it on the evaluation fonts.
 */
import { join } from 'node:path';
import { HANDWRITING_CLASSES } from '../../data/handwriting.js';
import { DEFAULT_FEATURES } from '../../methods/newton/features.js';
import { saveRecognizer } from '../../methods/newton/io-node.js';
import { Recognizer } from '../../methods/newton/recognizer.js';
import { trainNewtonClassifier } from '../../methods/newton/trainer.js';
import { fileCheckpointStore } from '../../node/checkpoint-file.js';
import { runRng } from '../common/image-classification.js';
import type { RunContext } from '../types.js';
import { buildNewtonData, sampleSource, segOptions } from './data.js';
import { evaluateRecognizer, netSpecFor, searchOptions } from './evaluate.js';
import type { NewtonHandwritingConfig as Cfg } from './index.js';
import { newtonArm } from './methods.js';

export async function runNewtonHandwriting(ctx: RunContext<Cfg>): Promise<{ metrics: Record<string, number> }> {
  const cfg = ctx.config;
  const arm = newtonArm(ctx.method);
  const d = buildNewtonData(cfg, ctx.seed);
  const spec = netSpecFor(cfg);
  const t0 = Date.now();
  const res = trainNewtonClassifier(
    sampleSource(d, cfg),
    {
      spec,
      epochs: cfg.epochs,
      patternsPerEpoch: cfg.patternsPerEpoch,
      batchSize: cfg.batchSize,
      lrScale: cfg.lrScale,
      schedule: arm.anneal ? 'anneal' : 'fixed',
      fixedLr: cfg.fixedLr,
      normOutErrD: arm.normouterr ? cfg.normOutErrD : 0,
      frequencyBalancing: arm.freqbal ? { a: cfg.freqA, b: cfg.freqB, cap: cfg.freqCap } : null,
      errorEmphasis: arm.erremph,
      negativeTraining: arm.negative ? { factor: cfg.negativeFactor } : null,
      strokeWarping: arm.warp,
      onEpoch: (e) => {
        ctx.log({ epoch: e.epoch + 1, loss: e.loss, lr: e.lr, positives: e.positives, negatives: e.negatives, backprop: e.backprop });
        ctx.progress({ epoch: e.epoch + 1, epochs: cfg.epochs, loss: e.loss });
      },
      // A checkpoint at every epoch end: `--resume` continues an interrupted run exactly.
      checkpoint: { store: fileCheckpointStore(join(ctx.artifactsDir, 'checkpoint.safetensors')), resume: ctx.resume },
    },
    runRng(ctx.seed, `newton-train-${ctx.method}`),
  );
  const trainSeconds = (Date.now() - t0) / 1000;
  const rec = new Recognizer(HANDWRITING_CLASSES, spec, res.weights, res.A, DEFAULT_FEATURES, segOptions(cfg), searchOptions(cfg), d.dictionary, {
    trainedBy: `efftrain run newton-handwriting (method ${ctx.method}, seed ${ctx.seed})`,
    trainFonts: cfg.trainFonts,
  });
  const ev = evaluateRecognizer(rec, d.evalSet);
  if (cfg.saveRecognizer) saveRecognizer(ctx.artifactsDir, rec);
  ctx.log({ kind: 'diagnostic', name: 'reliability', lo: ev.bins.map((b) => b.lo), meanY: ev.bins.map((b) => b.meanY), empiricalP: ev.bins.map((b) => b.empiricalP), count: ev.bins.map((b) => b.count), A: res.A });
  return { metrics: { ...ev.metrics, train_positives: d.positives.length, train_negatives: d.negatives.length, train_seconds: trainSeconds } };
}
