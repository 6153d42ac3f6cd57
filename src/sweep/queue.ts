/** The BullMQ queue every sweep and worker share (one Redis can serve many sweeps; job ids keep them apart). */
export const QUEUE_NAME = 'efftrain-runs';
/** Redis hash: sweep id → JSON description (for `efftrain sweep status`). */
export const SWEEPS_KEY = 'efftrain:sweeps';

/**
 * Worker timing (BullMQ defaults are 30 s lock, 30 s stalled check: a dead worker's job waits 45–60 s).
 * A job whose worker died is retaken after lock expiry (½–1 × lockMs) plus at most one stalled interval.
 */
export const DEFAULT_LOCK_MS = 10_000;
export const DEFAULT_STALLED_MS = 5_000;
/** How often one job may lose its worker before it is failed (BullMQ's default of 1 makes two crashes final). */
export const DEFAULT_MAX_STALLED = 3;
