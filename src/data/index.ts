/** Browser-safe data transforms; file loaders (IDX, CSV/JSON tables, text corpora) are in `efftrain/node`. */
export * from './batching.js';
export * from './label-noise.js';
export * from './multi-fashion.js';
export type { ImageSplit, ImageDataset } from './image-dataset.js';
