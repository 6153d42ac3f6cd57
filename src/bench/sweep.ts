/**
 * `efftrain bench sweep`: what the Redis queue costs. The same small fashion-baseline sweep (mlp, one job per
 * seed) runs through the local runner (`efftrain run --workers k`) and through BullMQ with k local
 * `efftrain worker` processes (k = 1, 2), against a redis-server the bench starts on a free loopback port.
 * Reported per k: wall time, the queue's overhead per job in ms of worker time, (T_redis − T_local)·k / jobs,
 * that overhead as a fraction of one job's time, the throughput ratio T_local / T_redis, and per mode the worker
 * time per job spent outside the runs themselves, (T·k − Σ run times) / jobs. Worker processes
 * are started (and their tfjs initialised) before the clock starts, as on a real cluster; the local runner's
 * thread start-up is inside its time. The sweep's numbers are checked equal to the local run's.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../errors.js';
import { FASHION_MNIST_DIR } from '../data/image-dataset.js';
import { runExperiment } from '../experiments/runner.js';
import type { Results } from '../experiments/types.js';
import { loadQueueModule } from '../sweep/load.js';
import type { Bench, BenchCase } from './types.js';

const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));

const freePort = () =>
  new Promise<number>((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startRedis(dir: string): Promise<{ url: string; flush(): void; stop(): void }> {
  if (!REDIS_SERVER) throw new UserError('bench sweep needs redis-server (apt-get install redis-server)');
  const port = await freePort();
  const proc = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const cli = (...a: string[]) => spawnSync('redis-cli', ['-p', String(port), ...a], { encoding: 'utf8' }).stdout.trim();
  for (let i = 0; cli('ping') !== 'PONG'; i++) {
    if (i > 100) throw new Error('redis-server did not start');
    await sleep(50);
  }
  return { url: `redis://127.0.0.1:${port}`, flush: () => void cli('flushall'), stop: () => void proc.kill('SIGTERM') };
}

/** Starts k `efftrain worker` processes and waits until each has taken its place on the queue. */
async function startWorkers(k: number, url: string): Promise<ChildProcess[]> {
  const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const procs = Array.from({ length: k }, () => spawn(process.execPath, [main, 'worker', '--queue', url], { stdio: ['ignore', 'ignore', 'pipe'] }));
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((res, rej) => {
          let out = '';
          p.stderr!.on('data', (d) => {
            out += d;
            if (/efftrain worker \S+:/.test(out)) res();
          });
          p.once('exit', (c) => rej(new Error(`worker exited (${c}): ${out}`)));
        }),
    ),
  );
  return procs;
}

async function stopWorkers(procs: ChildProcess[]): Promise<void> {
  await Promise.all(procs.map((p) => new Promise((res) => (p.exitCode !== null ? res(null) : (p.once('exit', res), p.kill('SIGTERM'))))));
}

export const sweepBench: Bench = {
  name: 'sweep',
  description: 'Redis/BullMQ sweep vs the local runner on 1 and 2 workers: queue overhead per job (ms) and throughput ratio',
  async run({ quick, log }) {
    if (!existsSync(FASHION_MNIST_DIR)) throw new UserError(`bench sweep needs Fashion-MNIST in ${FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)`);
    // quick: ~1–2 s jobs; full: ≥ 10 s jobs (the target regime) on an idle 2-core machine.
    const seeds = [1, 2, 3, 4];
    const sets = quick ? ['epochs=2', 'trainLimit=3000', 'testLimit=1000'] : ['epochs=2', 'trainLimit=30000', 'testLimit=5000'];
    const src = { quick: false, sets, flags: { methods: ['mlp'], seeds } };
    const tmp = mkdtempSync(join(tmpdir(), 'efftrain-bench-sweep-'));
    const redis = await startRedis(tmp);
    const cases: BenchCase[] = [];
    const extra: Record<string, unknown> = { jobs: seeds.length, config: sets, method: 'mlp' };
    try {
      let jobSeconds = NaN;
      let reference: Results | null = null;
      for (const k of [1, 2]) {
        let t0 = performance.now();
        const { results } = await runExperiment({ experiment: 'fashion-baseline', ...src, outDir: join(tmp, `local-${k}`), workers: k, quiet: true });
        const tLocal = (performance.now() - t0) / 1000;
        reference ??= results;
        if (k === 1) jobSeconds = tLocal / seeds.length;
        redis.flush();
        const w0 = performance.now();
        const workers = await startWorkers(k, redis.url);
        const startup = (performance.now() - w0) / 1000;
        t0 = performance.now();
        const out = join(tmp, `redis-${k}`);
        const { runSweep } = await loadQueueModule(() => import('../sweep/sweep.js'));
        const r = await runSweep({ experiment: 'fashion-baseline', ...src, queue: redis.url, outDir: out, quiet: true, pollMs: 500 });
        const tRedis = (performance.now() - t0) / 1000;
        await stopWorkers(workers);
        if (r.failures.length) throw new Error(`bench sweep: ${r.failures[0].error}`);
        const swept = JSON.parse(readFileSync(join(out, 'base', 'results.json'), 'utf8')) as Results;
        const identical = JSON.stringify(swept.runs.map((x) => x.metrics)) === JSON.stringify(reference.runs.map((x) => x.metrics));
        const overheadMs = ((tRedis - tLocal) * k * 1000) / seeds.length;
        // Worker time per job not spent inside the run itself (queue, transfers, commit, idle), measured within
        // each mode: less sensitive than the wall-time difference to load that changes between the two runs.
        const busy = (rs: Results) => rs.runs.reduce((a, x) => a + x.wallSeconds, 0);
        const localIdleMs = ((tLocal * k - busy(results)) * 1000) / seeds.length;
        const redisIdleMs = ((tRedis * k - busy(swept)) * 1000) / seeds.length;
        const row = {
          workers: k,
          localSeconds: tLocal,
          redisSeconds: tRedis,
          workerStartupSeconds: startup,
          overheadMsPerJob: overheadMs,
          overheadFraction: overheadMs / 1000 / jobSeconds,
          throughputRatio: tLocal / tRedis,
          localNonRunMsPerJob: localIdleMs,
          redisNonRunMsPerJob: redisIdleMs,
          identicalMetrics: identical,
        };
        cases.push({ name: `local/${k}`, msPerStep: (tLocal * 1000) / seeds.length, unit: 'ms per job' });
        cases.push({ name: `redis/${k}`, msPerStep: (tRedis * 1000) / seeds.length, unit: 'ms per job' });
        extra[`workers${k}`] = row;
        log(
          `${k} worker(s): local ${tLocal.toFixed(1)} s, via Redis ${tRedis.toFixed(1)} s (workers started in ${startup.toFixed(1)} s, not counted): ` +
            `overhead ${overheadMs.toFixed(0)} ms/job = ${(row.overheadFraction * 100).toFixed(1)}% of a ${jobSeconds.toFixed(1)} s job, throughput ratio ${row.throughputRatio.toFixed(3)}; ` +
            `worker time outside runs: local ${localIdleMs.toFixed(0)} ms/job, Redis ${redisIdleMs.toFixed(0)} ms/job${identical ? ', metrics identical' : ', METRICS DIFFER'}`,
        );
      }
      extra.jobSeconds = jobSeconds;
    } finally {
      redis.stop();
      rmSync(tmp, { recursive: true, force: true });
    }
    return { cases, ...extra };
  },
};
