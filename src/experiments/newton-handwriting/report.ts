/** The newton-handwriting report sections: paired differences against `baseline` with the paper's claims, and the reliability chart. */
import { fmtStat } from '../../report/report.js';
import { lineChart } from '../../report/svg.js';
import { meanStd, pairedTTest } from '../../stats/index.js';
import type { Chart, MetricRow, ReportSection, Results } from '../types.js';

const REPORT_METRICS = ['char_err', 'top3_err', 'word_err', 'word_err_nodict', 'seg_err', 'reliability'];

/** The paper's predicted direction of each arm's effect (Yaeger, Lyon & Webb, NIPS 9, 1996), vs baseline. */
const CLAIMS: Record<string, string> = {
  '+normouterr': 'char_err flat/worse, word_err clearly lower (≈ −30 % relative)',
  '+freqbal': 'char_err flat/worse, word_err lower',
  '+erremph': 'char_err flat/worse, word_err lower (rare styles)',
  '+negative': 'char_err flat/worse, word_err lower via fewer merge/split (seg_err) errors',
  '+warp': 'better generalisation to unseen writers (char_err and word_err lower)',
  all: 'word_err much lower',
  'all-fixed-lr': '(vs all) annealing is the one change that also lowers char_err',
};

export function newtonReport({ results, rows }: { results: Results; rows: (MetricRow & { method: string; seed: number })[] }): ReportSection[] {
  const sections: ReportSection[] = [];
  const base = 'baseline';
  const by = (m: string, k: string) => results.runs.filter((r) => r.method === m).sort((a, b) => a.seed - b.seed).map((r) => r.metrics[k]);
  if (results.methods.includes(base)) {
    const lines = ['## Paired differences against `baseline` (method − baseline, mean and 95 % t-interval over seeds)\n', `| method | ${REPORT_METRICS.join(' | ')} | paper's claim |`, `|---|${REPORT_METRICS.map(() => '---:').join('|')}|---|`];
    for (const m of results.methods.filter((x) => x !== base)) {
      const cells = REPORT_METRICS.map((k) => {
        const t = pairedTTest(by(m, k), by(base, k));
        if (!t.n) return 'n/a';
        return t.n > 1 ? `${t.meanDiff.toFixed(4)} [${t.ci95[0].toFixed(4)}, ${t.ci95[1].toFixed(4)}]` : t.meanDiff.toFixed(4);
      });
      lines.push(`| ${m} | ${cells.join(' | ')} | ${CLAIMS[m] ?? ''} |`);
    }
    const wb = meanStd(by(base, 'word_err'));
    lines.push('', `Relative word-error change vs baseline (mean ${fmtStat(wb.mean, wb.std, wb.n)}): ${results.methods.filter((x) => x !== base).map((m) => `${m} ${((100 * (meanStd(by(m, 'word_err')).mean - wb.mean)) / wb.mean).toFixed(1)} %`).join('; ')}.`);
    sections.push({ markdown: lines.join('\n') + '\n' });
  }
  const charts: Chart[] = [];
  const series = results.methods
    .map((m) => {
      const rs = rows.filter((r) => r.method === m && r.kind === 'diagnostic' && r.name === 'reliability') as unknown as { meanY: number[]; empiricalP: number[]; count: number[] }[];
      if (!rs.length) return null;
      const k = rs[0].meanY.length;
      const x: number[] = [];
      const y: number[] = [];
      for (let i = 0; i < k; i++) {
        const n = rs.reduce((s, r) => s + r.count[i], 0);
        if (!n) continue;
        x.push(rs.reduce((s, r) => s + (r.count[i] ? r.meanY[i] * r.count[i] : 0), 0) / n);
        y.push(rs.reduce((s, r) => s + (r.count[i] ? r.empiricalP[i] * r.count[i] : 0), 0) / n);
      }
      return { name: m, x, y };
    })
    .filter((s): s is { name: string; x: number[]; y: number[] } => s !== null);
  if (series.length) {
    const cfgA = (rows.find((r) => r.kind === 'diagnostic' && r.name === 'reliability' && typeof r.A === 'number' && r.A < 1)?.A as number | undefined) ?? null;
    const grid = Array.from({ length: 21 }, (_, i) => i / 20);
    const curves = [...series, { name: 'y = p (A = 1)', x: grid, y: grid }];
    if (cfgA) curves.push({ name: `y = p/(A−Ap+p), A=${cfgA.toFixed(3)} (as p)`, x: grid.map((p) => p / (cfgA - cfgA * p + p)), y: grid });
    charts.push({ file: 'charts/newton-reliability.svg', title: 'reliability: empirical p against output y', svg: lineChart({ title: 'empirical P(class) vs output y (pooled over seeds)', xLabel: 'output y', yLabel: 'empirical p', series: curves }) });
    sections.push({ markdown: '## Reliability\n\nEmpirical probability that an output unit is the true class, against its output value y (10 bins, test positives, pooled over seeds). NormOutErr arms should follow y = p/(A − Ap + p), i.e. lie below the diagonal; `reliability` in the table is the calibration error after the inverse map p = yA/(yA + 1 − y).\n\n![reliability](charts/newton-reliability.svg)\n', charts });
  }
  return sections;
}
