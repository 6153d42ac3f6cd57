/**
 * `mtl-fashion-domains`: multi-task learning under domain shift (multi-input, like Office-31, a Rep-MTL
 * benchmark). Each task is one visual domain of Fashion-MNIST — identity, inverted intensity, 90° rotation,
 * 3×3 blur + Gaussian noise — with its own 10-class head and little data (1000 training items per domain by
 * default), so that sharing the encoder pays off. Batches are paired by default: every domain sees the same
 * items (rendered in its domain), which gives CSA "the same sample across tasks" (our choice; the paper does
 * not say how it pairs samples);
 * `pairing = "unpaired"` draws disjoint items per domain and independent batches.
 * Model as in `mtl-multifashion` (Conv3×3(16)-ReLU-MaxPool-Conv3×3(32)-ReLU-MaxPool, linear heads).
 * Representation-space weightings (`mgda-ub`, `*.space = rep`) are rejected: with one input per task the
 * encoder would get no update (LibMTL #83).
 */
import { z } from 'zod';
import { FASHION_MNIST_DIR, loadImageDataset } from '../../data/image-dataset.js';
import { DOMAINS, makeDomainSplit, type Domain } from '../../data/multi-fashion.js';
import { Rng } from '../../engine/rng.js';
import { UserError } from '../../errors.js';
import type { MtlTask } from '../../methods/mtl/index.js';
import { hashString, IMAGE_DATA_DESCRIPTION, runRng } from '../common/image-classification.js';
import { knownMtlMethods, mtlDerive, MTL_METRICS, MTL_METHOD_PATTERNS, mtlReport, mtlTrainShape, runMtl, weightingConfigShape, type MtlData, type MtlSplit, type MtlTrainConfig } from '../common/mtl/index.js';
import type { Experiment } from '../types.js';

const DEFAULT_METHODS = ['stl', 'ew', 'log-ew', 'uw', 'dwa', 'rlw', 'famo', 'gradnorm', 'mgda', 'pcgrad', 'cagrad', 'imtl', 'nash-mtl', 'aligned-mtl', 'db-mtl', 'rep-mtl', 'rep-mtl-tsr', 'rep-mtl-csa'];

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default(DEFAULT_METHODS),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3]),
    data: z.string().default(FASHION_MNIST_DIR).describe(IMAGE_DATA_DESCRIPTION),
    domains: z.array(z.enum(DOMAINS)).min(2).default([...DOMAINS]).describe('The tasks: one visual domain each, from identity, invert (1 − intensity), rot90, noise-blur (3×3 blur + Gaussian noise `noise`); at least 2, no repeats.'),
    nPerDomain: z.number().int().positive().default(1000).describe('Training items per domain (the same items in every domain when paired).'),
    nVal: z.number().int().positive().default(500).describe('Validation items per domain, from training items not used for training (per-epoch curves; every choice via evalSplit=val).'),
    nTest: z.number().int().positive().default(2000).describe('Test items per domain (the same items rendered in every domain; not built when evalSplit=val).'),
    pairing: z.enum(['paired', 'unpaired']).default('paired').describe('paired: every domain sees the same items in the same batches; unpaired: disjoint items per domain, independent batches.'),
    noise: z.number().min(0).default(0.2).describe('σ of the Gaussian noise of the noise-blur domain.'),
    ...mtlTrainShape,
    epochs: z.number().int().positive().default(20).describe('Passes over the training set (STL: for each task network).'),
    batchSize: z.number().int().positive().default(64).describe('Items per optimizer step (per domain).'),
    ...weightingConfigShape(),
  })
  .strict();

export type MtlFashionDomainsConfig = z.infer<typeof schema> & MtlTrainConfig;

const cache = new Map<string, MtlData>();

/** Renders `items` of a split in every domain: one input per domain, labels = item classes. */
function domainSplit(split: Parameters<typeof makeDomainSplit>[0], items: Int32Array[], domains: Domain[], rng: Rng, noise: number): MtlSplit {
  const parts = domains.map((d, t) => makeDomainSplit(split, items[t], d, rng, noise));
  return { inputs: parts.map((p) => p.images), labels: parts.map((p) => p.labels), n: items[0].length, height: split.height, width: split.width };
}

