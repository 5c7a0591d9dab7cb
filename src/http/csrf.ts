import type { Config } from '../config.ts';
import { AppError } from '../shared/errors.ts';
import { usesSessionCookie } from './auth.ts';
import type { OnRequestStep } from './request-steps.ts';

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function originOf(value: string | undefined): string | null {
  if (!value) return null;
  try {
    const u = new URL(value);
    return `${u.protocol}//${u.host}`;
  } catch {
    return null;
  }
}

/**
 * API.md's CSRF rule: a state-changing request that carries the session cookie must come from our own
 * origin (Origin, else Referer) or a trusted one. Bearer-token and cookie-less requests are exempt.
 */
export function csrfCheck(config: Config): OnRequestStep {
  const trusted = new Set(
    config.TRUSTED_ORIGINS.split(',')
      .map((o) => originOf(o.trim()))
      .filter((o): o is string => o !== null),
  );
  return (request) => {
    if (!UNSAFE.has(request.method) || !usesSessionCookie(request)) return undefined;
    // Referer only stands in for a missing Origin: `Origin: null` (a sandboxed frame, a
    // cross-origin redirect) is refused, not rescued by a Referer that may be ours.
    const given = request.headers.origin;
    const origin = given !== undefined ? originOf(given) : originOf(request.headers.referer);
    const own = originOf(`${request.protocol}://${request.host}`);
    if (origin === null || (origin !== own && !trusted.has(origin)))
      return new AppError(403, 'csrf_failed', 'Cross-site request refused: Origin does not match this site.');
    return undefined;
  };
}
