import { UserError } from '../../../errors.js';
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
import { mgda, mgdaUb } from './mgda.js';
import { nashMtl } from './nash-mtl.js';
import { pcgrad } from './pcgrad.js';
import { rlw } from './rlw.js';
import { uw } from './uw.js';

const weightings = new Map<string, WeightingFactory>();

/** Registers a weighting factory under its name (LibMTL-style registry). */
export function registerWeighting(f: WeightingFactory): void {
  if (weightings.has(f.name)) throw new Error(`weighting ${f.name} registered twice`);
  weightings.set(f.name, f);
}

export function getWeightingFactory(name: string): WeightingFactory {
  const f = weightings.get(name);
  if (!f) throw new UserError(`unknown weighting "${name}" (known: ${[...weightings.keys()].join(', ')})`);
  return f;
}

/** Creates a weighting by name with its `<name>.<option>` options. */
export function createWeighting(name: string, numTasks: number, options: Record<string, unknown> = {}): Weighting {
  return getWeightingFactory(name).create({ numTasks, options });
}

export function listWeightings(): WeightingFactory[] {
  return [...weightings.values()];
}

for (const f of [ew, uw, gls, rlw, dwa, famo, gradnorm, mgda, mgdaUb, pcgrad, cagrad, imtl, nashMtl, alignedMtl, dbMtl]) registerWeighting(f);
