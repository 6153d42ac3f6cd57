import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initEngine } from '../src/engine/backend.js';
import { Rng } from '../src/engine/rng.js';
import { TransformerLM } from '../src/models/transformer.js';
import { loadTransformer, saveTransformer } from '../src/node/transformer-files.js';
import type { FfnContext } from '../src/models/ffn.js';
import {
  CompetitionSchedule,
  MoeFfn,
  affinity,
  attachCompetitionSchedule,
  competitionBalanceLoss,
  competitionTarget,
  competitionWeights,
  cosineGramSum,
  dispatchPlan,
  diversityLoss,
  expertCapacity,
  gatherRows,
  inverseIndex,
  loadCv,
  meanNormalizedEntropy,
  moeDiagnostics,
  moeLayers,
  routerMatchLoss,
  routerZLoss,
  routingFluctuation,
  switchBalanceLoss,
  topkAgreement,
  topkGates,
  topkIndices,
  XmoeRouter,
  type MoeFfnSpec,
} from '../src/methods/compete-smoe/index.js';
import { tempDir } from './helpers/tmp.js';

before(async () => {
  await initEngine({ backend: 'wasm' });
});

const close = (a: number, b: number, tol = 1e-5, msg = '') => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${msg} ${a} vs ${b}`);
const closeArr = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) close(a[i], b[i], tol, `[${i}]`);
};
const randn = (shape: number[], seed: number, scale = 1) => {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => r.normal() * scale), shape);
};
const spec = (router: MoeFfnSpec['router'], extra: Partial<MoeFfnSpec> = {}): MoeFfnSpec => ({ kind: 'moe', experts: 4, topK: 2, expertHidden: 6, capacityFactor: 0, router, ...extra });

test('routing: top-k order and ties, capacity formula, dispatch with GShard priority and drops', () => {
  // token 0: [0.1, 0.5, 0.2, 0.5] → 1, 3 (tie to the lower index); token 1: [0.9, 0, 0, 0.3] → 0, 3
  assert.deepEqual([...topkIndices([0.1, 0.5, 0.2, 0.5, 0.9, 0, 0, 0.3], 2, 4, 2)], [1, 3, 0, 3]);
  assert.deepEqual([...topkIndices([3, 1, 2], 1, 3, 3)], [0, 2, 1]);
  assert.equal(expertCapacity(1024, 8, 2, 1.25), 320); // ceil(1.25·2·1024/8)
  assert.equal(expertCapacity(10, 4, 1, 1.0), 3); // ceil(2.5)
  assert.equal(expertCapacity(10, 4, 1, 0, 1, [5, 2, 0, 3]), 5); // dropless: the largest load
  // 3 tokens, 2 experts, k = 2, capacity factor 2/3 → C = ceil(2/3·2·3/2) = 2.
  // choices: t0 → (0, 1), t1 → (0, 1), t2 → (0, 1); first choices fill expert 0 with t0, t1; t2's first is dropped;
  // second choices fill expert 1 with t0, t1; t2's second is dropped.
  const p = dispatchPlan(Int32Array.from([0, 1, 0, 1, 0, 1]), 3, 2, 2, 2 / 3);
  assert.equal(p.capacity, 2);
  assert.deepEqual([...p.slotToken], [0, 1, 0, 1]);
  assert.deepEqual([...p.choiceSlot], [0, 2, 1, 3, 4, 4]);
  assert.equal(p.dropped, 2);
  assert.deepEqual([...p.load], [3, 3]);
  // second choices yield to first choices: t0 → (1, 0), t1 → (0, 1), C = 1: expert 0 takes t1 (a first choice), t0's second is dropped.
  const q = dispatchPlan(Int32Array.from([1, 0, 0, 1]), 2, 2, 2, 0.5);
  assert.equal(q.capacity, 1);
  assert.deepEqual([...q.slotToken], [1, 0]);
  assert.deepEqual([...q.choiceSlot], [1, 2, 0, 2]);
  // dropless: empty slots point at the zero row (n)
  const r = dispatchPlan(Int32Array.from([0, 0, 1]), 3, 2, 1, 0);
  assert.deepEqual([...r.slotToken], [0, 1, 2, 3]);
});

test('gates, Switch balance loss and router z-loss against hand values', () => {
  tf.tidy(() => {
    const probs = tf.tensor2d([
      [0.5, 0.3, 0.2],
      [0.1, 0.6, 0.3],
    ]);
    // renormalised top-2: t0 (0, 1) → 0.5/0.8, 0.3/0.8; t1 (1, 2) → 0.6/0.9, 0.3/0.9
    closeArr(topkGates(probs, Int32Array.from([0, 1, 1, 2]), 2).dataSync(), [0.625, 0.375, 2 / 3, 1 / 3]);
    // f = (1, 2, 1)/4, P = (0.3, 0.45, 0.25) → 3·(0.075 + 0.225 + 0.0625) = 1.0875
    close(switchBalanceLoss(probs, Int32Array.from([0, 1, 1, 2]), 2).dataSync()[0], 1.0875);
    // uniform routing gives exactly 1
    close(switchBalanceLoss(tf.fill([3, 3], 1 / 3) as tf.Tensor2D, Int32Array.from([0, 1, 2]), 1).dataSync()[0], 1);
    // z-loss: rows [0, 0] → ln 2; [ln 3, 0] → ln 4
    close(routerZLoss(tf.tensor2d([[0, 0], [Math.log(3), 0]])).dataSync()[0], (Math.LN2 ** 2 + Math.log(4) ** 2) / 2);
  });
});

test('gatherRows: values, zero sentinel, and a gather-only gradient equal to scatter-add', () => {
  const idx = Int32Array.from([2, 0, 3, 0, 2]);
  assert.deepEqual(inverseIndex(idx, 3).map((a) => [...a]), [
    [1, 5, 0],
    [3, 5, 4],
  ]);
  tf.tidy(() => {
    const src = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    closeArr(gatherRows(src, idx).dataSync(), [5, 6, 1, 2, 0, 0, 1, 2, 5, 6]);
    const w = tf.tensor2d([
      [1, 10],
      [2, 20],
      [3, 30],
      [4, 40],
      [5, 50],
    ]);
    const g = tf.grad((s: tf.Tensor) => tf.sum(tf.mul(gatherRows(s as tf.Tensor2D, idx), w)))(src);
    // row 0 read at positions 1, 3; row 1 never; row 2 at 0, 4
    closeArr(g.dataSync(), [2 + 4, 20 + 40, 0, 0, 1 + 5, 10 + 50]);
  });
});

test('competition formulas: affinity, weights, detached target, router MSE, diversity, balance (hand values)', () => {
  tf.tidy(() => {
    const sp = (v: number) => Math.log1p(Math.exp(v));
    // E = 2, n = 1, d = 2
    const y = tf.tensor3d([[[0, 0]], [[3, -4]]]);
    closeArr(affinity(y, 'softplus').dataSync(), [Math.LN2, (sp(3) + sp(-4)) / 2]);
    closeArr(affinity(y, 'norm').dataSync(), [0, 5], 1e-4);
    const s = tf.tensor2d([[1, 2, 3]]);
    closeArr(competitionWeights(s, Int32Array.from([2, 1]), 2, 'softplus').dataSync(), [0, 0.4, 0.6]);
    closeArr(competitionWeights(s, Int32Array.from([2, 1]), 2, 'norm').dataSync(), [0, 1 / (1 + Math.E), Math.E / (1 + Math.E)]);
    const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
    closeArr(competitionTarget([1, 2, 3], 1, 3), [Math.exp(1) / z, Math.exp(2) / z, Math.exp(3) / z]);
    close(routerMatchLoss(tf.tensor2d([[0.5, 0.5]]), Float32Array.from([1, 0])).dataSync()[0], 0.25);
    // diversity: y0 = [1, 0], y1 = [0, 1], y2 = [1, 1]; winners (0, 2) → cos = 1/√2; winners (0, 1) → 0
    const y3 = tf.tensor3d([[[1, 0]], [[0, 1]], [[1, 1]]]);
    close(diversityLoss(y3, Int32Array.from([0, 2]), 2).dataSync()[0], Math.SQRT1_2);
    close(diversityLoss(y3, Int32Array.from([1, 0]), 2).dataSync()[0], 0);
    // two tokens, k = 3 (all pairs): token 0 pairs (0,1)=0, (0,2)=(1,2)=1/√2 → mean √2/3
    close(diversityLoss(y3, Int32Array.from([0, 1, 2]), 3).dataSync()[0], (2 * Math.SQRT1_2) / 3);
    // two tokens: t0 winners (0, 2) → 1/√2, t1 winners (1, 0) with y1(t1) = −y0(t1) → −1
    const y2 = tf.tensor3d([[[1, 0], [1, 0]], [[0, 1], [-2, 0]], [[1, 1], [0, 1]]]);
    close(diversityLoss(y2, Int32Array.from([0, 2, 1, 0]), 2).dataSync()[0], (Math.SQRT1_2 - 1) / 2);
    // token-summed Gram: G[0,1] = 0 + (−1), G[0,2] = 1/√2 + 0, G[1,2] = 1/√2 + 0, diagonal = 2
    closeArr(cosineGramSum(y2).dataSync(), [2, -1, Math.SQRT1_2, -1, 2, Math.SQRT1_2, Math.SQRT1_2, Math.SQRT1_2, 2], 1e-4);
    // balance on affinities: s = [[0, ln 3]] → softmax (1/4, 3/4); winner 1 → f = (0, 1) → 2·3/4
    close(competitionBalanceLoss(tf.tensor2d([[0, Math.log(3)]]), Int32Array.from([1]), 1).dataSync()[0], 1.5);
  });
});

test('xmoe router: z_i = cos(W_p·x, e_i)/τ', () => {
  const r = new XmoeRouter({ type: 'xmoe', dim: 2, temperature: 0.5 }, { dModel: 2, experts: 2 }, 1, 0.02);
  r.proj.assign(tf.tensor2d([
    [1, 0],
    [0, 2],
  ]));
  r.emb.assign(tf.tensor2d([
    [1, 0],
    [3, 3],
  ]));
  const l = tf.tidy(() => r.logits(tf.tensor2d([[1, 1]])).dataSync());
  // W_p·x = (1, 2): cos with (1, 0) = 1/√5; with (1, 1)/√2 = 3/√10
  closeArr(l, [1 / Math.sqrt(5) / 0.5, 3 / Math.sqrt(10) / 0.5], 1e-4);
  r.dispose();
});

test('competition schedule: warm-up, every step at prob 1, layer cap with relocation, rate ≈ prob', () => {
  const s = new CompetitionSchedule(2, 20, { prob: 1, warmup: 0.25, maxLayersPerStep: 3, seed: 1 });
  assert.equal(s.warmupSteps, 5);
  for (let t = 0; t < 20; t++) for (let l = 0; l < 2; l++) assert.equal(s.competes(t, l), t >= 5);
  const cap = new CompetitionSchedule(3, 10, { prob: 1, warmup: 0, maxLayersPerStep: 2, seed: 1 });
  assert.equal(cap.count(0), 10);
  assert.equal(cap.count(1), 10);
  assert.equal(cap.count(2), 0); // every step already holds 2 competing layers
  // a collision moves to the nearest free step: layer 1 at prob 1, cap 1, layer 0 took some steps
  const r = new CompetitionSchedule(3, 10000, { prob: 0.05, warmup: 0, maxLayersPerStep: 1, seed: 7 });
  for (let t = 0; t < 10000; t++) assert.ok([0, 1, 2].filter((l) => r.competes(t, l)).length <= 1);
  const n = r.count(0); // binomial(10000, 0.05): mean 500, sd 21.8
  assert.ok(n > 434 && n < 566, `layer 0 competed ${n} times`);
  assert.equal(new CompetitionSchedule(1, 10, { prob: 0.5, warmup: 0, maxLayersPerStep: 3, seed: 3 }).competes(10, 0), false);
  // per-layer draws are independent: two layers at p = 0.5 agree on about half the steps, not all
  const ind = new CompetitionSchedule(2, 400, { prob: 0.5, warmup: 0, maxLayersPerStep: 3, seed: 4 });
  const same = Array.from({ length: 400 }, (_, t) => ind.competes(t, 0) === ind.competes(t, 1)).filter(Boolean).length;
  assert.ok(same > 150 && same < 250, `layers agree on ${same}/400 steps`);
  // the v2 defaults: 5% warm-up without competition, then ≈ p of the steps
  const v2 = new CompetitionSchedule(1, 2000, { prob: 0.05, warmup: 0.05, maxLayersPerStep: 3, seed: 5 });
  assert.ok(Array.from({ length: 100 }, (_, t) => v2.competes(t, 0)).every((c) => !c));
  const c = v2.count(0); // binomial(1900, 0.05): mean 95, sd 9.5
  assert.ok(c > 60 && c < 130, `competed ${c} times`);
});

/** A reference MoE output computed token by token with plain ops (dropless). */
function referenceRouted(ffn: MoeFfn, x: tf.Tensor2D): Float32Array {
  return tf.tidy(() => {
    const [n, d] = x.shape;
    const probs = tf.softmax(ffn.router.logits(x)).arraySync() as number[][];
    const all = ffn.bank.forwardAll(x).arraySync() as number[][][]; // [E, n, d]
    const out = new Float32Array(n * d);
    for (let t = 0; t < n; t++) {
      const order = probs[t].map((p, i) => [p, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, ffn.topK);
      const z = order.reduce((s, [p]) => s + p, 0);
      for (const [p, i] of order) for (let c = 0; c < d; c++) out[t * d + c] += (p / z) * all[i][t][c];
    }
    return out;
  });
}

test('MoE FFN: routed forward (gathered dispatch) equals the per-token reference; drops zero a choice', () => {
  for (const router of [{ type: 'topk' }, { type: 'xmoe' }, { type: 'smoe-dropout' }, { type: 'compete' }]) {
    const ffn = new MoeFfn(spec(router), 8, 16, 3, 0.3);
    const x = randn([10, 8], 4) as tf.Tensor2D;
    const y = tf.tidy(() => ffn.apply(x, { training: false, rng: null }).dataSync());
    closeArr(y, referenceRouted(ffn, x), 1e-4);
    x.dispose();
    ffn.dispose();
  }
  // capacity 1 with 4 tokens on 4 experts, k = 1: with stats, the spent MACs are E·C per n tokens
  const ffn = new MoeFfn(spec({ type: 'topk' }, { topK: 1, capacityFactor: 1 }), 8, 16, 5, 0.3);
  const x = randn([4, 8], 6) as tf.Tensor2D;
  const stats = { extraMacsPerToken: 0 };
  const y = tf.tidy(() => ffn.apply(x, { training: true, rng: null, stats }).arraySync() as number[][]);
  const ref = referenceRouted(ffn, x);
  const choices = tf.tidy(() => topkIndices(tf.softmax(ffn.router.logits(x)).dataSync(), 4, 4, 1));
  const seen = new Set<number>();
  for (let t = 0; t < 4; t++) {
    const first = !seen.has(choices[t]);
    seen.add(choices[t]);
    for (let c = 0; c < 8; c++) close(y[t][c], first ? ref[t * 8 + c] : 0, 1e-4, `token ${t}`);
  }
  assert.equal(ffn.last.dropped, 4 - seen.size);
  close(stats.extraMacsPerToken, 0); // C = 1, E·C = n·k: no padding
  tf.dispose(x);
  ffn.dispose();
});

test('MoE FFN: competition forward routes by affinity, counts E−k extra experts, aux loss = hand sum', () => {
  const ffn = new MoeFfn(spec({ type: 'compete', prob: 1, routerLossCoef: 0.5, diversityCoef: 0.25, balanceCoef: 0.125 }), 8, 16, 7, 0.3);
  const x = randn([6, 8], 8) as tf.Tensor2D;
  const aux: tf.Scalar[] = [];
  const stats = { extraMacsPerToken: 0 };
  const yT = ffn.apply(x, { training: true, rng: null, stats, addAuxLoss: (l) => aux.push(l) });
  const y = yT.dataSync();
  yT.dispose();
  assert.ok(ffn.last.competed);
  assert.equal(stats.extraMacsPerToken, 2 * 2 * 8 * 6); // (E − k)·2·d·h
  const want = tf.tidy(() => {
    const ys = ffn.bank.forwardAll(x);
    const s = affinity(ys, 'softplus');
    const sv = s.arraySync() as number[][];
    const yv = ys.arraySync() as number[][][];
    const out = new Float32Array(6 * 8);
    const winners = new Int32Array(12);
    for (let t = 0; t < 6; t++) {
      const o = sv[t].map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 2);
      const z = o[0][0] + o[1][0];
      o.forEach(([v, i], j) => {
        winners[t * 2 + j] = i;
        for (let c = 0; c < 8; c++) out[t * 8 + c] += (v / z) * yv[i][t][c];
      });
    }
    const probs = tf.softmax(ffn.router.logits(x)) as tf.Tensor2D;
    const l =
      0.5 * routerMatchLoss(probs, competitionTarget(s.dataSync(), 6, 4)).dataSync()[0] +
      0.25 * diversityLoss(ys, winners, 2).dataSync()[0] +
      0.125 * competitionBalanceLoss(s, winners, 2).dataSync()[0];
    return { out, l };
  });
  closeArr(y, want.out, 1e-4);
  assert.equal(aux.length, 1);
  close(aux[0].dataSync()[0], want.l, 1e-4);
  tf.dispose([...aux, x]);
  ffn.dispose();
});

test('router loss trains the router only: the competition target is detached from the experts', () => {
  const ffn = new MoeFfn(spec({ type: 'compete', prob: 1, routerLossCoef: 1, diversityCoef: 0, balanceCoef: 0 }), 8, 16, 9, 0.3);
  const x = randn([6, 8], 10) as tf.Tensor2D;
  const vars = ffn.variables().map((v) => v.variable);
  const { grads } = tf.variableGrads(() => {
    const aux: tf.Scalar[] = [];
    tf.dispose(ffn.apply(x, { training: true, rng: null, addAuxLoss: (l) => aux.push(l) }));
    return aux[0];
  }, vars);
  const norm = (v: tf.Variable) => (grads[v.name] ? tf.tidy(() => tf.max(tf.abs(grads[v.name])).dataSync()[0]) : 0);
  assert.ok(norm(ffn.router.variables()[0].variable) > 0, 'router kernel gets a gradient');
  for (const v of ffn.bank.variables()) assert.equal(norm(v.variable), 0, `${v.name} must get no gradient from L_R`);
  tf.dispose(Object.values(grads));
  x.dispose();
  ffn.dispose();
});

test('competition gradients: the output trains only the winning experts; balance on affinities reaches all (v2)', () => {
  // E = 6, k = 1, 2 tokens: at most 2 winners, so at least 4 experts lose on every token
  const grads = (coefs: { diversityCoef: number; balanceCoef: number }, withOutput: boolean) => {
    const ffn = new MoeFfn(spec({ type: 'compete', prob: 1, routerLossCoef: 0, ...coefs }, { experts: 6, topK: 1 }), 4, 8, 21, 0.5);
    const x = randn([2, 4], 22) as tf.Tensor2D;
    const r = randn([2, 4], 23);
    const winners = new Set(tf.tidy(() => topkIndices(affinity(ffn.bank.forwardAll(x), 'softplus').dataSync(), 2, 6, 1)));
    const vars = ffn.bank.variables().map((v) => v.variable);
    const { grads: g } = tf.variableGrads(() => {
      const aux: tf.Scalar[] = [];
      const y = ffn.apply(x, { training: true, rng: null, addAuxLoss: (l) => aux.push(l) });
      const parts = [...aux, ...(withOutput ? [tf.sum(tf.mul(y, r))] : [])];
      return tf.addN(parts) as tf.Scalar;
    }, vars);
    // per-expert max |gradient| over the four parameter tensors (each laid out expert-major)
    const perExpert = new Float64Array(6);
    for (const v of vars) {
      const d = g[v.name].dataSync();
      const per = d.length / 6;
      for (let i = 0; i < d.length; i++) perExpert[Math.floor(i / per)] = Math.max(perExpert[Math.floor(i / per)], Math.abs(d[i]));
    }
    tf.dispose([...Object.values(g), x, r]);
    ffn.dispose();
    return { winners, perExpert };
  };
  const out = grads({ diversityCoef: 0, balanceCoef: 0 }, true);
  assert.ok(out.winners.size <= 2);
  for (let e = 0; e < 6; e++) {
    if (out.winners.has(e)) assert.ok(out.perExpert[e] > 0, `winner ${e} gets a gradient`);
    else assert.equal(out.perExpert[e], 0, `loser ${e} must get no gradient from the layer output`);
  }
  // v2 computes its competition balance loss on softmax(affinities) over all E: every expert gets a gradient
  const bal = grads({ diversityCoef: 0, balanceCoef: 1 }, false);
  for (let e = 0; e < 6; e++) assert.ok(bal.perExpert[e] > 0, `balance loss reaches expert ${e}`);
});

test('MoE FFN gradients match finite differences (routed and competition paths)', () => {
  for (const router of [{ type: 'topk' }, { type: 'compete', prob: 1 }]) {
    const ffn = new MoeFfn(spec(router as MoeFfnSpec['router'], { capacityFactor: 1.5 }), 4, 8, 11, 0.5);
    const x = randn([5, 4], 12) as tf.Tensor2D;
    const r = randn([5, 4], 13);
    const f = () => {
      const aux: tf.Scalar[] = [];
      const y = ffn.apply(x, { training: true, rng: null, addAuxLoss: (l) => aux.push(l) });
      return tf.add(tf.sum(tf.mul(y, r)), aux.length ? aux[0] : 0) as tf.Scalar;
    };
    const vars = ffn.variables().map((v) => v.variable);
    const { grads } = tf.variableGrads(f, vars);
    for (const v of vars) {
      const g = grads[v.name].dataSync();
      const base = v.dataSync().slice();
      for (const i of [0, Math.floor(v.size / 2), v.size - 1]) {
        const eps = 1e-2;
        const at = (delta: number) => {
          const w = base.slice();
          w[i] += delta;
          v.assign(tf.tensor(w, v.shape));
          return tf.tidy(() => f().dataSync()[0]);
        };
        const fd = (at(eps) - at(-eps)) / (2 * eps);
        v.assign(tf.tensor(base, v.shape));
        assert.ok(Math.abs(fd - g[i]) <= 2e-3 + 2e-2 * Math.abs(fd), `${router.type} ${v.name}[${i}]: fd ${fd} vs ${g[i]}`);
      }
    }
    tf.dispose([...Object.values(grads), x, r]);
    ffn.dispose();
  }
});

test('diagnostic formulas against hand values', () => {
  close(loadCv([0, 0, 0, 1], 2), 0.5); // counts (3, 1): mean 2, std 1
  close(loadCv([0, 1, 2, 3], 4), 0);
  close(meanNormalizedEntropy([0.5, 0.5, 1, 0], 2, 2), 0.5);
  close(topkAgreement(Int32Array.from([0, 1, 2, 3]), Int32Array.from([1, 0, 3, 1]), 2, 2), 0.75);
  close(routingFluctuation(Int32Array.from([0, 1, 2, 3]), Int32Array.from([0, 2, 2, 1])), 0.5);
});

test('MoE transformer: tensor count stays flat over training, competition and diagnostics; save/load keeps outputs', async () => {
  const { AdamW } = await import('../src/train/optimizers.js');
  const { Trainer } = await import('../src/train/trainer.js');
  for (const router of [{ type: 'compete', prob: 0.5, warmup: 0 }, { type: 'smoe-dropout' }, { type: 'xmoe' }]) {
    const model = new TransformerLM({ vocabSize: 12, contextLength: 8, dModel: 8, nHeads: 2, nLayers: 2, dFf: 8, firstLayerDense: false, ffn: spec(router as MoeFfnSpec['router'], { capacityFactor: 1.25 }) }, 1);
    const sched = attachCompetitionSchedule(model.blocks.map((b) => b.ffn), 6, 1);
    assert.equal(sched !== null, router.type === 'compete');
    const trainer = new Trainer({ params: model.variables(), optimizer: new AdamW({ weightDecay: 0.1 }), clipNorm: 1 });
    const rng = new Rng(2);
    const x = tf.tensor2d(Int32Array.from({ length: 16 }, () => rng.int(12)), [2, 8], 'int32');
    const y = tf.tensor2d(Int32Array.from({ length: 16 }, () => rng.int(12)), [2, 8], 'int32');
    const layers = moeLayers(model.blocks.map((b) => b.ffn));
    const ctx: FfnContext = { training: true, rng, stats: { extraMacsPerToken: 0 } };
    const once = (step: number) => {
      ctx.step = step;
      trainer.trainStep(() => model.loss(x, y, ctx));
      moeDiagnostics(layers, () => tf.dispose(model.logits(x)), null);
    };
    once(0);
    const before = tf.memory().numTensors;
    for (let s = 1; s < 6; s++) once(s);
    assert.equal(tf.memory().numTensors, before, `${router.type}: tensors leak`);
    if (router.type === 'compete') assert.ok(layers.some((l) => l.counts.competed > 0) && layers.some((l) => l.counts.routed > 0));
    const dir = tempDir('moe-save-');
    saveTransformer(model, dir, { note: 'test' });
    const { model: back } = loadTransformer(dir);
    const a = tf.tidy(() => model.logits(x).dataSync());
    const b = tf.tidy(() => back.logits(x).dataSync());
    closeArr(b, a, 1e-5);
    assert.deepEqual(back.blocks[1].ffn.spec(), model.blocks[1].ffn.spec());
    back.dispose();
    model.dispose();
    trainer.optimizer.dispose();
    tf.dispose([x, y]);
  }
});

test('MoE spec errors name the key', () => {
  assert.throws(() => new MoeFfn(spec({ type: 'topk' }, { topK: 5 }), 8, 8, 1, 0.02), /topK must be an integer in \[1, experts=4\]/);
  assert.throws(() => new MoeFfn(spec({ type: 'nope' }), 8, 8, 1, 0.02), /unknown router type "nope"/);
  assert.throws(() => new MoeFfn(spec({ type: 'compete', prob: 2 }), 8, 8, 1, 0.02), /compete router: prob must be in \[0, 1\]/);
});
