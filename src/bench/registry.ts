import { Registry } from '../util/registry.js';
import { engineBench } from './engine.js';
import { shiftInferenceBench } from './shift-inference.js';
import type { Bench } from './types.js';
import { structuredFfnBench } from './structured-ffn.js';
import { sweepBench } from './sweep.js';
import { moeBench } from './moe.js';

/** Every benchmark of `efftrain bench <name>`. */
export const benches = new Registry<Bench>('benchmark');

/** Registers a benchmark for `efftrain bench <name>`. */
export function registerBench(b: Bench): void {
  benches.register(b.name, b);
}

export function getBench(name: string): Bench {
  return benches.get(name);
}

export function listBenches(): Bench[] {
  return benches.list();
}

registerBench(engineBench);
registerBench(shiftInferenceBench);
registerBench(structuredFfnBench);
registerBench(sweepBench);
registerBench(moeBench);
