/**
 * `efftrain bench structured-ffn`: speed of structured FFN layers on the current backend, in one process.
 *
 * 1. `ffn/<layer>`: forward + backward (gradients for the weights and the input) of one FFN block
 *    y = fc2(gelu(fc1(x))), width 256, d_ff 1024, 1024 tokens, for dense and each structured map at
 *    ≈31% of the dense FFN weights (LowRank r=64, BlockDense b=2 r=86, BlockShuffle b=4).
 * 2. `decode/<layer>/<tokens>/{structured,merged}`: forward latency of the same block for 1…256 token rows
 *    (a decoding batch), through the structured factors and through the pre-merged dense matrices.
 *    The smallest token count where the factors win is reported as the crossover (`mergeCrossover`); a
 *    `mergeThreshold` (merge calls of ≤ n tokens) belongs below it — see `defaultMergeThreshold`.
 * 3. `lm/<method>`: training-step throughput (tokens/s) of the structured-ffn experiment's default model
 *    (2 layers, d=64, d_ff=256, batch 16 × 64 tokens) for dense, lowrank-32 and lowrank-32 + SGT guide.
 *
 * Variants are timed in interleaved rounds and each case reports the median over rounds, which keeps the
 * comparison fair when other processes share the CPU.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../engine/rng.js';
import { DenseFfn, type Ffn } from '../models/ffn.js';
import { TransformerLM } from '../models/transformer.js';
import { StructuredFfn, structureForShare, type StructuredFfnSpec } from '../methods/structured-ffn/ffn.js';
import type { StructuredMap } from '../methods/structured-ffn/layers.js';
import { AdamW } from '../train/optimizers.js';
import { Trainer } from '../train/trainer.js';
import { interleaved, randTensor } from './timing.js';
import type { Bench, BenchCase, BenchResult } from './types.js';

export interface StructuredFfnBenchSizes {
  width: number;
  dFf: number;
  tokens: number;
  decodeTokens: number[];
  /** Include the `lm/*` training-throughput cases. */
  lm: boolean;
}

const DEFAULT_SIZES: StructuredFfnBenchSizes = { width: 256, dFf: 1024, tokens: 1024, decodeTokens: [1, 4, 16, 64, 256], lm: true };
const SHARE = 0.3125; // 5/16: LowRank r = d/4 and BlockShuffle b = 4 exactly at f = 4d
const MAPS: StructuredMap[] = ['lowrank', 'blockdense', 'blockshuffle'];



function makeFfn(name: string, d: number, f: number): Ffn {
  if (name === 'dense') return new DenseFfn(d, f, new Rng(1), 0.02);
  const map = name.split('-')[0] as StructuredMap;
  const spec: StructuredFfnSpec = { kind: 'structured', ...structureForShare(map, SHARE, d, f, 2) };
  return new StructuredFfn(spec, d, f, 1, 0.02);
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 1 ? 3 : 1) : '-');

