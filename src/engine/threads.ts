/**
 * How many OpenBLAS threads one product may use (no tfjs import, so the runner's main thread can
 * decide without loading an engine).
 */

/** Default BLAS threads per product: EFFTRAIN_BLAS_THREADS when set, else 1. */
export function defaultBlasThreads(): number {
  const v = Number(process.env.EFFTRAIN_BLAS_THREADS);
  return Number.isInteger(v) && v >= 1 ? v : 1;
}

/**
 * OpenBLAS threads per product for a runner started with `workers` workers on `cores` cores:
 * EFFTRAIN_BLAS_THREADS when set, capped at cores / workers (no oversubscription); else 1.
 * The default does not follow the number of runs at once: 1 and 2 threads round large products
 * differently, so a count that did would let `--workers`, a `--resume` with fewer runs left, or a
 * sweep worker change the numbers of the same (method, seed); and a second thread bought little
 * (`bench engine` mlp 2.47x → 2.53x). A single large run asks for 2 with EFFTRAIN_BLAS_THREADS=2;
 * results name the count (engineLine).
 */
export function blasThreadsForRuns(workers: number, cores: number): number {
  if (process.env.EFFTRAIN_BLAS_THREADS === undefined) return 1;
  return Math.max(1, Math.min(defaultBlasThreads(), Math.floor(cores / Math.max(1, workers))));
}
