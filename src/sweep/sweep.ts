import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { Job, Queue, QueueEvents } from 'bullmq';
import { UserError } from '../errors.js';
import type { ConfigSources } from '../experiments/config.js';
import { ProgressView } from '../experiments/progress.js';
import { writeFileAtomic } from '../util/fs.js';
import { commitJob, finalizePoint, isCommitted, removeStaleCommits } from './commit.js';
import { parseGridAxis, planSweep, type SweepJobData, type SweepJobResult, type SweepPlan, type SweepPlanPoint } from './plan.js';
import { QUEUE_NAME, SWEEPS_KEY } from './queue.js';
import { bullConnection, connectRedis, redactUrl } from './redis.js';
import { writeSweepSummary, type PointResults } from './summary.js';

export interface SweepOptions extends ConfigSources {
  experiment: string;
  queue: string;
  /** `--grid key=v1,v2` expressions. */
  grid?: string[];
  outDir: string;
  resume?: boolean;
  /** Put failed jobs back in the queue once (after fixing what made them fail). */
  retryFailed?: boolean;
  quiet?: boolean;
  /** Primary metric of the summary (default: the experiment's first metric). */
  metric?: string;
  /** The sweep's command line (recorded in sweep.json). */
  command?: string;
  /** Arguments of the equivalent `efftrain run` (config options only), for each point's reproduce line. */
  runArgs?: string[];
  /** Aborting stops waiting and leaves the jobs queued (Ctrl-C). */
  signal?: AbortSignal;
  /** Fallback poll of Redis when no event arrives (ms). */
  pollMs?: number;
  log?: (line: string) => void;
}

export interface SweepFailure {
  point: string;
  method: string;
  seed: number;
  job: string;
  error: string;
}

export interface SweepOutcome {
  outDir: string;
  plan: SweepPlan;
  committed: number;
  failures: SweepFailure[];
  interrupted: boolean;
  table: string | null;
}

