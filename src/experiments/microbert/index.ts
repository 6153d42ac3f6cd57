/**
 * `microbert`: MicroBERT (Gessler & Zeldes, MRL 2022) on a Universal Dependencies treebank, scaled
 * down to a small CPU recipe (settings and results: docs/RESULTS.md).
 *
 * Per (variant, seed): train a WordPiece vocabulary on the train FORMs; pretrain a tiny BERT with the variant's
 * task mix (`none`: no pretraining; `m`: MLM; `mx`: MLM + UPOS, batches 8:1; `mxp`: MLM + UPOS + parsing,
 * 8:1:1), keeping the encoder with the best dev MLM perplexity; then train the probe (a fresh biaffine parser on a learned scalar mix of all layers,
 * encoder fine-tuned 20× slower, weights chosen by dev LAS) and score the test split: LAS/UAS with punctuation
 * excluded, UPOS accuracy of a linear probe. MLM text = the FORM column of train (the recipe's choice at
 * this scale) plus any `unlabeled` text files (one sentence per line; they also train the vocabulary; dev/test text
 * is refused); dev supplies both the perplexity curve and every model choice; test is scored once per run.
 * `labeledFraction` < 1 keeps the trees of only a seeded share of train (POS/parse batches and the probe) while MLM
 * reads all of it: the text ≫ trees regime of the paper, simulated (the quick preset's 10 %).
 * With `checkpointEverySteps`, both phases checkpoint for an exact `--resume`.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import { pairedTTest } from '../../stats/index.js';
import { checkNoHeldOutText, findTreebankFiles, loadTreebank, readUnlabeledText, saveMicroBert, type UnlabeledText } from '../../node/microbert-files.js';
import { fileCheckpointStore } from '../../node/checkpoint-file.js';
import {
  MicroBert,
  VARIANTS,
  attachmentScores,
  collectTagSets,
  goldOf,
  layerCosines,
  predict,
  prepareAll,
  prepareText,
  pretrain,
  trainProbe,
  trainTokenizer,
  type Treebank,
  type Variant,
} from '../../methods/microbert/index.js';
import { lineChart } from '../../report/svg.js';
import { curveSeries, fmtStat } from '../../report/report.js';
import type { Experiment, ReportSection, RunRecord } from '../types.js';

/** `EFFTRAIN_TREEBANK`, else the shared Wolof WTB next to the repository (or at /work/shared), else a clear error later. */
export function defaultTreebankDir(): string {
  if (process.env.EFFTRAIN_TREEBANK) return process.env.EFFTRAIN_TREEBANK;
  const candidates = ['../shared/data/ud/UD_Wolof-WTB', '/work/shared/data/ud/UD_Wolof-WTB'];
  return resolve(candidates.find((c) => existsSync(c)) ?? candidates[0]);
}

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default([...VARIANTS]),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3, 4, 5]),
    treebank: z.string().default(defaultTreebankDir()).describe('UD treebank directory with one *train*, *dev* and *test* .conllu file (default: UD_Wolof-WTB from the shared data folder; CLI --treebank DIR).'),
    vocabSize: z.number().int().min(16).default(3000).describe('WordPiece vocabulary size (uncased, trained on the train FORMs plus any unlabeled text). 2–4k suits a treebank of this size; the quick preset uses 1,000, chosen on dev (docs/RESULTS.md).'),
    nLayers: z.number().int().positive().default(3).describe('Encoder blocks (the paper\'s µBERT: 3).'),
    dModel: z.number().int().positive().default(100).describe('Encoder width (µBERT: 100).'),
    nHeads: z.number().int().positive().default(5).describe('Attention heads (µBERT: 5 of 20).'),
    dFf: z.number().int().positive().default(400).describe('Feed-forward width (µBERT: 400).'),
    positional: z.enum(['rope', 'learned']).default('rope').describe("Encoder positions: rotary (default) or a learned absolute table (BERT's; the paper's code used relative position keys)."),
    maxLen: z.number().int().min(8).default(512).describe('Longest sequence in wordpieces, [CLS]/[SEP] included; a longer sentence keeps only the first piece of each word (error if that still does not fit).'),
    batchSize: z.number().int().positive().default(16).describe('Sentences per step (pretraining and probe).'),
    pretrainSteps: z.number().int().min(0).default(3000).describe('Pretraining optimizer steps, the same for every pretrained variant (0 = no pretraining).'),
    lr: z.number().positive().default(3e-3).describe('Pretraining AdamW peak lr (the paper: 3e-3), after a linear warm-up; halved on dev-perplexity plateaus.'),
    weightDecay: z.number().min(0).default(0.05).describe('Pretraining AdamW decoupled weight decay (the paper: 0.05).'),
    warmupSteps: z.number().int().min(0).default(100).describe('Linear warm-up steps of the pretraining lr.'),
    evalEvery: z.number().int().positive().default(200).describe('Dev MLM perplexity every N pretraining steps (the curve in the report; the best-perplexity weights are kept).'),
    plateauPatience: z.number().int().positive().default(2).describe('Halve the pretraining lr after this many dev evaluations without a lower perplexity.'),
    minLr: z.number().positive().default(5e-5).describe('Floor of the halved pretraining lr.'),
    maskProb: z.number().gt(0).lt(1).default(0.15).describe('Whole-word masking rate of MLM (80 % [MASK], 10 % random piece, 10 % kept).'),
    pretrainDropout: z.number().min(0).lt(1).default(0).describe("Hidden dropout of the encoder during pretraining (the paper's code: 0.1; 0 = none)"),
    arcDim: z.number().int().positive().default(128).describe('Probe: width of the biaffine arc MLPs (Dozat & Manning).'),
    labelDim: z.number().int().positive().default(32).describe('Probe: width of the biaffine label MLPs.'),
    parserDropout: z.number().min(0).lt(1).default(0.3).describe('Probe: dropout on the parser MLPs.'),
    maxDistance: z.number().int().min(0).default(10).describe('Probe: learned arc prior per head distance (±maxDistance; 0 = off), word order for a probe without the paper\'s BiLSTM.'),
    probeSteps: z.number().int().positive().default(2000).describe('Probe (parser) training steps on the treebank, for every variant.'),
    probeLr: z.number().positive().default(2e-3).describe('Probe Adam lr (Dozat & Manning: 2e-3); the encoder is fine-tuned at probeLr × encoderLrFactor.'),
    encoderLrFactor: z.number().min(0).default(0.05).describe('Encoder lr during the probe as a fraction of probeLr (0 = frozen encoder; the paper: 5e-5 / 1e-3 = 0.05).'),
    probeLayerMix: z.boolean().default(true).describe('The probe reads a learned scalar mix of all encoder layers (as the paper\'s parser reads BERT), not only the last.'),
    probeWeightDecay: z.number().min(0).default(0).describe('Probe weight decay.'),
    probeEvalEvery: z.number().int().positive().default(250).describe('Dev LAS every N probe steps; the weights with the best dev LAS are the ones tested.'),
    clip: z.number().positive().default(5).describe('Probe gradient-norm clip.'),
    saveModels: z.boolean().default(true).describe('Save the pretrained encoder (+ vocab) and the trained parser under each run\'s artifacts folder (for `efftrain parse`).'),
    unlabeled: z
      .array(z.string())
      .default([])
      .describe('MLM-only text files (CLI --unlabeled FILE[,FILE]): plain UTF-8, one sentence per line; added to the MLM batches and to the WordPiece training text; never dev/test text'),
    mlmTextFraction: z
      .number()
      .gt(0)
      .max(1)
      .default(1)
      .describe('Share of the train sentences used as MLM text (a seeded subset, for data-scaling checks; 1 = all). The vocabulary, the labeled batches and the probe do not depend on it'),
    labeledFraction: z
      .number()
      .gt(0)
      .max(1)
      .default(1)
      .describe('Share of the train sentences whose annotation is used (a seeded subset: the POS/parse pretraining batches and the probe); MLM text keeps every train sentence. Below 1 it simulates a language with more raw text than trees'),
    unlabeledMaxPieces: z.number().int().min(8).default(128).describe('Longer lines of the unlabeled text are cut into chunks of at most this many wordpieces ([CLS]/[SEP] included)'),
    checkpointEverySteps: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Checkpoint pretraining and the probe every N steps and after each phase, for --resume (0 = never)'),
  })
  .strict();

