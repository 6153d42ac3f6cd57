import { Command, InvalidArgumentError, Option } from 'commander';
import { join } from 'node:path';
import { BACKEND_CHOICES, type BackendChoice } from '../engine/backend.js';
import { UserError } from '../errors.js';
import { loadQueueModule } from '../sweep/load.js';
import { getExperiment } from '../experiments/registry.js';

const collect = (v: string, prev: string[]) => [...prev, v];
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
const seeds = (v: string) => {
  const xs = list(v).map(Number);
  if (!xs.length || xs.some((x) => !Number.isInteger(x))) throw new InvalidArgumentError('seeds must be a comma-separated list of integers, e.g. 1,2,3');
  return xs;
};
const posInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};
const queueOption = () =>
  new Option('--queue <url>', 'Redis URL: redis://[:PASSWORD@]HOST:PORT[/DB] or rediss:// (TLS); default $EFFTRAIN_QUEUE (keeps the password out of `ps`)').env('EFFTRAIN_QUEUE');

function needQueue(q?: string): string {
  if (!q) throw new UserError('--queue redis://HOST:PORT is required (or set EFFTRAIN_QUEUE)');
  return q;
}

/** Calls `onFirst` on the first Ctrl-C / SIGTERM and exits at once on the second. */
function onInterrupt(onFirst: () => void): () => void {
  let n = 0;
  const h = () => {
    if (++n === 1) onFirst();
    else process.exit(130);
  };
  process.on('SIGINT', h);
  process.on('SIGTERM', h);
  return () => {
    process.off('SIGINT', h);
    process.off('SIGTERM', h);
  };
}

interface SweepCliOptions {
  queue?: string;
  quick: boolean;
  seeds?: number[];
  methods?: string[];
  data?: string;
  config?: string;
  set: string[];
  grid: string[];
  out?: string;
  resume: boolean;
  retryFailed: boolean;
  metric?: string;
  quiet: boolean;
}

