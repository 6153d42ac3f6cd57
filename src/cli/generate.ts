/**
 * `efftrain generate <model>`: samples text from a transformer saved by `efftrain run structured-ffn` or
 * `efftrain run compete-smoe` (each run writes `runs/<method>-seed<k>/model/`); MoE models route with the router. Structured FFNs are pre-merged: calls with at
 * most `--merge-threshold` token rows use one dense matrix per map, larger calls the factors.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { initEngine, type BackendChoice } from '../engine/backend.js';
import { backendOption } from './options.js';
import { CharTokenizer } from '../data/text-corpus.js';
import { UserError } from '../errors.js';
import { sampleTokens, TransformerLM } from '../models/transformer.js';
import { StructuredFfn, defaultMergeThreshold } from '../methods/structured-ffn/ffn.js';
import { loadTransformer } from '../node/transformer-files.js';
// Registers the `moe` FFN kind so MoE models (efftrain run compete-smoe) load.
import '../methods/compete-smoe/index.js';

function intArg(name: string, min: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

function numArg(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0`);
    return n;
  };
}

interface GenerateOptions {
  prompt: string;
  tokens: number;
  temperature: number;
  topK: number;
  seed: number;
  mergeThreshold?: number;
  backend: BackendChoice;
}

/** Adds the `generate` verb to the CLI program. */
export function registerGenerateCommand(program: Command): void {
  program
    .command('generate')
    .description('sample text from a saved transformer model (e.g. runs/<run>/runs/dense-seed1/model)')
    .argument('<model>', 'model directory holding model.json and weights.safetensors')
    .option('--prompt <text>', 'text to continue', '')
    .option('--tokens <n>', 'number of tokens (characters) to sample', intArg('--tokens', 1), 200)
    .option('--temperature <t>', 'softmax temperature (0 = greedy)', numArg('--temperature'), 0.8)
    .option('--top-k <k>', 'sample only among the k most likely tokens (0 = all)', intArg('--top-k', 0), 0)
    .option('--seed <n>', 'sampling seed', intArg('--seed', 0), 1)
    .option('--merge-threshold <n>', 'pre-merged dense FFN for calls with at most n tokens (structured models; default per map from the bench: ' + (['lowrank', 'blockdense', 'blockshuffle'] as const).map((m) => `${m} ${defaultMergeThreshold(m)}`).join(', ') + ')', intArg('--merge-threshold', 0))
    .addOption(backendOption())
    .action(async (dir: string, o: GenerateOptions) => {
      await initEngine({ backend: o.backend });
      const { model, meta } = loadTransformer(dir);
      try {
        const tok = CharTokenizer.fromJSON(meta.tokenizer as { type?: string; chars?: unknown });
        let prompt = Array.from(tok.encode(o.prompt));
        const lead = prompt.length === 0;
        if (lead) prompt = [tok.chars.includes('\n') ? tok.chars.indexOf('\n') : 0];
        const thresholds: number[] = [];
        for (const b of model.blocks) {
          if (b.ffn instanceof StructuredFfn) {
            const t = o.mergeThreshold ?? defaultMergeThreshold(b.ffn.spec().map);
            if (t > 0) {
              b.ffn.merge(t);
              thresholds.push(t);
            }
          }
        }
        const t0 = performance.now();
        const ids = sampleTokens(model, prompt, o.tokens, { temperature: o.temperature, topK: o.topK, seed: o.seed });
        const secs = (performance.now() - t0) / 1000;
        process.stdout.write(o.prompt + tok.decode(ids) + '\n');
        process.stderr.write(
          `efftrain: ${o.tokens} tokens in ${secs.toFixed(2)} s (${(o.tokens / secs).toFixed(1)} tokens/s)` +
            (thresholds.length ? `, ${thresholds.length} structured FFN(s) pre-merged for calls of ≤${Math.max(...thresholds)} tokens` : '') +
            (meta.method ? `; model ${String(meta.method)} seed ${String(meta.seed)}, val_bpc ${Number(meta.val_bpc).toFixed(3)}` : '') +
            '\n',
        );
      } catch (e) {
        if (e instanceof UserError) throw new UserError(`${dir}: ${e.message}`);
        throw e;
      } finally {
        model.dispose();
      }
    });
}
