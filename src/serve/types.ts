/**
 * The JSON the dashboard server sends to its pages (`/api/runs`, `/api/run`, the `/api/events` stream).
 * Type-only: the browser code imports these types too.
 */

/** done: results.json is valid; running: its process is alive (or metrics.jsonl grew in the last minute);
 * failed: the runner recorded an error; interrupted: stopped without results (killed); error: results.json unreadable. */
export type RunStatus = 'running' | 'done' | 'failed' | 'interrupted' | 'error';

/** A problem with one of the run's files, shown on that run (the server keeps serving). */
export interface FileProblem {
  file: string;
  /** 1-based line for metrics.jsonl problems. */
  line?: number;
  message: string;
}

export interface RunListEntry {
  /** Path of the run directory relative to the served folder, with `/` separators. */
  id: string;
  experiment: string;
  /** ISO time: when the run started (status.json), else the config's modification time. */
  date: string;
  quick: boolean | null;
  methods: string[];
  seeds: number[];
  status: RunStatus;
  /** Failure message (failed runs). */
  error?: string;
  /** Highest `epoch` (or `step`) seen in metrics.jsonl. */
  lastEpoch: number | null;
  problems: FileProblem[];
}

/** One row of metrics.jsonl: `method`, `seed` and per-epoch numbers. */
export type MetricsRow = Record<string, unknown> & { method?: string; seed?: number };

export interface Stat {
  mean: number;
  std: number;
  n: number;
  /** Every run's value is an integer (counts, sizes). */
  integer?: boolean;
}

/** method − baseline, paired by seed, with a t-based 95% confidence interval (df = n − 1). */
export interface PairedDifference {
  method: string;
  metric: string;
  n: number;
  meanDiff: number;
  ci95: [number, number];
  p: number;
}

export interface RunDetail extends RunListEntry {
  config: Record<string, unknown> | null;
  /** results.summary: method → metric → mean ± std over seeds. */
  summary: Record<string, Record<string, Stat>> | null;
  /** The method differences are taken against, and where that choice came from. */
  baseline: string | null;
  baselineSource: 'experiment' | 'config' | 'first method' | null;
  /** method − baseline for every non-diagnostic final metric. */
  paired: PairedDifference[];
  /** From the experiment's declaration in results.json (schema 1), when present. */
  primary: string | null;
  higherIsBetter: boolean | null;
  diagnostics: string[];
  command: string | null;
  wallSeconds: number | null;
  rows: MetricsRow[];
  /** Byte offset in metrics.jsonl just after the last whole line read: where the event stream continues. */
  offset: number;
  /** report.md exists (its sections are rendered on the run page; its charts are served under /runs/<id>/). */
  hasReport: boolean;
}

/** Payload of the `rows` server-sent event. */
export interface RowsEvent {
  rows: MetricsRow[];
  problems: FileProblem[];
  offset: number;
}

/** Payload of the `status` server-sent event. */
export interface StatusEvent {
  status: RunStatus;
  error?: string;
}