export const structuredFfnBench: Bench = {
  name: 'structured-ffn',
  description: 'FFN block forward+backward (dense vs LowRank/BlockDense/BlockShuffle at ~32%), decode latency structured vs pre-merged, LM tokens/s',
  async run(opts: { quick: boolean; log: (line: string) => void; sizes?: Partial<StructuredFfnBenchSizes> }): Promise<BenchResult> {
    const { quick, log } = opts;
    const sz: StructuredFfnBenchSizes = { ...DEFAULT_SIZES, ...(opts.sizes ?? {}) };
    if (opts.sizes && opts.sizes.lm === undefined) sz.lm = false;
    const { width: d, dFf: f, tokens } = sz;
    const cases: BenchCase[] = [];
    log(`structured-ffn bench (${quick ? 'quick' : 'full'}): backend ${tf.getBackend()}, width ${d}, d_ff ${f}, ${tokens} tokens, share ${SHARE}`);

    // 1. Forward + backward of one FFN block.
    const names = ['dense', ...MAPS.map((m) => `${m}-32`)];
    const ffns = names.map((n) => makeFfn(n, d, f));
    const xVar = tf.variable(randTensor([tokens, d], 3), true);
    const gOut = randTensor([tokens, d], 4);
    const steps = ffns.map((ffn) => {
      const vars = [xVar, ...ffn.variables().map((v) => v.variable)];
      return () => {
        const r = tf.tidy(() => {
          const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(ffn.apply(xVar as tf.Tensor2D, { training: true, rng: null }), gOut)) as tf.Scalar, vars);
          // Reading one value of each gradient forces completion.
          return tf.addN([value, ...Object.values(grads).map((g) => tf.sum(tf.slice(tf.reshape(g, [-1]), [0], [1])))]);
        });
        r.dataSync();
        r.dispose();
      };
    });
    const ffnMs = interleaved(steps, quick ? 3 : 7, quick ? 1 : 3, 2);
    names.forEach((n, i) => {
      const weights = ffns[i].weightCount();
      const macs = tokens * weights;
      cases.push({ name: `ffn/${n}`, msPerStep: ffnMs[i], gflops: (6 * macs) / (ffnMs[i] * 1e6), weights, share: weights / (2 * d * f), spec: ffns[i].spec() });
    });
    const denseMs = ffnMs[0];
    log(`${'case'.padEnd(34)} ${'ms'.padStart(9)} ${'speedup'.padStart(8)}  weights`);
    for (const c of cases) log(`${c.name.padEnd(34)} ${fmt(c.msPerStep).padStart(9)} ${(denseMs / c.msPerStep).toFixed(2).padStart(7)}x  ${String(c.weights)} (${(100 * Number(c.share)).toFixed(1)}%)`);

    // 2. Decode latency: structured factors vs pre-merged dense matrices.
    const crossover: Record<string, number | null> = {};
    for (let mi = 0; mi < MAPS.length; mi++) {
      const ffn = ffns[mi + 1] as StructuredFfn;
      const label = `${MAPS[mi]}-32`;
      ffn.merge(0);
      let firstStructuredWin: number | null = null;
      for (const T of sz.decodeTokens) {
        const x = randTensor([T, d], 10 + T);
        const run = (threshold: number) => () => {
          ffn.fc1.mergeThreshold = threshold;
          ffn.fc2.mergeThreshold = threshold;
          const y = ffn.apply(x as tf.Tensor2D, { training: false, rng: null });
          y.dataSync();
          y.dispose();
        };
        const calls = Math.max(1, Math.min(quick ? 4 : 20, Math.round(4096 / T)));
        const [sMs, mMs] = interleaved([run(0), run(Number.MAX_SAFE_INTEGER)], quick ? 3 : 7, calls, 2);
        x.dispose();
        cases.push({ name: `decode/${label}/${T}/structured`, msPerStep: sMs, tokens: T, msPerToken: sMs / T });
        cases.push({ name: `decode/${label}/${T}/merged`, msPerStep: mMs, tokens: T, msPerToken: mMs / T });
        if (firstStructuredWin === null && sMs < mMs) firstStructuredWin = T;
        log(`decode/${label}/${String(T).padEnd(4)} structured ${fmt(sMs).padStart(7)} ms  merged ${fmt(mMs).padStart(7)} ms  (${sMs < mMs ? 'structured' : 'merged'} wins)`);
      }
      crossover[label] = firstStructuredWin;
      ffn.unmerge();
    }
    for (const ffn of ffns) ffn.dispose();
    tf.dispose([xVar, gOut]);

    // 3. Training throughput of the experiment's default LM.
    const lm: Record<string, number> = {};
    if (sz.lm) {
      const lmCases: [string, StructuredFfnSpec | { kind: 'dense' }][] = [
        ['dense', { kind: 'dense' }],
        ['lowrank-32', { kind: 'structured', map: 'lowrank', rank: 16 }],
        ['lowrank-32-sgt-guided', { kind: 'structured', map: 'lowrank', rank: 16, guide: true }],
      ];
      const B = 16;
      const T = 64;
      const rng = new Rng(5);
      const x = tf.tensor2d(Int32Array.from({ length: B * T }, () => rng.int(80)), [B, T], 'int32');
      const y = tf.tensor2d(Int32Array.from({ length: B * T }, () => rng.int(80)), [B, T], 'int32');
      const setups = lmCases.map(([, ffn]) => {
        const model = new TransformerLM({ vocabSize: 80, contextLength: T, dModel: 64, nHeads: 4, nLayers: 2, dFf: 256, ffn }, 1);
        const trainer = new Trainer({ params: model.variables(), optimizer: new AdamW({ weightDecay: 0.1 }), clipNorm: 1 });
        // Guided arm: α = 1 and the guide always used (the most expensive SGT step).
        const ctx = { training: true, rng: new Rng(1), guideAlpha: ffn.kind === 'structured' && (ffn as StructuredFfnSpec).guide ? 1 : 0 };
        return { model, trainer, step: () => void trainer.trainStep(() => model.loss(x, y, ctx)) };
      });
      const ms = interleaved(
        setups.map((s) => s.step),
        quick ? 2 : 5,
        quick ? 1 : 3,
        2,
      );
      lmCases.forEach(([name], i) => {
        const tps = (B * T * 1000) / ms[i];
        lm[name] = tps;
        cases.push({ name: `lm/${name}`, msPerStep: ms[i], tokensPerSecond: tps, macsPerToken: setups[i].model.macsPerToken() });
        log(`lm/${name.padEnd(22)} ${fmt(ms[i]).padStart(8)} ms/step  ${tps.toFixed(0)} tokens/s`);
      });
      for (const s of setups) {
        s.model.dispose();
        s.trainer.optimizer.dispose();
      }
      tf.dispose([x, y]);
    }

    const speedup: Record<string, number> = {};
    for (const c of cases.filter((c) => c.name.startsWith('ffn/') && c.name !== 'ffn/dense')) speedup[`${c.name} vs ffn/dense`] = Number((denseMs / c.msPerStep).toFixed(2));
    for (const [k, v] of Object.entries(speedup)) log(`speedup ${k}: ${v}x`);
    const target = speedup['ffn/lowrank-32 vs ffn/dense'];
    log(`target ffn/lowrank-32 ≥ 2x faster than ffn/dense: ${target >= 2 ? 'met' : 'NOT met'} (${target}x)`);
    log(`crossover (smallest token count where the factors beat the pre-merged matrix; pre-merge below it): ${JSON.stringify(crossover)}`);
    return {
      cases,
      speedup,
      target: { case: 'ffn/lowrank-32 vs ffn/dense', required: 2, measured: target, met: target >= 2 },
      mergeCrossover: crossover,
      lmTokensPerSecond: lm,
      sizes: sz,
      share: SHARE,
      quick,
    };
  },
};
