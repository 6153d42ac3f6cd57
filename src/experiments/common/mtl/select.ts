import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../../errors.js';
import { meanStd } from '../../../stats/index.js';

/** One candidate setting: the resolved config of a run directory and its per-seed final metrics. */
export interface SelectionCandidate {
  /** Where it came from (for messages). */
  source: string;
  config: Record<string, unknown>;
  runs: { method: string; seed: number; metrics: Record<string, number> }[];
}

export interface SelectionRow {
  source: string;
  /** The values of the chosen keys (`repmtl.lambdaTsr` …) in this candidate. */
  values: Record<string, unknown>;
  mean: number;
  std: number;
  seeds: number[];
}

const at = (o: Record<string, unknown>, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);

/**
 * Chooses hyperparameters (`keys`, e.g. λ_tsr and λ_csa, or `lr`) for `method` on validation only: every
 * candidate must come from a run with `evalSplit = "val"` (whose data never holds the test split — see the MTL
 * experiments' data builders), else a UserError. All candidates must cover the same seeds. Returns every row
 * (mean ± std of `metric` over seeds, in the order given) and the best (highest mean; the first on ties).
 */
export function chooseOnValidation(candidates: SelectionCandidate[], o: { method: string; keys: string[]; metric: string }): { rows: SelectionRow[]; best: SelectionRow } {
  if (!candidates.length) throw new UserError('selection: no candidates');
  const rows = candidates.map((c): SelectionRow => {
    if (c.config.evalSplit !== 'val') throw new UserError(`selection: ${c.source} was evaluated on "${String(c.config.evalSplit)}", not on validation (run it with --set evalSplit=val)`);
    const runs = c.runs.filter((r) => r.method === o.method).sort((a, b) => a.seed - b.seed);
    if (!runs.length) throw new UserError(`selection: ${c.source} holds no "${o.method}" runs`);
    const xs = runs.map((r) => r.metrics[o.metric]);
    if (!xs.every(Number.isFinite)) throw new UserError(`selection: ${c.source} lacks a finite "${o.metric}" in some run`);
    const s = meanStd(xs);
    return { source: c.source, values: Object.fromEntries(o.keys.map((k) => [k, at(c.config, k)])), mean: s.mean, std: s.std, seeds: runs.map((r) => r.seed) };
  });
  const seeds = JSON.stringify(rows[0].seeds);
  const odd = rows.find((r) => JSON.stringify(r.seeds) !== seeds);
  if (odd) throw new UserError(`selection: ${odd.source} ran seeds ${odd.seeds.join(',')} but ${rows[0].source} ran ${rows[0].seeds.join(',')}`);
  const best = rows.reduce((b, r) => (r.mean > b.mean ? r : b), rows[0]);
  return { rows, best };
}

/** Reads a run directory (config.json + results.json) as a selection candidate. */
export function readCandidate(dir: string): SelectionCandidate {
  const cfgPath = join(dir, 'config.json');
  const resPath = join(dir, 'results.json');
  for (const p of [cfgPath, resPath]) if (!existsSync(p)) throw new UserError(`selection: ${p} not found`);
  const config = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  const res = JSON.parse(readFileSync(resPath, 'utf8')) as { runs: SelectionCandidate['runs'] };
  return { source: dir, config, runs: res.runs };
}
