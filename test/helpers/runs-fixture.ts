import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

/** Final test_acc of the done fixture run: method → seed → value (paired differences are checked against these). */
export const FINAL = {
  mlp: { 1: 0.81, 2: 0.83, 3: 0.8 },
  cnn: { 1: 0.86, 2: 0.87, 3: 0.86 },
} as const;

export interface RunsFixture {
  /** The served folder. */
  root: string;
  /** A file next to (outside) the served folder that must never be served. */
  secret: string;
  /** Ids of the run directories, by role. */
  ids: { done: string; live: string; killed: string; failed: string; broken: string; done2: string };
}

const status = (state: string, pid: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ state, experiment: 'fashion-baseline', quick: true, pid, host: hostname(), startedAt: '2026-01-02T03:04:05.000Z', ...extra });

function epochRows(methods: string[], seeds: number[], epochs: number, base: number): string {
  const lines: string[] = [];
  for (const m of methods)
    for (const s of seeds)
      for (let e = 1; e <= epochs; e++)
        lines.push(JSON.stringify({ kind: 'epoch', method: m, seed: s, epoch: e, train_loss: 1 / e + 0.01 * s, test_acc: base + 0.02 * e + (m === 'cnn' ? 0.03 : 0) + 0.001 * s, lr: 0.001, epoch_seconds: 1.5 }));
  return lines.join('\n') + '\n';
}

/** A finished run; `schema1` writes results.json as schema 1 (metrics declaration, derived), else the older unversioned form. */
function doneRun(dir: string, quick: boolean, schema1: boolean): void {
  mkdirSync(join(dir, 'charts'), { recursive: true });
  const methods = ['mlp', 'cnn'];
  const seeds = [1, 2, 3];
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ methods, seeds, epochs: 4 }));
  writeFileSync(join(dir, 'status.json'), status('done', 1));
  // A diagnostic row (not a curve point, though it carries an epoch) must not become a chart.
  const diag = JSON.stringify({ kind: 'diagnostic', method: 'mlp', seed: 1, name: 'confidence', epoch: 4, mean_sigma: 0.5 });
  writeFileSync(join(dir, 'metrics.jsonl'), epochRows(methods, seeds, 4, 0.7) + diag + '\n');
  const runs = methods.flatMap((m) => seeds.map((s) => ({ method: m, seed: s, metrics: { test_acc: FINAL[m as 'mlp'][s as 1], params: m === 'mlp' ? 1000 : 500 }, wallSeconds: 3 })));
  const summary = Object.fromEntries(
    methods.map((m) => {
      const xs = seeds.map((s) => FINAL[m as 'mlp'][s as 1]);
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1));
      return [m, { test_acc: { mean, std, n: 3 } }];
    }),
  );
  const base = { experiment: 'fashion-baseline', quick, backend: 'wasm', seeds, methods, runs, summary, wallSeconds: 12.5, command: 'efftrain run fashion-baseline --quick' };
  const v1 = { schemaVersion: 1, ...base, metrics: { primary: 'test_acc', higherIsBetter: true, baseline: 'mlp', diagnostics: ['params'] }, derived: {} };
  writeFileSync(join(dir, 'results.json'), JSON.stringify(schema1 ? v1 : base));
  writeFileSync(join(dir, 'charts', 'summary.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
  writeFileSync(join(dir, 'report.md'), '# fashion-baseline\n\n## Experiment section\n\nSome <b>raw html</b> text.\n\n![summary](charts/summary.svg)\n');
}

/**
 * A folder of run directories covering every status: done (two, for compare), running (status.json with this
 * process's pid), killed (a pid that is not alive), failed, and broken files (invalid results.json, a bad
 * metrics.jsonl line). Next to it a secret file, and inside it a symlink pointing out of it.
 */
export function makeRunsFixture(): RunsFixture {
  const base = tempDir('efftrain-serve-');
  const root = join(base, 'runs');
  mkdirSync(root);
  const secret = join(base, 'secret.txt');
  writeFileSync(secret, 'TOP-SECRET\n');
  symlinkSync(base, join(root, 'escape'));

  const ids = { done: 'fb-quick', done2: 'fb-full', live: 'fb-live', killed: 'sweep/fb-killed', failed: 'fb-failed', broken: 'fb-broken' };
  doneRun(join(root, ids.done), true, true);
  doneRun(join(root, ids.done2), false, false);

  const live = join(root, ids.live);
  mkdirSync(live);
  writeFileSync(join(live, 'config.json'), JSON.stringify({ methods: ['mlp', 'cnn'], seeds: [1, 2], epochs: 10 }));
  writeFileSync(join(live, 'status.json'), status('running', process.pid));
  writeFileSync(join(live, 'metrics.jsonl'), epochRows(['mlp', 'cnn'], [1, 2], 2, 0.6));

  const killed = join(root, ids.killed);
  mkdirSync(killed, { recursive: true });
  writeFileSync(join(killed, 'config.json'), JSON.stringify({ methods: ['mlp'], seeds: [1] }));
  // 2^22 + 1 is above Linux's default pid_max (2^22): no live process has it.
  writeFileSync(join(killed, 'status.json'), status('running', 4194305));
  writeFileSync(join(killed, 'metrics.jsonl'), epochRows(['mlp'], [1], 3, 0.6));

  const failed = join(root, ids.failed);
  mkdirSync(failed);
  writeFileSync(join(failed, 'config.json'), JSON.stringify({ methods: ['mlp'], seeds: [1] }));
  writeFileSync(join(failed, 'status.json'), status('failed', 1, { error: 'mlp seed 1: loss became NaN at step 7' }));
  writeFileSync(join(failed, 'metrics.jsonl'), '');

  const broken = join(root, ids.broken);
  mkdirSync(broken);
  writeFileSync(join(broken, 'results.json'), '{"experiment": "fashion-baseline", "runs": [');
  writeFileSync(join(broken, 'metrics.jsonl'), epochRows(['mlp'], [1], 1, 0.5) + '{not json\n' + '[1,2]\n' + epochRows(['mlp'], [1], 2, 0.5).split('\n')[1] + '\n');
  return { root, secret, ids };
}
