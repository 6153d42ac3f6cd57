import { type TabularDataset } from '../../data/tabular.js';
import { fmtStat } from '../../report/report.js';
import { barChart } from '../../report/svg.js';
import { meanStd } from '../../train/metrics.js';
import type { ReportInput, ReportSection } from '../types.js';
import { ciCell, ciSign, pairBySeed } from '../common/paired-verdict.js';
import { REGRESSION_LOSSES, parseRegressionMethod } from './methods.js';
import { loadData, tuningGrid, type Cfg } from './index.js';

export function report(input: ReportInput<Cfg>): ReportSection[] {
  const { results, config: cfg } = input;
  const methods = results.methods.map((name) => ({ name, ...parseRegressionMethod(name) }));
  const rates = [...new Set(methods.map((m) => m.rate))].sort((a, b) => a - b);
  const losses = REGRESSION_LOSSES.filter((l) => methods.some((m) => m.loss === l));
  let ds: TabularDataset | null = null;
  try {
    ds = loadData(cfg);
  } catch {
    ds = null;
  }
  const first = results.runs[0]?.metrics;
  const lines: string[] = [];
  lines.push(`## Setup and definitions

- **Data.** ${ds ? `\`${ds.source}\`: ${ds.n} complete rows (${ds.droppedRows} dropped for missing values); target \`${ds.targetName}\`; ${ds.d} features: ${ds.featureNames.join(', ')}${ds.droppedColumns.length ? `; not used: ${ds.droppedColumns.join(', ')}` : ''}.` : `\`${cfg.data || 'vega-datasets cars.json'}\`, target \`${cfg.target}\`.`} Features are standardised with the training rows' mean/std.
- **Split.** Per seed, a seeded ${Math.round(cfg.testFraction * 100)}% of the rows is the **clean** test set (${first?.n_test ?? '?'} rows); the rest is the training pool. Outliers are injected into the pool; then a seeded ${Math.round(cfg.valFraction * 100)}% of the pool (with its outliers, ${first?.n_val ?? '?'} rows) is held out as validation split for λ selection, and every loss trains on the remaining ${first?.n_fit ?? '?'} rows. Split, outliers and initialisation depend only on (seed, rate), so every loss and every λ sees identical data.
- **Outliers.** Exactly round(rate·n_pool) training targets, chosen uniformly without replacement, are replaced by draws from U(min − ${cfg.outlierBelow}·R, max + ${cfg.outlierAbove}·R), with min/max/R = min, max and range of the clean pool targets${first ? ` (seed ${results.runs[0].seed}: U(${first.outlier_lo.toFixed(1)}, ${first.outlier_hi.toFixed(1)}))` : ''}. With the defaults a third of the outliers fall inside the real target range and two thirds above it, so the corruption is one-sided (it biases any location estimate, including the conditional median that L1 targets).
- **Targets.** Trained in robust-standardised units, (y − median)/(1.4826·MAD) of the corrupted fit targets (the clean ones are unknown to the learner); MAE/RMSE are reported in the target's own units on the clean test set.
- **Model/training.** MLP ${cfg.hidden.join('-')} (ReLU), ${cfg.optimizer} (${cfg.schedule}), batch ${cfg.batchSize}, ${cfg.epochs} epochs; metrics of the last epoch. The MLP width, epochs and outlier model are fixed (not tuned per loss).
- **Losses.** \`l1\` = mean |ŷ − y|; \`smoothl1\` = smooth-L1 with a tuned β; \`superloss\` = SuperLoss around smooth-L1 with β = ${cfg.smoothL1Beta} (fixed), τ = EMA of the batch-mean loss (momentum ${cfg.emaMomentum}).
- **Tuning (the same validation split and rule for every loss).** Per (rate, seed) every point of each loss's grid is trained; the one with the lowest **median** absolute error against the corrupted validation targets at the last epoch is chosen (the median ignores up to 50% outliers, so the rule needs no clean data) and is the reported model. Grids: \`l1\`: LR ∈ {${cfg.lrs.join(', ')}} (${tuningGrid(cfg, 'l1').length} candidates); \`smoothl1\`: LR × β ∈ {${cfg.smoothL1Betas.join(', ')}} (${tuningGrid(cfg, 'smoothl1').length}); \`superloss\`: LR × λ ∈ {${cfg.lambdas.join(', ')}} (${tuningGrid(cfg, 'superloss').length}). **Asymmetry:** the grids differ in size (L1 has no knob besides the LR), so SuperLoss and smooth-L1 get more validation draws than L1; SuperLoss's inner β is not tuned. The candidates see the test features (for the curves) but never the test targets: those score stored predictions after the choice.
- **Diagnostics.** \`sigma_auroc\` (SuperLoss) / \`negloss_auroc\` (all): AUROC of σ* / −loss at separating clean training targets (positive) from outliers, last epoch. \`val_medae\`: the selection criterion. Comparisons are paired by seed (same split, outliers and initialisation) with Student-t 95% CIs.
`);
  // Table: rate × loss.
  lines.push(`## test_mae by outlier rate (mean ± std over ${results.seeds.length} seeds)\n`);
  const others = losses.filter((l) => l !== 'superloss');
  const hasSl = losses.includes('superloss');
  lines.push(`| outlier rate | ${losses.join(' | ')} |${hasSl ? others.map((o) => ` superloss − ${o} (paired, 95% t-CI) |`).join('') : ''}`);
  lines.push(`|---:|${losses.map(() => '---:').join('|')}|${hasSl ? others.map(() => '---:|').join('') : ''}`);
  const bySeed = (loss: string, rate: number) => new Map(results.runs.filter((r) => r.method === `${loss}@out-${rate}` && typeof r.metrics.test_mae === 'number').map((r) => [r.seed, r.metrics.test_mae]));
  const verdict: string[] = [];
  for (const rate of rates) {
    const cells = losses.map((l) => {
      const s = results.summary[`${l}@out-${rate}`]?.test_mae;
      return s ? fmtStat(s.mean, s.std, s.n) : '';
    });
    const diffs = hasSl ? others.map((o) => pairBySeed(bySeed('superloss', rate), bySeed(o, rate))) : [];
    lines.push(`| ${rate} | ${cells.join(' | ')} |${diffs.map((t) => ` ${ciCell(t, 3)} |`).join('')}`);
    diffs.forEach((t, i) => {
      const sgn = ciSign(t);
      verdict.push(`at outlier rate ${rate} SuperLoss ${sgn < 0 ? 'has a LOWER' : sgn > 0 ? 'has a HIGHER' : 'is not resolved against'} ${sgn === 0 ? others[i] : `test MAE than ${others[i]}`} (${ciCell(t, 3)})`);
    });
  }
  if (verdict.length) lines.push(`\nVerdict (generated; a difference is called only when its 95% CI excludes 0): ${verdict.join('; ')}.\n`);
  const labels: string[] = [];
  const values: number[] = [];
  const errors: number[] = [];
  for (const rate of rates) {
    for (const l of losses) {
      const s = results.summary[`${l}@out-${rate}`]?.test_mae;
      if (!s) continue;
      labels.push(`${l}@out-${rate}`);
      values.push(s.mean);
      errors.push(s.std);
    }
  }
  const chart = { file: 'charts/test_mae-by-rate.svg', title: 'clean-test MAE by loss and outlier rate', svg: barChart({ title: 'clean-test MAE (mean ± std over seeds)', yLabel: `test MAE (${cfg.target})`, labels, values, errors }) };
  lines.push(`\n![${chart.title}](${chart.file})\n`);
  const sel = input.rows.filter((r) => r.kind === 'selection' && typeof r.select_lr === 'number');
  if (sel.length) {
    lines.push(`## Tuning grid: validation signal per candidate (mean over seeds)\n`);
    lines.push('`val_medae` (median absolute error on the corrupted validation split) is the selection signal; "chosen" counts the seeds where the candidate won. Test MAE per candidate is shown for transparency only; it was not used.\n');
    lines.push('| method | LR | β | λ | val_medae | chosen (seeds) | test_mae |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|');
    const key = (r: (typeof sel)[number]) => `${r.method}|${r.select_lr}|${r.select_beta ?? ''}|${r.select_lambda ?? ''}`;
    const order = (r: (typeof sel)[number]) => results.methods.indexOf(r.method);
    const keys = [...new Set([...sel].sort((a, b) => order(a) - order(b)).map(key))];
    for (const k of keys) {
      const rs = sel.filter((r) => key(r) === k);
      const v = meanStd(rs.map((r) => r.select_val_medae as number));
      const t = meanStd(rs.map((r) => r.select_test_mae as number));
      const r0 = rs[0];
      lines.push(`| ${r0.method} | ${r0.select_lr} | ${r0.select_beta ?? '–'} | ${r0.select_lambda ?? '–'} | ${v.mean.toFixed(3)} | ${rs.filter((r) => r.chosen === true).length}/${rs.length} | ${t.mean.toFixed(3)} |`);
    }
    lines.push('');
  }
  lines.push('Per-epoch curves of `test_mae` (and `train_clean_mae`, `tau`, `sigma_auroc`) are in the generic charts above; each point is the mean over seeds.\n');
  return [{ markdown: lines.join('\n'), charts: [chart] }];
}
