import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { runFolder, writeRunResults } from '../experiments/runner.js';
import { writeRunStatus } from '../experiments/run-status.js';
import { withKind } from '../results/index.js';
import type { MetricRow, Results, RunRecord } from '../experiments/types.js';
import { writeFileAtomic } from '../util/fs.js';
import { downloadFiles, filesKey } from './files.js';
import type { SweepJobResult, SweepPlan, SweepPlanPoint } from './plan.js';

/** A run's metric rows, kept in its folder between its commit and the point's metrics.jsonl. */
const ROWS = 'rows.jsonl';

/** True once the (method, seed) run of a point directory has been committed. */
export const isCommitted = (pointDir: string, method: string, seed: number) => existsSync(join(runFolder(pointDir, method, seed), 'result.json'));

/** Removes half-built commit folders left by a sweep that was killed mid-commit. */
export function removeStaleCommits(pointDir: string): void {
  const runs = join(pointDir, 'runs');
  if (!existsSync(runs)) return;
  for (const e of readdirSync(runs)) if (e.startsWith('.commit-')) rmSync(join(runs, e), { recursive: true, force: true });
}

/**
 * Commits one finished job into its point's run directory, exactly once: the run folder (artifacts from
 * Redis, rows, result.json) is built under a temporary name and renamed into place. rename(2) of a folder
 * onto a non-empty one fails, so of two commits of the same run (a job that ran twice, two sweeps collecting)
 * exactly one lands. Returns false when the run was already committed.
 */
export async function commitJob(redis: Redis, sweepDir: string, pointDir: string, jobId: string, res: SweepJobResult): Promise<boolean> {
  const { method, seed } = res.record;
  const final = runFolder(pointDir, method, seed);
  if (existsSync(join(final, 'result.json'))) return false;
  mkdirSync(join(pointDir, 'runs'), { recursive: true });
  const tmp = join(pointDir, 'runs', `.commit-${jobId.slice(2, 14)}-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    const got = await downloadFiles(redis, jobId, tmp, res.files);
    const lost = res.files.filter((f) => !got.includes(f));
    if (lost.length) process.stderr.write(`efftrain sweep: warning: ${method} seed ${seed}: artifact(s) ${lost.join(', ')} no longer in Redis; committing the metrics without them\n`);
    writeFileSync(join(tmp, ROWS), res.rows.map((r) => JSON.stringify(withKind({ method, seed, ...r })) + '\n').join(''));
    writeFileSync(join(tmp, 'result.json'), JSON.stringify(res.record) + '\n');
    renameSync(tmp, final);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(join(final, 'result.json'))) return false;
    throw e;
  }
  appendFileSync(join(sweepDir, 'commits.jsonl'), JSON.stringify({ job: jobId, point: pointDir, method, seed, worker: res.worker, resumedFrom: res.resumedFrom, at: new Date().toISOString() }) + '\n');
  await redis.del(filesKey(jobId));
  return true;
}

/**
 * Once every run of a point is committed, writes the point's metrics.jsonl, report and results.json with the
 * same code as `efftrain run`, then drops the per-run row files. Returns the results (or null if incomplete).
 */
export async function finalizePoint(plan: SweepPlan, point: SweepPlanPoint, pointDir: string, command: string): Promise<Results | null> {
  const resultsPath = join(pointDir, 'results.json');
  if (existsSync(resultsPath)) return JSON.parse(readFileSync(resultsPath, 'utf8')) as Results;
  if (!point.jobs.every((j) => isCommitted(pointDir, j.method, j.seed))) return null;
  const records: (RunRecord & { backend?: string })[] = [];
  const rows: (MetricRow & { method: string; seed: number })[] = [];
  for (const j of point.jobs) {
    const folder = runFolder(pointDir, j.method, j.seed);
    records.push(JSON.parse(readFileSync(join(folder, 'result.json'), 'utf8')));
    if (existsSync(join(folder, ROWS))) rows.push(...readFileSync(join(folder, ROWS), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
  }
  writeFileAtomic(join(pointDir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r) + '\n').join(''));
  const results = await writeRunResults({
    experiment: plan.experiment,
    outDir: pointDir,
    config: point.config,
    quick: plan.quick,
    backend: records[0]?.backend ?? 'unknown',
    runs: records,
    rows,
    wallSeconds: records.reduce((a, r) => a + r.wallSeconds, 0),
    command,
  });
  for (const j of point.jobs) rmSync(join(runFolder(pointDir, j.method, j.seed), ROWS), { force: true });
  // The same status file a local run leaves, so the dashboard shows a finished point as done.
  writeRunStatus(pointDir, { experiment: plan.experiment, quick: plan.quick, startedAt: new Date(Date.now() - results.wallSeconds * 1000).toISOString() }, 'done');
  return results;
}
