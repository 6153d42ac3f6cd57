/**
 * Small dense linear algebra in float64 for multi-task weightings: the T×T Gram matrix of task gradients is
 * tiny (T = 2…10), so the solvers (min-norm point, CAGrad's dual, Nash bargaining, eigen-decompositions) run
 * in plain JavaScript. Matrices are `number[][]` (row-major), vectors `number[]`.
 */

export type Mat = number[][];
export type Vec = number[];

export const dot = (a: Vec, b: Vec): number => a.reduce((s, x, i) => s + x * b[i], 0);
export const matVec = (A: Mat, x: Vec): Vec => A.map((row) => dot(row, x));
export const quad = (A: Mat, x: Vec, y: Vec = x): number => dot(x, matVec(A, y));
export const sum = (x: Vec): number => x.reduce((s, v) => s + v, 0);
export const identity = (n: number): Mat => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
export const transpose = (A: Mat): Mat => (A.length ? A[0].map((_, j) => A.map((r) => r[j])) : []);
export const matMul = (A: Mat, B: Mat): Mat => A.map((r) => B[0].map((_, j) => r.reduce((s, a, k) => s + a * B[k][j], 0)));

/** Euclidean projection of y onto the probability simplex {w ≥ 0, Σw = 1} (sort-based; Duchi et al., ICML 2008). */
export function projectSimplex(y: Vec): Vec {
  const u = [...y].sort((a, b) => b - a);
  let css = 0;
  let theta = 0;
  for (let i = 0; i < u.length; i++) {
    css += u[i];
    const t = (css - 1) / (i + 1);
    if (u[i] - t > 0) theta = t;
  }
  return y.map((v) => Math.max(v - theta, 0));
}

/**
 * The minimum-norm point of the segment between two vectors given their inner products:
 * argmin_{γ∈[0,1]} ‖γ v1 + (1−γ) v2‖². Returns γ and the squared norm at the optimum
 * (Sener & Koltun, NeurIPS 2018, Algorithm 1).
 */
export function minNormSegment(v1v1: number, v1v2: number, v2v2: number): { gamma: number; cost: number } {
  if (v1v2 >= v1v1) return { gamma: 1, cost: v1v1 };
  if (v1v2 >= v2v2) return { gamma: 0, cost: v2v2 };
  const gamma = (v2v2 - v1v2) / (v1v1 + v2v2 - 2 * v1v2);
  return { gamma, cost: v2v2 + gamma * (v1v2 - v2v2) };
}

/**
 * Minimum-norm element of the convex hull of the vectors whose Gram matrix is `K`: argmin_{w∈Δ} wᵀKw.
 * Closed form for T = 2; otherwise the best pair as a start, then Frank–Wolfe with exact line search
 * (Sener & Koltun 2018, Algorithm 2), at most `maxIter` iterations, stopping when the weights move less than
 * `tol` (L1) — LibMTL's MGDA uses 250 and 1e-5.
 */
export function minNormWeights(K: Mat, maxIter = 250, tol = 1e-5): Vec {
  const n = K.length;
  if (n === 1) return [1];
  let best = { i: 0, j: 1, gamma: 0, cost: Infinity };
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      const r = minNormSegment(K[i][i], K[i][j], K[j][j]);
      if (r.cost < best.cost) best = { i, j, gamma: r.gamma, cost: r.cost };
    }
  const w = new Array(n).fill(0);
  w[best.i] = best.gamma;
  w[best.j] = 1 - best.gamma;
  if (n === 2) return w;
  for (let it = 0; it < maxIter; it++) {
    const Kw = matVec(K, w);
    let t = 0;
    for (let i = 1; i < n; i++) if (Kw[i] < Kw[t]) t = i;
    // Line search between the current point w and the vertex e_t.
    const v1v1 = dot(w, Kw);
    const v1v2 = Kw[t];
    const v2v2 = K[t][t];
    const { gamma } = minNormSegment(v1v1, v1v2, v2v2);
    let change = 0;
    for (let i = 0; i < n; i++) {
      const nw = gamma * w[i] + (1 - gamma) * (i === t ? 1 : 0);
      change += Math.abs(nw - w[i]);
      w[i] = nw;
    }
    if (change < tol) break;
  }
  return w;
}

/**
 * Minimises a convex function over the probability simplex by projected gradient descent with Armijo
 * backtracking. Used for CAGrad's dual. `f` and `grad` take the weights.
 */
export function minimizeOnSimplex(f: (w: Vec) => number, grad: (w: Vec) => Vec, w0: Vec, maxIter = 500, tol = 1e-10): Vec {
  let w = projectSimplex(w0);
  let fw = f(w);
  let step = 1;
  for (let it = 0; it < maxIter; it++) {
    const g = grad(w);
    let improved = false;
    for (let k = 0; k < 40; k++) {
      const cand = projectSimplex(w.map((x, i) => x - step * g[i]));
      const fc = f(cand);
      const decrease = dot(g, w.map((x, i) => x - cand[i]));
      if (fc <= fw - 1e-4 * Math.max(decrease, 0)) {
        const moved = cand.reduce((s, c, i) => s + Math.abs(c - w[i]), 0);
        w = cand;
        const df = fw - fc;
        fw = fc;
        improved = moved > 0;
        step *= 2;
        if (moved < 1e-12 || df < tol) return w;
        break;
      }
      step /= 2;
    }
    if (!improved) break;
  }
  return w;
}

/**
 * Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations. Returns eigenvalues (ascending) and
 * the matching eigenvectors as the columns of `vectors`.
 */
export function symmetricEigen(A0: Mat, maxSweeps = 100): { values: Vec; vectors: Mat } {
  const n = A0.length;
  const A = A0.map((r) => [...r]);
  const V = identity(n);
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += A[i][i] * A[i][i];
      for (let j = i + 1; j < n; j++) off += A[i][j] * A[i][j];
    }
    if (off <= 1e-30 * Math.max(diag, 1e-300) || off === 0) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = A[p][q];
        if (apq === 0) continue;
        const theta = (A[q][q] - A[p][p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k][p];
          const akq = A[k][q];
          A[k][p] = c * akp - s * akq;
          A[k][q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p][k];
          const aqk = A[q][k];
          A[p][k] = c * apk - s * aqk;
          A[q][k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k][p];
          const vkq = V[k][q];
          V[k][p] = c * vkp - s * vkq;
          V[k][q] = s * vkp + c * vkq;
        }
      }
  }
  const order = A.map((_, i) => i).sort((a, b) => A[a][a] - A[b][b]);
  return { values: order.map((i) => A[i][i]), vectors: V.map((row) => order.map((i) => row[i])) };
}

/** Solves A x = b by Gaussian elimination with partial pivoting (small dense systems). */
export function solve(A0: Mat, b0: Vec): Vec {
  const n = A0.length;
  const A = A0.map((r, i) => [...r, b0[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
    [A[c], A[p]] = [A[p], A[c]];
    const piv = A[c][c];
    if (Math.abs(piv) < 1e-300) throw new Error('solve: singular matrix');
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = A[r][c] / piv;
      if (f !== 0) for (let k = c; k <= n; k++) A[r][k] -= f * A[c][k];
    }
  }
  return A.map((r, i) => r[n] / r[i]);
}

/** Inverse of a small matrix (Gauss–Jordan). */
export function inverse(A: Mat): Mat {
  const n = A.length;
  const cols = identity(n).map((e) => solve(A, e));
  return transpose(cols);
}
