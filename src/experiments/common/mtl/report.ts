import { fmtStat } from '../../../report/report.js';
import type { Chart, ReportInput, ReportSection } from '../../types.js';
import type { MtlTrainConfig } from './config.js';


/** Quick-preset targets (issue): rep-mtl vs ew. */
export function repMtlTargets(summary: Record<string, Record<string, { mean: number }>>): { name: string; ok: boolean; detail: string }[] {
  const r = summary['rep-mtl'];
  const e = summary.ew;
  if (!r || !e) return [];
  const out: { name: string; ok: boolean; detail: string }[] = [];
  if (r.delta_m && e.delta_m) out.push({ name: 'Δm(rep-mtl) ≥ Δm(ew) − 0.5', ok: r.delta_m.mean >= e.delta_m.mean - 0.5, detail: `${r.delta_m.mean.toFixed(3)} vs ${e.delta_m.mean.toFixed(3)}` });
  if (r.tsr_entropy && e.tsr_entropy) out.push({ name: 'tsr_entropy(rep-mtl) < tsr_entropy(ew)', ok: r.tsr_entropy.mean < e.tsr_entropy.mean, detail: `${r.tsr_entropy.mean.toFixed(4)} vs ${e.tsr_entropy.mean.toFixed(4)}` });
  if (r.sec_per_epoch && e.sec_per_epoch) out.push({ name: 'sec/epoch(rep-mtl) ≤ 1.5 × sec/epoch(ew)', ok: r.sec_per_epoch.mean <= 1.5 * e.sec_per_epoch.mean, detail: `${r.sec_per_epoch.mean.toFixed(2)} vs ${e.sec_per_epoch.mean.toFixed(2)} (×${(r.sec_per_epoch.mean / e.sec_per_epoch.mean).toFixed(2)})` });
  return out;
}

export const PAL = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
export const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function hexToRgb(h: string): [number, number, number] {
  return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
}

/** Cell colour: the dominant task's colour, blended with white by how far its share is above 1/T. */
export function shareColor(shares: number[]): string {
  const T = shares.length;
  let k = 0;
  for (let t = 1; t < T; t++) if (shares[t] > shares[k]) k = t;
  const strength = Math.max(0, Math.min(1, (shares[k] - 1 / T) / (1 - 1 / T)));
  const [r, g, b] = hexToRgb(PAL[k % PAL.length]);
  const mix = (c: number) => Math.round(255 + (c - 255) * strength);
  return `rgb(${mix(r)},${mix(g)},${mix(b)})`;
}

/**
 * Saliency-share maps: one panel per method, one cell per spatial position of Z, coloured by the task with the
 * largest mean share P_t (white = balanced, full colour = one task owns the position); the number in each cell
 * is the share of task 0 (T = 2) or of the dominant task.
 */
