/**
 * Tabular regression data: a loader for JSON-records / CSV files (default: the `cars.json` table of the
 * `vega-datasets` npm package, Auto MPG), train-statistics standardisation, and target-outlier injection.
 *
 * Column handling (automatic, documented in {@link loadTabular}): numeric columns are used as they are,
 * ISO date strings become a fractional year, string columns with few distinct values are one-hot encoded,
 * and other columns (free text such as a car's name) are dropped. Rows with a missing value in the target
 * or in any used column are dropped.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import type { Rng } from '../engine/rng.js';

/** A dense tabular regression data set. `x` is row-major n × d. */
export interface TabularDataset {
  /** Where the rows came from (file path). */
  source: string;
  targetName: string;
  featureNames: string[];
  x: Float32Array;
  y: Float32Array;
  n: number;
  d: number;
  /** Rows dropped because of missing values. */
  droppedRows: number;
  /** Columns not used as features (free text, too many categories), with the reason. */
  droppedColumns: string[];
}

export interface TabularOptions {
  /** Target column (default `Miles_per_Gallon`, the Auto-MPG target of vega-datasets' cars.json). */
  target?: string;
  /** Columns never used as features (default `Name`). */
  exclude?: string[];
  /** String columns with at most this many distinct values are one-hot encoded (default 12). */
  maxCategories?: number;
}

type Cell = number | string | null;
type Row = Record<string, Cell>;

const INSTALL_HINT = 'run `npm install vega-datasets` (the default regression data, cars.json) or pass --data FILE (a JSON array of records or a CSV file with a header row)';

/**
 * Path of `cars.json` inside the installed `vega-datasets` package. Throws a UserError telling the user to
 * `npm install vega-datasets` when the package is missing.
 */
export function vegaCarsPath(): string {
  const candidates: string[] = [];
  try {
    // vega-datasets' "exports" map exposes only its JS entry point; its data folder sits next to build/.
    const entry = fileURLToPath(import.meta.resolve('vega-datasets'));
    candidates.push(join(dirname(entry), '..', 'data', 'cars.json'));
  } catch {
    // not resolvable from here; fall back to walking up from this module and the working directory
  }
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    let dir = resolve(start);
    for (;;) {
      candidates.push(join(dir, 'node_modules', 'vega-datasets', 'data', 'cars.json'));
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  const hit = candidates.find((p) => existsSync(p));
  if (!hit) throw new UserError(`the regression data set needs the vega-datasets package, which is not installed: ${INSTALL_HINT}`);
  return hit;
}

/** Parses one CSV line with RFC-4180 quoting. */
function splitCsvLine(line: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === sep) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

const MISSING = new Set(['', 'na', 'nan', 'null', 'none', '?']);

/** CSV (or TSV) text with a header row → records; numeric-looking cells become numbers, NA-like cells null. */
export function parseCsv(text: string, file = 'CSV'): Row[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2) throw new UserError(`${file}: expected a header row and at least one data row`);
  const sep = lines[0].includes('\t') && !lines[0].includes(',') ? '\t' : lines[0].includes(';') && !lines[0].includes(',') ? ';' : ',';
  const header = splitCsvLine(lines[0], sep).map((h) => h.trim());
  return lines.slice(1).map((line, li) => {
    const cells = splitCsvLine(line, sep);
    if (cells.length !== header.length) throw new UserError(`${file}:${li + 2}: ${cells.length} cells but the header has ${header.length} columns`);
    const row: Row = {};
    header.forEach((h, j) => {
      const raw = cells[j].trim();
      if (MISSING.has(raw.toLowerCase())) row[h] = null;
      else row[h] = raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
    });
    return row;
  });
}

function readRows(file: string): Row[] {
  if (!existsSync(file)) throw new UserError(`regression data file ${file} not found (${INSTALL_HINT})`);
  const text = readFileSync(file, 'utf8');
  if (/\.json$/i.test(file) || /^\s*\[/.test(text)) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new UserError(`${file}: invalid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(v) || v.some((r) => typeof r !== 'object' || r === null || Array.isArray(r))) {
      throw new UserError(`${file}: expected a JSON array of records (objects), like vega-datasets' cars.json`);
    }
    return (v as Record<string, unknown>[]).map((r) => {
      const row: Row = {};
      for (const [k, x] of Object.entries(r)) {
        row[k] = typeof x === 'number' ? (Number.isFinite(x) ? x : null) : typeof x === 'string' ? (MISSING.has(x.trim().toLowerCase()) ? null : x) : null;
      }
      return row;
    });
  }
  return parseCsv(text, file);
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}/;

/** An ISO date string → fractional year (e.g. "1970-07-01" → 1970.5). */
function fractionalYear(s: string): number {
  const t = Date.parse(s);
  const d = new Date(t);
  const y = d.getUTCFullYear();
  const start = Date.UTC(y, 0, 1);
  const end = Date.UTC(y + 1, 0, 1);
  return y + (t - start) / (end - start);
}

/**
 * Loads a regression table. `file` = '' loads vega-datasets' cars.json (Auto MPG: predict miles per gallon).
 * Accepts a JSON array of records or a CSV/TSV file with a header row. Column handling:
 * - the target column must be numeric; rows whose target is missing are dropped;
 * - numeric columns → one feature each; ISO date strings (`1970-01-01`) → fractional year;
 * - string columns with ≤ `maxCategories` distinct values → one-hot features named `col=value`;
 * - other columns and `exclude` (default `Name`) are not used;
 * - rows with a missing value in any used column are dropped (count in `droppedRows`).
 * Features are NOT standardised here; use {@link standardizeColumns} with training-row statistics.
 */
