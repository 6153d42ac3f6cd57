/**
 * Tests for the SuperLoss library (Castells, Weinzaepfel, Revaud, NeurIPS 2020):
 * Lambert W₀ (float64 + float32 tensor), closed-form σ*, envelope gradient, τ modes, memory, and a
 * tiny noisy-label training run with tf.variableGrads. Backend: cpu.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../src/engine/rng.js';
import {
  lambertW0,
  lambertW0Tensor,
  LAMBERT_W_BRANCH_POINT,
  superLoss,
  SuperLoss,
  optimalConfidence,
  optimalConfidenceTensor,
  superLossValue,
  crossEntropyPerSample,
  l1PerSample,
  l2PerSample,
  smoothL1PerSample,
} from '../src/methods/superloss/index.js';

before(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/** Reference values of W₀ (50-digit mpmath). */
const KNOWN: Array<[number, number]> = [
  [-0.36, -0.80608431597081762],
  [-0.34, -0.65369450126908962],
  [-0.3, -0.48940222718021493],
  [-0.2, -0.25917110181907376],
  [0.5, 0.35173371124919583],
  [1, 0.56714329040978387],
  [Math.E, 1],
  [5, 1.3267246652422002],
  [10, 1.7455280027406994],
  [100, 3.3856301402900502],
  [1e4, 7.2318460380933727],
  [Math.exp(1 + Math.E), Math.E],
];

function relErr(got: number, want: number): number {
  return Math.abs(got - want) / Math.abs(want);
}

function w32(values: number[]): Float32Array {
  return tf.tidy(() => lambertW0Tensor(tf.tensor1d(values)).dataSync() as Float32Array);
}

/** z sweep over [−1/e, 1e4]: dense near the branch point, log-spaced above 1. */
function sweep(): number[] {
  const zs: number[] = [LAMBERT_W_BRANCH_POINT];
  for (let k = -15; k <= -1; k += 0.25) zs.push(LAMBERT_W_BRANCH_POINT + 10 ** k);
  for (let i = 0; i <= 200; i++) zs.push(-0.36 + (1.36 * i) / 200);
  for (let k = 0; k <= 4; k += 0.05) zs.push(10 ** k);
  return zs.sort((a, b) => a - b);
}

describe('lambertW0 (float64)', () => {
  test('known values to <= 1e-12 relative (requirement: 1e-6)', () => {
    for (const [z, w] of KNOWN) {
      const got = lambertW0(z);
      assert.ok(relErr(got, w) <= 1e-12, `W0(${z}) = ${got}, want ${w}`);
    }
    assert.equal(lambertW0(0), 0);
  });

  test('branch point: exactly -1 at -1/e; RangeError below; NaN/Infinity', () => {
    assert.equal(lambertW0(-1 / Math.E), -1);
    assert.equal(lambertW0(-Math.exp(-1)), -1);
    assert.throws(() => lambertW0(-0.3679), RangeError);
    assert.throws(() => lambertW0(-1), RangeError);
    assert.ok(Number.isNaN(lambertW0(NaN)));
    assert.equal(lambertW0(Infinity), Infinity);
    // Just above the branch point the Puiseux series applies: W ≈ −1 + √(2e·d).
    const d = 1e-12;
    const w = lambertW0(-1 / Math.E + d);
    assert.ok(Math.abs(w - (-1 + Math.sqrt(2 * Math.E * d))) < 1e-9);
  });

  test('round trip w·e^w = z and monotone over [-1/e, 1e4]', () => {
    let prev = -Infinity;
    for (const z of sweep()) {
      const w = lambertW0(z);
      assert.ok(w >= -1, `W0(${z}) = ${w} < -1`);
      assert.ok(w >= prev, `not monotone at z=${z}`);
      prev = w;
      assert.ok(Math.abs(w * Math.exp(w) - z) <= 1e-13 * Math.max(1, Math.abs(z)), `round trip at z=${z}: ${w * Math.exp(w)}`);
    }
    // Large arguments do not overflow.
    const big = lambertW0(1e300);
    assert.ok(Math.abs(big + Math.log(big) - Math.log(1e300)) < 1e-12 * big);
  });
});

