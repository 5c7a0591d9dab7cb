/** Capped exponential backoff: `baseMs × factor^attempt`, at most `maxMs`. */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /** Growth per attempt; 2 by default. */
  factor?: number;
}

/** The delay before retry number `attempt` (0 = the first retry). */
export function backoffDelay(attempt: number, policy: BackoffPolicy): number {
  return Math.min(policy.maxMs, policy.baseMs * (policy.factor ?? 2) ** Math.max(0, attempt));
}
