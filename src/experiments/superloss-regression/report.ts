import { type TabularDataset } from '../../data/tabular.js';
import { fmtStat } from '../../report/report.js';
import { barChart } from '../../report/svg.js';
import { fit } from '../../train/fit.js';
import { meanStd } from '../../train/metrics.js';
import type { ReportInput, ReportSection } from '../types.js';
import { median } from '../../stats/index.js';
import { REGRESSION_LOSSES, parseRegressionMethod } from './methods.js';
import { loadData, type Cfg } from './index.js';

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
- **Model/training.** MLP ${cfg.hidden.join('-')} (ReLU), ${cfg.optimizer}, lr ${cfg.lr} (${cfg.schedule}), batch ${cfg.batchSize}, ${cfg.epochs} epochs; metrics of the last epoch.
- **Losses.** \`l1\` = mean |ŷ − y|; \`smoothl1\` = smooth-L1 with β = ${cfg.smoothL1Beta}; \`superloss\` = SuperLoss around the same smooth-L1, τ = EMA of the batch-mean loss (momentum ${cfg.emaMomentum}).
- **λ selection.** ${cfg.lambdas.length > 1 ? `Per (rate, seed) one SuperLoss model per λ ∈ {${cfg.lambdas.join(', ')}}; the λ with the lowest **median** absolute error against the corrupted validation targets at the last epoch is chosen (the median ignores up to 50% outliers, so this criterion needs no clean data); the chosen model is the reported one.` : `λ fixed to ${cfg.lambdas[0]} (one candidate).`} The test set is never used for any choice.
- **Diagnostics.** \`sigma_auroc\` (SuperLoss) / \`negloss_auroc\` (all): AUROC of σ* / −loss at separating clean training targets (positive) from outliers, last epoch. \`val_medae\`: the selection criterion.
`);
  // Table: rate × loss.
  lines.push(`## test_mae by outlier rate (mean ± std over ${results.seeds.length} seeds)\n`);
  lines.push(`| outlier rate | ${losses.join(' | ')} | superloss − best other (mean paired diff) | seeds where superloss is best |`);
  lines.push(`|---:|${losses.map(() => '---:').join('|')}|---:|---:|`);
  const byRun = (loss: string, rate: number) => results.runs.filter((r) => r.method === `${loss}@out-${rate}`);
  for (const rate of rates) {
    const cells = losses.map((l) => {
      const s = results.summary[`${l}@out-${rate}`]?.test_mae;
      return s ? fmtStat(s.mean, s.std, s.n) : '';
    });
    let diffCell = '';
    let winCell = '';
    if (losses.includes('superloss') && losses.length > 1) {
      const diffs: number[] = [];
      let wins = 0;
      let n = 0;
      for (const seed of results.seeds) {
        const slRun = byRun('superloss', rate).find((r) => r.seed === seed);
        const others = losses.filter((l) => l !== 'superloss').map((l) => byRun(l, rate).find((r) => r.seed === seed)?.metrics.test_mae).filter((v): v is number => typeof v === 'number');
        if (!slRun || !others.length) continue;
        const bestOther = Math.min(...others);
        diffs.push(slRun.metrics.test_mae - bestOther);
        n++;
        if (slRun.metrics.test_mae < bestOther) wins++;
      }
      const s = meanStd(diffs);
      diffCell = diffs.length ? fmtStat(s.mean, s.std, s.n) : '';
      winCell = n ? `${wins}/${n}` : '';
    }
    lines.push(`| ${rate} | ${cells.join(' | ')} | ${diffCell} | ${winCell} |`);
  }
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
  const sel = input.rows.filter((r) => typeof r.select_lambda === 'number');
  if (sel.length) {
    lines.push(`## Chosen λ per (rate, seed)\n`);
    lines.push('Median absolute error on the corrupted validation split per candidate (the selection signal; chosen λ in **bold**). Test MAE per candidate is shown for transparency only; it was not used.\n');
    lines.push(`| method | seed | ${cfg.lambdas.map((l) => `val_medae λ=${l}`).join(' | ')} | chosen λ | ${cfg.lambdas.map((l) => `test_mae λ=${l}`).join(' | ')} |`);
    lines.push(`|---|---:|${cfg.lambdas.map(() => '---:').join('|')}|---:|${cfg.lambdas.map(() => '---:').join('|')}|`);
    const order = (r: (typeof sel)[number]) => results.methods.indexOf(r.method) * 1e6 + r.seed;
    for (const key of [...new Set([...sel].sort((x, y) => order(x) - order(y)).map((r) => `${r.method}#${r.seed}`))]) {
      const rs = sel.filter((r) => `${r.method}#${r.seed}` === key);
      const chosen = rs.find((r) => r.chosen === true);
      const cell = (l: number, k: string) => {
        const r = rs.find((x) => x.select_lambda === l);
        if (!r) return '';
        const v = (r[k] as number).toFixed(3);
        return k === 'select_val_medae' && r === chosen ? `**${v}**` : v;
      };
      lines.push(`| ${rs[0].method} | ${rs[0].seed} | ${cfg.lambdas.map((l) => cell(l, 'select_val_medae')).join(' | ')} | ${chosen?.select_lambda ?? ''} | ${cfg.lambdas.map((l) => cell(l, 'select_test_mae')).join(' | ')} |`);
    }
    lines.push('');
  }
  lines.push('Per-epoch curves of `test_mae` (and `train_clean_mae`, `tau`, `sigma_auroc`) are in the generic charts above; each point is the mean over seeds.\n');
  return [{ markdown: lines.join('\n'), charts: [chart] }];
}
