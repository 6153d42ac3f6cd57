/**
 * MicroBERT's pretraining learning rate: ReduceLROnPlateau on the validation MLM perplexity (halve after
 * `patience` evaluations without gain, floor `minLr`; Gessler & Zeldes 2022 §4), after a short
 * linear warm-up (added here for short CPU runs; the paper has none). A `Schedule` with state, so checkpoints carry it.
 */
import type { Schedule } from '../../train/schedules.js';

export interface PlateauSchedule extends Schedule {
  /** Reports a validation metric (lower is better) measured after `done` steps; may halve the rate. */
  observe(metric: number, done: number): void;
}

export function warmupPlateau(base: number, opts: { warmupSteps: number; patience: number; minLr: number }): PlateauSchedule {
  let cur = base;
  let best = Infinity;
  let bad = 0;
  return {
    // Step s = step + 1 (1-based) gets cur·s/warmup during warm-up (the plateau never acts before it ends).
    lr: (step) => (step + 1 <= opts.warmupSteps ? (cur * (step + 1)) / opts.warmupSteps : cur),
    observe(metric, done) {
      if (metric < best) {
        best = metric;
        bad = 0;
      } else if (done > opts.warmupSteps && ++bad >= opts.patience) {
        cur = Math.max(opts.minLr, cur / 2);
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
