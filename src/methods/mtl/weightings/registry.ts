import { Registry } from '../../../util/registry.js';
import type { Weighting, WeightingFactory } from '../types.js';
import { alignedMtl } from './aligned-mtl.js';
import { cagrad } from './cagrad.js';
import { dbMtl } from './db-mtl.js';
import { dwa } from './dwa.js';
import { ew } from './ew.js';
import { famo } from './famo.js';
import { gls } from './gls.js';
import { gradnorm } from './gradnorm.js';
import { imtl } from './imtl.js';
import { logEw } from './log-ew.js';
import { mgda, mgdaUb } from './mgda.js';
import { nashMtl } from './nash-mtl.js';
import { pcgrad } from './pcgrad.js';
import { rlw } from './rlw.js';
import { uw } from './uw.js';

/** Every MTL weighting by name (LibMTL-style registry). */
export const weightings = new Registry<WeightingFactory>('weighting');

/** Registers a weighting factory under its name. */
export function registerWeighting(f: WeightingFactory): void {
  weightings.register(f.name, f);
}

export function getWeightingFactory(name: string): WeightingFactory {
  return weightings.get(name);
}

/** Creates a weighting by name with its `<name>.<option>` options. */
export function createWeighting(name: string, numTasks: number, options: Record<string, unknown> = {}): Weighting {
  return getWeightingFactory(name).create({ numTasks, options });
}

export function listWeightings(): WeightingFactory[] {
  return weightings.list();
}

for (const f of [ew, logEw, uw, gls, rlw, dwa, famo, gradnorm, mgda, mgdaUb, pcgrad, cagrad, imtl, nashMtl, alignedMtl, dbMtl]) registerWeighting(f);
