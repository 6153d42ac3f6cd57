import { inkBox, validateInk, type Ink } from '../../data/strokes.js';
import { DEFAULT_FEATURES, featureDim, segmentFeatures, type FeatureOptions } from './features.js';
import { netForward, netShapes, type NetSpec, type NetWeights } from './net.js';
import { outputToProbability } from './normouterr.js';
import { beamSearch, Dictionary, DEFAULT_SEARCH, type Hypothesis, type SearchOptions } from './search.js';
import { DEFAULT_SEGMENTATION, segmentHypotheses, type Segment, type SegmentationOptions } from './segmentation.js';

/**
 * A complete hand-print word recognizer after the Newton "Print Recognizer" (Yaeger, Lyon & Webb, NIPS 9, 1996):
 * segmentation hypotheses → character classifier on every segment (outputs mapped to probabilities with the
 * NormOutErr inverse map) → beam search over segmentation graph × dictionary trie with a weak language model.
 * Browser-safe (no tfjs needed for inference, no `node:` imports).
 *
 * Saved format (`recognizer.json`, {@link RecognizerJSON}): one JSON object
 *   { format: "efftrain.newton-recognizer", version: 1,
 *     classes: "abc…",               // output unit k recognises classes[k]
 *     normOutErrA: number,           // A used in training (1 = plain MSE); p = yA / (yA + 1 − y)
 *     features: FeatureOptions, segmentation: SegmentationOptions, search: SearchOptions,
 *     net: { spec: NetSpec, weights: { name: number[] } },   // row-major, shapes from netShapes(spec)
 *     dictionary: [word, count][],   // word list with frequencies (the LM); may be empty
 *     meta?: {...} }                 // free-form training info
 *
 * Inference API:
 *   const rec = await loadRecognizer('/path/or/url/recognizer.json');   // or Recognizer.fromJSON(obj)
 *   rec.recognize(ink)          // ink: [[[x, y], …], …] strokes in writing order, y down → Hypothesis[] best first
 *   rec.recognize(ink, { useDictionary: false, topN: 3 })
 *   rec.classify(strokes)       // one character: [{ char, p }] best first
 */
export interface RecognizerJSON {
  format: 'efftrain.newton-recognizer';
  version: 1;
  classes: string;
  normOutErrA: number;
  features: FeatureOptions;
  segmentation: SegmentationOptions;
  search: SearchOptions;
  net: { spec: NetSpec; weights: Record<string, number[]> };
  dictionary: [string, number][];
  meta?: Record<string, unknown>;
}

export const RECOGNIZER_FORMAT = 'efftrain.newton-recognizer';

export interface RecognizeOptions extends Partial<SearchOptions> {
  /** Use the dictionary + out-of-dictionary path (default true); false = free character strings. */
  useDictionary?: boolean;
  /** Candidate characters kept per segment (default 8). */
  candidatesPerSegment?: number;
}

export class Recognizer {
  readonly dictionary: Dictionary | null;

  constructor(
    readonly classes: string,
    readonly spec: NetSpec,
    readonly weights: NetWeights,
    readonly normOutErrA: number,
    readonly features: FeatureOptions = DEFAULT_FEATURES,
    readonly segmentation: SegmentationOptions = DEFAULT_SEGMENTATION,
    readonly search: SearchOptions = DEFAULT_SEARCH,
    readonly dictionaryEntries: [string, number][] = [],
    readonly meta: Record<string, unknown> = {},
  ) {
    if ([...classes].length !== spec.outputs) throw new Error(`recognizer: ${[...classes].length} classes but the net has ${spec.outputs} outputs`);
    if (featureDim(features) !== spec.inputDim) throw new Error(`recognizer: features give ${featureDim(features)} inputs but the net expects ${spec.inputDim}`);
    this.dictionary = dictionaryEntries.length ? new Dictionary(dictionaryEntries) : null;
  }

