import type { Command } from 'commander';
import { writeConllu } from '../data/conllu.js';
import { loadMicroBert, readConllu } from '../node/microbert-files.js';
import { initEngine } from '../engine/backend.js';
import { parseSentences } from '../methods/microbert/index.js';
import { writeFileAtomic } from '../util/fs.js';

/**
 * `efftrain parse --model DIR file.conllu`: predicts dependency trees with a MicroBERT parser saved by the
 * `microbert` experiment (`<run>/artifacts/<variant>-<seed>/parser`) and writes CoNLL-U (HEAD and DEPREL
 * replaced; UPOS filled where it is `_`; comments, multiword tokens and empty nodes kept).
 */
export function registerParseCommand(program: Command): void {
  program
    .command('parse')
    .description('parse a CoNLL-U file with a trained MicroBERT parser and write the predicted trees as CoNLL-U')
    .argument('<file>', 'input .conllu (gold heads optional: HEAD may be _)')
    .requiredOption('--model <dir>', 'model directory (microbert.json, vocab.txt, encoder/, heads.safetensors)')
    .option('--out <file>', 'output file (default: stdout)')
    .action(async (file: string, o: { model: string; out?: string }) => {
      const doc = readConllu(file);
      await initEngine({ backend: 'wasm' });
      const { model } = loadMicroBert(o.model);
      try {
        const text = writeConllu(parseSentences(model, doc.sentences));
        if (o.out) writeFileAtomic(o.out, text);
        else process.stdout.write(text);
      } finally {
        model.dispose();
      }
    });
}
