/**
 * Rep-MTL — representation-level task saliency regularisation.
 * Wang, Li, Xu, "Rep-MTL: Unleashing the Power of Representation-level Task Saliency for Multi-Task
 * Learning", ICCV 2025 (arXiv 2507.21049). No official code exists; equations from the paper (eqs. 3–10),
 * with the details it leaves open settled by us (each noted where it is settled below).
 *
 * Given the task saliencies S_t = ∂L_t/∂Z (one tensor shaped like the shared representation Z):
 * - TSR (eqs. 4–6): Ŝ_t = channel mean of S_t (signed); at each of the N = B·H'·W' positions
 *   P_{i,t} = |Ŝ_{i,t}| / Σ_k |Ŝ_{i,k}|; L_tsr = (1/N) Σ_i −Σ_t P_{i,t} log P_{i,t} ∈ [0, log T].
 * - CSA (eqs. 7–9): per sample, the task affinity M_t[b] = S_t[b] S_t[b]ᵀ (C×C), the anchor
 *   Â_b = Σ_t a_{b,t} a_{b,t}ᵀ with a_{b,t} the spatial mean of S_t[b]; both flattened and L2-normalised;
 *   L_csa = (1/(BT)) Σ_{b,t} −log[ exp(cos(Â_b, M_t[b])/τ) / Σ_{k≠b} exp(cos(Â_b, Â_k)/τ) ] (the positive left
 *   out of the denominator as printed; `includePositive` puts it in, as in standard InfoNCE).
 *   No C×C matrix is formed: ⟨XXᵀ, YYᵀ⟩_F = ‖XᵀY‖_F².
 * - Objective (eq. 10): L = weighting(L_1..L_T) + λ_tsr L_tsr + λ_csa L_csa.
 *
 * Scale: both regularisers are 0-homogeneous in the saliencies (a common factor cancels, up to the eps terms),
 * so the training step feeds them the saliencies of the summed per-sample losses (B·S_t), which keeps float32
 * away from underflow (CSA is quartic in S) without touching the big tensors.
 *
 * Speed (wasm): the channel mean is a product with a constant averaging vector (one XNNPACK GEMM forward and
 * backward instead of broadcast elementwise kernels), and ‖XᵀX‖_F² has a hand-written gradient (one batched
 * product instead of three).
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../errors.js';

/** Rep-MTL options (config keys `repmtl.<option>`). */
export interface RepMtlOptions {
  /** λ_tsr (paper grid {0.7…1.5}; our default 0.9). */
  lambdaTsr: number;
  /** λ_csa (our default 0.9). */
  lambdaCsa: number;
  /** InfoNCE temperature τ (not reported by the paper; our default 0.1). */
  tau: number;
  /** Switches for the ablation (TSR-only, CSA-only). */
  tsr: boolean;
  csa: boolean;
  /** Put the positive pair in the CSA denominator (standard InfoNCE). Default false (as printed). */
  includePositive: boolean;
  /** Saliency of the raw loss L_t or of log L_t (the paper trains on log losses; it does not say which). */
  saliencyLoss: 'raw' | 'log';
  /** Let the regularisers' gradients reach the heads (the paper: "all terms flow through the whole model"). */
  headGrad: boolean;
  /** Positions for TSR/CSA: spatial H'×W' (paper) or channels (for flat representations). */
  positions: 'spatial' | 'channels';
  /** eps in the TSR denominator and log, and in the CSA cosines. */
  eps: number;
}

export const REP_MTL_DEFAULTS: RepMtlOptions = {
  lambdaTsr: 0.9,
  lambdaCsa: 0.9,
  tau: 0.1,
  tsr: true,
  csa: true,
  includePositive: false,
  saliencyLoss: 'raw',
  headGrad: true,
  positions: 'spatial',
  eps: 1e-8,
};

