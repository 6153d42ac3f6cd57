/**
 * The dashboard page: the run list (`/`), one run (`/run/<id>`) and a comparison (`/compare?run=a&run=b`).
 * Data comes from the server's read-only JSON API; live runs grow through server-sent events.
 */
import { Marked } from 'marked';
import type { FileProblem, MetricsRow, PairedDifference, RowsEvent, RunDetail, RunListEntry, StatusEvent } from '../src/serve/types.js';
import { CurveChart, curveMetrics, seedCurves, xKeyOf } from './charts.js';

const main = document.getElementById('main')!;

// ---- small DOM helpers (text only: nothing from a run file is ever parsed as HTML, except escaped Markdown) ----
type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}
/** The children worth appending (drops null, undefined, false). */
const nodes = (...children: Child[]) => children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false);
const runHref = (id: string) => '/run/' + id.split('/').map(encodeURIComponent).join('/');
const fileHref = (id: string, file: string) => '/runs/' + id.split('/').map(encodeURIComponent).join('/') + '/' + file;

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${(await r.text()).trim()}`);
  return (await r.json()) as T;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  if (Number.isInteger(v) && a >= 1) return String(v);
  return a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(3) : v.toFixed(4);
}
/** mean ± std; a constant integer (a parameter count, a leak count) prints as the integer alone. */
const fmtStat = (s: { mean: number; std: number; n: number; integer?: boolean }) =>
  (s.integer || Number.isInteger(s.mean)) && s.std === 0 ? String(s.mean) : `${fmt(s.mean)}${s.n > 1 && Number.isFinite(s.std) ? ` ± ${fmt(s.std)}` : ''}`;

function badge(status: string, lastEpoch: number | null): HTMLElement {
  const text = status === 'interrupted' || status === 'running' ? `${status}${lastEpoch !== null ? ` · epoch ${lastEpoch}` : ''}` : status;
  return h('span', { class: `badge ${status}`, 'data-status': status }, text);
}

function problemsBox(problems: FileProblem[]): HTMLElement | null {
  if (!problems.length) return null;
  const shown = problems.slice(0, 20);
  return h(
    'div',
    { class: 'problems', role: 'alert' },
    h('strong', {}, `${problems.length} problem${problems.length > 1 ? 's' : ''} in this run's files (the rest is shown)`),
    h('ul', {}, ...shown.map((p) => h('li', {}, `${p.file}${p.line ? `:${p.line}` : ''}: ${p.message}`))),
    problems.length > shown.length ? `… and ${problems.length - shown.length} more` : null,
  );
}

function table(head: string[], rows: Child[][], cls = ''): HTMLTableElement {
  return h('table', { class: cls }, h('thead', {}, h('tr', {}, ...head.map((x) => h('th', {}, x)))), h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))));
}

// ---- the run list ----
const selected = new Set<string>();
async function renderList(): Promise<void> {
  document.title = 'efftrain runs';
  const runs = await getJson<RunListEntry[]>('/api/runs');
  const compareBtn = h('button', { type: 'button', disabled: '' }, 'Compare selected');
  const hint = h('span', { class: 'hint' }, 'Select two or more runs of one experiment to compare them.');
  const update = () => {
    const exps = new Set(runs.filter((r) => selected.has(r.id)).map((r) => r.experiment));
    const ok = selected.size >= 2 && exps.size === 1;
    compareBtn.toggleAttribute('disabled', !ok);
    hint.textContent = selected.size >= 2 && exps.size > 1 ? 'Compare needs runs of one experiment.' : 'Select two or more runs of one experiment to compare them.';
  };
  compareBtn.addEventListener('click', () => {
    location.href = '/compare?' + [...selected].map((id) => 'run=' + encodeURIComponent(id)).join('&');
  });
  const rows = runs.map((r) => {
    const box = h('input', { type: 'checkbox', 'aria-label': `select ${r.id}` });
    box.checked = selected.has(r.id);
    box.addEventListener('change', () => (box.checked ? selected.add(r.id) : selected.delete(r.id), update()));
    return [
      box,
      h('a', { href: runHref(r.id) }, r.id),
      r.experiment,
      r.date ? r.date.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '',
      r.quick === null ? '' : r.quick ? 'quick' : 'full',
      r.methods.join(', '),
      r.seeds.join(', '),
      h('span', {}, badge(r.status, r.lastEpoch), r.problems.length ? h('span', { class: 'warn', title: r.problems.map((p) => `${p.file}${p.line ? ':' + p.line : ''}: ${p.message}`).join('\n') }, ` ⚠ ${r.problems.length}`) : null),
    ];
  });
  main.replaceChildren(
    h('h1', {}, 'Runs'),
    runs.length ? table(['', 'run', 'experiment', 'started', 'preset', 'methods', 'seeds', 'status'], rows, 'runs') : h('p', {}, 'No run directories here yet: `efftrain run <experiment> --out <this folder>/<name>` makes one.'),
    h('p', {}, compareBtn, ' ', hint),
  );
  update();
  main.dataset.ready = 'list';
}

