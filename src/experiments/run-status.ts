import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';

/**
 * `status.json` in a run directory: what the runner is doing, so a dashboard can tell a running run from a
 * failed or killed one. A killed runner leaves `state: 'running'` with a pid that no longer exists.
 */
export interface RunStatusFile {
  state: 'running' | 'done' | 'failed';
  experiment: string;
  quick: boolean;
  pid: number;
  host: string;
  startedAt: string;
  endedAt?: string;
  /** The error message of a failed run. */
  error?: string;
}

export const RUN_STATUS_FILE = 'status.json';

/** Writes status.json atomically; a failure to write it never stops the run. */
export function writeRunStatus(outDir: string, run: { experiment: string; quick: boolean; startedAt: string }, state: RunStatusFile['state'], error?: string): void {
  const s: RunStatusFile = { state, experiment: run.experiment, quick: run.quick, pid: process.pid, host: hostname(), startedAt: run.startedAt };
  if (state !== 'running') s.endedAt = new Date().toISOString();
  if (error !== undefined) s.error = error;
  try {
    writeFileAtomic(join(outDir, RUN_STATUS_FILE), JSON.stringify(s, null, 2) + '\n');
  } catch {
    /* status is advisory */
  }
}

/** Reads status.json; null when absent or not a status object. */
export function readRunStatus(runDir: string): RunStatusFile | null {
  const p = join(runDir, RUN_STATUS_FILE);
  if (!existsSync(p)) return null;
  try {
    const s = JSON.parse(readFileSync(p, 'utf8')) as RunStatusFile;
    return s && typeof s === 'object' && typeof s.state === 'string' ? s : null;
  } catch {
    return null;
  }
}

/** True when `pid` names a live process on this machine. */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
