/**
 * Training a model with MoE FFN layers through `fit` (step mode): the competition schedule of CompeteSMoE v2
 * (Nguyen et al. 2025, arXiv 2505.13380; official code Fsoft-AIC/CompeteSMoE — which layer competes on which step), the training forward's
 * context (step, run RNG, the extra multiply-adds actually spent), the training-side counters (FLOPs, capacity
 * drops, competed/routed forwards) and the routing diagnostics over evaluations, with the routing-fluctuation
 * state (StableMoE, Dai et al. 2022: the previous evaluation's top-1 choices). All of it is named checkpoint
 * state of one `fit` hook, so a resumed run reports the same numbers as an uninterrupted one.
 *
 * Use: `const moe = new MoeTraining(model.blocks.map(b => b.ffn), {...})`; pass `moe.context` to the model's
 * training forward and `moe.hook()` to `fit`; read `moe.summary()` at the end.
 */
import type { Rng } from '../../engine/rng.js';
import type { Ffn, FfnContext } from '../../models/ffn.js';
import { mean } from '../../stats/index.js';
import type { FitHook } from '../../train/fit.js';
import type { CompetitionSchedule } from './competition.js';
import { moeDiagnostics, moeLayers } from './diagnostics.js';
import { attachCompetitionSchedule, type MoeFfn } from './moe-ffn.js';

export interface MoeTrainingOptions {
  /** Optimizer steps of the run (the competition schedule spans them). */
  steps: number;
  /** Seed of the competition schedule (the same for every run with that seed). */
  scheduleSeed: number;
  /** The run's RNG, handed to training forwards (stochastic routing without a schedule). */
  rng: Rng;
  /** Tokens per optimizer step (batch × context), for the FLOP count. */
  tokensPerStep: number;
  /** Nominal multiply-adds per token of the whole model (`model.macsPerToken()`). */
  macsPerToken: number;
  /**
   * An evaluation forward over fixed held-out tokens (e.g. `() => tf.dispose(model.logits(ids))`): when given,
   * every evaluation adds the routing diagnostics (`moeDiagnostics`) and the routing fluctuation since the
   * previous evaluation.
   */
  diagnosticsForward?: () => void;
}

/** The hook's checkpoint state (JSON). */
interface MoeTrainingState {
  flops: number;
  dropped: number;
  routedChoices: number;
  counts: { competed: number; routed: number }[];
  prevTop1: number[][] | null;
  fluctuation: number[];
  lastDiagnostics: Record<string, number>;
}

export class MoeTraining {
  readonly layers: MoeFfn[];
  /** The competition schedule, or null when no layer has a competing router. */
  readonly schedule: CompetitionSchedule | null;
  /** The training forward's FFN context: the current step, the run's RNG, and the extra MACs spent this step. */
  readonly context: FfnContext & { stats: { extraMacsPerToken: number } };
  /** Multiply-adds actually spent by training so far, ×6 for forward + backward (capacity padding and competition included). */
  flops = 0;
  /** Routed top-k choices dropped by expert capacity, and all routed choices (non-competing training forwards). */
  dropped = 0;
  routedChoices = 0;
  private prevTop1: Int32Array[] | null = null;
  private readonly fluctuation: number[] = [];
  private lastDiagnostics: Record<string, number> = {};

  constructor(
    ffns: Ffn[],
    readonly opts: MoeTrainingOptions,
  ) {
    this.layers = moeLayers(ffns);
    this.schedule = attachCompetitionSchedule(ffns, opts.steps, opts.scheduleSeed);
    this.context = { training: true, rng: opts.rng, step: 0, stats: { extraMacsPerToken: 0 } };
  }

  /** Before optimizer step `step` (0-based): the forward's step (for the schedule) and a fresh MAC counter. */
  beforeStep(step: number): void {
    this.context.step = step;
    this.context.stats.extraMacsPerToken = 0;
  }

  /** After an optimizer step: count capacity drops of routed layers and the step's FLOPs. */
  afterStep(): void {
    for (const l of this.layers) if (!l.last.competed) (this.dropped += l.last.dropped), (this.routedChoices += this.opts.tokensPerStep * l.topK);
    this.flops += 6 * this.opts.tokensPerStep * (this.opts.macsPerToken + this.context.stats.extraMacsPerToken);
  }

  /**
   * Routing diagnostics now (means over MoE layers: load_cv, router_entropy, router_agreement,
   * expert_similarity, and routing_fluctuation from the second call on); empty without MoE layers or a forward.
   */
  diagnose(): Record<string, number> {
    if (!this.layers.length || !this.opts.diagnosticsForward) return {};
    const d = moeDiagnostics(this.layers, this.opts.diagnosticsForward, this.prevTop1);
    this.prevTop1 = d.top1;
    if (d.mean.routing_fluctuation !== undefined) this.fluctuation.push(d.mean.routing_fluctuation);
    this.lastDiagnostics = d.mean;
    return d.mean;
  }

  /**
   * The run's MoE metrics (empty without MoE layers): the last evaluation's diagnostics, the mean routing
   * fluctuation over evaluations, the share of competing training forwards, the capacity drop rate and the
   * number of scheduled competing layer-steps.
   */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    if (!this.layers.length) return out;
    for (const k of ['router_agreement', 'load_cv', 'expert_similarity', 'router_entropy'] as const) out[k] = this.lastDiagnostics[k];
    out.routing_fluctuation = this.fluctuation.length ? mean(this.fluctuation) : NaN;
    const competed = this.layers.reduce((s, l) => s + l.counts.competed, 0);
    out.compete_fraction = competed / Math.max(1, this.layers.reduce((s, l) => s + l.counts.competed + l.counts.routed, 0));
    out.drop_rate = this.routedChoices ? this.dropped / this.routedChoices : 0;
    if (this.schedule) out.scheduled_competitions = this.schedule.count();
    return out;
  }

  getState(): MoeTrainingState {
    return {
      flops: this.flops,
      dropped: this.dropped,
      routedChoices: this.routedChoices,
      counts: this.layers.map((l) => ({ ...l.counts })),
      prevTop1: this.prevTop1 ? this.prevTop1.map((a) => Array.from(a)) : null,
      fluctuation: [...this.fluctuation],
      lastDiagnostics: { ...this.lastDiagnostics },
    };
  }

  setState(s: MoeTrainingState): void {
    if (s.counts.length !== this.layers.length) throw new Error(`MoE training state has ${s.counts.length} layers, the model ${this.layers.length}`);
    this.flops = s.flops;
    this.dropped = s.dropped;
    this.routedChoices = s.routedChoices;
    this.layers.forEach((l, i) => (l.counts = { ...s.counts[i] }));
    this.prevTop1 = s.prevTop1 ? s.prevTop1.map((a) => Int32Array.from(a)) : null;
    this.fluctuation.splice(0, this.fluctuation.length, ...s.fluctuation);
    this.lastDiagnostics = { ...s.lastDiagnostics };
  }

  /** As a `fit` hook (step mode): `beforeStep`, the counters after each step, diagnostics at evaluations, named state. */
  hook(): FitHook {
    return {
      name: 'moe',
      beforeStep: (step) => this.beforeStep(step),
      step: () => this.afterStep(),
      evaluate: () => this.diagnose(),
      state: { get: () => this.getState(), set: (s) => this.setState(s as MoeTrainingState) },
    };
  }
}