/** Registers `efftrain sweep` (and `sweep status`) and `efftrain worker`. */
export function registerSweepCommands(program: Command): void {
  program
    .command('sweep')
    .description('run an experiment (optionally over a --grid of config values) on `efftrain worker`s through a Redis queue; `sweep status` lists sweeps')
    .argument('<experiment>', 'experiment name, or `status`')
    .addOption(queueOption())
    .option('--quick', 'use the experiment’s quick preset', false)
    .option('--seeds <list>', 'comma-separated seeds, e.g. 1,2,3', seeds)
    .option('--methods <list>', 'comma-separated methods', list)
    .option('--data <dir>', 'data directory (the same path must hold the data on every worker)')
    .option('--config <file>', 'JSON config file (keys as in config.json)')
    .option('--set <key=value>', 'override one config key (repeatable)', collect, [])
    .option('--grid <key=v1,v2>', 'sweep a config key over values (repeatable: the cartesian product); JSON values allowed, e.g. mlpHidden=[32],[64,32]', collect, [])
    .option('--out <dir>', 'sweep directory: one run directory per config point plus summary.md (default runs/sweep-<experiment>-<timestamp>)')
    .option('--resume', 'continue the sweep in --out: collect finished jobs, re-enqueue lost ones', false)
    .option('--retry-failed', 'put jobs that failed back in the queue (once)', false)
    .option('--metric <name>', 'metric of the sweep summary (default: the experiment’s primary metric)')
    .option('--quiet', 'no progress output', false)
    .action(async (name: string, o: SweepCliOptions) => {
      const { formatStatus, sweepStatus } = await loadQueueModule(() => import('../sweep/status.js'));
      if (name === 'status') {
        process.stdout.write(formatStatus(await sweepStatus(needQueue(o.queue))));
        return;
      }
      const queue = needQueue(o.queue);
      getExperiment(name);
      if (o.resume && !o.out) throw new UserError('--resume needs --out DIR (the sweep directory to continue)');
      const { runSweep } = await loadQueueModule(() => import('../sweep/sweep.js'));
      const out = o.out ?? join('runs', `sweep-${name}${o.quick ? '-quick' : ''}-${new Date().toISOString().replace(/[:]/g, '-').replace(/\..*$/, '')}`);
      const runArgs = [
        ...(o.quick ? ['--quick'] : []),
        ...(o.config ? ['--config', o.config] : []),
        ...(o.seeds ? ['--seeds', o.seeds.join(',')] : []),
        ...(o.methods ? ['--methods', o.methods.join(',')] : []),
        ...(o.data ? ['--data', o.data] : []),
        ...o.set.flatMap((s) => ['--set', s]),
      ];
      const ac = new AbortController();
      const off = onInterrupt(() => {
        process.stderr.write('\nsweep: stopping; the jobs stay queued (workers keep running them). Continue with --resume. Ctrl-C again to quit at once.\n');
        ac.abort();
      });
      try {
        const r = await runSweep({
          experiment: name,
          queue,
          quick: o.quick,
          file: o.config,
          sets: o.set,
          flags: { seeds: o.seeds, methods: o.methods, data: o.data },
          grid: o.grid,
          outDir: out,
          resume: o.resume,
          retryFailed: o.retryFailed,
          metric: o.metric,
          quiet: o.quiet,
          command: ['efftrain', ...process.argv.slice(2)].join(' '),
          runArgs,
          signal: ac.signal,
        });
        if (r.table) process.stderr.write(`\n${r.table}wrote ${join(out, 'summary.md')}\n`);
        if (r.interrupted) {
          process.stderr.write(`sweep ${r.plan.id}: interrupted; continue with: efftrain sweep ${name} … --out ${out} --resume\n`);
          process.exitCode = 130;
        } else if (r.failures.length) {
          throw new UserError(`${r.failures.length} run(s) failed (not retried; fix the cause, then --resume --retry-failed):\n${r.failures.map((f) => `  ${f.point} ${f.method} seed ${f.seed}: ${f.error}`).join('\n')}`);
        }
        process.stdout.write(`${out}\n`);
      } finally {
        off();
      }
    });

  program
    .command('worker')
    .description('take sweep jobs from a Redis queue and run them here (any number of machines)')
    .addOption(queueOption())
    .option('--concurrency <n>', 'jobs run in parallel (one worker thread each)', posInt('--concurrency'), 1)
    .addOption(new Option('--backend <name>', 'tfjs backend').choices([...BACKEND_CHOICES]).default('auto'))
    .option('--no-wasm-patches', 'disable the wasm kernel patches (for comparison only)')
    .option('--work-dir <dir>', 'local scratch folder for running jobs (default under the OS temp dir)')
    .option('--lock-ms <ms>', 'BullMQ job lock duration: a dead worker’s job is retaken after ½–1× this plus one stalled check', posInt('--lock-ms'))
    .option('--stalled-ms <ms>', 'interval of the stalled-job check', posInt('--stalled-ms'))
    .option('--max-stalled <n>', 'times a job may lose its worker before it is failed', posInt('--max-stalled'))
    .option('--sync-ms <ms>', 'how often a running job’s checkpoints are copied to Redis', posInt('--sync-ms'))
    .action(async (o: { queue?: string; concurrency: number; backend: BackendChoice; wasmPatches: boolean; workDir?: string; lockMs?: number; stalledMs?: number; maxStalled?: number; syncMs?: number }) => {
      const { startSweepWorker } = await loadQueueModule(() => import('../sweep/worker.js'));
      const w = startSweepWorker({ queue: needQueue(o.queue), concurrency: o.concurrency, backend: o.backend, wasmPatches: o.wasmPatches, workDir: o.workDir, lockMs: o.lockMs, stalledMs: o.stalledMs, maxStalled: o.maxStalled, syncMs: o.syncMs });
      let n = 0;
      const off = onInterrupt(() => {
        n++;
        process.stderr.write('\nworker: finishing running job(s), taking no new ones; Ctrl-C again to abandon them (other workers retake them)\n');
        void w.close();
      });
      try {
        await w.ready;
        await w.closed;
      } finally {
        off();
      }
      if (n) process.exitCode = 0;
    });
}
