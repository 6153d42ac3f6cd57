/**
 * Seeded pseudo-random numbers for everything random in efftrain (init, shuffles, dropout, noise).
 * `Math.random` is never used: same seed + same backend ⇒ same numbers.
 *
 * Generator: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit state),
 * seeded through splitmix32 so that nearby integer seeds give unrelated streams.
 */
export interface RngState {
  s: [number, number, number, number];
  /** Cached second normal deviate from Box–Muller, or null. */
  spare: number | null;
}

function splitmix32(x: number): () => number {
  let a = x >>> 0;
  return () => {
    a = (a + 0x9e3779b9) >>> 0;
    let z = a;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng seed must be a finite number, got ${seed}`);
    const sm = splitmix32(Math.floor(seed) ^ 0x5bd1e995);
    this.a = sm();
    this.b = sm();
    this.c = sm();
    this.d = sm();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1)) throw new Error(`Rng.int needs n >= 1, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal deviate (Box–Muller, polar-free form). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = this.next();
    while (u <= 1e-300) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A fresh 31-bit seed for tfjs ops and initializers that take a `seed` field. */
  seed(): number {
    return this.nextUint32() >>> 1;
  }

  /** A random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    this.shuffleInPlace(p);
    return p;
  }

  /** Shuffles an array in place (Fisher–Yates). */
  shuffleInPlace<T extends { length: number; [i: number]: unknown }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i];
      arr[i] = arr[j];
      arr[j] = tmp;
    }
    return arr;
  }

  /** Derives an independent child generator (e.g. one per data loader or per layer). */
  fork(): Rng {
    return new Rng(this.nextUint32());
  }

  getState(): RngState {
    return { s: [this.a, this.b, this.c, this.d], spare: this.spare };
  }

  setState(state: RngState): void {
    [this.a, this.b, this.c, this.d] = state.s.map((x) => x >>> 0) as [number, number, number, number];
    this.spare = state.spare;
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }
}
