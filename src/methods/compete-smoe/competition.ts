/**
 * CompeteSMoE's competition (Pham et al. 2024, arXiv 2402.02526; Nguyen et al. 2025, arXiv 2505.13380;
 * official v2 code Fsoft-AIC/CompeteSMoE `moe_model/model/moe/competesmoe.py`): on scheduled training steps every expert runs on every token,
 * each token goes to the k experts with the highest neural response (affinity), and the router is trained to
 * predict the competition's outcome.
 *
 * The formulas, for expert outputs y_i = g_i(x), i = 1..E:
 * - affinity s_i = mean_d softplus(y_i) (v2, `softplus`) or ‖y_i‖₂ (v1, `norm`);
 * - winners K = top-k of s; output ŷ = Σ_{i∈K} w_i·y_i with w_i = s_i / Σ_{j∈K} s_j (softplus) or
 *   softmax over the winners' s (norm);
 * - router loss L_R = mean_{tokens, experts} (p_i − q_i)², p = softmax(router logits), q = softmax(s)
 *   **detached** (the 2024 code let this gradient reach the experts, pitfall 5);
 * - diversity L_div = mean over tokens and winner pairs i ≠ j of cos(y_i, y_j) (v2's code divides by k²
 *   instead of k(k−1), a constant factor (k−1)/k);
 * - balance on the competition: the Switch loss with P from softmax(s) and f from the winners.
 *
 * Gradients on a competition step (as in the v2 code): the layer output reaches only the k winners (through
 * their outputs and through w); L_div reaches the winners; the balance term reaches every expert through
 * softmax(s); L_R reaches only the router.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../engine/rng.js';
import { switchBalanceLoss, topkIndices } from './routing.js';

export type AffinityKind = 'softplus' | 'norm';

/** How and how often a router competes (defaults of the official v2 code, Fsoft-AIC/CompeteSMoE). */
export interface CompetitionSettings {
  /** Per-layer probability that a training step competes (after warm-up). */
  prob: number;
  /** Fraction of the steps at the start without competition. */
  warmup: number;
  /** Cap on MoE layers competing in one step (v2 `max_compete_in_iter`). */
  maxLayersPerStep: number;
  affinity: AffinityKind;
  routerLossCoef: number;
  diversityCoef: number;
  balanceCoef: number;
}

export const DEFAULT_COMPETITION: CompetitionSettings = {
  prob: 0.05,
  warmup: 0.05,
  maxLayersPerStep: 3,
  affinity: 'softplus',
  routerLossCoef: 0.01,
  diversityCoef: 0.01,
  balanceCoef: 0.01,
};

/** Affinities s [n, e] from stacked expert outputs y [e, n, d]. */
export function affinity(y: tf.Tensor3D, kind: AffinityKind): tf.Tensor2D {
  return tf.tidy(() => {
    const s = kind === 'softplus' ? tf.mean(tf.softplus(y), 2) : tf.sqrt(tf.add(tf.sum(tf.square(y), 2), 1e-12));
    return tf.transpose(s) as tf.Tensor2D;
  });
}

/** Winner mask [n, e] (1 on each token's k winners) as a constant. */
export function winnerMask(winners: Int32Array, n: number, e: number, k: number): tf.Tensor2D {
  const v = new Float32Array(n * e);
  for (let t = 0; t < n; t++) for (let j = 0; j < k; j++) v[t * e + winners[t * k + j]] = 1;
  return tf.tensor2d(v, [n, e]);
}

/** Combine weights [n, e] of the competition, zero off the winners (see the module comment). */
export function competitionWeights(s: tf.Tensor2D, winners: Int32Array, k: number, kind: AffinityKind): tf.Tensor2D {
  return tf.tidy(() => {
    const [n, e] = s.shape;
    const m = winnerMask(winners, n, e, k);
    if (kind === 'softplus') {
      const ms = tf.mul(s, m);
      return tf.div(ms, tf.sum(ms, 1, true)) as tf.Tensor2D;
    }
    // softmax restricted to the winners: exp(s − max)·m / Σ
    const ex = tf.mul(tf.exp(tf.sub(s, tf.max(s, 1, true))), m);
    return tf.div(ex, tf.sum(ex, 1, true)) as tf.Tensor2D;
  });
}

/** The router's target q = softmax(s) per token, computed from values: a constant, hence detached. */
export function competitionTarget(s: ArrayLike<number>, n: number, e: number): Float32Array {
  const q = new Float32Array(n * e);
  for (let t = 0; t < n; t++) {
    let mx = -Infinity;
    for (let i = 0; i < e; i++) mx = Math.max(mx, s[t * e + i]);
    let z = 0;
    for (let i = 0; i < e; i++) z += q[t * e + i] = Math.exp(s[t * e + i] - mx);
    for (let i = 0; i < e; i++) q[t * e + i] /= z;
  }
  return q;
}

/** L_R = mean (p − q)² over tokens × experts, q a detached target. */
export function routerMatchLoss(probs: tf.Tensor2D, target: Float32Array): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.square(tf.sub(probs, tf.tensor2d(target, probs.shape)))) as tf.Scalar);
}

