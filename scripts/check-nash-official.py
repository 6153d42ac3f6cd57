#!/usr/bin/env python3
# Checks which α the official Nash-MTL solver formulation (AvivNavon/nash-mtl, methods/weight_methods.py: NashMTL)
# produces, re-derived here (not copied) and solved with SciPy instead of CVXPY/ECOS. Prints, for gradients at
# scale 1e-3 and 1: its α, the exact Nash solution on the raw Gram GGᵀ and on the normalised Gram GGᵀ/‖GGᵀ‖.
# Result (numpy 2.4, scipy 1.17): the official formulation gives the raw-Gram α (‖Σ α g‖² = T), which is what
# src/methods/mtl/weightings/nash-mtl.ts computes. Usage: python3 scripts/check-nash-official.py
# Formulation: sequential convex problems min_a sum(Gn a) + phi_lin(a)/nf s.t. -log(a_i nf) - log((Gn a)_i) <= 0,
# a >= 0 (Gn = GG^T/nf, nf = ||GG^T||_F), warm start a = 1, <= 20 rounds.
import numpy as np
from scipy.optimize import minimize
rng = np.random.default_rng(0)
T, P = 3, 50
G0 = rng.normal(size=(T, P))
def nash_exact(K):
    a = np.ones(len(K)) / np.sqrt(np.diag(K) * len(K))
    for _ in range(200):
        g = K @ a - 1 / a
        H = K + np.diag(1 / a**2)
        s = np.linalg.solve(H, g)
        t = 1.0
        while np.any(a - t * s <= 0): t /= 2
        a = a - t * s
    return a
for c in [1e-3, 1.0]:
    G = c * G0
    K = G @ G.T
    nf = np.linalg.norm(K)
    Gn = K / nf
    a = np.ones(T)
    for _ in range(20):
        ap = a.copy()
        tag = 1 / ap + (1 / (Gn @ ap)) @ Gn
        obj = lambda x: nf * np.sum(Gn @ x) + tag @ (x - ap)  # the official objective times nf (same argmin)
        cons = [{'type': 'ineq', 'fun': (lambda x, i=i: x[i] * nf * (Gn @ x)[i] - 1)} for i in range(T)]  # exp of the official log constraint
        x0 = ap * max(1.0, 1.01 / np.sqrt(np.min(ap * (K @ ap))))  # a feasible start (ECOS needs none)
        r = minimize(obj, x0, constraints=cons, bounds=[(1e-12, None)] * T, method='SLSQP', options={'maxiter': 500, 'ftol': 1e-14})
        if not r.success: break  # SLSQP stops at the optimum with a line-search warning once converged
        a = r.x
        if np.linalg.norm(a - ap) < 1e-6 * max(1, np.linalg.norm(ap)): break
    d = a @ G
    print(f"scale {c:g}: official-formulation alpha {np.round(a, 4)}; exact Nash on raw Gram {np.round(nash_exact(K), 4)}; "
          f"on normalised Gram {np.round(nash_exact(Gn), 4)}; ||sum a g||^2 = {d @ d:.4f} (T = {T})")
