/**
 * How far the real-valued latents of shift layers moved during training, and how many crossed the
 * thresholds that change the discrete weight — the diagnostic behind "weight sign freezing".
 *
 * Paper: Li et al., "S³: Sign-Sparse-Shift Reparametrization …", NeurIPS 2021 (arXiv 2107.03453), Sec. 1/3:
 * DeepShift-PS signs rarely change. Mechanism (official codes: mostafaelhoushi/DeepShift, huawei-noah/noah-research S3-Training): the PS sign latent s̃ starts in U(−1, 1) and
 * the weight's sign is sign(round(s̃)), so a +1 weight becomes −1 only after s̃ travels from > 0.5 to < −0.5
 * (≥ 1 unit), through the zero dead zone (−0.5, 0.5); an S3 sign latent W_sign ~ N(0, 2/n) flips when it
 * crosses 0, typically ≈ 0.05 away. With Adam-type optimisers a latent moves about lr per step at most, so
 * Σ_t lr_t bounds how far any latent can travel.
 *
 * The start snapshot is taken before the first step, so for DeepShift-PS conv layers |Δp̃| includes the first
 * in-place clamp of p̃ from its U(−10, −1) init into [pMin, 0]; the rounded-exponent change (`crossedFraction`)
 * compares clamped values and is not affected.
 *
 * Thresholds per role: full precision / S3 `sign`, `sparse`, `shift` latents: 0 (S(x) = [x ≥ 0],
 * H(x) = [x > 0]); DeepShift-PS `sign`: round(s̃) ∈ {…, −1, 0, 1, …} (half-to-even, as tfjs and PyTorch
 * round), `shift`: round(clamp(p̃, pMin, 0)).
 */
import * as tf from '@tensorflow/tfjs';
import { quantile } from '../../stats/index.js';
import { ShiftLayerBase } from './layers.js';

/** Concatenated latents of some layers at one moment, by role, with the parametrisation that reads them. */
export interface LatentSnapshot {
  parameterization: 's3' | 'deepshift-ps' | 'fp';
  /** Lowest exponent (DeepShift-PS `shift` rounding range); 0 otherwise. */
  pMin: number;
  latents: Record<string, Float32Array>;
}

/**
 * Snapshot of the latents of `layers` (all shift layers of one parametrisation, or all float convs/denses,
 * whose kernel is treated as the `sign` latent with threshold 0).
 */
export function latentSnapshot(layers: tf.layers.Layer[]): LatentSnapshot {
  if (!layers.length) throw new Error('latentSnapshot: no layers');
  const shift = layers.filter((l): l is ShiftLayerBase => l instanceof ShiftLayerBase);
  if (shift.length && shift.length !== layers.length) throw new Error('latentSnapshot: mixes shift and float layers');
  const parts: Record<string, Float32Array[]> = {};
  let parameterization: LatentSnapshot['parameterization'] = 'fp';
  let pMin = 0;
  for (const l of layers) {
    let vals: Record<string, Float32Array>;
    if (l instanceof ShiftLayerBase) {
      if (parameterization !== 'fp' && parameterization !== l.parameterization) throw new Error('latentSnapshot: mixed parametrisations');
      parameterization = l.parameterization;
      pMin = l.range.pMin;
      vals = l.latentValues();
    } else vals = { sign: Float32Array.from(l.getWeights()[0].dataSync() as Float32Array) };
    for (const [k, v] of Object.entries(vals)) (parts[k] ??= []).push(v);
  }
  const latents: Record<string, Float32Array> = {};
  for (const [k, vs] of Object.entries(parts)) {
    const out = new Float32Array(vs.reduce((a, v) => a + v.length, 0));
    let o = 0;
    for (const v of vs) {
      out.set(v, o);
      o += v.length;
    }
    latents[k] = out;
  }
  return { parameterization, pMin, latents };
}

/** Round half to even (tf.round / torch.round). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The discrete value a latent of `role` maps to (see the module comment). */
export function discretizeLatent(parameterization: LatentSnapshot['parameterization'], role: string, x: number, pMin = 0): number {
  if (parameterization === 'deepshift-ps') {
    if (role === 'sign') return Math.sign(roundHalfEven(x));
    if (role === 'shift') return roundHalfEven(Math.min(0, Math.max(pMin, x)));
  }
  if (role === 'sign') return x >= 0 ? 1 : -1;
  return x > 0 ? 1 : 0;
}

