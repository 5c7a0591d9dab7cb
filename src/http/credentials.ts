import { createHash, randomBytes } from 'node:crypto';

/**
 * NOTIFYed with a session or token id when it stops authenticating — by a trigger on `sessions` and
 * `api_tokens` (migration 0007), whatever deleted or changed the row — so that every API instance forgets
 * it at once: its cached caller (http/caller-cache.ts) and the event streams opened with it
 * (realtime/event-hub.ts).
 */
export const CREDENTIALS_CHANNEL = 'lab_credentials';

/** A new secret for a session cookie or API token, and the hash stored in place of it. */
export function newToken(prefix: string): { token: string; hash: string } {
  const token = `${prefix}_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

// SHA-256 is enough here: the tokens are 256 random bits, so there is nothing to brute-force.
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
