import { createHash } from 'node:crypto';
import { UserError } from '../errors.js';
import { parseSet, resolveConfig, type ConfigSources } from '../experiments/config.js';
import { getExperiment } from '../experiments/registry.js';

/** One `--grid key=v1,v2,…` axis: the key and its values as typed (each parsed like a `--set` value). */
export interface GridAxis {
  key: string;
  values: string[];
}

/** Splits on commas outside brackets, braces and quotes: `[32],[64,32]` → `[32]`, `[64,32]`. */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = '';
  let cur = '';
  for (const c of s) {
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out.map((x) => x.trim());
}

/** Parses `--grid key=v1,v2` (values may be JSON, e.g. `mlpHidden=[32],[64,32]`). */
export function parseGridAxis(expr: string): GridAxis {
  const eq = expr.indexOf('=');
  if (eq <= 0) throw new UserError(`--grid expects key=v1,v2,…, got "${expr}"`);
  const key = expr.slice(0, eq).trim();
  const values = splitTopLevel(expr.slice(eq + 1));
  if (!values.length || values.some((v) => v === '')) throw new UserError(`--grid ${key}: empty value in "${expr}"`);
  if (new Set(values).size !== values.length) throw new UserError(`--grid ${key}: duplicate values in "${expr}"`);
  if (key === 'methods' || key === 'seeds') throw new UserError(`--grid ${key}: use --${key} (every point runs all methods × seeds)`);
  return { key, values };
}

/** One config point of a sweep: its grid assignments (key → raw value) and a folder-safe label. */
export interface GridPoint {
  assign: { key: string; value: string }[];
  label: string;
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9._@+-]+/g, '_').replace(/^_+|_+$/g, '') || '_';

/** The cartesian product of the axes, first axis slowest; the single point `base` when there are none. */
export function gridPoints(axes: GridAxis[]): GridPoint[] {
  const keys = new Set<string>();
  for (const a of axes) {
    if (keys.has(a.key)) throw new UserError(`--grid ${a.key} given twice`);
    keys.add(a.key);
  }
  let pts: { key: string; value: string }[][] = [[]];
  for (const a of axes) pts = pts.flatMap((p) => a.values.map((v) => [...p, { key: a.key, value: v }]));
  const seen = new Map<string, number>();
  return pts.map((assign) => {
    let label = assign.length ? assign.map((x) => `${safe(x.key)}=${safe(x.value)}`).join(',') : 'base';
    const n = seen.get(label) ?? 0;
    seen.set(label, n + 1);
    if (n) label += `~${n}`;
    return { assign, label };
  });
}

/** JSON with object keys sorted at every level (a stable hash input). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The job id of one run: `r_` + sha256 of (experiment, quick, the point's resolved config without the method
 * and seed lists, method, seed). Everything a run's numbers depend on, so the same run submitted again — by
 * the same sweep, a resumed one, or another sweep sharing the point — is one job. (BullMQ rejects ids with `:`.)
 */
export function runJobId(experiment: string, quick: boolean, config: Record<string, unknown>, method: string, seed: number): string {
  const { methods: _m, seeds: _s, ...rest } = config;
  return `r_${sha(canonicalJson({ v: 1, experiment, quick, config: rest, method, seed }))}`;
}

/** What a worker receives for one run. */
export interface SweepJobData {
  v: 1;
  sweep: string;
  point: string;
  experiment: string;
  quick: boolean;
  /** The point's resolved config (identical to its run directory's config.json). */
  config: { methods: string[]; seeds: number[] } & Record<string, unknown>;
  method: string;
  seed: number;
}

/** What a worker returns for one run: the record as in runs/<method>-seed<s>/result.json and its metric rows. */
export interface SweepJobResult {
  record: { method: string; seed: number; metrics: Record<string, number>; wallSeconds: number; backend: string };
  rows: Record<string, unknown>[];
  /** Relative paths of the artifact files the worker left in Redis for the sweep to commit. */
  files: string[];
  worker: string;
  resumedFrom: string[];
}

export interface SweepPlanPoint extends GridPoint {
  config: { methods: string[]; seeds: number[] } & Record<string, unknown>;
  jobs: { id: string; method: string; seed: number }[];
}

export interface SweepPlan {
  id: string;
  experiment: string;
  quick: boolean;
  axes: GridAxis[];
  points: SweepPlanPoint[];
}

/**
 * Resolves every grid point's config exactly as `efftrain run` would (defaults ← quick ← file ← --set ← grid
 * ← flags) and lists its jobs. Invalid configs fail here, before anything is enqueued.
 */
export async function planSweep(experiment: string, src: ConfigSources, axes: GridAxis[]): Promise<SweepPlan> {
  const exp = getExperiment(experiment);
  const points: SweepPlanPoint[] = [];
  for (const p of gridPoints(axes)) {
    const sets = [...(src.sets ?? []), ...p.assign.map((a) => `${a.key}=${a.value}`)];
    for (const a of p.assign) parseSet(`${a.key}=${a.value}`);
    let config;
    try {
      config = resolveConfig(exp, { ...src, sets });
    } catch (e) {
      throw p.assign.length ? new UserError(`grid point ${p.label}: ${(e as Error).message}`) : e;
    }
    await exp.validate?.(config);
    const jobs = config.methods.flatMap((method: string) => config.seeds.map((seed: number) => ({ id: runJobId(exp.name, src.quick, config, method, seed), method, seed })));
    points.push({ ...p, config, jobs });
  }
  const id = `s_${sha(canonicalJson({ experiment, quick: src.quick, points: points.map((p) => [p.label, p.config]) })).slice(0, 16)}`;
  return { id, experiment: exp.name, quick: src.quick, axes, points };
}
