/**
 * Annealing and the multi-phase training schedule of Yaeger, Lyon & Webb, NIPS 9 (1996), Fig. 5: four phases over
 * 130 epochs in which the learning rate falls 1.0 → 0.001 while the correct-train probability (error emphasis)
 * rises 0.1 → 1.0 and the negative-train probability 0.05 → 0.3.
 */
import type { Schedule } from '../../train/schedules.js';

export interface NewtonPhase {
  epochs: number;
  lrStart: number;
  lrEnd: number;
  correctTrainProb: number;
  negativeTrainProb: number;
}

export const NEWTON_PHASES: readonly NewtonPhase[] = [
  { epochs: 25, lrStart: 1.0, lrEnd: 0.5, correctTrainProb: 0.1, negativeTrainProb: 0.05 },
  { epochs: 25, lrStart: 0.5, lrEnd: 0.1, correctTrainProb: 0.25, negativeTrainProb: 0.1 },
  { epochs: 50, lrStart: 0.1, lrEnd: 0.01, correctTrainProb: 0.5, negativeTrainProb: 0.18 },
  { epochs: 30, lrStart: 0.01, lrEnd: 0.001, correctTrainProb: 1.0, negativeTrainProb: 0.3 },
];

export interface PhaseSettings {
  phase: number;
  /** Learning rate for this epoch (geometric interpolation inside the phase), before any `lrScale`. */
  lr: number;
  correctTrainProb: number;
  negativeTrainProb: number;
}

/**
 * Settings for `epoch` (0-based) of a run of `totalEpochs`, with the phase lengths scaled proportionally so that the
 * phases span the whole run.
 */
export function phaseAt(epoch: number, totalEpochs: number, phases: readonly NewtonPhase[] = NEWTON_PHASES): PhaseSettings {
  if (!(totalEpochs >= 1) || epoch < 0 || epoch >= totalEpochs) throw new Error(`phaseAt: epoch ${epoch} outside [0, ${totalEpochs})`);
  const total = phases.reduce((s, p) => s + p.epochs, 0);
  const pos = ((epoch + 0.5) / totalEpochs) * total; // phase-epoch coordinate of this epoch's middle
  let start = 0;
  for (let i = 0; i < phases.length; i++) {
    const p = phases[i];
    if (pos < start + p.epochs || i === phases.length - 1) {
      const t = Math.min(1, Math.max(0, (pos - start) / p.epochs));
      return { phase: i, lr: p.lrStart * Math.pow(p.lrEnd / p.lrStart, t), correctTrainProb: p.correctTrainProb, negativeTrainProb: p.negativeTrainProb };
    }
    start += p.epochs;
  }
  throw new Error('unreachable');
}

/**
 * The annealing rule: the learning-rate multiplier falls by `factor` (0.9) after any epoch whose total training
 * squared error rose over the previous epoch's, down to `minScale`.
 */
export class ErrorRiseAnnealer {
  private prev = Infinity;
  scale = 1;
  constructor(readonly factor = 0.9, readonly minScale = 1e-3) {}

  /** Records one epoch's total training error; returns the multiplier for the next epoch. */
  update(epochError: number): number {
    if (epochError > this.prev) this.scale = Math.max(this.minScale, this.scale * this.factor);
    this.prev = epochError;
    return this.scale;
  }

  /** Checkpoint state (JSON numbers: `hasPrev` stands for the initial prev = ∞, which JSON cannot hold). */
  getState(): { scale: number; prev: number; hasPrev: number } {
    return { scale: this.scale, prev: Number.isFinite(this.prev) ? this.prev : 0, hasPrev: Number.isFinite(this.prev) ? 1 : 0 };
  }

  setState(s: { scale: number; prev: number; hasPrev: number }): void {
    this.scale = s.scale;
    this.prev = s.hasPrev ? s.prev : Infinity;
  }
}

/**
 * The Newton learning rate as a `Schedule` for efftrain's `Trainer` (epochs of `stepsPerEpoch` optimizer steps):
 * `anneal` — epoch e's phase rate (`phaseAt`) × `lrScale` × the error-rise annealer's multiplier, which
 * `onEpochEnd` updates with the epoch's total training error; `fixed` — `fixedLr` × `lrScale` throughout.
 * The annealer is checkpoint state (`getState`/`setState`).
 */
export class NewtonSchedule implements Schedule {
  readonly annealer = new ErrorRiseAnnealer();

  constructor(
    readonly o: { mode: 'anneal' | 'fixed'; epochs: number; stepsPerEpoch: number; lrScale: number; fixedLr: number; phases?: readonly NewtonPhase[] },
  ) {}

  /** The epoch (0-based) of optimizer step `step`; steps past the end count as the last epoch. */
  epochOf(step: number): number {
    return Math.min(this.o.epochs - 1, Math.floor(step / this.o.stepsPerEpoch));
  }

  /** The phase settings of the epoch of `step`. */
  phase(step: number): PhaseSettings {
    return phaseAt(this.epochOf(step), this.o.epochs, this.o.phases ?? NEWTON_PHASES);
  }

  lr(step: number): number {
    return this.o.mode === 'anneal' ? this.phase(step).lr * this.o.lrScale * this.annealer.scale : this.o.fixedLr * this.o.lrScale;
  }

  /** After each epoch, with its total training error (Σ over patterns): the annealing rule. */
  onEpochEnd(totalError: number): void {
    if (this.o.mode === 'anneal') this.annealer.update(totalError);
  }

  getState(): Record<string, number> {
    return this.annealer.getState();
  }

  setState(s: Record<string, number>): void {
    this.annealer.setState(s as { scale: number; prev: number; hasPrev: number });
  }
}