describe('lambertW0Tensor (float32)', () => {
  test('known values to <= 1e-5 relative', () => {
    const got = w32(KNOWN.map(([z]) => z));
    KNOWN.forEach(([z, w], i) => assert.ok(relErr(got[i]!, w) <= 1e-5, `W0f32(${z}) = ${got[i]}, want ${w}`));
    assert.equal(w32([0])[0], 0);
  });

  test('branch point in float32', () => {
    // fround(−1/e) = −0.36787945032… lies 9.1e-9 BELOW the true −1/e (fround rounds 1/e up), so it is
    // clamped and maps to exactly −1. The tolerance the branch point itself needs is
    // √(2e·ulp32(1/e)) = √(2e·2.98e-8) ≈ 4.0e-4: W is only determined that well by a float32 input
    // there. We assert that tolerance, and additionally the exact −1 this implementation gives.
    const zf = Math.fround(-1 / Math.E);
    const [w, wBelow] = w32([zf, -5]);
    assert.ok(Math.abs(w! + 1) <= Math.sqrt(2 * Math.E * 2.98e-8));
    assert.equal(w, -1);
    assert.equal(wBelow, -1);
    // The next float32 values above the branch point: compared with the float64 W0 of the SAME
    // float32 inputs (so the input rounding is taken out), float32 reaches <= 1e-5 here too.
    const zs: number[] = [];
    let z = zf;
    const buf = new Float32Array(1);
    const bits = new Int32Array(buf.buffer);
    buf[0] = z;
    for (let i = 0; i < 12; i++) {
      bits[0]! -= 1; // magnitude decreases ⇒ value increases (negative float)
      z = buf[0]!;
      zs.push(z);
    }
    const got = w32(zs);
    zs.forEach((zi, i) => {
      const ref = lambertW0(zi);
      assert.ok(ref > -1 && ref < -0.99, `reference W0(${zi}) = ${ref}`);
      assert.ok(Math.abs(got[i]! - ref) <= 1e-5, `W0f32(${zi}) = ${got[i]}, float64 ${ref}`);
    });
  });

  test('sweep [-1/e, 1e4]: matches float64 to 1e-5 and round-trips w·e^w = z', () => {
    const zs = sweep().map((v) => Math.max(Math.fround(v), Math.fround(LAMBERT_W_BRANCH_POINT)));
    const got = w32(zs);
    zs.forEach((z, i) => {
      const w = got[i]!;
      // float32 input z may sit just below −1/e (clamped): compare with the branch value then.
      const ref = z <= LAMBERT_W_BRANCH_POINT ? -1 : lambertW0(z);
      assert.ok(Math.abs(w - ref) <= 1e-5 * Math.max(1, Math.abs(ref)), `z=${z}: f32 ${w} vs f64 ${ref}`);
      // w·e^w in float64 from the float32 W: relative error ≈ (1 + w)·ΔW/|w| ⇒ ≤ 2e-6 here.
      assert.ok(Math.abs(w * Math.exp(w) - z) <= 2e-6 * Math.max(0.1, Math.abs(z)), `round trip z=${z}: ${w * Math.exp(w)}`);
    });
  });

  test('keeps shape, returns one new tensor', () => {
    const x = tf.tensor2d([[0, 1], [Math.E, 10]]);
    const before = tf.memory().numTensors;
    const w = lambertW0Tensor(x);
    assert.equal(tf.memory().numTensors, before + 1);
    assert.deepEqual(w.shape, [2, 2]);
    tf.dispose([x, w]);
  });
});

