/**
 * Pen-stroke ("ink") utilities for on-line handwriting: the ink format, arc-length resampling, anti-aliased
 * rasterising, and a reader for the Hershey vector fonts as shipped by npm `hersheytext`.
 *
 * Browser-safe: no `node:` imports (file reading lives in `strokes-node.ts`).
 *
 * Ink format: `Ink = Stroke[]`, a stroke is the list of `[x, y]` points between pen-down and pen-up, in writing
 * order. The y axis points down (screen / SVG convention), as in the Hershey fonts.
 */

export type Point = [number, number];
export type Stroke = Point[];
export type Ink = Stroke[];

export interface Box {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

/**
 * Checks that `value` is ink (a non-empty list of strokes, each a non-empty list of finite [x, y] pairs) and
 * returns it typed. Errors name the source and the offending stroke/point index, e.g. `ink.json: stroke 2,
 * point 5: expected [x, y] with finite numbers`.
 */
export function validateInk(value: unknown, source = 'ink'): Ink {
  if (!Array.isArray(value)) throw new Error(`${source}: expected a list of strokes (each a list of [x, y] points), got ${typeof value}`);
  if (value.length === 0) throw new Error(`${source}: the ink has no strokes`);
  value.forEach((s, i) => {
    if (!Array.isArray(s)) throw new Error(`${source}: stroke ${i}: expected a list of [x, y] points`);
    if (s.length === 0) throw new Error(`${source}: stroke ${i}: empty stroke`);
    s.forEach((p: unknown, j: number) => {
      if (!Array.isArray(p) || p.length !== 2 || !Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
        throw new Error(`${source}: stroke ${i}, point ${j}: expected [x, y] with finite numbers, got ${JSON.stringify(p)}`);
      }
    });
  });
  return value as Ink;
}

/** Bounding box of all points of the ink. */
export function inkBox(ink: Ink): Box {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const s of ink) {
    for (const [x, y] of s) {
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
  }
  return { minX, minY, maxX, maxY };
}

/** Euclidean length of a polyline. */
export function polylineLength(pts: Stroke): number {
  let L = 0;
  for (let i = 1; i < pts.length; i++) L += Math.hypot(pts[i][0] - pts[i - 1][0], pts[i][1] - pts[i - 1][1]);
  return L;
}

/**
 * Resamples a polyline to `n` points equally spaced by arc length (first and last point kept). A polyline of
 * zero length (a dot) gives `n` copies of its first point.
 */
export function resampleByArcLength(pts: Stroke, n: number): Stroke {
  if (n < 2) throw new Error(`resampleByArcLength: n must be >= 2, got ${n}`);
  const total = polylineLength(pts);
  if (pts.length === 1 || total === 0) return Array.from({ length: n }, () => [pts[0][0], pts[0][1]] as Point);
  const out: Stroke = [];
  let seg = 1;
  let acc = 0; // arc length at pts[seg-1]
  for (let k = 0; k < n; k++) {
    const target = (total * k) / (n - 1);
    let len = Math.hypot(pts[seg][0] - pts[seg - 1][0], pts[seg][1] - pts[seg - 1][1]);
    while (seg < pts.length - 1 && acc + len < target) {
      acc += len;
      seg++;
      len = Math.hypot(pts[seg][0] - pts[seg - 1][0], pts[seg][1] - pts[seg - 1][1]);
    }
    const t = len > 0 ? Math.min(1, Math.max(0, (target - acc) / len)) : 0;
    out.push([pts[seg - 1][0] + t * (pts[seg][0] - pts[seg - 1][0]), pts[seg - 1][1] + t * (pts[seg][1] - pts[seg - 1][1])]);
  }
  return out;
}

/** The pen trajectory of an ink: all strokes joined in writing order (pen-up moves become straight pieces). */
export function trajectory(ink: Ink): Stroke {
  const out: Stroke = [];
  for (const s of ink) for (const p of s) out.push(p);
  return out;
}

/** Applies `f` to every point (returns new ink). */
export function mapInk(ink: Ink, f: (x: number, y: number) => Point): Ink {
  return ink.map((s) => s.map(([x, y]) => f(x, y)));
}

/** Distance from (px, py) to the segment (ax, ay)–(bx, by). */
function distToSegment(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const L2 = dx * dx + dy * dy;
  let t = L2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / L2 : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

export interface RasterOptions {
  /** Pen half-width in pixels: intensity = clamp(1 + halfWidth − distance, 0, 1) (a 1-pixel linear edge). */
  halfWidth?: number;
  /** Margin in pixels left around the ink. */
  margin?: number;
}

/**
 * Anti-aliased raster of the ink in a `size`×`size` image (row-major, values in [0,1]). The ink is scaled to fit
 * the box (longest side), keeping its aspect ratio, and centred. A pixel's value falls linearly with its centre's
 * distance to the nearest pen segment, which anti-aliases the edges.
 */
export function rasterize(ink: Ink, size = 14, opts: RasterOptions = {}): Float32Array {
  const halfWidth = opts.halfWidth ?? 0.5;
  const margin = opts.margin ?? 1;
  const img = new Float32Array(size * size);
  const b = inkBox(ink);
  const w = b.maxX - b.minX;
  const h = b.maxY - b.minY;
  const span = Math.max(w, h, 1e-9);
  const scale = (size - 1 - 2 * margin) / span;
  const ox = (size - 1) / 2 - ((b.minX + b.maxX) / 2) * scale;
  const oy = (size - 1) / 2 - ((b.minY + b.maxY) / 2) * scale;
  const reach = halfWidth + 1;
  for (const s of ink) {
    const pts = s.map(([x, y]) => [x * scale + ox, y * scale + oy]);
    const n = pts.length;
    for (let i = 0; i < Math.max(1, n - 1); i++) {
      const a = pts[i];
      const c = pts[Math.min(i + 1, n - 1)];
      const x0 = Math.max(0, Math.floor(Math.min(a[0], c[0]) - reach));
      const x1 = Math.min(size - 1, Math.ceil(Math.max(a[0], c[0]) + reach));
      const y0 = Math.max(0, Math.floor(Math.min(a[1], c[1]) - reach));
      const y1 = Math.min(size - 1, Math.ceil(Math.max(a[1], c[1]) + reach));
      for (let py = y0; py <= y1; py++) {
        for (let px = x0; px <= x1; px++) {
          const v = Math.min(1, Math.max(0, 1 + halfWidth - distToSegment(px, py, a[0], a[1], c[0], c[1])));
          if (v > img[py * size + px]) img[py * size + px] = v;
        }
      }
    }
  }
  return img;
}

/**
 * Parses one Hershey glyph path as written by `hersheytext` (`M x,y L x,y x,y … M …`; only M and L occur) into
 * ink. Each `M` starts a pen-down polyline; a polyline that starts exactly where the previous one ended is
 * joined to it (the pen did not lift), so the result has one entry per real pen stroke.
 */
export function parseHersheyPath(d: string): Ink {
  const ink: Ink = [];
  for (const part of d.split('M')) {
    const body = part.replace(/L/g, ' ').trim();
    if (!body) continue;
    const nums = body.split(/[\s,]+/).map(Number);
    if (nums.length % 2 !== 0 || nums.some((v) => !Number.isFinite(v))) throw new Error(`Hershey path: malformed coordinates in "M${part}"`);
    const pts: Stroke = [];
    for (let i = 0; i < nums.length; i += 2) pts.push([nums[i], nums[i + 1]]);
    const last = ink[ink.length - 1];
    if (last) {
      const e = last[last.length - 1];
      if (e[0] === pts[0][0] && e[1] === pts[0][1]) {
        last.push(...pts.slice(1));
        continue;
      }
    }
    ink.push(pts);
  }
  return ink;
}

/** One glyph of a Hershey font: its strokes (font units, y down; caps span y≈1…22, baseline y=22) and advance. */
export interface HersheyGlyph {
  ink: Ink;
  /** Half the advance width as stored by hersheytext (`o`). */
  halfWidth: number;
}

/** The shape of npm `hersheytext`'s `hersheytext.json`: font name → { name, chars: [{ d, o }] } from code 33. */
export type HersheyTextJson = Record<string, { name: string; chars: { d: string; o: number }[] }>;

/** The first character code stored in `hersheytext.json`'s `chars` arrays ('!'; space is not stored). */
export const HERSHEYTEXT_FIRST_CODE = 33;

/**
 * Reads the glyphs of `chars` from one font of a parsed `hersheytext.json`. Throws naming the font or character
 * when it is missing.
 */
export function hersheyFont(json: HersheyTextJson, font: string, chars: string): Map<string, HersheyGlyph> {
  const f = json[font];
  if (!f || !Array.isArray(f.chars)) throw new Error(`Hershey font "${font}" not found (available: ${Object.keys(json).join(', ')})`);
  const out = new Map<string, HersheyGlyph>();
  for (const c of chars) {
    const g = f.chars[c.charCodeAt(0) - HERSHEYTEXT_FIRST_CODE];
    if (!g || typeof g.d !== 'string') throw new Error(`Hershey font "${font}": no glyph for "${c}"`);
    const ink = parseHersheyPath(g.d);
    if (!ink.length) throw new Error(`Hershey font "${font}": glyph "${c}" has no strokes`);
    out.set(c, { ink, halfWidth: g.o });
  }
  return out;
}
