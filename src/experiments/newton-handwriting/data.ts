/**
 * The newton-handwriting experiment's data: synthetic writers from Hershey fonts (train, validation and test fonts
 * disjoint), words drawn from a corpus, their segmentation hypotheses labelled as positive (a glyph) or negative
 * training segments, and the training sample source (un-warped features cached per worker).
 */
import { corpusWordCounts } from '../../data/handwriting-node.js';
import { cumulativeCounts, DEFAULT_RENDER, HANDWRITING_CLASSES, makeWriter, renderWord, sampleWord, type RenderedWord, type Writer } from '../../data/handwriting.js';
import { loadHersheyTextJson } from '../../data/strokes-node.js';
import { hersheyFont, inkBox, type Box } from '../../data/strokes.js';
import type { Rng } from '../../engine/rng.js';
import { UserError } from '../../errors.js';
import { DEFAULT_FEATURES, featureDim, segmentFeatures } from '../../methods/newton/features.js';
import { labelSegments, segmentHypotheses, type SegmentationOptions } from '../../methods/newton/segmentation.js';
import { applyStrokeWarp, DEFAULT_STROKE_WARP, sampleStrokeWarp } from '../../methods/newton/stroke-warp.js';
import type { SampleSource } from '../../methods/newton/trainer.js';
import { runRng } from '../common/image-classification.js';
import type { NewtonHandwritingConfig as Cfg } from './index.js';

export interface WordSet {
  words: RenderedWord[];
  boxes: Box[];
}

export interface NewtonData {
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

export const segOptions = (cfg: Cfg): SegmentationOptions => ({ maxStrokes: cfg.maxStrokes, maxWidthRatio: cfg.maxWidthRatio });

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
export function sampleSource(d: NewtonData, cfg: Cfg): SampleSource {
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
