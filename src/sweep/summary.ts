import { join } from 'node:path';
import type { Results } from '../experiments/types.js';
import { fmtStat } from '../report/report.js';
import { barChart, lineChart } from '../report/svg.js';
import { writeFileAtomic } from '../util/fs.js';
import type { SweepPlan } from './plan.js';

export interface PointResults {
  label: string;
  dir: string;
  assign: { key: string; value: string }[];
  results: Results | null;
}

/**
 * The sweep's summary: the primary metric (mean ± std over seeds, n) for every config point × method, as
 * summary.md, summary.json and a chart (a line over the grid value when the grid has one numeric axis, else
 * bars). The metric is `metric` or the experiment's declared primary metric.
 */
export function writeSweepSummary(outDir: string, plan: SweepPlan, points: PointResults[], metric?: string): string {
  const done = points.filter((p) => p.results);
  const first = done[0]?.results;
  const main = metric ?? first?.metrics?.primary ?? (first ? Object.keys(first.summary[first.methods[0]] ?? {})[0] : undefined) ?? 'n/a';
  const methods = [...new Set(done.flatMap((p) => p.results!.methods))];
  const stat = (p: PointResults, m: string) => p.results?.summary[m]?.[main];
  const cell = (p: PointResults, m: string) => {
    const s = stat(p, m);
    return s ? `${fmtStat(s.mean, s.std, s.n)} (n=${s.n})` : p.results ? '' : 'pending';
  };
  const keys = plan.axes.map((a) => a.key);
  const head = `| ${[...(keys.length ? keys : ['point']), ...methods].join(' | ')} |\n|${[...(keys.length ? keys : ['point']).map(() => '---'), ...methods.map(() => '---:')].join('|')}|\n`;
  const body = points
    .map((p) => `| ${[...(keys.length ? p.assign.map((a) => a.value) : [p.label]), ...methods.map((m) => cell(p, m))].join(' | ')} |`)
    .join('\n');
  const table = head + body + '\n';

  const numeric = plan.axes.length === 1 && plan.axes[0].values.every((v) => Number.isFinite(Number(v)));
  let svg: string;
  if (numeric) {
    const xs = plan.axes[0].values.map(Number);
    const logX = xs.every((x) => x > 0) && Math.max(...xs) / Math.min(...xs) >= 100;
    const series = methods.map((m) => {
      const pts = done.map((p) => ({ x: Number(p.assign[0].value), s: stat(p, m) })).filter((q) => q.s).sort((a, b) => a.x - b.x);
      return { name: m, x: pts.map((q) => (logX ? Math.log10(q.x) : q.x)), y: pts.map((q) => q.s!.mean), band: pts.map((q) => q.s!.std) };
    });
    svg = lineChart({ title: `${main} by ${keys[0]} (mean ± std over seeds)`, xLabel: logX ? `log10(${keys[0]})` : keys[0], yLabel: main, series });
  } else {
    const bars = done.flatMap((p) => methods.filter((m) => stat(p, m)).map((m) => ({ label: `${p.label} ${m}`, s: stat(p, m)! })));
    svg = barChart({ title: `${main} by config point and method (mean ± std)`, yLabel: main, labels: bars.map((b) => b.label), values: bars.map((b) => b.s.mean), errors: bars.map((b) => b.s.std) });
  }
  const chart = `charts/sweep-${main.replace(/[^A-Za-z0-9._-]/g, '_')}.svg`;
  writeFileAtomic(join(outDir, chart), svg);
  const md = [
    `# Sweep ${plan.id}: ${plan.experiment}${plan.quick ? ' (quick)' : ''}\n`,
    `${done.length}/${points.length} config point(s) finished; each point is a run directory (config.json, metrics.jsonl, results.json, report.md).\n`,
    `## ${main} (mean ± std over seeds)\n`,
    table,
    `![${main}](${chart})\n`,
    '## Points\n',
    ...points.map((p) => `- \`${p.label}\`: [${p.label}/report.md](${encodeURI(p.label)}/report.md)${p.results ? '' : ' (not finished)'}`),
  ].join('\n');
  writeFileAtomic(join(outDir, 'summary.md'), md + '\n');
  writeFileAtomic(
    join(outDir, 'summary.json'),
    JSON.stringify({ sweep: plan.id, experiment: plan.experiment, metric: main, points: points.map((p) => ({ label: p.label, dir: p.label, assign: p.assign, summary: p.results?.summary ?? null })) }, null, 2) + '\n',
  );
  return table;
}
