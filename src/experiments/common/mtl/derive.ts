import { existsSync, readFileSync } from 'node:fs';
import { UserError } from '../../../errors.js';
import { deltaM, type DeltaMetric } from '../../../methods/mtl/index.js';
import { meanStd } from '../../../train/metrics.js';
import { pairedTTest, type PairedTTest } from '../../../stats/index.js';
import { parseMtlMethod } from './methods.js';
import type { RunRecord } from '../../types.js';
import { runKey, type Derived, type MetricDecl } from '../../../results/index.js';


export const deltaMetrics = (taskNames: string[]): DeltaMetric[] => taskNames.map((t) => ({ task: t, key: `acc_${t}`, higherIsBetter: true }));

/** Reads the STL baseline (mean per metric) from an earlier results.json. */
export function readBaseline(path: string): Record<string, number> | null {
  if (!path) return null;
  if (!existsSync(path)) throw new UserError(`config key "baseline": ${path} not found`);
  const r = JSON.parse(readFileSync(path, 'utf8')) as { summary?: Record<string, Record<string, { mean: number }>> };
  const s = r.summary?.stl;
  if (!s) throw new UserError(`config key "baseline": ${path} holds no stl runs`);
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.mean]));
}

/** What the MTL experiments report: Δm (against STL), compared with equal weighting (EW) by paired t-tests. */
export const MTL_METRICS: MetricDecl = {
  primary: 'delta_m',
  higherIsBetter: true,
  baseline: 'ew',
  diagnostics: ['sec_per_epoch', 'tsr_entropy', 'train_loss', 'params', 'leaked_tensors'],
};

/**
 * The derived step: `delta_m` (percent, Δp_task) for every run, against the `stl` run with the same seed, else
 * against the mean of the available `stl` runs, else against `baseline`'s STL means; and its per-method summary.
 * (The paired t-tests against `ew` are the runner's generic step on the declared baseline.)
 */
export function mtlDerive(taskNames: string[], runs: readonly RunRecord[], baselinePath: string): Derived {
  const dm = deltaMetrics(taskNames);
  const stl = runs.filter((r) => r.method === 'stl');
  const stlMean: Record<string, number> | null = stl.length
    ? Object.fromEntries(dm.map((m) => [m.key, meanStd(stl.map((r) => r.metrics[m.key])).mean]))
    : readBaseline(baselinePath);
  if (!stlMean) return { values: { delta_m: null, note: 'no stl runs and no baseline: Δm not computed', rep_vs_base: repVsBase(runs) } };
  const runMetrics: Record<string, Record<string, number>> = {};
  for (const r of runs) {
    const same = stl.find((s) => s.seed === r.seed);
    runMetrics[runKey(r.method, r.seed)] = { delta_m: r.method === 'stl' ? 0 : deltaM(r.metrics, same ? same.metrics : stlMean, dm) };
  }
  const methods = [...new Set(runs.map((r) => r.method))];
  const summary = Object.fromEntries(methods.map((m) => [m, meanStd(runs.filter((r) => r.method === m).map((r) => runMetrics[runKey(r.method, r.seed)].delta_m))]));
  const withDm = runs.map((r) => ({ ...r, metrics: { ...r.metrics, ...runMetrics[runKey(r.method, r.seed)] } }));
  return { runMetrics, values: { delta_m: summary, baseline: stl.length ? 'stl runs of this experiment (same seed)' : `stl means from ${baselinePath}`, rep_vs_base: repVsBase(withDm) } };
}

/** A paired comparison of a Rep-MTL variant with its base weighting on one metric. */
export type RepVsBase = PairedTTest & { base: string; metric: string; seeds: number[] };

/**
 * Every Rep-MTL variant (`rep-mtl[-tsr|-csa][@w]`) against its own base weighting (`log-ew` for plain
 * `rep-mtl`): paired t-tests of `delta_m` (when computed) and `avg_acc` over the seeds both ran, each pair
 * matched by seed (never by position). Needs ≥ 2 common seeds.
 */
export function repVsBase(runs: readonly RunRecord[]): Record<string, RepVsBase[]> {
  const out: Record<string, RepVsBase[]> = {};
  for (const m of [...new Set(runs.map((r) => r.method))]) {
    let parsed;
    try {
      parsed = parseMtlMethod(m);
    } catch {
      continue;
    }
    if (parsed.kind !== 'mtl' || parsed.rep === 'none') continue;
    const base = parsed.weighting;
    const mine = runs.filter((r) => r.method === m);
    const pairs = mine.map((r) => [r, runs.find((b) => b.method === base && b.seed === r.seed)] as const).filter((p): p is readonly [RunRecord, RunRecord] => p[1] !== undefined);
    if (pairs.length < 2) continue;
    const res: RepVsBase[] = [];
    for (const metric of ['delta_m', 'avg_acc']) {
      if (!pairs.every(([a, b]) => Number.isFinite(a.metrics[metric]) && Number.isFinite(b.metrics[metric]))) continue;
      res.push({ base, metric, seeds: pairs.map(([a]) => a.seed), ...pairedTTest(pairs.map(([a]) => a.metrics[metric]), pairs.map(([, b]) => b.metrics[metric])) });
    }
    if (res.length) out[m] = res;
  }
  return out;
}

