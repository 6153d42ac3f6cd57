import { existsSync, openSync, readFileSync, readSync, closeSync, readdirSync, statSync, fstatSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative, sep } from 'node:path';
import { processAlive, readRunStatus } from '../experiments/run-status.js';
import { RESULTS_SCHEMA_VERSION, resultsSchema } from '../results/schema.js';
import { pairedTTest } from '../stats/index.js';
import type { FileProblem, MetricsRow, PairedDifference, RunDetail, RunListEntry, RunStatus, Stat } from './types.js';

/** Files whose presence marks a directory as a run directory. */
const RUN_MARKERS = ['results.json', 'metrics.jsonl', 'config.json'];
/** How deep below the served folder run directories are looked for (sweeps nest runs one or two levels). */
const MAX_DEPTH = 3;
/** Without status.json, a run whose metrics.jsonl changed this recently counts as running. */
const RECENT_MS = 60_000;

/** Every run directory below `root` (a run's own `runs/` subfolder of per-seed artifacts is not descended into). */
export function findRunDirs(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    const names = new Set(entries.map((e) => e.name));
    if (dir !== root && RUN_MARKERS.some((m) => names.has(m))) {
      out.push(dir);
      return;
    }
    if (depth >= MAX_DEPTH) return;
    for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules') walk(join(dir, e.name), depth + 1);
  };
  walk(root, 0);
  return out.sort();
}

/** The run id of a directory: its path relative to the served folder, `/`-separated. */
export const runId = (root: string, dir: string) => relative(root, dir).split(sep).join('/');

interface ParsedMetrics {
  rows: MetricsRow[];
  problems: FileProblem[];
  /** Byte offset just after the last complete line. */
  offset: number;
  /** Lines before `offset` (for numbering lines read later). */
  lines: number;
}

/**
 * Parses the complete lines of metrics.jsonl from byte `from` on. A line that is not a JSON object becomes a
 * problem naming its line number; a trailing line without '\n' is left for later (a writer may be mid-append).
 */
export function readMetrics(file: string, from = 0, firstLine = 1): ParsedMetrics {
  const res: ParsedMetrics = { rows: [], problems: [], offset: from, lines: firstLine - 1 };
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return res;
  }
  try {
    const size = fstatSync(fd).size;
    if (size < from) {
      res.problems.push({ file: 'metrics.jsonl', message: `the file shrank below byte ${from}; reload the page` });
      return res;
    }
    const buf = Buffer.alloc(size - from);
    readSync(fd, buf, 0, buf.length, from);
    const end = buf.lastIndexOf(0x0a);
    if (end < 0) return res;
    const text = buf.subarray(0, end).toString('utf8');
    let line = firstLine;
    for (const l of text.split('\n')) {
      if (l.trim() !== '') {
        try {
          const v = JSON.parse(l) as unknown;
          if (v && typeof v === 'object' && !Array.isArray(v)) res.rows.push(v as MetricsRow);
          else res.problems.push({ file: 'metrics.jsonl', line, message: 'not a JSON object' });
        } catch (e) {
          res.problems.push({ file: 'metrics.jsonl', line, message: `invalid JSON: ${(e as Error).message}` });
        }
      }
      line++;
    }
    res.offset = from + end + 1;
    res.lines = line - 1;
  } finally {
    closeSync(fd);
  }
  return res;
}

const metricsCache = new Map<string, { mtimeMs: number; size: number; parsed: ParsedMetrics }>();

/** {@link readMetrics} of a whole file, re-read only when its size or modification time changed (the list refreshes often). */
function readMetricsCached(file: string): ParsedMetrics {
  let st;
  try {
    st = statSync(file);
  } catch {
    metricsCache.delete(file);
    return readMetrics(file);
  }
  const c = metricsCache.get(file);
  if (c && c.mtimeMs === st.mtimeMs && c.size === st.size) return c.parsed;
  const parsed = readMetrics(file);
  metricsCache.set(file, { mtimeMs: st.mtimeMs, size: st.size, parsed });
  return parsed;
}

