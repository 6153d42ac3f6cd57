import { existsSync, readFileSync } from 'node:fs';
import type { z } from 'zod';
import { UserError } from '../errors.js';
import type { Experiment } from './types.js';

/** Parses a `--set key=value` string; the value is JSON when it parses as JSON, else a string. Dotted keys nest. */
export function parseSet(expr: string): { key: string; value: unknown } {
  const eq = expr.indexOf('=');
  if (eq <= 0) throw new UserError(`--set expects key=value, got "${expr}"`);
  const key = expr.slice(0, eq).trim();
  const raw = expr.slice(eq + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // comma lists of numbers are common on the command line: 1,2,3
    if (/^-?[0-9.e]+(,-?[0-9.e]+)+$/.test(raw)) value = raw.split(',').map(Number);
  }
  return { key, value };
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = obj;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = cur[parts[i]];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[parts[i]] = {};
    cur = cur[parts[i]] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]] = value;
}

/** Reads a JSON config file, naming the file (and line, when JSON.parse reports a position) on errors. */
export function readConfigFile(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new UserError(`${file}: config file not found`);
  const text = readFileSync(file, 'utf8');
  try {
    const v = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError(`${file}: config must be a JSON object`);
    return v as Record<string, unknown>;
  } catch (e) {
    if (e instanceof UserError) throw e;
    const m = /position (\d+)/.exec((e as Error).message);
    const pos = m ? Number(m[1]) : jsonErrorOffset(text);
    const line = pos !== null ? text.slice(0, pos).split('\n').length : null;
    throw new UserError(`${file}${line ? `:${line}` : ''}: invalid JSON (${(e as Error).message})`);
  }
}

/** The object shape under `path` of a (possibly defaulted/optional) zod object schema; null when there is none. */
export function shapeAt(schema: z.ZodType, path: PropertyKey[] = []): Record<string, z.ZodType> | null {
  let cur = schema as unknown as { shape?: Record<string, z.ZodType>; _zod?: { def: { type: string; innerType?: unknown } } };
  const unwrap = () => {
    while (cur?._zod && ['default', 'optional', 'nullable', 'prefault'].includes(cur._zod.def.type) && cur._zod.def.innerType) cur = cur._zod.def.innerType as typeof cur;
  };
  unwrap();
  for (const k of path) {
    const next = cur?.shape?.[String(k)] as unknown as typeof cur | undefined;
    if (!next) return null;
    cur = next;
    unwrap();
  }
  return cur?.shape ?? null;
}

function formatIssues(err: z.ZodError, source: string, schema: z.ZodType): string {
  return err.issues
    .map((i) => {
      const key = i.path.join('.');
      if (i.code === 'unrecognized_keys') {
        const keys = (i as unknown as { keys: string[] }).keys;
        const valid = Object.keys(shapeAt(schema, i.path) ?? {});
        return `unknown config key${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${key ? key + '.' : ''}${k}"`).join(', ')}${valid.length ? ` (valid${key ? ` under "${key}"` : ''}: ${valid.join(', ')}; see \`efftrain config <experiment>\`)` : key ? ` ("${key}" takes no keys)` : ''}`;
      }
      return `config key "${key}": ${i.message}`;
    })
    .join('; ') + (source ? ` (${source})` : '');
}

export interface ConfigSources {
  quick: boolean;
  file?: string;
  sets?: string[];
  /** Flag overrides (seeds, methods, data…) applied last. */
  flags?: Record<string, unknown>;
}

/**
 * Resolves an experiment's config: schema defaults ← quick preset ← --config file ← --set ← flags.
 * Unknown keys and invalid values raise a UserError naming the key (and the file).
 */
export function resolveConfig<C extends { methods: string[]; seeds: number[] }>(exp: Experiment<C>, src: ConfigSources): C {
  const merged: Record<string, unknown> = {};
  if (src.quick) Object.assign(merged, exp.quick);
  if (src.file) Object.assign(merged, readConfigFile(src.file));
  for (const s of src.sets ?? []) {
    const { key, value } = parseSet(s);
    setPath(merged, key, value);
  }
  for (const [k, v] of Object.entries(src.flags ?? {})) if (v !== undefined) merged[k] = v;
  const parsed = exp.schema.safeParse(merged);
  if (!parsed.success) throw new UserError(formatIssues(parsed.error, src.file ? `config ${src.file}` : '', exp.schema));
  const cfg = parsed.data;
  const known = new Set(exp.knownMethods(cfg));
  const unknown = cfg.methods.filter((m) => !known.has(m));
  if (unknown.length) throw new UserError(`unknown method${unknown.length > 1 ? 's' : ''} ${unknown.map((m) => `"${m}"`).join(', ')} for ${exp.name} (known: ${[...known].join(', ')})`);
  if (new Set(cfg.seeds).size !== cfg.seeds.length) throw new UserError(`config key "seeds": duplicate seeds in [${cfg.seeds}]`);
  return cfg;
}

/** One line per top-level config key: `key = value` and the key's description (from the schema). */
export function describeConfig<C extends { methods: string[]; seeds: number[] }>(exp: Experiment<C>, config: C): { key: string; value: unknown; description: string }[] {
  const shape = shapeAt(exp.schema) ?? {};
  const common: Record<string, string> = { methods: 'methods to run (patterns: `efftrain list`)', seeds: 'one run per method and seed' };
  return Object.entries(config as Record<string, unknown>).map(([key, value]) => ({ key, value, description: shape[key]?.description ?? common[key] ?? '' }));
}

/**
 * Offset of the first JSON syntax error in `text` (Node 20's JSON.parse messages often omit it), found by a
 * small recursive-descent scan; null when the text parses.
 */
export function jsonErrorOffset(text: string): number | null {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (c === '{') {
          ws();
          if (text[i] !== '"') fail();
          value();
          ws();
          if (text[i] !== ':') fail();
          i++;
        }
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === close) {
          i++;
          return;
        } else fail();
      }
    } else if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      if (i >= text.length) fail();
      i++;
    } else {
      const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i));
      if (!m) fail();
      i += m![0].length;
    }
  };
  try {
    value();
    ws();
    return i < text.length ? i : null;
  } catch (pos) {
    return pos as number;
  }
}
