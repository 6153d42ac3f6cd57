/**
 * Keeps the weights with the best validation score seen so far (MicroBERT keeps the pretraining checkpoint with
 * the best validation MLM perplexity, and the probe's weights with the best dev LAS; Gessler & Zeldes 2022 §4–5).
 * The copy lives in variables that `fit` checkpoints (`extraVars`) and the score in the hook's named state, so a
 * resumed run restores the same weights at the end.
 */
import * as tf from '@tensorflow/tfjs';
import type { FitHook } from '../../train/fit.js';

export interface BestWeightsState {
  score: number | null;
  step: number;
  /** Extra numbers recorded with the best score (e.g. dev UAS at the best LAS). */
  info: Record<string, number>;
}

export class BestWeights {
  /** Copies of `vars` at the best score (valid once `state.score` is set). */
  readonly copies: tf.Variable[];
  state: BestWeightsState = { score: null, step: 0, info: {} };

  constructor(
    readonly name: string,
    private readonly vars: tf.Variable[],
    private readonly better: (a: number, b: number) => boolean,
  ) {
    this.copies = vars.map((v) => tf.variable(v, false));
  }

  /** Records `score` after `step` steps; copies the weights when it beats the best so far (a non-finite score never does). */
  offer(score: number, step: number, info: Record<string, number> = {}): boolean {
    if (!Number.isFinite(score)) return false;
    if (this.state.score !== null && !this.better(score, this.state.score)) return false;
    this.state = { score, step, info };
    this.vars.forEach((v, i) => this.copies[i].assign(v));
    return true;
  }

  /** Writes the best weights back into the variables (no-op when nothing was offered). */
  restore(): void {
    if (this.state.score !== null) this.vars.forEach((v, i) => v.assign(this.copies[i]));
  }

  /** As a `fit` hook: the score as named checkpoint state (pass `copies` as fit's `extraVars`). */
  hook(): FitHook {
    return {
      name: this.name,
      state: {
        get: () => this.state,
        set: (s) => void (this.state = s as BestWeightsState),
      },
    };
  }

  dispose(): void {
    tf.dispose(this.copies);
  }
}
