/** Package surface: the root entry (and every browser-safe entry) must not reach a `node:` module. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
const pkg = JSON.parse(readFileSync(join(SRC, '..', '..', 'package.json'), 'utf8')) as { exports: Record<string, string | { import: string }> };

/** Relative-import closure of `file`, returning every `node:` (or bare Node builtin) import with its importer. */
function nodeImports(file: string, seen = new Set<string>(), out: string[] = []): string[] {
  if (seen.has(file)) return out;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(?\s*['"]([^'"]+)['"]/g)) {
    const spec = m[1] ?? m[2];
    if (spec.startsWith('node:') || ['fs', 'path', 'os', 'worker_threads', 'child_process'].includes(spec)) out.push(`${file}: ${spec}`);
    else if (spec.startsWith('.')) nodeImports(resolve(dirname(file), spec), seen, out);
  }
  return out;
}

test('every exported entry except efftrain/node is free of node: imports', () => {
  const entries = Object.entries(pkg.exports).filter(([k]) => k !== './node' && k !== './package.json');
  assert.ok(entries.length >= 10);
  for (const [name, target] of entries) {
    const rel = (typeof target === 'string' ? target : target.import).replace(/^\.\/dist\//, '');
    const bad = nodeImports(join(SRC, rel));
    assert.deepEqual(bad, [], `${name} reaches Node-only modules`);
  }
});

test('every technique folder and model file has an exports entry', () => {
  const keys = Object.keys(pkg.exports);
  const methods = readdirSync(join(SRC, 'methods'));
  assert.ok(methods.length >= 4);
  for (const m of methods) assert.ok(keys.includes(`./methods/${m}`), `methods/${m}`);
  for (const f of readdirSync(join(SRC, 'models')).filter((f) => f.endsWith('.js') && f !== 'index.js')) assert.ok(keys.includes(`./models/${f.slice(0, -3)}`), `models/${f}`);
  assert.ok(keys.includes('./node'));
});
