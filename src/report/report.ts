import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { meanStd } from '../stats/index.js';
import type { Results, RunRecord, SummaryStat } from '../results/index.js';
import { barChart, lineChart, type Series } from './svg.js';
import type { Chart, ReportDoc, ReportRow } from './types.js';

type Row = ReportRow;

/** Formats one metric value: integers as integers, others with 4 decimals; null/NaN as n/a. */
export function fmtValue(v: number | undefined): string {
  if (v === undefined) return '';
  if (!Number.isFinite(v)) return 'n/a';
  return Number.isInteger(v) ? String(v) : v.toFixed(4);
}

/** Formats a summary stat: integer metrics (counts, sizes) without decimals, others by magnitude. */
export function fmtSummary(s: SummaryStat): string {
  if (s.integer) {
    const mean = Number.isInteger(s.mean) ? String(s.mean) : s.mean.toFixed(1);
    return s.n > 1 && s.std !== 0 ? `${mean} ± ${s.std.toFixed(1)}` : mean;
  }
  return fmtStat(s.mean, s.std, s.n);
}

/** Formats mean ± std with a precision suited to the metric's magnitude. */
export function fmtStat(mean: number, std: number, n: number): string {
  if (!Number.isFinite(mean)) return 'n/a';
  const mag = Math.abs(mean);
  const d = mag >= 1000 ? 0 : mag >= 100 ? 1 : mag >= 1 ? 3 : 4;
  const s = n > 1 && Number.isFinite(std) ? ` ± ${std.toFixed(d)}` : '';
  return `${mean.toFixed(d)}${s}`;
}

/** The methods × metrics summary table (mean ± std over seeds) as Markdown. */
export function summaryTable(results: Results, metrics?: string[]): string {
  const methods = results.methods.filter((m) => results.summary[m]);
  const keys = metrics ?? [...new Set(methods.flatMap((m) => Object.keys(results.summary[m])))];
  const head = `| method | ${keys.join(' | ')} |\n|---|${keys.map(() => '---:').join('|')}|\n`;
  const body = methods
    .map((m) => `| ${m} | ${keys.map((k) => { const s = results.summary[m][k]; return s ? fmtSummary(s) : ''; }).join(' | ')} |`)
    .join('\n');
  return head + body + '\n';
}

/**
 * Per-epoch curves of `metric`, averaged over seeds per method (±std band). Rows need `epoch` (or `xKey`).
 */
export function curveSeries(rows: Row[], metric: string, xKey = 'epoch', methods?: string[]): Series[] {
  const by = new Map<string, Map<number, number[]>>();
  for (const r of rows) {
    const x = r[xKey];
    const y = r[metric];
    if (typeof x !== 'number' || typeof y !== 'number') continue;
    if (!by.has(r.method)) by.set(r.method, new Map());
    const m = by.get(r.method)!;
    m.set(x, [...(m.get(x) ?? []), y]);
  }
  const order = methods ?? [...by.keys()];
  return order
    .filter((m) => by.has(m))
    .map((m) => {
      const pts = [...by.get(m)!.entries()].sort((a, b) => a[0] - b[0]);
      const st = pts.map(([, ys]) => meanStd(ys));
      return { name: m, x: pts.map(([x]) => x), y: st.map((s) => s.mean), band: st.map((s) => s.std) };
    });
}

