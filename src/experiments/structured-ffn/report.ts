import { type StructuredFfnSpec } from '../../methods/structured-ffn/ffn.js';
import { meanStd, pairedTTest } from '../../stats/index.js';
import { type Series } from '../../report/svg.js';
import type { MetricRow } from '../types.js';
import type { StructuredFfnConfig } from './index.js';
import { ffnSpecFor, parseMethod } from './methods.js';

/** Mean ± std curves of val_bpc against `x` ('step' or 'train_flops'), averaging x too (SGT FLOPs vary by seed). */
export function curve(rows: (MetricRow & { method: string; seed: number })[], methods: string[], x: 'step' | 'train_flops'): Series[] {
  const out: Series[] = [];
  for (const m of methods) {
    const byStep = new Map<number, { x: number[]; y: number[] }>();
    for (const r of rows) {
      if (r.method !== m || typeof r.step !== 'number' || typeof r.val_bpc !== 'number') continue;
      const e = byStep.get(r.step) ?? { x: [], y: [] };
      e.x.push(Number(r[x]));
      e.y.push(r.val_bpc);
      byStep.set(r.step, e);
    }
    const pts = [...byStep.entries()].sort((a, b) => a[0] - b[0]);
    if (!pts.length) continue;
    out.push({
      name: m,
      x: pts.map(([, e]) => meanStd(e.x).mean),
      y: pts.map(([, e]) => meanStd(e.y).mean),
      band: pts.map(([, e]) => meanStd(e.y).std),
    });
  }
  return out;
}

export interface ShareRow {
  method: string;
  structure: string;
  ffnWeights: number;
  share: number;
}

export function shareTable(cfg: StructuredFfnConfig): ShareRow[] {
  const dense = 2 * cfg.dModel * cfg.dFf;
  return cfg.methods.map((m) => {
    const plan = parseMethod(m)!;
    const spec = ffnSpecFor(plan, cfg);
    let w = dense;
    let structure = 'dense';
    if (spec.kind === 'structured') {
      const s = spec as StructuredFfnSpec;
      structure = s.map === 'lowrank' ? `LowRank r=${s.rank}` : s.map === 'blockdense' ? `BlockDense b=${s.blocks}, r=${s.rank}` : `BlockShuffle b=${s.blocks}`;
      w = s.map === 'lowrank' ? 2 * s.rank! * (cfg.dModel + cfg.dFf) : s.map === 'blockdense' ? s.rank! * (cfg.dModel + cfg.dFf) * (1 + 1 / s.blocks!) : (2 * cfg.dModel * (cfg.dModel + cfg.dFf)) / s.blocks!;
      if (plan.sgt) structure += ' + SGT';
      if (plan.sameFlops) structure += ', same FLOPs as dense';
    }
    const total = dense + (cfg.nLayers - 1) * w;
    return { method: m, structure, ffnWeights: total, share: total / (cfg.nLayers * dense) };
  });
}

export interface Check {
  prediction: string;
  observed: string;
  verdict: 'agrees' | 'disagrees' | 'within noise' | 'too few seeds' | 'not run';
}

/**
 * Compares runs with the paper's qualitative predictions (Wei et al. 2024: dense < LowRank ≈ BlockDense < BlockShuffle, SGT closes the gap), each as "a < b" on `key` for every metric that
 * is lower-is-better. Paired by seed: the 95% t-based confidence interval of mean(b − a) over the seeds both ran
 * (src/stats pairedTTest, df = n − 1) decides — above 0: agrees, below 0: disagrees, containing 0: within noise.
 * `primary` is the bits-per-character metric the checks on loss use (test_bpc, or val_bpc without a test split).
 */
export function predictionChecks(methods: string[], runs: { method: string; seed: number; metrics: Record<string, number> }[], primary = 'val_bpc'): Check[] {
  const has = (m: string) => methods.includes(m) && runs.some((r) => r.method === m);
  const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(1) : x.toFixed(3));
  const less = (a: string, b: string, key: string, prediction: string): Check => {
    if (!has(a) || !has(b)) return { prediction, observed: `needs ${a} and ${b}`, verdict: 'not run' };
    const byA = new Map(runs.filter((r) => r.method === a).map((r) => [r.seed, r.metrics[key]]));
    const pairs = runs.filter((r) => r.method === b && byA.has(r.seed)).map((r) => [byA.get(r.seed)!, r.metrics[key]] as const);
    const sa = meanStd(pairs.map((p) => p[0]));
    const sb = meanStd(pairs.map((p) => p[1]));
    const t = pairedTTest(pairs.map((p) => p[1]), pairs.map((p) => p[0]));
    const head = `${a} ${fmt(sa.mean)} ± ${fmt(sa.std)} vs ${b} ${fmt(sb.mean)} ± ${fmt(sb.std)} (${key}, ${t.n} paired seeds)`;
    if (t.n < 2 || !Number.isFinite(t.ci95[0])) return { prediction, observed: `${head}; ${b} − ${a} = ${fmt(t.meanDiff)}`, verdict: 'too few seeds' };
    const [lo, hi] = t.ci95;
    const observed = `${head}; ${b} − ${a} = ${fmt(t.meanDiff)}, 95% CI [${fmt(lo)}, ${fmt(hi)}]`;
    return { prediction, observed, verdict: lo > 0 ? 'agrees' : hi < 0 ? 'disagrees' : 'within noise' };
  };
  return [
    less('dense', 'lowrank-63', primary, 'dense < LowRank 63% (small gap)'),
    less('lowrank-63', 'lowrank-32', primary, 'LowRank 63% < LowRank 32% (visible gap)'),
    less('lowrank-32', 'blockshuffle-32', primary, 'LowRank ≈ BlockDense < BlockShuffle (32%): LowRank < BlockShuffle'),
    less('blockdense-32', 'blockshuffle-32', primary, 'BlockDense < BlockShuffle (32%)'),
    less('lowrank-32-sgt', 'lowrank-32', primary, 'SGT closes most of the gap: LowRank-32 + SGT < LowRank-32'),
    less('lowrank-32-sgt-sameflops', 'lowrank-32-sameflops', primary, 'same FLOPs: SGT (G) ≤ longer training (F)'),
    less('lowrank-32', 'dense', 'step_ms', 'structured FFNs train faster per step (step_ms)'),
    less('lowrank-32-sgt', 'lowrank-32', 'loss_spikes', 'SGT removes loss spikes (fewer spikes)'),
  ];
}
