/**
 * MicroBERT's batch mixing (Gessler & Zeldes, MRL 2022, §3.2): each pretraining batch comes from
 * exactly one dataset, in a fixed task cycle that sets the proportions (MX: MLM:POS = 8:1; MXP: MLM:POS:parse =
 * 8:1:1, the authors' code's cycle `mlm×4, pos, mlm×4, parse`); a dataset that runs out restarts, reshuffled.
 * As a `fit` hook its stream positions are named checkpoint state, so a resumed run draws the same batches.
 */
import type { Rng } from '../../engine/rng.js';
import type { FitHook } from '../../train/fit.js';
import { BatchStream, type BatchStreamState } from './batch.js';

export const VARIANTS = ['none', 'm', 'mx', 'mxp'] as const;
export type Variant = (typeof VARIANTS)[number];
export type Task = 'mlm' | 'pos' | 'parse';

/** The batch cycle of a variant (MicroBERT; MXP's cycle from lgessler/microbert): M = [mlm], MX = mlm×8 + pos, MXP = mlm×4, pos, mlm×4, parse. */
export function taskCycle(variant: Variant): Task[] {
  const m4: Task[] = ['mlm', 'mlm', 'mlm', 'mlm'];
  if (variant === 'm') return ['mlm'];
  if (variant === 'mx') return [...m4, ...m4, 'pos'];
  if (variant === 'mxp') return [...m4, 'pos', ...m4, 'parse'];
  return [];
}

/**
 * Draws step t's task and batch: MLM batches from the unlabeled pool, POS/parse batches from the labeled pool,
 * both streams shuffled by the run's RNG (shared with masking and dropout, in the order the step uses it).
 */
export class TaskMixer {
  private readonly mlm: BatchStream;
  private readonly ud: BatchStream;

  constructor(
    readonly cycle: Task[],
    sizes: { unlabeled: number; labeled: number },
    batchSize: number,
    rng: Rng,
  ) {
    if (!cycle.length) throw new Error('TaskMixer: empty task cycle');
    this.mlm = new BatchStream(sizes.unlabeled, batchSize, rng);
    this.ud = new BatchStream(sizes.labeled, batchSize, rng);
  }

  /** The task of 0-based step `step` and the indices of its batch in that task's pool. */
  next(step: number): { task: Task; indices: number[] } {
    const task = this.cycle[step % this.cycle.length];
    return { task, indices: (task === 'mlm' ? this.mlm : this.ud).next() };
  }

  /** As a `fit` hook: the two streams' positions as named checkpoint state. */
  hook(): FitHook {
    return {
      name: 'microbert-mixing',
      state: {
        get: () => ({ mlm: this.mlm.getState(), ud: this.ud.getState() }),
        set: (s) => {
          const st = s as { mlm: BatchStreamState; ud: BatchStreamState };
          this.mlm.setState(st.mlm);
          this.ud.setState(st.ud);
        },
      },
    };
  }
}