function readJson(dir: string, file: string, problems: FileProblem[]): Record<string, unknown> | null {
  const p = join(dir, file);
  if (!existsSync(p)) return null;
  try {
    const v = JSON.parse(readFileSync(p, 'utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    problems.push({ file, message: 'not a JSON object' });
  } catch (e) {
    problems.push({ file, message: `invalid JSON: ${(e as Error).message}` });
  }
  return null;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const numbers = (v: unknown): number[] => (Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : []);

/** Run status from results.json, status.json and the age of metrics.jsonl (see {@link RunStatus}). */
export function runStatus(dir: string, results: Record<string, unknown> | null, resultsBroken: boolean): { status: RunStatus; error?: string } {
  if (results) return { status: 'done' };
  if (resultsBroken) return { status: 'error' };
  const s = readRunStatus(dir);
  if (s?.state === 'failed') return { status: 'failed', error: s.error };
  if (s?.state === 'running') {
    // A pid only means something on the machine that wrote it; elsewhere fall back to the file's age.
    if (s.host === hostname()) return { status: processAlive(s.pid) ? 'running' : 'interrupted' };
  }
  try {
    const age = Date.now() - statSync(join(dir, 'metrics.jsonl')).mtimeMs;
    return { status: age < RECENT_MS ? 'running' : 'interrupted' };
  } catch {
    return { status: 'interrupted' };
  }
}

function lastEpoch(rows: MetricsRow[]): number | null {
  let best: number | null = null;
  for (const r of rows) {
    const e = typeof r.epoch === 'number' ? r.epoch : typeof r.step === 'number' ? r.step : null;
    if (e !== null && (best === null || e > best)) best = e;
  }
  return best;
}

interface Loaded {
  entry: RunListEntry;
  config: Record<string, unknown> | null;
  results: Record<string, unknown> | null;
  metrics: ParsedMetrics;
}

function load(root: string, dir: string): Loaded {
  const problems: FileProblem[] = [];
  const config = readJson(dir, 'config.json', problems);
  const nBefore = problems.length;
  let results = readJson(dir, 'results.json', problems);
  if (results && !(Array.isArray(results.runs) && typeof results.summary === 'object' && results.summary)) {
    problems.push({ file: 'results.json', message: 'missing "runs" or "summary"' });
    results = null;
  }
  const resultsBroken = problems.length > nBefore;
  if (results && results.schemaVersion !== undefined) {
    // Shown as far as understood either way; the problem says what does not fit the contract.
    if (results.schemaVersion !== RESULTS_SCHEMA_VERSION) {
      problems.push({ file: 'results.json', message: `schemaVersion ${JSON.stringify(results.schemaVersion)} is not the one this efftrain reads (${RESULTS_SCHEMA_VERSION}); shown as far as it is understood` });
    } else {
      const r = resultsSchema.safeParse(results);
      if (!r.success) problems.push({ file: 'results.json', message: `does not match the results schema: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` });
    }
  }
  const metrics = readMetricsCached(join(dir, 'metrics.jsonl'));
  problems.push(...metrics.problems);
  const { status, error } = runStatus(dir, results, resultsBroken);
  const st = readRunStatus(dir);
  let date = st?.startedAt ?? '';
  if (!date) {
    try {
      date = statSync(join(dir, existsSync(join(dir, 'config.json')) ? 'config.json' : 'metrics.jsonl')).mtime.toISOString();
    } catch {
      date = '';
    }
  }
  const src = results ?? config ?? {};
  const experiment =
    typeof results?.experiment === 'string' ? results.experiment : typeof st?.experiment === 'string' ? st.experiment : dir.split(sep).pop()!.replace(/(-quick)?-\d{4}-\d\d-\d\dT.*$/, '');
  const quick = typeof results?.quick === 'boolean' ? results.quick : typeof st?.quick === 'boolean' ? st.quick : null;
  const methods = strings(src.methods);
  const seeds = numbers(src.seeds);
  for (const r of metrics.rows) {
    if (typeof r.method === 'string' && !methods.includes(r.method)) methods.push(r.method);
    if (typeof r.seed === 'number' && !seeds.includes(r.seed)) seeds.push(r.seed);
  }
  const entry: RunListEntry = { id: runId(root, dir), experiment, date, quick, methods, seeds, status, lastEpoch: lastEpoch(metrics.rows), problems };
  if (error) entry.error = error;
  return { entry, config, results, metrics };
}

/** The run list of the served folder, newest first. */
export function listRuns(root: string): RunListEntry[] {
  return findRunDirs(root)
    .map((d) => load(root, d).entry)
    .sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : a.id.localeCompare(b.id)));
}

/** The experiment's metric declaration in results.json (schema 1: `metrics: {primary, higherIsBetter, baseline, diagnostics}`). */
function metricDecl(results: Record<string, unknown> | null): { primary?: string; higherIsBetter?: boolean; baseline?: string | null; diagnostics: string[] } {
  const m = results?.metrics as Record<string, unknown> | undefined;
  if (!m || typeof m !== 'object') return { diagnostics: [] };
  return {
    primary: typeof m.primary === 'string' ? m.primary : undefined,
    higherIsBetter: typeof m.higherIsBetter === 'boolean' ? m.higherIsBetter : undefined,
    baseline: typeof m.baseline === 'string' ? m.baseline : null,
    diagnostics: strings(m.diagnostics),
  };
}

/** Where the baseline comes from: the experiment's declaration in results.json, the config's `baseline`, else the first method. */
function chooseBaseline(results: Record<string, unknown> | null, config: Record<string, unknown> | null, methods: string[]): Pick<RunDetail, 'baseline' | 'baselineSource'> {
  const declared = metricDecl(results).baseline;
  if (declared && methods.includes(declared)) return { baseline: declared, baselineSource: 'experiment' };
  if (typeof config?.baseline === 'string' && methods.includes(config.baseline)) return { baseline: config.baseline, baselineSource: 'config' };
  return methods.length ? { baseline: methods[0], baselineSource: 'first method' } : { baseline: null, baselineSource: null };
}

/**
 * Differences method − baseline of every final metric, paired by seed, with a t-based 95% CI (Student t, df = n − 1);
 * only seeds both methods finished are paired. Declared diagnostics (`skip`) and metrics constant over seeds in both
 * methods are left out.
 */
export function pairedDifferences(runs: { method: string; seed: number; metrics: Record<string, number> }[], baseline: string, skip: string[] = []): PairedDifference[] {
  const base = new Map(runs.filter((r) => r.method === baseline).map((r) => [r.seed, r.metrics]));
  const methods = [...new Set(runs.map((r) => r.method))].filter((m) => m !== baseline);
  const out: PairedDifference[] = [];
  for (const m of methods) {
    const mine = runs.filter((r) => r.method === m && base.has(r.seed));
    const keys = [...new Set(mine.flatMap((r) => Object.keys(r.metrics)))].filter((k) => !skip.includes(k));
    for (const k of keys) {
      const pairs = mine.map((r) => [r.metrics[k], base.get(r.seed)![k]]).filter(([a, b]) => typeof a === 'number' && typeof b === 'number' && Number.isFinite(a) && Number.isFinite(b));
      if (!pairs.length) continue;
      // A property that does not vary with the seed (a parameter count, a leak counter) is not an outcome to test.
      const constant = (xs: number[]) => xs.every((x) => x === xs[0]);
      if (pairs.length > 1 && constant(pairs.map((p) => p[0])) && constant(pairs.map((p) => p[1]))) continue;
      const t = pairedTTest(pairs.map((p) => p[0]), pairs.map((p) => p[1]));
      out.push({ method: m, metric: k, n: t.n, meanDiff: t.meanDiff, ci95: t.ci95, p: t.p });
    }
  }
  return out;
}

function runsOf(results: Record<string, unknown>): { method: string; seed: number; metrics: Record<string, number> }[] {
  const runs = Array.isArray(results.runs) ? results.runs : [];
  return runs.filter(
    (r): r is { method: string; seed: number; metrics: Record<string, number> } =>
      !!r && typeof r === 'object' && typeof r.method === 'string' && typeof r.seed === 'number' && !!r.metrics && typeof r.metrics === 'object',
  );
}

function summaryOf(results: Record<string, unknown>): Record<string, Record<string, Stat>> {
  const out: Record<string, Record<string, Stat>> = {};
  for (const [m, metrics] of Object.entries((results.summary ?? {}) as Record<string, unknown>)) {
    if (!metrics || typeof metrics !== 'object') continue;
    out[m] = {};
    for (const [k, s] of Object.entries(metrics as Record<string, unknown>)) {
      const st = s as Partial<Stat> | null;
      if (st && (typeof st.mean === 'number' || st.mean === null)) {
        // JSON has no NaN: schema 1 stores a non-finite mean/std as null.
        out[m][k] = { mean: typeof st.mean === 'number' ? st.mean : NaN, std: typeof st.std === 'number' ? st.std : NaN, n: typeof st.n === 'number' ? st.n : NaN };
        if (st.integer === true) out[m][k].integer = true;
      }
    }
  }
  return out;
}

/** Everything the run page shows, for the run directory `dir` (already checked to lie inside `root`). */
export function runDetail(root: string, dir: string): RunDetail {
  const { entry, config, results, metrics } = load(root, dir);
  const methods = results ? strings(results.methods).concat(entry.methods.filter((m) => !strings(results.methods).includes(m))) : entry.methods;
  const { baseline, baselineSource } = chooseBaseline(results, config, methods);
  const decl = metricDecl(results);
  return {
    ...entry,
    config,
    summary: results ? summaryOf(results) : null,
    baseline,
    baselineSource,
    paired: results && baseline ? pairedDifferences(runsOf(results), baseline, decl.diagnostics) : [],
    primary: decl.primary ?? null,
    higherIsBetter: decl.higherIsBetter ?? null,
    diagnostics: decl.diagnostics,
    command: typeof results?.command === 'string' ? results.command : null,
    wallSeconds: typeof results?.wallSeconds === 'number' ? results.wallSeconds : null,
    rows: metrics.rows,
    offset: metrics.offset,
    hasReport: existsSync(join(dir, 'report.md')),
  };
}

/** The run's status now (for the event stream). */
export function currentStatus(dir: string): { status: RunStatus; error?: string } {
  const problems: FileProblem[] = [];
  let results = readJson(dir, 'results.json', problems);
  if (results && !(Array.isArray(results.runs) && typeof results.summary === 'object' && results.summary)) results = null;
  return runStatus(dir, results, problems.length > 0 || (existsSync(join(dir, 'results.json')) && !results));
}

/** Number of '\n' in the first `bytes` bytes of a file (to number the lines read after an offset). */
export function countLines(file: string, bytes: number): number {
  if (bytes <= 0) return 0;
  try {
    const buf = readFileSync(file).subarray(0, bytes);
    let n = 0;
    for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) n++;
    return n;
  } catch {
    return 0;
  }
}

/** A saved model a page can load: `<run>/runs/<method>-seed<seed>/<file>` (e.g. the Newton recognizer.json). */
export interface SavedModel {
  run: string;
  experiment: string;
  /** Path under the served folder, for `/runs/<path>`. */
  path: string;
  /** The per-run folder name (method and seed). */
  name: string;
  date: string;
}

/** Every `<run>/runs/<name>/<file>` below the served folder, newest run first. */
export function findSavedModels(root: string, file: string): SavedModel[] {
  const out: SavedModel[] = [];
  for (const entry of listRuns(root)) {
    const dir = join(root, ...entry.id.split('/'));
    let names: string[];
    try {
      names = readdirSync(join(dir, 'runs'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      if (existsSync(join(dir, 'runs', n, file))) out.push({ run: entry.id, experiment: entry.experiment, path: `${entry.id}/runs/${n}/${file}`, name: n, date: entry.date });
    }
  }
  return out;
}

/** True when `dir` is a run directory (holds one of the marker files). */
export const isRunDir = (dir: string) => RUN_MARKERS.some((m) => existsSync(join(dir, m)));
