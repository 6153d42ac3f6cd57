/** efftrain — effective training techniques for TensorFlow.js. Public API facade. */
export * from './engine/index.js';
export * from './data/index.js';
export * from './train/index.js';
export * from './errors.js';
export * as superloss from './methods/superloss/index.js';
export * as s3 from './methods/s3/index.js';
export { runExperiment, summarize } from './experiments/runner.js';
export { registerExperiment, getExperiment, listExperiments } from './experiments/registry.js';
export type * from './experiments/types.js';
export { lineChart, barChart, histogramChart } from './report/svg.js';
export * as mtl from './methods/mtl/index.js';
export * as competeSmoe from './methods/compete-smoe/index.js';