export type MicroBertExperimentConfig = z.infer<typeof schema>;

/** The config's MLM-only text files, read and checked (UTF-8, not empty, no dev/test file or sentence). */
function loadUnlabeled(cfg: MicroBertExperimentConfig, tb: Treebank): UnlabeledText[] {
  const files = findTreebankFiles(cfg.treebank);
  const texts = cfg.unlabeled.map((f) => readUnlabeledText(f, [files.dev, files.test]));
  checkNoHeldOutText(texts, tb);
  return texts;
}

/** A seeded subset of ⌈fraction·n⌉ items, in their original order. */
function seededSubset<T>(items: T[], fraction: number, seed: number): T[] {
  const keep = Math.max(1, Math.ceil(fraction * items.length));
  const chosen = Array.from(new Rng(seed * 31337 + 17).permutation(items.length).subarray(0, keep)).sort((a, b) => a - b);
  return chosen.map((i) => items[i]);
}

/** The report's sentence on which share of train gives trees and MLM text (empty when both use all of it). */
function trainShares(cfg: MicroBertExperimentConfig): string {
  const pct = (f: number) => `a seeded ${Math.round(100 * f)} % of`;
  const mlm = `MLM text: ${cfg.mlmTextFraction < 1 ? pct(cfg.mlmTextFraction) : 'all'} train`;
  if (cfg.labeledFraction < 1) return ` Annotation used: ${pct(cfg.labeledFraction)} the train sentences (labeledFraction; POS/parse pretraining batches and the probe), ${mlm}.`;
  return cfg.mlmTextFraction < 1 ? ` ${mlm} (mlmTextFraction).` : '';
}

