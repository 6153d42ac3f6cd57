import { parentPort, workerData } from 'node:worker_threads';
import { mkdirSync } from 'node:fs';
import { engineLine, initEngine, type BackendChoice } from '../engine/backend.js';
import { UserError } from '../errors.js';
import { getExperiment } from './registry.js';
import type { MetricRow, RunRecord } from './types.js';

/** Messages a worker sends to the runner. */
export type WorkerMessage =
  | { type: 'ready'; backend: string; line: string }
  | { type: 'log'; method: string; seed: number; row: Record<string, unknown> }
  | { type: 'progress'; method: string; seed: number; p: Record<string, unknown> }
  | { type: 'done'; record: RunRecord }
  | { type: 'error'; method?: string; seed?: number; message: string; user: boolean; stack?: string };

/** What one (method, seed) run needs besides its method and seed: the experiment and its resolved config. */
export interface RunSpec {
  experiment: string;
  config: { methods: string[]; seeds: number[] };
  quick: boolean;
  resume: boolean;
}

/** A worker thread's start-up data: its engine, and the default run spec for jobs that carry none. */
export interface WorkerInit extends Partial<RunSpec> {
  backend: BackendChoice;
  wasmPatches: boolean;
  /** Most OpenBLAS threads per product; undefined = initEngine's default (EFFTRAIN_BLAS_THREADS, else 1). */
  blasThreads?: number;
}

/** A job for a worker thread; `spec` overrides the thread's default (a sweep sends a different config per job). */
export type WorkerJob = { type: 'job'; method: string; seed: number; artifactsDir: string; spec?: RunSpec } | { type: 'exit' };

/**
 * Runs one (method, seed) pair of an experiment with the engine already initialised: the single per-run
 * function behind `efftrain run` and `efftrain worker`. Returns the run's record (final metrics, wall time);
 * rows and progress go to `log` and `progress`.
 */
export async function runOne(
  spec: RunSpec,
  backend: string,
  job: { method: string; seed: number; artifactsDir: string },
  log: (row: MetricRow) => void,
  progress: (p: Record<string, unknown>) => void,
): Promise<RunRecord> {
  const exp = getExperiment(spec.experiment);
  const { method, seed, artifactsDir } = job;
  mkdirSync(artifactsDir, { recursive: true });
  const t0 = performance.now();
  const res = await exp.run({ experiment: exp.name, method, seed, config: spec.config, quick: spec.quick, backend, resume: spec.resume, artifactsDir, log, progress });
  return { method, seed, metrics: res.metrics, wallSeconds: (performance.now() - t0) / 1000 };
}

// Each worker thread has its own tfjs instance and backend; jobs arrive one at a time.
async function main(): Promise<void> {
  const port = parentPort!;
  const init = workerData as WorkerInit;
  const send = (m: WorkerMessage) => port.postMessage(m);
  let backend: string;
  let line: string;
  try {
    const info = await initEngine({ backend: init.backend, wasmPatches: init.wasmPatches, blasThreads: init.blasThreads });
    backend = info.engine;
    line = engineLine(info);
  } catch (e) {
    send({ type: 'error', message: (e as Error).message, user: true });
    return;
  }
  send({ type: 'ready', backend, line });
  port.on('message', async (job: WorkerJob) => {
    if (job.type === 'exit') {
      port.close();
      return;
    }
    const { method, seed } = job;
    try {
      const spec = job.spec ?? (init as RunSpec);
      const record = await runOne(spec, backend, job, (row) => send({ type: 'log', method, seed, row }), (p) => send({ type: 'progress', method, seed, p }));
      send({ type: 'done', record });
    } catch (e) {
      const err = e as Error;
      send({ type: 'error', method, seed, message: err.message, user: err instanceof UserError || err.name === 'NonFiniteLossError', stack: err.stack });
    }
  });
}

if (parentPort) void main();
