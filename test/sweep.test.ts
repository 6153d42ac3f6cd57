import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gridPoints, parseGridAxis, runJobId } from '../src/sweep/plan.js';
import { redactUrl, redisOptions } from '../src/sweep/redis.js';
import type { Results } from '../src/experiments/types.js';
import { writeSyntheticIdx } from './helpers/synthetic.js';
import { tempDir } from './helpers/tmp.js';
import { REDIS_SERVER, startRedis, type TestRedis } from './helpers/redis.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const env = { ...process.env, CI: 'true', EFFTRAIN_QUEUE: '' };
const data = writeSyntheticIdx({ nTrain: 480, nTest: 160, size: 12, classes: 4 });
// Tiny runs; checkpoints every 5 steps so a killed job has one to resume from.
const sized = (epochs: number, batchSize: number) => ['--data', data, '--set', `epochs=${epochs}`, '--set', `batchSize=${batchSize}`, '--set', 'mlpHidden=[32]', '--set', 'cnnChannels=[4,8]', '--set', 'cnnHidden=16', '--set', 'checkpointEverySteps=5'];
// 60 epochs of 15 steps (≈ 5 s a job on an idle machine): the SIGKILL test kills a job whose progress in Redis says
// epoch ≤ 20, so the window it polls for lasts seconds and the job is still far from done when the signal lands.
// (12-epoch jobs took 1.1 s after the fused kernels and a loaded polling loop missed every window.)
const tiny = sized(60, 32);
const KILL_BEFORE_EPOCH = 20;
const noRedis = REDIS_SERVER ? false : 'redis-server is not installed (.ci/run installs it)';

const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env });

