/**
 * Token routing of a sparse MoE layer (Shazeer et al. 2017; GShard, Lepikhin et al. 2021; Switch, Fedus et
 * al. 2022): top-k selection, expert capacity with token dropping, the dispatch/combine index maps, and the
 * auxiliary losses (Switch load balancing, router z-loss of ST-MoE, Zoph et al. 2022).
 *
 * Decisions are made in JS on the scores read back from the backend (cheap at E ≤ 64); the differentiable
 * parts (gate weights, losses) stay tfjs ops.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Top-k expert indices per token from row-major scores [n, e]: out[t·k + j] is token t's (j+1)-th best
 * expert. Ties go to the lower expert index (a stable order; the v1 code's unsorted top-k left the columns misaligned with the router target).
 */
export function topkIndices(scores: ArrayLike<number>, n: number, e: number, k: number): Int32Array {
  if (k < 1 || k > e) throw new Error(`top-k needs 1 ≤ k ≤ ${e}, got ${k}`);
  const out = new Int32Array(n * k);
  const best = new Int32Array(k);
  for (let t = 0; t < n; t++) {
    const o = t * e;
    let filled = 0;
    for (let i = 0; i < e; i++) {
      const v = scores[o + i];
      // insertion into the sorted prefix best[0..filled)
      let p = filled < k ? filled : k;
      if (p === k && !(v > scores[o + best[k - 1]])) continue;
      if (p === k) p = k - 1;
      while (p > 0 && v > scores[o + best[p - 1]]) {
        best[p] = best[p - 1];
        p--;
      }
      best[p] = i;
      if (filled < k) filled++;
    }
    out.set(best, t * k);
  }
  return out;
}

/**
 * Expert capacity C = ceil(capacityFactor · k · n / e) (GShard/Switch; DeepSpeed's formula), at least
 * `minCapacity`. capacityFactor ≤ 0 means dropless: C is the largest expert load of this batch.
 */
export function expertCapacity(n: number, e: number, k: number, capacityFactor: number, minCapacity = 1, loads?: ArrayLike<number>): number {
  if (capacityFactor <= 0) {
    let c = minCapacity;
    if (loads) for (let i = 0; i < e; i++) c = Math.max(c, loads[i]);
    return c;
  }
  return Math.max(minCapacity, Math.ceil((capacityFactor * k * n) / e));
}

/** Where each token's choices go in the padded [e, C] expert buffers. */
export interface DispatchPlan {
  experts: number;
  capacity: number;
  /** Slot s = expert·C + position → the token it holds, or n (empty slot, reads a zero row). Length e·C. */
  slotToken: Int32Array;
  /** Choice t·k + j → its slot, or e·C when the token was dropped (combine reads a zero row). Length n·k. */
  choiceSlot: Int32Array;
  /** Tokens per expert before dropping (the router's assignment). */
  load: Int32Array;
  /** Choices dropped for capacity. */
  dropped: number;
}

/**
 * Assigns the top-k choices to expert slots, first choices of all tokens before second choices (GShard's
 * priority), each pass in token order; a choice finding its expert full is dropped (the token's output for
 * it is zero, the residual carries the token). `capacityFactor` ≤ 0: nothing is dropped.
 */
export function dispatchPlan(choices: Int32Array, n: number, e: number, k: number, capacityFactor: number, minCapacity = 1): DispatchPlan {
  const load = new Int32Array(e);
  for (const c of choices) load[c]++;
  const C = expertCapacity(n, e, k, capacityFactor, minCapacity, load);
  const slotToken = new Int32Array(e * C).fill(n);
  const choiceSlot = new Int32Array(n * k).fill(e * C);
  const fill = new Int32Array(e);
  let dropped = 0;
  for (let j = 0; j < k; j++) {
    for (let t = 0; t < n; t++) {
      const x = choices[t * k + j];
      if (fill[x] < C) {
        const s = x * C + fill[x]++;
        slotToken[s] = t;
        choiceSlot[t * k + j] = s;
      } else dropped++;
    }
  }
  return { experts: e, capacity: C, slotToken, choiceSlot, load, dropped };
}

/** One-hot [n, k, e] of the chosen experts (a constant used to pick gate values out of [n, e] scores). */
export function choiceOneHot(choices: Int32Array, n: number, e: number, k: number): tf.Tensor3D {
  const v = new Float32Array(n * k * e);
  for (let c = 0; c < n * k; c++) v[c * e + choices[c]] = 1;
  return tf.tensor3d(v, [n, k, e]);
}

/**
 * Gate weights [n, k] of the chosen experts: softmax over the kept logits, which equals the router
 * probabilities p renormalised over the k choices (SMoE; GShard top-2).
 */
export function topkGates(probs: tf.Tensor2D, choices: Int32Array, k: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [n, e] = probs.shape;
    const sel = tf.sum(tf.mul(tf.reshape(probs, [n, 1, e]), choiceOneHot(choices, n, e, k)), 2) as tf.Tensor2D;
    return tf.div(sel, tf.sum(sel, 1, true)) as tf.Tensor2D;
  });
}

/**
 * Switch load-balancing loss (Fedus et al. 2022, eq. 4): L = E·Σ_i f_i·P_i, with f_i the fraction of the
 * n·k routed choices that picked expert i (before capacity dropping) and P_i the mean router probability of
 * expert i. Equals 1 under perfectly uniform routing; gradients flow through P only. f counts all k choices
 * of each token (GShard and the CompeteSMoE v2 code count only the first choice).
 */
export function switchBalanceLoss(probs: tf.Tensor2D, choices: Int32Array, k: number): tf.Scalar {
  const [n, e] = probs.shape;
  const f = new Float32Array(e);
  for (const c of choices) f[c] += 1 / (n * k);
  return tf.tidy(() => tf.mul(e, tf.sum(tf.mul(tf.mean(probs, 0), tf.tensor1d(f)))) as tf.Scalar);
}

/** Router z-loss (ST-MoE, Zoph et al. 2022, eq. 5): mean over tokens of (log Σ_i exp z_i)². */
export function routerZLoss(logits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.square(tf.logSumExp(logits, 1))) as tf.Scalar);
}
