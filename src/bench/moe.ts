/**
 * `efftrain bench moe`: forward + backward (gradients for the weights and the input, training mode with the
 * auxiliary losses) of one MoE FFN block — E = 8 experts of hidden h = d, top-2, capacity factor 1.25,
 * 1024 tokens, width d ∈ {64, 128} — for each router, against the dense FFN with the same active weights
 * (d_ff = k·h) and with the same total weights (d_ff = E·h), in one process. The `compete` router is timed
 * on a routed step and on a competition step (all E experts on all tokens) separately.
 *
 * Cases are timed in interleaved rounds and report the median over rounds (fair under CPU contention).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../engine/rng.js';
import { DenseFfn, type Ffn, type FfnContext } from '../models/ffn.js';
import { MoeFfn, type MoeFfnSpec } from '../methods/compete-smoe/index.js';
import { interleaved, randTensor } from './timing.js';
import type { Bench, BenchCase, BenchResult } from './types.js';

const E = 8;
const K = 2;




interface Variant {
  name: string;
  ffn: Ffn;
  /** Forces the compete router onto a competition step (prob 1) or a routed step (prob 0). */
  compete?: boolean;
}

function variants(d: number): Variant[] {
  const moe = (router: MoeFfnSpec['router']) => new MoeFfn({ kind: 'moe', experts: E, topK: K, expertHidden: d, capacityFactor: 1.25, router }, d, d, 1, 0.02);
  return [
    { name: 'dense-active', ffn: new DenseFfn(d, K * d, new Rng(1), 0.02) },
    { name: 'dense-total', ffn: new DenseFfn(d, E * d, new Rng(1), 0.02) },
    { name: 'topk', ffn: moe({ type: 'topk' }) },
    { name: 'xmoe', ffn: moe({ type: 'xmoe' }) },
    { name: 'smoe-dropout', ffn: moe({ type: 'smoe-dropout' }) },
    { name: 'compete/routed-step', ffn: moe({ type: 'compete', prob: 0 }), compete: false },
    { name: 'compete/competition-step', ffn: moe({ type: 'compete', prob: 1 }), compete: true },
  ];
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 1 ? 3 : 2) : '-');

export const moeBench: Bench = {
  name: 'moe',
  description: 'MoE FFN block forward+backward per router (E=8, k=2, 1024 tokens, d 64/128) vs dense with the active/total weights; competition vs routed step',
  async run(opts: { quick: boolean; log: (line: string) => void; widths?: number[]; tokens?: number }): Promise<BenchResult> {
    const { quick, log } = opts;
    const widths = opts.widths ?? (quick ? [64] : [64, 128]);
    const tokens = opts.tokens ?? 1024;
    const cases: BenchCase[] = [];
    const ratios: Record<string, number> = {};
    log(`moe bench (${quick ? 'quick' : 'full'}): backend ${tf.getBackend()}, E=${E}, k=${K}, ${tokens} tokens, capacity factor 1.25, widths ${widths.join(', ')}`);
    for (const d of widths) {
      const vs = variants(d);
      const xVar = tf.variable(randTensor([tokens, d], 3), true);
      const gOut = randTensor([tokens, d], 4);
      const steps = vs.map((v) => {
        const vars = [xVar, ...v.ffn.variables().map((n) => n.variable)];
        const ctx: FfnContext = { training: true, rng: new Rng(2), stats: { extraMacsPerToken: 0 } };
        return () => {
          ctx.stats!.extraMacsPerToken = 0;
          const r = tf.tidy(() => {
            const { value, grads } = tf.variableGrads(() => {
              const aux: tf.Scalar[] = [];
              const y = v.ffn.apply(xVar as tf.Tensor2D, { ...ctx, addAuxLoss: (l) => aux.push(tf.keep(l)) });
              const out = tf.add(tf.sum(tf.mul(y, gOut)), aux.length ? tf.addN(aux) : 0) as tf.Scalar;
              tf.dispose(aux);
              return out;
            }, vars);
            return tf.addN([value, ...Object.values(grads).map((g) => tf.sum(tf.slice(tf.reshape(g, [-1]), [0], [1])))]);
          });
          r.dataSync();
          r.dispose();
          if (v.compete !== undefined && v.ffn instanceof MoeFfn && v.ffn.last.competed !== v.compete) throw new Error(`bench case ${v.name} did not take the intended path`);
        };
      });
      // One call to learn the MACs actually spent per token (capacity padding, competition).
      const spent = vs.map((v, i) => {
        steps[i]();
        const c: FfnContext = { training: true, rng: new Rng(2), stats: { extraMacsPerToken: 0 } };
        tf.dispose(tf.tidy(() => v.ffn.apply(xVar as tf.Tensor2D, c)));
        return v.ffn.macsPerToken() + c.stats!.extraMacsPerToken;
      });
      const ms = interleaved(steps, quick ? 3 : 7, quick ? 1 : 3, 1);
      const base = ms[0];
      log(`${'case'.padEnd(36)} ${'ms'.padStart(8)} ${'vs dense-active'.padStart(16)}  MACs/token spent`);
      vs.forEach((v, i) => {
        const name = `d${d}/${v.name}`;
        cases.push({ name, msPerStep: ms[i], gflops: (6 * tokens * spent[i]) / (ms[i] * 1e6), macsPerToken: spent[i], weights: v.ffn.weightCount() });
        ratios[`${name} / d${d}/dense-active`] = Number((ms[i] / base).toFixed(2));
        log(`${name.padEnd(36)} ${fmt(ms[i]).padStart(8)} ${(ms[i] / base).toFixed(2).padStart(15)}x  ${spent[i]}`);
      });
      const ci = vs.findIndex((v) => v.name === 'compete/competition-step');
      const ri = vs.findIndex((v) => v.name === 'compete/routed-step');
      ratios[`d${d}/competition-step / d${d}/routed-step`] = Number((ms[ci] / ms[ri]).toFixed(2));
      log(`d${d}: competition step / routed step = ${(ms[ci] / ms[ri]).toFixed(2)}x (MACs ratio ${(spent[ci] / spent[ri]).toFixed(2)}x)`);
      for (const v of vs) v.ffn.dispose();
      tf.dispose([xVar, gOut]);
    }
    return { cases, ratios, experts: E, topK: K, tokens, widths, quick };
  },
};
