import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { meanStd } from '../train/metrics.js';
import type { Chart, Experiment, MetricRow, ReportInput, Results } from '../experiments/types.js';
import { barChart, lineChart, type Series } from './svg.js';

type Row = MetricRow & { method: string; seed: number };

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
    .map((m) => `| ${m} | ${keys.map((k) => { const s = results.summary[m][k]; return s ? fmtStat(s.mean, s.std, s.n) : ''; }).join(' | ')} |`)
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

/** Writes report.md and charts/*.svg into the run directory (atomically, file by file). */
export async function writeReport<C extends { methods: string[]; seeds: number[] }>(exp: Experiment<C>, input: ReportInput<C>): Promise<string> {
  const { results, rows, runDir } = input;
  const charts: Chart[] = [];
  const md: string[] = [];
  md.push(`# ${results.experiment}${results.quick ? ' (quick)' : ''}\n`);
  md.push(`${exp.description}.\n`);
  md.push(`- backend: \`${results.backend}\`; seeds: ${results.seeds.join(', ')}; wall time ${results.wallSeconds.toFixed(1)} s`);
  if (results.command) md.push(`- reproduce: \`${results.command}\``);
  md.push(`- resolved config: \`config.json\`; per-epoch metrics: \`metrics.jsonl\`; numbers: \`results.json\`\n`);
  md.push(`## Summary (mean ± std over ${results.seeds.length} seed${results.seeds.length > 1 ? 's' : ''})\n`);
  md.push(summaryTable(results));
  const main = Object.keys(results.summary[results.methods[0]] ?? {})[0];
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
  const extraSections = (await exp.report?.(input)) ?? [];
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
  // Columns: every metric key of any run (methods may report different keys), blank where a run lacks one.
  const keys = [...new Set(results.runs.flatMap((r) => Object.keys(r.metrics)))];
  md.push('| method | seed | ' + keys.join(' | ') + ' | wall s |');
  md.push('|---|---:|' + keys.map(() => '---:').join('|') + '|---:|');
  for (const r of results.runs) {
    const cell = (v: number | undefined) => (v === undefined ? '' : Number.isInteger(v) ? String(v) : v.toFixed(4));
    md.push(`| ${r.method} | ${r.seed} | ${keys.map((k) => cell(r.metrics[k])).join(' | ')} | ${r.wallSeconds.toFixed(1)} |`);
  }
  for (const c of charts) writeFileAtomic(join(runDir, c.file), c.svg);
  const text = md.join('\n') + '\n';
  writeFileAtomic(join(runDir, 'report.md'), text);
  return text;
}
