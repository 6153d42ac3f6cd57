/**
 * efftrain/node — the Node-only half: files (checkpoints, saved models), dataset loaders, the experiment
 * runner and registry, report writing. Import the browser-safe API from `efftrain`.
 */
export * from './checkpoint-file.js';
export * from './transformer-files.js';
export { saveLayersModel, loadLayersModel } from '../train/model-io.js';
export * from '../data/idx.js';
export * from '../data/image-dataset.js';
export * from '../data/tabular.js';
export * from '../data/text-corpus.js';
export { writeFileAtomic } from '../util/fs.js';
export { runExperiment, summarize, reportRun, metricDecl, runFolder, type RunOptions } from '../experiments/runner.js';
export { resolveConfig, parseSet, readConfigFile } from '../experiments/config.js';
export { registerExperiment, getExperiment, listExperiments, experiments } from '../experiments/registry.js';
export type * from '../experiments/types.js';
export { writeReport, summaryTable, runsTable, fmtStat, fmtSummary, fmtValue, curveSeries } from '../report/report.js';
export type * from '../report/types.js';
export { registerBench, getBench, listBenches, benches } from '../bench/registry.js';
export type * from '../bench/types.js';
