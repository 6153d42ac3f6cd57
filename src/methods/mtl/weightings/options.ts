import { UserError } from '../../../errors.js';
import type { WeightingFactory } from '../types.js';

/**
 * Merges a weighting's options over its defaults, rejecting unknown keys and values of the wrong type
 * (numbers must be finite). `name` prefixes messages as the config key `<method>.<option>`.
 */
export function resolveOptions<D extends Record<string, number | string | boolean>>(name: string, defaults: D, options: Record<string, unknown>): D {
  const out: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(options)) {
    if (!(k in defaults)) throw new UserError(`unknown config key "${name}.${k}" (known: ${Object.keys(defaults).map((x) => `${name}.${x}`).join(', ') || 'none'})`);
    const want = typeof defaults[k];
    if (typeof v !== want || (want === 'number' && !Number.isFinite(v))) throw new UserError(`config key "${name}.${k}": expected a ${want}, got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  return out as D;
}

/** Defines a weighting factory (typed defaults → typed options in `create`). */
export function defineWeighting<D extends Record<string, number | string | boolean>>(f: Omit<WeightingFactory, 'create' | 'defaults'> & {
  defaults: D;
  create(o: D, numTasks: number): ReturnType<WeightingFactory['create']>;
}): WeightingFactory {
  return {
    name: f.name,
    paper: f.paper,
    defaults: f.defaults,
    supportsRep: f.supportsRep,
    create: (init) => f.create(resolveOptions(f.name, f.defaults, init.options), init.numTasks),
  };
}
