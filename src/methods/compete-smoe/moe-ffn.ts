/**
 * The mixture-of-experts FFN kind `moe` for src/models/transformer.ts (Shazeer et al. 2017; Switch/GShard
 * routing; CompeteSMoE, Pham et al. 2024, for the `compete` router).
 *
 * Routed forward (every step of non-competing routers, inference of all of them):
 *   p = softmax(router(x)); each token's top-k experts; expert capacity C (training only; evaluation is
 *   dropless); the tokens of each expert are *gathered* into an [E, C, d] buffer, the experts run as one
 *   batched matmul, and the outputs are gathered back and mixed with the renormalised top-k probabilities.
 *   Aux loss: balanceCoef·Switch + zLossCoef·z-loss (when the router is trainable).
 * Competition forward (a `compete` router on its scheduled steps): all experts on all tokens, routing by
 *   affinity, aux loss routerLossCoef·L_R + diversityCoef·L_div + balanceCoef·L_bal (./competition.ts).
 *
 * `macsPerToken()` counts the nominal routed cost (router + k experts); what a call actually spends beyond
 * that (capacity padding, or the E − k extra experts of a competition) goes to `ctx.stats`.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../engine/rng.js';
import { registerFfn, type Ffn, type FfnContext, type FfnDims, type FfnSpec, type NamedVariable } from '../../models/ffn.js';
import { affinity, competitionBalanceLoss, competitionTarget, competitionWeights, competitionWinners, CompetitionSchedule, DEFAULT_COMPETITION, diversityLoss, routerMatchLoss } from './competition.js';
import { ExpertBank, type ExpertActivation } from './experts.js';
import { gatherRows } from './gather.js';
import { createRouter } from './routers/registry.js';
import type { Router, RouterSpec } from './routers/types.js';
import { dispatchPlan, routerZLoss, switchBalanceLoss, topkGates, topkIndices } from './routing.js';
import './routers/topk.js';
import './routers/xmoe.js';
import './routers/smoe-dropout.js';
import './routers/compete.js';

export interface MoeFfnSpec extends FfnSpec {
  kind: 'moe';
  /** Number of experts E. */
  experts: number;
  /** Experts per token k. */
  topK: number;
  /** Hidden width of each expert (default: the model's dFf). */
  expertHidden?: number;
  /** Capacity factor of training forwards (≤ 0: dropless). Default 1.25. */
  capacityFactor?: number;
  /** Smallest expert capacity. Default 1. */
  minCapacity?: number;
  activation?: ExpertActivation;
  /** Weight of the Switch balance loss on routed training steps. Default 0.01. */
  balanceCoef?: number;
  /** Weight of the router z-loss on routed training steps. Default 0.001. */
  zLossCoef?: number;
  router: RouterSpec;
}

/** What one forward did (read by diagnostics and the experiment). */
export interface MoeCallInfo {
  competed: boolean;
  capacity: number;
  dropped: number;
}

export class MoeFfn implements Ffn {
  readonly kind = 'moe';
  readonly router: Router;
  readonly bank: ExpertBank;
  readonly experts: number;
  readonly topK: number;
  readonly hidden: number;
  readonly capacityFactor: number;
  readonly minCapacity: number;
  readonly balanceCoef: number;
  readonly zLossCoef: number;
  /** Competition schedule and this layer's index in it (see `attachCompetitionSchedule`). */
  schedule: { table: CompetitionSchedule; layer: number } | null = null;
  /** Policy of non-training forwards: the router (inference) or the competition (a diagnostic). */
  evalPolicy: 'router' | 'compete' = 'router';
  /** When non-null, every forward appends a kept copy of its input here (for diagnostics). */
  capture: tf.Tensor2D[] | null = null;
  /** The last forward's routing facts. */
  last: MoeCallInfo = { competed: false, capacity: 0, dropped: 0 };
  /** Training forwards that competed / routed. */
  counts = { competed: 0, routed: 0 };

  constructor(
    spec: MoeFfnSpec,
    readonly dModel: number,
    readonly dFf: number,
    seed: number,
    initStd: number,
  ) {
    const p = moeSpecProblem(spec);
    if (p) throw new Error(`moe FFN: ${p}`);
    this.experts = spec.experts;
    this.topK = spec.topK;
    this.hidden = spec.expertHidden ?? dFf;
    this.capacityFactor = spec.capacityFactor ?? 1.25;
    this.minCapacity = spec.minCapacity ?? 1;
    this.balanceCoef = spec.balanceCoef ?? 0.01;
    this.zLossCoef = spec.zLossCoef ?? 0.001;
    const rng = new Rng(seed);
    const routerSeed = rng.nextUint32() >>> 1;
    this.bank = new ExpertBank(this.experts, dModel, this.hidden, spec.activation ?? 'gelu', rng, initStd);
    this.router = createRouter(spec.router, { dModel, experts: this.experts }, routerSeed, initStd);
  }

