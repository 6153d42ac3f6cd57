import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import type { Redis } from 'ioredis';
import { writeFileAtomic } from '../util/fs.js';

/** Redis hash holding one run's artifact directory: field = relative path, value = file bytes. */
export const filesKey = (jobId: string) => `efftrain:files:${jobId}`;
/** Artifacts of jobs nobody collects expire after a week. */
const TTL_S = 7 * 24 * 3600;

/** Files under `dir` (relative, `/`-separated), skipping the temporary files of atomic writes. */
function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !/^\..*\.tmp-/.test(e.name)) out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * Mirrors a running job's artifact directory into Redis, so that the job's checkpoint survives its worker: a
 * job retaken by another worker downloads it and resumes. Only changed files are sent. Runs are
 * deterministic, so a checkpoint written by any attempt of a job is a state of the same trajectory.
 */
export class ArtifactMirror {
  private readonly sent = new Map<string, string>();
  private busy: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    private readonly jobId: string,
    private readonly dir: string,
  ) {}

  private queued = false;

  /** Uploads new and changed files (and forgets deleted ones); calls are serialised and coalesced. */
  sync(): Promise<void> {
    if (this.queued) return this.busy;
    this.queued = true;
    this.busy = this.busy
      .then(() => {
        this.queued = false;
        return this.syncNow();
      })
      .catch(() => undefined);
    return this.busy;
  }

  /** A last full sync whose errors propagate (the job's result must not be returned without its files). */
  async flush(): Promise<string[]> {
    await this.busy;
    await this.syncNow();
    return [...this.sent.keys()].sort();
  }

  private async syncNow(): Promise<void> {
    const files = listFiles(this.dir);
    const now = new Set(files);
    const multi = this.redis.multi();
    let n = 0;
    for (const f of files) {
      const p = join(this.dir, f);
      let sig: string;
      let bytes: Buffer;
      try {
        const st = statSync(p);
        sig = `${st.size}:${st.mtimeMs}`;
        if (this.sent.get(f) === sig) continue;
        bytes = readFileSync(p);
      } catch {
        continue; // replaced or removed while we looked; the next sync sees it
      }
      multi.hset(filesKey(this.jobId), f, bytes);
      this.sent.set(f, sig);
      n++;
    }
    for (const f of [...this.sent.keys()]) {
      if (!now.has(f)) {
        multi.hdel(filesKey(this.jobId), f);
        this.sent.delete(f);
        n++;
      }
    }
    if (!n) return;
    multi.expire(filesKey(this.jobId), TTL_S);
    await multi.exec();
  }
}

/** Writes a job's files from Redis into `dir`; returns their relative paths (none when the job never ran). */
export async function downloadFiles(redis: Redis, jobId: string, dir: string, only?: string[]): Promise<string[]> {
  const all = await redis.hgetallBuffer(filesKey(jobId));
  const names = Object.keys(all).filter((f) => !only || only.includes(f));
  for (const f of names) {
    if (f.split('/').some((x) => x === '..' || x === '') || f.startsWith('/')) continue; // never write outside dir
    const p = join(dir, ...f.split('/'));
    mkdirSync(dirname(p), { recursive: true });
    writeFileAtomic(p, all[f]);
  }
  return names.sort();
}
