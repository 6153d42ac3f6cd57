import { z } from 'zod';
import { listWeightings } from '../../../methods/mtl/index.js';
import { trainLoopShape, type TrainLoopConfig } from '../image-classification.js';


export const optionSchema = (defaults: Record<string, number | string | boolean>) =>
  z
    .object(Object.fromEntries(Object.entries(defaults).map(([k, v]) => [k, (typeof v === 'number' ? z.number() : typeof v === 'string' ? z.string() : z.boolean()).optional()])))
    .strict()
    .default({});

/** `<weighting>.<option>` keys for every registered weighting (values checked again by the factory). */
export function weightingConfigShape(): Record<string, ReturnType<typeof optionSchema>> {
  return Object.fromEntries(listWeightings().map((f) => [f.name, optionSchema(f.defaults).describe(weightingKeyDescription(f.name, f.paper, f.defaults))]));
}

/** The help text of a weighting's config key: its paper and its options with their defaults. */
function weightingKeyDescription(name: string, paper: string, defaults: Record<string, number | string | boolean>): string {
  const opts = Object.entries(defaults).map(([k, v]) => `${name}.${k} (default ${JSON.stringify(v)})`);
  const used = `Options of the \`${name}\` weighting (methods \`${name}\`, \`rep-mtl[-tsr|-csa]@${name}\`) — ${paper}`;
  return opts.length ? `${used}: ${opts.join(', ')}; set with --set ${name}.<option>=… ({} = all defaults; \`efftrain list weightings\`).` : `${used}: it takes no options.`;
}

/**
 * `repmtl.<option>` keys. The experiments' defaults differ from the library's (λ_tsr = λ_csa = 0.9 from the paper's λ
 * grid, τ = 0.1): λ_tsr = 0.1, λ_csa = 0.01 were chosen on the validation split (`evalSplit = "val"`,
 * scripts/mtl-lambda-grid.sh + scripts/mtl-select.mjs) for Rep-MTL on log-loss EW, over a grid holding the
 * paper's 0.9 and 1.5, on both MTL experiments; larger values cost validation accuracy monotonically (docs/RESULTS.md).
 * `saliencyLoss = auto` takes S_t of the loss being optimised (log L_t on `log-ew`/`db-mtl`, else L_t).
 */
export const repMtlConfigSchema = z
  .object({
    lambdaTsr: z.number().min(0).default(0.1).describe('λ_tsr, weight of the task-specific saliency regulariser (chosen on validation, docs/RESULTS.md).'),
    lambdaCsa: z.number().min(0).default(0.01).describe('λ_csa, weight of the cross-task saliency alignment loss (chosen on validation, docs/RESULTS.md).'),
    tau: z.number().positive().default(0.1).describe('InfoNCE temperature τ of CSA (not reported by the paper).'),
    tsr: z.boolean().default(true).describe('Use TSR (rep-mtl-tsr / rep-mtl-csa override the two switches).'),
    csa: z.boolean().default(true).describe('Use CSA.'),
    includePositive: z.boolean().default(false).describe('Put the positive pair in the CSA denominator (standard InfoNCE); false as printed in the paper.'),
    saliencyLoss: z.enum(['raw', 'log', 'auto']).default('auto').describe('Saliency of L_t (raw) or log L_t (log); auto = log on log-ew / db-mtl, else raw.'),
    headGrad: z.boolean().default(true).describe('Let the regularisers\' gradients reach the task heads.'),
    positions: z.enum(['spatial', 'channels']).default('spatial').describe('Positions of TSR/CSA: spatial H′×W′ (paper) or channels.'),
    eps: z.number().positive().default(1e-8).describe('ε in the TSR denominator and log and in the CSA cosines.'),
  })
  .strict()
  .prefault({})
  .describe('Rep-MTL options of the rep-mtl* methods, set with --set repmtl.<key>=…: lambdaTsr, lambdaCsa (0.1, 0.01: chosen on the validation split over a grid holding the paper\'s 0.9, docs/RESULTS.md), tau, tsr, csa, includePositive, saliencyLoss (raw | log | auto), headGrad, positions (spatial | channels), eps.');

/** Model and training keys shared by the MTL experiments. */
export const mtlTrainShape = {
  ...trainLoopShape,
  epochs: z.number().int().positive().default(12).describe('Passes over the training set (STL: for each task network).'),
  channels: z.array(z.number().int().positive()).min(1).default([16, 32]).describe('Shared encoder: 3×3 conv channels, each followed by ReLU and 2×2 max-pool (default) or a stride-2 conv.'),
  downsample: z.enum(['maxpool', 'stride']).default('maxpool').describe('Encoder downsampling after each conv: 2×2 max-pool (default) or a stride-2 conv instead.'),
  headHidden: z.number().int().min(0).default(0).describe('Head: Linear (0) or Linear(hidden) → ReLU → Linear.'),
  dataSeed: z.number().int().default(0).describe('Seed of the data construction (the same data for every method and run seed).'),
  evalBatch: z.number().int().positive().default(500).describe('Examples per evaluation batch: validation accuracy every epoch (curves), test accuracy and saliency statistics once at the end.'),
  alphaMinTail: z.number().int().min(2).default(5).describe('Minimum tail size of the power-law fit to each layer\'s eigenvalue spectrum (the alpha_* diagnostics; our choice; WeightWatcher\'s min_evals = 10 is fixed).'),
  baseline: z.string().default('').describe('results.json of an earlier run holding `stl` runs: Δm baseline when `stl` is not among the methods.'),
  repmtl: repMtlConfigSchema,
  evalSplit: z
    .enum(['test', 'val'])
    .default('test')
    .describe('Split of the final metrics: "val" for choices (λ, LR) — the run then never builds the test split; "test" only for reported numbers.'),
};

export interface MtlTrainConfig extends TrainLoopConfig {
  methods: string[];
  seeds: number[];
  channels: number[];
  downsample: 'maxpool' | 'stride';
  headHidden: number;
  dataSeed: number;
  evalBatch: number;
  alphaMinTail: number;
  baseline: string;
  evalSplit: 'test' | 'val';
  repmtl: Record<string, unknown>;
  [weighting: string]: unknown;
}