// ---- one run ----
function summaryTable(d: RunDetail): HTMLElement {
  if (!d.summary) {
    const why =
      d.status === 'running'
        ? 'The summary appears when the run finishes; the curves below grow live.'
        : d.status === 'interrupted'
          ? `Interrupted${d.lastEpoch !== null ? ` after epoch ${d.lastEpoch}` : ''} without results.json; \`efftrain run ${d.experiment} --out <this run's folder> --resume\` (same options) continues it from its checkpoints.`
          : 'No results.json: no final summary.';
    return h('p', { class: 'hint' }, why);
  }
  const methods = Object.keys(d.summary);
  // Comparison metrics first, then the declared diagnostics (sizes, counts, timings).
  const allKeys = [...new Set(methods.flatMap((m) => Object.keys(d.summary![m])))];
  const keys = [...allKeys.filter((k) => !d.diagnostics.includes(k)), ...allKeys.filter((k) => d.diagnostics.includes(k))];
  const nOf = (m: string) => {
    const ns = [...new Set(Object.values(d.summary![m]).map((s) => s.n))];
    return ns.length === 1 ? String(ns[0]) : `${Math.min(...ns)}–${Math.max(...ns)}`;
  };
  return h(
    'div',
    {},
    table(['method', 'n', ...keys], methods.map((m) => [m, nOf(m), ...keys.map((k) => (d.summary![m][k] ? fmtStat(d.summary![m][k]) : ''))]), 'summary'),
    h('p', { class: 'hint' }, `mean ± std over seeds; n = seeds behind each number${d.diagnostics.length ? `; diagnostics: ${keys.filter((k) => d.diagnostics.includes(k)).join(', ')}` : ''}`),
  );
}

function pairedTable(d: RunDetail): HTMLElement | null {
  if (!d.paired.length || !d.baseline) return null;
  const src = d.baselineSource === 'first method' ? ' (the first method: the experiment declares no baseline)' : '';
  const dir = d.primary ? ` Primary metric: ${d.primary}${d.higherIsBetter === null ? '' : d.higherIsBetter ? ' (higher is better)' : ' (lower is better)'}.` : '';
  const ordered = [...d.paired].sort((a, b) => Number(b.metric === d.primary) - Number(a.metric === d.primary));
  const rows = ordered.map((p: PairedDifference) => {
    const excl = p.ci95[0] > 0 || p.ci95[1] < 0;
    return [p.method, p.metric === d.primary ? h('strong', {}, p.metric) : p.metric, h('span', { class: excl ? 'sig' : '' }, fmt(p.meanDiff)), Number.isFinite(p.ci95[0]) ? `[${fmt(p.ci95[0])}, ${fmt(p.ci95[1])}]` : 'n/a (n < 2)', String(p.n), Number.isFinite(p.p) ? p.p.toFixed(3) : 'n/a'];
  });
  const small = d.paired.some((p) => p.n < 3);
  return h(
    'section',
    {},
    h('h2', {}, `Paired differences against ${d.baseline}`),
    h('p', { class: 'hint' }, `method − ${d.baseline}${src}, paired by seed; 95% t-interval with df = n − 1. Bold: the interval excludes 0. No correction for the number of comparisons.${dir}`),
    table(['method', 'metric', 'Δ mean', '95% CI', 'n', 'p'], rows, 'paired'),
    small ? h('p', { class: 'warn' }, 'Some differences rest on fewer than 3 paired seeds: treat them as anecdotes.') : null,
  );
}

