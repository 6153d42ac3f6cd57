/**
 * Hand-written SVG charts (no browser, no native deps): line charts with a ±std band, grouped bars with
 * error bars, and overlaid histograms. Deterministic output so reports diff cleanly.
 */
export interface Series {
  name: string;
  x: number[];
  y: number[];
  /** Optional ±band (e.g. std over seeds). */
  band?: number[];
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : Number(v.toPrecision(3)).toString());

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

interface Frame {
  W: number;
  H: number;
  L: number;
  R: number;
  T: number;
  B: number;
}

function axes(f: Frame, title: string, xLabel: string, yLabel: string, xr: [number, number], yr: [number, number], xTicks: number[], yTicks: number[], sx: (v: number) => number, sy: (v: number) => number): string {
  const parts: string[] = [];
  parts.push(`<rect x="0" y="0" width="${f.W}" height="${f.H}" fill="white"/>`);
  parts.push(`<text x="${f.W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (const t of yTicks) {
    parts.push(`<line x1="${f.L}" x2="${f.W - f.R}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${f.L - 6}" y="${sy(t) + 4}" text-anchor="end" font-size="11">${fmt(t)}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${f.H - f.B}" y2="${f.H - f.B + 4}" stroke="#333"/>`);
    parts.push(`<text x="${sx(t)}" y="${f.H - f.B + 16}" text-anchor="middle" font-size="11">${fmt(t)}</text>`);
  }
  parts.push(`<line x1="${f.L}" x2="${f.W - f.R}" y1="${f.H - f.B}" y2="${f.H - f.B}" stroke="#333"/>`);
  parts.push(`<line x1="${f.L}" x2="${f.L}" y1="${f.T}" y2="${f.H - f.B}" stroke="#333"/>`);
  parts.push(`<text x="${(f.L + f.W - f.R) / 2}" y="${f.H - 6}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(14,${(f.T + f.H - f.B) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`);
  void xr;
  void yr;
  return parts.join('');
}

function legend(names: string[], x: number, y: number): string {
  return names
    .map((n, i) => `<rect x="${x}" y="${y + i * 16}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="${x + 14}" y="${y + i * 16 + 9}" font-size="11">${esc(n)}</text>`)
    .join('');
}

/** A line chart; each series may carry a shaded ±band. */
export function lineChart(opts: { title: string; xLabel: string; yLabel: string; series: Series[]; width?: number; height?: number; logY?: boolean }): string {
  const f: Frame = { W: opts.width ?? 640, H: opts.height ?? 380, L: 60, R: 170, T: 30, B: 40 };
  const pts = opts.series.flatMap((s) => s.x.map((x, i) => [x, s.y[i], s.band?.[i] ?? 0]).filter((p) => Number.isFinite(p[1])));
  if (!pts.length) return `<svg xmlns="http://www.w3.org/2000/svg" width="${f.W}" height="60"><text x="10" y="30">${esc(opts.title)}: no data</text></svg>`;
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1] - p[2])), Math.max(...pts.map((p) => p[1] + p[2]))];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  x0 = Math.min(x0, x0);
  const sx = (v: number) => f.L + ((v - x0) / (x1 - x0)) * (f.W - f.L - f.R);
  const sy = (v: number) => f.T + (1 - (v - y0) / (y1 - y0)) * (f.H - f.T - f.B);
  const body: string[] = [axes(f, opts.title, opts.xLabel, opts.yLabel, [x0, x1], [y0, y1], niceTicks(x0, x1), niceTicks(y0, y1), sx, sy)];
  opts.series.forEach((s, i) => {
    const c = PALETTE[i % PALETTE.length];
    const idx = s.x.map((_, j) => j).filter((j) => Number.isFinite(s.y[j]));
    if (s.band && idx.length > 1) {
      const up = idx.map((j) => `${sx(s.x[j]).toFixed(1)},${sy(s.y[j] + (s.band![j] || 0)).toFixed(1)}`);
      const dn = idx.reverse().map((j) => `${sx(s.x[j]).toFixed(1)},${sy(s.y[j] - (s.band![j] || 0)).toFixed(1)}`);
      idx.reverse();
      body.push(`<polygon points="${[...up, ...dn].join(' ')}" fill="${c}" fill-opacity="0.15" stroke="none"/>`);
    }
    body.push(`<polyline points="${idx.map((j) => `${sx(s.x[j]).toFixed(1)},${sy(s.y[j]).toFixed(1)}`).join(' ')}" fill="none" stroke="${c}" stroke-width="2"/>`);
    if (idx.length <= 30) for (const j of idx) body.push(`<circle cx="${sx(s.x[j]).toFixed(1)}" cy="${sy(s.y[j]).toFixed(1)}" r="2.5" fill="${c}"/>`);
  });
  body.push(legend(opts.series.map((s) => s.name), f.W - f.R + 12, f.T + 4));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${f.W}" height="${f.H}" font-family="DejaVu Sans, Arial, sans-serif">${body.join('')}</svg>\n`;
}

