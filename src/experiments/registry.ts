import { Registry } from '../util/registry.js';
import { fashionBaseline } from './fashion-baseline/index.js';
import { superlossNoisyLabels } from './superloss-noisy-labels/index.js';
import { superlossRegression } from './superloss-regression/index.js';
import { s3Shift } from './s3-shift/index.js';
import { structuredFfn } from './structured-ffn/index.js';
import { mtlMultiFashion } from './mtl-multifashion/index.js';
import { mtlFashionDomains } from './mtl-fashion-domains/index.js';
import { microbertExperiment } from './microbert/index.js';
import { newtonHandwriting } from './newton-handwriting/index.js';
import { competeSmoe } from './compete-smoe/index.js';
import type { Experiment } from './types.js';

/** Every experiment of `efftrain run <name>` (one folder each under src/experiments/). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const experiments = new Registry<Experiment<any>>('experiment');

/** Registers an experiment under its name. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function registerExperiment(e: Experiment<any>): void {
  experiments.register(e.name, e);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function getExperiment(name: string): Experiment<any> {
  return experiments.get(name, 'see `efftrain list`');
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function listExperiments(): Experiment<any>[] {
  return experiments.list();
}

for (const e of [fashionBaseline, superlossNoisyLabels, superlossRegression, s3Shift, structuredFfn, mtlMultiFashion, mtlFashionDomains, microbertExperiment, newtonHandwriting, competeSmoe]) registerExperiment(e);
