import { UserError } from '../errors.js';
import { fashionBaseline } from './fashion-baseline.js';
import { superlossNoisyLabels } from './superloss-noisy-labels.js';
import { superlossRegression } from './superloss-regression.js';
import { s3Shift } from './s3-shift.js';
import { structuredFfn } from './structured-ffn.js';
import { mtlMultiFashion } from './mtl-multifashion.js';
import { mtlFashionDomains } from './mtl-fashion-domains.js';
import { competeSmoe } from './compete-smoe.js';
import type { Experiment } from './types.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const experiments = new Map<string, Experiment<any>>();

/** Registers an experiment under its name (LibMTL/timm style registry). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function registerExperiment(e: Experiment<any>): void {
  if (experiments.has(e.name)) throw new Error(`experiment ${e.name} registered twice`);
  experiments.set(e.name, e);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function getExperiment(name: string): Experiment<any> {
  const e = experiments.get(name);
  if (!e) throw new UserError(`unknown experiment "${name}" (known: ${[...experiments.keys()].join(', ')}; see \`efftrain list\`)`);
  return e;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function listExperiments(): Experiment<any>[] {
  return [...experiments.values()];
}

registerExperiment(fashionBaseline);
registerExperiment(superlossNoisyLabels);
registerExperiment(superlossRegression);
registerExperiment(s3Shift);
registerExperiment(structuredFfn);
registerExperiment(mtlMultiFashion);
registerExperiment(mtlFashionDomains);
registerExperiment(competeSmoe);
