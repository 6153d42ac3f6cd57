import type { z } from 'zod';

/** One row of metrics.jsonl. The runner adds `method` and `seed`. */
export type MetricRow = Record<string, number | string | boolean | null | number[]>;

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

/** One entry of results.json's `runs`. */
export interface RunRecord {
  method: string;
  seed: number;
  metrics: Record<string, number>;
  wallSeconds: number;
}

export interface SummaryStat {
  mean: number;
  std: number;
  n: number;
}

/** The stable results.json contract. */
export interface Results {
  experiment: string;
  quick: boolean;
  backend: string;
  seeds: number[];
  methods: string[];
  runs: RunRecord[];
  summary: Record<string, Record<string, SummaryStat>>;
  wallSeconds: number;
  command?: string;
  extra?: Record<string, unknown>;
}

/** A chart for the report: an SVG string written to `<runDir>/<file>`. */
export interface Chart {
  file: string;
  title: string;
  svg: string;
}

export interface ReportInput<C> {
  results: Results;
  config: C;
  rows: (MetricRow & { method: string; seed: number })[];
  runDir: string;
}

export interface ReportSection {
  markdown: string;
  charts?: Chart[];
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
  /** Every method name this experiment understands (used to reject unknown --methods). */
  knownMethods(config: C): string[];
  /** Optional check in the main process before workers start (e.g. data present); throw UserError on problems. */
  validate?(config: C): Promise<void> | void;
  run(ctx: RunContext<C>): Promise<RunResult>;
  /** Optional: extra summary entries computed from all runs (added to results.json `extra`). */
  extraResults?(input: Omit<ReportInput<C>, 'results'> & { runs: RunRecord[] }): Record<string, unknown>;
  /** Optional: experiment-specific report sections appended after the generic summary table and curves. */
  report?(input: ReportInput<C>): ReportSection[] | Promise<ReportSection[]>;
}