  apply(x: tf.Tensor2D, ctx: FfnContext): tf.Tensor2D {
    if (this.capture) this.capture.push(tf.keep(x.clone()));
    const compete = ctx.training ? this.competesNow(ctx) : this.evalPolicy === 'compete';
    if (ctx.training) this.counts[compete ? 'competed' : 'routed']++;
    return compete ? this.competitionForward(x, ctx) : this.routedForward(x, ctx);
  }

  private competesNow(ctx: FfnContext): boolean {
    const c = this.router.competition;
    if (!c || c.prob <= 0) return false;
    if (this.schedule) return this.schedule.table.competes(ctx.step ?? -1, this.schedule.layer);
    if (c.prob >= 1) return true;
    return ctx.rng !== null && ctx.rng.next() < c.prob;
  }

  /** Top-k routing through the router with gathered dispatch (see the module comment). */
  routedForward(x: tf.Tensor2D, ctx: FfnContext): tf.Tensor2D {
    return this.withAux(ctx, () => {
      const [n, d] = x.shape;
      const { experts: E, topK: k } = this;
      const logits = this.router.logits(x);
      const probs = tf.softmax(logits) as tf.Tensor2D;
      const choices = topkIndices(probs.dataSync(), n, E, k);
      const plan = dispatchPlan(choices, n, E, k, ctx.training ? this.capacityFactor : 0, this.minCapacity);
      const C = plan.capacity;
      const gates = topkGates(probs, choices, k);
      const xe = tf.reshape(gatherRows(x, plan.slotToken), [E, C, d]) as tf.Tensor3D;
      const ye = tf.reshape(this.bank.forward(xe), [E * C, d]) as tf.Tensor2D;
      const yk = tf.reshape(gatherRows(ye, plan.choiceSlot), [n, k, d]);
      const y = tf.sum(tf.mul(yk, tf.reshape(gates, [n, k, 1])), 1) as tf.Tensor2D;
      const terms: tf.Scalar[] = [];
      if (ctx.training && ctx.addAuxLoss && this.router.trainable) {
        if (this.balanceCoef > 0) terms.push(tf.mul(this.balanceCoef, switchBalanceLoss(probs, choices, k)));
        if (this.zLossCoef > 0) terms.push(tf.mul(this.zLossCoef, routerZLoss(logits)));
      }
      if (ctx.stats) ctx.stats.extraMacsPerToken += ((E * C - k * n) * this.bank.macsPerExpertToken()) / n;
      this.last = { competed: false, capacity: C, dropped: plan.dropped };
      return { y, aux: terms.length ? (tf.addN(terms) as tf.Scalar) : null };
    });
  }

  /** CompeteSMoE's competition forward (./competition.ts). */
  competitionForward(x: tf.Tensor2D, ctx: FfnContext): tf.Tensor2D {
    return this.withAux(ctx, () => {
      const [n] = x.shape;
      const { experts: E, topK: k } = this;
      const c = this.router.competition ?? DEFAULT_COMPETITION;
      const ys = this.bank.forwardAll(x);
      const s = affinity(ys, c.affinity);
      const sv = s.dataSync();
      const winners = competitionWinners(sv, n, E, k);
      const w = competitionWeights(s, winners, k, c.affinity);
      const y = tf.sum(tf.mul(ys, tf.expandDims(tf.transpose(w), 2)), 0) as tf.Tensor2D;
      const terms: tf.Scalar[] = [];
      if (ctx.training && ctx.addAuxLoss) {
        if (c.routerLossCoef > 0 && this.router.trainable) {
          const probs = tf.softmax(this.router.logits(x)) as tf.Tensor2D;
          terms.push(tf.mul(c.routerLossCoef, routerMatchLoss(probs, competitionTarget(sv, n, E))));
        }
        if (c.diversityCoef > 0) terms.push(tf.mul(c.diversityCoef, diversityLoss(ys, winners, k)));
        if (c.balanceCoef > 0) terms.push(tf.mul(c.balanceCoef, competitionBalanceLoss(s, winners, k)));
      }
      if (ctx.stats) ctx.stats.extraMacsPerToken += (E - k) * this.bank.macsPerExpertToken();
      this.last = { competed: true, capacity: n, dropped: 0 };
      return { y, aux: terms.length ? (tf.addN(terms) as tf.Scalar) : null };
    });
  }

