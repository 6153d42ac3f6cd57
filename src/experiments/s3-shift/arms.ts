/**
 * Method names of `s3-shift` and the training recipe each one implies.
 *
 *   fp | s3-<3|4>bit[-noreg|-summed] | deepshift-ps-<3|4>bit      (what the quantised convs are)
 *   …[-radam|-sgd]                                                 (optimizer recipe, default Adam)
 *   …[-lrx<k>]                                                     (shift-layer latents train at k × lr)
 *
 * Recipes: Adam (default; `lr`, cosine, no weight decay unless `latentWeightDecay`); `-radam`: RAdam at the
 * same lr (Liu et al., ICLR 2020 — the optimizer the DeepShift README prescribes for DeepShift-PS); `-sgd`: the
 * official recipe of both S3 (`main.py`) and DeepShift (`cifar10.py`) — SGD momentum 0.9, lr `sgdLr` (0.1),
 * L2 weight decay `sgdWeightDecay` (1e-4) on every parameter, latents included; here with a cosine schedule
 * (S3's; DeepShift steps the lr). `-lrx<k>` is DeepShift's `--lr-sign` parameter group, applied to every
 * latent of the shift layers (PS: p̃ and s̃), e.g. `deepshift-ps-3bit-lrx10`.
 */
import type { ShiftCnnQuant } from '../../methods/s3/index.js';

export type S3MethodSpec = ShiftCnnQuant;

export interface S3Arm {
  /** The method name. */
  name: string;
  /** The name without optimizer / lr modifiers (e.g. `deepshift-ps-3bit` for `deepshift-ps-3bit-radam-lrx10`). */
  base: string;
  quant: ShiftCnnQuant;
  recipe: 'default' | 'radam' | 'sgd';
  /** LR multiplier of the shift-layer latents (1 = same lr as the rest). */
  latentLrMult: number;
}

const BASE = /^(fp|s3-([34])bit(?:-(noreg|summed))?|deepshift-ps-([34])bit)((?:-(?:radam|sgd))?)((?:-lrx(?:\d+(?:\.\d+)?))?)$/;

/** Parses a method name (see the module comment); throws on anything else. */
export function parseS3Arm(method: string): S3Arm {
  const m = BASE.exec(method);
  if (!m) throw new Error(`s3-shift: unknown method ${method} (patterns: fp | s3-<3|4>bit[-noreg|-summed] | deepshift-ps-<3|4>bit, then [-radam|-sgd][-lrx<k>])`);
  const base = m[1];
  const recipe = (m[5] ? m[5].slice(1) : 'default') as S3Arm['recipe'];
  const latentLrMult = m[6] ? Number(m[6].slice(4)) : 1;
  if (!(latentLrMult > 0)) throw new Error(`s3-shift: ${method}: the lrx multiplier must be > 0`);
  let quant: ShiftCnnQuant;
  if (base === 'fp') {
    if (m[6]) throw new Error(`s3-shift: ${method}: -lrx applies to shift-layer latents; fp has none`);
    quant = { kind: 'fp' };
  } else if (base.startsWith('s3-')) {
    quant = { kind: 'shift', parameterization: 's3', bits: Number(m[2]) as 3 | 4, encoding: m[3] === 'summed' ? 'summed' : 'nested', regularize: m[3] !== 'noreg' };
  } else {
    quant = { kind: 'shift', parameterization: 'deepshift-ps', bits: Number(m[4]) as 3 | 4, encoding: 'nested', regularize: true };
  }
  return { name: method, base, quant, recipe, latentLrMult };
}

/** Parses `fp`, `deepshift-ps-<b>bit`, `s3-<b>bit[-noreg|-summed]` (and the recipe suffixes) into what the CNN's quantised layers are. */
export function parseS3Method(method: string): S3MethodSpec {
  return parseS3Arm(method).quant;
}

/** True when `method` is a valid name. */
export function isS3Method(method: string): boolean {
  try {
    parseS3Arm(method);
    return true;
  } catch {
    return false;
  }
}
