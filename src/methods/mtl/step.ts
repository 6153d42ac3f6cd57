import * as tf from '@tensorflow/tfjs';
import { UserError } from '../../errors.js';
import type { GradFn } from '../../train/trainer.js';
import { closedFormSaliency, taskLoss, type HeadForward, type MultiTaskNet } from './model.js';
import { repMtlRegularizer, type RepMtlOptions } from './rep-mtl.js';
import type { GradOutput, GradWeighting, Weighting, WeightingContext } from './types.js';

/**
 * One batch of a multi-task problem. Single-input MTL (all tasks label the same images) has one input;
 * multi-input MTL (each task its own images, e.g. visual domains) has one input per task.
 */
export interface MtlBatch {
  inputs: tf.Tensor4D[];
  /** Per task: int32 labels [B] (`softmax-ce`) or float targets [B, K] (`mse`). */
  targets: tf.Tensor[];
}

/** What a step reports besides the scalar loss. */
export interface MtlStepInfo {
  /** Raw task losses L_t. */
  losses: number[];
  tsr: number | null;
  csa: number | null;
}

/** Everything the multi-task step needs. `params` = net.params() followed by weighting.variables. */
export interface MtlStepSetup {
  net: MultiTaskNet;
  weighting: Weighting;
  rep: RepMtlOptions | null;
}

/** The trainer's parameter list for a net and weighting: shared, heads (task order), weighting variables. */
export function mtlParams(net: MultiTaskNet, weighting: Weighting): tf.Variable[] {
  return [...net.params(), ...(weighting.variables ?? [])];
}

const inputOf = (batch: MtlBatch, t: number) => batch.inputs[batch.inputs.length === 1 ? 0 : t];

/** A detached copy of a head's parameters (no gradient reaches the head through it). */
function detachedHead(net: MultiTaskNet, t: number): tf.Tensor[] {
  return net.headVars(t).map((v) => tf.tensor(v.dataSync(), v.shape, 'float32'));
}

/**
 * Task saliencies S_t = ∂L_t/∂Z_t (or ∂ log L_t/∂Z_t) from a forward pass, differentiable w.r.t. Z and (unless
 * `headGrad` is off) the heads, in closed form (see model.ts for why not nested tf.grad). `scale` multiplies them (B = the saliency of
 * the summed per-sample loss, which the regularisers use; they are invariant to a common scale).
 */
export function taskSaliencies(net: MultiTaskNet, zs: tf.Tensor[], fwds: HeadForward[], targets: tf.Tensor[], losses: tf.Scalar[], o: Pick<RepMtlOptions, 'saliencyLoss' | 'headGrad'>, scale = 1): tf.Tensor[] {
  return net.tasks.map((task, t) => {
    const params = o.headGrad ? undefined : detachedHead(net, t);
    const f = params ? net.head(t, zs[t], params) : fwds[t];
    let s = closedFormSaliency(net, t, zs[t], f, targets[t], params, scale);
    if (o.saliencyLoss === 'log') s = tf.div(s, params ? taskLoss(task, f.logits, targets[t]) : losses[t]);
    return s;
  });
}

/** The Rep-MTL term on a forward pass; also writes its parts into `info`. */
function repTerm(net: MultiTaskNet, zs: tf.Tensor[], fwds: HeadForward[], targets: tf.Tensor[], losses: tf.Scalar[], rep: RepMtlOptions, info: MtlStepInfo): tf.Scalar {
  const sal = taskSaliencies(net, zs, fwds, targets, losses, rep, zs[0].shape[0]);
  const r = repMtlRegularizer(sal, rep);
  info.tsr = r.tsr ? r.tsr.dataSync()[0] : null;
  info.csa = r.csa ? r.csa.dataSync()[0] : null;
  return r.total;
}

/** Forward of every task: Z per input (shared input → one Z), head outputs and losses. */
export function forwardAll(net: MultiTaskNet, batch: MtlBatch): { zs: tf.Tensor4D[]; fwds: HeadForward[]; losses: tf.Scalar[] } {
  const zIn = batch.inputs.map((x) => net.encode(x));
  const zs = net.tasks.map((_, t) => zIn[zIn.length === 1 ? 0 : t]);
  const fwds = net.tasks.map((_, t) => net.head(t, zs[t]));
  const losses = net.tasks.map((task, t) => taskLoss(task, fwds[t].logits, batch.targets[t]));
  return { zs, fwds, losses };
}

