/** One measured case of a benchmark; `name` is stable (e.g. `mlp/wasm`). */
export interface BenchCase {
  name: string;
  msPerStep: number;
  gflops?: number;
  [extra: string]: unknown;
}

export interface BenchResult {
  cases: BenchCase[];
  [extra: string]: unknown;
}

/** A benchmark run by `efftrain bench <name>`; it writes `<outDir>/bench.json` through the CLI. */
export interface Bench {
  name: string;
  description: string;
  run(opts: { quick: boolean; log: (line: string) => void }): Promise<BenchResult>;
}
