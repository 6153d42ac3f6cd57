// Paired t-tests (t-based 95% CI) on test_acc across two s3-shift run directories, pairing runs by seed:
// node scripts/s3-paired.mjs runs/s3-shift-quick-sgd runs/s3-shift-quick
// Pairs: the experiment's own comparisons within the first directory, plus each method of the first directory
// against the method of the second directory with the same name minus its recipe suffix (-sgd / -radam).
import { readFileSync } from 'node:fs';
import { pairedTTest } from '../dist/stats/index.js';
import { comparisonPairs } from '../dist/experiments/s3-shift/index.js';
const [dirA, dirB] = process.argv.slice(2);
if (!dirA || !dirB) {
  console.error('usage: node scripts/s3-paired.mjs RUN_DIR_A RUN_DIR_B');
  process.exit(2);
}
const r = JSON.parse(readFileSync(`${dirA}/results.json`, 'utf8'));
const q = JSON.parse(readFileSync(`${dirB}/results.json`, 'utf8'));
const runs = [...r.runs, ...q.runs];
const base = (m) => m.replace(/-(sgd|radam)$/, '');
const pairs = [...comparisonPairs(r.methods), ...r.methods.filter((m) => base(m) !== m && q.methods.includes(base(m))).map((m) => [m, base(m)])];
const by = (m) => new Map(runs.filter((x) => x.method === m).map((x) => [x.seed, x.metrics.test_acc]));
console.log('| a − b | mean (points) | 95% CI (points) | p | n |\n|---|---:|---|---:|---:|');
for (const [a, b] of pairs) {
  const A = by(a), B = by(b);
  const seeds = [...A.keys()].filter((s) => B.has(s));
  const t = pairedTTest(seeds.map((s) => A.get(s)), seeds.map((s) => B.get(s)));
  console.log(`| ${a} − ${b} | ${(100 * t.meanDiff).toFixed(2)} | [${(100 * t.ci95[0]).toFixed(2)}, ${(100 * t.ci95[1]).toFixed(2)}] | ${t.p.toFixed(3)} | ${t.n} |`);
}
