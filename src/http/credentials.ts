import { createHash, randomBytes } from 'node:crypto';

/** A new secret for a session cookie or API token, and the hash stored in place of it. */
export function newToken(prefix: string): { token: string; hash: string } {
  const token = `${prefix}_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

// SHA-256 is enough here: the tokens are 256 random bits, so there is nothing to brute-force.
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