/** Paired t-tests of each method against the declared baseline on the primary metric (derived step). */
export function pairedSection(results: Results): string {
  const paired = results.derived.paired_vs_baseline as Record<string, { vs: string; metric: string; meanDiff: number; ci95: [number, number]; p: number; n: number }> | undefined;
  if (!paired || !Object.keys(paired).length) return '';
  const { primary, baseline } = results.metrics;
  const lines = [`\nPaired against \`${baseline}\` on \`${primary}\` (same seeds; t-based 95% CI, df = n − 1):\n`, '| method | Δ mean | 95% CI | p | n |', '|---|---:|---|---:|---:|'];
  const entries = Object.entries(paired);
  const unpaired = entries.filter(([, t]) => !(t.n > 0)).map(([m]) => m);
  const withPairs = entries.filter(([, t]) => t.n > 0);
  // A method none of whose seeds has the metric on both sides (e.g. Δm without the single-task arm) gets a line, not a row of NaN.
  const note = unpaired.length ? `\nNo seed has \`${primary}\` for both \`${baseline}\` and ${unpaired.map((m) => `\`${m}\``).join(', ')}: not compared.\n` : '';
  if (!withPairs.length) return note;
  for (const [m, t] of withPairs) lines.push(`| ${m} | ${t.meanDiff.toFixed(4)} | [${t.ci95[0].toFixed(4)}, ${t.ci95[1].toFixed(4)}] | ${t.p.toFixed(3)} | ${t.n} |`);
  return lines.join('\n') + '\n' + note;
}

/** Every run's final metrics; columns are the union of all runs' metric keys (a run without a key gets a blank). */
export function runsTable(runs: RunRecord[]): string {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics)))];
  const lines = ['| method | seed | ' + keys.join(' | ') + ' | wall s |', '|---|---:|' + keys.map(() => '---:').join('|') + '|---:|'];
  for (const r of runs) lines.push(`| ${r.method} | ${r.seed} | ${keys.map((k) => fmtValue(r.metrics[k])).join(' | ')} | ${r.wallSeconds.toFixed(1)} |`);
  return lines.join('\n') + '\n';
}

/** Writes report.md and charts/*.svg into the run directory (atomically, file by file). */
export function writeReport(doc: ReportDoc): string {
  const { results, rows, runDir } = doc;
  const charts: Chart[] = [];
  const md: string[] = [];
  md.push(`# ${results.experiment}${results.quick ? ' (quick)' : ''}\n`);
  md.push(`${doc.description}.\n`);
  md.push(`- backend: \`${results.backend}\`; seeds: ${results.seeds.join(', ')}; wall time ${results.wallSeconds.toFixed(1)} s`);
  if (results.command) md.push(`- reproduce: \`${results.command}\``);
  md.push(`- resolved config: \`config.json\`; per-epoch metrics: \`metrics.jsonl\`; numbers: \`results.json\`\n`);
  md.push(`## Summary (mean ± std over ${results.seeds.length} seed${results.seeds.length > 1 ? 's' : ''})\n`);
  md.push(summaryTable(results));
  md.push(pairedSection(results));
  const main = results.metrics.primary;
  if (main) {
    const labels = results.methods.filter((m) => results.summary[m]?.[main]);
    charts.push({
      file: `charts/summary-${main}.svg`,
      title: `${main} by method`,
      svg: barChart({ title: `${main} (mean ± std)`, yLabel: main, labels, values: labels.map((m) => results.summary[m][main].mean), errors: labels.map((m) => results.summary[m][main].std) }),
    });
  }
  const epochMetrics = [...new Set(rows.filter((r) => typeof r.epoch === 'number').flatMap((r) => Object.keys(r)))].filter(
    (k) => !['method', 'seed', 'epoch', 'step', 'epoch_seconds', 'lr'].includes(k) && rows.some((r) => typeof r[k] === 'number'),
  );
  for (const metric of epochMetrics.slice(0, 8)) {
    charts.push({
      file: `charts/curve-${metric}.svg`,
      title: `${metric} per epoch`,
      svg: lineChart({ title: `${metric} per epoch (mean ± std over seeds)`, xLabel: 'epoch', yLabel: metric, series: curveSeries(rows, metric, 'epoch', results.methods) }),
    });
  }
  const extraSections = doc.sections;
  md.push('\n## Charts\n');
  for (const c of charts) md.push(`![${c.title}](${c.file})\n`);
  for (const s of extraSections) {
    md.push('\n' + s.markdown.trim() + '\n');
    for (const c of s.charts ?? []) {
      charts.push(c);
      if (!s.markdown.includes(c.file)) md.push(`![${c.title}](${c.file})\n`);
    }
  }
  md.push('\n## Runs\n');
  md.push(runsTable(results.runs));
  for (const c of charts) writeFileAtomic(join(runDir, c.file), c.svg);
  const text = md.join('\n') + '\n';
  writeFileAtomic(join(runDir, 'report.md'), text);
  return text;
}