/** A CLI child process whose stderr is collected; `waitFor` resolves when a line matches. */
class Proc {
  readonly p: ChildProcess;
  out = '';
  readonly exited: Promise<number | null>;
  constructor(args: string[]) {
    this.p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.p.stdout!.on('data', (d) => (this.out += d));
    this.p.stderr!.on('data', (d) => (this.out += d));
    this.exited = new Promise((res) => this.p.once('exit', (code) => res(code)));
  }
  async waitFor(re: RegExp, what: string, limitMs = 120_000): Promise<RegExpMatchArray> {
    const t0 = Date.now();
    for (;;) {
      const m = this.out.match(re);
      if (m) return m;
      if (this.p.exitCode !== null) throw new Error(`${what}: process exited (${this.p.exitCode}) first:\n${this.out}`);
      if (Date.now() - t0 > limitMs) throw new Error(`${what}: not seen in ${limitMs} ms:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  kill(sig: NodeJS.Signals = 'SIGTERM') {
    if (this.p.exitCode === null) this.p.kill(sig);
  }
}

const procs: Proc[] = [];
const redises: TestRedis[] = [];
const proc = (args: string[]) => {
  const p = new Proc(args);
  procs.push(p);
  return p;
};
after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  for (const r of redises) await r.stop();
});
const worker = (url: string) => proc(['worker', '--queue', url, '--lock-ms', '2000', '--stalled-ms', '1000', '--sync-ms', '200']);
const workerReady = (w: Proc) => w.waitFor(/efftrain worker \S+: 1 thread/, 'worker ready');

const files = (dir: string): string[] => {
  const out: string[] = [];
  const walk = (d: string) => readdirSync(d).forEach((e) => (statSync(join(d, e)).isDirectory() ? walk(join(d, e)) : out.push(relative(dir, join(d, e)))));
  walk(dir);
  return out.sort();
};
/** metrics.jsonl rows keyed by method/seed, without the wall-clock field. */
const rowsOf = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => {
    const { epoch_seconds: _t, ...r } = JSON.parse(l);
    return JSON.stringify(r);
  }).sort();
/** The epoch in a BullMQ job's `progress` field (0 when none has been reported yet). */
const reportedEpoch = (progress: string): number => {
  try {
    return Number((JSON.parse(progress) as { epoch?: number }).epoch ?? 0);
  } catch {
    return 0;
  }
};
const commits = (out: string) => readFileSync(join(out, 'commits.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { job: string; worker: string; resumedFrom: string[] });

test('grid axes, points and job ids', () => {
  assert.deepEqual(parseGridAxis('mlpHidden=[32],[64,32]'), { key: 'mlpHidden', values: ['[32]', '[64,32]'] });
  assert.deepEqual(parseGridAxis('lr=0.001, 0.01'), { key: 'lr', values: ['0.001', '0.01'] });
  assert.throws(() => parseGridAxis('lr'), /key=v1,v2/);
  assert.throws(() => parseGridAxis('seeds=1,2'), /use --seeds/);
  assert.throws(() => parseGridAxis('lr=1,1'), /duplicate/);
  const pts = gridPoints([parseGridAxis('lr=1,2'), parseGridAxis('optimizer="sgd","adam"')]);
  assert.deepEqual(pts.map((p) => p.label), ['lr=1,optimizer=sgd', 'lr=1,optimizer=adam', 'lr=2,optimizer=sgd', 'lr=2,optimizer=adam']);
  assert.deepEqual(gridPoints([]).map((p) => p.label), ['base']);
  const a = runJobId('e', false, { lr: 1, nested: { b: 1, a: 2 }, methods: ['x'], seeds: [1] }, 'x', 1);
  assert.match(a, /^r_[0-9a-f]{64}$/);
  assert.equal(a, runJobId('e', false, { nested: { a: 2, b: 1 }, lr: 1, methods: ['x', 'y'], seeds: [1, 2, 3] }, 'x', 1), 'key order and the method/seed lists do not matter');
  assert.notEqual(a, runJobId('e', false, { lr: 1, nested: { b: 1, a: 2 } }, 'x', 2));
  assert.notEqual(a, runJobId('e', true, { lr: 1, nested: { b: 1, a: 2 } }, 'x', 1));
  assert.notEqual(a, runJobId('e', false, { lr: 2, nested: { b: 1, a: 2 } }, 'x', 1));
});

test('redis URLs: password, db, TLS; bad URLs are user errors; passwords are redacted', () => {
  const o = redisOptions('redis://:s3cr%40t@10.0.0.2:6380/2');
  assert.equal(o.host, '10.0.0.2');
  assert.equal(o.port, 6380);
  assert.equal(o.db, 2);
  assert.equal(o.password, 's3cr@t');
  assert.equal(o.maxRetriesPerRequest, null);
  assert.equal(o.tls, undefined);
  const t = redisOptions('rediss://user:pw@redis.example:6379');
  assert.equal(t.username, 'user');
  assert.deepEqual(t.tls, { servername: 'redis.example' });
  assert.throws(() => redisOptions('http://x:1'), /unsupported scheme/);
  assert.throws(() => redisOptions('redis://h:1/x'), /must be a number/);
  assert.equal(redactUrl('redis://:pw@h:1'), 'redis://:***@h:1');
});

let local: { dir: string; results: Results } | null = null;

test('two workers, one SIGKILLed mid-job: the job resumes elsewhere from its shared checkpoint, every result is committed once and equals a local run', { skip: noRedis }, async (t) => {
  const T0 = Date.now();
  const lap = (what: string) => t.diagnostic(`${what} at ${((Date.now() - T0) / 1000).toFixed(1)} s`);
  const redis = await startRedis({ persist: false });
  redises.push(redis);
  const w1 = worker(redis.url);
  const w2 = worker(redis.url);
  await Promise.all([workerReady(w1), workerReady(w2)]);
  const out = join(tempDir('efftrain-sweep-'), 'sw');
  const sweep = proc(['sweep', 'fashion-baseline', '--queue', redis.url, ...tiny, '--methods', 'cnn,mlp', '--seeds', '1,2', '--out', out]);
  // Kill whichever worker first runs a job whose checkpoint is already in Redis and whose reported progress is
  // early (epoch-end progress reaches Redis as each epoch ends, so the job is at most about one epoch further).
  const pids = new Map([[w1.p.pid!, w1], [w2.p.pid!, w2]]);
  let victim: Proc | null = null;
  let killedJob = '';
  const t0 = Date.now();
  t.diagnostic(`workers up at ${((Date.now() - T0) / 1000).toFixed(1)} s`);
  while (!victim) {
    assert.ok(Date.now() - t0 < 120_000, `no job reached a checkpoint:\n${sweep.out}`);
    for (const key of redis.cli('--scan', '--pattern', 'efftrain:files:*').split('\n').filter(Boolean)) {
      const id = key.slice('efftrain:files:'.length);
      if (redis.cli('hexists', key, 'checkpoint.safetensors') !== '1') continue;
      const by = redis.cli('hget', `bull:efftrain-runs:${id}`, 'pb');
      const w = pids.get(Number(by.split(':').pop()));
      if (w && redis.cli('zscore', 'bull:efftrain-runs:completed', id) === '' && reportedEpoch(redis.cli('hget', `bull:efftrain-runs:${id}`, 'progress')) <= KILL_BEFORE_EPOCH) {
        victim = w;
        killedJob = id;
        break;
      }
    }
    if (!victim) await new Promise((r) => setTimeout(r, 30));
  }
  victim.kill('SIGKILL');
  const tKill = Date.now();
  const survivor = victim === w1 ? w2 : w1;
  await survivor.waitFor(new RegExp(`start ${killedJob.slice(0, 12)} \\(attempt \\d+, resuming from shared [^)]*checkpoint\\.safetensors`), 'killed job retaken with its checkpoint');
  t.diagnostic(`killed job retaken after ${((Date.now() - tKill) / 1000).toFixed(1)} s (lock 2 s, stalled check 1 s; measured under load)`);
  assert.equal(await sweep.exited, 0, sweep.out);

  lap('sweep done');
  const c = commits(out);
  assert.equal(c.length, 4, 'four runs committed');
  assert.equal(new Set(c.map((x) => x.job)).size, 4, 'each run committed exactly once');
  const k = c.find((x) => x.job === killedJob)!;
  assert.ok(k.resumedFrom.includes('checkpoint.safetensors'), 'the killed job resumed from its checkpoint');
  assert.notEqual(Number(k.worker.split(':').pop()), victim.p.pid);

  // The same runs locally.
  const ldir = join(tempDir('efftrain-sweep-'), 'local');
  const r = cli(['run', 'fashion-baseline', ...tiny, '--methods', 'cnn,mlp', '--seeds', '1,2', '--workers', '2', '--quiet', '--out', ldir]);
  assert.equal(r.status, 0, r.stderr);
  lap('local run done');
  const lres = JSON.parse(readFileSync(join(ldir, 'results.json'), 'utf8')) as Results;
  local = { dir: ldir, results: lres };
  const pdir = join(out, 'base');
  const sres = JSON.parse(readFileSync(join(pdir, 'results.json'), 'utf8')) as Results;
  assert.deepEqual(files(pdir), files(ldir), 'the point directory holds exactly the files of a local run');
  assert.deepEqual(sres.runs.map((x) => [x.method, x.seed, x.metrics]), lres.runs.map((x) => [x.method, x.seed, x.metrics]), 'bit-identical final metrics');
  assert.deepEqual(sres.summary, lres.summary);
  assert.deepEqual(rowsOf(pdir), rowsOf(ldir), 'identical metric rows (wall-clock seconds aside)');
  assert.equal(readFileSync(join(pdir, 'config.json'), 'utf8'), readFileSync(join(ldir, 'config.json'), 'utf8'));
  assert.match(sres.command ?? '', /^efftrain run fashion-baseline /);
  assert.equal(redis.cli('exists', `efftrain:files:${killedJob}`), '0', 'committed artifacts are removed from Redis');

  // Same sweep again into a new directory: nothing is enqueued or run again (deterministic job ids).
  const out2 = join(tempDir('efftrain-sweep-'), 'again');
  const again = cli(['sweep', 'fashion-baseline', '--queue', redis.url, ...tiny, '--methods', 'cnn,mlp', '--seeds', '1,2', '--out', out2]);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /enqueued/);
  assert.deepEqual(JSON.parse(readFileSync(join(out2, 'base', 'results.json'), 'utf8')).runs.map((x: { metrics: unknown }) => x.metrics), lres.runs.map((x) => x.metrics));

  lap('re-sweep done');
  // A grid with a point that fails deterministically (the loss diverges): it fails once, its error is shown,
  // the other point finishes, and the sweep exits non-zero.
  const out3 = join(tempDir('efftrain-sweep-'), 'fail');
  const bad = cli(['sweep', 'fashion-baseline', '--queue', redis.url, ...tiny, '--set', 'epochs=1', '--methods', 'mlp', '--seeds', '1', '--grid', 'lr=0.001,1e30', '--out', out3]);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /lr=1e30 mlp seed 1: .*loss became NaN/);
  assert.ok(existsSync(join(out3, 'lr=0.001', 'results.json')));
  assert.ok(!existsSync(join(out3, 'lr=1e30', 'results.json')));
  assert.match(readFileSync(join(out3, 'summary.md'), 'utf8'), /\| 1e30 \| pending \|/);
  await survivor.waitFor(/lr=1e30 mlp seed 1\] FAILED/, 'failure logged by the worker');
  assert.equal(survivor.out.match(/lr=1e30 mlp seed 1\] start/g)?.length, 1, 'the failing job ran once');
  lap('failing sweep done');
  const st = cli(['sweep', 'status', '--queue', redis.url]);
  assert.equal(st.status, 0, st.stderr);
  assert.match(st.stdout, /fashion-baseline\s+0\s+0\s+1\s+1\s+0/);
  survivor.kill('SIGTERM');
  assert.equal(await survivor.exited, 0, survivor.out);
  await redis.stop();
});

test('Redis restarted without persistence mid-sweep: the sweep re-enqueues what its directory lacks and finishes', { skip: noRedis }, async () => {
  assert.ok(local, 'needs the local run of the previous test');
  const redis = await startRedis({ persist: false });
  redises.push(redis);
  const w = worker(redis.url);
  await workerReady(w);
  const out = join(tempDir('efftrain-sweep-'), 'restart');
  const sweep = proc(['sweep', 'fashion-baseline', '--queue', redis.url, ...tiny, '--methods', 'mlp', '--seeds', '1,2', '--out', out]);
  await w.waitFor(/mlp seed 2\] start/, 'second job started');
  // Freeze the worker until Redis is down, so the second job is verifiably in flight (uncommitted) when Redis
  // loses everything; a tiny job would otherwise finish before the restart and leave nothing to re-enqueue.
  // Then let the worker see the outage before Redis comes back. (The first job may also be lost, if the sweep
  // had not collected it yet: then both are re-enqueued.)
  w.p.kill('SIGSTOP');
  try {
    await redis.stop();
    assert.ok(!existsSync(join(redis.dir, 'appendonly.aof')) && !existsSync(join(redis.dir, 'dump.rdb')), 'no persistence');
  } finally {
    w.p.kill('SIGCONT');
  }
  await w.waitFor(/Redis connection lost/, 'the worker sees the outage');
  await redis.start();
  await sweep.waitFor(/re-enqueued [12] job\(s\) that Redis no longer had/, 'the in-flight job re-enqueued');
  assert.equal(await sweep.exited, 0, sweep.out);
  assert.match(w.out, /Redis reconnected/);
  const c = commits(out);
  assert.equal(c.length, 2);
  assert.equal(new Set(c.map((x) => x.job)).size, 2, 'each run committed exactly once');
  const sres = JSON.parse(readFileSync(join(out, 'base', 'results.json'), 'utf8')) as Results;
  assert.deepEqual(sres.runs.map((x) => x.metrics), local!.results.runs.filter((x) => x.method === 'mlp').map((x) => x.metrics), 'same numbers as the local run');
  w.kill('SIGTERM');
  assert.equal(await w.exited, 0, w.out);
  await redis.stop();
});

test('password-protected Redis with AOF: Ctrl-C leaves jobs queued, status shows them, --resume finishes through a Redis restart', { skip: noRedis }, async () => {
  assert.ok(local, 'needs the local run of the first test');
  const redis = await startRedis({ persist: true, password: 'pw t@st' });
  redises.push(redis);
  const noPw = cli(['sweep', 'status', '--queue', `redis://127.0.0.1:${redis.port}`]);
  assert.equal(noPw.status, 2);
  assert.match(noPw.stderr, /cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+.*NOAUTH.*give the password in the URL/);
  const badPw = cli(['sweep', 'status', '--queue', `redis://:nope@127.0.0.1:${redis.port}`]);
  assert.equal(badPw.status, 2);
  assert.match(badPw.stderr, /redis:\/\/:\*\*\*@127\.0\.0\.1:\d+.*(WRONGPASS|invalid)/);
  assert.doesNotMatch(badPw.stderr, /nope/, 'password not echoed');

  const out = join(tempDir('efftrain-sweep-'), 'ctrlc');
  const args = ['sweep', 'fashion-baseline', '--queue', redis.url, ...tiny, '--methods', 'cnn', '--seeds', '1,2', '--out', out];
  const first = proc(args);
  await first.waitFor(/enqueued 2 job\(s\)/, 'jobs enqueued');
  first.kill('SIGINT');
  assert.equal(await first.exited, 130, first.out);
  assert.match(first.out, /jobs stay queued/);
  assert.match(cli(['sweep', 'status', '--queue', redis.url]).stdout, /fashion-baseline\s+2\s+0\s+0\s+0\s+0/);
  const again = cli(args);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /already holds a sweep; add --resume/);

  const w = worker(redis.url);
  const resumed = proc([...args, '--resume']);
  await w.waitFor(/cnn seed 1\] start/, 'first job started');
  await redis.stop();
  await new Promise((r) => setTimeout(r, 300));
  await redis.start();
  assert.equal(await resumed.exited, 0, resumed.out + w.out);
  const c = commits(out);
  assert.equal(c.length, 2);
  assert.equal(new Set(c.map((x) => x.job)).size, 2, 'each run committed exactly once');
  const sres = JSON.parse(readFileSync(join(out, 'base', 'results.json'), 'utf8')) as Results;
  assert.deepEqual(sres.runs.map((x) => x.metrics), local!.results.runs.filter((x) => x.method === 'cnn').map((x) => x.metrics), 'same numbers as the local run');
  assert.match(cli(['sweep', 'status', '--queue', redis.url]).stdout, /fashion-baseline\s+0\s+0\s+2\s+0\s+0/);
  w.kill('SIGTERM');
  assert.equal(await w.exited, 0, w.out);
  await redis.stop();
});

