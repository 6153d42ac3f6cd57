/**
 * `mtl-multifashion`: multi-task learning under task shift (Sener & Koltun 2018's Multi-MNIST construction,
 * on Fashion-MNIST). Two Fashion-MNIST items overlap on one canvas (item 1 top-left, item 2 shifted by 8 px for 28×28 items, pixel-wise max, resized
 * back to 28×28); task `left` classifies item 1, task `right` item 2. Model: shared encoder
 * Conv3×3(16)-ReLU-MaxPool-Conv3×3(32)-ReLU-MaxPool (Z = 7×7×32), one linear head per task.
 * Methods: `stl` (one network per task, the Δm baseline), every registered weighting (EW, log-loss EW, UW, GLS,
 * RLW, DWA, FAMO, GradNorm, MGDA, MGDA-UB, PCGrad, CAGrad, IMTL, Nash-MTL, Aligned-MTL, DB-MTL), `rep-mtl` (on
 * log-loss EW, the paper's setting),
 * `rep-mtl-tsr`, `rep-mtl-csa`, and `rep-mtl[-tsr|-csa]@<weighting>`.
 * Paper: Wang, Li, Xu, "Rep-MTL", ICCV 2025 (arXiv 2507.21049).
 */
import { z } from 'zod';
import { FASHION_MNIST_DIR, loadImageDataset } from '../../data/image-dataset.js';
import { makeMultiFashion } from '../../data/multi-fashion.js';
import { Rng } from '../../engine/rng.js';
import type { MtlTask } from '../../methods/mtl/index.js';
import { hashString, IMAGE_DATA_DESCRIPTION, runRng } from '../common/image-classification.js';
import { knownMtlMethods, mtlDerive, MTL_METRICS, MTL_METHOD_PATTERNS, mtlReport, mtlTrainShape, runMtl, weightingConfigShape, type MtlData, type MtlTrainConfig } from '../common/mtl/index.js';
import type { Experiment } from '../types.js';

const TASK_NAMES = ['left', 'right'];
const tasksFor = (numClasses: number): MtlTask[] => TASK_NAMES.map((name) => ({ name, outputs: numClasses, loss: 'softmax-ce' }));

const DEFAULT_METHODS = ['stl', 'ew', 'log-ew', 'uw', 'dwa', 'rlw', 'famo', 'gradnorm', 'mgda', 'mgda-ub', 'pcgrad', 'cagrad', 'imtl', 'nash-mtl', 'aligned-mtl', 'db-mtl', 'rep-mtl', 'rep-mtl-tsr', 'rep-mtl-csa'];

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default(DEFAULT_METHODS),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3]),
    data: z.string().default(FASHION_MNIST_DIR).describe(IMAGE_DATA_DESCRIPTION),
    nTrain: z.number().int().positive().default(12000).describe('Multi-Fashion training images, composed from a seeded 90% of the Fashion-MNIST training items.'),
    nVal: z.number().int().positive().default(2000).describe('Validation images, composed from the other 10% of the training items (per-epoch curves; every choice via evalSplit=val).'),
    nTest: z.number().int().positive().default(2000).describe('Test images, composed from the Fashion-MNIST test items (not built when evalSplit=val).'),
    ...mtlTrainShape,
    ...weightingConfigShape(),
  })
  .strict();

export type MtlMultiFashionConfig = z.infer<typeof schema> & MtlTrainConfig;

const cache = new Map<string, MtlData>();

/** The Multi-Fashion data of a config (deterministic in data dir, sizes and dataSeed; cached per worker). */
export function multiFashionData(cfg: Pick<MtlMultiFashionConfig, 'data' | 'nTrain' | 'nVal' | 'nTest' | 'dataSeed' | 'evalSplit'>): MtlData {
  const key = JSON.stringify([cfg.data, cfg.nTrain, cfg.nVal, cfg.nTest, cfg.dataSeed, cfg.evalSplit]);
  const hit = cache.get(key);
  if (hit) return hit;
  const ds = loadImageDataset(cfg.data);
  const rng = new Rng(cfg.dataSeed ^ hashString('multi-fashion'));
  const perm = rng.permutation(ds.train.n);
  const nValItems = Math.max(1, Math.round(ds.train.n * 0.1));
  const valPool = perm.slice(0, nValItems);
  const trainPool = perm.slice(nValItems);
  const toSplit = (m: ReturnType<typeof makeMultiFashion>) => ({ inputs: [m.images], labels: m.labels, n: m.n, height: m.height, width: m.width });
  const train = toSplit(makeMultiFashion(ds.train, cfg.nTrain, rng, { pool: trainPool }));
  const val = toSplit(makeMultiFashion(ds.train, cfg.nVal, rng, { pool: valPool }));
  // Selection runs (evalSplit = val) never build the test split: their final metrics are validation metrics.
  const test = cfg.evalSplit === 'val' ? val : toSplit(makeMultiFashion(ds.test, cfg.nTest, rng));
  const data: MtlData = { tasks: tasksFor(ds.numClasses), train, val, test, pairing: 'paired' };
  cache.set(key, data);
  return data;
}

export const mtlMultiFashion: Experiment<MtlMultiFashionConfig> = {
  name: 'mtl-multifashion',
  description: 'Multi-task learning under task shift: classify the left and the right of two overlapping Fashion-MNIST items (STL, 15 weightings, Rep-MTL)',
  schema: schema as unknown as z.ZodType<MtlMultiFashionConfig>,
  quick: { methods: ['stl', 'ew', 'log-ew', 'pcgrad', 'rep-mtl'], seeds: [1, 2, 3], nTrain: 6144, nVal: 1000, nTest: 2000, epochs: 4 },
  knownMethods: () => knownMtlMethods(),
  validate: (cfg) => {
    loadImageDataset(cfg.data);
  },
  async run(ctx) {
    const data = multiFashionData(ctx.config);
    const rng = runRng(ctx.seed, ctx.experiment);
    return { metrics: runMtl({ ctx, data, rng }) };
  },
  metrics: MTL_METRICS,
  methodPatterns: MTL_METHOD_PATTERNS,
  derive: ({ runs, config }) => mtlDerive(TASK_NAMES, runs, config.baseline),
  report: (input) => mtlReport(input, TASK_NAMES, { targets: true }),
};
