import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { BackendChoice } from '../engine/backend.js';
import { blasThreadsForRuns } from '../engine/threads.js';
import { UserError } from '../errors.js';
import { applyRunMetrics, pairedAgainstBaseline, parseMetricRow, parseResults, RESULTS_SCHEMA_VERSION, summarize, withKind } from '../results/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { resolveConfig, type ConfigSources } from './config.js';
import { ProgressView } from './progress.js';
import { getExperiment } from './registry.js';
import type { Experiment, MetricDecl, MetricRow, ReportInput, Results, RunRecord } from './types.js';
import { RunThread } from './thread.js';
import type { WorkerInit } from './worker.js';
import { writeReport } from '../report/report.js';
import { writeRunStatus } from './run-status.js';

export interface RunOptions extends ConfigSources {
  experiment: string;
  outDir?: string;
  backend?: BackendChoice;
  wasmPatches?: boolean;
  workers?: number;
  resume?: boolean;
  quiet?: boolean;
  /** The command line, recorded in results.json and the report. */
  command?: string;
}

/** Per-run folder (checkpoints, saved models, the run's own result.json used by --resume). */
export const runFolder = (outDir: string, method: string, seed: number) => join(outDir, 'runs', `${method.replace(/[^A-Za-z0-9._@-]/g, '_')}-seed${seed}`);

export { summarize };

function timestamp(): string {
  return new Date().toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');
}

/**
 * Runs an experiment: resolves the config, runs every (method, seed) pair on `workers` worker threads (each
 * with its own tfjs), streams metrics.jsonl, and on success writes results.json, report.md and charts.
 * Results do not depend on the number of workers: each run's randomness comes only from its seed.
 * On any failure no results.json is written and the error is rethrown.
 */
