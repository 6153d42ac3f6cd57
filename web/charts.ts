/** Learning curves with seed bands (uPlot, canvas), and the grouping of metric rows behind them. */
import uPlot from 'uplot';
import type { MetricsRow } from '../src/serve/types.js';

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

/** Keys of metric rows that are coordinates or bookkeeping, not curves. */
const NOT_CURVES = new Set(['method', 'seed', 'epoch', 'step', 'epoch_seconds', 'lr', 'kind', 'time', 'wallSeconds']);

/** Rows that are curve points: `kind` epoch or step (schema 1), or no kind (older runs). Selection and diagnostic rows are not. */
export const isCurveRow = (r: MetricsRow) => r.kind === undefined || r.kind === 'epoch' || r.kind === 'step';

/** The x key of a run's rows: `epoch` when rows have it, else `step`. */
export function xKeyOf(rows: MetricsRow[]): 'epoch' | 'step' {
  return rows.some((r) => isCurveRow(r) && typeof r.epoch === 'number') ? 'epoch' : 'step';
}

/** Numeric per-row metrics worth a chart, in first-seen order. */
export function curveMetrics(rows: MetricsRow[]): string[] {
  const xKey = xKeyOf(rows);
  const seen: string[] = [];
  for (const r of rows) {
    if (!isCurveRow(r) || typeof r[xKey] !== 'number') continue;
    for (const [k, v] of Object.entries(r)) if (!NOT_CURVES.has(k) && typeof v === 'number' && Number.isFinite(v) && !seen.includes(k)) seen.push(k);
  }
  return seen;
}

/** One curve: the per-x mean over seeds with a band of ±1 std, and how many seeds each point has. */
export interface Curve {
  label: string;
  x: number[];
  mean: number[];
  lo: number[];
  hi: number[];
  n: number[];
}

/**
 * Groups rows by `keyOf(row)` (e.g. the method) and averages `metric` over seeds at each x.
 * The band is mean ± sample std where n ≥ 2 (no band for a single seed).
 */
export function seedCurves(rows: MetricsRow[], metric: string, keyOf: (r: MetricsRow) => string | null): Curve[] {
  const xKey = xKeyOf(rows);
  const groups = new Map<string, Map<number, number[]>>();
  for (const r of rows) {
    const x = r[xKey];
    const y = r[metric];
    const key = keyOf(r);
    if (key === null || !isCurveRow(r) || typeof x !== 'number' || typeof y !== 'number' || !Number.isFinite(y)) continue;
    if (!groups.has(key)) groups.set(key, new Map());
    const g = groups.get(key)!;
    if (!g.has(x)) g.set(x, []);
    g.get(x)!.push(y);
  }
  return [...groups.entries()].map(([label, g]) => {
    const xs = [...g.keys()].sort((a, b) => a - b);
    const c: Curve = { label, x: xs, mean: [], lo: [], hi: [], n: [] };
    for (const x of xs) {
      const ys = g.get(x)!;
      const m = ys.reduce((a, b) => a + b, 0) / ys.length;
      const sd = ys.length > 1 ? Math.sqrt(ys.reduce((a, b) => a + (b - m) ** 2, 0) / (ys.length - 1)) : 0;
      c.mean.push(m);
      c.lo.push(m - sd);
      c.hi.push(m + sd);
      c.n.push(ys.length);
    }
    return c;
  });
}

/** uPlot's column data: a shared, sorted x column, then (mean, hi, lo) per curve with nulls where a curve has no point. */
function toData(curves: Curve[]): uPlot.AlignedData {
  const xs = [...new Set(curves.flatMap((c) => c.x))].sort((a, b) => a - b);
  const cols: (number | null)[][] = [];
  for (const c of curves) {
    const at = new Map(c.x.map((x, i) => [x, i]));
    for (const arr of [c.mean, c.hi, c.lo]) cols.push(xs.map((x) => (at.has(x) ? arr[at.get(x)!] : null)));
  }
  return [xs, ...cols] as uPlot.AlignedData;
}

const INTEGER_TICKS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000];

const alpha = (hex: string, a: number) => hex + Math.round(a * 255).toString(16).padStart(2, '0');

/**
 * A chart of `curves` inside `host` (a legend with each curve's seed count below it). Returns a handle whose
 * `update` redraws in place when the curves keep their labels, and rebuilds otherwise. The host carries
 * `data-series` (curves drawn) and `data-points` (x values) for tests and scripts.
 */
export class CurveChart {
  private plot: uPlot | null = null;
  private labels = '';
  private readonly canvasHost: HTMLDivElement;
  private readonly legend: HTMLDivElement;

  constructor(
    private readonly host: HTMLElement,
    private readonly title: string,
    private readonly xLabel: string,
  ) {
    host.classList.add('chart');
    this.canvasHost = document.createElement('div');
    this.legend = document.createElement('div');
    this.legend.className = 'legend';
    host.append(this.canvasHost, this.legend);
  }

  update(curves: Curve[]): void {
    const data = toData(curves);
    const labels = curves.map((c) => c.label).join('\u0000');
    if (this.plot && labels === this.labels) this.plot.setData(data);
    else this.build(curves, data, labels);
    this.host.dataset.series = String(curves.length);
    this.host.dataset.points = String(data[0].length);
    this.legend.replaceChildren(
      ...curves.map((c, i) => {
        const item = document.createElement('span');
        const sw = document.createElement('i');
        sw.style.background = PALETTE[i % PALETTE.length];
        const nMax = Math.max(0, ...c.n);
        const nMin = Math.min(...c.n);
        item.append(sw, `${c.label} (n=${nMin === nMax ? nMax : `${nMin}–${nMax}`})`);
        return item;
      }),
    );
  }

  private build(curves: Curve[], data: uPlot.AlignedData, labels: string): void {
    this.plot?.destroy();
    this.labels = labels;
    const series: uPlot.Series[] = [{ label: this.xLabel }];
    const bands: uPlot.Band[] = [];
    curves.forEach((c, i) => {
      const col = PALETTE[i % PALETTE.length];
      series.push({ label: c.label, stroke: col, width: 2, spanGaps: true, points: { show: false } });
      series.push({ label: `${c.label} +sd`, stroke: alpha(col, 0), width: 0, spanGaps: true, points: { show: false } });
      series.push({ label: `${c.label} −sd`, stroke: alpha(col, 0), width: 0, spanGaps: true, points: { show: false } });
      bands.push({ series: [1 + 3 * i + 1, 1 + 3 * i + 2], fill: alpha(col, 0.18) });
    });
    const width = 560;
    this.plot = new uPlot(
      {
        title: this.title,
        width,
        height: 260,
        series,
        bands,
        legend: { show: false },
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: false } },
        // Epochs and steps are whole numbers: no ticks between them.
        axes: [{ label: this.xLabel, incrs: (data[0] as number[]).every(Number.isInteger) ? INTEGER_TICKS : undefined }, {}],
      },
      data,
      this.canvasHost,
    );
  }

  destroy(): void {
    this.plot?.destroy();
    this.plot = null;
  }
}
