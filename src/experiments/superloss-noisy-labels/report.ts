import { curveSeries, fmtStat } from '../../report/report.js';
import { lineChart, type Series } from '../../report/svg.js';
import { meanStd } from '../../train/metrics.js';
import { againstConstant, ciCell, ciSign, pairBySeed } from '../common/paired-verdict.js';
import type { Chart, MetricRow, ReportInput, ReportSection } from '../types.js';
import { ceSigmaLambda, type Cfg } from './index.js';
import { DEFAULT_LAMBDAS, parseNoisyLabelMethod } from './methods.js';

export type Row = MetricRow & { method: string; seed: number };

export function histChart(title: string, hists: Row[], bins: number): string {
  const sum = (key: 'clean' | 'hard' | 'noisy') => {
    const acc = new Array<number>(bins).fill(0);
    for (const h of hists) (h[key] as number[]).forEach((c, i) => (acc[i] += c));
    const n = acc.reduce((a, b) => a + b, 0);
    return { acc: acc.map((c) => (n ? c / n : 0)), n };
  };
  const w = Math.E / bins;
  const x = Array.from({ length: bins }, (_, i) => (i + 0.5) * w);
  const series: Series[] = (['clean', 'hard', 'noisy'] as const).map((k) => {
    const s = sum(k);
    const label = k === 'hard' ? 'hard clean' : k;
    return { name: `${label} (n=${s.n})`, x, y: s.acc };
  });
  return lineChart({ title, xLabel: 'σ* (bins over [0, e]; σ* = e means clamped "easy")', yLabel: 'fraction of group', series });
}

export function at(rows: Row[], method: string, metric: string, epoch: number): { mean: number; std: number; n: number } {
  return meanStd(rows.filter((r) => r.method === method && r.epoch === epoch && typeof r[metric] === 'number').map((r) => r[metric] as number));
}

export function f3(s: { mean: number; std: number; n: number }): string {
  return fmtStat(s.mean, s.std, s.n);
}

/** Per-seed values of `metric` at `epoch` for `method` (epoch rows of metrics.jsonl). */
export function bySeed(rows: Row[], method: string, metric: string, epoch: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const r of rows) if (r.method === method && r.epoch === epoch && typeof r[metric] === 'number') out.set(r.seed, r[metric] as number);
  return out;
}

/** The epoch where the seed-mean curve of `metric` peaks (first maximum; epoch 0 = initialisation excluded). */
export function peakEpoch(rows: Row[], method: string, metric: string): { epoch: number; mean: number } {
  const curve = curveSeries(rows, metric, 'epoch', [method])[0];
  let best = { epoch: NaN, mean: -Infinity };
  curve?.y.forEach((y, i) => {
    if (curve.x[i] > 0 && y > best.mean) best = { epoch: curve.x[i], mean: y };
  });
  return best;
}

const NOISE_TEXT = (cfg: Cfg) =>
  `\`sym-r\`: with probability r the label is replaced by a uniformly drawn *other* class (realised rate ≈ r). \`pair-r\`: with probability r the label c becomes c+1 mod C (for Fashion-MNIST mostly NOT a confusable pair: T-shirt→Trouser, Shirt→Sneaker, …). \`conf-r\`: every sample of a class in a confusable pair ${cfg.confusablePairs.map(([a, b]) => `${a}↔${b}`).join(', ')} (Fashion-MNIST: T-shirt/top↔Shirt, Pullover↔Coat) gets the other class of its pair with probability r; other classes stay clean, so the realised overall rate is ≈ r × their share (\`noise_rate\`).`;