/** Raw task losses on a batch (no gradients), e.g. FAMO's loss after the update. */
export function batchLosses(net: MultiTaskNet, batch: MtlBatch): number[] {
  return tf.tidy(() => Array.from(tf.stack(forwardAll(net, batch).losses).dataSync()));
}

/**
 * The multi-task gradient function for `Trainer.trainStepWith`:
 * - loss weightings: one tape over weighting(L_1..L_T) [+ λ·Rep-MTL], one backward;
 * - gradient weightings (shared parameters): one backward per task (each task's loss, optionally transformed),
 *   the shared gradients flattened to G [T, P], combined by the weighting; heads get their own
 *   (task-weighted) loss gradients; [+ one backward of the Rep-MTL term, added to every parameter];
 * - gradient weightings on the representation (MGDA-UB): one encoder forward, per-task ∂L_t/∂Z through the heads
 *   only, the combination dZ backpropagated through the encoder once (single-input MTL only).
 * The returned value is Σ_t L_t (raw) + the Rep-MTL term, so epochs of different weightings compare.
 */
export function mtlGradFn(setup: MtlStepSetup, batch: MtlBatch, ctx: WeightingContext, info: MtlStepInfo): GradFn {
  const { net, weighting, rep } = setup;
  return (params) => {
    info.tsr = null;
    info.csa = null;
    let named: Record<string, tf.Tensor>;
    let value: tf.Scalar;
    if (weighting.kind === 'loss') {
      const r = tf.variableGrads(() => {
        const { zs, fwds, losses } = forwardAll(net, batch);
        info.losses = Array.from(tf.stack(losses).dataSync());
        let total = weighting.combine(losses, ctx);
        if (rep) total = tf.add(total, repTerm(net, zs, fwds, batch.targets, losses, rep, info));
        return total;
      }, params);
      named = r.grads;
      // Report Σ L_t (+ regulariser) rather than the weighting's own objective (FAMO's log objective, UW's s_t terms).
      const regTerm = rep ? (rep.tsr ? rep.lambdaTsr * (info.tsr ?? 0) : 0) + (rep.csa ? rep.lambdaCsa * (info.csa ?? 0) : 0) : 0;
      const v = r.value.dataSync()[0];
      value = tf.scalar(Number.isFinite(v) ? info.losses.reduce((a, b) => a + b, 0) + regTerm : v);
    } else {
      named = weighting.space === 'rep' ? repSpaceGrads(setup, weighting, batch, ctx, info) : paramSpaceGrads(setup, weighting, batch, ctx, info);
      let total = info.losses.reduce((a, b) => a + b, 0);
      if (rep) {
        const modelParams = net.params();
        const r = tf.variableGrads(() => {
          const { zs, fwds, losses } = forwardAll(net, batch);
          return repTerm(net, zs, fwds, batch.targets, losses, rep, info);
        }, modelParams);
        for (const p of modelParams) {
          const g = r.grads[p.name];
          if (g) named[p.name] = named[p.name] ? tf.add(named[p.name], g) : g;
        }
        total += r.value.dataSync()[0];
      }
      value = tf.scalar(total);
    }
    return { value, grads: params.map((p) => named[p.name] ?? tf.zerosLike(p)) };
  };
}

function applyCombination(out: GradOutput, G: tf.Tensor2D, T: number): tf.Tensor1D {
  let d: tf.Tensor1D;
  if (out.direction) d = out.direction;
  else if (out.weights) d = tf.reshape(tf.matMul(tf.tensor2d(out.weights, [1, T]), G), [-1]) as tf.Tensor1D;
  else throw new Error('weighting returned neither weights nor a direction');
  if (out.maxNorm && out.maxNorm > 0) {
    const n = tf.norm(d).dataSync()[0];
    if (n > out.maxNorm) d = tf.mul(d, out.maxNorm / n) as tf.Tensor1D;
  }
  return d;
}

function gramOf(G: tf.Tensor2D): number[][] {
  return tf.matMul(G, G, false, true).arraySync() as number[][];
}

