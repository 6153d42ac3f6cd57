import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDashboard } from '../src/serve/server.js';
import { isInside, resolveInside } from '../src/serve/paths.js';
import { readMetrics } from '../src/serve/runs.js';
import type { RunDetail, RunListEntry } from '../src/serve/types.js';
import { FINAL, makeRunsFixture } from './helpers/runs-fixture.js';

const fx = makeRunsFixture();
const dash = await startDashboard({ runsDir: fx.root, port: 0 });
after(() => dash.close());
const { hostname: host, port } = new URL(dash.url);

/** A raw request: the path goes on the wire exactly as given (fetch would normalise `..`). */
function raw(path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, type: String(res.headers['content-type'] ?? '') }));
    });
    req.on('error', reject);
    req.end();
  });
}
const getJson = async <T>(path: string): Promise<T> => {
  const r = await raw(path);
  assert.equal(r.status, 200, `${path}: ${r.body}`);
  return JSON.parse(r.body) as T;
};

test('the run list gives each run its status: done, running, interrupted (killed), failed, error (broken files)', async () => {
  const runs = await getJson<RunListEntry[]>('/api/runs');
  const by = Object.fromEntries(runs.map((r) => [r.id, r]));
  assert.deepEqual(Object.keys(by).sort(), Object.values(fx.ids).sort(), 'the symlink out of the folder is not followed');
  assert.equal(by[fx.ids.done].status, 'done');
  assert.equal(by[fx.ids.done].quick, true);
  assert.equal(by[fx.ids.done2].quick, false);
  assert.equal(by[fx.ids.live].status, 'running');
  assert.equal(by[fx.ids.live].experiment, 'fashion-baseline', 'a running run is named from status.json');
  assert.equal(by[fx.ids.killed].status, 'interrupted');
  assert.equal(by[fx.ids.killed].lastEpoch, 3, 'an interrupted run shows its last epoch');
  assert.equal(by[fx.ids.failed].status, 'failed');
  assert.match(by[fx.ids.failed].error ?? '', /loss became NaN at step 7/);
  const broken = by[fx.ids.broken];
  assert.equal(broken.status, 'error');
  assert.deepEqual(
    broken.problems.map((p) => `${p.file}:${p.line ?? ''}`),
    ['results.json:', 'metrics.jsonl:2', 'metrics.jsonl:3'],
    'each malformed file or line is named',
  );
});

test('a run: summary from results.json and paired differences against the baseline with a t interval', async () => {
  const d = await getJson<RunDetail>('/api/run?id=' + fx.ids.done);
  assert.equal(d.baseline, 'mlp');
  assert.equal(d.baselineSource, 'experiment', 'schema 1: the experiment declares its baseline');
  assert.equal(d.primary, 'test_acc');
  assert.deepEqual(d.problems, [], 'a valid schema-1 results.json raises no problem');
  const legacy = await getJson<RunDetail>('/api/run?id=' + fx.ids.done2);
  assert.equal(legacy.baselineSource, 'first method', 'an unversioned results.json still shows, against its first method');
  assert.equal(legacy.paired.length, 1);
  assert.equal(d.summary!.cnn.test_acc.n, 3);
  assert.equal(d.rows.length, 2 * 3 * 4 + 1);
  assert.equal(d.hasReport, true);
  const p = d.paired.find((x) => x.method === 'cnn' && x.metric === 'test_acc')!;
  // By hand: differences 0.05, 0.04, 0.06 → mean 0.05, sd 0.01, se 0.01/√3, t(0.975, 2) = 4.302653.
  const diffs = [1, 2, 3].map((s) => FINAL.cnn[s as 1] - FINAL.mlp[s as 1]);
  assert.ok(Math.abs(p.meanDiff - 0.05) < 1e-12);
  assert.deepEqual(diffs.map((x) => Math.round(x * 100) / 100), [0.05, 0.04, 0.06]);
  const half = (4.302653 * 0.01) / Math.sqrt(3);
  assert.ok(Math.abs(p.ci95[0] - (0.05 - half)) < 1e-6 && Math.abs(p.ci95[1] - (0.05 + half)) < 1e-6, JSON.stringify(p.ci95));
  assert.equal(p.n, 3);
  assert.deepEqual(d.paired.map((x) => x.metric), ['test_acc'], 'params (a declared diagnostic) is not tested');
  assert.deepEqual(legacy.paired.map((x) => x.metric), ['test_acc'], 'params (the same for every seed) is not tested');
  const broken = await getJson<RunDetail>('/api/run?id=' + fx.ids.broken);
  assert.equal(broken.rows.length, 2, 'good lines around a bad one still count');
});

test('paths outside the folder get 404 in every spelling; bad escapes are refused; nothing is listed', async () => {
  const refused = [
    '/runs/../secret.txt',
    '/runs/..%2fsecret.txt',
    '/runs/%2e%2e/secret.txt',
    '/runs/%2e%2e%2fsecret.txt',
    '/runs/%2E%2E%2Fsecret.txt',
    `/runs/${fx.ids.done}/..%2f..%2fsecret.txt`,
    '/runs/..%5csecret.txt',
    '/runs/escape/secret.txt',
    '/runs/escape%2fsecret.txt',
    '/runs/fb-quick/report.md%00',
    '/runs/%E0%A4%A',
    `/runs/${fx.ids.done}`,
    '/runs/',
    '/assets/../package.json',
    '/assets/..%2f..%2fpackage.json',
    '/wasm/..%2fapp.js',
    '/api/run?id=..',
    '/api/run?id=../runs',
    '/api/run?id=escape',
    '/api/run?id=%2e%2e%2fsecret.txt',
    '/api/events?id=../x',
  ];
  for (const p of refused) {
    const r = await raw(p);
    assert.equal(r.status, 404, `${p} → ${r.status}`);
    assert.ok(!r.body.includes('TOP-SECRET'), p);
  }
  const ok = await raw(`/runs/${fx.ids.done}/charts/summary.svg`);
  assert.equal(ok.status, 200);
  assert.equal(ok.type, 'image/svg+xml');
});

