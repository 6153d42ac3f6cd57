import { UserError } from '../../errors.js';

/** Regression losses compared: L1, smooth-L1, and SuperLoss wrapped around smooth-L1 (τ = EMA of the loss). */
export const REGRESSION_LOSSES = ['l1', 'smoothl1', 'superloss'] as const;
export type RegressionLoss = (typeof REGRESSION_LOSSES)[number];
export const DEFAULT_OUTLIER_RATES = [0.2, 0.4];

export interface RegressionMethod {
  loss: RegressionLoss;
  /** Fraction of training targets replaced by outliers. */
  rate: number;
}

/** Parses `<loss>@out-<rate>` (loss l1 | smoothl1 | superloss, rate in [0, 1]), e.g. `superloss@out-0.2`. */
export function parseRegressionMethod(name: string): RegressionMethod {
  const m = /^([a-z0-9]+)@out-([0-9]*\.?[0-9]+)$/.exec(name);
  if (!m || !(REGRESSION_LOSSES as readonly string[]).includes(m[1])) {
    throw new UserError(`method "${name}": expected <loss>@out-<rate> with loss one of ${REGRESSION_LOSSES.join(', ')} and rate in [0,1] (e.g. superloss@out-0.2)`);
  }
  const rate = Number(m[2]);
  if (!(rate >= 0 && rate <= 1)) throw new UserError(`method "${name}": outlier rate must be in [0,1]`);
  return { loss: m[1] as RegressionLoss, rate };
}

/** The paired-comparison baseline: `l1@out-<rate>` when every method runs at one outlier rate, else none. */
export function sameRateBaseline(methods: string[]): string | null {
  const rates = new Set(methods.map((m) => m.slice(m.indexOf('@') + 1)));
  const [rate] = [...rates];
  return rates.size === 1 && methods.includes(`l1@${rate}`) ? `l1@${rate}` : null;
}

export const methodsFor = (rates: number[]) => rates.flatMap((r) => REGRESSION_LOSSES.map((l) => `${l}@out-${r}`));
