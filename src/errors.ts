/**
 * An error caused by the user's input (bad data file, unknown key, invalid value).
 * The CLI prints only its message (no stack trace) and exits with code 2.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** Raised by the trainer when a loss becomes NaN or ±Inf. */
export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly value: number,
    readonly checkpoint: string | null,
  ) {
    super(
      `loss became ${value} at step ${step}` +
        (checkpoint ? `; last good checkpoint kept at ${checkpoint}` : '; no checkpoint was written (use checkpointing to keep one)'),
    );
    this.name = 'NonFiniteLossError';
  }
}