test('read-only: other methods get 405; a foreign Host header gets 403; unknown paths 404', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) assert.equal((await raw('/api/runs', { method })).status, 405, method);
  assert.equal((await raw('/api/runs', { headers: { Host: 'evil.example:80' } })).status, 403);
  assert.equal((await raw('/nope')).status, 404);
  assert.equal((await raw('/api/run?id=does-not-exist')).status, 404);
});

test('server-sent events: appended lines arrive as rows (ids = byte offsets), bad lines as problems, results.json as status done', async () => {
  const live = join(fx.root, fx.ids.live);
  const d = await getJson<RunDetail>('/api/run?id=' + fx.ids.live);
  const events: { event: string; id?: string; data: unknown }[] = [];
  const req = request({ host, port, path: `/api/events?id=${fx.ids.live}&from=${d.offset}` });
  const got = (pred: (e: (typeof events)[number]) => boolean) =>
    new Promise<(typeof events)[number]>((resolve, reject) => {
      const t0 = Date.now();
      const iv = setInterval(() => {
        const e = events.find(pred);
        if (e) resolve(e), clearInterval(iv);
        else if (Date.now() - t0 > 5000) reject(new Error(`no such event; got ${JSON.stringify(events)}`)), clearInterval(iv);
      }, 20);
    });
  await new Promise<void>((resolve) => {
    req.on('response', (res) => {
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const f = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':') && l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
          if (f.event) events.push({ event: f.event, id: f.id, data: JSON.parse(f.data) });
        }
      });
      resolve();
    });
    req.end();
  });
  await got((e) => e.event === 'status' && (e.data as { status: string }).status === 'running');
  const row = { method: 'mlp', seed: 1, epoch: 3, train_loss: 0.3, test_acc: 0.7 };
  appendFileSync(join(live, 'metrics.jsonl'), JSON.stringify(row) + '\n{"method": broken\n');
  const rows = await got((e) => e.event === 'rows');
  const payload = rows.data as { rows: unknown[]; problems: { line: number }[]; offset: number };
  assert.deepEqual(payload.rows, [row]);
  assert.equal(payload.problems[0].line, 2 * 2 * 2 + 2, 'the bad line is named by its line number in the file');
  assert.equal(Number(rows.id), payload.offset);
  writeFileSync(join(live, 'results.json'), JSON.stringify({ experiment: 'fashion-baseline', quick: true, seeds: [1, 2], methods: ['mlp', 'cnn'], runs: [], summary: {} }));
  await got((e) => e.event === 'status' && (e.data as { status: string }).status === 'done');
  req.destroy();
  // A reconnecting browser sends Last-Event-ID (the offset it has): it gets exactly the rows after it.
  const resumed = await new Promise<string>((resolve, reject) => {
    const r2 = request({ host, port, path: `/api/events?id=${fx.ids.live}&from=0`, headers: { 'Last-Event-ID': String(d.offset) } }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        const m = /event: rows\ndata: (.*)\n\n/.exec(buf);
        if (m) resolve(m[1]), r2.destroy();
      });
    });
    r2.on('error', reject);
    r2.end();
  });
  assert.deepEqual((JSON.parse(resumed) as { rows: unknown[] }).rows, [row]);
  // The server is still well after the client went away.
  assert.equal((await raw('/api/runs')).status, 200);
});

test('containment: a sibling folder whose name starts with the root is outside', () => {
  assert.equal(isInside('/srv/runs', '/srv/runs-x/a'), false);
  assert.equal(isInside('/srv/runs', '/srv/runs/a'), true);
  assert.equal(isInside('/srv/runs', '/srv'), false);
  assert.equal(resolveInside(fx.root, encodeURIComponent(fx.ids.done)), join(fx.root, fx.ids.done));
});

test('efftrain serve prints its URL and serves; a missing folder is a user error', async () => {
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
  const child = spawn(process.execPath, [cli, 'serve', fx.root, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c) => {
        out += String(c);
        const m = /^(http:\/\/127\.0\.0\.1:\d+)\//m.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    });
    const runs = (await (await fetch(url + '/api/runs')).json()) as RunListEntry[];
    assert.equal(runs.length, Object.keys(fx.ids).length);
  } finally {
    child.kill('SIGTERM');
  }
  const bad = spawn(process.execPath, [cli, 'serve', join(fx.root, 'nope')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  bad.stderr.on('data', (c) => (err += String(c)));
  const code = await new Promise((r) => bad.on('exit', r));
  assert.equal(code, 2);
  assert.match(err, /nope is not a directory/);
});

test('metrics.jsonl is read by whole lines: a line still being written waits for its newline', () => {
  const f = join(fx.root, fx.ids.failed, 'partial.jsonl');
  writeFileSync(f, '{"epoch":1}\n{"epoch":2,"acc"');
  const a = readMetrics(f);
  assert.deepEqual(a.rows, [{ epoch: 1 }]);
  assert.equal(a.offset, '{"epoch":1}\n'.length);
  appendFileSync(f, ':0.5}\n');
  const b = readMetrics(f, a.offset, a.lines + 1);
  assert.deepEqual(b.rows, [{ epoch: 2, acc: 0.5 }]);
  assert.deepEqual(b.problems, []);
});
