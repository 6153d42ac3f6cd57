import { parseNoiseSpec, type NoiseKind } from '../../data/label-noise.js';
import { UserError } from '../../errors.js';

/** The losses compared: plain cross-entropy and SuperLoss(cross-entropy, τ = log C). */
export const NOISY_LABEL_LOSSES = ['ce', 'superloss'] as const;
export type NoisyLabelLoss = (typeof NOISY_LABEL_LOSSES)[number];
/** Noise settings of the full run: symmetric grid, c → c+1 pair flips and confusable-pair flips. */
export const DEFAULT_NOISES = ['sym-0.2', 'sym-0.4', 'sym-0.6', 'pair-0.4', 'conf-0.4'];
/** Noise settings of the quick preset: one of each kind. */
export const QUICK_NOISES = ['sym-0.4', 'pair-0.4', 'conf-0.4'];

export interface NoisyLabelMethod {
  loss: NoisyLabelLoss;
  /** The noise spec as written, e.g. `sym-0.4`, `pair-0.4` or `clean`. */
  noise: string;
  kind: NoiseKind | 'clean';
  rate: number;
}

/**
 * Parses a method name `<loss>@<noise>`: loss `ce` or `superloss`, noise `sym-<rate>` (symmetric: a uniformly
 * drawn *other* class), `pair-<rate>` (pair flip c → c+1 mod C), `conf-<rate>` (flips within the confusable class
 * pairs, config `confusablePairs`) or `clean`. E.g. `superloss@sym-0.4`.
 * Throws a UserError on anything else.
 */
export function parseNoisyLabelMethod(name: string): NoisyLabelMethod {
  const at = name.indexOf('@');
  const loss = at > 0 ? name.slice(0, at) : '';
  const noise = at > 0 ? name.slice(at + 1) : '';
  if (!(NOISY_LABEL_LOSSES as readonly string[]).includes(loss)) {
    throw new UserError(`method "${name}": expected <loss>@<noise> with loss one of ${NOISY_LABEL_LOSSES.join(', ')} (e.g. superloss@sym-0.4)`);
  }
  let spec: ReturnType<typeof parseNoiseSpec>;
  try {
    spec = parseNoiseSpec(noise);
  } catch (e) {
    throw new UserError(`method "${name}": ${(e as Error).message}`);
  }
  return { loss: loss as NoisyLabelLoss, noise, kind: spec ? spec.kind : 'clean', rate: spec ? spec.rate : 0 };
}

/** The paired-comparison baseline: `ce@<noise>` when every method runs at one noise setting, else none. */
export function sameNoiseBaseline(methods: string[]): string | null {
  const noises = new Set(methods.map((m) => m.slice(m.indexOf('@') + 1)));
  const [noise] = [...noises];
  return noises.size === 1 && methods.includes(`ce@${noise}`) ? `ce@${noise}` : null;
}

/** SuperLoss λ candidates of the full run (smaller λ = stronger down-weighting of high-loss samples). */
export const DEFAULT_LAMBDAS = [0.1, 0.25, 1] as const;

export const methodsFor = (noises: string[]) => noises.flatMap((n) => NOISY_LABEL_LOSSES.map((l) => `${l}@${n}`));
