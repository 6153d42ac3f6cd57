import { Worker } from 'node:worker_threads';
import { UserError } from '../errors.js';
import type { RunRecord } from './types.js';
import type { RunSpec, WorkerInit, WorkerJob, WorkerMessage } from './worker.js';

export interface RunHandlers {
  onLog?(row: Record<string, unknown>): void;
  onProgress?(p: Record<string, unknown>): void;
}

/**
 * One worker thread (its own tfjs instance) running (method, seed) jobs one at a time through `runOne`.
 * Used by the local runner's pool and by `efftrain worker`. A failed run rejects with a UserError for bad
 * input or a non-finite loss (`user` errors, deterministic) and a plain Error otherwise.
 */
export class RunThread {
  /** Resolves with the tfjs backend once the engine is up; rejects if it cannot start. */
  readonly ready: Promise<string>;
  /** The engine's one-line description (engineLine), set once `ready` resolves. */
  engineLine = '';
  private readonly worker: Worker;
  private current: { resolve(r: RunRecord): void; reject(e: Error): void; h: RunHandlers } | null = null;
  private dead: Error | null = null;
  private readyReject: (e: Error) => void = () => undefined;

  constructor(init: WorkerInit) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init, stdout: false, stderr: false });
    let readyResolve!: (b: string) => void;
    this.ready = new Promise((res, rej) => {
      readyResolve = res;
      this.readyReject = rej;
    });
    this.ready.catch(() => undefined);
    const die = (e: Error) => this.die(e);
    this.worker.on('message', (m: WorkerMessage) => {
      const c = this.current;
      switch (m.type) {
        case 'ready':
          this.engineLine = m.line;
          readyResolve(m.backend);
          break;
        case 'log':
          c?.h.onLog?.(m.row);
          break;
        case 'progress':
          c?.h.onProgress?.(m.p);
          break;
        case 'done':
          this.current = null;
          c?.resolve(m.record);
          break;
        case 'error': {
          const where = m.method ? `${m.method} seed ${m.seed}: ` : '';
          const err = m.user ? new UserError(where + m.message) : new Error(where + m.message + (m.stack ? `\n${m.stack}` : ''));
          if (!m.method) return die(err);
          this.current = null;
          c?.reject(err);
          break;
        }
      }
    });
    this.worker.on('error', (e) => die(e));
    this.worker.on('exit', (code) => die(new Error(`worker thread exited with code ${code}`)));
  }

  /** Runs one job; `spec` overrides the thread's default run spec. One job at a time per thread. */
  run(job: { method: string; seed: number; artifactsDir: string; spec?: RunSpec }, h: RunHandlers = {}): Promise<RunRecord> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.current) return Promise.reject(new Error('RunThread.run: a job is already running on this thread'));
    return new Promise((resolve, reject) => {
      this.current = { resolve, reject, h };
      this.worker.postMessage({ type: 'job', ...job } satisfies WorkerJob);
    });
  }

  /** Asks the thread to exit once idle (its tfjs state is released with it). */
  close(): void {
    if (!this.dead) this.worker.postMessage({ type: 'exit' } satisfies WorkerJob);
  }

  /** Stops the thread now, abandoning any running job (which rejects). */
  async terminate(): Promise<void> {
    this.die(new Error('worker thread terminated'));
    await this.worker.terminate();
  }

  private die(e: Error): void {
    if (this.dead) return;
    this.dead = e;
    this.readyReject(e);
    this.current?.reject(e);
    this.current = null;
  }
}
