import type { Rng } from '../engine/rng.js';
import { applyStrokeWarp, DEFAULT_STROKE_WARP, sampleStrokeWarp, type StrokeWarpRanges, type WarpFrame } from '../methods/newton/stroke-warp.js';
import { inkBox, type HersheyGlyph, type Ink } from './strokes.js';

/**
 * Synthetic hand-print from Hershey vector fonts: each font is a "writer family"; each writer gets one fixed style
 * warp (slant, rotation, scaling) of all its glyphs; words are placed glyph by glyph with random gaps, baseline
 * jitter and a small per-glyph warp (within-writer variation). Browser-safe.
 */

/** Default character classes: a–z, A–Z, 0–9. */
export const HANDWRITING_CLASSES = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** The common frame of Hershey glyph coordinates (x ≈ 0…25, y ≈ 1…29, baseline 22), so a style warp is global. */
const HERSHEY_FRAME: WarpFrame = { cx: 11, cy: 15, r: 14 };

export interface Writer {
  id: string;
  font: string;
  glyphs: Map<string, HersheyGlyph>;
}

/** A writer: the font's glyphs under one style warp drawn with `styleStrength` × the default stroke-warp ranges. */
export function makeWriter(id: string, font: string, glyphs: Map<string, HersheyGlyph>, rng: Rng, styleStrength = 1, ranges: StrokeWarpRanges = DEFAULT_STROKE_WARP): Writer {
  const style = sampleStrokeWarp(rng, ranges, styleStrength);
  const out = new Map<string, HersheyGlyph>();
  for (const [c, g] of glyphs) out.set(c, { ink: applyStrokeWarp(g.ink, style, HERSHEY_FRAME), halfWidth: g.halfWidth });
  return { id, font, glyphs: out };
}

export interface RenderOptions {
  /** Gap between glyph boxes, uniform in [min, max] font units. */
  gap: [number, number];
  /** Std of the per-glyph baseline offset (font units). */
  baselineJitter: number;
  /** Per-glyph natural variation: strength of a fresh stroke warp on each glyph (0 = none). */
  glyphWarp: number;
}

export const DEFAULT_RENDER: RenderOptions = { gap: [1.5, 5], baselineJitter: 0.8, glyphWarp: 0.35 };

export interface RenderedWord {
  text: string;
  writer: string;
  ink: Ink;
  /** Stroke run [from, to) of each character, with its class index. */
  glyphs: { from: number; to: number; label: number }[];
}

/** Renders `text` in `writer`'s hand. Characters outside `classes` are rejected. */
export function renderWord(text: string, writer: Writer, rng: Rng, classes = HANDWRITING_CLASSES, o: RenderOptions = DEFAULT_RENDER): RenderedWord {
  const ink: Ink = [];
  const glyphs: RenderedWord['glyphs'] = [];
  let cursor = 0;
  for (const c of text) {
    const g = writer.glyphs.get(c);
    const label = classes.indexOf(c);
    if (!g || label < 0) throw new Error(`renderWord: no glyph for "${c}" (writer ${writer.id})`);
    const gi = o.glyphWarp > 0 ? applyStrokeWarp(g.ink, sampleStrokeWarp(rng, DEFAULT_STROKE_WARP, o.glyphWarp)) : g.ink;
    const b = inkBox(gi);
    const dx = cursor - b.minX;
    const dy = rng.normal() * o.baselineJitter;
    const from = ink.length;
    for (const s of gi) ink.push(s.map(([x, y]) => [x + dx, y + dy]));
    glyphs.push({ from, to: ink.length, label });
    cursor += b.maxX - b.minX + o.gap[0] + rng.next() * (o.gap[1] - o.gap[0]);
  }
  return { text, writer: writer.id, ink, glyphs };
}

/** Cumulative distribution over word counts, for Zipf-realistic sampling. */
export function cumulativeCounts(entries: [string, number][]): Float64Array {
  const cum = new Float64Array(entries.length);
  let s = 0;
  entries.forEach(([, c], i) => (cum[i] = s += c));
  return cum;
}

export interface WordSampling {
  /** Probability that a sampled word is a number (1–4 digits) instead of a corpus word. */
  numberProb: number;
  /** Probability that a corpus word is written with a capital first letter. */
  capitalizeProb: number;
}

export const DEFAULT_WORD_SAMPLING: WordSampling = { numberProb: 0.04, capitalizeProb: 0.15 };

/** Draws one word: a number, or a corpus word with probability ∝ its count (optionally capitalised). */
export function sampleWord(entries: [string, number][], cum: Float64Array, rng: Rng, o: WordSampling = DEFAULT_WORD_SAMPLING): string {
  if (rng.next() < o.numberProb) {
    const n = 1 + rng.int(4);
    let s = '';
    for (let i = 0; i < n; i++) s += String(rng.int(10));
    return s;
  }
  const u = rng.next() * cum[cum.length - 1];
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (cum[m] > u) hi = m;
    else lo = m + 1;
  }
  const w = entries[lo][0];
  return rng.next() < o.capitalizeProb ? w[0].toUpperCase() + w.slice(1) : w;
}
