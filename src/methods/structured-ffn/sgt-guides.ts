/**
 * The self-guided training loop (Wei et al., NeurIPS 2024, §3.2 "self-guided training"; official code
 * CLAIRE-Labo/StructuredFFN `BasicLinear` + `CosineTempDecay`): per optimizer step t the guided maps use α_t = ½(1 + cos(π·t/t_g)), each
 * map drawing from the run's RNG whether to use its dense guide W (α_t·W·x + (1−α_t)·S(x)) or to skip it (S(x)
 * exactly); at t = t_g the guides leave the model and the trainer, with their optimizer slots (the official code never deletes them, so they keep taking memory).
 *
 * Use it with `fit` as a hook (`hook()`), or by hand: `trainerParams` → `new Trainer`, `attach`, then
 * `beforeStep(step)` before each step and pass `context` to the model's training forward.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../engine/rng.js';
import type { FfnContext } from '../../models/ffn.js';
import type { FitHook } from '../../train/fit.js';
import type { Trainer } from '../../train/trainer.js';
import type { StructuredFfn } from './ffn.js';
import { sgtAlpha, type GuideDecay } from './sgt.js';

export interface SelfGuidedTrainingOptions {
  /** Guidance length t_g in optimizer steps (ρ·total); 0 = no guidance. */
  tG: number;
  decay?: GuideDecay;
  /** The paper's stochastic skip (`reduce_flop`, default true); false = the deterministic mixture on every step. */
  stochasticSkip?: boolean;
  /** Draws the skips; shared with anything else stochastic in the run (it is the run's RNG). */
  rng: Rng;
}

export class SelfGuidedTraining {
  readonly tG: number;
  readonly decay: GuideDecay;
  /** The training forward's FFN context: α for the current step, the skip RNG, and the dense MACs the guides used. */
  readonly context: FfnContext & { stats: { extraMacsPerToken: number } };
  private trainer: Trainer | null = null;
  private base: tf.Variable[] | null = null;
  private dropped: boolean;

  constructor(
    readonly ffns: StructuredFfn[],
    opts: SelfGuidedTrainingOptions,
  ) {
    this.tG = opts.tG;
    this.decay = opts.decay ?? 'cosine';
    this.context = { training: true, rng: opts.rng, guideSkip: opts.stochasticSkip ?? true, guideAlpha: 0, stats: { extraMacsPerToken: 0 } };
    this.dropped = this.guideVariables().length === 0;
  }

  /** The guides' variables (empty once dropped). */
  guideVariables(): tf.Variable[] {
    return this.ffns.flatMap((f) => f.guideVariables());
  }

  get guidesDropped(): boolean {
    return this.dropped;
  }

  /**
   * The trainer's parameter order for a model's variables `all`: the others first, guides last, so dropping the
   * guides leaves every other optimizer slot where it was.
   */
  trainerParams(all: tf.Variable[]): tf.Variable[] {
    const guides = this.guideVariables();
    const g = new Set(guides);
    this.base = all.filter((v) => !g.has(v));
    return [...this.base, ...guides];
  }

  /** The trainer whose parameter set loses the guides at t_g (built over `trainerParams`). */
  attach(trainer: Trainer): this {
    this.trainer = trainer;
    return this;
  }

  /** α used by a forward after `step` optimizer steps (0 from t_g on, and once the guides are gone). */
  alphaAt(step: number): number {
    return this.dropped ? 0 : sgtAlpha(step, this.tG, this.decay);
  }

  /** Before optimizer step `step` (0-based): at t_g drop the guides; set α_step and reset the guide-MAC counter. */
  beforeStep(step: number): void {
    if (step >= this.tG) this.dropGuides();
    this.context.guideAlpha = this.alphaAt(step);
    this.context.stats.extraMacsPerToken = 0;
  }

  /** Removes the guides from the model and, when attached, from the trainer (their optimizer slots are freed). */
  dropGuides(): void {
    if (this.dropped) return;
    for (const f of this.ffns) f.dropGuides();
    if (this.trainer) {
      if (!this.base) throw new Error('SelfGuidedTraining: build the trainer over trainerParams() before attach()');
      this.trainer.setParams(this.base);
    }
    this.dropped = true;
  }

  /** As a `fit` hook: `beforeStep`, and on resume past t_g the guides are dropped before the checkpoint loads. */
  hook(): FitHook {
    return {
      name: 'sgt',
      beforeStep: (step) => this.beforeStep(step),
      resume: (step) => {
        if (step >= this.tG) this.dropGuides();
      },
    };
  }
}
