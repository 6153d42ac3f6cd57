import type { z } from 'zod';
import type { Derived, MetricDecl, Results, RunRecord } from '../results/index.js';

export type { Results, RunRecord, SummaryStat, MetricDecl, Derived } from '../results/index.js';
import type { Chart, ReportSection } from '../report/types.js';
export type { Chart, ReportSection } from '../report/types.js';

/**
 * One row of metrics.jsonl as an experiment logs it; the runner adds `method` and `seed`, fills in `kind`
 * (`epoch` / `step`) when missing, and validates it against the results contract (src/results/schema.ts).
 * Diagnostic rows say `kind: 'diagnostic', name: '…'`; hyper-parameter selection rows `kind: 'selection'`.
 */
export type MetricRow = Record<string, number | string | boolean | null | (number | null)[]>;

/** What an experiment's `run` receives for one (method, seed) pair. It runs inside a worker thread. */
export interface RunContext<C> {
  experiment: string;
  method: string;
  seed: number;
  /** Resolved config (schema defaults ← quick preset ← --config file ← --set / flags). */
  config: C;
  quick: boolean;
  backend: string;
  /** True under --resume: continue from this run's checkpoint in `artifactsDir` when one exists. */
  resume: boolean;
  /** Appends one row to metrics.jsonl (method and seed are added for you). Use `epoch` or `step` keys. */
  log(row: MetricRow): void;
  /** Human progress: a line per epoch off-TTY, a bar on a TTY. */
  progress(p: { epoch?: number; epochs?: number; step?: number; steps?: number; loss?: number; message?: string }): void;
  /** A directory private to this (method, seed) pair for artifacts such as saved models. */
  artifactsDir: string;
}

export interface RunResult {
  /** Final scalar metrics; accuracies are fractions in [0, 1]. These are summarised as mean ± std over seeds. */
  metrics: Record<string, number>;
}

export interface DeriveInput<C> {
  config: C;
  rows: (MetricRow & { method: string; seed: number })[];
  runDir: string;
  /** The runs' own metrics (read-only: return new metrics through Derived.runMetrics). */
  runs: readonly RunRecord[];
}

export interface ReportInput<C> {
  results: Results;
  config: C;
  rows: (MetricRow & { method: string; seed: number })[];
  runDir: string;
}


/**
 * An experiment: a zod config schema with defaults (must contain `methods: string[]` and `seeds: number[]`),
 * a quick preset, and a `run` for one (method, seed). Register it in `registry.ts`.
 */
export interface Experiment<C extends { methods: string[]; seeds: number[] } = { methods: string[]; seeds: number[] }> {
  name: string;
  description: string;
  schema: z.ZodType<C>;
  /** Overrides applied under --quick (before the config file and --set). */
  quick: Partial<C>;
  /**
   * How method names are formed, for `efftrain list` (e.g. `stl`, `<weighting>`, `rep-mtl[-tsr|-csa][@<weighting>]`);
   * default: the names of `knownMethods`.
   */
  methodPatterns?: string[];
  /** Every method name this experiment understands (used to reject unknown --methods). */
  knownMethods(config: C): string[];
  /** Optional check in the main process before workers start (e.g. data present); throw UserError on problems. */
  validate?(config: C): Promise<void> | void;
  run(ctx: RunContext<C>): Promise<RunResult>;
  /**
   * What the experiment's numbers mean: the primary metric and its direction, the baseline method (paired
   * t-tests of every other method against it on the primary metric), and the diagnostic keys.
   */
  metrics: MetricDecl | ((config: C) => MetricDecl);
  /**
   * Optional derived-metrics step, run once after all runs finish and before the summary: per-run metrics
   * that need other runs (Δm against the same seed's baseline) and experiment-level values (selections,
   * targets). Stored in results.json; reports only read them.
   */
  derive?(input: DeriveInput<C>): Derived;
  /** Optional: experiment-specific report sections appended after the generic summary table and curves. */
  report?(input: ReportInput<C>): ReportSection[] | Promise<ReportSection[]>;
}
