import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { validateInk } from '../data/strokes.js';
import { UserError } from '../errors.js';
import { loadRecognizerFile } from '../methods/newton/io-node.js';

/** `efftrain recognize --model DIR ink.json`: top word hypotheses of a saved Newton recognizer for one ink file. */
export function registerRecognizeCommand(program: Command): void {
  program
    .command('recognize')
    .description('recognize a hand-printed word with a saved newton-handwriting recognizer; ink.json = list of strokes, each a list of [x, y] (y down)')
    .argument('<ink>', 'ink JSON file')
    .requiredOption('--model <dir>', 'directory holding recognizer.json (e.g. <run>/runs/all-seed1), or the file itself')
    .option('--top <n>', 'number of hypotheses', '5')
    .option('--no-dictionary', 'free character strings instead of dictionary + out-of-dictionary search')
    .option('--json', 'print JSON')
    .action((inkPath: string, o: { model: string; top: string; dictionary: boolean; json?: boolean }) => {
      const top = Number(o.top);
      if (!Number.isInteger(top) || top < 1) throw new UserError('--top must be a positive integer');
      let rec;
      try {
        rec = loadRecognizerFile(o.model);
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      if (!existsSync(inkPath)) throw new UserError(`${inkPath}: not found`);
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(inkPath, 'utf8'));
      } catch (e) {
        throw new UserError(`${inkPath}: invalid JSON (${(e as Error).message})`);
      }
      let hyps;
      try {
        hyps = rec.recognize(validateInk(raw, inkPath), { topN: top, useDictionary: o.dictionary });
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      if (o.json) {
        process.stdout.write(JSON.stringify(hyps, null, 2) + '\n');
        return;
      }
      for (const h of hyps) process.stdout.write(`${h.text}\t${h.score.toFixed(3)}\t${h.inDictionary ? 'dict' : 'ood'}\n`);
    });
}
