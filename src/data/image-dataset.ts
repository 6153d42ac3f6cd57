import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { readIdx } from './idx.js';

/** Images as float32 in [0,1] (N×H×W, row-major) with integer labels. */
export interface ImageSplit {
  images: Float32Array;
  labels: Int32Array;
  n: number;
  height: number;
  width: number;
}

export interface ImageDataset {
  name: string;
  dir: string;
  numClasses: number;
  classNames: string[];
  train: ImageSplit;
  test: ImageSplit;
}

/** Where Debian's `dataset-fashion-mnist` package puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
export const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

const STEMS = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

function findFile(dir: string, stem: string): string | null {
  for (const name of [`${stem}.gz`, stem, stem.replace(/-idx(\d)-/, '.idx$1-')]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

function loadSplit(dir: string, which: 'train' | 'test', imagesStem: string, labelsStem: string): ImageSplit {
  const imgFile = findFile(dir, imagesStem);
  const lblFile = findFile(dir, labelsStem);
  if (!imgFile || !lblFile) {
    const missing = [!imgFile ? imagesStem : null, !lblFile ? labelsStem : null].filter(Boolean).join(', ');
    throw new UserError(
      `data directory ${dir} lacks ${missing}[.gz]. ` +
        (dir === FASHION_MNIST_DIR
          ? 'Install Fashion-MNIST with `sudo apt-get install dataset-fashion-mnist`, or pass --data DIR holding the four IDX files.'
          : 'Pass --data DIR holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz).'),
    );
  }
  const img = readIdx(imgFile);
  const lbl = readIdx(lblFile);
  if (img.dims.length !== 3) throw new UserError(`${imgFile}: expected 3-D image IDX (N×H×W), got ${img.dims.length}-D`);
  if (lbl.dims.length !== 1) throw new UserError(`${lblFile}: expected 1-D label IDX, got ${lbl.dims.length}-D`);
  const [n, height, width] = img.dims;
  if (lbl.dims[0] !== n) {
    throw new UserError(`${lblFile}: ${lbl.dims[0]} labels but ${imgFile} holds ${n} images (${which} split)`);
  }
  const images = new Float32Array(n * height * width);
  for (let i = 0; i < images.length; i++) images[i] = img.data[i] / 255;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = lbl.data[i];
  return { images, labels, n, height, width };
}

const cache = new Map<string, ImageDataset>();

/**
 * Loads an MNIST-format data set (Fashion-MNIST by default, from Debian's package location) from a
 * directory holding the four standard IDX files. `--data DIR` lets MNIST, KMNIST, … be used as well.
 */
export function loadImageDataset(dir: string = FASHION_MNIST_DIR): ImageDataset {
  const hit = cache.get(dir);
  if (hit) return hit;
  if (!existsSync(dir)) {
    throw new UserError(
      dir === FASHION_MNIST_DIR
        ? `Fashion-MNIST not found at ${dir}. Install it with \`sudo apt-get install dataset-fashion-mnist\`, or pass --data DIR holding the four IDX files.`
        : `data directory ${dir} does not exist`,
    );
  }
  const train = loadSplit(dir, 'train', STEMS.trainImages, STEMS.trainLabels);
  const test = loadSplit(dir, 'test', STEMS.testImages, STEMS.testLabels);
  if (train.height !== test.height || train.width !== test.width) {
    throw new UserError(`${dir}: train images are ${train.height}×${train.width} but test images are ${test.height}×${test.width}`);
  }
  let maxLabel = 0;
  for (const l of train.labels) maxLabel = Math.max(maxLabel, l);
  const numClasses = maxLabel + 1;
  const ds: ImageDataset = {
    name: dir === FASHION_MNIST_DIR ? 'fashion-mnist' : dir,
    dir,
    numClasses,
    classNames: dir === FASHION_MNIST_DIR ? FASHION_CLASSES : Array.from({ length: numClasses }, (_, i) => String(i)),
    train,
    test,
  };
  cache.set(dir, ds);
  return ds;
}

/** Copies the rows `idx` of a split (images and labels) into a new split. */
export function subsetSplit(split: ImageSplit, idx: ArrayLike<number>): ImageSplit {
  const px = split.height * split.width;
  const images = new Float32Array(idx.length * px);
  const labels = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const j = idx[i];
    images.set(split.images.subarray(j * px, (j + 1) * px), i * px);
    labels[i] = split.labels[j];
  }
  return { images, labels, n: idx.length, height: split.height, width: split.width };
}
