/**
 * The stream of training patterns of the Newton classifier (Yaeger, Lyon & Webb, NIPS 9, 1996, §3–§4): a
 * presentation list of positives — each once, or repeated/skipped by frequency balancing (R = (a/F)^b) — plus
 * the negatives drawn with the current negative-train probability, shuffled; consumed pattern by pattern, and
 * drawn again from the run's RNG when it runs out (lists do not align with epochs).
 *
 * Checkpoint state is small: the RNG state the current list was drawn from, its negative probability and the
 * position — the list itself is drawn again on restore.
 */
import { Rng, type RngState } from '../../engine/rng.js';
import { frequencyBalancedEpoch } from './frequency-balancing.js';
import { sampleNegatives } from './negative-training.js';

export interface PatternStreamState {
  /** RNG state the current list was drawn from (null before the first list). */
  listRng: RngState | null;
  negativeProb: number;
  pos: number;
}

export class PatternStream {
  /** Entries: positive i ≥ 0, negative j as −(j+1). */
  private list: Int32Array = new Int32Array(0);
  private pos = 0;
  private listRng: RngState | null = null;
  private negativeProb = 0;

  /**
   * @param labels class of each positive
   * @param nNegatives number of negative patterns (used when `negatives` is on)
   * @param R frequency-balancing repetition factor per class, or null (each positive once per list)
   */
  constructor(
    readonly labels: Int32Array,
    readonly nNegatives: number,
    readonly R: ArrayLike<number> | null,
    readonly negatives: boolean,
    private readonly rng: Rng,
  ) {}

  /** The next pattern (positive i ≥ 0, negative j as −(j+1)); a new list is drawn with `negativeProb` when the current one is used up. */
  next(negativeProb: number): number {
    if (this.pos >= this.list.length) {
      this.listRng = this.rng.getState();
      this.negativeProb = negativeProb;
      this.list = this.draw(this.rng, negativeProb);
      this.pos = 0;
    }
    return this.list[this.pos++];
  }

  private draw(rng: Rng, negativeProb: number): Int32Array {
    const p = this.R ? frequencyBalancedEpoch(this.labels, this.R, rng) : rng.permutation(this.labels.length);
    const n = this.negatives ? sampleNegatives(this.nNegatives, negativeProb, rng) : new Int32Array(0);
    const all = new Int32Array(p.length + n.length);
    all.set(p);
    for (let k = 0; k < n.length; k++) all[p.length + k] = -(n[k] + 1);
    return rng.shuffleInPlace(all);
  }

  getState(): PatternStreamState {
    return { listRng: this.listRng, negativeProb: this.negativeProb, pos: this.pos };
  }

  /** Restores a position: the list is drawn again from its saved RNG state (the run's RNG is restored by the caller). */
  setState(s: PatternStreamState): void {
    this.listRng = s.listRng;
    this.negativeProb = s.negativeProb;
    this.list = s.listRng ? this.draw(Rng.fromState(s.listRng), s.negativeProb) : new Int32Array(0);
    this.pos = s.pos;
  }
}
