import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { TransformerLM } from '../models/transformer.js';
import { writeFileAtomic } from '../util/fs.js';

/** Writes `model.json` (config + `meta`) and `weights.safetensors` into `dir`. */
export function saveTransformer(model: TransformerLM, dir: string, meta: Record<string, unknown> = {}): void {
  const { json, weights } = model.toFiles(meta);
  writeFileAtomic(join(dir, 'weights.safetensors'), weights);
  writeFileAtomic(join(dir, 'model.json'), json);
}

/** Loads a model directory written by saveTransformer (FFN kinds must be registered: import their modules first). */
export function loadTransformer(dir: string): { model: TransformerLM; meta: Record<string, unknown> } {
  const jp = join(dir, 'model.json');
  const wp = join(dir, 'weights.safetensors');
  if (!existsSync(jp)) throw new UserError(`${jp}: not found (expected a model directory written by efftrain)`);
  if (!existsSync(wp)) throw new UserError(`${wp}: not found`);
  return TransformerLM.fromFiles(readFileSync(jp, 'utf8'), readFileSync(wp), { json: jp, weights: wp });
}
