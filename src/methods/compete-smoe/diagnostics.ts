/**
 * Routing and collapse diagnostics of MoE layers: expert-load coefficient of variation, router
 * entropy, router–competition top-k agreement, routing fluctuation between evaluations (StableMoE, Dai et
 * al. 2022), and mean pairwise cosine similarity of expert outputs (representation collapse, X-MoE; v2's
 * L_div over all experts).
 */
import * as tf from '@tensorflow/tfjs';
import type { Ffn } from '../../models/ffn.js';
import { affinity, cosineGramSum, competitionWinners, DEFAULT_COMPETITION } from './competition.js';
import { MoeFfn } from './moe-ffn.js';
import { topkIndices } from './routing.js';

/** Coefficient of variation (population std / mean) of the expert loads of `choices` over e experts. */
export function loadCv(choices: ArrayLike<number>, e: number): number {
  const c = new Float64Array(e);
  for (let i = 0; i < choices.length; i++) c[choices[i]]++;
  const mu = choices.length / e;
  let v = 0;
  for (const x of c) v += (x - mu) ** 2;
  return mu > 0 ? Math.sqrt(v / e) / mu : 0;
}

/** Mean over tokens of the router entropy H(p) / ln e (1 = uniform, 0 = one-hot), from probs [n, e]. */
export function meanNormalizedEntropy(probs: ArrayLike<number>, n: number, e: number): number {
  if (e < 2) return 0;
  let h = 0;
  for (let i = 0; i < n * e; i++) if (probs[i] > 0) h -= probs[i] * Math.log(probs[i]);
  return h / n / Math.log(e);
}

/** Mean over tokens of |A_t ∩ B_t| / k for two top-k choice lists [n·k]. */
export function topkAgreement(a: Int32Array, b: Int32Array, n: number, k: number): number {
  let hit = 0;
  for (let t = 0; t < n; t++)
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++) if (a[t * k + i] === b[t * k + j]) hit++;
  return hit / (n * k);
}

/** Share of tokens whose top-1 expert differs between two evaluations. */
export function routingFluctuation(prev: Int32Array, cur: Int32Array): number {
  if (prev.length !== cur.length) throw new Error(`routing fluctuation needs the same tokens (${prev.length} vs ${cur.length})`);
  let d = 0;
  for (let i = 0; i < cur.length; i++) if (prev[i] !== cur[i]) d++;
  return cur.length ? d / cur.length : 0;
}

export interface LayerDiagnostics {
  load_cv: number;
  router_entropy: number;
  router_agreement: number;
  expert_similarity: number;
  /** Router top-1 expert per token (for the next fluctuation). */
  top1: Int32Array;
}

/** Diagnostics of one MoE layer on its input rows x [n, d] (deterministic; no training state changes). */
export function layerDiagnostics(ffn: MoeFfn, x: tf.Tensor2D): LayerDiagnostics {
  const [n] = x.shape;
  const { experts: E, topK: k } = ffn;
  const kind = ffn.router.competition?.affinity ?? DEFAULT_COMPETITION.affinity;
  const [pv, sv, sim] = tf.tidy(() => {
    const probs = tf.softmax(ffn.router.logits(x));
    const ys = ffn.bank.forwardAll(x);
    const g = cosineGramSum(ys);
    const simT = E > 1 ? tf.div(tf.sub(tf.sum(g), tf.sum(tf.mul(g, tf.eye(E)))), n * E * (E - 1)) : tf.scalar(0);
    return [probs.dataSync(), affinity(ys, kind).dataSync(), simT.dataSync()[0]] as const;
  });
  const routed = topkIndices(pv, n, E, k);
  const compete = competitionWinners(sv, n, E, k);
  const top1 = k === 1 ? routed : Int32Array.from({ length: n }, (_, t) => routed[t * k]);
  return {
    load_cv: loadCv(routed, E),
    router_entropy: meanNormalizedEntropy(pv, n, E),
    router_agreement: topkAgreement(routed, compete, n, k),
    expert_similarity: sim,
    top1,
  };
}

/** The MoE layers of a list of FFNs (e.g. `model.blocks.map(b => b.ffn)`). */
export function moeLayers(ffns: Ffn[]): MoeFfn[] {
  return ffns.filter((f): f is MoeFfn => f instanceof MoeFfn);
}

/**
 * Runs `forward` (an evaluation pass over fixed tokens) with input capture on every MoE layer and returns
 * each layer's diagnostics plus their mean; with `prevTop1` (from the previous call) also the routing
 * fluctuation. Every tensor it creates is disposed.
 */
export function moeDiagnostics(
  layers: MoeFfn[],
  forward: () => void,
  prevTop1: Int32Array[] | null = null,
): { layers: LayerDiagnostics[]; mean: Record<string, number>; top1: Int32Array[] } {
  for (const l of layers) l.capture = [];
  try {
    forward();
  } catch (e) {
    for (const l of layers) {
      tf.dispose(l.capture ?? []);
      l.capture = null;
    }
    throw e;
  }
  const out = layers.map((l) => {
    const xs = l.capture!;
    l.capture = null;
    const x = xs.length === 1 ? xs[0] : (tf.concat(xs, 0) as tf.Tensor2D);
    try {
      return layerDiagnostics(l, x);
    } finally {
      tf.dispose(xs);
      if (xs.length !== 1) x.dispose();
    }
  });
  const mean: Record<string, number> = {};
  for (const key of ['load_cv', 'router_entropy', 'router_agreement', 'expert_similarity'] as const) mean[key] = out.reduce((s, d) => s + d[key], 0) / Math.max(1, out.length);
  if (prevTop1 && prevTop1.length === out.length) mean.routing_fluctuation = out.reduce((s, d, i) => s + routingFluctuation(prevTop1[i], d.top1), 0) / out.length;
  return { layers: out, mean, top1: out.map((d) => d.top1) };
}

/** Runs `f` with every MoE layer's evaluation policy set to `policy` (restored afterwards). */
export function withEvalPolicy<T>(layers: MoeFfn[], policy: 'router' | 'compete', f: () => T): T {
  const prev = layers.map((l) => l.evalPolicy);
  for (const l of layers) l.evalPolicy = policy;
  try {
    return f();
  } finally {
    layers.forEach((l, i) => (l.evalPolicy = prev[i]));
  }
}
