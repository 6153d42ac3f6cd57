import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/fs.js';
import { Recognizer } from './recognizer.js';

/** File name of a saved recognizer inside its model directory. */
export const RECOGNIZER_FILE = 'recognizer.json';

/** Writes `<dir>/recognizer.json` atomically (Node only). */
export function saveRecognizer(dir: string, rec: Recognizer): string {
  const file = join(dir, RECOGNIZER_FILE);
  writeFileAtomic(file, JSON.stringify(rec.toJSON()) + '\n');
  return file;
}

/** Reads a recognizer from a model directory (or a recognizer.json path) (Node only). */
export function loadRecognizerFile(dirOrFile: string): Recognizer {
  const file = existsSync(join(dirOrFile, RECOGNIZER_FILE)) ? join(dirOrFile, RECOGNIZER_FILE) : dirOrFile;
  if (!existsSync(file) || !file.endsWith('.json')) throw new Error(`${dirOrFile}: no ${RECOGNIZER_FILE} found (train one with \`efftrain run newton-handwriting\`; it is saved under <run>/runs/<method>-seed<seed>/)`);
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: invalid JSON (${(e as Error).message})`);
  }
  return Recognizer.fromJSON(j, file);
}