/** Validates and merges `repmtl.*` options over the defaults. */
export function resolveRepMtlOptions(o: Partial<Record<keyof RepMtlOptions, unknown>> = {}): RepMtlOptions {
  const out = { ...REP_MTL_DEFAULTS } as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    if (!(k in REP_MTL_DEFAULTS)) throw new UserError(`unknown config key "repmtl.${k}" (known: ${Object.keys(REP_MTL_DEFAULTS).map((x) => 'repmtl.' + x).join(', ')})`);
    if (v === undefined) continue;
    const d = (REP_MTL_DEFAULTS as unknown as Record<string, unknown>)[k];
    if (typeof v !== typeof d) throw new UserError(`config key "repmtl.${k}": expected a ${typeof d}, got ${JSON.stringify(v)}`);
    out[k] = v;
  }
  const r = out as unknown as RepMtlOptions;
  if (!(r.tau > 0)) throw new UserError('config key "repmtl.tau" must be > 0');
  if (!(r.lambdaTsr >= 0) || !(r.lambdaCsa >= 0)) throw new UserError('config keys "repmtl.lambdaTsr" / "repmtl.lambdaCsa" must be ≥ 0');
  if (!['raw', 'log'].includes(r.saliencyLoss)) throw new UserError('config key "repmtl.saliencyLoss" must be "raw" or "log"');
  if (!['spatial', 'channels'].includes(r.positions)) throw new UserError('config key "repmtl.positions" must be "spatial" or "channels"');
  return r;
}

/**
 * Rearranges a saliency tensor into [B, positions, features]: spatial = [B, H'W', C] (a flat [B, D]
 * representation gives one position); channels = [B, C, H'W'].
 */
export function toPositions(s: tf.Tensor, mode: 'spatial' | 'channels'): tf.Tensor3D {
  const B = s.shape[0];
  if (s.rank === 2) return (mode === 'spatial' ? tf.reshape(s, [B, 1, s.shape[1]!]) : tf.reshape(s, [B, s.shape[1]!, 1])) as tf.Tensor3D;
  const C = s.shape[s.rank - 1]!;
  const sp = tf.reshape(s, [B, -1, C]) as tf.Tensor3D;
  return mode === 'spatial' ? sp : (tf.transpose(sp, [0, 2, 1]) as tf.Tensor3D);
}

/**
 * Divides every saliency by one detached global RMS (the regularisers are invariant to a common scale; the
 * gradient is unchanged too, by 0-homogeneity). For saliencies of unknown scale.
 */
export function normalizeSaliencies(sal: tf.Tensor3D[]): tf.Tensor3D[] {
  const ms = tf.tidy(() => tf.addN(sal.map((s) => tf.mean(tf.square(s)))).dataSync()[0] / sal.length);
  const rms = Math.sqrt(ms);
  if (!(rms > 0) || !Number.isFinite(rms)) return sal;
  return sal.map((s) => tf.div(s, rms) as tf.Tensor3D);
}

/** Mean over the last axis of [B, P, C] as one GEMM [B·P, C]·(1/C): [B, P]. */
export function channelMean(x: tf.Tensor3D): tf.Tensor2D {
  const [B, P, C] = x.shape;
  return tf.reshape(tf.matMul(tf.reshape(x, [B * P, C]), tf.fill([C, 1], 1 / C)), [B, P]);
}

/** Per-position saliency shares P_{i,t} (TSR eq. 5): [T, B, P]. */
export function saliencyShares(sal: tf.Tensor3D[], eps = 1e-8): tf.Tensor3D {
  const a = tf.stack(sal.map((s) => tf.abs(channelMean(s)))) as tf.Tensor3D;
  return tf.div(a, tf.add(tf.sum(a, 0, true), eps));
}

/** Entropy −Σ_t P log P at every position: [B, P]. */
export function shareEntropy(p: tf.Tensor3D, eps = 1e-8): tf.Tensor2D {
  return tf.neg(tf.sum(tf.mul(p, tf.log(tf.add(p, eps))), 0)) as tf.Tensor2D;
}

/** L_tsr: the mean saliency-share entropy over all B·P positions (eqs. 4–6). Inputs [B, P, C] per task. */
export function tsrLoss(sal: tf.Tensor3D[], eps = 1e-8): tf.Scalar {
  return tf.mean(shareEntropy(saliencyShares(sal, eps), eps)) as tf.Scalar;
}

