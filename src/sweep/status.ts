import { Queue } from 'bullmq';
import { QUEUE_NAME, SWEEPS_KEY } from './queue.js';
import { bullConnection, connectRedis } from './redis.js';

export interface SweepStatusRow {
  sweep: string;
  experiment: string;
  out: string;
  queued: number;
  running: number;
  done: number;
  failed: number;
  /** Jobs Redis no longer has (a restart without persistence); `sweep --resume` re-enqueues those not yet committed. */
  missing: number;
}

/** `efftrain sweep status`: per sweep known to this Redis, how many of its jobs are queued, running, done, failed. */
export async function sweepStatus(url: string): Promise<SweepStatusRow[]> {
  const redis = await connectRedis(url);
  const queue = new Queue(QUEUE_NAME, { connection: bullConnection(url) });
  try {
    const all = await redis.hgetall(SWEEPS_KEY);
    const rows: SweepStatusRow[] = [];
    for (const [sweep, json] of Object.entries(all)) {
      const meta = JSON.parse(json) as { experiment: string; out: string; jobs: string[] };
      const row: SweepStatusRow = { sweep, experiment: meta.experiment, out: meta.out, queued: 0, running: 0, done: 0, failed: 0, missing: 0 };
      for (const id of meta.jobs) {
        const s = await queue.getJobState(id);
        if (s === 'completed') row.done++;
        else if (s === 'failed') row.failed++;
        else if (s === 'active') row.running++;
        else if (s === 'unknown') row.missing++;
        else row.queued++;
      }
      rows.push(row);
    }
    return rows;
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

/** The status rows as a fixed-width table. */
export function formatStatus(rows: SweepStatusRow[]): string {
  if (!rows.length) return 'no sweeps in this Redis\n';
  const head = ['sweep', 'experiment', 'queued', 'running', 'done', 'failed', 'missing', 'out'];
  const cells = rows.map((r) => [r.sweep, r.experiment, r.queued, r.running, r.done, r.failed, r.missing, r.out].map(String));
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  return [head, ...cells].map((c) => c.map((x, i) => x.padEnd(w[i])).join('  ').trimEnd()).join('\n') + '\n';
}
