import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeIdx, parseIdx, readIdx } from '../src/data/idx.js';
import { loadImageDataset, FASHION_MNIST_DIR } from '../src/data/image-dataset.js';
import { epochBatches, sequentialBatches, trainValSplit, gatherRows } from '../src/data/batching.js';
import { injectLabelNoise, parseNoiseSpec } from '../src/data/label-noise.js';
import { Rng } from '../src/engine/rng.js';
import { UserError } from '../src/errors.js';
import { writeSyntheticIdx } from './helpers/synthetic.js';
import { tempDir } from './helpers/tmp.js';

test('IDX round trip, raw and gzip', () => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
  const raw = encodeIdx([2, 3, 4], data);
  for (const buf of [raw, gzipSync(raw)]) {
    const r = parseIdx(buf, 'x');
    assert.deepEqual(r.dims, [2, 3, 4]);
    assert.deepEqual(Array.from(r.data), Array.from(data));
  }
});

test('IDX errors name the file: wrong magic, truncated data, truncated header, bad gzip', () => {
  const good = encodeIdx([2, 2], new Uint8Array(4));
  const bad = good.slice();
  bad[0] = 7;
  assert.throws(() => parseIdx(bad, 'f1.idx'), (e: Error) => e instanceof UserError && /f1\.idx: not an IDX file \(bad magic/.test(e.message));
  assert.throws(() => parseIdx(good.subarray(0, good.length - 1), 'f2.idx'), /f2\.idx: truncated IDX data/);
  assert.throws(() => parseIdx(good.subarray(0, 6), 'f3.idx'), /f3\.idx: truncated IDX header/);
  const gz = gzipSync(good);
  assert.throws(() => parseIdx(gz.subarray(0, gz.length - 6), 'f4.gz'), /f4\.gz: corrupt or truncated gzip/);
  assert.throws(() => readIdx('/nonexistent/f5'), /\/nonexistent\/f5: file not found/);
});

test('loadImageDataset reads a user directory; count mismatch and missing files are clear errors', () => {
  const dir = writeSyntheticIdx({ nTrain: 40, nTest: 12, size: 6, classes: 3 });
  const ds = loadImageDataset(dir);
  assert.equal(ds.train.n, 40);
  assert.equal(ds.test.n, 12);
  assert.equal(ds.numClasses, 3);
  assert.equal(ds.train.height, 6);
  assert.ok(ds.train.images.every((v) => v >= 0 && v <= 1));
  // label/image count mismatch
  const dir2 = writeSyntheticIdx({ nTrain: 40, nTest: 12, size: 6, classes: 3 });
  writeFileSync(join(dir2, 't10k-labels-idx1-ubyte'), encodeIdx([11], new Uint8Array(11)));
  assert.throws(() => loadImageDataset(dir2), /t10k-labels-idx1-ubyte: 11 labels but .*t10k-images-idx3-ubyte holds 12 images/);
  unlinkSync(join(dir2, 't10k-labels-idx1-ubyte'));
  assert.throws(() => loadImageDataset(dir2), /lacks t10k-labels-idx1-ubyte/);
  const empty = tempDir('efftrain-empty-');
  assert.throws(() => loadImageDataset(empty), /Pass --data DIR/);
  assert.throws(() => loadImageDataset('/no/such/dir'), /does not exist/);
  assert.match(FASHION_MNIST_DIR, /fashion-mnist/);
});

test('seeded batching: fixed shapes, deterministic, a permutation', () => {
  const a = epochBatches(103, 10, new Rng(5));
  const b = epochBatches(103, 10, new Rng(5));
  assert.equal(a.length, 10);
  assert.ok(a.every((x) => x.length === 10));
  assert.deepEqual(a.map((x) => Array.from(x)), b.map((x) => Array.from(x)));
  const seen = new Set(a.flatMap((x) => Array.from(x)));
  assert.equal(seen.size, 100);
  const c = epochBatches(103, 10, new Rng(6));
  assert.notDeepEqual(a.map((x) => Array.from(x)), c.map((x) => Array.from(x)));
  const s = sequentialBatches(25, 10);
  assert.deepEqual(s.map((x) => x.length), [10, 10, 5]);
  assert.deepEqual(Array.from(gatherRows(Float32Array.from([0, 1, 2, 3, 4, 5]), 2, [2, 0])), [4, 5, 0, 1]);
});

test('train/validation split is a seeded partition', () => {
  const { train, val } = trainValSplit(100, 0.2, new Rng(1));
  assert.equal(val.length, 20);
  assert.equal(train.length, 80);
  assert.equal(new Set([...train, ...val]).size, 100);
  assert.deepEqual(Array.from(trainValSplit(100, 0.2, new Rng(1)).val), Array.from(val));
});

test('label noise: symmetric rate, never the true label, mask exact; pair-flip goes to c+1', () => {
  const n = 20000;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const sym = injectLabelNoise(labels, 10, 'sym', 0.4, new Rng(3));
  let changed = 0;
  for (let i = 0; i < n; i++) {
    assert.equal(sym.noisy[i] === 1, sym.labels[i] !== labels[i]);
    changed += sym.noisy[i];
  }
  assert.ok(Math.abs(changed / n - 0.4) < 0.015, `rate ${changed / n}`);
  assert.equal(sym.actualRate, changed / n);
  // symmetric: noisy labels spread over the other classes
  const counts = new Array(10).fill(0);
  for (let i = 0; i < n; i++) if (labels[i] === 0 && sym.noisy[i]) counts[sym.labels[i]]++;
  assert.equal(counts[0], 0);
  assert.ok(counts.slice(1).every((c) => c > 50));
  const pair = injectLabelNoise(labels, 10, 'pair', 0.4, new Rng(3));
  for (let i = 0; i < n; i++) if (pair.noisy[i]) assert.equal(pair.labels[i], (labels[i] + 1) % 10);
  assert.deepEqual(parseNoiseSpec('sym-0.4'), { kind: 'sym', rate: 0.4 });
  assert.equal(parseNoiseSpec('clean'), null);
  assert.throws(() => parseNoiseSpec('foo-0.1'), /bad noise spec/);
});