/**
 * The CSA cosines. Positives cos(Â_b, M_t[b]) as [B, T]; negatives cos(Â_b, Â_k) as [B, B].
 * With X = S_t[b] as P×C and A_bᵀ the T×C stack of anchors: ⟨Â_b, M_t[b]⟩ = ‖A_bᵀ Xᵀ‖², ‖Â_b‖ = ‖A_bᵀA_b‖,
 * ‖M_t[b]‖ = ‖XᵀX‖ (or ‖XXᵀ‖, the smaller), ⟨Â_b, Â_k⟩ = Σ_{t,s} (a_{b,t}·a_{k,s})².
 */
/**
 * ‖XᵀX‖_F² for every matrix X of a batch [N, P, C] (or ‖XXᵀ‖_F², equal), with a hand-written gradient
 * 4·X(XᵀX): one batched product forward and one backward (autodiff would take three). Returns [N].
 */
const gramFrobSq = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const [, P, C] = x.shape as [number, number, number];
  const g = C <= P ? tf.matMul(x as tf.Tensor3D, x as tf.Tensor3D, true, false) : tf.matMul(x as tf.Tensor3D, x as tf.Tensor3D, false, true);
  save([x, g]);
  return {
    value: tf.sum(tf.square(g), [1, 2]),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xx, gg] = saved as [tf.Tensor3D, tf.Tensor3D];
      const g4 = tf.mul(gg, tf.reshape(tf.mul(dy, 4), [-1, 1, 1])) as tf.Tensor3D; // scale the small factor
      return C <= P ? tf.matMul(xx, g4) : tf.matMul(g4, xx);
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

