import { UserError } from '../errors.js';
import { engineBench } from './engine.js';
import { shiftInferenceBench } from './shift-inference.js';
import type { Bench } from './types.js';
import { structuredFfnBench } from './structured-ffn.js';
import { moeBench } from './moe.js';

const benches = new Map<string, Bench>();

/** Registers a benchmark for `efftrain bench <name>`. */
export function registerBench(b: Bench): void {
  benches.set(b.name, b);
}

export function getBench(name: string): Bench {
  const b = benches.get(name);
  if (!b) throw new UserError(`unknown benchmark "${name}" (known: ${[...benches.keys()].join(', ')})`);
  return b;
}

export function listBenches(): Bench[] {
  return [...benches.values()];
}

registerBench(engineBench);
registerBench(shiftInferenceBench);
registerBench(structuredFfnBench);
registerBench(moeBench);
