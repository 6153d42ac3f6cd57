/**
 * efftrain — effective training techniques for TensorFlow.js. The root entry is browser-safe: engine, data
 * transforms, the training loop, stats, the results contract, models and every technique. Files, checkpoints
 * on disk, dataset loaders, the experiment runner and reports live under `efftrain/node`.
 */
export * from './engine/index.js';
export * from './data/index.js';
export * from './train/index.js';
export * from './errors.js';
export * from './stats/index.js';
export * from './results/index.js';
export * from './models/index.js';
export { Registry } from './util/registry.js';
export { lineChart, barChart, histogramChart } from './report/svg.js';
export * as superloss from './methods/superloss/index.js';
export * as s3 from './methods/s3/index.js';
export * as mtl from './methods/mtl/index.js';
export * as microbert from './methods/microbert/index.js';
export * as structuredFfn from './methods/structured-ffn/index.js';
export * as newton from './methods/newton/index.js';
export * as strokes from './data/strokes.js';
export * as competeSmoe from './methods/compete-smoe/index.js';
