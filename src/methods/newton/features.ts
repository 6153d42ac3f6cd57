import { inkBox, rasterize, resampleByArcLength, trajectory, type Box, type Ink } from '../../data/strokes.js';

/**
 * The classifier's input for one segment, after the "integrated multiple representations" of the Newton print
 * recognizer (Yaeger, Lyon & Webb 1996; Yaeger, Webb & Lyon, AI Magazine 1998): an anti-aliased raster image,
 * stroke features sampled along the pen trajectory, the aspect ratio, a stroke-count one-hot, plus geometric
 * context (size and vertical position relative to the whole word), which tells o/O, l/I apart.
 */
export interface FeatureOptions {
  /** Raster side (14 in the paper). */
  imageSize: number;
  /** Number of arc-length-resampled direction vectors (dx, dy) along the trajectory. */
  trajectoryPoints: number;
  /** Stroke-count one-hot length (the last slot means "this many or more"). */
  maxStrokeCount: number;
}

export const DEFAULT_FEATURES: FeatureOptions = { imageSize: 14, trajectoryPoints: 20, maxStrokeCount: 5 };

/** Number of geometric-context features. */
const CONTEXT_DIM = 4;

/** Input length for these options: image² + 2·points + 1 (aspect) + strokes one-hot + context. */
export function featureDim(o: FeatureOptions = DEFAULT_FEATURES): number {
  return o.imageSize * o.imageSize + 2 * o.trajectoryPoints + 1 + o.maxStrokeCount + CONTEXT_DIM;
}

/** Index ranges [image | strokes, aspect, count, context] in the feature vector (the net's two input branches). */
export function featureBranches(o: FeatureOptions = DEFAULT_FEATURES): [number, number][] {
  const img = o.imageSize * o.imageSize;
  return [
    [0, img],
    [img, featureDim(o)],
  ];
}

/**
 * Writes the features of segment `seg` into `out` at `offset`. `word` is the box of the whole ink the segment came
 * from (its height is the size reference; pass the segment's own box when no context is known).
 */
export function segmentFeatures(seg: Ink, word: Box, o: FeatureOptions = DEFAULT_FEATURES, out?: Float32Array, offset = 0): Float32Array {
  const D = featureDim(o);
  const f = out ?? new Float32Array(D);
  f.set(rasterize(seg, o.imageSize), offset);
  let k = offset + o.imageSize * o.imageSize;
  const pts = resampleByArcLength(trajectory(seg), o.trajectoryPoints + 1);
  for (let i = 0; i < o.trajectoryPoints; i++) {
    const dx = pts[i + 1][0] - pts[i][0];
    const dy = pts[i + 1][1] - pts[i][1];
    const L = Math.hypot(dx, dy);
    f[k++] = L > 0 ? dx / L : 0;
    f[k++] = L > 0 ? dy / L : 0;
  }
  const b = inkBox(seg);
  const refH = Math.max(word.maxY - word.minY, 1e-9);
  const eps = 0.05 * refH;
  const w = b.maxX - b.minX;
  const h = b.maxY - b.minY;
  f[k++] = Math.tanh(Math.log((h + eps) / (w + eps)));
  for (let i = 0; i < o.maxStrokeCount; i++) f[k + i] = 0;
  f[k + Math.min(seg.length, o.maxStrokeCount) - 1] = 1;
  k += o.maxStrokeCount;
  f[k++] = h / refH;
  f[k++] = w / refH;
  f[k++] = (b.minY - word.minY) / refH;
  f[k++] = (b.maxY - word.minY) / refH;
  return f;
}
