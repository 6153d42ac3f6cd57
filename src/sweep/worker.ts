import { mkdirSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { BackendChoice } from '../engine/backend.js';
import { UserError } from '../errors.js';
import { RunThread } from '../experiments/thread.js';
import { ArtifactMirror, downloadFiles } from './files.js';
import type { SweepJobData, SweepJobResult } from './plan.js';
import { DEFAULT_LOCK_MS, DEFAULT_MAX_STALLED, DEFAULT_STALLED_MS, QUEUE_NAME } from './queue.js';
import { bullConnection, connectRedis, redactUrl } from './redis.js';

export interface SweepWorkerOptions {
  queue: string;
  concurrency?: number;
  backend?: BackendChoice;
  wasmPatches?: boolean;
  /** Local scratch space for running jobs' artifact directories (default: a folder under the OS temp dir). */
  workDir?: string;
  lockMs?: number;
  stalledMs?: number;
  maxStalled?: number;
  /** How often a running job's artifacts (checkpoints) are mirrored to Redis. */
  syncMs?: number;
  log?: (line: string) => void;
}

export interface SweepWorkerHandle {
  /** Resolves once threads and Redis are up and jobs are being taken. */
  ready: Promise<void>;
  /** Stops taking jobs; `force` abandons running ones (they stall and another worker takes them). */
  close(force?: boolean): Promise<void>;
  /** Resolves when the worker has closed. */
  closed: Promise<void>;
}

const tag = (d: SweepJobData) => `[${d.point === 'base' ? '' : d.point + ' '}${d.method} seed ${d.seed}]`;

/**
 * `efftrain worker`: takes sweep jobs from the BullMQ queue and runs each on a local worker thread through
 * the same per-run function as `efftrain run`. Training runs off the main thread, so lock renewal never
 * starves. A job whose lock is lost (this worker was too slow or cut off) is abandoned, never returned.
 */
export function startSweepWorker(o: SweepWorkerOptions): SweepWorkerHandle {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const n = o.concurrency ?? 1;
  const name = `${hostname()}:${process.pid}`;
  const workDir = o.workDir ?? join(tmpdir(), `efftrain-worker-${process.pid}`);
  const init = { backend: o.backend ?? 'auto', wasmPatches: o.wasmPatches ?? true } as const;
  const free: RunThread[] = [];
  const active = new Map<string, { thread: RunThread; lost: boolean }>();
  let worker: Worker<SweepJobData, SweepJobResult> | null = null;
  let redis: Awaited<ReturnType<typeof connectRedis>> | null = null;
  let closing: Promise<void> | null = null;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));

  const process_ = async (job: Job<SweepJobData, SweepJobResult>): Promise<SweepJobResult> => {
    const d = job.data;
    if (d?.v !== 1) throw new UnrecoverableError(`job ${job.id}: unknown job format (is this worker older than the sweep?)`);
    const id = job.id!;
    const dir = join(workDir, id);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const restored = await downloadFiles(redis!, id, dir);
    log(`${tag(d)} start ${id.slice(0, 12)} (attempt ${job.attemptsStarted}${restored.length ? `, resuming from shared ${restored.join(', ')}` : ''})`);
    const thread = free.pop() ?? new RunThread(init);
    const backend = await thread.ready;
    const slot = { thread, lost: false };
    active.set(id, slot);
    const mirror = new ArtifactMirror(redis!, id, dir);
    const timer = setInterval(() => void mirror.sync(), o.syncMs ?? 1000);
    const rows: Record<string, unknown>[] = [];
    let lastProgress = 0;
    const t0 = Date.now();
    try {
      const record = await thread.run(
        { method: d.method, seed: d.seed, artifactsDir: dir, spec: { experiment: d.experiment, config: d.config, quick: d.quick, resume: restored.length > 0 } },
        {
          onLog: (row) => {
            rows.push(row);
            void mirror.sync();
          },
          onProgress: (p) => {
            const epochEnd = p.message !== undefined && p.step === undefined;
            if (!epochEnd && Date.now() - lastProgress < 2000) return;
            lastProgress = Date.now();
            void job.updateProgress({ point: d.point, method: d.method, seed: d.seed, ...p }).catch(() => undefined);
          },
        },
      );
      clearInterval(timer);
      const files = await mirror.flush();
      if (slot.lost) throw new Error('lost the job lock; another worker has taken the job over');
      log(`${tag(d)} done ${id.slice(0, 12)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      free.push(thread);
      return { record: { ...record, backend }, rows, files, worker: name, resumedFrom: restored };
    } catch (e) {
      clearInterval(timer);
      if (slot.lost) {
        log(`${tag(d)} abandoned ${id.slice(0, 12)}: lock lost`);
        throw new Error('lost the job lock; another worker has taken the job over');
      }
      free.push(thread);
      const err = e as Error;
      log(`${tag(d)} FAILED ${id.slice(0, 12)}: ${err.message.split('\n')[0]}`);
      // Bad input and non-finite losses fail the same way on every worker: fail once, do not retry.
      throw err instanceof UserError ? new UnrecoverableError(err.message) : err;
    } finally {
      active.delete(id);
      rmSync(dir, { recursive: true, force: true });
    }
  };

  const ready = (async () => {
    const threads = Array.from({ length: n }, () => new RunThread(init));
    const [backend] = await Promise.all(threads.map((t) => t.ready));
    free.push(...threads);
    redis = await connectRedis(o.queue);
    let down = false;
    redis.on('error', () => undefined);
    redis.on('ready', () => {
      if (down) log('worker: Redis reconnected');
      down = false;
    });
    worker = new Worker<SweepJobData, SweepJobResult>(QUEUE_NAME, process_, {
      connection: bullConnection(o.queue),
      concurrency: n,
      lockDuration: o.lockMs ?? DEFAULT_LOCK_MS,
      stalledInterval: o.stalledMs ?? DEFAULT_STALLED_MS,
      maxStalledCount: o.maxStalled ?? DEFAULT_MAX_STALLED,
      name,
      autorun: false,
    });
    worker.on('error', (e) => {
      if (!down && /ECONNREFUSED|ECONNRESET|Connection is closed|ETIMEDOUT|EPIPE/.test(e.message)) {
        down = true;
        log(`worker: Redis connection lost (${e.message.split('\n')[0]}); reconnecting…`);
      } else if (!down) log(`worker: ${e.message.split('\n')[0]}`);
    });
    worker.on('lockRenewalFailed', (ids) => {
      for (const id of ids) {
        const slot = active.get(id);
        if (!slot || slot.lost) continue;
        slot.lost = true;
        void slot.thread.terminate();
      }
    });
    void worker.run().catch((e) => log(`worker: ${(e as Error).message}`));
    await worker.waitUntilReady();
    log(`efftrain worker ${name}: ${n} thread(s), tfjs backend ${backend}, queue ${redactUrl(o.queue)} (${QUEUE_NAME}), lock ${worker.opts.lockDuration} ms, stalled check ${worker.opts.stalledInterval} ms`);
  })();
  ready.catch(() => resolveClosed());

  const close = (force = false): Promise<void> => {
    if (force) {
      for (const s of active.values()) void s.thread.terminate();
    }
    closing ??= (async () => {
      await ready.catch(() => undefined);
      await worker?.close(force);
      for (const t of free) t.close();
      redis?.disconnect();
      rmSync(workDir, { recursive: true, force: true });
      resolveClosed();
    })();
    return closing;
  };
  return { ready, close, closed };
}
