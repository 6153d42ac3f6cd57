import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { Rng } from '../src/engine/rng.js';
import { hersheyFont, parseHersheyPath, rasterize, resampleByArcLength, validateInk, type Ink } from '../src/data/strokes.js';
import { loadHersheyTextJson } from '../src/data/strokes-node.js';
import {
  applyStrokeWarp,
  beamSearch,
  Dictionary,
  ErrorRiseAnnealer,
  errorEmphasisMask,
  frequencyBalancedEpoch,
  IDENTITY_WARP,
  initNetWeights,
  labelSegments,
  netForward,
  normOutErrFactor,
  normOutErrLoss,
  normOutErrTargets,
  outputToProbability,
  phaseAt,
  probabilityToOutput,
  Recognizer,
  repetitionFactors,
  sampleNegatives,
  sampleStrokeWarp,
  segmentHypotheses,
  TfNet,
  trainNewtonClassifier,
  DEFAULT_FEATURES,
  featureDim,
  type NetSpec,
  type SampleSource,
} from '../src/methods/newton/index.js';

const close = (a: number, b: number, tol: number, msg?: string) => assert.ok(Math.abs(a - b) <= tol, `${msg ?? ''} ${a} vs ${b} (tol ${tol})`);

test('NormOutErr factor A = 1/(d(N−1)) and the spec table of y = p/(A − Ap + p)', () => {
  close(normOutErrFactor(0.1, 96), 1 / 9.5, 1e-12);
  close(normOutErrFactor(0.8, 96), 1 / 76, 1e-12);
  assert.equal(normOutErrFactor(0, 62), 1);
  assert.throws(() => normOutErrFactor(-1, 10));
  // spec §3.1 worked values (N = 96)
  const A1 = normOutErrFactor(0.1, 96);
  const A8 = normOutErrFactor(0.8, 96);
  close(probabilityToOutput(0.05, A1), 0.333, 0.001);
  close(probabilityToOutput(0.1, A1), 0.514, 0.001);
  close(probabilityToOutput(0.5, A8), 0.987, 0.001);
  close(probabilityToOutput(0.01, A8), 0.434, 0.001);
  // inverse map by hand: y = 0.5, A = 0.25 → p = 0.125 / (0.125 + 0.5) = 0.2
  close(outputToProbability(0.5, 0.25), 0.2, 1e-12);
  for (const p of [0.01, 0.3, 0.9]) close(outputToProbability(probabilityToOutput(p, A1), A1), p, 1e-12);
  assert.equal(outputToProbability(0.37, 1), 0.37);
});

test('y = p/(A − Ap + p) minimises the expected NormOutErr loss p(1−y)² + A(1−p)y²', () => {
  for (const [p, A] of [[0.2, 0.1], [0.7, 0.05], [0.5, 1]]) {
    let best = 0;
    let bestL = Infinity;
    for (let i = 0; i <= 100000; i++) {
      const y = i / 100000;
      const L = p * (1 - y) ** 2 + A * (1 - p) * y ** 2;
      if (L < bestL) [best, bestL] = [y, L];
    }
    close(best, probabilityToOutput(p, A), 2e-5);
  }
});