test('rediss:// (TLS) with a private CA from EFFTRAIN_REDIS_CA', { skip: noRedis || (spawnSync('openssl', ['version']).status !== 0 && 'openssl not installed') }, async () => {
  const dir = tempDir('efftrain-tls-');
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { encoding: 'utf8' });
  assert.equal(gen.status, 0, gen.stderr);
  const redis = await startRedis({ persist: false, tls: { cert, key } });
  redises.push(redis);
  assert.match(redis.url, /^rediss:/);
  // In-process (no CLI start-ups): the same calls `efftrain sweep status` makes.
  const { sweepStatus } = await import('../src/sweep/status.js');
  const ca = process.env.EFFTRAIN_REDIS_CA;
  try {
    process.env.EFFTRAIN_REDIS_CA = cert;
    assert.deepEqual(await sweepStatus(redis.url), []);
    delete process.env.EFFTRAIN_REDIS_CA;
    await assert.rejects(sweepStatus(redis.url), /self-signed certificate.*EFFTRAIN_REDIS_CA/);
    await assert.rejects(sweepStatus(redis.url.replace('rediss:', 'redis:')), /cannot connect to Redis/, 'a plain connection to a TLS port fails');
  } finally {
    if (ca === undefined) delete process.env.EFFTRAIN_REDIS_CA;
    else process.env.EFFTRAIN_REDIS_CA = ca;
  }
  await redis.stop();
});
