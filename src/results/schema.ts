/**
 * The results contract: what `efftrain run` writes (results.json, metrics.jsonl) and what `efftrain report`,
 * the dashboard and other tools read. zod schemas with a `schemaVersion`; browser-safe.
 */
import { z } from 'zod';

/** Bump when results.json changes incompatibly; readers reject other versions with a clear error. */
export const RESULTS_SCHEMA_VERSION = 1;

/** A final scalar metric; JSON has no NaN, so a non-finite value is stored as null and read back as NaN. */
export const metricValue = z.preprocess((v) => (v === null ? NaN : v), z.union([z.number(), z.nan()]));

export const runRecordSchema = z.object({
  method: z.string(),
  seed: z.number().int(),
  metrics: z.record(z.string(), metricValue),
  wallSeconds: z.number(),
});

export const summaryStatSchema = z.object({
  mean: metricValue,
  std: metricValue,
  n: z.number().int().min(0),
  /** True when every run's value is an integer (counts, sizes): reports print it without decimals. */
  integer: z.boolean().optional(),
});

/** What an experiment declares about its metrics (see Experiment.metrics). */
export const metricDeclSchema = z.object({
  /** The metric the experiment is about (e.g. test_acc, val_bpc, delta_m). */
  primary: z.string(),
  higherIsBetter: z.boolean(),
  /** The method every other method is compared with (paired t-tests on the primary metric), or null. */
  baseline: z.string().nullable(),
  /** Keys that are diagnostics (sizes, tensor counts, timings), shown apart from the comparison metrics. */
  diagnostics: z.array(z.string()),
});

export const resultsSchema = z.object({
  schemaVersion: z.literal(RESULTS_SCHEMA_VERSION),
  experiment: z.string(),
  quick: z.boolean(),
  backend: z.string(),
  seeds: z.array(z.number().int()),
  methods: z.array(z.string()),
  metrics: metricDeclSchema,
  runs: z.array(runRecordSchema),
  /** method → metric → mean ± std over seeds (computed after the derive step, so it includes derived metrics). */
  summary: z.record(z.string(), z.record(z.string(), summaryStatSchema)),
  /** Experiment-level values computed by the derive step (paired tests, Δm summaries, selections, targets). */
  derived: z.record(z.string(), z.unknown()),
  wallSeconds: z.number(),
  command: z.string().optional(),
});

export type RunRecord = z.infer<typeof runRecordSchema>;
export type SummaryStat = z.infer<typeof summaryStatSchema>;
export type MetricDecl = z.infer<typeof metricDeclSchema>;
export type Results = z.infer<typeof resultsSchema>;

const rowBase = { method: z.string(), seed: z.number().int() };
const rowValue = z.union([z.number(), z.string(), z.boolean(), z.null(), z.array(z.number().nullable())]);

/**
 * One line of metrics.jsonl, discriminated on `kind`:
 * - `epoch`: end-of-epoch metrics (`epoch`, usually `step`, losses, accuracies) — drawn as curves;
 * - `step`: metrics at a training step (`step`) for step-based runs;
 * - `selection`: one candidate of a hyper-parameter selection on validation data (e.g. SuperLoss λ);
 * - `diagnostic`: a named per-run diagnostic (`name`: histograms, saliency maps, per-layer α…).
 */
export const metricRowSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('epoch'), ...rowBase, epoch: z.number().int() }).catchall(rowValue),
  z.object({ kind: z.literal('step'), ...rowBase, step: z.number().int() }).catchall(rowValue),
  z.object({ kind: z.literal('selection'), ...rowBase }).catchall(rowValue),
  z.object({ kind: z.literal('diagnostic'), ...rowBase, name: z.string() }).catchall(rowValue),
]);

export type MetricRowRecord = z.infer<typeof metricRowSchema>;
export type MetricRowKind = MetricRowRecord['kind'];