export function report(input: ReportInput<Cfg>): ReportSection[] {
  const { results, rows, config: cfg } = input;
  const sections: ReportSection[] = [];
  const methods = results.methods.map((m) => ({ name: m, ...parseNoisyLabelMethod(m) }));
  const noises = [...new Set(methods.map((m) => m.noise))];
  const lastEpoch = Math.max(0, ...rows.filter((r) => typeof r.epoch === 'number').map((r) => r.epoch as number));
  const selectOn = cfg.lambdas.length > 1;
  const N = lastEpoch;

  sections.push({
    markdown: `## Setup and definitions

- **Data.** Training pool = the first ${cfg.trainLimit || 'all'} training images of \`${cfg.data}\`; labels corrupted per run (seeded by (seed, noise), identical for CE and SuperLoss). ${NOISE_TEXT(cfg)} A seeded ${Math.round(cfg.valFraction * 100)}% validation split is carved from the pool **with its noisy labels**; the test set is clean and never used for any choice.
- **Model/training.** MLP ${cfg.mlpHidden.join('-')} (ReLU, no dropout, no weight decay), ${cfg.optimizer}, lr ${cfg.lr} (${cfg.schedule}; not tuned, the same for every arm), batch ${cfg.batchSize}, ${cfg.epochs} epochs. CE and every SuperLoss candidate start from the same initialisation and batch order (seeded by the seed only).
- **SuperLoss.** SuperLoss(cross-entropy) with τ = ${cfg.tau === 'log' ? 'log C' : cfg.tau} (fixed), σ* in closed form (Lambert W), gradient through ℓ only.
- **λ selection.** ${selectOn ? `For every (noise, seed) one SuperLoss model per λ ∈ {${cfg.lambdas.join(', ')}} is trained for the full ${cfg.epochs} epochs; the λ with the highest **final-epoch accuracy on the noisy validation split** is selected, and that model's numbers are the run's numbers (no retraining: the selection run is the final run). Validation labels are noisy; for symmetric noise (r < (C−1)/C) and pair/confusable flips (r < 0.5) the expected noisy-validation accuracy is an increasing function of the clean accuracy, so it ranks models like clean accuracy would (with more variance).` : `λ is fixed to ${cfg.lambdas[0]} (config \`lambdas\` has one value: no selection in this run). The quick preset fixes λ = 0.1 to stay within its time budget; that value was picked during development from a seed-1 run (it was not a validation-only choice). The full preset selects λ ∈ {${DEFAULT_LAMBDAS.join(', ')}} on the noisy validation split.`} CE has no λ; its test-free comparison point is \`test_acc_es\` (early stopping on the noisy validation split).
- **AUROC metrics** (after every epoch, and at epoch 0 = initialisation; per-sample CE on the *noisy* labels for the whole training split in eval mode; clean = positive, noisy = negative). \`negloss_auroc\` = AUROC of −loss (tie-free; **the verdicts below use it**). \`sigma_auroc\` = AUROC of σ*(ℓ; τ, λ): for SuperLoss λ = the run's λ, for CE **σ* is computed from CE's own losses with λ = ${ceSigmaLambda(cfg)}**. σ* is decreasing in ℓ but clamps at e for every ℓ < τ − 2λ/e (≈ ${(Math.log(10) - (2 * ceSigmaLambda(cfg)) / Math.E).toFixed(2)} for τ = log 10, λ = ${ceSigmaLambda(cfg)}), and clamped clean/noisy pairs count as ties (½) — so once noisy labels are memorised (low loss) the σ-AUROC drops towards 0.5 even where −loss still ranks them; \`noisy_sigma_clamped\` = share of noisy samples at the clamp.
- **Hard clean**: a clean training sample whose reference loss is in the top ${Math.round((1 - cfg.hardQuantile) * 100)}% of the clean samples' reference losses (\`hardloss\`) **or** whose class is one of the confusable classes ${cfg.hardClasses.join(', ')} (Fashion-MNIST: T-shirt/top, Pullover, Coat, Shirt; \`hardclass\`). The reference MLP is trained on the **true** labels within each run (same seed, ${cfg.refEpochs} epochs, Adam) with 2-fold cross-fitting, so difficulty is measured out of sample. \`*_hard\` = hard clean (the union) vs noisy; \`*_hardloss\` / \`*_hardclass\` = each part vs noisy.
- **Other metrics.** \`noisy_fit\`: fraction of noisy training samples predicted as their (wrong) noisy label (memorisation). \`test_acc\`: clean test accuracy at the last epoch; \`test_acc_es\`: at the epoch of best noisy-validation accuracy (early stopping).
- **Verdicts** use paired differences over seeds (SuperLoss − CE, same seed ⇒ same noise, split and init) or within-run differences, with Student-t 95% confidence intervals (df = n − 1); a difference is called only when its CI excludes 0.
`,
  });

  // λ table.
  const sel = rows.filter((r) => typeof r.select_lambda === 'number');
  if (sel.length) {
    const lines = ['## Chosen λ per (noise, seed)\n', selectOn ? 'Final-epoch noisy-validation accuracy per candidate (the selection signal); the chosen λ is **bold**. Test accuracy is shown for transparency only, it was not used.\n' : 'One candidate only (no selection).\n'];
    lines.push(`| method | seed | ${cfg.lambdas.map((l) => `val_acc λ=${l}`).join(' | ')} | chosen λ | ${cfg.lambdas.map((l) => `test_acc λ=${l}`).join(' | ')} |`);
    lines.push(`|---|---:|${cfg.lambdas.map(() => '---:').join('|')}|---:|${cfg.lambdas.map(() => '---:').join('|')}|`);
    const order = (r: Row) => results.methods.indexOf(r.method) * 1e6 + r.seed;
    const keys = [...new Set([...sel].sort((x, y) => order(x) - order(y)).map((r) => `${r.method}#${r.seed}`))];
    for (const k of keys) {
      const rs = sel.filter((r) => `${r.method}#${r.seed}` === k);
      const chosen = rs.find((r) => r.chosen === true);
      const cell = (l: number, key: string) => {
        const r = rs.find((x) => x.select_lambda === l);
        if (!r) return '';
        const v = (r[key] as number).toFixed(4);
        return key === 'select_val_acc' && r === chosen ? `**${v}**` : v;
      };
      lines.push(`| ${rs[0].method} | ${rs[0].seed} | ${cfg.lambdas.map((l) => cell(l, 'select_val_acc')).join(' | ')} | ${chosen?.select_lambda ?? ''} | ${cfg.lambdas.map((l) => cell(l, 'select_test_acc')).join(' | ')} |`);
    }
    sections.push({ markdown: lines.join('\n') + '\n' });
  }

  // The generated AUROC table: every figure names its metric and epoch.
  const runVal = (m: string, k: string) => new Map(results.runs.filter((r) => r.method === m && typeof r.metrics[k] === 'number').map((r) => [r.seed, r.metrics[k]]));
  const au: string[] = [
    `## AUROC table (mean ± std over seeds; metric @ epoch, epoch 0 = initialisation, ${N} = last)\n`,
    `| method | test_acc @${N} | negloss_auroc @0 | negloss_auroc @1 | negloss_auroc peak of mean (epoch) | negloss_auroc @${N} | sigma_auroc @1 | sigma_auroc @${N} | noisy_sigma_clamped @${N} | negloss_auroc_hard @1 | negloss_auroc_hard @${N} | negloss_auroc_hardloss @${N} | negloss_auroc_hardclass @${N} | noisy_fit @${N} |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const m of methods) {
    const pk = peakEpoch(rows, m.name, 'negloss_auroc');
    const c = (k: string, e: number) => f3(at(rows, m.name, k, e));
    au.push(`| ${m.name} | ${c('test_acc', N)} | ${c('negloss_auroc', 0)} | ${c('negloss_auroc', 1)} | ${Number.isFinite(pk.epoch) ? `${pk.mean.toFixed(4)} (${pk.epoch})` : ''} | ${c('negloss_auroc', N)} | ${c('sigma_auroc', 1)} | ${c('sigma_auroc', N)} | ${c('noisy_sigma_clamped', N)} | ${c('negloss_auroc_hard', 1)} | ${c('negloss_auroc_hard', N)} | ${c('negloss_auroc_hardloss', N)} | ${c('negloss_auroc_hardclass', N)} | ${c('noisy_fit', N)} |`);
  }
  au.push(`\nσ for CE runs uses λ = ${ceSigmaLambda(cfg)}; for SuperLoss runs the run's λ.\n`);

  // Paired SuperLoss − CE per noise.
  au.push(`## SuperLoss − CE, paired by seed (mean difference, Student-t 95% CI)\n`);
  au.push(`| noise | test_acc @${N} | test_acc_es | negloss_auroc @1 | negloss_auroc @${N} | sigma_auroc @${N} | noisy_fit @${N} |`);
  au.push('|---|---:|---:|---:|---:|---:|---:|');
  const pairs: Record<string, { ce: string; sl: string }> = {};
  for (const noise of noises) {
    const ce = methods.find((m) => m.noise === noise && m.loss === 'ce')?.name;
    const sl = methods.find((m) => m.noise === noise && m.loss === 'superloss')?.name;
    if (!ce || !sl) continue;
    pairs[noise] = { ce, sl };
    const ep = (k: string, e: number) => ciCell(pairBySeed(bySeed(rows, sl, k, e), bySeed(rows, ce, k, e)));
    const fin = (k: string) => ciCell(pairBySeed(runVal(sl, k), runVal(ce, k)));
    au.push(`| ${noise} | ${fin('test_acc')} | ${fin('test_acc_es')} | ${ep('negloss_auroc', 1)} | ${ep('negloss_auroc', N)} | ${ep('sigma_auroc', N)} | ${ep('noisy_fit', N)} |`);
  }

  // Hard-clean gap within runs.
  au.push(`\n## Hard clean vs all clean: negloss_auroc − negloss_auroc_<group>, paired within runs (Student-t 95% CI)\n`);
  au.push(`| method | hard (union) @1 | hard (union) @${N} | hardloss @1 | hardclass @1 | hardclass @${N} |`);
  au.push('|---|---:|---:|---:|---:|---:|');
  const gap = (m: string, g: string, e: number) => pairBySeed(bySeed(rows, m, 'negloss_auroc', e), bySeed(rows, m, `negloss_auroc_${g}`, e));
  for (const m of methods) au.push(`| ${m.name} | ${ciCell(gap(m.name, 'hard', 1))} | ${ciCell(gap(m.name, 'hard', N))} | ${ciCell(gap(m.name, 'hardloss', 1))} | ${ciCell(gap(m.name, 'hardclass', 1))} | ${ciCell(gap(m.name, 'hardclass', N))} |`);
  sections.push({ markdown: au.join('\n') + '\n' });

  // Per-noise curves and σ histograms.
  const charts: Chart[] = [];
  const md: string[] = ['## Curves per noise setting (mean ± std over seeds)\n'];
  for (const noise of noises) {
    const ms = methods.filter((m) => m.noise === noise).map((m) => m.name);
    const safe = noise.replace(/[^A-Za-z0-9.-]/g, '_');
    md.push(`### ${noise}\n`);
    const acc = { file: `charts/${safe}-test_acc.svg`, title: `${noise}: test accuracy per epoch`, svg: lineChart({ title: `${noise}: clean test accuracy per epoch`, xLabel: 'epoch', yLabel: 'test_acc', series: curveSeries(rows, 'test_acc', 'epoch', ms) }) };
    const aurocSeries = ['negloss_auroc', 'negloss_auroc_hard', 'sigma_auroc'].flatMap((metric) => curveSeries(rows, metric, 'epoch', ms).map((s) => ({ ...s, name: `${s.name} ${metric}` })));
    const auc = { file: `charts/${safe}-sigma_auroc.svg`, title: `${noise}: AUROC per epoch`, svg: lineChart({ title: `${noise}: AUROC of −loss / σ* (clean or hard-clean vs noisy)`, xLabel: 'epoch (0 = init)', yLabel: 'AUROC', series: aurocSeries }) };
    const fitc = { file: `charts/${safe}-noisy_fit.svg`, title: `${noise}: memorisation per epoch`, svg: lineChart({ title: `${noise}: noisy samples predicted as their noisy label`, xLabel: 'epoch', yLabel: 'noisy_fit', series: curveSeries(rows, 'noisy_fit', 'epoch', ms) }) };
    charts.push(acc, auc, fitc);
    md.push(`![${acc.title}](${acc.file})\n`, `![${auc.title}](${auc.file})\n`, `![${fitc.title}](${fitc.file})\n`);
    for (const m of ms) {
      const hs = rows.filter((r) => r.method === m && typeof r.hist_epoch === 'number');
      const epochs = [...new Set(hs.map((h) => h.hist_epoch as number))].sort((a, b) => a - b);
      for (const e of epochs) {
        const group = hs.filter((h) => h.hist_epoch === e);
        const bins = group[0].hist_bins as number;
        const c = { file: `charts/${m.replace(/[^A-Za-z0-9.-]/g, '_')}-sigma-hist-epoch${e}.svg`, title: `${m}: σ* histogram, epoch ${e}`, svg: histChart(`${m}: σ* at epoch ${e} (all seeds, λ=${[...new Set(group.map((g) => g.hist_lambda))].join('/')})`, group, bins) };
        charts.push(c);
        md.push(`![${c.title}](${c.file})\n`);
      }
    }
  }
  sections.push({ markdown: md.join('\n'), charts });
  sections.push({ markdown: verdicts(rows, results.runs, methods, noises, pairs, N) });
  return sections;
}

type RunRow = ReportInput<Cfg>['results']['runs'][number];

/** The generated statement about loss as a difficulty measure; every clause is conditional on a CI or a stated threshold. */
function verdicts(rows: Row[], runs: RunRow[], methods: { name: string; loss: string; noise: string }[], noises: string[], pairs: Record<string, { ce: string; sl: string }>, N: number): string {
  const say: string[] = ['## Is the loss a valid difficulty measure? (generated from the tables above)\n'];
  const mean = (m: string, k: string, e: number) => at(rows, m, k, e).mean;
  const grade = (x: number) => (x >= 0.85 ? 'a good' : x >= 0.65 ? 'a moderate' : 'a poor');
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  for (const noise of noises) {
    const v: string[] = [];
    const ce = pairs[noise]?.ce ?? methods.find((m) => m.noise === noise && m.loss === 'ce')?.name;
    const sl = pairs[noise]?.sl ?? methods.find((m) => m.noise === noise && m.loss === 'superloss')?.name;
    const ref = ce ?? sl;
    if (!ref || !Number.isFinite(mean(ref, 'negloss_auroc', 1))) continue;
    const who = ref === ce ? 'CE' : 'SuperLoss';
    const n0 = againstConstant([...bySeed(rows, ref, 'negloss_auroc', 0).values()], 0.5);
    v.push(`at initialisation negloss_auroc @0 = ${(0.5 + n0.meanDiff).toFixed(3)} (${ciSign(n0) === 0 ? 'CI includes chance, 0.5' : `differs from 0.5: ${ciCell(n0, 3)}`})`);
    const pk = peakEpoch(rows, ref, 'negloss_auroc');
    v.push(`under ${who} the loss is ${grade(pk.mean)} noise detector at its best (negloss_auroc peak of mean ${pk.mean.toFixed(3)} @${pk.epoch}; @1 ${mean(ref, 'negloss_auroc', 1).toFixed(3)})`);
    if (ce) {
      const pce = peakEpoch(rows, ce, 'negloss_auroc');
      const decline = pairBySeed(bySeed(rows, ce, 'negloss_auroc', N), bySeed(rows, ce, 'negloss_auroc', pce.epoch));
      if (pce.epoch === N) v.push(`under CE negloss_auroc is highest at the last epoch (no decline)`);
      else if (ciSign(decline) < 0) v.push(`under CE it declines from @${pce.epoch} to @${N} by ${(-decline.meanDiff).toFixed(3)} (CI ${ciCell(decline, 3)}) while ${pct(mean(ce, 'noisy_fit', N))} of noisy labels get fitted`);
      else v.push(`under CE negloss_auroc @${N} vs @${pce.epoch}: ${ciCell(decline, 3)} — no resolved decline`);
      if (pce.mean < 0.65) v.push(`**for this noise loss-based difficulty fails under CE** (peak ${pce.mean.toFixed(3)} < 0.65): the flipped labels do not stand out by their loss`);
    }
    if (ce && sl) {
      const dl = pairBySeed(bySeed(rows, sl, 'negloss_auroc', N), bySeed(rows, ce, 'negloss_auroc', N));
      const s = ciSign(dl);
      v.push(s > 0 ? `SuperLoss keeps the loss a better detector at the last epoch (negloss_auroc @${N} SL − CE ${ciCell(dl, 3)}; noisy labels fitted ${pct(mean(sl, 'noisy_fit', N))} vs ${pct(mean(ce, 'noisy_fit', N))})` : s < 0 ? `SuperLoss ends with a LOWER negloss_auroc @${N} than CE (${ciCell(dl, 3)})` : `SuperLoss vs CE negloss_auroc @${N}: ${ciCell(dl, 3)} — not resolved`);
      const acc = pairBySeed(new Map(runs.filter((r) => r.method === sl).map((r) => [r.seed, r.metrics.test_acc])), new Map(runs.filter((r) => r.method === ce).map((r) => [r.seed, r.metrics.test_acc])));
      const es = pairBySeed(new Map(runs.filter((r) => r.method === sl).map((r) => [r.seed, r.metrics.test_acc_es])), new Map(runs.filter((r) => r.method === ce).map((r) => [r.seed, r.metrics.test_acc_es])));
      const word = (t: typeof acc) => (ciSign(t) > 0 ? 'SuperLoss higher' : ciSign(t) < 0 ? 'SuperLoss lower' : 'not resolved');
      v.push(`test accuracy SL − CE: last epoch ${ciCell(acc, 4)} (${word(acc)}); early-stopped ${ciCell(es, 4)} (${word(es)})`);
    }
    for (const m of [ce, sl].filter((x): x is string => !!x)) {
      const g1 = pairBySeed(bySeed(rows, m, 'negloss_auroc', 1), bySeed(rows, m, 'negloss_auroc_hard', 1));
      const gc = pairBySeed(bySeed(rows, m, 'negloss_auroc', 1), bySeed(rows, m, 'negloss_auroc_hardclass', 1));
      const gl = pairBySeed(bySeed(rows, m, 'negloss_auroc', 1), bySeed(rows, m, 'negloss_auroc_hardloss', 1));
      const part = (t: typeof g1, name: string) => `${name} ${ciCell(t, 3)} (${ciSign(t) > 0 ? 'hard clean harder to separate' : ciSign(t) < 0 ? 'hard clean easier to separate' : 'not resolved'})`;
      const hardN = againstConstant([...bySeed(rows, m, 'negloss_auroc_hardloss', N).values()], 0.5);
      v.push(`\`${m}\` @1, negloss_auroc (clean vs noisy) − (hard clean vs noisy): ${part(g1, 'union')}, ${part(gl, 'top-10%-loss part')}, ${part(gc, 'confusable-class part')}` +
        (ciSign(hardN) < 0 ? `; at @${N} the top-loss hard clean samples rank BELOW the noisy ones (negloss_auroc_hardloss ${(0.5 + hardN.meanDiff).toFixed(3)}, CI below 0.5): a loss-based curriculum would down-weight them first` : ''));
    }
    say.push(`- **${noise}**: ${v.join('; ')}.`);
  }
  say.push(`\nσ* is a decreasing function of the loss (for fixed τ, λ), so these are statements about the per-sample loss as a difficulty measure; the σ-AUROC columns differ from the −loss ones only through the clamp at e (ties).\n`);
  return say.join('\n');
}