/** Charts per metric over `rows`, grouped by `keyOf`; returns a function that redraws them with new rows. */
function curvesSection(host: HTMLElement, getRows: () => MetricsRow[], keyOf: (r: MetricsRow) => string | null): () => void {
  const charts = new Map<string, CurveChart>();
  const redraw = () => {
    const rows = getRows();
    const xKey = xKeyOf(rows);
    for (const metric of curveMetrics(rows)) {
      if (!charts.has(metric)) {
        const box = h('div', { 'data-metric': metric });
        host.append(box);
        charts.set(metric, new CurveChart(box, `${metric} (mean ± std over seeds)`, xKey));
      }
      charts.get(metric)!.update(seedCurves(rows, metric, keyOf));
    }
    if (!charts.size) host.replaceChildren(h('p', { class: 'hint' }, 'No per-epoch metrics yet.'));
    else host.querySelector(':scope > p.hint')?.remove();
  };
  redraw();
  return redraw;
}

/** report.md rendered with raw HTML escaped and relative image paths pointed into the run folder. */
async function reportSection(d: RunDetail): Promise<HTMLElement | null> {
  if (!d.hasReport) return null;
  const r = await fetch(fileHref(d.id, 'report.md'));
  if (!r.ok) return null;
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const markdown = new Marked({ gfm: true });
  markdown.use({
    renderer: { html: ({ text }) => escape(text) },
    walkTokens: (t) => {
      if (t.type === 'image' && !/^[a-z]+:|^\//i.test(t.href)) t.href = fileHref(d.id, t.href.replace(/^\.\//, ''));
    },
  });
  const div = h('section', { class: 'report' });
  div.innerHTML = await markdown.parse(await r.text());
  return h('details', { open: '' }, h('summary', {}, 'Report (report.md: the experiment’s own sections and static charts)'), div);
}

let liveSource: EventSource | null = null;

async function renderRun(id: string): Promise<void> {
  const d = await getJson<RunDetail>('/api/run?id=' + encodeURIComponent(id));
  document.title = `${d.id} · efftrain`;
  const rows = d.rows;
  const problems = [...d.problems];
  const status = h('span', {}, badge(d.status, d.lastEpoch));
  const problemsHost = h('div', {}, problemsBox(problems));
  const curvesHost = h('div', { class: 'charts', id: 'curves' });
  const meta = [
    `experiment ${d.experiment}`,
    d.quick === null ? null : d.quick ? 'quick preset' : 'full run',
    `methods ${d.methods.join(', ')}`,
    `seeds ${d.seeds.join(', ')}`,
    d.wallSeconds !== null ? `wall ${d.wallSeconds.toFixed(1)} s` : null,
  ].filter(Boolean) as string[];
  main.replaceChildren(
    ...nodes(
    h('p', {}, h('a', { href: '/' }, '← all runs')),
    h('h1', {}, d.id, ' ', status),
    h('p', { class: 'meta' }, meta.join(' · ')),
    d.command ? h('p', { class: 'meta' }, 'reproduce: ', h('code', {}, d.command)) : null,
    d.error ? h('div', { class: 'problems', role: 'alert' }, h('strong', {}, 'The run failed: '), d.error) : null,
    problemsHost,
    h('h2', {}, 'Summary'),
    summaryTable(d),
    pairedTable(d),
    h('h2', {}, 'Learning curves'),
    curvesHost,
    ),
  );
  const redraw = curvesSection(curvesHost, () => rows, (r) => (typeof r.method === 'string' ? r.method : null));
  const report = await reportSection(d);
  if (report) main.append(report);
  main.dataset.ready = 'run';

  if (d.status === 'done') return;
  let lastEpoch = d.lastEpoch;
  liveSource?.close();
  const es = new EventSource(`/api/events?id=${encodeURIComponent(id)}&from=${d.offset}`);
  liveSource = es;
  es.addEventListener('rows', (ev) => {
    const e = JSON.parse((ev as MessageEvent<string>).data) as RowsEvent;
    rows.push(...e.rows);
    for (const r of e.rows) {
      const x = typeof r.epoch === 'number' ? r.epoch : typeof r.step === 'number' ? r.step : null;
      if (x !== null && (lastEpoch === null || x > lastEpoch)) lastEpoch = x;
    }
    if (e.problems.length) {
      problems.push(...e.problems);
      problemsHost.replaceChildren(problemsBox(problems) ?? '');
    }
    status.replaceChildren(badge(status.firstElementChild?.getAttribute('data-status') ?? d.status, lastEpoch));
    redraw();
  });
  es.addEventListener('status', (ev) => {
    const s = JSON.parse((ev as MessageEvent<string>).data) as StatusEvent;
    status.replaceChildren(badge(s.status, lastEpoch));
    // A finished run now has results.json: show its summary and paired differences.
    if (s.status === 'done' || s.status === 'failed') {
      es.close();
      void renderRun(id);
    }
  });
}

// ---- compare ----
async function renderCompare(ids: string[]): Promise<void> {
  document.title = 'compare · efftrain';
  const details = await Promise.all(ids.map((id) => getJson<RunDetail>('/api/run?id=' + encodeURIComponent(id))));
  const exps = [...new Set(details.map((d) => d.experiment))];
  const head = [h('p', {}, h('a', { href: '/' }, '← all runs')), h('h1', {}, `Compare ${details.length} runs of ${exps.join(', ')}`)];
  if (details.length < 2 || exps.length !== 1) {
    main.replaceChildren(...head, h('p', { class: 'problems' }, 'Compare needs two or more runs of one experiment.'));
    main.dataset.ready = 'compare';
    return;
  }
  const methods = [...new Set(details.flatMap((d) => Object.keys(d.summary ?? {})))];
  const metrics = [...new Set(details.flatMap((d) => Object.values(d.summary ?? {}).flatMap((m) => Object.keys(m))))];
  const rows: Child[][] = [];
  for (const m of methods) {
    for (const k of metrics) {
      const cells = details.map((d) => {
        const s = d.summary?.[m]?.[k];
        return s ? `${fmtStat(s)} (n=${s.n})` : '—';
      });
      if (cells.some((c) => c !== '—')) rows.push([m, k, ...cells]);
    }
  }
  const runCols = details.map((d) => h('a', { href: runHref(d.id) }, d.id, d.quick === null ? '' : d.quick ? ' (quick)' : ' (full)'));
  const summary = h('table', { class: 'summary' }, h('thead', {}, h('tr', {}, h('th', {}, 'method'), h('th', {}, 'metric'), ...runCols.map((c) => h('th', {}, c)))), h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))));
  // Config keys whose values differ between the runs: what the comparison is about.
  const cfgKeys = [...new Set(details.flatMap((d) => Object.keys(d.config ?? {})))].sort();
  const show = (v: unknown) => (v === undefined ? '—' : JSON.stringify(v));
  const diffRows = cfgKeys.map((k) => [k, ...details.map((d) => show(d.config?.[k]))]).filter((r) => new Set(r.slice(1)).size > 1);
  const configDiff = diffRows.length
    ? h('div', {}, h('h2', {}, 'Config differences'), table(['key', ...details.map((d) => d.id)], diffRows, 'config-diff'))
    : h('p', { class: 'hint' }, 'The runs have the same config.json.');
  const all: MetricsRow[] = details.flatMap((d) => d.rows.map((r) => ({ ...r, __run: d.id })));
  const curvesHost = h('div', { class: 'charts', id: 'curves' });
  main.replaceChildren(...head, configDiff, h('h2', {}, 'Final metrics (mean ± std over seeds)'), rows.length ? summary : h('p', { class: 'hint' }, 'No finished run among these.'), h('h2', {}, 'Learning curves (method · run)'), curvesHost);
  curvesSection(curvesHost, () => all, (r) => (typeof r.method === 'string' ? `${r.method} · ${String(r.__run)}` : null));
  main.dataset.ready = 'compare';
}

async function route(): Promise<void> {
  try {
    const path = location.pathname;
    if (path.startsWith('/run/')) await renderRun(path.slice(5).split('/').map(decodeURIComponent).join('/'));
    else if (path === '/compare') await renderCompare(new URLSearchParams(location.search).getAll('run'));
    else {
      await renderList();
      setInterval(() => void renderList().catch(() => undefined), 5000);
    }
  } catch (e) {
    main.replaceChildren(h('div', { class: 'problems', role: 'alert' }, (e as Error).message));
    main.dataset.ready = 'error';
  }
}

void route();
