import type { z } from 'zod';
import { UserError } from '../errors.js';
import { metricRowSchema, resultsSchema, RESULTS_SCHEMA_VERSION, type MetricRowRecord, type Results } from './schema.js';

function describe(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/** Validates a parsed results.json; `source` (a file name) is named in the UserError. */
export function parseResults(value: unknown, source = 'results.json'): Results {
  const v = value as { schemaVersion?: unknown } | null;
  if (v && typeof v === 'object' && v.schemaVersion === undefined) {
    throw new UserError(`${source}: no schemaVersion (written by efftrain before results schema ${RESULTS_SCHEMA_VERSION}); re-run the experiment to regenerate it`);
  }
  if (v && typeof v === 'object' && v.schemaVersion !== RESULTS_SCHEMA_VERSION) {
    throw new UserError(`${source}: schemaVersion ${JSON.stringify(v.schemaVersion)} is not supported (this efftrain reads ${RESULTS_SCHEMA_VERSION})`);
  }
  const r = resultsSchema.safeParse(value);
  if (!r.success) throw new UserError(`${source}: not a valid efftrain results file (${describe(r.error)})`);
  return r.data;
}

/** Validates one metrics.jsonl row; `where` (file:line) is named in the UserError. */
export function parseMetricRow(value: unknown, where = 'metrics.jsonl'): MetricRowRecord {
  const r = metricRowSchema.safeParse(value);
  if (!r.success) throw new UserError(`${where}: invalid metric row (${describe(r.error)})`);
  return r.data;
}

/**
 * Fills in `kind` for a row logged without one: `epoch` when it has a numeric `epoch`, else `step` when it has
 * a numeric `step`. Rows of other kinds must say so (`selection`, `diagnostic` with a `name`).
 */
export function withKind<R extends Record<string, unknown>>(row: R): R & { kind: string } {
  if (typeof row.kind === 'string') return row as R & { kind: string };
  if (typeof row.epoch === 'number') return { kind: 'epoch', ...row };
  if (typeof row.step === 'number') return { kind: 'step', ...row };
  throw new Error(`metric row without kind, epoch or step: ${JSON.stringify(row).slice(0, 200)}`);
}
