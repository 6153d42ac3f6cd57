import { inkBox, type Box, type Ink } from '../../data/strokes.js';

/**
 * Tentative segmentation (the first stage of the Newton print recognizer; Yaeger, Lyon & Webb, NIPS 9, 1996): every
 * run of 1…maxStrokes consecutive strokes in writing order that could be one character is a segment. Segments are
 * the edges of the segmentation graph, whose nodes are stroke boundaries 0…n.
 */
export interface Segment {
  /** First stroke (inclusive). */
  from: number;
  /** One past the last stroke. */
  to: number;
}

export interface SegmentationOptions {
  /** Longest run of strokes considered one character. */
  maxStrokes: number;
  /** Multi-stroke segments wider than this × the ink's height are implausible and skipped. */
  maxWidthRatio: number;
}

export const DEFAULT_SEGMENTATION: SegmentationOptions = { maxStrokes: 6, maxWidthRatio: 1.8 };

function unionBox(a: Box, b: Box): Box {
  return { minX: Math.min(a.minX, b.minX), minY: Math.min(a.minY, b.minY), maxX: Math.max(a.maxX, b.maxX), maxY: Math.max(a.maxY, b.maxY) };
}

/** All segment hypotheses of an ink (ordered by `from`, then `to`). */
export function segmentHypotheses(ink: Ink, o: SegmentationOptions = DEFAULT_SEGMENTATION): Segment[] {
  const word = inkBox(ink);
  const refH = Math.max(word.maxY - word.minY, 1e-9);
  const boxes = ink.map((s) => inkBox([s]));
  const out: Segment[] = [];
  for (let i = 0; i < ink.length; i++) {
    let b = boxes[i];
    for (let j = i + 1; j <= Math.min(ink.length, i + o.maxStrokes); j++) {
      if (j > i + 1) b = unionBox(b, boxes[j - 1]);
      if (j > i + 1 && b.maxX - b.minX > o.maxWidthRatio * refH) break;
      out.push({ from: i, to: j });
    }
  }
  return out;
}

/**
 * Labels segments from a rendering's ground truth: a segment that is exactly one glyph's stroke run gets that
 * glyph's class; every other segment is a negative (−1), as used by negative training.
 */
export function labelSegments(segments: Segment[], glyphs: { from: number; to: number; label: number }[]): Int32Array {
  const key = new Map(glyphs.map((g) => [`${g.from}:${g.to}`, g.label]));
  return Int32Array.from(segments.map((s) => key.get(`${s.from}:${s.to}`) ?? -1));
}
