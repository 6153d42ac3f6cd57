/**
 * Multi-task image sets built from an MNIST-format split (Fashion-MNIST by default):
 * - Multi-Fashion (task shift, single input): two items overlap on one canvas — item 1 at the top-left, item 2
 *   shifted by `offset` pixels down and right, combined by pixel-wise max, resized back to H×W (area
 *   averaging). Tasks: classify the left item and the right item. The Sener–Koltun / Pareto-MTL construction
 *   (36×36 canvas, offset 8 for 28×28 items); the offset scales with the item size for other data sets.
 * - Visual domains (domain shift, multi-input): identity, inverted intensity, 90° rotation, blur + Gaussian
 *   noise; each domain is a task with its own images.
 * Everything is drawn from a seeded Rng, so a data seed fixes the data for every method and run seed.
 */
import type { Rng } from '../engine/rng.js';
import type { ImageSplit } from './image-dataset.js';

/** Images [n, H, W] in [0, 1] with one label array per task. */
export interface MultiLabelSplit {
  images: Float32Array;
  labels: Int32Array[];
  n: number;
  height: number;
  width: number;
}

/** Area-averaging resize of a [h, w] image to [oh, ow] (each output pixel = mean of the source area it covers). */
export function resizeArea(src: Float32Array, h: number, w: number, oh: number, ow: number): Float32Array {
  const out = new Float32Array(oh * ow);
  const sy = h / oh;
  const sx = w / ow;
  for (let r = 0; r < oh; r++) {
    const y0 = r * sy;
    const y1 = y0 + sy;
    for (let c = 0; c < ow; c++) {
      const x0 = c * sx;
      const x1 = x0 + sx;
      let acc = 0;
      for (let y = Math.floor(y0); y < Math.min(h, Math.ceil(y1)); y++) {
        const wy = Math.min(y + 1, y1) - Math.max(y, y0);
        if (wy <= 0) continue;
        for (let x = Math.floor(x0); x < Math.min(w, Math.ceil(x1)); x++) {
          const wx = Math.min(x + 1, x1) - Math.max(x, x0);
          if (wx > 0) acc += wy * wx * src[y * w + x];
        }
      }
      out[r * ow + c] = acc / (sy * sx);
    }
  }
  return out;
}

/** The default offset: 8 px for 28×28 items, scaled for other sizes. */
export const multiFashionOffset = (height: number) => Math.max(1, Math.round((8 * height) / 28));

/**
 * Overlays two items (a at (0,0), b at (offset, offset)) on a (H+offset)² canvas by pixel-wise max and resizes
 * the canvas to H×W.
 */
export function overlayPair(split: ImageSplit, a: number, b: number, offset: number): Float32Array {
  const { height: H, width: W } = split;
  const ch = H + offset;
  const cw = W + offset;
  const canvas = new Float32Array(ch * cw);
  const px = H * W;
  for (let r = 0; r < H; r++)
    for (let c = 0; c < W; c++) {
      canvas[r * cw + c] = split.images[a * px + r * W + c];
    }
  for (let r = 0; r < H; r++)
    for (let c = 0; c < W; c++) {
      const i = (r + offset) * cw + c + offset;
      canvas[i] = Math.max(canvas[i], split.images[b * px + r * W + c]);
    }
  return resizeArea(canvas, ch, cw, H, W);
}

/**
 * `n` Multi-Fashion images from items of `split` drawn (with replacement, independently for left and right)
 * from `pool` (default: all items). Labels: [left item class, right item class].
 */
export function makeMultiFashion(split: ImageSplit, n: number, rng: Rng, opts: { pool?: Int32Array; offset?: number } = {}): MultiLabelSplit {
  const pool = opts.pool ?? Int32Array.from({ length: split.n }, (_, i) => i);
  const offset = opts.offset ?? multiFashionOffset(split.height);
  const px = split.height * split.width;
  const images = new Float32Array(n * px);
  const left = new Int32Array(n);
  const right = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = pool[rng.int(pool.length)];
    const b = pool[rng.int(pool.length)];
    images.set(overlayPair(split, a, b, offset), i * px);
    left[i] = split.labels[a];
    right[i] = split.labels[b];
  }
  return { images, labels: [left, right], n, height: split.height, width: split.width };
}

export const DOMAINS = ['identity', 'invert', 'rot90', 'noise-blur'] as const;
export type Domain = (typeof DOMAINS)[number];

/**
 * One image in a visual domain: identity; inverted intensity 1 − x; rotated 90° clockwise (square images);
 * blurred by a 3×3 binomial kernel plus Gaussian noise (σ = `noise`), clipped to [0, 1].
 */
export function applyDomain(img: Float32Array, h: number, w: number, domain: Domain, rng: Rng, noise = 0.2): Float32Array {
  const out = new Float32Array(h * w);
  switch (domain) {
    case 'identity':
      out.set(img);
      break;
    case 'invert':
      for (let i = 0; i < out.length; i++) out[i] = 1 - img[i];
      break;
    case 'rot90':
      if (h !== w) throw new Error('rot90 needs square images');
      for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) out[r * w + c] = img[(h - 1 - c) * w + r];
      break;
    case 'noise-blur': {
      const k = [1, 2, 1];
      for (let r = 0; r < h; r++)
        for (let c = 0; c < w; c++) {
          let acc = 0;
          let wsum = 0;
          for (let dy = -1; dy <= 1; dy++)
            for (let dx = -1; dx <= 1; dx++) {
              const y = r + dy;
              const x = c + dx;
              if (y < 0 || y >= h || x < 0 || x >= w) continue;
              const kw = k[dy + 1] * k[dx + 1];
              acc += kw * img[y * w + x];
              wsum += kw;
            }
          out[r * w + c] = Math.min(1, Math.max(0, acc / wsum + noise * rng.normal()));
        }
      break;
    }
    default:
      throw new Error(`unknown domain ${domain as string}`);
  }
  return out;
}

/** The items `items` of `split` rendered in `domain` (labels are the items' classes). */
export function makeDomainSplit(split: ImageSplit, items: ArrayLike<number>, domain: Domain, rng: Rng, noise = 0.2): ImageSplit {
  const { height: H, width: W } = split;
  const px = H * W;
  const images = new Float32Array(items.length * px);
  const labels = new Int32Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const j = items[i];
    images.set(applyDomain(split.images.subarray(j * px, (j + 1) * px), H, W, domain, rng, noise), i * px);
    labels[i] = split.labels[j];
  }
  return { images, labels, n: items.length, height: H, width: W };
}
