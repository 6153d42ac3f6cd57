#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initEngine, type BackendChoice } from '../engine/backend.js';
import { backendOption } from './options.js';
import { describeConfig, resolveConfig } from '../experiments/config.js';
import { NonFiniteLossError, UserError } from '../errors.js';
import { getExperiment, listExperiments } from '../experiments/registry.js';
import { reportRun, runExperiment } from '../experiments/runner.js';
import { parseMetricRow, parseResults } from '../results/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { registerExportShiftCommand } from './export-shift.js';
import { registerGenerateCommand } from './generate.js';
import { registerSweepCommands } from './sweep.js';
import { registerParseCommand } from './parse.js';
import { registerServeCommand } from './serve.js';
import type { MetricRow } from '../experiments/types.js';
import { registerRecognizeCommand } from './recognize.js';

const VERSION = '0.1.0';

// `efftrain config … | head`: a reader that closes the pipe early ends the output, not the process with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

function intArg(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

function listArg(v: string): string[] {
  return v.split(',').map((s) => s.trim()).filter(Boolean);
}

function seedsArg(v: string): number[] {
  const xs = listArg(v).map(Number);
  if (!xs.length || xs.some((x) => !Number.isInteger(x))) throw new InvalidArgumentError('seeds must be a comma-separated list of integers, e.g. 1,2,3');
  return xs;
}

const collect = (v: string, prev: string[]) => [...prev, v];


function timestamp(): string {
  return new Date().toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');
}

/** Builds the commander program (exported for tests). */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('efftrain')
    .description('Effective training techniques for TensorFlow.js, compared honestly on real data.')
    .version(VERSION)
    .showHelpAfterError('(add --help for usage)');

  program
    .command('list')
    .description('list experiments (with their method patterns), MTL weightings and benchmarks')
    .argument('[what]', 'experiments | weightings | benches (default: experiments and benches)')
    .option('--json', 'print JSON')
    .action(async (what: string | undefined, o: { json?: boolean }) => {
      const kinds = ['experiments', 'weightings', 'benches'];
      if (what && !kinds.includes(what)) throw new UserError(`list: unknown "${what}" (expected one of ${kinds.join(', ')})`);
      const { listBenches } = await import('../bench/registry.js');
      const { listWeightings } = await import('../methods/mtl/index.js');
      const exps = listExperiments().map((e) => {
        const cfg = e.schema.parse({});
        return { name: e.name, description: e.description, methodPatterns: e.methodPatterns ?? e.knownMethods(cfg), methods: e.knownMethods(cfg), defaultMethods: cfg.methods, quickMethods: e.quick.methods ?? cfg.methods };
      });
      const weightings = listWeightings().map((w) => ({ name: w.name, paper: w.paper, options: w.defaults, supportsRep: w.supportsRep }));
      const benches = listBenches().map((b) => ({ name: b.name, description: b.description }));
      if (o.json) {
        const all = { experiments: exps, weightings, benches } as Record<string, unknown>;
        process.stdout.write(JSON.stringify(what ? { [what]: all[what] } : { experiments: exps, benches }, null, 2) + '\n');
        return;
      }
      const out = (s: string) => process.stdout.write(s);
      if (!what || what === 'experiments') {
        out('Experiments (efftrain run <name>; keys: efftrain config <name>):\n');
        for (const e of exps) out(`  ${e.name.padEnd(26)} ${e.description}\n  ${''.padEnd(26)} methods: ${e.methodPatterns.join(' | ')}\n`);
      }
      if (what === 'weightings') {
        out('MTL weightings (a method of mtl-* experiments, alone or as rep-mtl@<weighting>):\n');
        for (const w of weightings) out(`  ${w.name.padEnd(12)} ${w.paper}${Object.keys(w.options).length ? `\n  ${''.padEnd(12)} options: ${Object.entries(w.options).map(([k, v]) => `${w.name}.${k}=${JSON.stringify(v)}`).join(', ')}` : ''}\n`);
      }
      if (!what || what === 'benches') {
        out(`${what ? '' : '\n'}Benchmarks (efftrain bench <name>):\n`);
        for (const b of benches) out(`  ${b.name.padEnd(26)} ${b.description}\n`);
      }
    });

  program
    .command('config')
    .description("print an experiment's resolved config, each key with its description")
    .argument('<experiment>', 'experiment name (see `efftrain list`)')
    .option('--quick', 'apply the quick preset', false)
    .option('--config <file>', 'JSON config file (keys as in config.json)')
    .option('--set <key=value>', 'override one config key (repeatable)', collect, [])
    .option('--json', 'print the resolved config as JSON (the format of config.json and --config)', false)
    .action((name: string, o: { quick: boolean; config?: string; set: string[]; json: boolean }) => {
      const exp = getExperiment(name);
      const cfg = resolveConfig(exp, { quick: o.quick, file: o.config, sets: o.set });
      if (o.json) {
        process.stdout.write(JSON.stringify(cfg, null, 2) + '\n');
        return;
      }
      process.stdout.write(`# ${exp.name}${o.quick ? ' --quick' : ''}: set keys with --set key=value or --config file.json\n`);
      for (const { key, value, description } of describeConfig(exp, cfg)) {
        process.stdout.write(`${key} = ${JSON.stringify(value)}${description ? `\n    ${description}` : ''}\n`);
      }
    });

  program
    .command('run')
    .description('run an experiment over methods × seeds and write config.json, metrics.jsonl, results.json, report.md, charts/')
    .argument('<experiment>', 'experiment name (see `efftrain list`)')
    .option('--quick', 'use the experiment’s quick preset (minutes on 2 cores)', false)
    .option('--seeds <list>', 'comma-separated seeds, e.g. 1,2,3', seedsArg)
    .option('--methods <list>', 'comma-separated methods', listArg)
    .option('--data <path>', 'data: an IDX directory (image experiments), a CSV/JSON table (superloss-regression)')
    .option('--text <file>', 'a UTF-8 text file (text experiments, e.g. structured-ffn; --data is accepted there as an alias)')
    .option('--treebank <dir>', 'Universal Dependencies treebank directory with train/dev/test .conllu (microbert)')
    .option('--unlabeled <files>', 'MLM-only plain UTF-8 text, one sentence per line, comma-separated files (microbert; config key unlabeled)', listArg)
    .option('--out <dir>', 'output directory (default runs/<experiment>-<timestamp>)')
    .addOption(backendOption())
    .option('--no-wasm-patches', 'disable the wasm kernel patches (for comparison only)')
    .option('--workers <n>', 'parallel worker threads (default: number of cores)', intArg('--workers'))
    .option('--config <file>', 'JSON config file (keys as in config.json)')
    .option('--set <key=value>', 'override one config key (repeatable; value parsed as JSON when possible)', collect, [])
    .option('--resume', 'continue an interrupted run in --out from its checkpoints, or add --seeds/--methods to a finished one (other options must match)', false)
    .option('--quiet', 'no progress output', false)
    .action(async (name: string, o: { quick: boolean; seeds?: number[]; methods?: string[]; data?: string; text?: string; treebank?: string; unlabeled?: string[]; out?: string; backend: BackendChoice; wasmPatches: boolean; workers?: number; config?: string; set: string[]; resume: boolean; quiet: boolean }) => {
      getExperiment(name);
      if (o.resume && !o.out) throw new UserError('--resume needs --out DIR (the run directory to continue)');
      const { outDir, results } = await runExperiment({
        experiment: name,
        quick: o.quick,
        file: o.config,
        sets: o.set,
        flags: { seeds: o.seeds, methods: o.methods, data: o.data, text: o.text, treebank: o.treebank, unlabeled: o.unlabeled },
        outDir: o.out ?? join('runs', `${name}${o.quick ? '-quick' : ''}-${timestamp()}`),
        backend: o.backend,
        wasmPatches: o.wasmPatches,
        workers: o.workers,
        resume: o.resume,
        quiet: o.quiet,
        command: ['efftrain', ...process.argv.slice(2)].join(' '),
      });
      const { summaryTable } = await import('../report/report.js');
      process.stderr.write(`\n${summaryTable(results)}\nwrote ${outDir}/results.json, report.md (backend ${results.backend}, ${results.wallSeconds.toFixed(1)} s)\n`);
      process.stdout.write(`${outDir}\n`);
    });

  program
    .command('report')
    .description('regenerate report.md and charts of a finished run directory')
    .argument('<runDir>', 'a directory written by `efftrain run`')
    .action(async (dir: string) => {
      const rp = join(dir, 'results.json');
      if (!existsSync(rp)) throw new UserError(`${rp}: not found (is ${dir} a finished run directory?)`);
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(rp, 'utf8'));
      } catch (e) {
        throw new UserError(`${rp}: invalid JSON (${(e as Error).message})`);
      }
      const results = parseResults(raw, rp);
      const exp = getExperiment(results.experiment);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      const mp = join(dir, 'metrics.jsonl');
      const rows = existsSync(mp)
        ? readFileSync(mp, 'utf8').split('\n').filter(Boolean).map((l, i) => {
            let v: unknown;
            try {
              v = JSON.parse(l);
            } catch {
              throw new UserError(`${mp}:${i + 1}: invalid JSON line`);
            }
            return parseMetricRow(v, `${mp}:${i + 1}`) as MetricRow & { method: string; seed: number };
          })
        : [];
      await reportRun(exp, { results, config, rows, runDir: dir });
      process.stdout.write(`${join(dir, 'report.md')}\n`);
    });

  program
    .command('bench')
    .description('run a speed benchmark in one process and write bench.json')
    .argument('<name>', 'benchmark name (see `efftrain list`)')
    .option('--quick', 'fewer timed steps', false)
    .option('--out <dir>', 'output directory (default runs/bench-<name>-<timestamp>)')
    .addOption(backendOption())
    .action(async (name: string, o: { quick: boolean; out?: string; backend: BackendChoice }) => {
      const { getBench } = await import('../bench/registry.js');
      const bench = getBench(name);
      await initEngine({ backend: o.backend });
      const res = await bench.run({ quick: o.quick, log: (l) => process.stderr.write(l + '\n') });
      const out = o.out ?? join('runs', `bench-${name}-${timestamp()}`);
      writeFileAtomic(join(out, 'bench.json'), JSON.stringify({ bench: name, date: new Date().toISOString(), node: process.version, ...res }, null, 2) + '\n');
      process.stdout.write(`${join(out, 'bench.json')}\n`);
    });

  registerExportShiftCommand(program);
  registerGenerateCommand(program);
  registerSweepCommands(program);
  registerParseCommand(program);
  registerServeCommand(program);
  registerRecognizeCommand(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    const err = e as Error;
    if (err instanceof UserError || err instanceof NonFiniteLossError || err.name === 'UserError') {
      process.stderr.write(`efftrain: error: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`efftrain: internal error: ${err.stack ?? err.message}\n`);
      process.exitCode = 1;
    }
  }
}

void main();
