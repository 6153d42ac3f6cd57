/** The newton-handwriting experiment's arms: which of the paper's innovations each method switches on. */
import { UserError } from '../../errors.js';

/**
 * Newton hand-print recognizer (Yaeger, Lyon & Webb, NIPS 9, 1996) arms: the ablation of NormOutErr, frequency
 * balancing, error emphasis, negative training, stroke warping and annealing.
 */
export const NEWTON_METHODS = ['baseline', '+normouterr', '+freqbal', '+erremph', '+negative', '+warp', 'all', 'all-fixed-lr'] as const;

export interface NewtonArm {
  normouterr: boolean;
  freqbal: boolean;
  erremph: boolean;
  negative: boolean;
  warp: boolean;
  anneal: boolean;
}

/** The switches of each method: baseline = none (annealed schedule), +X = one innovation, all = all five. */
export function newtonArm(method: string): NewtonArm {
  const none: NewtonArm = { normouterr: false, freqbal: false, erremph: false, negative: false, warp: false, anneal: true };
  const all: NewtonArm = { normouterr: true, freqbal: true, erremph: true, negative: true, warp: true, anneal: true };
  switch (method) {
    case 'baseline':
      return none;
    case '+normouterr':
    case '+freqbal':
    case '+erremph':
    case '+negative':
    case '+warp':
      return { ...none, [method.slice(1)]: true };
    case 'all':
      return all;
    case 'all-fixed-lr':
      return { ...all, anneal: false };
    default:
      throw new UserError(`unknown method "${method}" (known: ${NEWTON_METHODS.join(', ')})`);
  }
}
