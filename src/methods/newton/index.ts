/**
 * The Newton hand-print recognizer's training innovations and word recognizer (Yaeger, Lyon & Webb, "Effective
 * Training of a Neural Network Character Classifier for Word Recognition", NIPS 9, 1996): NormOutErr and its
 * inverse probability map, frequency balancing, error emphasis, negative training, stroke warping, the annealing /
 * phase schedule, segmentation hypotheses and the dictionary beam search. Each piece is usable on its own.
 * Browser-safe; file I/O is in `io-node.ts`.
 */
export { normOutErrFactor, normOutErrTargets, normOutErrLoss, probabilityToOutput, outputToProbability, outputsToProbabilities, reliabilityBins, calibrationError } from './normouterr.js';
export type { NormOutErrWeightOptions, ReliabilityBin } from './normouterr.js';
export { repetitionFactors, presentationCount, frequencyBalancedEpoch } from './frequency-balancing.js';
export { errorEmphasisMask, argmaxRows } from './error-emphasis.js';
export { sampleNegatives } from './negative-training.js';
export type { NegativeTrainingOptions } from './negative-training.js';
export { DEFAULT_STROKE_WARP, IDENTITY_WARP, sampleStrokeWarp, applyStrokeWarp, inkFrame } from './stroke-warp.js';
export type { StrokeWarp, StrokeWarpRanges, WarpFrame } from './stroke-warp.js';
export { NEWTON_PHASES, phaseAt, ErrorRiseAnnealer, NewtonSchedule } from './schedule.js';
export type { NewtonPhase, PhaseSettings } from './schedule.js';
export { DEFAULT_FEATURES, featureDim, featureBranches, segmentFeatures } from './features.js';
export type { FeatureOptions } from './features.js';
export { netShapes, initNetWeights, netForward, inputStatistics, FIXED_PARAMS } from './net.js';
export type { NetSpec, NetWeights } from './net.js';
export { TfNet } from './net-tf.js';
export { PatternStream } from './patterns.js';
export type { PatternStreamState } from './patterns.js';
export { trainNewtonClassifier } from './trainer.js';
export type { SampleSource, NewtonTrainOptions, NewtonTrainResult, NewtonEpoch } from './trainer.js';
export { DEFAULT_SEGMENTATION, segmentHypotheses, labelSegments } from './segmentation.js';
export type { Segment, SegmentationOptions } from './segmentation.js';
export { Dictionary, beamSearch, DEFAULT_SEARCH } from './search.js';
export type { TrieNode, ScoredSegment, SearchOptions, Hypothesis } from './search.js';
export { Recognizer, loadRecognizer, RECOGNIZER_FORMAT } from './recognizer.js';
export type { RecognizerJSON, RecognizeOptions } from './recognizer.js';
