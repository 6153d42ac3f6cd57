/** The newton-handwriting experiment's net spec, search options and character/word-level evaluation of a recognizer. */
import { HANDWRITING_CLASSES } from '../../data/handwriting.js';
import { calibrationError, reliabilityBins } from '../../methods/newton/normouterr.js';
import { DEFAULT_FEATURES, featureBranches, featureDim, segmentFeatures } from '../../methods/newton/features.js';
import { netForward, type NetSpec } from '../../methods/newton/net.js';
import type { Recognizer } from '../../methods/newton/recognizer.js';
import { DEFAULT_SEARCH, type SearchOptions } from '../../methods/newton/search.js';
import type { WordSet } from './data.js';
import type { NewtonHandwritingConfig as Cfg } from './index.js';

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
