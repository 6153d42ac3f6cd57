/** Router registry: `createRouter({ type })` builds a registered router (topk, xmoe, smoe-dropout, compete). */
import type { Router, RouterDims, RouterFactory, RouterSpec } from './types.js';

const factories = new Map<string, RouterFactory>();

/** Registers a router type (the same factory twice is fine; another under a taken name throws). */
export function registerRouter(type: string, factory: RouterFactory): void {
  const prev = factories.get(type);
  if (prev && prev !== factory) throw new Error(`router type "${type}" registered twice`);
  factories.set(type, factory);
}

export function createRouter(spec: RouterSpec, dims: RouterDims, seed: number, initStd: number): Router {
  const f = factories.get(spec.type);
  if (!f) throw new Error(`unknown router type "${spec.type}" (registered: ${routerTypes().join(', ')})`);
  return f(spec, dims, seed, initStd);
}

export function routerTypes(): string[] {
  return [...factories.keys()];
}