test('NormOutErr loss gradient is w·(y − t)/B with weight A at non-targets and the negative factor on negatives', async () => {
  await initEngine({ backend: 'cpu' });
  const labels = [1, -1];
  const { targets, weights } = normOutErrTargets(labels, 3, { A: 0.25, negativeFactor: 0.3, sampleScale: [1, 0.5] });
  assert.deepEqual(Array.from(targets), [0, 1, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(weights), [0.25, 1, 0.25, 0.15, 0.15, 0.15].map((v) => Math.fround(v)));
  const yv = [0.2, 0.6, 0.9, 0.4, 0.1, 0.7];
  const y = tf.tensor2d(yv, [2, 3]);
  const tt = tf.tensor2d(targets, [2, 3]);
  const wt = tf.tensor2d(weights, [2, 3]);
  const g = tf.grad((yy: tf.Tensor) => normOutErrLoss(yy as tf.Tensor2D, tt, wt))(y).dataSync();
  const hand = yv.map((v, i) => (weights[i] * (v - targets[i])) / 2);
  hand.forEach((h, i) => close(g[i], h, 1e-6, `grad ${i}`));
  const L = normOutErrLoss(y, tt, wt).dataSync()[0];
  close(L, (0.5 * yv.reduce((s, v, i) => s + weights[i] * (v - targets[i]) ** 2, 0)) / 2, 1e-6);
  tf.dispose([y, tt, wt]);
});

test('frequency balancing: R = (a/F)^b (spec example a = .5, b = .7) and repeat/skip counts', () => {
  // 7 classes, mean count 20: F = .05, .5, 1, 5 for the first four.
  const R = repetitionFactors([1, 10, 20, 100, 3, 3, 3], 0.5, 0.7);
  close(R[0], Math.pow(10, 0.7), 1e-12);
  close(R[0], 5.0, 0.02);
  close(R[1], 1, 1e-12);
  close(R[2], 0.616, 0.001);
  close(R[3], 0.1995, 0.001);
  assert.equal(repetitionFactors([1, 0], 0.5, 1, 8)[1], 8);
  assert.ok(repetitionFactors([1, 100], 0.5, 1, 3)[0] <= 3);
  const labels = Int32Array.from({ length: 2000 }, (_, i) => (i < 1000 ? 0 : 1));
  const ep = frequencyBalancedEpoch(labels, [2.5, 0.25], new Rng(3));
  let c0 = 0;
  let c1 = 0;
  for (const i of ep) (labels[i] === 0 ? c0++ : c1++);
  // 2 copies each + a third with prob .5 (sd ≈ 16); kept with prob .25 (sd ≈ 14)
  close(c0, 2500, 80);
  close(c1, 250, 70);
  assert.deepEqual(Array.from(frequencyBalancedEpoch(labels, [2.5, 0.25], new Rng(3))), Array.from(ep));
});

test('error emphasis skips only correctly classified positives; negative sampling keeps each with its probability', () => {
  const pred = [0, 1, 2, 0];
  const labels = [0, 2, -1, 0];
  assert.deepEqual(Array.from(errorEmphasisMask(pred, labels, 0, new Rng(1))), [0, 1, 1, 0]);
  assert.deepEqual(Array.from(errorEmphasisMask(pred, labels, 1, new Rng(1))), [1, 1, 1, 1]);
  const m = errorEmphasisMask(new Array(4000).fill(0), new Array(4000).fill(0), 0.25, new Rng(2));
  close(m.reduce((s, v) => s + v, 0), 1000, 120);
  assert.equal(sampleNegatives(50, 0, new Rng(1)).length, 0);
  assert.equal(sampleNegatives(50, 1, new Rng(1)).length, 50);
  close(sampleNegatives(4000, 0.3, new Rng(1)).length, 1200, 150);
});

test('stroke warp: identity, hand-computed rotation/skew/quadratic, determinism per seed', () => {
  const ink: Ink = [[[1, 0], [0, 1]], [[0.5, 0]]];
  const frame = { cx: 0, cy: 0, r: 1 };
  assert.deepEqual(applyStrokeWarp(ink, IDENTITY_WARP, frame), ink);
  const rot = applyStrokeWarp([[[1, 0]]], { ...IDENTITY_WARP, rotation: Math.PI / 2 }, frame)[0][0];
  close(rot[0], 0, 1e-12);
  close(rot[1], 1, 1e-12);
  assert.deepEqual(applyStrokeWarp([[[0, 1]]], { ...IDENTITY_WARP, skew: 0.5 }, frame)[0][0], [0.5, 1]);
  const q = applyStrokeWarp([[[0.5, -0.5]]], { ...IDENTITY_WARP, quadX: 0.2, quadY: 0.2, scaleX: 2 }, frame)[0][0];
  close(q[0], (0.5 + 0.2 * 0.25) * 2, 1e-12);
  close(q[1], -0.5 + 0.2 * 0.25, 1e-12);
  const a = sampleStrokeWarp(new Rng(7));
  assert.deepEqual(sampleStrokeWarp(new Rng(7)), a);
  assert.notDeepEqual(sampleStrokeWarp(new Rng(8)), a);
  assert.ok(Math.abs(a.rotation) <= (8 * Math.PI) / 180 && Math.abs(a.skew) <= 0.15 && a.scaleX >= 1 / 1.15 - 1e-9 && a.scaleX <= 1.15 + 1e-9);
  const zero = sampleStrokeWarp(new Rng(7), undefined, 0);
  for (const k of Object.keys(IDENTITY_WARP) as (keyof typeof IDENTITY_WARP)[]) close(zero[k], IDENTITY_WARP[k], 0);
});

test('phase schedule (Fig. 5) and the error-rise annealer', () => {
  const first = phaseAt(0, 130);
  assert.equal(first.phase, 0);
  close(first.lr, Math.pow(0.5, 0.5 / 25), 1e-12);
  assert.equal(first.correctTrainProb, 0.1);
  assert.equal(first.negativeTrainProb, 0.05);
  const p2 = phaseAt(30, 130);
  assert.deepEqual([p2.phase, p2.correctTrainProb, p2.negativeTrainProb], [1, 0.25, 0.1]);
  const last = phaseAt(129, 130);
  assert.deepEqual([last.phase, last.correctTrainProb, last.negativeTrainProb], [3, 1, 0.3]);
  assert.ok(last.lr < 0.0011 && last.lr > 0.001);
  assert.equal(phaseAt(5, 13).phase, 2); // phases scale to the run length: epoch 5.5/13·130 = 55 → phase 3 (index 2)
  const an = new ErrorRiseAnnealer(0.9, 0.5);
  assert.deepEqual([5, 4, 4.5, 4.6, 3, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8].map((e) => an.update(e)).slice(0, 5), [1, 1, 0.9, 0.81, 0.81]);
  assert.equal(an.scale, 0.5);
});

test('arc-length resampling, anti-aliased raster, ink validation', () => {
  assert.deepEqual(resampleByArcLength([[0, 0], [2, 0], [2, 2]], 5), [[0, 0], [1, 0], [2, 0], [2, 1], [2, 2]]);
  assert.deepEqual(resampleByArcLength([[3, 4]], 3), [[3, 4], [3, 4], [3, 4]]);
  // A horizontal line is scaled to span columns 1…12 at row 6.5: rows 6 and 7 are 0.5 px away (value 1), rows 5 and 8 are 1.5 px away (0).
  const img = rasterize([[[0, 0], [10, 0]]], 14);
  for (let x = 1; x <= 12; x++) {
    close(img[6 * 14 + x], 1, 1e-6);
    close(img[5 * 14 + x], 0, 1e-6);
  }
  // A diagonal has fractional (anti-aliased) values.
  const diag = rasterize([[[0, 0], [10, 7]]], 14);
  assert.ok(diag.some((v) => v > 0.05 && v < 0.95));
  assert.ok(diag.every((v) => v >= 0 && v <= 1));
  assert.throws(() => validateInk([[[0, 0]], [[1, 'a']]], 'x.json'), /x\.json: stroke 1, point 0/);
  assert.throws(() => validateInk([], 'x.json'), /no strokes/);
  assert.throws(() => validateInk({}, 'x.json'), /list of strokes/);
});

test('Hershey path parsing joins continued polylines; the hersheytext reader gives real glyphs', () => {
  assert.deepEqual(parseHersheyPath('M1,2 L3,4 5,6 M5,6 L7,8 M0,0 L1,1'), [
    [[1, 2], [3, 4], [5, 6], [7, 8]],
    [[0, 0], [1, 1]],
  ]);
  const json = loadHersheyTextJson();
  const g = hersheyFont(json, 'futural', 'Ao');
  assert.equal(g.get('A')!.ink.length, 3);
  assert.equal(g.get('o')!.ink.length, 1);
  assert.throws(() => hersheyFont(json, 'nope', 'a'), /not found/);
});

test('segmentation hypotheses and labels', () => {
  const ink: Ink = [[[0, 0], [0, 10]], [[2, 0], [2, 10]], [[30, 0], [30, 10]]];
  const segs = segmentHypotheses(ink, { maxStrokes: 3, maxWidthRatio: 1 });
  // 0-1, 0-2 (width 2), 1-2, 2-3; 0-3 and 1-3 are 30 and 28 wide > 1 × height 10
  assert.deepEqual(segs.map((s) => `${s.from}-${s.to}`), ['0-1', '0-2', '1-2', '2-3']);
  assert.deepEqual(Array.from(labelSegments(segs, [{ from: 0, to: 2, label: 7 }, { from: 2, to: 3, label: 1 }])), [-1, 7, -1, 1]);
});

test('beam search over a hand-made graph × dictionary trie with a weak LM and an out-of-dictionary path', () => {
  const segs = [
    { from: 0, to: 1, candidates: [{ char: 'c', logp: -0.1 }, { char: 'o', logp: -2 }] },
    { from: 1, to: 2, candidates: [{ char: 'l', logp: -0.5 }, { char: 'a', logp: -0.7 }] },
    { from: 0, to: 2, candidates: [{ char: 'd', logp: -0.3 }] },
    { from: 2, to: 3, candidates: [{ char: 't', logp: -0.2 }] },
    { from: 1, to: 3, candidates: [{ char: 'n', logp: -1 }] },
  ];
  const dict = new Dictionary([['cat', 6], ['dt', 2], ['on', 1]]);
  assert.ok(dict.has('cat') && !dict.has('ca'));
  // LM weight 1: cat = −0.1−0.7−0.2 + log(6/9); dt = −0.3−0.2 + log(2/9); on = −2−1 + log(1/9)
  const h = beamSearch(3, segs, dict, { lmWeight: 1, oodPenalty: 6, oodCharPenalty: 0.5, topN: 5 });
  assert.equal(h[0].text, 'cat');
  close(h[0].score, -1 + Math.log(6 / 9), 1e-9);
  assert.deepEqual(h[0].segments, [[0, 1], [1, 2], [2, 3]]);
  assert.equal(h[1].text, 'dt');
  close(h[1].score, -0.5 + Math.log(2 / 9), 1e-9);
  // Out-of-dictionary strings stay reachable, penalised: 'clt' = −0.8 − 6 − 3·0.5
  const clt = h.find((x) => x.text === 'clt');
  assert.ok(clt && !clt.inDictionary);
  close(clt.score, -0.8 - 6 - 1.5, 1e-9);
  // LM off: the classifier alone prefers 'dt'; without a dictionary every string is free.
  assert.equal(beamSearch(3, segs, dict, { lmWeight: 0 })[0].text, 'dt');
  const free = beamSearch(3, segs, null, { topN: 3 });
  assert.deepEqual(free.map((x) => x.text), ['dt', 'clt', 'cat']);
  close(free[1].score, -0.8, 1e-9);
  // Capital first letter matches the lower-case dictionary word.
  const cap = [{ from: 0, to: 1, candidates: [{ char: 'O', logp: -0.1 }] }, { from: 1, to: 2, candidates: [{ char: 'n', logp: -0.1 }] }];
  assert.equal(beamSearch(2, cap, dict)[0].inDictionary, true);
});

const tinySpec: NetSpec = { inputDim: 6, branches: [{ from: 0, to: 4, units: 5 }, { from: 4, to: 6, units: 3 }], hidden: 7, outputs: 4 };

test('the plain-JS forward pass equals the tfjs forward pass; recognizer JSON round trip', async () => {
  await initEngine({ backend: 'cpu' });
  const w = initNetWeights(tinySpec, new Rng(5), { mean: Float32Array.from([0.1, 0, 0, 0.2, 0, 0]), scale: Float32Array.from([2, 1, 1, 1, 0.5, 1]) });
  const x = Float32Array.from({ length: 18 }, (_, i) => Math.sin(i));
  const js = netForward(tinySpec, w, x, 3);
  const net = new TfNet(tinySpec, w);
  const tfy = tf.tidy(() => net.apply(tf.tensor2d(x, [3, 6])).dataSync());
  net.dispose();
  js.forEach((v, i) => close(v, tfy[i], 1e-5));
  const D = featureDim(DEFAULT_FEATURES);
  const spec: NetSpec = { inputDim: D, branches: [{ from: 0, to: 196, units: 4 }, { from: 196, to: D, units: 3 }], hidden: 5, outputs: 3 };
  const rec = new Recognizer('abc', spec, initNetWeights(spec, new Rng(1)), 0.2, DEFAULT_FEATURES, undefined, undefined, [['ab', 3], ['ca', 1]]);
  const back = Recognizer.fromJSON(JSON.parse(JSON.stringify(rec.toJSON())));
  const ink: Ink = [[[0, 0], [0, 10]], [[3, 0], [5, 10]], [[9, 0], [12, 5]]];
  assert.deepEqual(back.recognize(ink), rec.recognize(ink));
  assert.ok(rec.recognize(ink).length > 0);
  assert.equal(rec.classify([[[0, 0], [1, 1]]]).length, 3);
  assert.throws(() => rec.recognize([[[0, 0]], []]), /stroke 1: empty stroke/);
  assert.throws(() => Recognizer.fromJSON({ format: 'x' }), /not an efftrain newton recognizer/);
  const bad = rec.toJSON();
  bad.net.weights['o.b'] = [1];
  assert.throws(() => Recognizer.fromJSON(bad, 'm.json'), /m\.json: net\.weights\.o\.b must have 3 numbers/);
});

/** Toy source: 4 input types (one-hot), each with a known class distribution over 5 classes. */
function toySource(n: number, seed: number): { src: SampleSource; P: number[][] } {
  const P = [
    [0.7, 0.2, 0.1, 0, 0],
    [0.1, 0.1, 0.1, 0.1, 0.6],
    [0.25, 0.25, 0.25, 0.25, 0],
    [0, 0, 0.5, 0.5, 0],
  ];
  const rng = new Rng(seed);
  const type = Int32Array.from({ length: n }, () => rng.int(4));
  const labels = Int32Array.from(type, (t) => {
    let u = rng.next();
    for (let k = 0; k < 5; k++) if ((u -= P[t][k]) < 0) return k;
    return 4;
  });
  return {
    P,
    src: {
      positiveLabels: labels,
      nNegatives: 0,
      features(i, _neg, out, off) {
        out.fill(0, off, off + 4);
        out[off + type[i]] = 1;
      },
    },
  };
}

test('a net trained with NormOutErr outputs y = p/(A − Ap + p); the inverse map recovers p (reliability); tensors stay flat; deterministic', async () => {
  await initEngine({ backend: 'cpu' });
  const spec: NetSpec = { inputDim: 4, branches: [{ from: 0, to: 4, units: 8 }], hidden: 8, outputs: 5 };
  const { src, P } = toySource(3000, 1);
  const before = tf.memory().numTensors;
  const opts = { spec, epochs: 25, patternsPerEpoch: 3000, batchSize: 32, lrScale: 1, schedule: 'fixed' as const, fixedLr: 1, normOutErrD: 1, frequencyBalancing: null, errorEmphasis: false, negativeTraining: null, strokeWarping: false };
  const res = trainNewtonClassifier(src, opts, new Rng(2));
  assert.equal(tf.memory().numTensors, before);
  close(res.A, 0.25, 1e-12);
  const x = new Float32Array(16);
  for (let t = 0; t < 4; t++) x[t * 4 + t] = 1;
  const y = netForward(spec, res.weights, x, 4);
  let maxGap = 0;
  for (let t = 0; t < 4; t++) {
    for (let k = 0; k < 5; k++) {
      close(y[t * 5 + k], probabilityToOutput(P[t][k], res.A), 0.06, `type ${t} class ${k} output`);
      maxGap = Math.max(maxGap, Math.abs(outputToProbability(y[t * 5 + k], res.A) - P[t][k]));
    }
  }
  assert.ok(maxGap < 0.06, `inverse-mapped outputs within 0.06 of the true posteriors (max gap ${maxGap})`);
  // Raw outputs are biased upwards for low p (p = .1 → y ≈ .31): far from calibrated.
  assert.ok(y[1 * 5 + 0] > 0.2);
  const again = trainNewtonClassifier(src, { ...opts, epochs: 2 }, new Rng(9));
  const again2 = trainNewtonClassifier(src, { ...opts, epochs: 2 }, new Rng(9));
  assert.deepEqual(Array.from(again.weights['o.w']), Array.from(again2.weights['o.w']));
});

test('all innovations together train without leaking tensors', async () => {
  await initEngine({ backend: 'cpu' });
  const spec: NetSpec = { inputDim: 4, branches: [{ from: 0, to: 4, units: 6 }], hidden: 6, outputs: 5 };
  const { src } = toySource(400, 3);
  const withNeg: SampleSource = { ...src, nNegatives: 100, features: (i, neg, out, off, rng) => (neg ? out.fill(rng ? rng.next() : 0.5, off, off + 4) : src.features(i, false, out, off, rng)) };
  const before = tf.memory().numTensors;
  const seen: number[] = [];
  trainNewtonClassifier(withNeg, { spec, epochs: 4, patternsPerEpoch: 256, batchSize: 32, lrScale: 1, schedule: 'anneal', fixedLr: 0.1, normOutErrD: 0.5, frequencyBalancing: { a: 0.5, b: 0.7, cap: 10 }, errorEmphasis: true, negativeTraining: { factor: 0.3 }, strokeWarping: true, onEpoch: (e) => seen.push(e.positives + e.negatives, e.backprop) }, new Rng(4));
  assert.equal(tf.memory().numTensors, before);
  for (let i = 0; i < seen.length; i += 2) {
    assert.equal(seen[i], 256);
    assert.ok(seen[i + 1] <= 256);
  }
});