describe('optimal confidence σ*', () => {
  test('σ*(ℓ = τ) = 1 (float64 exact, tensor to 1e-6)', () => {
    for (const lambda of [0.1, 0.25, 1, 4]) {
      for (const tau of [0, Math.log(10), 7.5]) {
        assert.equal(optimalConfidence(tau, tau, lambda), 1);
        const s = tf.tidy(() => optimalConfidenceTensor(tf.tensor1d([tau]), tau, lambda).dataSync()[0]!);
        assert.ok(Math.abs(s - 1) <= 1e-6, `tensor σ*(τ) = ${s}`);
      }
    }
  });

  test('clamps at e for very easy samples (β ≤ −2/e)', () => {
    const tau = Math.log(10);
    const lambda = 1;
    const threshold = tau - (2 * lambda) / Math.E;
    const easy = [threshold - 1e-9, threshold - 0.5, 0, -100];
    for (const l of easy) assert.equal(optimalConfidence(l, tau, lambda), Math.E);
    assert.equal(optimalConfidence(threshold, tau, lambda), Math.E);
    const t = tf.tidy(() => Array.from(optimalConfidenceTensor(tf.tensor1d(easy), tau, lambda).dataSync()));
    for (const s of t) assert.ok(Math.abs(s - Math.E) <= 1e-6, `tensor clamp ${s}`);
    // Just above the threshold σ* < e, and continuous.
    const above = optimalConfidence(threshold + 1e-6, tau, lambda);
    assert.ok(above < Math.E && above > Math.E - 0.01);
  });

  test('spec table (τ = log 10), monotone decreasing, within (0, e]', () => {
    const tau = Math.log(10);
    const table: Array<[number, number, number]> = [
      [1, 2.0, 1.199], [1, 3.0, 0.766], [1, 5, 0.506], [1, 10, 0.307], [1, 20, 0.189],
      [0.25, 2.0, 2.718], [0.25, 3.0, 0.499], [0.25, 5, 0.254], [0.25, 10, 0.132], [0.25, 20, 0.074],
    ];
    for (const [lambda, l, s] of table) {
      assert.ok(Math.abs(optimalConfidence(l, tau, lambda) - s) <= 1e-3, `λ=${lambda} ℓ=${l}: ${optimalConfidence(l, tau, lambda)} vs ${s}`);
    }
    let prev = Infinity;
    for (let l = 0; l <= 50; l += 0.05) {
      const s = optimalConfidence(l, tau, 0.5);
      assert.ok(s > 0 && s <= Math.E && s <= prev);
      prev = s;
    }
  });

  test('σ* minimises the objective (grid check, float64)', () => {
    const tau = 1.3;
    const lambda = 0.7;
    for (const l of [0.9, 1.3, 2, 5, 30]) {
      const best = superLossValue(l, tau, lambda);
      for (let ls = -4; ls <= 1.0; ls += 0.01) {
        const sigma = Math.exp(ls);
        const v = (l - tau) * sigma + lambda * ls * ls;
        assert.ok(v >= best - 1e-12, `ℓ=${l}: σ=${sigma} gives ${v} < ${best}`);
      }
    }
  });
});

