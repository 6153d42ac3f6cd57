/**
 * Source comments and strings must stand on their own: the npm package ships `dist`, README.md and docs/, not the
 * method notes the project was built from (issue #10). This scans src/**\/*.ts for pointers to them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file with package.json and src/ (compiled or not). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.isFile() && e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const UNSHIPPED = /shared\/methods|method[- ]notes|spec\s*§/i;

test('no source file refers to documents that do not ship (shared/methods, method notes, spec §)', () => {
  const root = repoRoot();
  const files = tsFiles(join(root, 'src'));
  assert.ok(files.length > 50, `expected the TypeScript sources under ${join(root, 'src')}, found ${files.length} files`);
  const hits: string[] = [];
  for (const f of files) {
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      if (UNSHIPPED.test(line)) hits.push(`${relative(root, f)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(hits, [], `references to unshipped documents:\n${hits.join('\n')}`);
});
