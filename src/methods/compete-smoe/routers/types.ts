/**
 * The router contract: every router of the MoE layer (one file each, registered by name like the MTL
 * weightings) turns token rows into routing logits over the experts. The layer does the rest (top-k,
 * capacity, gates, losses), so a router only says how it scores, what it trains, and whether it competes.
 */
import type * as tf from '@tensorflow/tfjs';
import type { NamedVariable } from '../../../models/ffn.js';
import type { CompetitionSettings } from '../competition.js';

/** A router's JSON spec: `type` picks the registered factory, the rest is its own options. */
export interface RouterSpec {
  type: string;
  [key: string]: unknown;
}

export interface RouterDims {
  dModel: number;
  experts: number;
}

export interface Router {
  readonly type: string;
  /** Routing logits [tokens, experts]; softmax gives the router probabilities. Differentiable in `variables()`. */
  logits(x: tf.Tensor2D): tf.Tensor2D;
  /** Trained (and saved) variables; empty for a frozen router. */
  variables(): NamedVariable[];
  /** Forward multiply-adds per token. */
  macsPerToken(): number;
  /** Competition settings (CompeteSMoE) or null for a router that always routes by its own logits. */
  readonly competition: CompetitionSettings | null;
  /** Whether the layer's balance / z losses can train this router (false when frozen). */
  readonly trainable: boolean;
  /** The spec that rebuilds this router (weights are saved separately). */
  spec(): RouterSpec;
  dispose(): void;
}

export type RouterFactory = (spec: RouterSpec, dims: RouterDims, seed: number, initStd: number) => Router;
