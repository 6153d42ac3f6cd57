import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { HersheyTextJson } from './strokes.js';

/**
 * Loads npm `hersheytext`'s `hersheytext.json` (Node only). `path` may point at the JSON file itself or at an
 * unpacked `hersheytext` package directory; by default the installed package is used.
 */
export function loadHersheyTextJson(path = ''): HersheyTextJson {
  let file = path;
  if (!file) {
    try {
      file = createRequire(import.meta.url).resolve('hersheytext/hersheytext.json');
    } catch {
      throw new Error('Hershey fonts not found: install them with `npm install hersheytext@2.0.0`, or pass the path of hersheytext.json');
    }
  } else if (existsSync(`${file}/hersheytext.json`)) {
    file = `${file}/hersheytext.json`;
  }
  if (!existsSync(file)) throw new Error(`${file}: not found (expected hersheytext.json from npm hersheytext@2.0.0)`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as HersheyTextJson;
  } catch (e) {
    throw new Error(`${file}: invalid JSON (${(e as Error).message})`);
  }
}
