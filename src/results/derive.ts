import { meanStd, pairedTTest, type PairedTTest } from '../stats/index.js';
import type { MetricDecl, RunRecord, SummaryStat } from './schema.js';

/** What an experiment's derive step returns (see Experiment.derive). */
export interface Derived {
  /** Extra per-run metrics (e.g. Δm against the baseline run of the same seed), keyed by `runKey(method, seed)`. */
  runMetrics?: Record<string, Record<string, number>>;
  /** Experiment-level values stored under results.json `derived`. */
  values?: Record<string, unknown>;
}

export const runKey = (method: string, seed: number) => `${method}#${seed}`;

/** Returns copies of `runs` with the derive step's per-run metrics appended. */
export function applyRunMetrics(runs: RunRecord[], d: Derived): RunRecord[] {
  return runs.map((r) => {
    const add = d.runMetrics?.[runKey(r.method, r.seed)];
    return add ? { ...r, metrics: { ...r.metrics, ...add } } : { ...r, metrics: { ...r.metrics } };
  });
}

/** Summarises runs as mean ± std per method and metric (non-finite values are left out of the mean). */
export function summarize(runs: { method: string; metrics: Record<string, number> }[]): Record<string, Record<string, SummaryStat>> {
  const out: Record<string, Record<string, SummaryStat>> = {};
  const byMethod = new Map<string, typeof runs>();
  for (const r of runs) byMethod.set(r.method, [...(byMethod.get(r.method) ?? []), r]);
  for (const [m, rs] of byMethod) {
    out[m] = {};
    const keys = new Set(rs.flatMap((r) => Object.keys(r.metrics)));
    for (const k of keys) {
      const xs = rs.map((r) => r.metrics[k]).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      const s: SummaryStat = meanStd(xs);
      if (xs.length && xs.every(Number.isInteger)) s.integer = true;
      out[m][k] = s;
    }
  }
  return out;
}

/** A paired comparison of one method with the baseline on one metric (same seeds). */
export type BaselineComparison = PairedTTest & { vs: string; metric: string };

/**
 * The generic derived step: paired t-tests of every method against the declared baseline on the primary
 * metric, over the seeds both ran (needs ≥ 2 common seeds). Empty when there is no baseline among the runs.
 */
export function pairedAgainstBaseline(runs: RunRecord[], decl: MetricDecl): Record<string, BaselineComparison> {
  const out: Record<string, BaselineComparison> = {};
  const base = decl.baseline;
  if (!base) return out;
  const baseRuns = runs.filter((r) => r.method === base);
  if (!baseRuns.length) return out;
  const methods = [...new Set(runs.map((r) => r.method))].filter((m) => m !== base);
  const val = (r: RunRecord) => r.metrics[decl.primary] ?? NaN;
  for (const m of methods) {
    const mine = runs.filter((r) => r.method === m && baseRuns.some((b) => b.seed === r.seed));
    if (mine.length < 2) continue;
    const a = mine.map(val);
    const b = mine.map((r) => val(baseRuns.find((x) => x.seed === r.seed)!));
    out[m] = { vs: base, metric: decl.primary, ...pairedTTest(a, b) };
  }
  return out;
}
