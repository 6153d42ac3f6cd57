import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeIdx } from '../../src/data/idx.js';
import { Rng } from '../../src/engine/rng.js';
import { tempDir } from './tmp.js';

/**
 * Writes a small learnable MNIST-format data set (class k = a bright horizontal band at row ≈ k plus noise)
 * into a fresh temp directory and returns it. Train files are gzipped, test files raw, to cover both.
 */
export function writeSyntheticIdx(opts: { nTrain?: number; nTest?: number; size?: number; classes?: number; seed?: number } = {}): string {
  const nTrain = opts.nTrain ?? 600;
  const nTest = opts.nTest ?? 200;
  const size = opts.size ?? 12;
  const classes = opts.classes ?? 4;
  const rng = new Rng(opts.seed ?? 7);
  const dir = tempDir('efftrain-idx-');
  mkdirSync(dir, { recursive: true });
  const make = (n: number) => {
    const img = new Uint8Array(n * size * size);
    const lbl = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const k = i % classes;
      lbl[i] = k;
      const row = Math.floor(((k + 0.5) * size) / classes);
      for (let r = 0; r < size; r++)
        for (let c = 0; c < size; c++) {
          const base = Math.abs(r - row) <= 1 ? 200 : 20;
          img[i * size * size + r * size + c] = Math.max(0, Math.min(255, Math.round(base + 40 * rng.normal())));
        }
    }
    return { img, lbl };
  };
  const tr = make(nTrain);
  const te = make(nTest);
  writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(encodeIdx([nTrain, size, size], tr.img)));
  writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(encodeIdx([nTrain], tr.lbl)));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), encodeIdx([nTest, size, size], te.img));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), encodeIdx([nTest], te.lbl));
  return dir;
}