/** Bars (one per label) with ±error whiskers, e.g. mean ± std of a metric per method. */
export function barChart(opts: { title: string; yLabel: string; labels: string[]; values: number[]; errors?: number[]; width?: number; height?: number }): string {
  const f: Frame = { W: opts.width ?? Math.max(360, 70 * opts.labels.length + 100), H: opts.height ?? 340, L: 60, R: 20, T: 30, B: 90 };
  const hi = Math.max(...opts.values.map((v, i) => v + (opts.errors?.[i] ?? 0)).filter(Number.isFinite));
  const lo = Math.min(0, ...opts.values.filter(Number.isFinite));
  const y0 = lo;
  const y1 = hi > y0 ? hi * 1.05 : y0 + 1;
  const sy = (v: number) => f.T + (1 - (v - y0) / (y1 - y0)) * (f.H - f.T - f.B);
  const bw = (f.W - f.L - f.R) / Math.max(1, opts.labels.length);
  const sx = (i: number) => f.L + bw * (i + 0.5);
  const body: string[] = [axes(f, opts.title, '', opts.yLabel, [0, 1], [y0, y1], [], niceTicks(y0, y1), sx, sy)];
  opts.labels.forEach((l, i) => {
    const v = opts.values[i];
    const c = PALETTE[i % PALETTE.length];
    if (Number.isFinite(v)) body.push(`<rect x="${(sx(i) - bw * 0.35).toFixed(1)}" y="${sy(Math.max(v, 0)).toFixed(1)}" width="${(bw * 0.7).toFixed(1)}" height="${Math.abs(sy(v) - sy(0)).toFixed(1)}" fill="${c}"/>`);
    const e = opts.errors?.[i];
    if (e && Number.isFinite(e)) body.push(`<line x1="${sx(i)}" x2="${sx(i)}" y1="${sy(v - e)}" y2="${sy(v + e)}" stroke="#000"/><line x1="${sx(i) - 5}" x2="${sx(i) + 5}" y1="${sy(v + e)}" y2="${sy(v + e)}" stroke="#000"/><line x1="${sx(i) - 5}" x2="${sx(i) + 5}" y1="${sy(v - e)}" y2="${sy(v - e)}" stroke="#000"/>`);
    body.push(`<text transform="translate(${sx(i)},${f.H - f.B + 12}) rotate(35)" font-size="11">${esc(l)}</text>`);
    if (Number.isFinite(v)) body.push(`<text x="${sx(i)}" y="${sy(v + (e ?? 0)) - 4}" text-anchor="middle" font-size="10">${fmt(v)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${f.W}" height="${f.H}" font-family="DejaVu Sans, Arial, sans-serif">${body.join('')}</svg>\n`;
}

/** Overlaid histograms (fractions per bin) of several samples on a shared range. */
export function histogramChart(opts: { title: string; xLabel: string; groups: { name: string; values: ArrayLike<number> }[]; bins?: number; range?: [number, number] }): string {
  const bins = opts.bins ?? 30;
  const all = opts.groups.flatMap((g) => Array.from(g.values));
  const [lo, hi] = opts.range ?? [Math.min(...all), Math.max(...all)];
  const w = (hi - lo) / bins || 1;
  const series: Series[] = opts.groups.map((g) => {
    const counts = new Array(bins).fill(0);
    for (const v of Array.from(g.values)) counts[Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / w)))]++;
    const n = Math.max(1, g.values.length);
    return { name: `${g.name} (n=${g.values.length})`, x: counts.map((_, i) => lo + (i + 0.5) * w), y: counts.map((c) => c / n) };
  });
  return lineChart({ title: opts.title, xLabel: opts.xLabel, yLabel: 'fraction of samples', series });
}