/** The domain data of a config (deterministic in data dir, sizes, pairing, noise and dataSeed; cached per worker). */
export function domainData(cfg: Pick<MtlFashionDomainsConfig, 'data' | 'domains' | 'nPerDomain' | 'nVal' | 'nTest' | 'pairing' | 'noise' | 'dataSeed' | 'evalSplit'>): MtlData {
  const key = JSON.stringify([cfg.data, cfg.domains, cfg.nPerDomain, cfg.nVal, cfg.nTest, cfg.pairing, cfg.noise, cfg.dataSeed, cfg.evalSplit]);
  const hit = cache.get(key);
  if (hit) return hit;
  const ds = loadImageDataset(cfg.data);
  const rng = new Rng(cfg.dataSeed ^ hashString('fashion-domains'));
  const T = cfg.domains.length;
  const perm = rng.permutation(ds.train.n);
  const paired = cfg.pairing === 'paired';
  const need = (paired ? 1 : T) * (cfg.nPerDomain + cfg.nVal);
  if (need > ds.train.n) throw new UserError(`mtl-fashion-domains: ${need} training items needed, ${ds.train.n} available`);
  const take = (off: number, n: number) => perm.slice(off, off + n);
  const trainItems = cfg.domains.map((_, t) => take((paired ? 0 : t) * cfg.nPerDomain, cfg.nPerDomain));
  const valBase = (paired ? 1 : T) * cfg.nPerDomain;
  const valItems = cfg.domains.map((_, t) => take(valBase + (paired ? 0 : t) * cfg.nVal, cfg.nVal));
  const testPerm = rng.permutation(ds.test.n);
  const nTest = Math.min(cfg.nTest, ds.test.n);
  const testItems = cfg.domains.map(() => testPerm.slice(0, nTest));
  const tasks: MtlTask[] = cfg.domains.map((d) => ({ name: d, outputs: ds.numClasses, loss: 'softmax-ce' }));
  const train = domainSplit(ds.train, trainItems, cfg.domains, rng, cfg.noise);
  const val = domainSplit(ds.train, valItems, cfg.domains, rng, cfg.noise);
  // Selection runs (evalSplit = val) never build the test split: their final metrics are validation metrics.
  const test = cfg.evalSplit === 'val' ? val : domainSplit(ds.test, testItems, cfg.domains, rng, cfg.noise);
  const data: MtlData = { tasks, train, val, test, pairing: cfg.pairing };
  cache.set(key, data);
  return data;
}

export const mtlFashionDomains: Experiment<MtlFashionDomainsConfig> = {
  name: 'mtl-fashion-domains',
  description: 'Multi-task learning under domain shift: four visual domains of Fashion-MNIST as tasks with 1000 items each (STL, 15 weightings, Rep-MTL)',
  schema: schema as unknown as z.ZodType<MtlFashionDomainsConfig>,
  quick: { methods: ['stl', 'ew', 'log-ew', 'pcgrad', 'rep-mtl'], seeds: [1, 2, 3], nPerDomain: 512, nVal: 256, nTest: 1000, epochs: 6 },
  knownMethods: () => knownMtlMethods(),
  validate: (cfg) => {
    loadImageDataset(cfg.data);
    if (new Set(cfg.domains).size !== cfg.domains.length) throw new UserError('config key "domains": duplicate domains');
    const rep = cfg.methods.filter((m) => m === 'mgda-ub' || m.endsWith('@mgda-ub'));
    if (rep.length) throw new UserError(`${rep.join(', ')}: gradients w.r.t. the shared representation need single-input MTL; with one input per domain the encoder would get no update (LibMTL #83)`);
  },
  async run(ctx) {
    const data = domainData(ctx.config);
    const rng = runRng(ctx.seed, ctx.experiment);
    return { metrics: runMtl({ ctx, data, rng }) };
  },
  metrics: MTL_METRICS,
  methodPatterns: MTL_METHOD_PATTERNS,
  derive: ({ runs, config }) => mtlDerive(config.domains, runs, config.baseline),
  report: (input) => mtlReport(input, input.config.domains, { targets: false }),
};