  /** Runs `f` in a tidy and hands its auxiliary loss (kept alive by the caller's scope) to ctx.addAuxLoss. */
  private withAux(ctx: FfnContext, f: () => { y: tf.Tensor2D; aux: tf.Scalar | null }): tf.Tensor2D {
    const [y, aux] = tf.tidy(() => {
      const r = f();
      return r.aux ? [r.y, r.aux] : [r.y];
    }) as [tf.Tensor2D, tf.Scalar?];
    if (aux) ctx.addAuxLoss!(aux);
    return y;
  }

  variables(): NamedVariable[] {
    return [...this.router.variables(), ...this.bank.variables()];
  }

  /** All linear-map weights: E experts and the router. */
  weightCount(): number {
    return this.experts * this.bank.macsPerExpertToken() + this.router.macsPerToken();
  }

  /** Weights a token uses: k experts and the router. */
  activeWeightCount(): number {
    return this.macsPerToken();
  }

  macsPerToken(): number {
    return this.topK * this.bank.macsPerExpertToken() + this.router.macsPerToken();
  }

  spec(): MoeFfnSpec {
    return {
      kind: 'moe',
      experts: this.experts,
      topK: this.topK,
      expertHidden: this.hidden,
      capacityFactor: this.capacityFactor,
      minCapacity: this.minCapacity,
      activation: this.bank.activation,
      balanceCoef: this.balanceCoef,
      zLossCoef: this.zLossCoef,
      router: this.router.spec(),
    };
  }

  dispose(): void {
    this.router.dispose();
    this.bank.dispose();
    if (this.capture) tf.dispose(this.capture);
    this.capture = null;
  }
}

/** A description of what is wrong with a MoE spec, or null. */
export function moeSpecProblem(spec: Partial<MoeFfnSpec>): string | null {
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;
  if (!posInt(spec.experts)) return `experts must be a positive integer, got ${spec.experts}`;
  if (!posInt(spec.topK) || spec.topK! > spec.experts!) return `topK must be an integer in [1, experts=${spec.experts}], got ${spec.topK}`;
  if (spec.expertHidden !== undefined && !posInt(spec.expertHidden)) return `expertHidden must be a positive integer, got ${spec.expertHidden}`;
  if (spec.capacityFactor !== undefined && !Number.isFinite(spec.capacityFactor)) return `capacityFactor must be a number, got ${spec.capacityFactor}`;
  if (spec.minCapacity !== undefined && !posInt(spec.minCapacity)) return `minCapacity must be a positive integer, got ${spec.minCapacity}`;
  if (spec.activation !== undefined && spec.activation !== 'gelu' && spec.activation !== 'relu') return `activation must be "gelu" or "relu", got ${String(spec.activation)}`;
  for (const k of ['balanceCoef', 'zLossCoef'] as const) if (spec[k] !== undefined && !((spec[k] as number) >= 0)) return `${k} must be ≥ 0, got ${spec[k]}`;
  if (!spec.router || typeof spec.router.type !== 'string') return 'router must be an object with a "type"';
  return null;
}

/**
 * Gives every MoE layer with a competing router among `ffns` its row of a competition schedule
 * (layer index = its position among those layers). Returns the schedule, or null when no layer competes.
 * Training forwards must then carry `ctx.step`.
 */
export function attachCompetitionSchedule(ffns: Ffn[], steps: number, seed: number): CompetitionSchedule | null {
  const competing = ffns.filter((f): f is MoeFfn => f instanceof MoeFfn && f.router.competition !== null);
  if (!competing.length) return null;
  const c = competing[0].router.competition!;
  const table = new CompetitionSchedule(competing.length, steps, { prob: c.prob, warmup: c.warmup, maxLayersPerStep: c.maxLayersPerStep, seed });
  competing.forEach((f, layer) => (f.schedule = { table, layer }));
  return table;
}

registerFfn('moe', (spec: FfnSpec, dims: FfnDims, seed: number, initStd: number) => new MoeFfn(spec as MoeFfnSpec, dims.dModel, dims.dFf, seed, initStd));