export async function runExperiment(o: RunOptions): Promise<{ outDir: string; results: Results }> {
  const exp = getExperiment(o.experiment);
  const config = resolveConfig(exp, o);
  await exp.validate?.(config);
  const outDir = o.outDir ?? join('runs', `${exp.name}-${timestamp()}`);
  const resultsPath = join(outDir, 'results.json');
  if (o.resume) {
    if (!existsSync(join(outDir, 'config.json'))) throw new UserError(`--resume: ${outDir} holds no config.json (nothing to resume)`);
    // Methods and seeds may grow (or shrink) on resume: finished (method, seed) runs are kept, new ones run.
    const rest = ({ methods: _m, seeds: _s, ...other }: Record<string, unknown>) => JSON.stringify(other);
    if (rest(JSON.parse(readFileSync(join(outDir, 'config.json'), 'utf8'))) !== rest(config))
      throw new UserError(`--resume: the resolved config differs from ${join(outDir, 'config.json')} in more than methods/seeds; use the same options`);
  } else if (existsSync(resultsPath) || existsSync(join(outDir, 'metrics.jsonl'))) {
    throw new UserError(`${outDir} already holds a run; choose another --out or add --resume`);
  }
  mkdirSync(outDir, { recursive: true });
  rmSync(resultsPath, { force: true });
  writeFileAtomic(join(outDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const run = { experiment: exp.name, quick: !!o.quick, startedAt: new Date().toISOString() };
  writeRunStatus(outDir, run, 'running');
  try {
    const out = await runAll(o, exp, config, outDir);
    writeRunStatus(outDir, run, 'done');
    return out;
  } catch (e) {
    writeRunStatus(outDir, run, 'failed', (e as Error).message);
    throw e;
  }
}

/** Runs every (method, seed) pair and writes metrics.jsonl, results.json and the report (status.json is the caller's). */
async function runAll(o: RunOptions, exp: Experiment<any>, config: { methods: string[]; seeds: number[] }, outDir: string): Promise<{ outDir: string; results: Results }> {
  const resultsPath = join(outDir, 'results.json');
  const pairs: { method: string; seed: number }[] = [];
  for (const method of config.methods) for (const seed of config.seeds) pairs.push({ method, seed });
  const records = new Map<string, RunRecord>();
  const key = (m: string, s: number) => `${m}#${s}`;
  const metricsPath = join(outDir, 'metrics.jsonl');
  if (o.resume) {
    for (const p of pairs) {
      const f = join(runFolder(outDir, p.method, p.seed), 'result.json');
      if (existsSync(f)) records.set(key(p.method, p.seed), JSON.parse(readFileSync(f, 'utf8')));
    }
    // Keep only finished runs' rows; unfinished runs replay their history from their checkpoint.
    const kept = existsSync(metricsPath)
      ? readFileSync(metricsPath, 'utf8').split('\n').filter((l) => l && records.has(key(JSON.parse(l).method, JSON.parse(l).seed)))
      : [];
    writeFileSync(metricsPath, kept.map((l) => l + '\n').join(''));
  } else writeFileSync(metricsPath, '');

  const todo = pairs.filter((p) => !records.has(key(p.method, p.seed)));
  const nWorkers = Math.max(1, Math.min(o.workers ?? availableParallelism(), todo.length || 1));
  const view = new ProgressView(pairs.length, process.stderr, o.quiet);
  const t0 = performance.now();
  let backend = 'unknown';
  if (todo.length) {
    backend = await runPool(nWorkers, todo, {
      init: {
        experiment: exp.name,
        config,
        quick: o.quick,
        backend: o.backend ?? 'auto',
        wasmPatches: o.wasmPatches ?? true,
        // One OpenBLAS thread per product unless EFFTRAIN_BLAS_THREADS asks for more (capped at
        // cores / requested workers): results then never depend on --workers or on how many runs a
        // --resume has left. See blasThreadsForRuns.
        blasThreads: blasThreadsForRuns(o.workers ?? availableParallelism(), availableParallelism()),
        resume: !!o.resume,
      },
      outDir,
      onLog: (m, s, row) => {
        // Validated when written: a malformed row is a bug in the experiment, caught at its source.
        const full = withKind({ method: m, seed: s, ...row });
        parseMetricRow(JSON.parse(JSON.stringify(full)), `${metricsPath} (${m} seed ${s})`);
        appendFileSync(metricsPath, JSON.stringify(full) + '\n');
      },
      onProgress: (m, s, p) => view.update({ method: m, seed: s, ...p }),
      onReady: (line) => {
        if (!o.quiet) process.stderr.write(`efftrain: ${exp.name}: ${todo.length} run(s) on ${nWorkers} worker(s), ${line}\n`);
      },
      onDone: (r) => {
        records.set(key(r.method, r.seed), r);
        writeFileAtomic(join(runFolder(outDir, r.method, r.seed), 'result.json'), JSON.stringify(r) + '\n');
        const main = Object.entries(r.metrics).slice(0, 2).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(', ');
        view.finishRun(r.method, r.seed, `${main} in ${r.wallSeconds.toFixed(1)}s`);
      },
    }).finally(() => view.close());
  } else backend = JSON.parse(readFileSync(join(runFolder(outDir, pairs[0].method, pairs[0].seed), 'result.json'), 'utf8')).backend ?? 'unknown';

  const runs = pairs.map((p) => records.get(key(p.method, p.seed))!);
  const rows = readFileSync(metricsPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as MetricRow & { method: string; seed: number });
  const results = await writeRunResults({ experiment: exp.name, outDir, config, quick: o.quick, backend, runs, rows, wallSeconds: (performance.now() - t0) / 1000, command: o.command });
  return { outDir, results };
}

/** Writes report.md and charts for a finished run: the generic report plus the experiment's own sections. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function reportRun(exp: Experiment<any>, input: ReportInput<any>): Promise<string> {
  const sections = (await exp.report?.(input)) ?? [];
  return writeReport({ results: input.results, rows: input.rows, runDir: input.runDir, description: exp.description, sections });
}

/** The experiment's metric declaration, resolved for `config`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function metricDecl(exp: Experiment<any>, config: unknown): MetricDecl {
  return typeof exp.metrics === 'function' ? exp.metrics(config) : exp.metrics;
}

export interface RunResultsInput {
  experiment: string;
  outDir: string;
  /** The resolved config (as in the run directory's config.json). */
  config: { methods: string[]; seeds: number[] };
  quick: boolean;
  backend: string;
  /** One record per (method, seed), in methods × seeds order. */
  runs: RunRecord[];
  /** metrics.jsonl's rows. */
  rows: (MetricRow & { method: string; seed: number })[];
  wallSeconds: number;
  command?: string;
}

/**
 * Writes a finished run directory's results.json (validated, last and atomically: it marks the run finished),
 * report.md and charts from its runs and metric rows. Shared by `efftrain run` and the sweep's point directories.
 */
export async function writeRunResults(i: RunResultsInput): Promise<Results> {
  const exp = getExperiment(i.experiment);
  const { config, rows, outDir } = i;
  const baseRuns: RunRecord[] = i.runs.map((r) => ({ method: r.method, seed: r.seed, metrics: r.metrics, wallSeconds: r.wallSeconds }));
  const decl = metricDecl(exp, config);
  const d = exp.derive?.({ config, rows, runDir: outDir, runs: baseRuns }) ?? {};
  const runs = applyRunMetrics(baseRuns, d);
  const paired = pairedAgainstBaseline(runs, decl);
  const results: Results = {
    schemaVersion: RESULTS_SCHEMA_VERSION,
    experiment: exp.name,
    quick: i.quick,
    backend: i.backend,
    seeds: config.seeds,
    methods: config.methods,
    metrics: decl,
    runs,
    summary: summarize(runs),
    derived: { ...(Object.keys(paired).length ? { paired_vs_baseline: paired } : {}), ...(d.values ?? {}) },
    wallSeconds: i.wallSeconds,
    command: i.command,
  };
  const resultsPath = join(outDir, 'results.json');
  // Validated when written (after a JSON round trip: NaN and ±Infinity are stored as null).
  parseResults(JSON.parse(JSON.stringify(results)), resultsPath);
  await reportRun(exp, { results, config, rows, runDir: outDir });
  writeFileAtomic(resultsPath, JSON.stringify(results, null, 2) + '\n');
  return results;
}

interface PoolHandlers {
  init: WorkerInit;
  outDir: string;
  onLog(method: string, seed: number, row: Record<string, unknown>): void;
  onProgress(method: string, seed: number, p: Record<string, unknown>): void;
  onDone(r: RunRecord): void;
  /** Called once, with the first worker's engine line (engineLine). */
  onReady(line: string): void;
}

/** Runs `jobs` on `n` worker threads; the first failure stops every thread and rejects. Resolves with the backend. */
async function runPool(n: number, jobs: { method: string; seed: number }[], h: PoolHandlers): Promise<string> {
  const queue = [...jobs];
  const threads = Array.from({ length: n }, () => new RunThread(h.init));
  let backend = 'unknown';
  let failed = false;
  try {
    await Promise.all(
      threads.map(async (t) => {
        const b = await t.ready;
        if (backend === 'unknown') h.onReady(t.engineLine);
        backend = b;
        for (let job = queue.shift(); job && !failed; job = queue.shift()) {
          const { method, seed } = job;
          const r = await t.run(
            { method, seed, artifactsDir: runFolder(h.outDir, method, seed) },
            { onLog: (row) => h.onLog(method, seed, row), onProgress: (p) => h.onProgress(method, seed, p) },
          );
          (r as RunRecord & { backend?: string }).backend = b;
          if (!failed) h.onDone(r);
        }
      }),
    );
  } catch (e) {
    failed = true;
    await Promise.all(threads.map((t) => t.terminate()));
    throw e;
  }
  for (const t of threads) t.close();
  return backend;
}