/** Rows of y [e, n, d] scaled to unit L2 norm along d (zero rows stay zero). */
function unitRows(y: tf.Tensor3D): tf.Tensor3D {
  return tf.div(y, tf.sqrt(tf.add(tf.sum(tf.square(y), 2, true), 1e-12))) as tf.Tensor3D;
}

/**
 * Token-summed cosine Gram [e, e]: G[i, j] = Σ_t cos(y_i(t), y_j(t)) for stacked outputs y [e, n, d], as one
 * [e, n·d] × [n·d, e] product of the unit-normalised outputs.
 */
export function cosineGramSum(y: tf.Tensor3D): tf.Tensor2D {
  return tf.tidy(() => {
    const [e, n, d] = y.shape;
    const u = tf.reshape(unitRows(y), [e, n * d]) as tf.Tensor2D;
    return tf.matMul(u, u, false, true);
  });
}

/**
 * L_div: mean cosine similarity over tokens and pairs of each token's winners (0 for k = 1). Each winner
 * rank's output is picked with a one-hot mix over experts (E·n·d work per rank, no per-token products).
 */
export function diversityLoss(y: tf.Tensor3D, winners: Int32Array, k: number): tf.Scalar {
  const [e, n] = y.shape;
  if (k < 2) return tf.scalar(0);
  return tf.tidy(() => {
    const u = unitRows(y);
    const pick = (j: number) => {
      const m = new Float32Array(e * n);
      for (let t = 0; t < n; t++) m[winners[t * k + j] * n + t] = 1;
      return tf.sum(tf.mul(u, tf.tensor3d(m, [e, n, 1])), 0);
    };
    const ranks = Array.from({ length: k }, (_, j) => pick(j));
    const cos: tf.Tensor[] = [];
    for (let a = 0; a < k; a++) for (let b = a + 1; b < k; b++) cos.push(tf.sum(tf.mul(ranks[a], ranks[b])));
    return tf.div(tf.addN(cos), (n * k * (k - 1)) / 2) as tf.Scalar;
  });
}

/** Switch balance loss of the competition: P = mean softmax(s), f from the winners. */
export function competitionBalanceLoss(s: tf.Tensor2D, winners: Int32Array, k: number): tf.Scalar {
  return tf.tidy(() => switchBalanceLoss(tf.softmax(s) as tf.Tensor2D, winners, k));
}

/** Top-k winners per token from affinity values [n, e]. */
export function competitionWinners(s: ArrayLike<number>, n: number, e: number, k: number): Int32Array {
  return topkIndices(s, n, e, k);
}

/**
 * Which MoE layer competes on which step (official v2 code, Fsoft-AIC/CompeteSMoE): no competition during the first
 * ⌊warmup·steps⌋ steps; after that each layer draws Bernoulli(prob) per step, layers in order; a draw that
 * would exceed `maxLayersPerStep` competing layers moves to the nearest step with room, searching left first
 * and then right. Precomputed from a seed, so it is the same for every run with that seed.
 */
export class CompetitionSchedule {
  readonly warmupSteps: number;
  private readonly table: Uint8Array[];

  constructor(
    readonly layers: number,
    readonly steps: number,
    opts: { prob: number; warmup: number; maxLayersPerStep: number; seed: number },
  ) {
    if (!(opts.prob >= 0 && opts.prob <= 1)) throw new Error(`competition probability must be in [0, 1], got ${opts.prob}`);
    if (!(opts.warmup >= 0 && opts.warmup < 1)) throw new Error(`competition warm-up must be in [0, 1), got ${opts.warmup}`);
    this.warmupSteps = Math.floor(opts.warmup * steps);
    const span = steps - this.warmupSteps;
    const used = new Int32Array(span);
    const rng = new Rng(opts.seed);
    this.table = [];
    for (let l = 0; l < layers; l++) {
      const mine = new Uint8Array(span);
      for (let i = 0; i < span; i++) {
        if (!(rng.next() < opts.prob)) continue;
        const free = (j: number) => used[j] < opts.maxLayersPerStep && !mine[j];
        let at = free(i) ? i : -1;
        for (let j = i - 1; at < 0 && j >= 0; j--) if (free(j)) at = j;
        for (let j = i + 1; at < 0 && j < span; j++) if (free(j)) at = j;
        if (at >= 0) {
          mine[at] = 1;
          used[at]++;
        }
      }
      this.table.push(mine);
    }
  }

  /** Whether MoE layer `layer` competes at optimizer step `step` (0-based). */
  competes(step: number, layer: number): boolean {
    const i = step - this.warmupSteps;
    if (i < 0 || step >= this.steps || layer < 0 || layer >= this.layers) return false;
    return this.table[layer][i] === 1;
  }

  /** Competing layer-steps of layer `layer` (all layers when omitted). */
  count(layer?: number): number {
    const rows = layer === undefined ? this.table : [this.table[layer]];
    return rows.reduce((s, r) => s + r.reduce((a, b) => a + b, 0), 0);
  }
}