describe('SuperLoss.compute', () => {
  const tau = Math.log(10);
  const lambda = 0.5;
  // clamped region, near τ, hard samples
  const losses = [0.01, 1.0, 1.9, tau, 2.5, 4, 9, 25];

  test('loss value = mean of float64 L*, sigma = float64 σ*', () => {
    const sl = superLoss({ lambda, tau });
    const { loss, sigma, tau: usedTau } = tf.tidy(() => {
      const out = sl.compute(tf.tensor1d(losses));
      return { loss: out.loss.dataSync()[0]!, sigma: Array.from(out.sigma.dataSync()), tau: out.tau };
    });
    assert.equal(usedTau, tau);
    const want = losses.reduce((a, l) => a + superLossValue(l, tau, lambda), 0) / losses.length;
    assert.ok(Math.abs(loss - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${loss} vs ${want}`);
    losses.forEach((l, i) => assert.ok(relErr(sigma[i]!, optimalConfidence(l, tau, lambda)) <= 1e-5));
  });

  test('envelope theorem: d loss / dℓ_i = σ*_i / batch (tf.grads and float64 finite differences)', () => {
    const sl = superLoss({ lambda, tau });
    const B = losses.length;
    const [grad, sigma] = tf.tidy(() => {
      const x = tf.tensor1d(losses);
      const g = tf.grads((l: tf.Tensor) => sl.compute(l as tf.Tensor1D).loss)([x])[0]!;
      return [Array.from(g.dataSync()), Array.from(sl.compute(x).sigma.dataSync())];
    });
    const h = 1e-6;
    losses.forEach((l, i) => {
      assert.ok(relErr(grad[i]!, sigma[i]! / B) <= 1e-5, `grad ${grad[i]} vs σ/B ${sigma[i]! / B}`);
      // Numeric derivative of the full float64 L*(ℓ) = L(ℓ, σ*(ℓ)) (σ* moves with ℓ here).
      const fd = (superLossValue(l + h, tau, lambda) - superLossValue(l - h, tau, lambda)) / (2 * h);
      assert.ok(Math.abs(fd - optimalConfidence(l, tau, lambda)) <= 1e-6, `fd ${fd} vs σ* at ℓ=${l}`);
      assert.ok(relErr(grad[i]! * B, fd) <= 1e-5, `tensor grad·B ${grad[i]! * B} vs fd ${fd}`);
    });
  });

  test("envelope gradient also holds with tau 'ema' inside tf.variableGrads", () => {
    const sl = superLoss({ tau: 'ema', lambda });
    const v = tf.variable(tf.tensor1d(losses));
    const [grad, sigma] = tf.tidy(() => {
      let kept: tf.Tensor1D | null = null;
      const { grads } = tf.variableGrads(() => {
        const out = sl.compute(tf.mul(v, 1) as tf.Tensor1D);
        kept = tf.keep(out.sigma);
        return out.loss;
      });
      const s = Array.from(kept!.dataSync());
      tf.dispose(kept!);
      return [Array.from(grads[v.name]!.dataSync()), s];
    });
    const mean = losses.reduce((a, b) => a + b, 0) / losses.length;
    assert.ok(Math.abs(sl.tau! - mean) < 1e-5);
    losses.forEach((l, i) => {
      assert.ok(relErr(sigma[i]!, optimalConfidence(l, sl.tau!, lambda)) <= 1e-5);
      assert.ok(relErr(grad[i]!, sigma[i]! / losses.length) <= 1e-5);
    });
    v.dispose();
  });

  test('σ carries no gradient', () => {
    const g = tf.tidy(() => {
      const x = tf.tensor1d(losses);
      return Array.from(tf.grad((l: tf.Tensor) => tf.sum(optimalConfidenceTensor(l, tau, lambda)))(x).dataSync());
    });
    for (const v of g) assert.equal(v, 0);
    // Standalone call: exactly one new tensor (also for a non-float input that needs a cast).
    const x = tf.tensor1d([1, 2, 3], 'int32');
    const before = tf.memory().numTensors;
    const s = optimalConfidenceTensor(x, 2, 1);
    assert.equal(tf.memory().numTensors, before + 1);
    assert.ok(Math.abs(s.dataSync()[1]! - 1) < 1e-6);
    tf.dispose([x, s]);
  });

  test("tau 'log' = log C; default tau is 'log' with numClasses, 'ema' without", () => {
    const sl = superLoss({ tau: 'log', numClasses: 10 });
    assert.equal(sl.tau, Math.log(10));
    assert.equal(sl.getState().tauMode, 'log');
    const out = tf.tidy(() => sl.compute(tf.tensor1d([1, 2, 3])).tau);
    assert.equal(out, Math.log(10));
    assert.equal(superLoss({ numClasses: 100 }).tau, Math.log(100));
    assert.equal(superLoss({}).tauMode, 'ema');
    assert.equal(superLoss({}).lambda, 1);
    assert.throws(() => superLoss({ tau: 'log' }));
    assert.throws(() => superLoss({ lambda: 0 }));
    assert.throws(() => superLoss({ emaMomentum: 1 }));
    assert.throws(() => superLoss({ numClasses: 1 }));
  });

  test("tau 'ema': first batch initialises, then τ ← m·τ + (1 − m)·mean; eval does not update", () => {
    const sl = superLoss({ tau: 'ema', emaMomentum: 0.9, lambda: 1 });
    const run = (b: number[], update?: boolean): number =>
      tf.tidy(() => sl.compute(tf.tensor1d(b), update === undefined ? {} : { update }).tau);
    // Eval before any training batch: uses the batch mean, stores nothing.
    assert.equal(run([1, 3], false), 2);
    assert.equal(sl.tau, null);

    const batches = [[2, 4], [10, 10, 10, 10], [0, 1, 2], [5]];
    const means = [3, 10, 1, 5];
    let hand = means[0]!;
    const expected = [hand];
    for (let k = 1; k < means.length; k++) {
      hand = 0.9 * hand + 0.1 * means[k]!;
      expected.push(hand);
    }
    batches.forEach((b, k) => {
      const used = run(b);
      assert.ok(Math.abs(used - expected[k]!) < 1e-12, `step ${k}: ${used} vs ${expected[k]}`);
    });
    assert.equal(sl.getState().updates, 4);

    // Evaluation: the flag and the per-call option both leave τ unchanged.
    const t = sl.tau!;
    sl.training = false;
    assert.equal(run([100, 200]), t);
    sl.training = true;
    assert.equal(run([100, 200], false), t);
    assert.equal(sl.tau, t);

    // Checkpoint: a restored copy continues identically.
    const state = JSON.parse(JSON.stringify(sl.getState()));
    const copy = new SuperLoss({ tau: 'ema' });
    copy.setState(state);
    const a = run([7, 8]);
    const b = tf.tidy(() => copy.compute(tf.tensor1d([7, 8])).tau);
    assert.equal(a, b);
    assert.ok(Math.abs(a - (0.9 * t + 0.1 * 7.5)) < 1e-12);
    assert.throws(() => copy.setState({ tauMode: 'log', tau: 1, updates: 0 }));
    assert.throws(() => superLoss({ tau: 1 }).setState({ tauMode: 'fixed', tau: 2, updates: 0 }));
    copy.reset();
    assert.equal(copy.tau, null);
  });

  test('tensor count is flat over 200 compute calls inside tf.tidy; outside, exactly loss + sigma', () => {
    for (const opts of [{ tau: Math.log(10) }, { tau: 'ema' as const }]) {
      const sl = superLoss({ ...opts, lambda: 0.5 });
      const rng = new Rng(3);
      const x = tf.tensor1d(Array.from({ length: 32 }, () => 5 * rng.next()));
      tf.tidy(() => sl.compute(x)); // warm-up
      const before = tf.memory().numTensors;
      for (let i = 0; i < 200; i++) {
        tf.tidy(() => {
          const { loss, sigma } = sl.compute(x);
          loss.dataSync();
          sigma.dataSync();
        });
      }
      assert.equal(tf.memory().numTensors, before);
      const out = sl.compute(x);
      assert.equal(tf.memory().numTensors, before + 2);
      tf.dispose([out.loss, out.sigma, x]);
    }
  });

  test('rejects non rank-1 input and empty batches', () => {
    const sl = superLoss({ tau: 1 });
    const m = tf.zeros([2, 2]);
    assert.throws(() => sl.compute(m as unknown as tf.Tensor1D));
    const e = tf.zeros([0]) as tf.Tensor1D;
    assert.throws(() => sl.compute(e));
    tf.dispose([m, e]);
  });
});

describe('per-sample base losses', () => {
  test('crossEntropyPerSample: int labels = one-hot = manual', () => {
    const logits = [[1, 2, 0.5], [0, 0, 0], [-3, 4, 1]];
    const labels = [1, 2, 0];
    const [a, b] = tf.tidy(() => {
      const lg = tf.tensor2d(logits);
      return [
        Array.from(crossEntropyPerSample(lg, tf.tensor1d(labels, 'int32')).dataSync()),
        Array.from(crossEntropyPerSample(lg, tf.oneHot(tf.tensor1d(labels, 'int32'), 3) as tf.Tensor2D).dataSync()),
      ];
    });
    logits.forEach((row, i) => {
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      const want = lse - row[labels[i]!]!;
      assert.ok(Math.abs(a[i]! - want) < 1e-5);
      assert.ok(Math.abs(b[i]! - want) < 1e-5);
    });
    assert.ok(Math.abs(a[1]! - Math.log(3)) < 1e-6);
  });

  test('l1 / l2 / smoothL1: values and shape [batch]', () => {
    const out = tf.tidy(() => {
      const p = tf.tensor2d([[0, 0], [1, 3]]);
      const t = tf.tensor2d([[0.5, -2], [1, 0]]);
      const l1 = l1PerSample(p, t);
      const l2 = l2PerSample(p, t);
      const sm = smoothL1PerSample(p, t);
      const sm0 = smoothL1PerSample(p, t, 0);
      const v = l1PerSample(tf.tensor1d([1, -2]), tf.tensor1d([0, 0]));
      assert.deepEqual(l1.shape, [2]);
      assert.deepEqual(v.shape, [2]);
      return [l1, l2, sm, sm0, v].map((x) => Array.from(x.dataSync()));
    });
    const close = (a: number[], b: number[]): void => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) < 1e-6, `${a} vs ${b}`));
    close(out[0]!, [(0.5 + 2) / 2, 3 / 2]);
    close(out[1]!, [(0.25 + 4) / 2, 9 / 2]);
    close(out[2]!, [(0.125 + 1.5) / 2, 2.5 / 2]);
    close(out[3]!, out[0]!);
    close(out[4]!, [1, 2]);
    assert.throws(() => l1PerSample(tf.zeros([2]), tf.zeros([3])));
  });
});

describe('training demo (tf.variableGrads, linear softmax model, 25% flipped labels)', () => {
  test('SuperLoss decreases, model learns the clean rule, noisy samples get lower σ', () => {
    const rng = new Rng(42);
    const N = 300;
    const C = 3;
    const centers = [[2, 0], [-1, 1.7], [-1, -1.7]];
    const xs: number[][] = [];
    const yTrue: number[] = [];
    const yNoisy: number[] = [];
    const noisy: boolean[] = [];
    for (let i = 0; i < N; i++) {
      const c = i % C;
      xs.push([centers[c]![0]! + 0.6 * rng.normal(), centers[c]![1]! + 0.6 * rng.normal()]);
      yTrue.push(c);
      const flip = rng.next() < 0.25;
      noisy.push(flip);
      yNoisy.push(flip ? (c + 1 + rng.int(C - 1)) % C : c);
    }
    const X = tf.tensor2d(xs);
    const Y = tf.tensor1d(yNoisy, 'int32');
    const W = tf.variable(tf.zeros([2, C]));
    const b = tf.variable(tf.zeros([C]));
    const sl = superLoss({ tau: 'log', numClasses: C, lambda: 0.5 });
    const lr = 0.5;
    const history: number[] = [];
    for (let step = 0; step < 80; step++) {
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => {
          const logits = tf.add(tf.matMul(X, W), b) as tf.Tensor2D;
          return sl.compute(crossEntropyPerSample(logits, Y)).loss;
        });
        history.push(value.dataSync()[0]!);
        W.assign(tf.sub(W, tf.mul(grads[W.name]!, lr)));
        b.assign(tf.sub(b, tf.mul(grads[b.name]!, lr)));
      });
    }
    const [pred, sigma] = tf.tidy(() => {
      const logits = tf.add(tf.matMul(X, W), b) as tf.Tensor2D;
      const out = sl.compute(crossEntropyPerSample(logits, Y));
      return [Array.from(tf.argMax(logits, 1).dataSync()), Array.from(out.sigma.dataSync())];
    });
    assert.ok(history.every(Number.isFinite));
    assert.ok(history[history.length - 1]! < history[0]! - 0.1, `loss ${history[0]} → ${history[history.length - 1]}`);
    const acc = pred.filter((p, i) => p === yTrue[i]).length / N;
    assert.ok(acc > 0.9, `clean accuracy ${acc}`);
    const mean = (f: (i: number) => boolean): number => {
      const idx = sigma.map((_, i) => i).filter(f);
      return idx.reduce((s, i) => s + sigma[i]!, 0) / idx.length;
    };
    const sClean = mean((i) => !noisy[i]);
    const sNoisy = mean((i) => noisy[i]!);
    assert.ok(sNoisy < 1 && sClean > 1 && sNoisy < sClean, `mean σ clean ${sClean}, noisy ${sNoisy}`);
    tf.dispose([X, Y, W, b]);
  });
});

test('smoothL1PerSample is differentiable (gradient = clip(d/β, −1, 1)/n)', async () => {
  const { smoothL1PerSample: sl1 } = await import('../src/methods/superloss/index.js');
  const tfm = await import('@tensorflow/tfjs');
  const pred = tfm.tensor2d([[0.2], [3], [-2]]);
  const target = tfm.zeros([3, 1]);
  const g = tfm.grad((p: import('@tensorflow/tfjs').Tensor) => tfm.sum(sl1(p, target, 1)))(pred);
  const v = Array.from(g.dataSync());
  [0.2, 1, -1].forEach((e, i) => assert.ok(Math.abs(v[i] - e) < 1e-6, `grad ${i}: ${v[i]} vs ${e}`));
  const val = Array.from(sl1(pred, target, 1).dataSync());
  [0.02, 2.5, 1.5].forEach((e, i) => assert.ok(Math.abs(val[i] - e) < 1e-6));
});
