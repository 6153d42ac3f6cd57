/**
 * Small dense linear algebra in float64 for initialisation (tfjs has no SVD): one-sided Jacobi SVD,
 * the orthogonal polar factor, and the balanced best rank-r factorisation used by LowRank's `svd` init.
 * Matrices are row-major Float64Arrays. Sizes here are at most a few hundred, so O(n³) per sweep is fine.
 */
import type { Rng } from '../../engine/rng.js';

export interface Svd {
  /** m×k row-major left singular vectors (k = min(m, n)). */
  u: Float64Array;
  /** k singular values, descending. */
  s: Float64Array;
  /** n×k row-major right singular vectors. */
  v: Float64Array;
  k: number;
}

/** A row-major m×n matrix of N(0, std²) draws from `rng`. */
export function gaussian(rng: Rng, m: number, n: number, std: number): Float64Array {
  const a = new Float64Array(m * n);
  for (let i = 0; i < a.length; i++) a[i] = rng.normal() * std;
  return a;
}

/** Transpose of a row-major m×n matrix (result n×m). */
export function transpose(a: Float64Array, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/**
 * Thin SVD A = U·diag(s)·Vᵀ of a row-major m×n matrix by one-sided Jacobi (Hestenes) rotations:
 * columns of A are orthogonalised pairwise; their norms are the singular values.
 */
export function svd(a: Float64Array, m: number, n: number): Svd {
  if (m < n) {
    const r = svd(transpose(a, m, n), n, m);
    return { u: r.v, s: r.s, v: r.u, k: r.k };
  }
  // Column-major working copies: column j of W at [j*m, (j+1)*m), of V at [j*n, (j+1)*n).
  const w = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w[j * m + i] = a[i * n + j];
  const v = new Float64Array(n * n);
  for (let j = 0; j < n; j++) v[j * n + j] = 1;
  const eps = 1e-15;
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        const po = p * m;
        const qo = q * m;
        for (let i = 0; i < m; i++) {
          const x = w[po + i];
          const y = w[qo + i];
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (Math.abs(gamma) <= eps * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const x = w[po + i];
          const y = w[qo + i];
          w[po + i] = c * x - s * y;
          w[qo + i] = s * x + c * y;
        }
        const pv = p * n;
        const qv = q * n;
        for (let i = 0; i < n; i++) {
          const x = v[pv + i];
          const y = v[qv + i];
          v[pv + i] = c * x - s * y;
          v[qv + i] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  const norms = Array.from({ length: n }, (_, j) => {
    let s = 0;
    for (let i = 0; i < m; i++) s += w[j * m + i] ** 2;
    return Math.sqrt(s);
  });
  const order = norms.map((_, j) => j).sort((x, y) => norms[y] - norms[x]);
  const u = new Float64Array(m * n);
  const vv = new Float64Array(n * n);
  const sv = new Float64Array(n);
  order.forEach((j, col) => {
    const sj = norms[j];
    sv[col] = sj;
    for (let i = 0; i < m; i++) u[i * n + col] = sj > 0 ? w[j * m + i] / sj : 0;
    for (let i = 0; i < n; i++) vv[i * n + col] = v[j * n + i];
  });
  return { u, s: sv, v: vv, k: n };
}

/** Orthogonal polar factor U·Vᵀ of a row-major m×n matrix (all singular values set to 1). */
export function polar(a: Float64Array, m: number, n: number): Float64Array {
  const { u, v, k } = svd(a, m, n);
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += u[i * k + c] * v[j * k + c];
      out[i * n + j] = s;
    }
  return out;
}

/**
 * Balanced best rank-r factors of a row-major m×n matrix A: A ≈ L·R with L = P_r·√Σ_r (m×r) and
 * R = √Σ_r·Q_rᵀ (r×n), both row-major.
 */
export function balancedFactors(a: Float64Array, m: number, n: number, r: number): { left: Float64Array; right: Float64Array } {
  const { u, s, v, k } = svd(a, m, n);
  if (r > k) throw new Error(`rank ${r} exceeds min(${m}, ${n})`);
  const left = new Float64Array(m * r);
  const right = new Float64Array(r * n);
  for (let c = 0; c < r; c++) {
    const sq = Math.sqrt(s[c]);
    for (let i = 0; i < m; i++) left[i * r + c] = u[i * k + c] * sq;
    for (let j = 0; j < n; j++) right[c * n + j] = v[j * k + c] * sq;
  }
  return { left, right };
}

/** Row-major product of m×k and k×n matrices. */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p];
      if (x === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += x * b[p * n + j];
    }
  return out;
}