const shellQuote = (s: string) => (/^[A-Za-z0-9_./:=,@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * `efftrain sweep`: enqueues one BullMQ job per (config point, method, seed) under a deterministic id, follows
 * them, and commits each result into the point's run directory exactly once. The directory is the source of
 * truth: every pass re-adds jobs that neither the directory nor Redis has (a Redis restarted without
 * persistence), so running the same sweep again is a resume.
 */
export async function runSweep(o: SweepOptions): Promise<SweepOutcome> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const plan = await planSweep(o.experiment, o, (o.grid ?? []).map(parseGridAxis));
  const outDir = o.outDir;
  const sweepJson = join(outDir, 'sweep.json');
  if (existsSync(sweepJson)) {
    if (!o.resume) throw new UserError(`${outDir} already holds a sweep; add --resume to continue it, or choose another --out`);
    const prev = JSON.parse(readFileSync(sweepJson, 'utf8')) as { id: string };
    if (prev.id !== plan.id) throw new UserError(`--resume: ${sweepJson} is sweep ${prev.id}, but these options plan sweep ${plan.id}; use the same options`);
  } else if (o.resume) throw new UserError(`--resume: ${outDir} holds no sweep.json (nothing to resume)`);
  const pointDir = (p: SweepPlanPoint) => join(outDir, p.label);
  mkdirSync(outDir, { recursive: true });
  for (const p of plan.points) {
    const cfgPath = join(pointDir(p), 'config.json');
    const text = JSON.stringify(p.config, null, 2) + '\n';
    if (existsSync(cfgPath) && readFileSync(cfgPath, 'utf8') !== text) throw new UserError(`${cfgPath} differs from the planned config of point ${p.label}`);
    writeFileAtomic(cfgPath, text);
    removeStaleCommits(pointDir(p));
  }
  const nJobs = plan.points.reduce((a, p) => a + p.jobs.length, 0);
  writeFileAtomic(
    sweepJson,
    JSON.stringify({ id: plan.id, experiment: plan.experiment, quick: plan.quick, queue: redactUrl(o.queue), command: o.command, axes: plan.axes, points: plan.points.map((p) => ({ label: p.label, dir: p.label, assign: p.assign, jobs: p.jobs })) }, null, 2) + '\n',
  );
  const runCommand = (p: SweepPlanPoint) => ['efftrain', 'run', plan.experiment, ...(o.runArgs ?? []), ...p.assign.flatMap((a) => ['--set', `${a.key}=${a.value}`])].map(shellQuote).join(' ');

  const byId = new Map<string, { point: SweepPlanPoint; method: string; seed: number }>();
  for (const p of plan.points) for (const j of p.jobs) byId.set(j.id, { point: p, method: j.method, seed: j.seed });
  const todo = plan.points.flatMap((p) => p.jobs.filter((j) => !isCommitted(pointDir(p), j.method, j.seed)));
  if (!o.quiet) log(`efftrain sweep ${plan.id}: ${plan.experiment}, ${plan.points.length} point(s), ${nJobs} run(s) (${nJobs - todo.length} already committed) via ${redactUrl(o.queue)}; out ${outDir}`);

  const redis = await connectRedis(o.queue);
  let down = false;
  const onError = (e: Error) => {
    if (!down && !o.quiet) log(`sweep: Redis connection lost (${e.message.split('\n')[0]}); waiting for it…`);
    down = true;
  };
  redis.on('error', onError);
  redis.on('ready', () => {
    if (down && !o.quiet) log('sweep: Redis reconnected');
    down = false;
    wake();
  });
  const queue = new Queue<SweepJobData, SweepJobResult>(QUEUE_NAME, { connection: bullConnection(o.queue) });
  queue.on('error', onError);
  const events = new QueueEvents(QUEUE_NAME, { connection: bullConnection(o.queue) });
  events.on('error', onError);
  const view = new ProgressView(todo.length, process.stderr, o.quiet);
  let wakeUp: (() => void) | null = null;
  const wake = () => wakeUp?.();
  events.on('progress', ({ jobId, data }) => {
    const j = byId.get(jobId);
    if (j && data && typeof data === 'object') view.update({ ...(data as object), method: j.point.label === 'base' ? j.method : `${j.point.label} ${j.method}`, seed: j.seed });
  });
  events.on('completed', ({ jobId }) => byId.has(jobId) && wake());
  events.on('failed', ({ jobId }) => byId.has(jobId) && wake());

  const failures = new Map<string, SweepFailure>();
  const retried = new Set<string>();
  let committed = 0;
  let enqueuedOnce = false;
  const pointResults = new Map<string, PointResults>();

  const pass = async (): Promise<number> => {
    await redis.hset(SWEEPS_KEY, plan.id, JSON.stringify({ experiment: plan.experiment, out: resolve(outDir), host: hostname(), jobs: [...byId.keys()] }));
    const missing: { point: SweepPlanPoint; id: string; method: string; seed: number }[] = [];
    let pending = 0;
    for (const p of plan.points) {
      const dir = pointDir(p);
      if (!existsSync(join(dir, 'results.json'))) {
        for (const j of p.jobs) {
          if (isCommitted(dir, j.method, j.seed) || failures.has(j.id)) continue;
          const state = await queue.getJobState(j.id);
          if (state === 'unknown') {
            missing.push({ point: p, ...j });
            pending++;
          } else if (state === 'completed') {
            const job = await Job.fromId<SweepJobData, SweepJobResult>(queue, j.id);
            if (!job?.returnvalue) {
              pending++;
              continue;
            }
            if (await commitJob(redis, outDir, dir, j.id, job.returnvalue)) {
              committed++;
              const r = job.returnvalue.record;
              const main = Object.entries(r.metrics).slice(0, 2).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(', ');
              view.finishRun(p.label === 'base' ? j.method : `${p.label} ${j.method}`, j.seed, `${main} in ${r.wallSeconds.toFixed(1)}s on ${job.returnvalue.worker}${job.returnvalue.resumedFrom.length ? ' (resumed from its checkpoint)' : ''}`);
            }
          } else if (state === 'failed') {
            const job = await Job.fromId(queue, j.id);
            if (o.retryFailed && !retried.has(j.id) && job) {
              retried.add(j.id);
              await job.retry('failed');
              pending++;
              if (!o.quiet) log(`sweep: retrying failed job ${p.label} ${j.method} seed ${j.seed}`);
            } else {
              const f = { point: p.label, method: j.method, seed: j.seed, job: j.id, error: job?.failedReason ?? 'failed' };
              failures.set(j.id, f);
              log(`sweep: FAILED ${p.label === 'base' ? '' : p.label + ' '}${j.method} seed ${j.seed}: ${f.error}`);
            }
          } else pending++;
        }
      }
      const res = await finalizePoint(plan, p, dir, runCommand(p));
      if (res && !pointResults.get(p.label)?.results && !o.quiet && plan.points.length > 1) log(`sweep: point ${p.label} finished → ${join(dir, 'results.json')}`);
      pointResults.set(p.label, { label: p.label, dir, assign: p.assign, results: res });
    }
    if (missing.length) {
      await queue.addBulk(
        missing.map((m) => ({
          name: plan.experiment,
          data: { v: 1, sweep: plan.id, point: m.point.label, experiment: plan.experiment, quick: plan.quick, config: m.point.config, method: m.method, seed: m.seed },
          opts: { jobId: m.id, attempts: 1, removeOnComplete: false, removeOnFail: false },
        })),
      );
      if (!o.quiet) log(enqueuedOnce ? `sweep: re-enqueued ${missing.length} job(s) that Redis no longer had` : `sweep: enqueued ${missing.length} job(s)`);
    }
    enqueuedOnce = true;
    return pending;
  };

  let interrupted = false;
  try {
    for (;;) {
      const pending = await pass();
      if (pending === 0) break;
      if (o.signal?.aborted) {
        interrupted = true;
        break;
      }
      await new Promise<void>((res) => {
        const done = () => {
          clearTimeout(t);
          wakeUp = null;
          o.signal?.removeEventListener('abort', done);
          res();
        };
        const t = setTimeout(done, o.pollMs ?? 2000);
        wakeUp = done;
        o.signal?.addEventListener('abort', done);
      });
      if (o.signal?.aborted) {
        interrupted = true;
        break;
      }
    }
  } finally {
    view.close();
    await Promise.allSettled([events.close(), queue.close()]);
    redis.disconnect();
  }
  const points = plan.points.map((p) => pointResults.get(p.label)!);
  const table = points.some((p) => p.results) ? writeSweepSummary(outDir, plan, points, o.metric) : null;
  return { outDir, plan, committed, failures: [...failures.values()], interrupted, table };
}
