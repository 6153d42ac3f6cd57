import { watch, type FSWatcher } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { countLines, currentStatus, readMetrics } from './runs.js';
import type { RowsEvent, StatusEvent } from './types.js';

/** Poll period: the upper bound on update latency where fs.watch misses an append (network file systems). */
const POLL_MS = 1000;
/** A comment line now and then keeps proxies and the browser from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

/**
 * Streams a run as server-sent events: `rows` with the complete metrics.jsonl lines appended after byte `from`
 * (event id = the byte offset after them, so a reconnecting browser resumes with Last-Event-ID and gets every
 * row once), and `status` whenever the run's status changes. Changes are noticed by fs.watch on the run folder,
 * with a poll as fallback. The stream only reads; it ends when the client goes away.
 */
export function streamRunEvents(req: IncomingMessage, res: ServerResponse, dir: string, from: number): void {
  const file = join(dir, 'metrics.jsonl');
  let offset = Math.max(0, from);
  let line = countLines(file, offset) + 1;
  let lastStatus = '';
  let stalled = false;
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  res.write('retry: 1000\n\n');

  const send = (event: string, data: unknown, id?: number) => {
    res.write(`${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const tick = () => {
    if (res.writableEnded) return;
    try {
      if (!stalled) {
        const m = readMetrics(file, offset, line);
        if (m.offset > offset || m.problems.length) {
          // A file that shrank (rewritten by --resume) is reported once; the page reloads to start over.
          if (m.offset === offset && m.problems.length) stalled = true;
          offset = m.offset;
          line = m.lines + 1;
          send('rows', { rows: m.rows, problems: m.problems, offset } satisfies RowsEvent, offset);
        }
      }
      const st = currentStatus(dir);
      const key = `${st.status}|${st.error ?? ''}`;
      if (key !== lastStatus) {
        lastStatus = key;
        send('status', st satisfies StatusEvent);
      }
    } catch (e) {
      send('problem', { message: (e as Error).message });
    }
  };

  let watcher: FSWatcher | null = null;
  let pending: NodeJS.Timeout | null = null;
  try {
    watcher = watch(dir, () => {
      if (!pending) pending = setTimeout(() => ((pending = null), tick()), 20);
    });
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = null;
  }
  const poll = setInterval(tick, POLL_MS);
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
  const stop = () => {
    clearInterval(poll);
    clearInterval(heartbeat);
    if (pending) clearTimeout(pending);
    watcher?.close();
  };
  req.on('close', stop);
  res.on('close', stop);
  tick();
}