  /** Builds a recognizer from its saved JSON object, checking the format and every weight's length. */
  static fromJSON(j: unknown, source = 'recognizer.json'): Recognizer {
    const r = j as RecognizerJSON;
    if (!r || typeof r !== 'object' || r.format !== RECOGNIZER_FORMAT) throw new Error(`${source}: not an efftrain newton recognizer (format must be "${RECOGNIZER_FORMAT}")`);
    if (r.version !== 1) throw new Error(`${source}: unsupported version ${String(r.version)}`);
    if (!r.net?.spec || !r.net.weights) throw new Error(`${source}: missing net.spec or net.weights`);
    const weights: NetWeights = {};
    for (const [name, shape] of Object.entries(netShapes(r.net.spec))) {
      const arr = r.net.weights[name];
      const n = shape.reduce((a, b) => a * b, 1);
      if (!Array.isArray(arr) || arr.length !== n) throw new Error(`${source}: net.weights.${name} must have ${n} numbers`);
      weights[name] = Float32Array.from(arr);
    }
    return new Recognizer(r.classes, r.net.spec, weights, r.normOutErrA, r.features, r.segmentation, { ...DEFAULT_SEARCH, ...r.search }, r.dictionary ?? [], r.meta ?? {});
  }

  toJSON(): RecognizerJSON {
    const weights: Record<string, number[]> = {};
    for (const [k, v] of Object.entries(this.weights)) weights[k] = Array.from(v);
    return {
      format: RECOGNIZER_FORMAT,
      version: 1,
      classes: this.classes,
      normOutErrA: this.normOutErrA,
      features: this.features,
      segmentation: this.segmentation,
      search: this.search,
      net: { spec: this.spec, weights },
      dictionary: this.dictionaryEntries,
      meta: this.meta,
    };
  }

  /** Raw sigmoid outputs (n×C) of the segments of `ink`. */
  segmentOutputs(ink: Ink, segments: Segment[]): Float32Array {
    const D = this.spec.inputDim;
    const box = inkBox(ink);
    const x = new Float32Array(segments.length * D);
    segments.forEach((s, i) => segmentFeatures(ink.slice(s.from, s.to), box, this.features, x, i * D));
    return netForward(this.spec, this.weights, x, segments.length);
  }

  /** Probabilities (inverse NormOutErr map) of one character written as `strokes`, best first. */
  classify(strokes: unknown, topN = 5): { char: string; p: number }[] {
    const ink = validateInk(strokes);
    const y = this.segmentOutputs(ink, [{ from: 0, to: ink.length }]);
    const chars = [...this.classes];
    return chars
      .map((char, k) => ({ char, p: outputToProbability(y[k], this.normOutErrA) }))
      .sort((a, b) => b.p - a.p)
      .slice(0, topN);
  }

  /** Word hypotheses for `ink` (validated; errors name the bad stroke/point), best first. */
  recognize(ink: unknown, opts: RecognizeOptions = {}): Hypothesis[] {
    const strokes = validateInk(ink);
    const segments = segmentHypotheses(strokes, this.segmentation);
    const y = this.segmentOutputs(strokes, segments);
    const C = this.spec.outputs;
    const K = Math.min(C, opts.candidatesPerSegment ?? 8);
    const chars = [...this.classes];
    const scored = segments.map((s, i) => {
      const ps = Array.from({ length: C }, (_, k) => ({ char: chars[k], logp: Math.log(Math.max(1e-6, outputToProbability(y[i * C + k], this.normOutErrA))) }));
      ps.sort((a, b) => b.logp - a.logp);
      return { from: s.from, to: s.to, candidates: ps.slice(0, K) };
    });
    const useDict = opts.useDictionary ?? true;
    return beamSearch(strokes.length, scored, useDict ? this.dictionary : null, { ...this.search, ...opts });
  }
}

/**
 * Loads a saved recognizer from a parsed JSON object or from a URL / path that `fetchFn` (default: global fetch)
 * can read.
 */
export async function loadRecognizer(source: string | URL | RecognizerJSON, fetchFn: typeof fetch = fetch): Promise<Recognizer> {
  if (typeof source === 'object' && !(source instanceof URL)) return Recognizer.fromJSON(source);
  const res = await fetchFn(source);
  if (!res.ok) throw new Error(`${String(source)}: HTTP ${res.status}`);
  return Recognizer.fromJSON(await res.json(), String(source));
}