/** The channel Gram XᵀX of every X in [N, P, C] ([N, C, C]) with gradient X(dG + dGᵀ): one batched product each way. */
const channelGram = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  return {
    value: tf.matMul(x as tf.Tensor3D, x as tf.Tensor3D, true, false),
    gradFunc: (dg: tf.Tensor, saved: tf.Tensor[]) => tf.matMul(saved[0] as tf.Tensor3D, tf.add(dg, tf.transpose(dg, [0, 2, 1])) as tf.Tensor3D),
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor3D;

/**
 * The CSA cosines. Positives cos(Â_b, M_t[b]) as [B, T]; negatives cos(Â_b, Â_k) as [B, B].
 * When C ≤ P (spatial maps): the channel Gram M_t[b] = S_t[b]S_t[b]ᵀ (C×C) and Â_b = Σ_t a_{b,t}a_{b,t}ᵀ are
 * formed per sample and ⟨Â_b, M_t[b]⟩ is their elementwise product. Otherwise (few positions, e.g. flat Z)
 * no C×C matrix is formed: with X = S_t[b] as P×C and A_bᵀ the T×C stack of anchors,
 * ⟨Â_b, M_t[b]⟩ = ‖A_bᵀ Xᵀ‖², ‖Â_b‖ = ‖A_bᵀA_b‖, ‖M_t[b]‖ = ‖XXᵀ‖.
 * Negatives always use ⟨Â_b, Â_k⟩ = Σ_{t,s} (a_{b,t}·a_{k,s})² (T×T products).
 */
export function csaCosines(sal: tf.Tensor3D[], eps = 1e-8): { pos: tf.Tensor2D; neg: tf.Tensor2D } {
  const [B, P, C] = sal[0].shape;
  const T = sal.length;
  const e2 = eps * eps;
  const anchors = tf.stack(sal.map((s) => tf.mean(s, 1)), 1) as tf.Tensor3D; // [B, T, C]: a_{b,t}
  let pos: tf.Tensor2D;
  if (C <= P) {
    const ahat = tf.matMul(anchors, anchors, true, false); // [B, C, C] = Σ_t a_t a_tᵀ
    const nA = tf.sqrt(tf.add(tf.sum(tf.square(ahat), [1, 2]), e2)); // ‖Â_b‖_F, [B]
    const cos = sal.map((x) => {
      const m = channelGram(x); // [B, C, C]
      const num = tf.sum(tf.mul(m, ahat), [1, 2]);
      const nM = tf.sqrt(tf.add(tf.sum(tf.square(m), [1, 2]), e2));
      return tf.div(num, tf.add(tf.mul(nA, nM), eps));
    });
    pos = tf.stack(cos, 1) as tf.Tensor2D;
  } else {
    const aa = tf.matMul(anchors, anchors, false, true); // [B, T, T] = A_bᵀA_b
    const nA = tf.sqrt(tf.add(tf.sum(tf.square(aa), [1, 2]), e2)); // ‖Â_b‖_F
    const anchorsT = tf.transpose(anchors, [0, 2, 1]) as tf.Tensor3D; // [B, C, T]
    const num = tf.stack(sal.map((x) => tf.sum(tf.square(tf.matMul(x, anchorsT)), [1, 2])), 1); // [B, T]
    const nM = tf.stack(sal.map((x) => tf.sqrt(tf.add(gramFrobSq(x), e2))), 1); // ‖M_t[b]‖_F, [B, T]
    pos = tf.div(num, tf.add(tf.mul(tf.reshape(nA, [B, 1]), nM), eps)) as tf.Tensor2D;
  }
  const flat = tf.reshape(anchors, [B * T, C]);
  const q = tf.reshape(tf.matMul(flat, flat, false, true), [B, T, B, T]);
  const inner = tf.sum(tf.square(q), [1, 3]) as tf.Tensor2D; // ⟨Â_b, Â_k⟩, [B, B]
  const n = tf.sqrt(tf.add(tf.sum(tf.mul(inner, tf.eye(B)), 1), e2)) as tf.Tensor1D; // ‖Â_b‖ from the diagonal
  const neg = tf.div(inner, tf.add(tf.outerProduct(n, n), eps)) as tf.Tensor2D;
  return { pos, neg };
}

/** L_csa (eq. 9), averaged over samples and tasks. Inputs [B, P, C] per task; needs B ≥ 2 for negatives. */
export function csaLoss(sal: tf.Tensor3D[], tau: number, includePositive = false, eps = 1e-8): tf.Scalar {
  const { pos, neg } = csaCosines(sal, eps);
  const B = pos.shape[0];
  const T = pos.shape[1];
  const posL = tf.div(pos, tau); // [B, T]
  if (B < 2) return tf.neg(tf.mean(posL)) as tf.Scalar;
  const negL = tf.add(tf.div(neg, tau), tf.mul(tf.eye(B), -1e9)); // k = b masked out
  if (!includePositive) {
    const lse = tf.logSumExp(negL, 1, true); // [B, 1]
    return tf.mean(tf.sub(lse, posL)) as tf.Scalar;
  }
  const all = tf.concat([tf.reshape(posL, [B, T, 1]), tf.tile(tf.reshape(negL, [B, 1, B]), [1, T, 1])], 2); // [B, T, 1+B]
  return tf.mean(tf.sub(tf.logSumExp(all, 2), posL)) as tf.Scalar;
}

/**
 * The Rep-MTL regulariser from the task saliencies (each shaped like Z; any common positive scale, e.g. the
 * per-sample B·S_t the training step uses).
 */
export function repMtlRegularizer(saliencies: tf.Tensor[], o: RepMtlOptions): { total: tf.Scalar; tsr: tf.Scalar | null; csa: tf.Scalar | null } {
  const sal = saliencies.map((s) => toPositions(s, o.positions));
  const tsr = o.tsr ? tsrLoss(sal, o.eps) : null;
  const csa = o.csa ? csaLoss(sal, o.tau, o.includePositive, o.eps) : null;
  let total = tf.scalar(0);
  if (tsr && o.lambdaTsr > 0) total = tf.add(total, tf.mul(tsr, o.lambdaTsr));
  if (csa && o.lambdaCsa > 0) total = tf.add(total, tf.mul(csa, o.lambdaCsa));
  return { total: total as tf.Scalar, tsr, csa };
}
