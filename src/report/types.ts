import type { Results } from '../results/index.js';

/** A chart for the report: an SVG string written to `<runDir>/<file>`. */
export interface Chart {
  file: string;
  title: string;
  svg: string;
}

/** A Markdown section of report.md, with the charts it shows. */
export interface ReportSection {
  markdown: string;
  charts?: Chart[];
}

/** One metrics.jsonl row as reports read it. */
export type ReportRow = Record<string, unknown> & { method: string; seed: number };

/** What the generic report needs: the results, the rows, and the experiment's own sections. */
export interface ReportDoc {
  results: Results;
  rows: ReportRow[];
  runDir: string;
  /** One line under the title (the experiment's description). */
  description: string;
  sections: ReportSection[];
}
