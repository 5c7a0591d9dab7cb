import { backoffDelay } from '../lib/backoff.ts';

/**
 * Restart delays for a crashing child: 250 ms doubling up to 30 s, back to the start once a child has
 * stayed up for `stableMs` (a crash loop must not spin the CPU; a rare crash must restart at once).
 */
export class Backoff {
  private failures = 0;

  constructor(
    readonly baseMs = 250,
    readonly maxMs = 30_000,
    readonly stableMs = 30_000,
  ) {}

  /** The delay before the next restart of a child that ran for `uptimeMs`. */
  next(uptimeMs: number): number {
    if (uptimeMs >= this.stableMs) this.failures = 0;
    return backoffDelay(this.failures++, { baseMs: this.baseMs, maxMs: this.maxMs });
  }
}
