/**
 * Rep-MTL — representation-level task saliency regularisation.
 * Wang, Li, Xu, "Rep-MTL: Unleashing the Power of Representation-level Task Saliency for Multi-Task
 * Learning", ICCV 2025 (arXiv 2507.21049). No official code exists; equations from the paper (eqs. 3–10),
 * with the open details settled as in shared/methods/rep-mtl.md.
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
 * Scale: both regularisers are 0-homogeneous in the saliencies (a common factor cancels), so the saliencies
 * are divided by a detached global RMS before use — that leaves the value and the gradient unchanged (up to
 * the eps terms) and keeps float32 away from underflow (CSA is quartic in S).
 */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../errors.js';

/** Rep-MTL options (config keys `repmtl.<option>`). */
export interface RepMtlOptions {
  /** λ_tsr (paper grid {0.7…1.5}; [OURS] default 0.9). */
  lambdaTsr: number;
  /** λ_csa ([OURS] default 0.9). */
  lambdaCsa: number;
  /** InfoNCE temperature τ (not reported by the paper; [OURS] 0.1). */
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
  /** Saliency route: closed form (linear / one-hidden-layer ReLU heads) or VJP through the head. */
  saliency: 'closed' | 'vjp';
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
  saliency: 'closed',
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
  if (!['closed', 'vjp'].includes(r.saliency)) throw new UserError('config key "repmtl.saliency" must be "closed" or "vjp"');
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

/** Divides every saliency by one detached global RMS (the regularisers are invariant to a common scale). */
export function normalizeSaliencies(sal: tf.Tensor3D[]): tf.Tensor3D[] {
  const ms = tf.tidy(() => tf.addN(sal.map((s) => tf.mean(tf.square(s)))).dataSync()[0] / sal.length);
  const rms = Math.sqrt(ms);
  if (!(rms > 0) || !Number.isFinite(rms)) return sal;
  return sal.map((s) => tf.div(s, rms) as tf.Tensor3D);
}

/** Per-position saliency shares P_{i,t} (TSR eq. 5): [T, B, P]. */
export function saliencyShares(sal: tf.Tensor3D[], eps = 1e-8): tf.Tensor3D {
  const a = tf.stack(sal.map((s) => tf.abs(tf.mean(s, 2)))) as tf.Tensor3D;
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
export function csaCosines(sal: tf.Tensor3D[], eps = 1e-8): { pos: tf.Tensor2D; neg: tf.Tensor2D } {
  const [B, P, C] = sal[0].shape;
  const T = sal.length;
  const anchors = tf.stack(sal.map((s) => tf.mean(s, 1)), 1) as tf.Tensor3D; // [B, T, C]
  const aa = tf.matMul(anchors, anchors, false, true); // [B, T, T]
  const e2 = eps * eps;
  const nA = tf.sqrt(tf.add(tf.sum(tf.square(aa), [1, 2]), e2)); // [B]
  const pos = sal.map((x) => {
    const atx = tf.matMul(anchors, x, false, true); // [B, T, P]
    const num = tf.sum(tf.square(atx), [1, 2]);
    const gram = C <= P ? tf.matMul(x, x, true, false) : tf.matMul(x, x, false, true);
    const nM = tf.sqrt(tf.add(tf.sum(tf.square(gram), [1, 2]), e2));
    return tf.div(num, tf.add(tf.mul(nA, nM), eps));
  });
  const flat = tf.reshape(anchors, [B * T, C]);
  const q = tf.reshape(tf.matMul(flat, flat, false, true), [B, T, B, T]);
  const inner = tf.sum(tf.square(q), [1, 3]) as tf.Tensor2D; // [B, B]
  const n = tf.sqrt(tf.add(tf.sum(tf.mul(inner, tf.eye(B)), 1), e2)); // ‖Â_b‖ from the diagonal
  const neg = tf.div(inner, tf.add(tf.outerProduct(n as tf.Tensor1D, n as tf.Tensor1D), eps)) as tf.Tensor2D;
  return { pos: tf.stack(pos, 1) as tf.Tensor2D, neg };
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

/** The Rep-MTL regulariser from the task saliencies (each shaped like Z). */
export function repMtlRegularizer(saliencies: tf.Tensor[], o: RepMtlOptions): { total: tf.Scalar; tsr: tf.Scalar | null; csa: tf.Scalar | null } {
  const sal = normalizeSaliencies(saliencies.map((s) => toPositions(s, o.positions)));
  const tsr = o.tsr ? tsrLoss(sal, o.eps) : null;
  const csa = o.csa ? csaLoss(sal, o.tau, o.includePositive, o.eps) : null;
  let total = tf.scalar(0);
  if (tsr && o.lambdaTsr > 0) total = tf.add(total, tf.mul(tsr, o.lambdaTsr));
  if (csa && o.lambdaCsa > 0) total = tf.add(total, tf.mul(csa, o.lambdaCsa));
  return { total: total as tf.Scalar, tsr, csa };
}
