#!/usr/bin/env node
// Chooses Rep-MTL's (λ_tsr, λ_csa) — or any config keys — on validation runs (evalSplit = val) only.
// Usage: node scripts/mtl-select.mjs --method rep-mtl --keys repmtl.lambdaTsr,repmtl.lambdaCsa [--metric avg_acc] RUN_DIR...
// Needs `npx tsc -p tsconfig.json` first (imports dist/).
import { chooseOnValidation, readCandidate } from '../dist/experiments/common/mtl/select.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const method = opt('--method', 'rep-mtl');
const keys = opt('--keys', 'repmtl.lambdaTsr,repmtl.lambdaCsa').split(',');
const metric = opt('--metric', 'avg_acc');
try {
  const { rows, best } = chooseOnValidation(args.map(readCandidate), { method, keys, metric });
  console.log(`| ${keys.join(' | ')} | val ${metric} % (mean ± std) | seeds |`);
  console.log(`|${keys.map(() => '---:').join('|')}|---:|---|`);
  for (const r of rows) console.log(`| ${keys.map((k) => r.values[k]).join(' | ')} | ${(100 * r.mean).toFixed(2)} ± ${(100 * r.std).toFixed(2)}${r === best ? ' **best**' : ''} | ${r.seeds.join(',')} |`);
  console.log(`\nchosen on validation: ${keys.map((k) => `${k}=${best.values[k]}`).join(' ')}`);
} catch (e) {
  console.error(`mtl-select: ${e.message}`);
  process.exit(1);
}
