/**
 * Learning-rate schedules. `lr(step)` is pure in the step (so resuming at step k gives the same value);
 * stateful schedules (reduce-on-plateau) expose getState/setState for checkpoints.
 */
export interface Schedule {
  lr(step: number): number;
  /** Called after each epoch with the monitored metric (lower is better); only plateau uses it. */
  onEpochEnd?(metric: number): void;
  getState?(): Record<string, number>;
  setState?(s: Record<string, number>): void;
}

export const constant = (base: number): Schedule => ({ lr: () => base });

/** Linear warmup from 0 to `base` over `warmupSteps` steps (Goyal et al. 2017). */
export function warmupFactor(step: number, warmupSteps: number): number {
  return warmupSteps > 0 && step < warmupSteps ? (step + 1) / warmupSteps : 1;
}

/**
 * Warmup then cosine decay to `minLr` at `totalSteps` (SGDR without restarts, Loshchilov & Hutter, ICLR 2017):
 * lr = min + ½(base − min)(1 + cos(π · t)), t = (step − warmup)/(total − warmup).
 */
export function warmupCosine(base: number, totalSteps: number, opts: { warmupSteps?: number; minLr?: number } = {}): Schedule {
  const warm = opts.warmupSteps ?? 0;
  const min = opts.minLr ?? 0;
  return {
    lr(step) {
      if (step < warm) return base * warmupFactor(step, warm);
      const t = Math.min(1, (step - warm) / Math.max(1, totalSteps - warm));
      return min + 0.5 * (base - min) * (1 + Math.cos(Math.PI * t));
    },
  };
}

/** Step decay: lr = base · gamma^⌊step / stepSize⌋, with optional linear warmup. */
export function stepDecay(base: number, stepSize: number, gamma = 0.1, warmupSteps = 0): Schedule {
  return { lr: (step) => base * warmupFactor(step, warmupSteps) * Math.pow(gamma, Math.floor(step / stepSize)) };
}

/**
 * Reduce-on-plateau: multiply the rate by `factor` when the monitored metric has not improved by more than
 * `threshold` (relative) for `patience` epochs; never below `minLr`.
 */
export function reduceOnPlateau(base: number, opts: { factor?: number; patience?: number; threshold?: number; minLr?: number } = {}): Schedule {
  const factor = opts.factor ?? 0.1;
  const patience = opts.patience ?? 2;
  const threshold = opts.threshold ?? 1e-4;
  const minLr = opts.minLr ?? 0;
  let cur = base;
  let best = Infinity;
  let bad = 0;
  return {
    lr: () => cur,
    onEpochEnd(metric) {
      if (metric < best * (1 - threshold)) {
        best = metric;
        bad = 0;
      } else if (++bad > patience) {
        cur = Math.max(minLr, cur * factor);
        bad = 0;
      }
    },
    getState: () => ({ cur, best: Number.isFinite(best) ? best : 1e308, bad }),
    setState(s) {
      cur = s.cur;
      best = s.best >= 1e308 ? Infinity : s.best;
      bad = s.bad;
    },
  };
}

export type ScheduleName = 'constant' | 'cosine' | 'step' | 'plateau';

/** Factory by name for configs. */
export function createSchedule(name: ScheduleName, base: number, totalSteps: number, opts: { warmupSteps?: number; minLr?: number; stepSize?: number; gamma?: number } = {}): Schedule {
  switch (name) {
    case 'constant':
      return opts.warmupSteps ? { lr: (s) => base * warmupFactor(s, opts.warmupSteps ?? 0) } : constant(base);
    case 'cosine':
      return warmupCosine(base, totalSteps, opts);
    case 'step':
      return stepDecay(base, opts.stepSize ?? Math.max(1, Math.floor(totalSteps / 3)), opts.gamma ?? 0.1, opts.warmupSteps ?? 0);
    case 'plateau':
      return reduceOnPlateau(base, { minLr: opts.minLr });
    default:
      throw new Error(`unknown schedule ${name as string}`);
  }
}
