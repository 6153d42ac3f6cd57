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
 * OpenBLAS threads per product for a runner that runs `concurrentRuns` runs at once on a machine with
 * `cores` cores: EFFTRAIN_BLAS_THREADS when set; else one per worker when several runs share the
 * machine (no oversubscription), and up to two for a run that has it alone (products of ≥ 2^25
 * multiply-adds then split across two cores; smaller ones stay on one). The count changes the
 * rounding of those products, so results are identical for equal counts (engineLine names it).
 */
export function blasThreadsForRuns(concurrentRuns: number, cores: number): number {
  if (process.env.EFFTRAIN_BLAS_THREADS !== undefined) return defaultBlasThreads();
  return concurrentRuns > 1 ? 1 : Math.max(1, Math.min(2, cores));
}

