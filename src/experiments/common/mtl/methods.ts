import { UserError } from '../../../errors.js';
import { listWeightings, resolveRepMtlOptions, type RepMtlOptions } from '../../../methods/mtl/index.js';
import type { MtlTrainConfig } from './config.js';


/** Weightings that optimise log losses. */
const LOG_LOSS_BASES = new Set(['log-ew', 'db-mtl']);

export type MtlMethod = { kind: 'stl' } | { kind: 'mtl'; weighting: string; rep: 'none' | 'both' | 'tsr' | 'csa' };

/** Rep-MTL's base weighting when a method names none: EW on log losses, the setting of the paper's results. */
export const REP_MTL_BASE = 'log-ew';

/** Parses `stl`, `<weighting>`, `rep-mtl[-tsr|-csa]` (on log-loss EW) and `rep-mtl[-tsr|-csa]@<weighting>`. */
export function parseMtlMethod(method: string): MtlMethod {
  if (method === 'stl') return { kind: 'stl' };
  const m = /^rep-mtl(?:-(tsr|csa))?(?:@(.+))?$/.exec(method);
  const names = new Set(listWeightings().map((f) => f.name));
  if (m) {
    const w = m[2] ?? REP_MTL_BASE;
    if (!names.has(w)) throw new UserError(`unknown weighting "${w}" in method "${method}"`);
    return { kind: 'mtl', weighting: w, rep: (m[1] as 'tsr' | 'csa' | undefined) ?? 'both' };
  }
  if (!names.has(method)) throw new UserError(`unknown method "${method}"`);
  return { kind: 'mtl', weighting: method, rep: 'none' };
}

/** Method-name patterns of the MTL experiments (weightings: `efftrain list weightings`). */
export const MTL_METHOD_PATTERNS = ['stl', '<weighting>', 'rep-mtl[-tsr|-csa][@<weighting>]'];

export function knownMtlMethods(): string[] {
  const ws = listWeightings().map((f) => f.name);
  return ['stl', ...ws, 'rep-mtl', 'rep-mtl-tsr', 'rep-mtl-csa', ...ws.filter((w) => w !== REP_MTL_BASE).flatMap((w) => [`rep-mtl@${w}`, `rep-mtl-tsr@${w}`, `rep-mtl-csa@${w}`])];
}

/**
 * The Rep-MTL options of a method (null when it has none). `repmtl.saliencyLoss = auto` takes the saliency of
 * the loss being optimised (our choice; the paper does not say): of log L_t on a log-loss base (`log-ew`,
 * `db-mtl`), of L_t otherwise.
 */
export function repOptionsFor(m: MtlMethod, cfg: MtlTrainConfig): RepMtlOptions | null {
  if (m.kind !== 'mtl' || m.rep === 'none') return null;
  const o = { ...(cfg.repmtl as Record<string, unknown>) };
  if (o.saliencyLoss === undefined || o.saliencyLoss === 'auto') o.saliencyLoss = LOG_LOSS_BASES.has(m.weighting) ? 'log' : 'raw';
  const base = resolveRepMtlOptions(o);
  if (m.rep === 'tsr') return { ...base, tsr: true, csa: false };
  if (m.rep === 'csa') return { ...base, tsr: false, csa: true };
  return base;
}