export function shareMapsSvg(maps: { method: string; h: number; w: number; share: number[][] }[], taskNames: string[]): string {
  const cell = 22;
  const pad = 16;
  const cols = Math.min(4, maps.length);
  const first = maps[0];
  const pw = first ? first.w * cell : 0;
  const ph = first ? first.h * cell : 0;
  const rows = Math.ceil(maps.length / cols);
  const W = cols * (pw + pad) + pad;
  const H = rows * (ph + pad + 18) + pad + 40;
  const parts: string[] = [`<rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(`<text x="${pad}" y="16" font-size="13" font-weight="bold">Saliency-share maps on test data: which task owns each position of Z</text>`);
  taskNames.forEach((n, t) => parts.push(`<rect x="${pad + t * 110}" y="24" width="10" height="10" fill="${PAL[t % PAL.length]}"/><text x="${pad + 14 + t * 110}" y="33" font-size="11">${esc(n)}</text>`));
  maps.forEach((m, i) => {
    const x0 = pad + (i % cols) * (pw + pad);
    const y0 = 40 + pad + Math.floor(i / cols) * (ph + pad + 18);
    parts.push(`<text x="${x0}" y="${y0 - 4}" font-size="12">${esc(m.method)}</text>`);
    for (let r = 0; r < m.h; r++)
      for (let c = 0; c < m.w; c++) {
        const p = r * m.w + c;
        const sh = m.share.map((s) => s[p]);
        const k = sh.indexOf(Math.max(...sh));
        parts.push(`<rect x="${x0 + c * cell}" y="${y0 + r * cell}" width="${cell}" height="${cell}" fill="${shareColor(sh)}" stroke="#ddd" stroke-width="0.5"/>`);
        const label = sh.length === 2 ? sh[0] : sh[k];
        parts.push(`<text x="${x0 + c * cell + cell / 2}" y="${y0 + r * cell + cell / 2 + 3}" font-size="7" text-anchor="middle" fill="#333">${Math.round(label * 100)}</text>`);
      }
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Arial, sans-serif">${parts.join('')}</svg>\n`;
}

/** The MTL report sections. */
export function mtlReport<C extends MtlTrainConfig>(input: ReportInput<C>, taskNames: string[], opts: { targets: boolean }): ReportSection[] {
  const { results, rows } = input;
  const S = results.summary;
  const methods = results.methods.filter((m) => S[m]);
  const sections: ReportSection[] = [];
  const f = (m: string, k: string, scale = 1) => (S[m]?.[k] ? fmtStat(S[m][k].mean * scale, S[m][k].std * scale, S[m][k].n) : 'n/a');
  const ranked = [...methods].sort((a, b) => (S[b].delta_m?.mean ?? -Infinity) - (S[a].delta_m?.mean ?? -Infinity));
  const accCols = taskNames.map((t) => `acc ${t} (%)`);
  const lines = [
    `## Ranking by Δm (Δp_task vs STL, %; mean ± std over ${results.seeds.length} seeds)\n`,
    `| rank | method | Δm % | ${accCols.join(' | ')} | avg acc (%) | sec/epoch | TSR entropy | α encoder |`,
    `|---:|---|---:|${accCols.map(() => '---:').join('|')}|---:|---:|---:|---:|`,
    ...ranked.map((m, i) => `| ${i + 1} | ${m} | ${f(m, 'delta_m')} | ${taskNames.map((t) => f(m, `acc_${t}`, 100)).join(' | ')} | ${f(m, 'avg_acc', 100)} | ${f(m, 'sec_per_epoch')} | ${f(m, 'tsr_entropy')} | ${f(m, 'alpha_encoder')} |`),
    '',
    `Δm is computed per seed against the \`stl\` run with the same seed (${(results.derived as { baseline?: string }).baseline ?? 'n/a'}). TSR entropy: mean saliency-share entropy −Σ_t P log P over test samples and positions of Z (nats; max ln ${taskNames.length} = ${Math.log(taskNames.length).toFixed(3)}), measured for every method. sec/epoch: training steps only (STL: sum over its task networks).`,
  ];
  sections.push({ markdown: lines.join('\n') });
  const paired = (results.derived as { paired_vs_baseline?: Record<string, { meanDiff: number; ci95: [number, number]; t: number; p: number; n: number }> }).paired_vs_baseline ?? {};
  const pm = Object.keys(paired);
  if (pm.length) {
    const n = Math.min(...pm.map((m) => paired[m].n));
    const pl = [
      '## Paired comparison with EW (same seeds)\n',
      '| method | Δm − Δm(ew) (pp) | 95% CI | t | p (two-sided) | n |',
      '|---|---:|---|---:|---:|---:|',
      ...pm.map((m) => {
        const p = paired[m];
        return `| ${m} | ${p.meanDiff.toFixed(3)} | [${p.ci95[0].toFixed(3)}, ${p.ci95[1].toFixed(3)}] | ${Number.isFinite(p.t) ? p.t.toFixed(2) : String(p.t)} | ${Number.isFinite(p.p) ? p.p.toFixed(3) : 'n/a'} | ${p.n} |`;
      }),
      '',
      `A method beats EW at the 5% level only when the CI excludes 0. With ${n} paired seeds the t-test has ${n - 1} degrees of freedom${n <= 3 ? ': only large, consistent differences register' : ''}.`,
    ];
    sections.push({ markdown: pl.join('\n') });
  }
  const rvb = (results.derived as { rep_vs_base?: Record<string, { base: string; metric: string; meanDiff: number; ci95: [number, number]; t: number; p: number; n: number }[]> }).rep_vs_base ?? {};
  if (Object.keys(rvb).length) {
    const fmt = (x: number, k: string) => (k === 'avg_acc' ? (100 * x).toFixed(3) : x.toFixed(3));
    sections.push({
      markdown: [
        '## Rep-MTL against its own base weighting (paired by seed)\n',
        '| method | base | metric | difference (pp) | 95% CI (t) | t | p | n |',
        '|---|---|---|---:|---|---:|---:|---:|',
        ...Object.entries(rvb).flatMap(([m, rs]) => rs.map((p) => `| ${m} | ${p.base} | ${p.metric} | ${fmt(p.meanDiff, p.metric)} | [${fmt(p.ci95[0], p.metric)}, ${fmt(p.ci95[1], p.metric)}] | ${Number.isFinite(p.t) ? p.t.toFixed(2) : String(p.t)} | ${Number.isFinite(p.p) ? p.p.toFixed(3) : 'n/a'} | ${p.n} |`)),
        '',
        'Each Rep-MTL variant minus the weighting it is built on (plain `rep-mtl`: EW on log losses), same seeds; the CI is t-based.',
      ].join('\n'),
    });
  }
  if (opts.targets) {
    const t = repMtlTargets(S as Record<string, Record<string, { mean: number }>>);
    if (t.length) sections.push({ markdown: ['## Targets (rep-mtl vs ew, means)\n', '| target | met | values |', '|---|---|---|', ...t.map((x) => `| ${x.name} | ${x.ok ? 'yes' : '**no**'} | ${x.detail} |`)].join('\n') });
  }
  // Saliency maps (mean over seeds).
  const maps = methods
    .map((m) => {
      const rs = rows.filter((r) => r.method === m && r.kind === 'diagnostic' && r.name === 'saliency');
      if (!rs.length) return null;
      const T = Number(rs[0].tasks);
      const h = Number(rs[0].h);
      const w = Number(rs[0].w);
      const P = h * w;
      const share = Array.from({ length: T }, (_, t) => Array.from({ length: P }, (_, p) => rs.reduce((s, r) => s + (r.share as number[])[t * P + p], 0) / rs.length));
      return { method: m, h, w, share };
    })
    .filter((x): x is { method: string; h: number; w: number; share: number[][] } => x !== null);
  if (maps.length) {
    const chart: Chart = { file: 'charts/saliency-shares.svg', title: 'saliency-share maps', svg: shareMapsSvg(maps, taskNames) };
    sections.push({
      markdown: `## Saliency-share maps\n\nFor every position of the shared representation Z, the mean share P_t = |Ŝ_t| / Σ_k |Ŝ_k| of each task's channel-averaged saliency on the test set (mean over seeds). The colour is the task with the larger share (white: balanced); the number is ${taskNames.length === 2 ? `${taskNames[0]}'s share in %` : "the dominant task's share in %"}. TSR pushes every position towards one owner.\n\n![${chart.title}](${chart.file})\n`,
      charts: [chart],
    });
  }
  // α table.
  const al = [
    '## Power-law exponent α of the weight spectra\n',
    `| method | α encoder | ${taskNames.map((t) => `α head ${t}`).join(' | ')} |`,
    `|---|---:|${taskNames.map(() => '---:').join('|')}|`,
    ...methods.map((m) => `| ${m} | ${f(m, 'alpha_encoder')} | ${taskNames.map((t) => f(m, `alpha_${t}`)).join(' | ')} |`),
    '',
    'α: maximum-likelihood tail exponent of the eigenvalues of WᵀW (conv kernels: the 3×3 slices pooled), λmin chosen by the Kolmogorov–Smirnov distance (WeightWatcher\'s fit); layers with fewer than 10 eigenvalues are skipped (the first conv, 1 input channel). The encoder value is the mean over its layers with a fit; a linear head of 10 classes has exactly 10 eigenvalues, so its α is noisy. HT-SR reading: 2–4 well trained, ≫ 4 under-trained.',
  ];
  sections.push({ markdown: al.join('\n') });
  return sections;
}