function paramSpaceGrads(setup: MtlStepSetup, w: GradWeighting, batch: MtlBatch, ctx: WeightingContext, info: MtlStepInfo): Record<string, tf.Tensor> {
  const { net } = setup;
  const T = net.numTasks;
  const shared = net.encoderVars;
  const wvars = w.variables ?? [];
  const losses: number[] = new Array(T).fill(0);
  const per = net.tasks.map((task, t) =>
    tf.variableGrads(() => {
      const z = net.encode(inputOf(batch, t));
      const l = taskLoss(task, net.head(t, z).logits, batch.targets[t]);
      losses[t] = l.dataSync()[0];
      return w.transformLoss ? w.transformLoss(l, t, ctx) : l;
    }, [...shared, ...net.headVars(t), ...wvars]).grads,
  );
  info.losses = losses;
  const G = tf.stack(per.map((g) => tf.concat(shared.map((v) => tf.reshape(g[v.name] ?? tf.zerosLike(v), [-1]))))) as tf.Tensor2D;
  const out = w.combine({ grads: G, gram: gramOf(G), losses, space: 'param' }, ctx);
  const d = applyCombination(out, G, T);
  const named: Record<string, tf.Tensor> = {};
  let off = 0;
  for (const v of shared) {
    named[v.name] = tf.reshape(tf.slice(d, off, v.size), v.shape);
    off += v.size;
  }
  net.tasks.forEach((_, t) => {
    const s = out.taskWeights?.[t] ?? 1;
    for (const v of net.headVars(t)) if (per[t][v.name]) named[v.name] = s === 1 ? per[t][v.name] : tf.mul(per[t][v.name], s);
  });
  wvars.forEach((v, i) => {
    const parts = per.map((g) => g[v.name]).filter(Boolean);
    if (out.variableGrads?.[i]) parts.push(out.variableGrads[i]);
    if (parts.length) named[v.name] = tf.addN(parts);
  });
  return named;
}

function repSpaceGrads(setup: MtlStepSetup, w: GradWeighting, batch: MtlBatch, ctx: WeightingContext, info: MtlStepInfo): Record<string, tf.Tensor> {
  const { net } = setup;
  const T = net.numTasks;
  if (batch.inputs.length !== 1) {
    throw new UserError(`${w.name}: gradients w.r.t. the shared representation need single-input MTL (every task on the same images); with one input per task the encoder would get no update (LibMTL #83)`);
  }
  const x = batch.inputs[0];
  const z = net.encode(x); // no tape: a constant for the head passes
  const losses: number[] = new Array(T).fill(0);
  const sal = net.tasks.map((task, t) =>
    tf.grad((zz: tf.Tensor) => {
      const l = taskLoss(task, net.head(t, zz).logits, batch.targets[t]);
      losses[t] = l.dataSync()[0];
      return w.transformLoss ? w.transformLoss(l, t, ctx) : l;
    })(z),
  );
  info.losses = losses;
  const G = tf.stack(sal.map((s) => tf.reshape(s, [-1]))) as tf.Tensor2D;
  const out = w.combine({ grads: G, gram: gramOf(G), losses, space: 'rep' }, ctx);
  const dZ = tf.reshape(applyCombination(out, G, T), z.shape);
  const headAndW = [...net.heads.flatMap((_, t) => net.headVars(t)), ...(w.variables ?? [])];
  const hg = tf.variableGrads(() => {
    const parts = net.tasks.map((task, t) => {
      let l = taskLoss(task, net.head(t, z).logits, batch.targets[t]);
      if (w.transformLoss) l = w.transformLoss(l, t, ctx);
      const s = out.taskWeights?.[t] ?? 1;
      return s === 1 ? l : tf.mul(l, s);
    });
    return tf.addN(parts) as tf.Scalar;
  }, headAndW).grads;
  const eg = tf.variableGrads(() => tf.sum(tf.mul(net.encode(x), dZ)) as tf.Scalar, net.encoderVars).grads;
  const named: Record<string, tf.Tensor> = { ...hg, ...eg };
  (w.variables ?? []).forEach((v, i) => {
    const g = out.variableGrads?.[i];
    if (g) named[v.name] = named[v.name] ? tf.add(named[v.name], g) : g;
  });
  return named;
}
