import { parentPort, workerData } from 'node:worker_threads';
import { mkdirSync } from 'node:fs';
import { engineLine, initEngine, type BackendChoice } from '../engine/backend.js';
import { UserError } from '../errors.js';
import { getExperiment } from './registry.js';
import type { RunRecord } from './types.js';

/** Messages a worker sends to the runner. */
export type WorkerMessage =
  | { type: 'ready'; backend: string; line: string }
  | { type: 'log'; method: string; seed: number; row: Record<string, unknown> }
  | { type: 'progress'; method: string; seed: number; p: Record<string, unknown> }
  | { type: 'done'; record: RunRecord }
  | { type: 'error'; method?: string; seed?: number; message: string; user: boolean; stack?: string };

export interface WorkerInit {
  experiment: string;
  config: { methods: string[]; seeds: number[] };
  quick: boolean;
  backend: BackendChoice;
  wasmPatches: boolean;
  /** Most OpenBLAS threads per product; undefined = initEngine's default (EFFTRAIN_BLAS_THREADS, else 1). */
  blasThreads?: number;
  resume: boolean;
}

export type WorkerJob = { type: 'job'; method: string; seed: number; artifactsDir: string } | { type: 'exit' };

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
  const exp = getExperiment(init.experiment);
  send({ type: 'ready', backend, line });
  port.on('message', async (job: WorkerJob) => {
    if (job.type === 'exit') {
      port.close();
      return;
    }
    const { method, seed, artifactsDir } = job;
    mkdirSync(artifactsDir, { recursive: true });
    const t0 = performance.now();
    try {
      const res = await exp.run({
        experiment: exp.name,
        method,
        seed,
        config: init.config,
        quick: init.quick,
        backend,
        resume: init.resume,
        artifactsDir,
        log: (row) => send({ type: 'log', method, seed, row }),
        progress: (p) => send({ type: 'progress', method, seed, p }),
      });
      send({ type: 'done', record: { method, seed, metrics: res.metrics, wallSeconds: (performance.now() - t0) / 1000 } });
    } catch (e) {
      const err = e as Error;
      send({ type: 'error', method, seed, message: err.message, user: err instanceof UserError || err.name === 'NonFiniteLossError', stack: err.stack });
    }
  });
}

void main();
