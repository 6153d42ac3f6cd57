/**
 * The `s3-shift` report sections: split and recipes, paired comparisons with t-based CIs, sign-flip and
 * latent-movement diagnostics, final weight histograms, export check.
 */
import { barChart, lineChart } from '../../report/svg.js';
import { curveSeries, fmtStat } from '../../report/report.js';
import type { Chart, MetricRow, ReportInput, ReportSection } from '../types.js';
import { parseS3Arm } from './arms.js';
import { recipeFor } from './train.js';
import type { S3Comparison, S3ShiftConfig } from './index.js';

type Row = MetricRow & { method: string; seed: number };

/** Magnitude labels of a histogram, from the exponent range (S3: 1,2,4 …; PS: 1/4,1/2,1 …). */
function magnitudeLabel(p: number): string {
  return p >= 0 ? `±${2 ** p}` : `±1/${2 ** -p}`;
}

const pct = (x: number | undefined, d = 2) => (typeof x === 'number' && Number.isFinite(x) ? `${(100 * x).toFixed(d)}%` : 'n/a');
const num = (x: number | undefined, d = 3) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : 'n/a');

function meanOf(rows: Row[], key: string): number {
  const xs = rows.map((r) => r[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Latent movement table: one line per (method, latent role), means over seeds. */
function movementSection(methods: string[], rows: Row[]): string[] {
  const md: string[] = [];
  md.push('### How far the latents moved (init → end of training, mean over seeds)\n');
  md.push(
    'Per latent tensor of the quantised layers: |Δ| = |latent_end − latent_init| (median / p99 / max), the median |latent| at init (the latents\' own scale), and the fraction whose discrete value changed (net threshold crossings: 0 for fp/S3 latents; ±0.5 rounding for the PS sign latent s̃ — the dead zone — and integer rounding for p̃). "Flip distance" = median distance the sign latent had to travel at init to reverse the weight\'s sign (fp/S3: |x|; PS, non-zero weights: |s̃| + 0.5). Σ lr = the sum of the latents\' per-step learning rates, which bounds how far an Adam/RAdam-trained latent can travel (≈ lr per step at most).\n',
  );
  md.push('| method | latent | \\|Δ\\| median | \\|Δ\\| p99 | \\|Δ\\| max | \\|latent\\| at init (median) | crossed a threshold | flip distance (median) | sign reversed | Σ lr |');
  md.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const m of methods) {
    const rs = rows.filter((r) => r.method === m && r.kind === 'diagnostic' && r.name === 'latent_movement');
    if (!rs.length) continue;
    const roles = Object.keys(rs[0])
      .filter((k) => k.endsWith('_dabs_median') && k !== 'sign_latent_dabs_median')
      .map((k) => k.slice(0, -'_dabs_median'.length));
    for (const role of roles) {
      const isSign = role === 'sign';
      md.push(
        `| ${m} | ${rs[0].parameterization === 'fp' ? 'kernel w' : role} | ${num(meanOf(rs, `${role}_dabs_median`), 4)} | ${num(meanOf(rs, `${role}_dabs_p99`), 4)} | ${num(meanOf(rs, `${role}_dabs_max`), 3)} | ${num(meanOf(rs, `${role}_start_abs_median`), 4)} | ${pct(meanOf(rs, `${role}_crossed`))} | ${isSign ? num(meanOf(rs, 'sign_flip_distance_median'), 3) : ''} | ${isSign ? pct(meanOf(rs, 'sign_reversed')) : ''} | ${isSign ? num(meanOf(rs, 'lr_sum_latent'), 2) : ''} |`,
      );
    }
  }
  md.push('');
  return md;
}

function comparisonSection(comparisons: S3Comparison[]): string[] {
  if (!comparisons.length) return [];
  const md = ['### Paired comparisons (same seeds; t-based 95% CI of the mean difference, df = n − 1)\n', '| a − b | metric | mean (points) | 95% CI (points) | p | n | verdict |', '|---|---|---:|---|---:|---:|---|'];
  for (const c of comparisons) {
    const v = c.n < 2 ? 'one seed: no CI' : c.ci95[0] > 0 ? 'a above b' : c.ci95[1] < 0 ? 'a below b' : 'no difference resolved';
    md.push(`| ${c.a} − ${c.b} | ${c.metric} | ${(100 * c.meanDiff).toFixed(2)} | ${c.n >= 2 ? `[${(100 * c.ci95[0]).toFixed(2)}, ${(100 * c.ci95[1]).toFixed(2)}]` : 'n/a'} | ${Number.isFinite(c.p) ? c.p.toFixed(3) : 'n/a'} | ${c.n} | ${v} |`);
  }
  md.push('');
  return md;
}

/** The experiment's report sections. */
export function s3Report({ results, rows: rowsIn, config }: ReportInput<S3ShiftConfig>): ReportSection[] {
  const rows = rowsIn as Row[];
  const methods = results.methods;
  const charts: Chart[] = [];
  const epochRows = rows.filter((r) => typeof r.epoch === 'number');
  if (epochRows.some((r) => typeof r.sign_flip === 'number' && r.sign_flip > 0)) {
    // Log-scale view of the flip rate (zeros are dropped there; the linear chart is charts/curve-sign_flip.svg).
    const series = curveSeries(epochRows, 'sign_flip', 'epoch', methods).map((sr) => ({ ...sr, y: sr.y.map((v) => (v > 0 ? v : NaN)), band: undefined }));
    charts.push({ file: 'charts/s3-sign-flip-log.svg', title: 'sign-flip rate per epoch (log scale)', svg: lineChart({ title: 'sign-flip rate per epoch, log scale (exact zeros omitted)', xLabel: 'epoch', yLabel: 'fraction flipped', series, logY: true }) });
  }
  const md: string[] = ['## S3 diagnostics\n'];
  md.push(
    `Split: the last ${config.valSize} training images are the validation split (per-epoch \`val_acc\`; every lr/recipe choice is made on it); training uses the first ${config.trainLimit > 0 ? `min(${config.trainLimit}, ${60000 - config.valSize})` : 'rest'}. ${config.finalTest ? 'The test split is read once, after training (`test_acc`, export check).' : '**Selection run: the test split was not read.**'}\n`,
  );
  md.push('| method | recipe | latent lr × |\n|---|---|---:|');
  for (const m of methods) {
    const arm = parseS3Arm(m);
    md.push(`| ${m} | ${recipeFor(arm, config).label}, ${config.schedule}, batch ${config.batchSize}, ${config.epochs} epochs${recipeFor(arm, config).latentWeightDecay > 0 ? `, latent L2 ${recipeFor(arm, config).latentWeightDecay}` : ''} | ${arm.latentLrMult} |`);
  }
  md.push('');
  md.push(...comparisonSection((results.derived.comparisons ?? []) as S3Comparison[]));

  // Sign-flip story table.
  const stat = (m: string, k: string) => results.summary[m]?.[k];
  const curve = (k: string) => new Map(curveSeries(epochRows, k, 'epoch', methods).map((s) => [s.name, s]));
  const flips = curve('sign_flip');
  const zf = curve('zero_frac');
  md.push('### Sign flips\n');
  md.push('Q layers = the two quantised 3×3 convs (stem conv and dense head stay full precision, as in the paper). `sign_flip` = fraction of weights, non-zero at both epoch ends, whose sign flipped since the previous epoch (epoch 1: since init); for `fp` the float kernels are used.\n');
  md.push('| method | sign flips epoch 1 | sign flips last epoch | sign changed since init (mean ± std) | zero fraction (final) |\n|---|---:|---:|---:|---:|');
  for (const m of methods) {
    const s = flips.get(m);
    const z = zf.get(m);
    const since = stat(m, 'sign_changed_since_init');
    md.push(`| ${m} | ${pct(s?.y[0], 3)} | ${pct(s?.y[s.y.length - 1], 3)} | ${since ? fmtStat(100 * since.mean, 100 * since.std, since.n) + '%' : 'n/a'} | ${pct(z?.y[z.y.length - 1], 1)} |`);
  }
  md.push('');
  md.push(...movementSection(methods, rows));
  md.push('![sign flips](charts/curve-sign_flip.svg)\n\n![sign changed since init](charts/curve-sign_changed_since_init.svg)\n\n![zero fraction](charts/curve-zero_frac.svg)\n');

  // Shift histograms of the final models, pooled over seeds, as fractions of all Q weights.
  const histLines: string[] = [];
  for (const m of methods) {
    const hs = rows.filter((r) => r.method === m && r.kind === 'diagnostic' && r.name === 'shift_hist') as unknown as (Row & { shifts: number[]; counts: number[]; zeros: number; total: number })[];
    if (!hs.length) continue;
    const shifts = hs[0].shifts;
    const total = hs.reduce((a, h) => a + h.total, 0);
    const zeros = hs.reduce((a, h) => a + h.zeros, 0);
    const counts = shifts.map((_, i) => hs.reduce((a, h) => a + h.counts[i], 0));
    const labels = ['0', ...shifts.map(magnitudeLabel)];
    const values = [zeros / total, ...counts.map((c) => c / total)];
    const file = `charts/s3-shift-hist-${m.replace(/[^A-Za-z0-9._-]/g, '_')}.svg`;
    charts.push({ file, title: `final weight histogram ${m}`, svg: barChart({ title: `${m}: final |w| histogram (fraction of Q weights, ${hs.length} seed${hs.length > 1 ? 's' : ''})`, yLabel: 'fraction', labels, values }) });
    histLines.push(`| ${m} | ${labels.map((l, i) => `${l}: ${(100 * values[i]).toFixed(1)}%`).join(', ')} |`);
  }
  if (histLines.length) {
    md.push('### Final weight histograms (fraction of Q weights; exponent ranges differ by a global power of two that BatchNorm absorbs)\n');
    md.push('| method | histogram |\n|---|---|', ...histLines, '');
  }
  const t = (results.derived.targets ?? {}) as Record<string, unknown>;
  md.push('### Targets\n');
  const ci = (k: string) => (Array.isArray(t[k]) ? ` (95% CI [${(t[k] as number[]).map((x) => x.toFixed(2)).join(', ')}])` : '');
  if (typeof t.fp_minus_s3_3bit_points === 'number') md.push(`- s3-3bit within 1.0 point of fp (whole CI of fp − s3 below 1 point): **${String(t.s3_3bit_within_1pt_of_fp)}** — fp − s3-3bit = ${t.fp_minus_s3_3bit_points.toFixed(2)} points${ci('fp_minus_s3_3bit_ci95_points')}`);
  if (typeof t.s3_3bit_minus_ps_3bit_points === 'number') md.push(`- s3-3bit vs deepshift-ps-3bit: **${String(t.s3_3bit_vs_ps_3bit)}** — s3-3bit − deepshift-ps-3bit = ${t.s3_3bit_minus_ps_3bit_points.toFixed(2)} points${ci('s3_3bit_minus_ps_3bit_ci95_points')}`);
  if (typeof t.export_agreement_min === 'number') md.push(`- exported model (multiplication-free engine) vs tfjs argmax agreement, worst run: ${(100 * t.export_agreement_min).toFixed(2)}%; export accuracy equal to tfjs accuracy in every run: ${t.export_acc_equal_all ? 'yes' : 'no'}`);
  const exp = methods.filter((m) => stat(m, 'export_bytes'));
  if (exp.length) {
    md.push('\n| method | export bytes | float32 inference bytes | ratio | engine test acc | engine images/s (1 thread, incl. FP layers) |\n|---|---:|---:|---:|---:|---:|');
    for (const m of exp) {
      const b = stat(m, 'export_bytes')!.mean;
      const f = stat(m, 'float32_bytes')!.mean;
      const ips = stat(m, 'export_images_per_sec');
      const acc = stat(m, 'export_test_acc');
      md.push(`| ${m} | ${b.toFixed(0)} | ${f.toFixed(0)} | ${(f / b).toFixed(2)}× | ${acc ? fmtStat(acc.mean, acc.std, acc.n) : 'not run'} | ${ips ? ips.mean.toFixed(0) : 'not run'} |`);
    }
  }
  return [{ markdown: md.join('\n'), charts }];
}