export function loadTabular(file: string, opts: TabularOptions = {}): TabularDataset {
  const source = file || vegaCarsPath();
  const target = opts.target ?? 'Miles_per_Gallon';
  const exclude = new Set(opts.exclude ?? ['Name']);
  const maxCat = opts.maxCategories ?? 12;
  const rows = readRows(source);
  if (!rows.length) throw new UserError(`${source}: no rows`);
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  if (!columns.includes(target)) throw new UserError(`${source}: no target column "${target}" (columns: ${columns.join(', ')}); set it with --set target=NAME`);
  if (rows.some((r) => r[target] !== null && r[target] !== undefined && typeof r[target] !== 'number')) {
    throw new UserError(`${source}: target column "${target}" must be numeric`);
  }
  type Col = { name: string; kind: 'num' } | { name: string; kind: 'date' } | { name: string; kind: 'cat'; values: string[] };
  const used: Col[] = [];
  const droppedColumns: string[] = [];
  for (const c of columns) {
    if (c === target) continue;
    if (exclude.has(c)) {
      droppedColumns.push(`${c} (excluded)`);
      continue;
    }
    const vals = rows.map((r) => r[c]).filter((v): v is number | string => v !== null && v !== undefined);
    if (vals.every((v) => typeof v === 'number')) used.push({ name: c, kind: 'num' });
    else if (vals.every((v) => typeof v === 'string' && ISO_DATE.test(v) && Number.isFinite(Date.parse(v)))) used.push({ name: c, kind: 'date' });
    else {
      const distinct = [...new Set(vals.map(String))].sort();
      if (distinct.length <= maxCat) used.push({ name: c, kind: 'cat', values: distinct });
      else droppedColumns.push(`${c} (${distinct.length} distinct text values)`);
    }
  }
  const featureNames = used.flatMap((c) => (c.kind === 'cat' ? c.values.map((v) => `${c.name}=${v}`) : [c.name]));
  const d = featureNames.length;
  if (d === 0) throw new UserError(`${source}: no usable feature columns besides the target "${target}"`);
  const keep = rows.filter((r) => typeof r[target] === 'number' && used.every((c) => r[c.name] !== null && r[c.name] !== undefined));
  const n = keep.length;
  if (n < 10) throw new UserError(`${source}: only ${n} complete rows (need ≥ 10)`);
  const x = new Float32Array(n * d);
  const y = new Float32Array(n);
  keep.forEach((r, i) => {
    y[i] = r[target] as number;
    let j = 0;
    for (const c of used) {
      const v = r[c.name];
      if (c.kind === 'num') x[i * d + j++] = v as number;
      else if (c.kind === 'date') x[i * d + j++] = fractionalYear(v as string);
      else for (const cat of c.values) x[i * d + j++] = String(v) === cat ? 1 : 0;
    }
  });
  return { source, targetName: target, featureNames, x, y, n, d, droppedRows: rows.length - n, droppedColumns };
}

/** Column means and standard deviations (population std, 1 where a column is constant) over `rows`. */
export function columnStats(x: Float32Array, d: number, rows: ArrayLike<number>): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  const n = rows.length;
  if (n === 0) throw new Error('columnStats: no rows');
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[rows[i] * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j] += (x[rows[i] * d + j] - mean[j]) ** 2;
  for (let j = 0; j < d; j++) {
    std[j] = Math.sqrt(std[j] / n);
    if (!(std[j] > 1e-12)) std[j] = 1;
  }
  return { mean, std };
}

/** Returns the rows `rows` of `x` standardised with the given statistics (new n' × d array). */
export function standardizeColumns(x: Float32Array, d: number, rows: ArrayLike<number>, stats: { mean: Float64Array; std: Float64Array }): Float32Array {
  const out = new Float32Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) for (let j = 0; j < d; j++) out[i * d + j] = (x[rows[i] * d + j] - stats.mean[j]) / stats.std[j];
  return out;
}

export interface TargetOutliers {
  /** Targets with outliers substituted. */
  y: Float32Array;
  /** 1 where the target was replaced by an outlier. */
  outlier: Uint8Array;
  /** The uniform range the outliers were drawn from. */
  range: [number, number];
  /** Fraction actually replaced (= round(rate·n)/n). */
  actualRate: number;
}

/**
 * Replaces exactly round(rate·n) targets, chosen uniformly at random without replacement, by outliers
 * drawn uniformly from [lo, hi] with lo = min(y) − below·R, hi = max(y) + above·R, R = max(y) − min(y)
 * (min/max/R of the given clean targets). E.g. below = 0, above = 2 on miles per gallon (9–46.6) draws
 * outliers from U(9, 121.8): a third fall inside the real range, two thirds above it.
 */
export function injectTargetOutliers(y: ArrayLike<number>, rate: number, rng: Rng, spread: { below: number; above: number } = { below: 0, above: 2 }): TargetOutliers {
  if (!(rate >= 0 && rate <= 1)) throw new Error(`outlier rate must be in [0,1], got ${rate}`);
  if (!(spread.below >= 0 && spread.above >= 0)) throw new Error('outlier spread must be ≥ 0');
  const n = y.length;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    lo = Math.min(lo, y[i]);
    hi = Math.max(hi, y[i]);
  }
  const r = n ? hi - lo : 0;
  const range: [number, number] = [lo - spread.below * r, hi + spread.above * r];
  const out = Float32Array.from(y);
  const outlier = new Uint8Array(n);
  const k = Math.round(rate * n);
  const perm = rng.permutation(n);
  for (let t = 0; t < k; t++) {
    const i = perm[t];
    out[i] = range[0] + rng.next() * (range[1] - range[0]);
    outlier[i] = 1;
  }
  return { y: out, outlier, range, actualRate: n ? k / n : 0 };
}
