export interface ErrorDetail {
  field: string;
  message: string;
}

/** An error meant for the client: rendered as {"error": {code, message, details?}} with this status. */
export class AppError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const notFound = (what = 'Resource') => new AppError(404, 'not_found', `${what} not found.`);
export const forbidden = (message = 'You are not allowed to do this.') =>
  new AppError(403, 'forbidden', message);
export const unauthenticated = () =>
  new AppError(401, 'unauthenticated', 'Sign in (session cookie) or send Authorization: Bearer <token>.');
export const unavailable = (message = 'The database is unavailable; retry shortly.') =>
  new AppError(503, 'unavailable', message, undefined, { 'retry-after': '2' });
export const validationFailed = (field: string, message: string) =>
  new AppError(400, 'validation_failed', `${field} ${message}`, [{ field, message }]);
/**
 * 429 `rate_limited` + Retry-After (whole seconds, at least 1): a limit on how often, or how many at
 * once, one user or address may do something. The one way to build it.
 */
export const rateLimited = (message: string, retryAfterSeconds: number) =>
  new AppError(429, 'rate_limited', message, undefined, {
    'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });
/**
 * 503 `overloaded` + Retry-After: this instance or the database is too busy for the request now
 * (load shedding, a full wait queue, a statement timeout, too many streams). The one way to build it.
 */
export const overloaded = (message: string, retryAfterSeconds = 2) =>
  new AppError(503, 'overloaded', message, undefined, { 'retry-after': String(retryAfterSeconds) });