/** Paired comparisons (a − b, same seeds) reported with 95 % t intervals. */
const PAIRS: [string, string][] = [
  ['m', 'none'],
  ['mx', 'm'],
  ['mxp', 'mx'],
];

function paired(runs: readonly RunRecord[], a: string, b: string, metric: string) {
  const by = (m: string) => new Map(runs.filter((r) => r.method === m).map((r) => [r.seed, r.metrics[metric]]));
  const A = by(a);
  const B = by(b);
  const seeds = [...A.keys()].filter((s) => B.has(s)).sort((x, y) => x - y);
  if (!seeds.length) return null;
  return pairedTTest(
    seeds.map((s) => A.get(s) as number),
    seeds.map((s) => B.get(s) as number),
  );
}

export const microbertExperiment: Experiment<MicroBertExperimentConfig> = {
  name: 'microbert',
  description: 'MicroBERT: tiny BERT pretrained with MLM (+UPOS, +parsing) on a UD treebank, probed by biaffine dependency parsing (test LAS/UAS, punctuation excluded)',
  schema: schema as z.ZodType<MicroBertExperimentConfig>,
  quick: {
    methods: ['none', 'm', 'mx'],
    seeds: [1, 2],
    // The paper's regime, simulated as the spec's small recipe says (strip the annotation from most sentences, keep
    // a few labeled): MLM on all train text, trees from 10 % of it (Wolof: 517k words of text vs 44k in trees ≈ 12:1).
    // With text = trees (labeledFraction 1), MLM pretraining parses below random init (docs/RESULTS.md).
    labeledFraction: 0.1,
    // Chosen on dev (seed 1, RESULTS.md): with 1k pieces (≈ 33 uses each) MLM gets below the unigram perplexity in
    // 600 steps, with 3k (≈ 9 uses each) it does not, and both the random and the pretrained encoder parse better.
    vocabSize: 1000,
    dModel: 64,
    nHeads: 4,
    dFf: 256,
    pretrainSteps: 600,
    evalEvery: 150,
    warmupSteps: 50,
    probeSteps: 300,
    probeEvalEvery: 100,
  },
  knownMethods: () => [...VARIANTS],
  metrics: (cfg) => ({
    primary: 'las',
    higherIsBetter: true,
    baseline: 'none',
    diagnostics: [
      'val_ppl',
      'emb_cos',
      'top_layer_cos',
      'params',
      'params_with_heads',
      'pretrain_tokens_per_s',
      'pretrain_seconds',
      'probe_seconds',
      'test_words_scored',
      'vocab_size',
      ...(cfg.unlabeled.length ? ['unlabeled_sentences'] : []),
      ...(cfg.unlabeled.length || cfg.mlmTextFraction < 1 ? ['mlm_sequences'] : []),
      ...(cfg.labeledFraction < 1 ? ['labeled_sentences'] : []),
      'leaked_tensors',
    ],
  }),
  validate(cfg) {
    for (const m of cfg.methods) if (!(VARIANTS as readonly string[]).includes(m)) throw new Error(`microbert: unknown variant ${m}`);
    loadUnlabeled(cfg, loadTreebank(cfg.treebank));
  },
  async run(ctx) {
    const cfg = ctx.config;
    const variant = ctx.method as Variant;
    const tb = loadTreebank(cfg.treebank);
    const text = loadUnlabeled(cfg, tb).flatMap((t) => t.sentences);
    const tok = trainTokenizer(tb.train, cfg.vocabSize, 2, text);
    const tags = collectTagSets(tb.train);
    const train = prepareAll(tb.train, tok, tags, cfg.maxLen);
    const dev = prepareAll(tb.dev, tok, tags, cfg.maxLen);
    const test = prepareAll(tb.test, tok, tags, cfg.maxLen);
    // MLM batches: the train FORMs plus the unlabeled text (dev stays the perplexity's validation set).
    const mlmTrain = cfg.mlmTextFraction < 1 ? seededSubset(train, cfg.mlmTextFraction, ctx.seed) : train;
    const labeled = cfg.labeledFraction < 1 ? seededSubset(train, cfg.labeledFraction, ctx.seed + 7) : train;
    const mlmPool = text.length ? [...mlmTrain, ...prepareText(text, tok, Math.min(cfg.unlabeledMaxPieces, cfg.maxLen))] : mlmTrain;
    const checkpoint = (phase: string) =>
      cfg.checkpointEverySteps > 0 ? { store: fileCheckpointStore(join(ctx.artifactsDir, `${phase}-checkpoint.safetensors`)), everySteps: cfg.checkpointEverySteps, resume: ctx.resume } : undefined;
    const model = new MicroBert(
      { vocabSize: tok.size, nLayers: cfg.nLayers, dModel: cfg.dModel, nHeads: cfg.nHeads, dFf: cfg.dFf, maxLen: cfg.maxLen, arcDim: cfg.arcDim, labelDim: cfg.labelDim, parserDropout: cfg.parserDropout, maxDistance: cfg.maxDistance, positional: cfg.positional },
      tok,
      tags,
      ctx.seed,
    );
    const t0 = performance.now();
    const pre = pretrain(
      model,
      { unlabeled: mlmPool, labeled, valUnlabeled: dev },
      {
        variant,
        steps: cfg.pretrainSteps,
        batchSize: cfg.batchSize,
        lr: cfg.lr,
        weightDecay: cfg.weightDecay,
        warmupSteps: cfg.warmupSteps,
        evalEvery: cfg.evalEvery,
        plateauPatience: cfg.plateauPatience,
        minLr: cfg.minLr,
        maskProb: cfg.maskProb,
        dropout: cfg.pretrainDropout,
        seed: ctx.seed,
        checkpoint: checkpoint('pretrain'),
        onEval: (r) => {
          ctx.log({ step: r.step, val_ppl: r.val_ppl, lr: r.lr, train_loss: r.train_loss });
          ctx.progress({ step: r.step, steps: cfg.pretrainSteps, loss: r.train_loss, message: `pretrain ${variant} val ppl ${r.val_ppl.toFixed(1)}` });
        },
      },
    );
    const pretrainSeconds = (performance.now() - t0) / 1000;
    // The untrained (`none`) encoder's perplexity, so every variant has a comparable number.
    const valPpl = variant === 'none' ? NaN : pre.bestValPpl;
    // Collapse check on the encoder the probe starts from: mean cosine between different words' vectors.
    const cos = layerCosines(model, dev);
    if (cfg.saveModels && variant !== 'none') saveMicroBert(model, join(ctx.artifactsDir, 'pretrained'), { variant, seed: ctx.seed, bestValPpl: pre.bestValPpl, bestStep: pre.bestStep });
    const t1 = performance.now();
    const devUpos = tb.dev.map((s) => s.words.map((w) => w.upos));
    const probe = trainProbe(model, labeled, { sents: dev, uposTags: devUpos }, {
      steps: cfg.probeSteps,
      batchSize: cfg.batchSize,
      lr: cfg.probeLr,
      encoderLrFactor: cfg.encoderLrFactor,
      layerMix: cfg.probeLayerMix,
      weightDecay: cfg.probeWeightDecay,
      evalEvery: cfg.probeEvalEvery,
      clip: cfg.clip,
      seed: ctx.seed,
      checkpoint: checkpoint('probe'),
      onEval: (r) => {
        ctx.log({ kind: 'diagnostic', name: 'probe', probe_step: r.step, dev_las: r.dev_las, dev_uas: r.dev_uas, dev_upos_acc: r.dev_upos_acc });
        ctx.progress({ step: r.step, steps: cfg.probeSteps, message: `probe ${variant} dev LAS ${(100 * r.dev_las).toFixed(1)}` });
      },
    });
    const probeSeconds = (performance.now() - t1) / 1000;
    const sc = attachmentScores(goldOf(test, tb.test.map((s) => s.words.map((w) => w.upos))), predict(model, test));
    if (cfg.saveModels) saveMicroBert(model, join(ctx.artifactsDir, 'parser'), { variant, seed: ctx.seed, devLas: probe.devLas });
    const params = model.encoderParamCount();
    const paramsTotal = params + model.heads().reduce((s, h) => s + h.paramCount(), 0);
    model.dispose();
    return {
      metrics: {
        las: sc.las,
        uas: sc.uas,
        upos_acc: sc.uposAcc,
        dev_las: probe.devLas,
        dev_uas: probe.devUas,
        val_ppl: valPpl,
        emb_cos: cos[0],
        top_layer_cos: cos[cos.length - 1],
        params,
        params_with_heads: paramsTotal,
        pretrain_tokens_per_s: pre.tokensPerSec,
        pretrain_seconds: pretrainSeconds,
        probe_seconds: probeSeconds,
        test_words_scored: sc.scored,
        vocab_size: tok.size,
        ...(text.length || cfg.mlmTextFraction < 1 ? { mlm_sequences: mlmPool.length } : {}),
        ...(text.length ? { unlabeled_sentences: text.length } : {}),
        ...(cfg.labeledFraction < 1 ? { labeled_sentences: labeled.length } : {}),
        leaked_tensors: tf.memory().numTensors,
      },
    };
  },
  derive({ runs }) {
    const out: Record<string, unknown> = {};
    for (const [a, b] of PAIRS)
      for (const metric of ['las', 'uas']) {
        const p = paired(runs, a, b, metric);
        if (p) out[`${a}-${b}:${metric}`] = p;
      }
    return { values: { paired: out } };
  },
  report({ results, rows, config }) {
    const md: string[] = ['## MicroBERT: setup, paired differences and the paper’s predictions\n'];
    const tbName = config.treebank.replace(/\/$/, '').split('/').pop();
    md.push(
      (config.unlabeled.length
        ? `Treebank \`${tbName}\`; MLM text = the train FORMs plus ${config.unlabeled.map((f) => `\`${f.split('/').pop()}\``).join(', ')} (one sentence per line, chunks of ≤ ${config.unlabeledMaxPieces} pieces); WordPiece vocabulary ${config.vocabSize} (uncased, NFD) trained on both. `
        : `Treebank \`${tbName}\`; WordPiece vocabulary ${config.vocabSize} (uncased, NFD) trained on the train FORMs, which are also the MLM text. `) +
        `Encoder: ${config.nLayers} layers, hidden ${config.dModel}, ${config.nHeads} heads, FF ${config.dFf}, bidirectional, ${config.positional === 'learned' ? 'learned absolute' : 'rotary'} positions. ` +
        `Pretraining: ${config.pretrainSteps} steps of batch ${config.batchSize}, AdamW lr ${config.lr} (warm-up ${config.warmupSteps}, halved after ${config.plateauPatience} evaluations without dev-perplexity gain), ` +
        `weight decay ${config.weightDecay}, whole-word masking ${config.maskProb}${config.pretrainDropout ? `, hidden dropout ${config.pretrainDropout}` : ''}; the encoder with the best dev MLM perplexity is kept. ` +
        `Probe: biaffine parser on ${config.probeLayerMix ? 'a learned scalar mix of all encoder layers' : 'the last encoder layer'} (arc ${config.arcDim}, label ${config.labelDim}, dropout ${config.parserDropout}, learned head-distance prior ±${config.maxDistance}), ${config.probeSteps} steps, lr ${config.probeLr}, encoder lr × ${config.encoderLrFactor}, ` +
        `weights chosen by dev LAS (every ${config.probeEvalEvery} steps); MST decoding (one root). LAS/UAS on test exclude PUNCT/SYM words; LAS compares the full DEPREL.` +
        trainShares(config) +
        '\n',
    );
    md.push('Paired differences (same seeds; LAS and UAS in points, 95 % t interval):\n');
    md.push('| comparison | metric | n | mean diff | 95 % CI | p |\n|---|---|---:|---:|---|---:|');
    for (const [a, b] of PAIRS)
      for (const metric of ['las', 'uas']) {
        const p = paired(results.runs, a, b, metric);
        if (!p) continue;
        const ci = p.n > 1 ? `[${(100 * p.ci95[0]).toFixed(2)}, ${(100 * p.ci95[1]).toFixed(2)}]` : 'n/a (1 seed)';
        md.push(`| ${a} − ${b} | ${metric} | ${p.n} | ${(100 * p.meanDiff).toFixed(2)} | ${ci} | ${Number.isFinite(p.p) ? p.p.toFixed(3) : 'n/a'} |`);
      }
    const las = (m: string) => results.summary[m]?.las;
    const verdict = (a: string, b: string, expect: string) => {
      const A = las(a);
      const B = las(b);
      if (!A || !B) return null;
      const d = 100 * (A.mean - B.mean);
      return `| ${expect} | ${a} ${fmtStat(100 * A.mean, 100 * A.std, A.n)} vs ${b} ${fmtStat(100 * B.mean, 100 * B.std, B.n)} (Δ ${d.toFixed(2)}) |`;
    };
    md.push('\n| paper predicts (Wolof, Table 2) | observed test LAS (mean ± std, points) |\n|---|---|');
    for (const line of [verdict('m', 'none', 'pretraining helps (not in the paper’s table; our baseline)'), verdict('mx', 'm', 'MX > M by ≈ 2 LAS (Wolof +2.1)'), verdict('mxp', 'mx', 'MXP ≤ MX (Wolof −4.5)')]) if (line) md.push(line);
    md.push('\nThe paper also predicts a lower dev MLM perplexity for MX/MXP than for M, reached sooner (chart below).\n');
    const pretrainRows = rows.filter((r) => typeof r.step === 'number' && typeof r.val_ppl === 'number');
    const charts = [
      {
        file: 'charts/val-ppl-vs-step.svg',
        title: 'dev MLM perplexity during pretraining',
        svg: lineChart({ title: 'dev MLM perplexity vs pretraining step (mean ± std over seeds)', xLabel: 'step', yLabel: 'perplexity', series: curveSeries(pretrainRows, 'val_ppl', 'step', results.methods), logY: true }),
      },
      {
        file: 'charts/dev-las-vs-probe-step.svg',
        title: 'dev LAS during probe training',
        svg: lineChart({ title: 'dev LAS vs probe step (mean ± std over seeds)', xLabel: 'probe step', yLabel: 'LAS', series: curveSeries(rows, 'dev_las', 'probe_step', results.methods) }),
      },
    ];
    md.push('![dev MLM perplexity](charts/val-ppl-vs-step.svg)\n\n![dev LAS during the probe](charts/dev-las-vs-probe-step.svg)\n');
    md.push(
      '`top_layer_cos` / `emb_cos`: mean cosine similarity between the dev word vectors of different words in the last encoder layer / the embeddings, before the probe (0 = spread out, 1 = one vector for every word: the collapse of MLM pretraining stuck at the unigram plateau).\n',
    );
    md.push(
      '`pretrain_tokens_per_s` counts non-padding wordpieces per second of training steps (evaluation excluded); with several workers sharing the cores it measures contention as much as the model.\n',
    );
    const sections: ReportSection[] = [{ markdown: md.join('\n'), charts }];
    return sections;
  },
};
