import type { Rng } from '../../engine/rng.js';
import { inkBox, type Ink, type Point } from '../../data/strokes.js';

/**
 * Stroke warping, Yaeger, Lyon & Webb, NIPS 9 (1996): at every training presentation the pen coordinates (not an
 * image) get a small random rotation, skew, and linear and quadratic x/y scaling. The paper gives no magnitudes;
 * the defaults below are our own starting ranges (not the paper's), to be tuned on validation.
 */
export interface StrokeWarpRanges {
  /** Max |rotation| in degrees. */
  rotationDeg: number;
  /** Max |shear| (x += s·y). */
  skew: number;
  /** Max |log| of the x and y linear scale factors (drawn independently). */
  logScale: number;
  /** Max |q| of the quadratic terms x' = x + q·x² (and y), on coordinates normalised to [−1, 1]. */
  quadratic: number;
}

export const DEFAULT_STROKE_WARP: StrokeWarpRanges = { rotationDeg: 8, skew: 0.15, logScale: Math.log(1.15), quadratic: 0.1 };

/** One drawn warp. */
export interface StrokeWarp {
  rotation: number;
  skew: number;
  scaleX: number;
  scaleY: number;
  quadX: number;
  quadY: number;
}

export const IDENTITY_WARP: StrokeWarp = { rotation: 0, skew: 0, scaleX: 1, scaleY: 1, quadX: 0, quadY: 0 };

/** Draws a warp uniformly within `ranges` scaled by `strength` (0 = identity). Uses 6 draws of `rng`. */
export function sampleStrokeWarp(rng: Rng, ranges: StrokeWarpRanges = DEFAULT_STROKE_WARP, strength = 1): StrokeWarp {
  const u = () => (2 * rng.next() - 1) * strength;
  return {
    rotation: (u() * ranges.rotationDeg * Math.PI) / 180,
    skew: u() * ranges.skew,
    scaleX: Math.exp(u() * ranges.logScale),
    scaleY: Math.exp(u() * ranges.logScale),
    quadX: u() * ranges.quadratic,
    quadY: u() * ranges.quadratic,
  };
}

export interface WarpFrame {
  cx: number;
  cy: number;
  /** Half-extent used to normalise coordinates to about [−1, 1]. */
  r: number;
}

/** The normalisation frame of an ink: centre of its box and half its longest side. */
export function inkFrame(ink: Ink): WarpFrame {
  const b = inkBox(ink);
  return { cx: (b.minX + b.maxX) / 2, cy: (b.minY + b.maxY) / 2, r: Math.max(b.maxX - b.minX, b.maxY - b.minY, 1e-9) / 2 };
}

/**
 * Applies a warp: with u, v the coordinates normalised by `frame` (default: the ink's own box), u ← u + qx·u²,
 * v ← v + qy·v², then scale (sx, sy), shear u ← u + s·v, rotate by θ, and map back.
 */
export function applyStrokeWarp(ink: Ink, w: StrokeWarp, frame: WarpFrame = inkFrame(ink)): Ink {
  const c = Math.cos(w.rotation);
  const s = Math.sin(w.rotation);
  return ink.map((st) =>
    st.map(([x, y]): Point => {
      let u = (x - frame.cx) / frame.r;
      let v = (y - frame.cy) / frame.r;
      u = (u + w.quadX * u * u) * w.scaleX;
      v = (v + w.quadY * v * v) * w.scaleY;
      u += w.skew * v;
      return [frame.cx + frame.r * (c * u - s * v), frame.cy + frame.r * (s * u + c * v)];
    }),
  );
}