/** Movement statistics of one latent role between two snapshots (see `latentMovement`). */
export interface RoleMovement {
  n: number;
  /** Quantiles of |latent_end − latent_start|. */
  absDeltaMedian: number;
  absDeltaP90: number;
  absDeltaP99: number;
  absDeltaMax: number;
  /** Median |latent| at the start (the latents' own scale). */
  startAbsMedian: number;
  /** Fraction of latents whose discrete value differs between the snapshots (net threshold crossings). */
  crossedFraction: number;
}

/** Latent movement between two snapshots, by role, plus the sign-specific quantities (see `latentMovement`). */
export interface LatentMovement {
  parameterization: LatentSnapshot['parameterization'];
  roles: Record<string, RoleMovement>;
  /**
   * Median distance the `sign` latent had to travel at the start to reverse the weight's sign: |x| for
   * full precision and S3 (threshold 0); |s̃| + 0.5 for DeepShift-PS weights non-zero at the start (from
   * > 0.5 to < −0.5 or back). PS weights that start at zero are left out.
   */
  signFlipDistanceMedian: number;
  /** Fraction of weights whose latent sign (sign of the `sign` latent, x ≥ 0 ↦ +) changed. */
  latentSignChanged: number;
  /**
   * DeepShift-PS: fraction of weights non-zero at the start whose ternary sign went ±1 → ∓1 (crossed the whole
   * dead zone); full precision / S3: the same as `latentSignChanged`.
   */
  signReversed: number;
}

/**
 * Compares two latent snapshots of the same layers (start → end of training): |Δ| distribution and net
 * threshold crossings per latent role, and how far the sign latent was from a sign reversal (S3 paper Sec. 1,
 * "weight sign freezing"; DeepShift Sec. 3.2 for the PS rounding).
 */
export function latentMovement(start: LatentSnapshot, end: LatentSnapshot): LatentMovement {
  if (start.parameterization !== end.parameterization) throw new Error('latentMovement: snapshots of different parametrisations');
  const par = start.parameterization;
  const roles: Record<string, RoleMovement> = {};
  for (const [role, a] of Object.entries(start.latents)) {
    const b = end.latents[role];
    if (!b || b.length !== a.length) throw new Error(`latentMovement: role ${role} differs in size between snapshots`);
    const d = new Float64Array(a.length);
    const absA = new Float64Array(a.length);
    let crossed = 0;
    for (let i = 0; i < a.length; i++) {
      d[i] = Math.abs(b[i] - a[i]);
      absA[i] = Math.abs(a[i]);
      if (discretizeLatent(par, role, a[i], start.pMin) !== discretizeLatent(par, role, b[i], start.pMin)) crossed++;
    }
    let max = 0;
    for (const v of d) if (v > max) max = v;
    roles[role] = {
      n: a.length,
      absDeltaMedian: quantile(d, 0.5),
      absDeltaP90: quantile(d, 0.9),
      absDeltaP99: quantile(d, 0.99),
      absDeltaMax: max,
      startAbsMedian: quantile(absA, 0.5),
      crossedFraction: a.length ? crossed / a.length : 0,
    };
  }
  const a = start.latents.sign;
  const b = end.latents.sign;
  const dist: number[] = [];
  let changed = 0;
  let reversed = 0;
  let eligible = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] >= 0 !== b[i] >= 0) changed++;
    if (par === 'deepshift-ps') {
      const t0 = discretizeLatent(par, 'sign', a[i]);
      if (t0 === 0) continue;
      eligible++;
      dist.push(Math.abs(a[i]) + 0.5);
      if (discretizeLatent(par, 'sign', b[i]) === -t0) reversed++;
    } else {
      eligible++;
      dist.push(Math.abs(a[i]));
      if (a[i] >= 0 !== b[i] >= 0) reversed++;
    }
  }
  return {
    parameterization: par,
    roles,
    signFlipDistanceMedian: quantile(dist, 0.5),
    latentSignChanged: a.length ? changed / a.length : 0,
    signReversed: eligible ? reversed / eligible : 0,
  };
}
