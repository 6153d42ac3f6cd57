import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { z } from 'zod';
import { saveLayersModel } from '../../train/model-io.js';
import { FASHION_MNIST_DIR, loadImageDataset } from '../../data/image-dataset.js';
import { buildCnn, buildMlp } from '../../models/classifiers.js';
import { IMAGE_DATA_DESCRIPTION, imageTrainShape, runRng, trainImageClassifier } from '../common/image-classification.js';
import type { Experiment } from '../types.js';

const METHODS = ['mlp', 'cnn'] as const;

const schema = z
  .object({
    methods: z.array(z.string()).min(1).default([...METHODS]),
    seeds: z.array(z.number().int()).min(1).default([1, 2, 3]),
    data: z.string().default(FASHION_MNIST_DIR).describe(IMAGE_DATA_DESCRIPTION),
    ...imageTrainShape,
    epochs: z.number().int().positive().default(10).describe('Passes over the training set.'),
    mlpHidden: z.array(z.number().int().positive()).default([512, 256]).describe('Hidden layer widths of the `mlp` method (ReLU).'),
    cnnChannels: z.array(z.number().int().positive()).default([32, 64]).describe('Filters of the `cnn` method\'s 3×3 conv layers, one entry per conv (each followed by the `cnnDownsample` step).'),
    cnnHidden: z.number().int().min(0).default(128).describe('Width of the `cnn` method\'s dense layer before the classifier (0 = none: flatten → classifier).'),
    cnnDownsample: z.enum(['maxpool', 'stride']).default('stride').describe('Downsampling in the CNN: 2×2 max-pool after each conv, or stride-2 convs (≈3x cheaper per step on wasm).'),
  })
  .strict();

export type FashionBaselineConfig = z.infer<typeof schema>;

/**
 * `fashion-baseline`: an MLP and a small CNN on Fashion-MNIST (or any MNIST-format IDX directory), metric
 * `test_acc`. It exercises the whole stack (data, engine, trainer, runner, report) end to end.
 */
export const fashionBaseline: Experiment<FashionBaselineConfig> = {
  name: 'fashion-baseline',
  description: 'MLP and CNN baselines on Fashion-MNIST (test accuracy)',
  schema: schema as z.ZodType<FashionBaselineConfig>,
  quick: { epochs: 3, cnnChannels: [16, 32], cnnHidden: 64, mlpHidden: [256] },
  metrics: { primary: 'test_acc', higherIsBetter: true, baseline: 'mlp', diagnostics: ['params', 'leaked_tensors'] },
  knownMethods: () => [...METHODS],
  validate: (cfg) => {
    loadImageDataset(cfg.data);
  },
  async run(ctx) {
    const cfg = ctx.config;
    const ds = loadImageDataset(cfg.data);
    const rng = runRng(ctx.seed, ctx.experiment);
    const shape = { height: ds.train.height, width: ds.train.width, channels: 1 };
    const model =
      ctx.method === 'mlp'
        ? buildMlp(shape, ds.numClasses, cfg.mlpHidden, rng)
        : buildCnn(shape, ds.numClasses, cfg.cnnChannels, cfg.cnnHidden, rng, cfg.cnnDownsample);
    const r = trainImageClassifier({ ctx, model, train: ds.train, test: ds.test, numClasses: ds.numClasses, rng });
    await saveLayersModel(model, join(ctx.artifactsDir, 'model'));
    const params = model.countParams();
    model.dispose();
    r.trainer.optimizer.dispose();
    return { metrics: { test_acc: r.testAcc, test_loss: r.testLoss, params, leaked_tensors: tf.memory().numTensors } };
  },
};
